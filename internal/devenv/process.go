package devenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// Process is a child process that can be killed, paused and started again with the same
// command line, for tests that break things on purpose (the soak). Its output is appended to
// WorkDir/<name>.log across restarts.
type Process struct {
	// Name identifies the process in logs and its log file name.
	Name string
	bin  string
	args []string
	log  string

	mu    sync.Mutex
	cmd   *exec.Cmd
	done  chan struct{}
	state *os.ProcessState
}

// StartProcess starts bin with args as a restartable child of the environment; Stop stops it.
func (e *Env) StartProcess(name, bin string, args ...string) (*Process, error) {
	p := &Process{Name: name, bin: bin, args: args, log: filepath.Join(e.opts.WorkDir, name+".log")}
	if err := p.start(); err != nil {
		return nil, err
	}
	e.mu.Lock()
	e.processes = append(e.processes, p)
	e.mu.Unlock()
	return p, nil
}

func (p *Process) start() error {
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("%s log: %w", p.Name, err)
	}
	cmd := exec.Command(p.bin, p.args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		_ = f.Close()
		return fmt.Errorf("start %s: %w", p.Name, err)
	}
	done := make(chan struct{})
	p.mu.Lock()
	p.cmd, p.done, p.state = cmd, done, nil
	p.mu.Unlock()
	go func() {
		_ = cmd.Wait()
		_ = f.Close()
		p.mu.Lock()
		p.state = cmd.ProcessState
		p.mu.Unlock()
		close(done)
	}()
	return nil
}

// LogPath is the file the process's output goes to.
func (p *Process) LogPath() string { return p.log }

// PID is the process id of the current run.
func (p *Process) PID() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd.Process.Pid
}

// Done is closed when the current run exits.
func (p *Process) Done() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.done
}

// Running reports whether the current run has not exited.
func (p *Process) Running() bool {
	select {
	case <-p.Done():
		return false
	default:
		return true
	}
}

// ExitState is how the last run ended, nil while it runs.
func (p *Process) ExitState() *os.ProcessState {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.state
}

// Signal sends sig to the current run.
func (p *Process) Signal(sig os.Signal) error {
	p.mu.Lock()
	cmd := p.cmd
	p.mu.Unlock()
	if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signal %s: %w", p.Name, err)
	}
	return nil
}

// Kill sends SIGKILL (no cleanup, like a node loss or an OOM kill) and waits for the exit.
func (p *Process) Kill() {
	_ = p.Signal(syscall.SIGKILL)
	<-p.Done()
}

// Restart starts the process again with the same command line; it must have exited.
func (p *Process) Restart() error {
	if p.Running() {
		return fmt.Errorf("restart %s: still running", p.Name)
	}
	return p.start()
}

// Stop interrupts the process, kills it after 10 s and waits; a paused process is resumed
// first so it can exit.
func (p *Process) Stop() {
	if !p.Running() {
		return
	}
	_ = p.Signal(syscall.SIGCONT)
	_ = p.Signal(os.Interrupt)
	select {
	case <-p.Done():
	case <-time.After(10 * time.Second):
		p.Kill()
	}
}
