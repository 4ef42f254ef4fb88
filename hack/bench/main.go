// Command bench measures the operator at scale: N Sandboxes against the gateway simulator,
// with the manager and the simulator as real processes on a real kube-apiserver + etcd, once
// per observation mode (watch: list + WatchSandbox per gateway; poll: GetSandbox per sandbox
// and interval, the design of earlier operators). It prints a markdown table; see
// docs/performance.md for the method.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
	"github.com/openshell-operator/openshell-operator/internal/devenv"
)

// mutating are the gateway RPCs that change state.
var mutating = []string{"CreateSandbox", "DeleteSandbox", "UpdateConfig", "AttachSandboxProvider", "DetachSandboxProvider",
	"CreateProvider", "UpdateProvider", "DeleteProvider", "SetClusterInference"}

func main() {
	var (
		root    = flag.String("root", ".", "repository root")
		sizes   = flag.String("n", "100,1000", "comma-separated fleet sizes")
		modes   = flag.String("modes", "watch,poll", "observation modes to compare (the first is the subject, the second the baseline)")
		delay   = flag.Duration("provisioning-delay", 2*time.Second, "simulated provisioning delay")
		window  = flag.Duration("steady-window", 5*time.Minute, "how long steady state is measured (poll mode re-reads each sandbox every 5 min, so shorter windows understate it)")
		timeout = flag.Duration("converge-timeout", 10*time.Minute, "how long a fleet may take to become Ready")
		out     = flag.String("out", "", "also write the markdown table to this file")
		extra   = flag.String("manager-args", "", "extra manager flags, space-separated (to compare settings)")
		fairN   = flag.Int("fairness", 1000, "burst size of the fairness row (one namespace creates this many at once while one sandbox is created in another); 0 skips it")
		profAt  = flag.Int("profile-at", 5000, "keep a 30 s CPU profile of the manager while fleets of at least this size converge")
	)
	flag.Parse()
	// The bench's own clients log nothing worth reading; the manager logs to its file.
	ctrllog.SetLogger(logr.Discard())
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	profileAt = *profAt
	if err := run(ctx, *root, *sizes, strings.Split(*modes, ","), strings.Fields(*extra), *delay, *window, *timeout, *out, *fairN); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, root, sizes string, modes, extra []string, delay, window, timeout time.Duration, out string, fairN int) error {
	root, err := filepath.Abs(root)
	if err != nil {
		return err
	}
	// Private binaries: bin/ may be shared with other worktrees and their running tests.
	binDir, err := os.MkdirTemp("", "openshell-bench-bin-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(binDir) }()
	bins, err := devenv.BuildInto(ctx, root, binDir, os.Stderr)
	if err != nil {
		return err
	}
	assets, err := devenv.RunScript(ctx, root, "hack/setup-envtest.sh")
	if err != nil {
		return err
	}
	var results []result
	for _, s := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			return fmt.Errorf("bad fleet size %q", s)
		}
		for _, mode := range modes {
			fmt.Fprintf(os.Stderr, "==> N=%d mode=%s\n", n, mode)
			r, err := measure(ctx, root, bins, assets, mode, extra, n, delay, window, timeout)
			if err != nil {
				return fmt.Errorf("bench with N=%d mode=%s: %w", n, mode, err)
			}
			results = append(results, r)
		}
	}
	table := render(results, modes, delay, window)
	if fairN > 0 {
		fmt.Fprintf(os.Stderr, "==> fairness: %d in one namespace, singles in another (mode=%s)\n", fairN, modes[0])
		f, err := fairness(ctx, root, bins, assets, modes[0], extra, delay, timeout, fairN)
		if err != nil {
			return fmt.Errorf("fairness: %w", err)
		}
		table += renderFairness(f)
	}
	fmt.Print(table)
	if out != "" {
		return os.WriteFile(out, []byte(table), 0o644)
	}
	return nil
}

// result is one (mode, N) run.
type result struct {
	Mode           string
	N              int
	LagP50, LagP99 time.Duration
	// AfterGatewayP50/P99 are how long after the gateway's READY each resource showed Ready;
	// AfterGatewayLateMax is the worst of those the gateway made READY once the whole fleet
	// had been written (AfterGatewayLateN of them).
	AfterGatewayP50, AfterGatewayP99, AfterGatewayLateMax time.Duration
	AfterGatewayLateN                                     int
	AllReady                                              time.Duration
	RPCsPerSandbox                                        float64
	WritesPerSandbox                                      float64
	SteadyReadsPerMin                                     float64
	SteadyMutatingPerMin                                  float64
	SteadyWritesPerMin                                    float64
	// ConvergeByMethod and SteadyByMethod are gateway calls per method: per sandbox to
	// converge, and per minute once steady.
	ConvergeByMethod map[string]float64
	SteadyByMethod   map[string]float64
	HeapMiB, RSSMiB  float64
	// CPU is the CPU time each process of the environment spent from the first create to
	// the last Ready, by command name (manager, gatewaysim, kube-apiserver, etcd).
	CPU map[string]time.Duration
}

type tracker struct {
	mu       sync.Mutex
	created  map[string]time.Time
	ready    map[string]time.Time
	writes   int
	lastSeen time.Time
}

func measure(ctx context.Context, root string, bins devenv.Binaries, assets, mode string, extra []string, n int, delay, window, timeout time.Duration) (result, error) {
	res := result{Mode: mode, N: n}
	b, err := startBench(ctx, root, bins, assets, mode, extra, delay, "bench")
	if err != nil {
		return res, err
	}
	defer b.stop()
	env, c, pprofAddr := b.env, b.c, b.pprofAddr
	t := &tracker{created: map[string]time.Time{}, ready: map[string]time.Time{}}
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	followed := make(chan error, 1)
	go func() { followed <- t.follow(watchCtx, c, "bench") }()
	defer func() {
		stopWatch()
		if err := <-followed; err != nil && !errors.Is(err, context.Canceled) {
			fmt.Fprintf(os.Stderr, "bench: follow sandboxes: %v\n", err)
		}
	}()

	base, err := calls(env.AdminAddr)
	if err != nil {
		return res, err
	}
	cpu0 := childCPU()
	if n >= profileAt {
		go profileCPU(pprofAddr, filepath.Join(os.TempDir(), fmt.Sprintf("openshell-bench-cpu-%s-%d.pprof", mode, n)))
	}
	start := time.Now()
	if err := createFleet(ctx, c, t, "bench", "sb", n); err != nil {
		return res, err
	}
	written := time.Now()
	dumped := false
	if err := waitFor(ctx, timeout, func() (bool, error) {
		if !dumped && time.Since(start) > stallAfter(delay) {
			// Something is slower than it should ever be: keep the manager's goroutines.
			dumped = true
			dumpGoroutines(pprofAddr, filepath.Join(os.TempDir(), fmt.Sprintf("openshell-bench-stall-%s-%d.txt", mode, n)))
		}
		return t.readyCount() == n, nil
	}); err != nil {
		return res, fmt.Errorf("%d of %d Ready: %w", t.readyCount(), n, err)
	}
	res.AllReady = time.Since(start)
	res.CPU = cpuSince(cpu0)
	// Converged: RPCs and writes until the last one settled (policy acks, event mirroring).
	if err := settle(ctx, env.AdminAddr, t); err != nil {
		return res, err
	}
	converged, err := calls(env.AdminAddr)
	if err != nil {
		return res, err
	}
	res.RPCsPerSandbox = float64(total(converged)-total(base)) / float64(n)
	res.ConvergeByMethod = map[string]float64{}
	for m, v := range converged {
		if d := v - base[m]; d > 0 {
			res.ConvergeByMethod[m] = float64(d) / float64(n)
		}
	}
	res.WritesPerSandbox = float64(t.writeCount()) / float64(n)
	res.LagP50, res.LagP99 = t.lags(delay)

	writes0 := t.writeCount()
	time.Sleep(window)
	steady, err := calls(env.AdminAddr)
	if err != nil {
		return res, err
	}
	perMin := func(v int) float64 { return float64(v) * float64(time.Minute) / float64(window) }
	var reads, muts int
	for m, v := range steady {
		d := v - converged[m]
		if slices.Contains(mutating, m) {
			muts += d
		} else {
			reads += d
		}
	}
	res.SteadyReadsPerMin, res.SteadyMutatingPerMin = perMin(reads), perMin(muts)
	res.SteadyByMethod = map[string]float64{}
	for m, v := range steady {
		if d := v - converged[m]; d > 0 {
			res.SteadyByMethod[m] = perMin(d)
		}
	}
	res.SteadyWritesPerMin = perMin(t.writeCount() - writes0)
	res.HeapMiB, res.RSSMiB = memory(env)
	// Read last: these gateway calls are the bench's, not the operator's.
	gw, err := gatewayReady(ctx, env, "bench", delay)
	if err != nil {
		return res, fmt.Errorf("gateway READY times: %w", err)
	}
	res.AfterGatewayP50, res.AfterGatewayP99, _, _ = t.readyAfterGateway(gw, time.Time{})
	_, _, res.AfterGatewayLateMax, res.AfterGatewayLateN = t.readyAfterGateway(gw, written)
	return res, nil
}

// stallAfter is how long a fleet may take to become Ready before the bench keeps a goroutine
// dump of the manager for diagnosis (poll mode's settling interval is 10 s).
func stallAfter(delay time.Duration) time.Duration { return delay + 30*time.Second }

func dumpGoroutines(pprofAddr, path string) {
	resp, err := http.Get("http://" + pprofAddr + "/debug/pprof/goroutine?debug=2")
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: goroutine dump: %v\n", err)
		return
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	if err := os.WriteFile(path, body, 0o644); err != nil {
		fmt.Fprintf(os.Stderr, "bench: goroutine dump: %v\n", err)
		return
	}
	fmt.Fprintf(os.Stderr, "bench: slow convergence; manager goroutines in %s\n", path)
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer func() { _ = l.Close() }()
	return l.Addr().String(), nil
}

func createFleet(ctx context.Context, c client.Client, t *tracker, ns, prefix string, n int) error {
	sem := make(chan struct{}, 32)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		name := fmt.Sprintf("%s-%05d", prefix, i)
		sb := &v1alpha1.Sandbox{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: v1alpha1.SandboxSpec{
			Image: "busybox", UpdateStrategy: v1alpha1.UpdateStrategyRecreate, DeletionPolicy: v1alpha1.DeletionPolicyDelete,
		}}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := c.Create(ctx, sb); err != nil {
				errs <- err
				return
			}
			t.mu.Lock()
			t.created[name] = time.Now()
			t.mu.Unlock()
		}()
	}
	wg.Wait()
	close(errs)
	return errors.Join(slices.Collect(func(yield func(error) bool) {
		for e := range errs {
			if !yield(e) {
				return
			}
		}
	})...)
}

// follow counts writes (every Modified event is one write: finalizer or status) and the
// first time each sandbox is seen Ready. The API server ends watches after a while; follow
// resumes from the last resourceVersion it saw, so no write is missed or counted twice.
func (t *tracker) follow(ctx context.Context, c client.WithWatch, ns string) error {
	rv := ""
	for ctx.Err() == nil {
		w, err := c.Watch(ctx, &v1alpha1.SandboxList{}, client.InNamespace(ns),
			&client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: rv}})
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: watch sandboxes: %v\n", err)
			time.Sleep(time.Second)
			continue
		}
		for ev := range w.ResultChan() {
			if ev.Type == watch.Error {
				if ctx.Err() != nil {
					break
				}
				fmt.Fprintf(os.Stderr, "bench: watch error: %v\n", ev.Object)
				rv = ""
				break
			}
			sb, ok := ev.Object.(*v1alpha1.Sandbox)
			if !ok {
				continue
			}
			rv = sb.ResourceVersion
			if ev.Type != watch.Modified {
				continue
			}
			t.observe(sb)
		}
		w.Stop()
	}
	return ctx.Err()
}

func (t *tracker) observe(sb *v1alpha1.Sandbox) {
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.writes++
	t.lastSeen = now
	if _, done := t.ready[sb.Name]; !done && meta.IsStatusConditionTrue(sb.Status.Conditions, v1alpha1.ConditionReady) {
		t.ready[sb.Name] = now
	}
}

func (t *tracker) readyCount() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.ready)
}

func (t *tracker) writeCount() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.writes
}

// lags is Ready minus create minus the simulated provisioning delay, p50 and p99.
func (t *tracker) lags(delay time.Duration) (p50, p99 time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var ls []time.Duration
	for name, r := range t.ready {
		ls = append(ls, max(r.Sub(t.created[name])-delay, 0))
	}
	slices.Sort(ls)
	pick := func(q float64) time.Duration { return ls[min(len(ls)-1, int(q*float64(len(ls))))] }
	return pick(0.50), pick(0.99)
}

// settle waits until neither gateway calls nor writes moved for 3 s (policy
// acknowledgements and event mirroring finish after Ready).
func settle(ctx context.Context, admin string, t *tracker) error {
	prev, err := calls(admin)
	if err != nil {
		return err
	}
	prevWrites := t.writeCount()
	for quiet := 0; quiet < 3; {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
		cur, err := calls(admin)
		if err != nil {
			return err
		}
		if total(cur)-cur["ListSandboxes"]-cur["Health"] == total(prev)-prev["ListSandboxes"]-prev["Health"] && t.writeCount() == prevWrites {
			quiet++
		} else {
			quiet = 0
		}
		prev, prevWrites = cur, t.writeCount()
	}
	return nil
}

func calls(admin string) (map[string]int, error) {
	resp, err := http.Get("http://" + admin + "/calls")
	if err != nil {
		return nil, fmt.Errorf("simulator calls: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	out := map[string]int{}
	return out, json.NewDecoder(resp.Body).Decode(&out)
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// memory reads the manager's Go heap (from its metrics) and RSS (from /proc).
func memory(env *devenv.Env) (heapMiB, rssMiB float64) {
	if resp, err := http.Get("http://" + env.MetricsAddr + "/metrics"); err == nil {
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		for _, line := range strings.Split(string(body), "\n") {
			if v, ok := strings.CutPrefix(line, "go_memstats_heap_inuse_bytes "); ok {
				f, _ := strconv.ParseFloat(v, 64)
				heapMiB = f / (1 << 20)
			}
		}
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", env.ManagerPID)); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
				rssMiB = kb / 1024
			}
		}
	}
	return heapMiB, rssMiB
}

func waitFor(ctx context.Context, d time.Duration, cond func() (bool, error)) error {
	deadline := time.Now().Add(d)
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s", d)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// methods is the sorted union of the methods any mode called.
func methods(byMode map[string]result, of func(result) map[string]float64) []string {
	var out []string
	for _, r := range byMode {
		for m := range of(r) {
			if !slices.Contains(out, m) {
				out = append(out, m)
			}
		}
	}
	slices.Sort(out)
	return out
}

// render prints one table per N with both modes side by side and the ratio baseline/subject.
func render(rs []result, modes []string, delay, window time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\nProvisioning delay %s; steady state measured over %s; figures per minute are scaled from it.\n", delay, window)
	byN := map[int]map[string]result{}
	var ns []int
	for _, r := range rs {
		if byN[r.N] == nil {
			byN[r.N] = map[string]result{}
			ns = append(ns, r.N)
		}
		byN[r.N][r.Mode] = r
	}
	ms := func(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond)) }
	for _, n := range ns {
		fmt.Fprintf(&b, "\n### N = %d\n\n| metric |", n)
		for _, m := range modes {
			fmt.Fprintf(&b, " %s |", m)
		}
		if len(modes) == 2 {
			fmt.Fprintf(&b, " %s / %s |", modes[1], modes[0])
		}
		b.WriteString("\n|---|")
		for range modes {
			b.WriteString("---|")
		}
		if len(modes) == 2 {
			b.WriteString("---|")
		}
		b.WriteString("\n")
		row := func(name string, f func(result) float64, format func(float64) string) {
			fmt.Fprintf(&b, "| %s |", name)
			var vals []float64
			for _, m := range modes {
				v := f(byN[n][m])
				vals = append(vals, v)
				fmt.Fprintf(&b, " %s |", format(v))
			}
			if len(vals) == 2 {
				switch {
				case vals[0] == 0 && vals[1] == 0:
					b.WriteString(" = |")
				case vals[0] == 0:
					b.WriteString(" ∞ |")
				default:
					fmt.Fprintf(&b, " %.1fx |", vals[1]/vals[0])
				}
			}
			b.WriteString("\n")
		}
		dur := func(v float64) string { return ms(time.Duration(v)) }
		num := func(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }
		row("Ready lag p50 (Ready − apply − delay)", func(r result) float64 { return float64(r.LagP50) }, dur)
		row("Ready lag p99", func(r result) float64 { return float64(r.LagP99) }, dur)
		row("Ready after the gateway's READY, p50", func(r result) float64 { return float64(r.AfterGatewayP50) }, dur)
		row("Ready after the gateway's READY, p99", func(r result) float64 { return float64(r.AfterGatewayP99) }, dur)
		row("… worst, of those READY once all were applied", func(r result) float64 { return float64(r.AfterGatewayLateMax) }, dur)
		row("… how many were READY once all were applied", func(r result) float64 { return float64(r.AfterGatewayLateN) }, num)
		row("apply → all Ready", func(r result) float64 { return float64(r.AllReady) }, dur)
		row("gateway RPCs per sandbox to converge", func(r result) float64 { return r.RPCsPerSandbox }, num)
		for _, m := range methods(byN[n], func(r result) map[string]float64 { return r.ConvergeByMethod }) {
			row("… "+m, func(r result) float64 { return r.ConvergeByMethod[m] }, num)
		}
		row("API writes per sandbox to converge (finalizer + status)", func(r result) float64 { return r.WritesPerSandbox }, num)
		row("steady: gateway read RPCs / min", func(r result) float64 { return r.SteadyReadsPerMin }, num)
		for _, m := range methods(byN[n], func(r result) map[string]float64 { return r.SteadyByMethod }) {
			row("… "+m+" / min", func(r result) float64 { return r.SteadyByMethod[m] }, num)
		}
		row("steady: mutating gateway RPCs / min", func(r result) float64 { return r.SteadyMutatingPerMin }, num)
		row("steady: API writes / min", func(r result) float64 { return r.SteadyWritesPerMin }, num)
		row("operator Go heap in use (MiB)", func(r result) float64 { return r.HeapMiB }, num)
		row("operator RSS (MiB)", func(r result) float64 { return r.RSSMiB }, num)
		for _, p := range cpuProcs {
			row("CPU s to converge: "+p, func(r result) float64 { return r.CPU[p].Seconds() }, num)
		}
		row("… all four, share of 2 cores", func(r result) float64 {
			var sum time.Duration
			for _, d := range r.CPU {
				sum += d
			}
			return 100 * sum.Seconds() / (2 * r.AllReady.Seconds())
		}, func(v float64) string { return fmt.Sprintf("%.0f %%", v) })
	}
	return b.String()
}
