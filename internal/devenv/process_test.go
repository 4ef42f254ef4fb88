package devenv

import (
	"syscall"
	"testing"
)

// TestProcessKillRestartStop drives a real child through the faults the soak injects.
func TestProcessKillRestartStop(t *testing.T) {
	e := &Env{opts: Options{WorkDir: t.TempDir()}}
	p, err := e.StartProcess("sleeper", "sleep", "60")
	if err != nil {
		t.Fatal(err)
	}
	first := p.PID()
	if !p.Running() {
		t.Fatal("not running after start")
	}
	if err := p.Restart(); err == nil {
		t.Fatal("Restart of a running process succeeded")
	}
	p.Kill()
	ws, ok := p.ExitState().Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("exit state %v, want killed by SIGKILL", p.ExitState())
	}
	if err := p.Restart(); err != nil {
		t.Fatal(err)
	}
	if p.PID() == first || !p.Running() {
		t.Fatalf("restarted pid %d (first %d) running=%v", p.PID(), first, p.Running())
	}
	if err := p.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	e.Stop() // resumes the paused process and interrupts it
	if p.Running() {
		t.Fatal("running after Env.Stop")
	}
}
