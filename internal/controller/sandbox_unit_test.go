package controller

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
	datamodelv1 "github.com/openshell-operator/openshell-operator/gen/openshell/datamodel/v1"
	openshellv1 "github.com/openshell-operator/openshell-operator/gen/openshell/v1"
)

const unitTransitional = 300 * time.Millisecond

func unitSandbox(mut ...func(*v1alpha1.Sandbox)) *v1alpha1.Sandbox {
	sb := &v1alpha1.Sandbox{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "agent", UID: "uid-sb", Generation: 1, Finalizers: []string{v1alpha1.Finalizer}},
		Spec:       v1alpha1.SandboxSpec{Image: "example.com/agent:1"},
	}
	for _, m := range mut {
		m(sb)
	}
	return sb
}

func sandboxKernel(c client.Client, conns gatewayClients, ev *eventLog) (*kernel[*v1alpha1.Sandbox], *SandboxReconciler) {
	r := &SandboxReconciler{Client: c, Gateways: conns, Recorder: ev, Transitional: unitTransitional, Resync: time.Minute, View: pollView{}}
	return newKernel(c, kindSandbox, func() *v1alpha1.Sandbox { return &v1alpha1.Sandbox{} }, kindSteps[*v1alpha1.Sandbox](r),
		ev, true, Backoff{}, r.transitional()), r
}

// sandboxResult is what a reconcile left behind, compared whole.
type sandboxResult struct {
	Conditions []string
	Phase      v1alpha1.SandboxPhase
	ID         string
	Observed   int64
	Policy     *v1alpha1.SandboxPolicyState
	Requeue    time.Duration
	Events     []string
}

func resultOf(sb *v1alpha1.Sandbox, requeue time.Duration, ev *eventLog) sandboxResult {
	return sandboxResult{Conditions: conditionsOf(sb.Status.Conditions), Phase: sb.Status.Phase, ID: sb.Status.SandboxID,
		Observed: sb.Status.ObservedGeneration, Policy: sb.Status.Policy, Requeue: requeue, Events: ev.reasons()}
}

func TestSandboxBranches(t *testing.T) {
	name := GatewayName("team", "agent")
	ready := func(g *fakeGateway) {
		sb := &openshellv1.Sandbox{Metadata: &datamodelv1.ObjectMeta{Name: name, Id: "id-7", Labels: OwnershipLabels(unitSandbox())},
			Spec:   &openshellv1.SandboxSpec{Template: &openshellv1.SandboxTemplate{Image: "example.com/agent:1"}},
			Status: &openshellv1.SandboxStatus{Phase: openshellv1.SandboxPhase_SANDBOX_PHASE_READY}}
		g.sandboxes[name] = sb
	}
	withID := func(sb *v1alpha1.Sandbox) { sb.Status.SandboxID = "id-7" }
	tests := []struct {
		name    string
		sandbox *v1alpha1.Sandbox
		objs    []client.Object
		prepare func(*fakeConnections, *fakeGateway)
		want    sandboxResult
		calls   map[string]int
	}{
		{name: "creates the gateway sandbox: Provisioning, generation applied",
			sandbox: unitSandbox(),
			want: sandboxResult{Conditions: []string{"Ready=False/Provisioning: the sandbox is provisioning", "Reconciling=True/Provisioning: the sandbox is provisioning"},
				Phase: v1alpha1.SandboxPhaseProvisioning, ID: "id-1", Observed: 1, Requeue: unitTransitional, Events: []string{"Normal/Created"}},
			calls: map[string]int{"Sandboxes.Get": 1, "Sandboxes.Create": 1}},
		{name: "a ready gateway sandbox in sync is Ready with no write",
			sandbox: unitSandbox(withID), prepare: func(_ *fakeConnections, g *fakeGateway) { ready(g) },
			want: sandboxResult{Conditions: []string{"Ready=True/Ready: the sandbox is ready"}, Phase: v1alpha1.SandboxPhaseReady, ID: "id-7",
				Observed: 1, Requeue: time.Minute, Events: []string{}},
			calls: map[string]int{"Sandboxes.Get": 1, "Events": 1}},
		{name: "an image change recreates under Recreate",
			sandbox: unitSandbox(withID, func(sb *v1alpha1.Sandbox) { sb.Spec.Image = "example.com/agent:2" }),
			prepare: func(_ *fakeConnections, g *fakeGateway) { ready(g) },
			want: sandboxResult{Conditions: []string{"Ready=False/Recreating: recreating the sandbox to apply changes",
				"Reconciling=True/Recreating: recreating the sandbox to apply changes"}, Phase: v1alpha1.SandboxPhaseReady, ID: "id-7",
				Requeue: unitTransitional, Events: []string{}},
			calls: map[string]int{"Sandboxes.Get": 1, "Events": 1, "Sandboxes.Delete": 1}},
		{name: "an image change waits under OnDelete: Stalled, nothing deleted",
			sandbox: unitSandbox(withID, func(sb *v1alpha1.Sandbox) {
				sb.Spec.Image, sb.Spec.UpdateStrategy = "example.com/agent:2", v1alpha1.UpdateStrategyOnDelete
			}),
			prepare: func(_ *fakeConnections, g *fakeGateway) { ready(g) },
			want: sandboxResult{Conditions: []string{"Ready=False/RecreatePending: updateStrategy OnDelete: changes to image apply when the sandbox is recreated",
				"Stalled=True/RecreatePending: updateStrategy OnDelete: changes to image apply when the sandbox is recreated"},
				Phase: v1alpha1.SandboxPhaseReady, ID: "id-7", Observed: 1, Requeue: time.Minute, Events: []string{"Normal/RecreatePending"}},
			calls: map[string]int{"Sandboxes.Get": 1, "Events": 1}},
		{name: "a gateway sandbox it does not own is a Conflict",
			sandbox: unitSandbox(),
			prepare: func(_ *fakeConnections, g *fakeGateway) {
				g.sandboxes[name] = &openshellv1.Sandbox{Metadata: &datamodelv1.ObjectMeta{Name: name, Id: "foreign"}}
			},
			want: sandboxResult{Conditions: []string{`Ready=False/Conflict: gateway sandbox "` + name + `" exists and is not owned by this resource; it is left untouched`,
				`Stalled=True/Conflict: gateway sandbox "` + name + `" exists and is not owned by this resource; it is left untouched`},
				Phase: v1alpha1.SandboxPhaseUnknown, Observed: 1, Requeue: time.Minute, Events: []string{"Warning/Conflict"}},
			calls: map[string]int{"Sandboxes.Get": 1}},
		{name: "no connection: DependencyNotReady, no gateway call",
			sandbox: unitSandbox(), prepare: func(c *fakeConnections, _ *fakeGateway) { c.down[v1alpha1.DefaultGatewayConnection] = true },
			want: sandboxResult{Conditions: []string{
				`Ready=False/DependencyNotReady: GatewayConnection "default": gateway connection is not ready: GatewayConnection "default" not found or not yet probed`,
				`Reconciling=True/DependencyNotReady: GatewayConnection "default": gateway connection is not ready: GatewayConnection "default" not found or not yet probed`},
				Requeue: unitTransitional, Events: []string{"Normal/DependencyNotReady"}},
			calls: map[string]int{}},
		{name: "a provider not ready yet: DependencyNotReady, no gateway call",
			sandbox: unitSandbox(func(sb *v1alpha1.Sandbox) { sb.Spec.Providers = []string{"openai"} }),
			want: sandboxResult{Conditions: []string{"Ready=False/DependencyNotReady: providers not ready on the gateway: openai",
				"Reconciling=True/DependencyNotReady: providers not ready on the gateway: openai"},
				Requeue: unitTransitional, Events: []string{"Normal/DependencyNotReady"}},
			calls: map[string]int{}},
		{name: "an unavailable gateway backs off, keeps the last phase",
			sandbox: unitSandbox(withID, func(sb *v1alpha1.Sandbox) { sb.Status.Phase = v1alpha1.SandboxPhaseReady }),
			prepare: func(_ *fakeConnections, g *fakeGateway) {
				g.errs["Sandboxes.Get"] = status.Error(codes.Unavailable, "connection refused")
			},
			want: sandboxResult{Conditions: []string{"Ready=False/GatewayUnavailable: get sandbox: connection refused (Unavailable)",
				"Reconciling=True/GatewayUnavailable: get sandbox: connection refused (Unavailable)"},
				Phase: v1alpha1.SandboxPhaseReady, ID: "id-7", Requeue: defaultBackoffBase, Events: []string{"Warning/GatewayUnavailable"}},
			calls: map[string]int{"Sandboxes.Get": 1}},
		{name: "a deadline reads as a deadline whatever gRPC said",
			sandbox: unitSandbox(),
			prepare: func(_ *fakeConnections, g *fakeGateway) {
				g.errs["Sandboxes.Create"] = status.Error(codes.DeadlineExceeded, "stream terminated by RST_STREAM with error code: CANCEL")
			},
			want: sandboxResult{Conditions: []string{
				"Ready=False/GatewayUnavailable: create sandbox: the gateway did not answer within the GatewayConnection's spec.timeout (DeadlineExceeded)",
				"Reconciling=True/GatewayUnavailable: create sandbox: the gateway did not answer within the GatewayConnection's spec.timeout (DeadlineExceeded)"},
				Requeue: defaultBackoffBase, Events: []string{"Warning/GatewayUnavailable"}},
			calls: map[string]int{"Sandboxes.Get": 1, "Sandboxes.Create": 1}},
		{name: "an invalid spec the gateway refuses stalls",
			sandbox: unitSandbox(),
			prepare: func(_ *fakeConnections, g *fakeGateway) {
				g.errs["Sandboxes.Create"] = status.Error(codes.InvalidArgument, "image is not a reference")
			},
			want: sandboxResult{Conditions: []string{"Ready=False/GatewayRejected: create sandbox: image is not a reference (InvalidArgument)",
				"Stalled=True/GatewayRejected: create sandbox: image is not a reference (InvalidArgument)"},
				Observed: 1, Requeue: time.Minute, Events: []string{"Warning/GatewayRejected"}},
			calls: map[string]int{"Sandboxes.Get": 1, "Sandboxes.Create": 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conns, g := oneGateway()
			if tt.prepare != nil {
				tt.prepare(conns, g)
			}
			ev := &eventLog{}
			k, _ := sandboxKernel(fakeAPI(t, append(tt.objs, tt.sandbox)...), conns, ev)
			sb, res := reconcileOnce(t, k, keyOf(tt.sandbox))
			if diff := cmp.Diff(tt.want, resultOf(sb, res.RequeueAfter, ev)); diff != "" {
				t.Fatalf("(-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.calls, g.calls); diff != "" {
				t.Fatalf("gateway calls (-want +got):\n%s", diff)
			}
		})
	}
}

// TestSandboxPlannedRecreateIsNotAHeal is the regression of issue 11's Healed-instead-of-
// Recreated defect: the reconcile after the operator's own delete reads a cached Sandbox
// whose status does not say Recreating yet, and the gateway sandbox is already gone. It must
// announce Recreated (Normal), never Healed (Warning).
func TestSandboxPlannedRecreateIsNotAHeal(t *testing.T) {
	name := GatewayName("team", "agent")
	conns, g := oneGateway()
	g.sandboxes[name] = &openshellv1.Sandbox{Metadata: &datamodelv1.ObjectMeta{Name: name, Id: "id-7", Labels: OwnershipLabels(unitSandbox())},
		Spec:   &openshellv1.SandboxSpec{Template: &openshellv1.SandboxTemplate{Image: "example.com/agent:1"}},
		Status: &openshellv1.SandboxStatus{Phase: openshellv1.SandboxPhase_SANDBOX_PHASE_READY}}
	stale := unitSandbox(func(sb *v1alpha1.Sandbox) {
		sb.Spec.Image = "example.com/agent:2"
		sb.Status.SandboxID, sb.Status.Phase = "id-7", v1alpha1.SandboxPhaseReady
		applyConditions(&sb.Status.Conditions, 1, readyOutcome("the sandbox is ready"))
	})
	ev := &eventLog{}
	_, r := sandboxKernel(fakeAPI(t), conns, ev)
	ctx := context.Background()
	first := stale.DeepCopy()
	if st := r.sync(ctx, first); st.shown().Reason != v1alpha1.ReasonRecreating {
		t.Fatalf("first reconcile: %+v", st.shown())
	}
	delete(g.sandboxes, name)  // the gateway finished deleting before the cache caught up
	second := stale.DeepCopy() // the cache still shows the status before Recreating
	r.sync(ctx, second)
	if diff := cmp.Diff([]string{"Normal/Recreated"}, ev.reasons()); diff != "" {
		t.Fatalf("events (-want +got):\n%s", diff)
	}
	// An out-of-band deletion is still a heal.
	delete(g.sandboxes, name)
	third := stale.DeepCopy()
	third.Status.SandboxID = second.Status.SandboxID
	r.sync(ctx, third)
	if got := ev.reasons(); len(got) != 2 || got[1] != "Warning/Healed" {
		t.Fatalf("out-of-band deletion: events %v, want a Healed warning", got)
	}
}

// TestSandboxPolicyPushAndLoad: a desired policy is pushed once, waits PolicyPending, and is
// Ready once the gateway reports the revision loaded; a global policy blocks the push with
// a notice and a resync, not a hot loop.
func TestSandboxPolicyPushAndLoad(t *testing.T) {
	name := GatewayName("team", "agent")
	withPolicy := func(sb *v1alpha1.Sandbox) {
		sb.Status.SandboxID = "id-7"
		sb.Spec.Policy = &v1alpha1.SandboxPolicySpec{NetworkPolicies: map[string]v1alpha1.NetworkPolicyRule{
			"github": {Endpoints: []v1alpha1.NetworkEndpoint{{Host: "api.github.com", Port: 443}}}}}
	}
	seed := func(g *fakeGateway) {
		g.sandboxes[name] = &openshellv1.Sandbox{Metadata: &datamodelv1.ObjectMeta{Name: name, Id: "id-7", Labels: OwnershipLabels(unitSandbox())},
			Spec:   &openshellv1.SandboxSpec{Template: &openshellv1.SandboxTemplate{Image: "example.com/agent:1"}},
			Status: &openshellv1.SandboxStatus{Phase: openshellv1.SandboxPhase_SANDBOX_PHASE_READY}}
	}
	conns, g := oneGateway()
	seed(g)
	ev := &eventLog{}
	c := fakeAPI(t, unitSandbox(withPolicy))
	k, _ := sandboxKernel(c, conns, ev)
	sb, _ := reconcileOnce(t, k, keyOf(unitSandbox()))
	if got := readyReason(sb.Status.Conditions); got != v1alpha1.ReasonPolicyPending || sb.Status.Policy.Version != 1 ||
		sb.Status.Policy.Status != v1alpha1.PolicyLoadPending {
		t.Fatalf("after push: reason %s policy %+v", got, sb.Status.Policy)
	}
	g.policies[name][0].Status = openshellv1.PolicyStatus_POLICY_STATUS_LOADED
	g.sandboxes[name].Status.CurrentPolicyVersion = 1
	sb, _ = reconcileOnce(t, k, keyOf(unitSandbox()))
	if got := readyReason(sb.Status.Conditions); got != v1alpha1.ReasonReady || sb.Status.Policy.Status != v1alpha1.PolicyLoadLoaded ||
		sb.Status.Policy.ActiveVersion != 1 {
		t.Fatalf("after load: reason %s policy %+v", got, sb.Status.Policy)
	}
	if g.calls["Policies.Update"] != 1 {
		t.Fatalf("policy pushed %d times, want once", g.calls["Policies.Update"])
	}

	// Under a global policy the gateway refuses sandbox policy updates.
	conns, g = oneGateway()
	seed(g)
	g.errs["Policies.Update"] = status.Error(codes.FailedPrecondition, "policy is managed globally")
	ev = &eventLog{}
	k, _ = sandboxKernel(fakeAPI(t, unitSandbox(withPolicy)), conns, ev)
	sb, res := reconcileOnce(t, k, keyOf(unitSandbox()))
	if got := readyReason(sb.Status.Conditions); got != v1alpha1.ReasonGlobalPolicyActive || res.RequeueAfter != time.Minute {
		t.Fatalf("global policy: reason %s requeue %s", got, res.RequeueAfter)
	}
}

// TestSandboxFinalize: Delete deletes and waits for the gateway, then releases; Orphan
// releases at once; an outage keeps the finalizer.
func TestSandboxFinalize(t *testing.T) {
	name := GatewayName("team", "agent")
	deleting := func(sb *v1alpha1.Sandbox) {
		now := metav1.Now()
		sb.DeletionTimestamp = &now
		sb.Status.SandboxID = "id-7"
	}
	seed := func(g *fakeGateway) {
		g.sandboxes[name] = &openshellv1.Sandbox{Metadata: &datamodelv1.ObjectMeta{Name: name, Id: "id-7", Labels: OwnershipLabels(unitSandbox())},
			Spec: &openshellv1.SandboxSpec{}, Status: &openshellv1.SandboxStatus{Phase: openshellv1.SandboxPhase_SANDBOX_PHASE_READY}}
	}
	conns, g := oneGateway()
	seed(g)
	k, _ := sandboxKernel(fakeAPI(t, unitSandbox(deleting)), conns, &eventLog{})
	sb, _ := reconcileOnce(t, k, keyOf(unitSandbox()))
	if sb == nil || readyReason(sb.Status.Conditions) != v1alpha1.ReasonDeleting || g.calls["Sandboxes.Delete"] != 1 {
		t.Fatalf("first finalize: %v calls %v", sb, g.calls)
	}
	delete(g.sandboxes, name)
	if sb, _ = reconcileOnce(t, k, keyOf(unitSandbox())); sb != nil {
		t.Fatal("the finalizer must go once the gateway sandbox is gone")
	}

	conns, g = oneGateway()
	seed(g)
	g.errs["Sandboxes.Get"] = status.Error(codes.Unavailable, "down")
	k, _ = sandboxKernel(fakeAPI(t, unitSandbox(deleting)), conns, &eventLog{})
	if sb, _ = reconcileOnce(t, k, keyOf(unitSandbox())); sb == nil || readyReason(sb.Status.Conditions) != v1alpha1.ReasonGatewayUnavailable {
		t.Fatalf("an outage must keep the finalizer: %v", sb)
	}

	conns, g = oneGateway()
	seed(g)
	orphan := unitSandbox(deleting, func(sb *v1alpha1.Sandbox) { sb.Spec.DeletionPolicy = v1alpha1.DeletionPolicyOrphan })
	k, _ = sandboxKernel(fakeAPI(t, orphan), conns, &eventLog{})
	if sb, _ = reconcileOnce(t, k, keyOf(orphan)); sb != nil || len(g.calls) != 0 {
		t.Fatalf("Orphan releases without a call: %v %v", sb, g.calls)
	}
}

// TestSandboxStaleLeaderLeavesNewerSandboxAlone is the regression of the soak's finding: a
// former leader resuming with a stale cache (generation 1) sees the sandbox the current
// leader created for generation 2 as drift. It must neither recreate nor update it.
func TestSandboxStaleLeaderLeavesNewerSandboxAlone(t *testing.T) {
	name := GatewayName("team", "agent")
	conns, g := oneGateway()
	labels := OwnershipLabels(unitSandbox())
	labels[v1alpha1.LabelGeneration] = "2"
	g.sandboxes[name] = &openshellv1.Sandbox{Metadata: &datamodelv1.ObjectMeta{Name: name, Id: "id-new", Labels: labels},
		Spec:   &openshellv1.SandboxSpec{Template: &openshellv1.SandboxTemplate{Image: "example.com/agent:2"}},
		Status: &openshellv1.SandboxStatus{Phase: openshellv1.SandboxPhase_SANDBOX_PHASE_READY}}
	stale := unitSandbox(func(sb *v1alpha1.Sandbox) { sb.Status.SandboxID = "id-old" }) // generation 1, image :1
	k, _ := sandboxKernel(fakeAPI(t, stale), conns, &eventLog{})
	sb, _ := reconcileOnce(t, k, keyOf(stale))
	if got := readyReason(sb.Status.Conditions); got != v1alpha1.ReasonProgressing {
		t.Fatalf("reason %s, want Progressing (waiting for the cache)", got)
	}
	if g.calls["Sandboxes.Delete"]+g.calls["Sandboxes.Create"]+g.calls["Sandboxes.AttachProvider"]+g.calls["Policies.Update"] != 0 {
		t.Fatalf("a stale manager wrote to the gateway: %v", g.calls)
	}
	// The sandbox a manager creates carries the generation it was created for.
	conns, g = oneGateway()
	k, _ = sandboxKernel(fakeAPI(t, unitSandbox(func(sb *v1alpha1.Sandbox) { sb.Generation = 5 })), conns, &eventLog{})
	reconcileOnce(t, k, keyOf(unitSandbox()))
	if got := g.sandboxes[name].GetMetadata().GetLabels()[v1alpha1.LabelGeneration]; got != "5" {
		t.Fatalf("generation label %q, want 5", got)
	}
}

// staleView is an observation view that still holds an older state of a sandbox (a manager
// resuming from a pause), and records what the reconcile read.
type staleView struct {
	pollView
	sb       *openshellv1.Sandbox
	recorded []*openshellv1.Sandbox
}

func (v *staleView) Lookup(string, string) (*openshellv1.Sandbox, bool) { return v.sb, true }
func (v *staleView) Record(_ string, sb *openshellv1.Sandbox)           { v.recorded = append(v.recorded, sb) }

// Found by the soak (seed 21): a former leader resumed from a pause with a view that still
// held the sandbox the current leader had just replaced for an edit. Its cache had caught up
// with the edit, the old sandbox in its view differed from the new spec, and it deleted, by
// name, the new sandbox. A recreate is decided on a fresh read.
func TestSandboxRecreateIsDecidedOnTheGatewayNotTheView(t *testing.T) {
	name := GatewayName("team", "agent")
	conns, g := oneGateway()
	edited := unitSandbox(func(sb *v1alpha1.Sandbox) {
		sb.Generation = 2
		sb.Spec.Image = "example.com/agent:2"
		sb.Status.SandboxID = "id-new"
	})
	labels := func(gen string) map[string]string {
		l := OwnershipLabels(edited)
		l[v1alpha1.LabelGeneration] = gen
		return l
	}
	// The gateway: the current leader's new sandbox for generation 2.
	g.sandboxes[name] = &openshellv1.Sandbox{Metadata: &datamodelv1.ObjectMeta{Name: name, Id: "id-new", Labels: labels("2"), ResourceVersion: 2, CreatedAtMs: 2000},
		Spec:   &openshellv1.SandboxSpec{Template: &openshellv1.SandboxTemplate{Image: "example.com/agent:2"}},
		Status: &openshellv1.SandboxStatus{Phase: openshellv1.SandboxPhase_SANDBOX_PHASE_READY}}
	// The view: the sandbox it replaced, for generation 1.
	view := &staleView{sb: &openshellv1.Sandbox{Metadata: &datamodelv1.ObjectMeta{Name: name, Id: "id-old", Labels: labels("1"), ResourceVersion: 7, CreatedAtMs: 1000},
		Spec:   &openshellv1.SandboxSpec{Template: &openshellv1.SandboxTemplate{Image: "example.com/agent:1"}},
		Status: &openshellv1.SandboxStatus{Phase: openshellv1.SandboxPhase_SANDBOX_PHASE_READY}}}
	k, r := sandboxKernel(fakeAPI(t, edited), conns, &eventLog{})
	r.View = view
	reconcileOnce(t, k, keyOf(edited))
	if g.calls["Sandboxes.Delete"] != 0 {
		t.Fatalf("deleted the gateway's current sandbox for the view's stale one: %v", g.calls)
	}
	if got := g.sandboxes[name].GetMetadata().GetId(); got != "id-new" {
		t.Fatalf("gateway sandbox id %q, want id-new", got)
	}
	if len(view.recorded) == 0 || view.recorded[len(view.recorded)-1].GetMetadata().GetId() != "id-new" {
		t.Fatalf("the fresh read was not recorded in the view: %v", view.recorded)
	}

	// When the view is current, the recreate goes ahead (one read more, one delete).
	conns, g = oneGateway()
	g.sandboxes[name] = proto.Clone(view.sb).(*openshellv1.Sandbox)
	k, r = sandboxKernel(fakeAPI(t, edited), conns, &eventLog{})
	r.View = &staleView{sb: proto.Clone(view.sb).(*openshellv1.Sandbox)}
	reconcileOnce(t, k, keyOf(edited))
	if g.calls["Sandboxes.Delete"] != 1 || g.calls["Sandboxes.Get"] != 1 {
		t.Fatalf("calls %v, want one Get and one Delete", g.calls)
	}
}

func TestLaterState(t *testing.T) {
	sb := func(id string, rv uint64, created int64) *openshellv1.Sandbox {
		return &openshellv1.Sandbox{Metadata: &datamodelv1.ObjectMeta{Id: id, ResourceVersion: rv, CreatedAtMs: created}}
	}
	tests := []struct {
		name string
		a, b *openshellv1.Sandbox
		want bool
	}{
		{"same sandbox, higher version", sb("x", 5, 1), sb("x", 4, 1), true},
		{"same sandbox, lower version", sb("x", 3, 1), sb("x", 4, 1), false},
		{"same sandbox, same version", sb("x", 4, 1), sb("x", 4, 1), false},
		{"a recreate: the new sandbox starts at a lower version", sb("new", 1, 20), sb("old", 9, 10), true},
		{"the replaced sandbox, however high its version", sb("old", 9, 10), sb("new", 1, 20), false},
	}
	for _, tt := range tests {
		if got := laterState(tt.a, tt.b); got != tt.want {
			t.Errorf("%s: laterState = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// Found by the soak (seed 38): the user deleted a Sandbox while its leader was paused; the
// new leader deleted the gateway sandbox. The former leader resumed with a cache that did not
// show the deletion yet, found the gateway sandbox gone and created it again ("healed" it).
// A create is made only for the version the API server holds (fence.go); otherwise nothing
// is created and nothing is written.
func TestSandboxStaleLeaderDoesNotHealADeletedSandbox(t *testing.T) {
	conns, g := oneGateway() // the gateway sandbox is gone: the current leader deleted it
	live := unitSandbox(func(sb *v1alpha1.Sandbox) { sb.Status.SandboxID = "id-7" })
	api := fakeAPI(t, live)
	if err := api.Delete(context.Background(), live); err != nil { // held by the finalizer
		t.Fatal(err)
	}
	stale := unitSandbox(func(sb *v1alpha1.Sandbox) { sb.Status.SandboxID = "id-7"; sb.ResourceVersion = "1" })
	cache := staleCache(api, stale)
	ev := &eventLog{}
	k, _ := sandboxKernel(cache, conns, ev)
	k.Reader = api
	res, err := k.Reconcile(context.Background(), ctrl.Request{NamespacedName: keyOf(live)})
	if err != nil {
		t.Fatal(err)
	}
	if g.calls["Sandboxes.Create"] != 0 || len(g.sandboxes) != 0 {
		t.Fatalf("a stale manager created the deleted resource's sandbox again: %v", g.calls)
	}
	if res.RequeueAfter != staleRequeue || len(ev.reasons()) != 0 {
		t.Fatalf("result %+v, events %v; want a quiet look again soon", res, ev.reasons())
	}
	got := &v1alpha1.Sandbox{}
	if err := api.Get(context.Background(), keyOf(live), got); err != nil {
		t.Fatal(err)
	}
	if len(got.Status.Conditions) != 0 {
		t.Fatalf("a stale manager wrote status: %v", conditionsOf(got.Status.Conditions))
	}
}
