// Command secretsbench measures how the manager's memory depends on Secrets it never uses:
// on one real kube-apiserver + etcd (envtest) it starts the manager binary as its
// ServiceAccount (config/rbac), lets its caches sync and settle, and reads its resident set
// (VmRSS) and peak (VmHWM) from /proc; then it creates N unrelated Secrets of S bytes each and
// does the same with a fresh manager process. With Secrets cached in full the second figure
// grows by about N×S; read uncached and watched as metadata only, it should not. Pass several
// --manager binaries (for example one built from an older commit) to compare them in the same
// run, on the same API server and data.
//
//	go run ./hack/secretsbench --secrets 2000 --size 102400
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/openshell-operator/openshell-operator/internal/devenv"
)

// listFlag collects repeated --manager values.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	var (
		managers listFlag
		secrets  = flag.Int("secrets", 2000, "unrelated Secrets to create")
		size     = flag.Int("size", 100*1024, "bytes of data per Secret")
		settle   = flag.Duration("settle", 15*time.Second, "how long the manager runs after its caches synced before RSS is read")
		workDir  = flag.String("work-dir", "", "logs and kubeconfigs (default: a temp dir)")
	)
	flag.Var(&managers, "manager", "manager binary to measure (repeatable; default: build ./cmd into bin/manager)")
	flag.Parse()
	if err := run(managers, *secrets, *size, *settle, *workDir); err != nil {
		fmt.Fprintln(os.Stderr, "secretsbench:", err)
		os.Exit(1)
	}
}

// sample is one measurement.
type sample struct {
	manager      string
	secrets      int
	rss, hwm     int64 // KiB
	cacheSynced  time.Duration
	secretsBytes int64
}

func run(managers []string, n, size int, settle time.Duration, workDir string) error {
	ctx := context.Background()
	root, err := filepath.Abs(".")
	if err != nil {
		return err
	}
	if workDir == "" {
		if workDir, err = os.MkdirTemp("", "secretsbench-"); err != nil {
			return err
		}
	} else if err := os.MkdirAll(workDir, 0o755); err != nil {
		return err
	}
	if len(managers) == 0 {
		bins, err := devenv.Build(ctx, root, os.Stderr)
		if err != nil {
			return err
		}
		managers = []string{bins.Manager}
	}
	assets, err := devenv.RunScript(ctx, root, "hack/setup-envtest.sh")
	if err != nil {
		return err
	}
	env := &envtest.Environment{BinaryAssetsDirectory: assets, ErrorIfCRDPathMissing: true,
		CRDDirectoryPaths: []string{filepath.Join(root, "config", "crd", "bases")}}
	cfg, err := env.Start()
	if err != nil {
		return fmt.Errorf("start envtest: %w", err)
	}
	defer func() { _ = env.Stop() }()
	saCfg, err := devenv.InstallOperatorRBAC(ctx, cfg, root, "openshell-system")
	if err != nil {
		return err
	}
	kubeconfig := filepath.Join(workDir, "manager.kubeconfig")
	if err := devenv.WriteKubeconfig(saCfg, kubeconfig); err != nil {
		return err
	}

	var samples []sample
	measureAll := func(count int) error {
		for i, m := range managers {
			s, err := measure(m, kubeconfig, filepath.Join(workDir, fmt.Sprintf("manager-%d-%d.log", i, count)), settle)
			if err != nil {
				return err
			}
			s.secrets, s.secretsBytes = count, int64(count)*int64(size)
			samples = append(samples, s)
			fmt.Fprintf(os.Stderr, "%s with %d Secrets: RSS %d KiB, peak %d KiB\n", m, count, s.rss, s.hwm)
		}
		return nil
	}
	if err := measureAll(0); err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "creating %d Secrets of %d bytes\n", n, size)
	if err := createSecrets(ctx, cs, n, size); err != nil {
		return err
	}
	if err := measureAll(n); err != nil {
		return err
	}

	fmt.Printf("| manager | unrelated Secrets | their data | RSS | peak RSS | caches synced after |\n|---|---|---|---|---|---|\n")
	for _, s := range samples {
		fmt.Printf("| %s | %d | %.0f MiB | %.1f MiB | %.1f MiB | %s |\n", s.manager, s.secrets, float64(s.secretsBytes)/(1<<20),
			float64(s.rss)/1024, float64(s.hwm)/1024, s.cacheSynced.Round(100*time.Millisecond))
	}
	return nil
}

// createSecrets creates n Secrets of size random bytes in a namespace of their own, eight at a
// time.
func createSecrets(ctx context.Context, cs kubernetes.Interface, n, size int) error {
	const ns = "unrelated"
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	jobs := make(chan int)
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				data := make([]byte, size)
				_, _ = rand.Read(data)
				sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("unrelated-%05d", i)},
					Data: map[string][]byte{"blob": data}}
				if _, err := cs.CoreV1().Secrets(ns).Create(ctx, sec, metav1.CreateOptions{}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	var err error
	for i := 0; i < n && err == nil; i++ {
		select {
		case jobs <- i:
		case err = <-errs:
		}
	}
	close(jobs)
	wg.Wait()
	if err == nil {
		select {
		case err = <-errs:
		default:
		}
	}
	return err
}

// measure starts the manager, waits until every controller started its workers (its caches
// synced), lets it settle, reads VmRSS and VmHWM, and stops it.
func measure(bin, kubeconfig, logPath string, settle time.Duration) (sample, error) {
	probe, err := devenv.FreeLoopbackAddr()
	if err != nil {
		return sample{}, err
	}
	logFile, err := os.Create(logPath)
	if err != nil {
		return sample{}, err
	}
	defer func() { _ = logFile.Close() }()
	cmd := exec.Command(bin, "--kubeconfig", kubeconfig, "--metrics-bind-address", "0", "--health-probe-bind-address", probe)
	cmd.Env = append(os.Environ(), "POD_NAMESPACE=openshell-system")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return sample{}, err
	}
	defer func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}()
	synced, err := waitForWorkers(logPath, 5, 3*time.Minute)
	if err != nil {
		return sample{}, err
	}
	s := sample{manager: filepath.Base(bin), cacheSynced: synced.Sub(start)}
	time.Sleep(settle)
	s.rss, s.hwm, err = memory(cmd.Process.Pid)
	return s, err
}

// waitForWorkers waits until the log shows want "Starting workers" lines (one per controller,
// printed once its caches synced) and returns when.
func waitForWorkers(logPath string, want int, timeout time.Duration) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		b, err := os.ReadFile(logPath)
		if err != nil {
			return time.Time{}, err
		}
		if strings.Count(string(b), "Starting workers") >= want {
			return time.Now(), nil
		}
		if strings.Contains(string(b), "problem running manager") || strings.Contains(string(b), "manager exited with an error") {
			return time.Time{}, fmt.Errorf("manager failed; see %s", logPath)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return time.Time{}, fmt.Errorf("controllers did not start within %s; see %s", timeout, logPath)
}

// memory reads VmRSS and VmHWM (KiB) of pid.
func memory(pid int) (rss, hwm int64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(val)
		if len(fields) == 0 {
			continue
		}
		switch key {
		case "VmRSS":
			rss, err = strconv.ParseInt(fields[0], 10, 64)
		case "VmHWM":
			hwm, err = strconv.ParseInt(fields[0], 10, 64)
		}
		if err != nil {
			return 0, 0, err
		}
	}
	if rss == 0 {
		return 0, 0, errors.New("no VmRSS in /proc status")
	}
	return rss, hwm, sc.Err()
}
