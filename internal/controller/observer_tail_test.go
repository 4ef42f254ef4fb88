package controller

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/controller-runtime/pkg/event"

	openshellv1 "github.com/openshell-operator/openshell-operator/gen/openshell/v1"
	"github.com/openshell-operator/openshell-operator/internal/gateway"
	"github.com/openshell-operator/openshell-operator/internal/gatewaysim"
)

// tailFixture is an observer (not running: the test lists by hand) over a simulator holding
// 20 managed sandboxes sb-00 … sb-19 that stay PROVISIONING, listed once with pages of 4.
// The newest four are awaited with one stream, so three have none.
func tailFixture(t *testing.T) (*gatewaysim.Simulator, *gateway.Client, context.Context, *observer) {
	t.Helper()
	sim, cl, ctx := simAndClient(t, gatewaysim.Options{ProvisioningDelay: time.Hour})
	ids := createManaged(ctx, t, cl, numbered("sb-", "%02d", 20)...)
	events := make(chan event.GenericEvent, 1000)
	l := newObserver("gw", cl, ObserverOptions{Resync: time.Hour, PageSize: 4, MaxStreams: 1}, events)
	t.Cleanup(l.stop)
	if err := l.list(time.Now()); err != nil {
		t.Fatal(err)
	}
	for i := 16; i < 20; i++ {
		name := fmt.Sprintf("sb-%02d", i)
		l.await("ns", name, ids[name])
	}
	return sim, cl, ctx, l
}

// TestTailListReadsOnlyFromTheOldestUnstreamedSandbox: the fallback list reads the
// gateway's order from (half a page before) the oldest awaited sandbox without a stream,
// two pages here where a full list reads six, and still sees its changes.
func TestTailListReadsOnlyFromTheOldestUnstreamedSandbox(t *testing.T) {
	sim, _, _, l := tailFixture(t)
	before := sim.CallCount("ListSandboxes")
	if err := l.list(time.Now()); err != nil {
		t.Fatal(err)
	}
	fullPages := sim.CallCount("ListSandboxes") - before

	if !sim.ForcePhase("sb-19", openshellv1.SandboxPhase_SANDBOX_PHASE_READY) {
		t.Fatal("sb-19 missing on the simulator")
	}
	before = sim.CallCount("ListSandboxes")
	full, err := l.listTail(time.Now())
	if err != nil || full {
		t.Fatalf("listTail: full %v, error %v; want a tail list", full, err)
	}
	if got := sim.CallCount("ListSandboxes") - before; got != 2 || fullPages != 6 {
		t.Fatalf("a tail list read %d pages, a full list %d; want 2 and 6", got, fullPages)
	}
	if sb, _ := l.lookup("sb-19"); sb.GetStatus().GetPhase() != openshellv1.SandboxPhase_SANDBOX_PHASE_READY {
		t.Fatalf("the tail list did not bring sb-19's READY into the view: %v", sb.GetStatus().GetPhase())
	}
}

// TestTailListFallsBackToAFullListWhenTheOrderMoved: deletions before the awaited sandboxes
// shift them to lower offsets than the last list's; the tail list notices that it started
// past the oldest one and lists everything instead of missing it.
func TestTailListFallsBackToAFullListWhenTheOrderMoved(t *testing.T) {
	sim, cl, ctx, l := tailFixture(t)
	for i := range 6 {
		if _, err := cl.Sandboxes.Delete(ctx, fmt.Sprintf("sb-%02d", i)); err != nil {
			t.Fatal(err)
		}
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		all, err := cl.Sandboxes.ListAll(ctx, managedSelector, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(all) == 14 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d sandboxes left, want 14", len(all))
		}
	}
	if !sim.ForcePhase("sb-18", openshellv1.SandboxPhase_SANDBOX_PHASE_READY) {
		t.Fatal("sb-18 missing on the simulator")
	}
	full, err := l.listTail(time.Now())
	if err != nil || !full {
		t.Fatalf("listTail: full %v, error %v; want the full list", full, err)
	}
	if sb, _ := l.lookup("sb-18"); sb.GetStatus().GetPhase() != openshellv1.SandboxPhase_SANDBOX_PHASE_READY {
		t.Fatalf("sb-18's READY was missed: %v", sb.GetStatus().GetPhase())
	}
	if sb, _ := l.lookup("sb-00"); sb != nil {
		t.Fatal("the deleted sb-00 is still in the view")
	}
}

// TestMergeTail: a tail list replaces what it listed, drops what its range no longer holds,
// and leaves alone what lies before it or after its last sandbox.
func TestMergeTail(t *testing.T) {
	at := listedAt
	l := newObserver("gw", nil, ObserverOptions{}, nil)
	l.synced = true
	view := []*openshellv1.Sandbox{at("a", 1, 1), at("b", 2, 1), at("c", 3, 1), at("d", 4, 1), at("e", 5, 1)}
	for _, sb := range view {
		l.view[sb.GetMetadata().GetName()] = sb
	}
	l.order = keysOf(view)
	l.waiting["c"] = awaited{id: "c", namespace: "ns"}

	changed := l.mergeTail([]*openshellv1.Sandbox{at("b", 2, 2), at("d", 4, 1)}, l.seenSeq)

	var names []string
	for _, sb := range changed {
		names = append(names, sb.GetMetadata().GetName())
	}
	slices.Sort(names)
	if diff := cmp.Diff([]string{"b", "c"}, names); diff != "" {
		t.Errorf("changed (-want +got):\n%s", diff)
	}
	for name, want := range map[string]bool{"a": true, "b": true, "c": false, "d": true, "e": true} {
		if sb, _ := l.lookup(name); (sb != nil) != want {
			t.Errorf("%s in the view: %v, want %v", name, sb != nil, want)
		}
	}
	if sb, _ := l.lookup("b"); sb.GetMetadata().GetResourceVersion() != 2 {
		t.Errorf("b not replaced by the listed version: %v", sb)
	}
	if _, ok := l.waiting["c"]; ok {
		t.Error("c is gone from the gateway and unstreamed but still awaited")
	}
	want := []listKey{{1, "a"}, {2, "b"}, {4, "d"}}
	if diff := cmp.Diff(want, l.order, cmp.AllowUnexported(listKey{})); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
}

// listedAt is a listed sandbox created at ms with resource version rv.
func listedAt(name string, ms int64, rv uint64) *openshellv1.Sandbox {
	sb := observed(name, rv)
	sb.Metadata.CreatedAtMs = ms
	return sb
}

// TestListsKeepWhatWasSeenWhileTheyRan: a sandbox a write showed after a list started is not
// gone because the list missed it (created after its page was read), and a newer state (a
// stream's READY) is not replaced by the older page; what the list misses and nothing showed
// since is gone, and what was seen before the list started, newer or not, is replaced by it. The full list used to replace the view wholesale: a stream's READY that
// came while the list ran was undone, and the Sandbox waited for the 30 s safety requeue.
func TestListsKeepWhatWasSeenWhileTheyRan(t *testing.T) {
	merges := map[string]func(l *observer, since uint64) []*openshellv1.Sandbox{
		"full list": func(l *observer, since uint64) []*openshellv1.Sandbox {
			changed, _ := l.mergeFull([]*openshellv1.Sandbox{listedAt("old", 1, 1), listedAt("newest", 5, 1)}, since)
			return changed
		},
		"tail list": func(l *observer, since uint64) []*openshellv1.Sandbox {
			return l.mergeTail([]*openshellv1.Sandbox{listedAt("old", 1, 1), listedAt("newest", 5, 1)}, since)
		},
	}
	for kind, merge := range merges {
		t.Run(kind, func(t *testing.T) {
			l := newObserver("gw", nil, ObserverOptions{}, nil)
			l.synced = true
			for _, sb := range []*openshellv1.Sandbox{listedAt("old", 1, 1), listedAt("gone", 2, 1), listedAt("newest", 5, 1)} {
				l.record(sb)
			}
			l.order = keysOf([]*openshellv1.Sandbox{listedAt("old", 1, 1), listedAt("gone", 2, 1), listedAt("newest", 5, 1)})
			l.waiting["gone"] = awaited{id: "gone", namespace: "ns"}
			l.record(listedAt("newest", 5, 7)) // newer than the list, but seen before it started
			since := l.seenMark()
			l.record(listedAt("late", 3, 1))
			l.waiting["late"] = awaited{id: "late", namespace: "ns"}
			l.record(listedAt("old", 1, 2))

			var names []string
			for _, sb := range merge(l, since) {
				names = append(names, sb.GetMetadata().GetName())
			}
			slices.Sort(names)
			if diff := cmp.Diff([]string{"gone", "newest"}, names); diff != "" {
				t.Errorf("changed (-want +got):\n%s", diff)
			}
			if sb, _ := l.lookup("late"); sb == nil {
				t.Error("late (recorded after the list started) was dropped")
			}
			if sb, _ := l.lookup("old"); sb.GetMetadata().GetResourceVersion() != 2 {
				t.Errorf("old went back to the listed version: %v", sb)
			}
			if sb, _ := l.lookup("gone"); sb != nil {
				t.Error("gone is still in the view")
			}
			if sb, _ := l.lookup("newest"); sb.GetMetadata().GetResourceVersion() != 1 {
				t.Errorf("the list did not reset newest, seen before it started: %v", sb)
			}
			if _, ok := l.waiting["late"]; !ok {
				t.Error("late is no longer followed")
			}
			if _, ok := l.waiting["gone"]; ok {
				t.Error("gone is still followed")
			}
		})
	}
}
