package controller

import (
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/openshell-operator/openshell-operator/internal/gatewaysim"
)

// fallbackFixture is an observer with one stream over a simulator holding ten managed
// sandboxes that stay PROVISIONING, all awaited: nine have no stream.
func fallbackFixture(t *testing.T, fallback time.Duration) (*gatewaysim.Simulator, *observer, int) {
	t.Helper()
	sim, cl, ctx := simAndClient(t, gatewaysim.Options{ProvisioningDelay: time.Hour})
	ids := createManaged(ctx, t, cl, numbered("sb-", "%d", 10)...)
	events := make(chan event.GenericEvent, 100)
	go func() {
		for range events { // drained only
		}
	}()
	l := newObserver("gw", cl, ObserverOptions{Resync: time.Hour, PageSize: 100, MaxStreams: 1, FallbackInterval: fallback}, events)
	go l.run()
	t.Cleanup(l.stop)
	for deadline := time.Now().Add(10 * time.Second); !l.isSynced(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("observer never listed")
		}
	}
	lists := sim.CallCount("ListSandboxes")
	for name, id := range ids {
		l.await("ns", name, id)
	}
	return sim, l, lists
}

// TestFallbackListsAreSpacedNotPerPoke: nine awaits over the stream bound wake the loop, but
// it lists no sooner than the fallback interval after the last list (it used to list once
// per poke: a list storm of N/page-size pages each during a burst).
func TestFallbackListsAreSpacedNotPerPoke(t *testing.T) {
	sim, _, lists := fallbackFixture(t, time.Hour)
	time.Sleep(300 * time.Millisecond)
	if got := sim.CallCount("ListSandboxes"); got != lists {
		t.Fatalf("ListSandboxes calls went from %d to %d within the fallback interval", lists, got)
	}
}

// TestFallbackListFollowsUnstreamedSandboxes: the wake still shortens the one-hour resync to
// the fallback interval while awaited sandboxes have no stream.
func TestFallbackListFollowsUnstreamedSandboxes(t *testing.T) {
	sim, _, lists := fallbackFixture(t, 20*time.Millisecond)
	for deadline := time.Now().Add(10 * time.Second); sim.CallCount("ListSandboxes") < lists+2; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no fallback list in 10s (ListSandboxes %d, was %d)", sim.CallCount("ListSandboxes"), lists)
		}
	}
}
