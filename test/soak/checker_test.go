//go:build soak

package soak

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
	datamodelv1 "github.com/openshell-operator/openshell-operator/gen/openshell/datamodel/v1"
	openshellv1 "github.com/openshell-operator/openshell-operator/gen/openshell/v1"
	"github.com/openshell-operator/openshell-operator/internal/controller"
)

// The checker must be able to fail: each invariant is shown a state that breaks it, and a
// near miss that does not.

func newCheckHarness() *harness {
	return &harness{start: time.Now(), seenViol: map[string]bool{}, live: map[string]types.UID{}, gwOf: map[types.UID]int{},
		allow: map[types.UID][]time.Time{}, pendingOnDelete: map[string]bool{}, orphans: map[types.UID]*orphan{}, deleting: map[types.UID]int{},
		goneSince: map[types.UID]time.Time{}, lastID: map[types.UID]string{}, lie: map[types.UID]time.Duration{},
		lieSince: map[types.UID]time.Time{}, executed: map[Kind]int{}, quiet: true}
}

func gwSandbox(ns, name, uid, id string, phase openshellv1.SandboxPhase) *openshellv1.Sandbox {
	return &openshellv1.Sandbox{
		Metadata: &datamodelv1.ObjectMeta{Name: controller.GatewayName(ns, name), Id: id, Labels: map[string]string{
			v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue, v1alpha1.LabelNamespace: ns, v1alpha1.LabelName: name, v1alpha1.LabelUID: uid}},
		Status: &openshellv1.SandboxStatus{Phase: phase},
	}
}

func readyCR(ns, name, uid, id string) v1alpha1.Sandbox {
	cr := v1alpha1.Sandbox{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(uid), Generation: 1},
		Spec: v1alpha1.SandboxSpec{GatewayRef: v1alpha1.GatewayReference{Name: Gateways[0]}}}
	cr.Status.ObservedGeneration = 1
	cr.Status.SandboxID, cr.Status.GatewayName = id, controller.GatewayName(ns, name)
	cr.Status.Conditions = []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Ready"}}
	return cr
}

func snap(at time.Time, calm bool, gw []*openshellv1.Sandbox, crs ...v1alpha1.Sandbox) *snapshot {
	return &snapshot{at: at, readable: []bool{true, false}, calm: []bool{calm, false}, gw: [][]*openshellv1.Sandbox{gw, nil},
		providers: [][]providerSeen{nil, nil}, crs: crs}
}

func wantViolation(t *testing.T, h *harness, substr string) {
	t.Helper()
	for _, v := range h.violations {
		if strings.Contains(v, substr) {
			return
		}
	}
	t.Fatalf("no violation containing %q; got %q", substr, h.violations)
}

func wantNone(t *testing.T, h *harness) {
	t.Helper()
	if len(h.violations) > 0 {
		t.Fatalf("unexpected violations: %q", h.violations)
	}
}

const ready = openshellv1.SandboxPhase_SANDBOX_PHASE_READY

func TestCheckerCatchesDuplicates(t *testing.T) {
	h := newCheckHarness()
	cr := readyCR("ns", "a", "u1", "id1")
	h.checkSafety(snap(time.Now(), true, []*openshellv1.Sandbox{gwSandbox("ns", "a", "u1", "id1", ready), gwSandbox("ns", "a-copy", "u1", "id2", ready)}, cr), nil)
	wantViolation(t, h, "2 gateway sandboxes")
}

func TestCheckerCatchesLeaksButNotDeletingOrOrphans(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		name   string
		phase  openshellv1.SandboxPhase
		orphan bool
		leak   bool
	}{{"ready after the resource is gone", ready, false, true}, {"deleting", openshellv1.SandboxPhase_SANDBOX_PHASE_DELETING, false, false}, {"orphaned on purpose", ready, true, false}} {
		t.Run(tc.name, func(t *testing.T) {
			h := newCheckHarness()
			h.deleting["u1"] = 0
			h.goneSince["u1"] = now.Add(-time.Second)
			if tc.orphan {
				delete(h.deleting, "u1")
				h.orphans["u1"] = &orphan{}
			}
			h.checkSafety(snap(now, true, []*openshellv1.Sandbox{gwSandbox("ns", "a", "u1", "id1", tc.phase)}), nil)
			if tc.leak {
				wantViolation(t, h, "leak")
			} else {
				wantNone(t, h)
			}
		})
	}
}

func TestCheckerCatchesUnexplainedRecreation(t *testing.T) {
	cr := readyCR("ns", "a", "u1", "id2")
	h := newCheckHarness()
	h.lastID["u1"] = "id1"
	h.checkSafety(snap(time.Now(), true, []*openshellv1.Sandbox{gwSandbox("ns", "a", "u1", "id2", ready)}, cr), nil)
	wantViolation(t, h, "recreated")

	h = newCheckHarness()
	h.lastID["u1"], h.allow["u1"] = "id1", []time.Time{time.Now()}
	h.checkSafety(snap(time.Now(), true, []*openshellv1.Sandbox{gwSandbox("ns", "a", "u1", "id2", ready)}, cr), nil)
	wantNone(t, h)
	if len(h.allow["u1"]) != 0 {
		t.Fatalf("allowance not consumed: %v", h.allow["u1"])
	}
}

// TestCheckerSpendsGrantsOnceConverged: two edits absorbed by one recreate leave a grant; once
// the resource is seen converged, that grant cannot excuse a later recreation.
func TestCheckerSpendsGrantsOnceConverged(t *testing.T) {
	cr := readyCR("ns", "a", "u1", "id2")
	h := newCheckHarness()
	t0 := time.Now()
	h.lastID["u1"], h.allow["u1"] = "id1", []time.Time{t0.Add(-2 * time.Second), t0.Add(-time.Second)}
	h.checkSafety(snap(t0, true, []*openshellv1.Sandbox{gwSandbox("ns", "a", "u1", "id2", ready)}, cr), nil)
	h.checkSafety(snap(t0.Add(2*time.Second), true, []*openshellv1.Sandbox{gwSandbox("ns", "a", "u1", "id2", ready)}, cr), nil)
	wantNone(t, h)
	cr3 := readyCR("ns", "a", "u1", "id3")
	h.checkSafety(snap(t0.Add(4*time.Second), true, []*openshellv1.Sandbox{gwSandbox("ns", "a", "u1", "id3", ready)}, cr3), nil)
	wantViolation(t, h, "recreated")
}

func TestCheckerCatchesLastingLiesOnly(t *testing.T) {
	cr := readyCR("ns", "a", "u1", "id1")
	erroring := []*openshellv1.Sandbox{gwSandbox("ns", "a", "u1", "id1", openshellv1.SandboxPhase_SANDBOX_PHASE_ERROR)}
	t0 := time.Now()
	for _, tc := range []struct {
		name string
		gap  time.Duration
		calm bool
		lie  bool
	}{{"longer than the bound on a calm gateway", lieBound + time.Second, true, true}, {"within the bound", lieBound / 2, true, false}, {"while the gateway is disturbed", 2 * lieBound, false, false}} {
		t.Run(tc.name, func(t *testing.T) {
			h := newCheckHarness()
			prev := snap(t0, tc.calm, erroring, cr)
			h.checkSafety(prev, nil)
			h.checkSafety(snap(t0.Add(tc.gap), tc.calm, erroring, cr), prev)
			if tc.lie {
				wantViolation(t, h, "says Ready=True")
			} else {
				wantNone(t, h)
			}
		})
	}
}

func TestCallBoundAllowsBackoffNotHotLoops(t *testing.T) {
	const objects, window = 20, 10 * time.Second
	bound := callBound(objects, window)
	// A reconcile loop without backoff: every object every 100 ms, one call each.
	hot := objects * int(window/(100*time.Millisecond))
	// Exponential backoff from 500 ms: 500ms, 1s, 2s, 4s, 8s -> 5 attempts, 2 calls each.
	backoff := objects * 5 * 2
	if backoff > bound || hot <= bound {
		t.Fatalf("bound %d: backoff %d must fit, a hot loop %d must not", bound, backoff, hot)
	}
}
