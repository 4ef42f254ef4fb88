package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
	"github.com/openshell-operator/openshell-operator/internal/devenv"
)

// fairSingles is how many single sandboxes are measured idle and during the burst: an odd
// number, for a median that is one of them, and enough of them that one slow sample does
// not move it.
const fairSingles = 9

// fair is the fairness row: the Ready lag of single sandboxes in one namespace on an idle
// operator and while another namespace creates a burst at once.
type fair struct {
	Burst      int
	Mode       string
	Idle, Busy []time.Duration
	// IdleSplit and BusySplit divide each single's lag at the gateway: from its apply to its
	// gateway create (the operator's pickup, finalizer write and create call), and from the
	// gateway's READY to Ready (observation and the status write).
	IdleSplit, BusySplit []split
	BurstReady           time.Duration
	Delay                time.Duration
	// FloorIdle and FloorBusy are the API-server floor's probes (see floor), idle and taken
	// between the busy singles.
	FloorIdle, FloorBusy []time.Duration
	// SandboxFloorIdle and SandboxFloorBusy are the same probes of a kind with the Sandbox
	// CRD's schema and validation rules, carrying a Ready single's spec and status: what the
	// API server adds for the Sandbox object itself.
	SandboxFloorIdle, SandboxFloorBusy []time.Duration
}

// split is one single sandbox's lag divided at the gateway.
type split struct{ ToCreate, AfterReady time.Duration }

// fairness measures, in one environment: fairSingles sandboxes created one after the other in
// namespace "other" on an idle operator, then a burst in namespace "bulk" with fairSingles
// singles created in "other" one second apart once the burst's writes are flowing, each
// followed by a probe of the API-server floor in namespace "floor".
func fairness(ctx context.Context, root string, bins devenv.Binaries, assets, mode string, extra []string, delay, timeout time.Duration, burst int) (fair, error) {
	f := fair{Burst: burst, Mode: mode, Delay: delay}
	b, err := startBench(ctx, root, bins, assets, mode, extra, delay, "bulk", "other", "floor", "sandbox-floor")
	if err != nil {
		return f, err
	}
	defer b.stop()
	floors, err := startFloors(ctx, b.env.Config, root)
	if err != nil {
		return f, err
	}
	// The singles' owner is another user than the burst's: its own client and connection.
	oc, err := b.client()
	if err != nil {
		return f, err
	}
	clients := map[string]client.WithWatch{"bulk": b.c, "other": oc}
	t := &tracker{created: map[string]time.Time{}, ready: map[string]time.Time{}}
	defer t.followEach(ctx, clients)()
	single := func(name string) error {
		sb := &v1alpha1.Sandbox{ObjectMeta: metav1.ObjectMeta{Namespace: "other", Name: name}, Spec: v1alpha1.SandboxSpec{
			Image: "busybox", UpdateStrategy: v1alpha1.UpdateStrategyRecreate, DeletionPolicy: v1alpha1.DeletionPolicyDelete,
		}}
		if err := oc.Create(ctx, sb); err != nil {
			return err
		}
		t.mu.Lock()
		t.created[name] = time.Now()
		t.mu.Unlock()
		return nil
	}
	for i := range fairSingles {
		name := fmt.Sprintf("idle-%d", i)
		if err := single(name); err != nil {
			return f, err
		}
		if err := waitFor(ctx, timeout, func() (bool, error) { return t.isReady(name), nil }); err != nil {
			return f, fmt.Errorf("%s not Ready: %w", name, err)
		}
		f.Idle = append(f.Idle, t.lag(name, delay))
	}
	// The sandbox floor's probes carry a Ready single's spec and status.
	if err := floors[1].carry(ctx, b.c, client.ObjectKey{Namespace: "other", Name: "idle-0"}); err != nil {
		return f, err
	}
	idle, err := eachFloor(floors, func(f *floor) ([]time.Duration, error) { return f.probeEach(ctx, timeout, "idle", fairSingles) })
	if err != nil {
		return f, err
	}
	f.FloorIdle, f.SandboxFloorIdle = idle[0], idle[1]

	start := time.Now()
	bulk := make(chan error, 1)
	go func() { bulk <- createFleet(ctx, b.c, t, "bulk", "bulk", burst) }()
	// The singles go in once the burst is being written, not before it.
	if err := waitFor(ctx, time.Minute, func() (bool, error) { return t.createdCount() >= burst/10, nil }); err != nil {
		return f, err
	}
	for i := range fairSingles {
		if err := single(fmt.Sprintf("busy-%d", i)); err != nil {
			return f, err
		}
		// A third of a second apart, off each other's writes.
		for _, p := range floors {
			time.Sleep(time.Second / 3)
			if err := p.probe(ctx, fmt.Sprintf("busy-%d", i)); err != nil {
				return f, err
			}
		}
		time.Sleep(time.Second / 3)
	}
	if err := <-bulk; err != nil {
		return f, err
	}
	if err := waitFor(ctx, timeout, func() (bool, error) { return t.readyCount() == burst+2*fairSingles, nil }); err != nil {
		return f, fmt.Errorf("%d of %d Ready: %w", t.readyCount(), burst+2*fairSingles, err)
	}
	f.BurstReady = time.Since(start)
	for i := range fairSingles {
		f.Busy = append(f.Busy, t.lag(fmt.Sprintf("busy-%d", i), delay))
	}
	busy, err := eachFloor(floors, func(f *floor) ([]time.Duration, error) { return f.lags(ctx, timeout, "busy", fairSingles) })
	if err != nil {
		return f, err
	}
	f.FloorBusy, f.SandboxFloorBusy = busy[0], busy[1]
	// Read last: these gateway calls are the bench's, not the operator's.
	gw, err := gatewayReady(ctx, b.env, "other", delay)
	if err != nil {
		return f, fmt.Errorf("gateway READY times: %w", err)
	}
	f.IdleSplit, f.BusySplit = t.splits("idle", gw, delay), t.splits("busy", gw, delay)
	return f, nil
}

// followEach follows each namespace of clients with its client, and returns the function that
// stops following. One watch per namespace, as each namespace's owner would watch its own: in
// one watch of both, each single's Ready would queue behind the burst's events, and the bench
// would measure its own decoding of the burst.
func (t *tracker) followEach(ctx context.Context, clients map[string]client.WithWatch) (stop func()) {
	watchCtx, stopWatch := context.WithCancel(ctx)
	followed := make(chan error, len(clients))
	for ns, c := range clients {
		go func() { followed <- t.follow(watchCtx, c, ns) }()
	}
	return func() {
		stopWatch()
		for range clients {
			if err := <-followed; err != nil && !errors.Is(err, context.Canceled) {
				fmt.Fprintf(os.Stderr, "bench: follow sandboxes: %v\n", err)
			}
		}
	}
}

// splits divides the lags of the singles prefix-0 … at the gateway READY times gw.
func (t *tracker) splits(prefix string, gw map[string]time.Time, delay time.Duration) []split {
	var out []split
	for i := range fairSingles {
		name := fmt.Sprintf("%s-%d", prefix, i)
		out = append(out, t.split(name, gw[name], delay))
	}
	return out
}

// split divides one sandbox's lag at the gateway's READY (its gateway create plus delay).
func (t *tracker) split(name string, gatewayReady time.Time, delay time.Duration) split {
	t.mu.Lock()
	defer t.mu.Unlock()
	return split{
		ToCreate:   max(gatewayReady.Add(-delay).Sub(t.created[name]), 0),
		AfterReady: max(t.ready[name].Sub(gatewayReady), 0),
	}
}

func (t *tracker) isReady(name string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, ok := t.ready[name]
	return ok
}

func (t *tracker) createdCount() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.created)
}

// lag is one sandbox's Ready minus create minus the provisioning delay.
func (t *tracker) lag(name string, delay time.Duration) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	return max(t.ready[name].Sub(t.created[name])-delay, 0)
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func renderFairness(f fair) string {
	var b strings.Builder
	ms := func(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond)) }
	list := func(ds []time.Duration) string {
		var parts []string
		for _, d := range ds {
			parts = append(parts, fmt.Sprintf("%.0f", float64(d)/float64(time.Millisecond)))
		}
		return strings.Join(parts, ", ")
	}
	fmt.Fprintf(&b, "\n### Fairness (mode %s)\n\n", f.Mode)
	fmt.Fprintf(&b, "One namespace creates %d sandboxes at once; %d single sandboxes in another namespace, one second apart, once the burst is being written. Lag = Ready − apply − delay.\n\n", f.Burst, fairSingles)
	b.WriteString("| metric | idle operator | during the burst | burst / idle |\n|---|---|---|---|\n")
	fmt.Fprintf(&b, "| single sandbox Ready lag, median | %s | %s | %.1fx |\n", ms(median(f.Idle)), ms(median(f.Busy)), float64(median(f.Busy))/float64(max(median(f.Idle), time.Millisecond)))
	fmt.Fprintf(&b, "| … max | %s | %s | %.1fx |\n", ms(slices.Max(f.Idle)), ms(slices.Max(f.Busy)), float64(slices.Max(f.Busy))/float64(max(slices.Max(f.Idle), time.Millisecond)))
	idle, busy := median(f.Idle)+f.Delay, median(f.Busy)+f.Delay
	fmt.Fprintf(&b, "| single sandbox apply → Ready, median (the %s delay included) | %s | %s | %.1fx |\n", f.Delay, ms(idle), ms(busy), float64(busy)/float64(idle))
	part := func(ss []split, of func(split) time.Duration) time.Duration {
		var ds []time.Duration
		for _, s := range ss {
			ds = append(ds, of(s))
		}
		return median(ds)
	}
	toCreate := func(s split) time.Duration { return s.ToCreate }
	afterReady := func(s split) time.Duration { return s.AfterReady }
	ic, bc := part(f.IdleSplit, toCreate), part(f.BusySplit, toCreate)
	ia, ba := part(f.IdleSplit, afterReady), part(f.BusySplit, afterReady)
	fmt.Fprintf(&b, "| … of it: apply → gateway create, median | %s | %s | %.1fx |\n", ms(ic), ms(bc), float64(bc)/float64(max(ic, time.Millisecond)))
	fmt.Fprintf(&b, "| … of it: gateway READY → Ready, median | %s | %s | %.1fx |\n", ms(ia), ms(ba), float64(ba)/float64(max(ia, time.Millisecond)))
	fmt.Fprintf(&b, "| each (ms) | %s | %s | |\n", list(f.Idle), list(f.Busy))
	fmt.Fprintf(&b, "| burst: first create → all Ready | | %s | |\n", ms(f.BurstReady))
	fi, fb := median(f.FloorIdle), median(f.FloorBusy)
	fmt.Fprintf(&b, "| API-server floor: a bare client's watch pickup, finalizer write and status write of a resource the operator does not watch, seen by its owner, median | %s | %s | %.1fx |\n", ms(fi), ms(fb), float64(fb)/float64(max(fi, time.Millisecond)))
	fmt.Fprintf(&b, "| … each (ms) | %s | %s | |\n", list(f.FloorIdle), list(f.FloorBusy))
	fmt.Fprintf(&b, "| floor during the burst / the single's idle lag | | %.1fx | |\n", float64(fb)/float64(max(median(f.Idle), time.Millisecond)))
	si, sb := median(f.SandboxFloorIdle), median(f.SandboxFloorBusy)
	fmt.Fprintf(&b, "| Sandbox floor: the same with the Sandbox CRD's schema and a Ready single's spec and status, median | %s | %s | %.1fx |\n", ms(si), ms(sb), float64(sb)/float64(max(si, time.Millisecond)))
	fmt.Fprintf(&b, "| … each (ms) | %s | %s | |\n", list(f.SandboxFloorIdle), list(f.SandboxFloorBusy))
	fmt.Fprintf(&b, "| Sandbox floor during the burst / the single's idle lag | | %.1fx | |\n", float64(sb)/float64(max(median(f.Idle), time.Millisecond)))
	return b.String()
}
