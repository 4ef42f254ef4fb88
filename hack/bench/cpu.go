package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// cpuProcs are the environment's processes whose CPU time the bench reports: which of them
// bounds convergence (the operator, the simulator or the API server and its etcd).
var cpuProcs = []string{"manager", "gatewaysim", "kube-apiserver", "etcd"}

// clockTick is USER_HZ, the unit of utime and stime in /proc/<pid>/stat (100 on Linux).
const clockTick = 100

// childCPU sums utime+stime of this process's children and grandchildren by command name.
func childCPU() map[string]time.Duration {
	out := map[string]time.Duration{}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	type proc struct {
		ppid int
		comm string
		cpu  time.Duration
	}
	procs := map[int]proc{}
	for _, path := range stats {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ... field 14 utime, 15 stime; comm may contain spaces.
		s := string(b)
		open, closing := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || closing < open {
			continue
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(s[:open]))
		f := strings.Fields(s[closing+1:])
		if len(f) < 13 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		procs[pid] = proc{ppid: ppid, comm: s[open+1 : closing], cpu: time.Duration(ut+st) * time.Second / clockTick}
	}
	self := os.Getpid()
	for _, p := range procs {
		// Children of the bench (envtest, devenv) or of its direct children.
		if p.ppid == self || procs[p.ppid].ppid == self {
			out[p.comm] += p.cpu
		}
	}
	return out
}

// cpuSince is the CPU time each process spent since before.
func cpuSince(before map[string]time.Duration) map[string]time.Duration {
	out := map[string]time.Duration{}
	for name, d := range childCPU() {
		out[name] = d - before[name]
	}
	return out
}

// profileCPU keeps a 30 s CPU profile of the manager (go tool pprof -top <path>).
func profileCPU(pprofAddr, path string) {
	resp, err := http.Get("http://" + pprofAddr + "/debug/pprof/profile?seconds=30")
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: cpu profile: %v\n", err)
		return
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	if err := os.WriteFile(path, body, 0o644); err != nil {
		fmt.Fprintf(os.Stderr, "bench: cpu profile: %v\n", err)
		return
	}
	fmt.Fprintf(os.Stderr, "bench: manager CPU profile in %s\n", path)
}

// profileAt is the smallest fleet whose convergence is profiled (-profile-at).
var profileAt int
