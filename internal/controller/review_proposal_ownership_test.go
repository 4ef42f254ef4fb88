package controller

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
	datamodelv1 "github.com/openshell-operator/openshell-operator/gen/openshell/datamodel/v1"
	sandboxv1 "github.com/openshell-operator/openshell-operator/gen/openshell/sandbox/v1"
	openshellv1 "github.com/openshell-operator/openshell-operator/gen/openshell/v1"
)

// The other tenant's draft chunk, on the gateway sandbox that holds the attacker's name.
const (
	victimHost   = "internal-billing.victim.corp"
	victimBinary = "/opt/victim/bin/etl"
)

func victimChunk() *openshellv1.PolicyChunk {
	return &openshellv1.PolicyChunk{Id: "c1", Status: "pending", RuleName: "billing", Binary: victimBinary,
		ProposedRule: &sandboxv1.NetworkPolicyRule{Endpoints: []*sandboxv1.NetworkEndpoint{{Host: victimHost, Port: 443}}}}
}

// foreignGatewaySandbox puts on g, under name, a gateway sandbox owned by owner.
func foreignGatewaySandbox(g *fakeGateway, name string, owner *v1alpha1.Sandbox) {
	g.sandboxes[name] = &openshellv1.Sandbox{Metadata: &datamodelv1.ObjectMeta{Name: name, Id: "vid", Labels: OwnershipLabels(owner)},
		Spec:   &openshellv1.SandboxSpec{Template: &openshellv1.SandboxTemplate{Image: "example.com/agent:1"}},
		Status: &openshellv1.SandboxStatus{Phase: openshellv1.SandboxPhase_SANDBOX_PHASE_READY}}
}

// viewOf is an observation view holding sandboxes (nothing else of the view is used).
type viewOf struct {
	sandboxView
	held map[string]*openshellv1.Sandbox
}

func (v viewOf) Lookup(_, name string) (*openshellv1.Sandbox, bool) {
	sb, ok := v.held[name]
	if !ok {
		return nil, true
	}
	return proto.Clone(sb).(*openshellv1.Sandbox), true
}

// leaks reports a message naming the other tenant's objects.
func leaks(s string) bool {
	return strings.Contains(s, "victim") || strings.Contains(s, victimBinary) || strings.Contains(s, "team-prod")
}

// ownershipCase is a gateway sandbox holding the Sandbox's gateway name.
type ownershipCase struct {
	name string
	// owner owns the gateway sandbox; inView puts it in the observation view.
	owner  *v1alpha1.Sandbox
	inView bool
}

// ownershipCases: the Sandbox team/agent (UID attacker-uid) against the gateway sandbox of its
// name held by itself, by the orphan of a previous Sandbox of the name, or by another
// namespace's Sandbox under a colliding name.
func ownershipCases(sb *v1alpha1.Sandbox) []ownershipCase {
	orphanOwner := &v1alpha1.Sandbox{ObjectMeta: metav1.ObjectMeta{Namespace: sb.Namespace, Name: sb.Name, UID: "previous-uid"}}
	collider := &v1alpha1.Sandbox{ObjectMeta: metav1.ObjectMeta{Namespace: "team-prod", Name: "other", UID: "victim-uid"}}
	return []ownershipCase{
		{name: "an orphan of the previous Sandbox of the name (other UID)", owner: orphanOwner},
		{name: "another namespace's sandbox under a colliding name", owner: collider},
		{name: "another's sandbox seen in the observation view", owner: collider, inView: true},
		{name: "the Sandbox's own gateway sandbox", owner: sb},
		{name: "the Sandbox's own gateway sandbox seen in the observation view", owner: sb, inView: true},
	}
}

// setup puts the case's gateway sandbox on a fake gateway and returns the registry and view.
func (oc ownershipCase) setup(gwName string) (*fakeGateway, *recordingApprovals, reviewConnections, sandboxView) {
	g := newFakeGateway()
	foreignGatewaySandbox(g, gwName, oc.owner)
	var view sandboxView
	if oc.inView {
		view = viewOf{held: map[string]*openshellv1.Sandbox{gwName: g.sandboxes[gwName]}}
	}
	fa := &recordingApprovals{fakeApprovals: fakeApprovals{chunks: map[string]*openshellv1.PolicyChunk{"c1": victimChunk()}}}
	return g, fa, reviewConnections{g: g, a: fa}, view
}

const ownershipConflict = `the gateway sandbox of Sandbox "agent" is not owned by it; its draft policy is left untouched`

// TestDecisionsRequireTheSandboxsGatewaySandbox: the PolicyProposal controller reads, edits and
// approves a chunk only on a gateway sandbox owned by the proposal's Sandbox (namespace, name
// and UID), confirmed from the observation view when it holds the sandbox, else with
// GetSandbox. A proposal the tenant makes for a chunk of another resource's gateway sandbox
// under the same gateway name (an orphan of a previous owner of a reused namespace; a
// GatewayName collision) mirrors nothing, decides nothing and is Stalled with Conflict, in a
// message that names no other tenant's object.
func TestDecisionsRequireTheSandboxsGatewaySandbox(t *testing.T) {
	sb := &v1alpha1.Sandbox{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "agent", UID: "attacker-uid"},
		Status: v1alpha1.SandboxStatus{SandboxID: "forged"}}
	gwName := GatewayName("team", "agent")
	for _, oc := range ownershipCases(sb) {
		t.Run(oc.name, func(t *testing.T) {
			g, fa, conns, view := oc.setup(gwName)
			own := oc.owner == sb
			// The tenant decides the chunk with a rule of its own, through a proposal it makes.
			p := &v1alpha1.PolicyProposal{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "tenant-made", Generation: 2},
				Spec: v1alpha1.PolicyProposalSpec{SandboxRef: v1alpha1.LocalObjectReference{Name: "agent"}, ChunkID: "c1", Decision: v1alpha1.ProposalApproved,
					Rule: &v1alpha1.NetworkPolicyRule{Endpoints: []v1alpha1.NetworkEndpoint{{Host: "exfil.attacker.example", Port: 443}}}}}
			c := fake.NewClientBuilder().WithScheme(unitScheme(t)).
				WithObjects(sb.DeepCopy(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team"}}, p).
				WithStatusSubresource(&v1alpha1.PolicyProposal{}, &v1alpha1.Sandbox{}).Build()
			ev := &eventLog{}
			r := &PolicyProposalReconciler{Client: c, Gateways: conns, Recorder: ev, View: view}
			k := newKernel(c, kindPolicyProposal, func() *v1alpha1.PolicyProposal { return &v1alpha1.PolicyProposal{} },
				kindSteps[*v1alpha1.PolicyProposal](r), ev, false, Backoff{}, time.Second)
			k.Uses = r.gatewayUse
			got, res := reconcileOnce(t, k, client.ObjectKeyFromObject(p))

			wantCalls := []string(nil)
			wantConds := []string{"Ready=False/Conflict: " + ownershipConflict, "Stalled=True/Conflict: " + ownershipConflict}
			if own {
				wantCalls = []string{"GetDraft " + gwName, "Edit " + gwName, "Approve " + gwName}
				wantConds = []string{"Ready=True/Ready: approved on the gateway: policy version 5"}
			}
			wantGets := 1
			if oc.inView {
				wantGets = 0
			}
			if diff := cmp.Diff(wantCalls, fa.calls()); diff != "" {
				t.Errorf("approval calls (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(wantConds, conditionsOf(got.Status.Conditions)); diff != "" {
				t.Errorf("proposal conditions (-want +got):\n%s", diff)
			}
			if g.calls["Sandboxes.Get"] != wantGets {
				t.Errorf("GetSandbox calls %d, want %d", g.calls["Sandboxes.Get"], wantGets)
			}
			if own {
				return
			}
			if res.RequeueAfter == 0 {
				t.Errorf("a Conflict never looks again")
			}
			if got.Status.Binary != "" || got.Status.ProposedRule != nil || fa.chunks["c1"].GetStatus() != "pending" {
				t.Errorf("the other sandbox's chunk was mirrored or decided: binary %q, rule %v, chunk %s",
					got.Status.Binary, got.Status.ProposedRule, fa.chunks["c1"].GetStatus())
			}
			for _, e := range ev.events {
				if leaks(e.Message) {
					t.Errorf("event names the other tenant's objects: %+v", e)
				}
			}
		})
	}
}

// TestDecisionsWaitForTheGatewaySandbox: without a gateway sandbox of the Sandbox's name
// (status.sandboxID forged) no draft call is made; the proposal waits on the dependency.
func TestDecisionsWaitForTheGatewaySandbox(t *testing.T) {
	sb := &v1alpha1.Sandbox{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "agent", UID: "u1"}, Status: v1alpha1.SandboxStatus{SandboxID: "forged"}}
	p := &v1alpha1.PolicyProposal{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "p", Generation: 1},
		Spec: v1alpha1.PolicyProposalSpec{SandboxRef: v1alpha1.LocalObjectReference{Name: "agent"}, ChunkID: "c1", Decision: v1alpha1.ProposalApproved}}
	fa := &recordingApprovals{fakeApprovals: fakeApprovals{chunks: map[string]*openshellv1.PolicyChunk{"c1": victimChunk()}}}
	c := fake.NewClientBuilder().WithScheme(unitScheme(t)).WithObjects(sb, p, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team"}}).
		WithStatusSubresource(&v1alpha1.PolicyProposal{}, &v1alpha1.Sandbox{}).Build()
	r := &PolicyProposalReconciler{Client: c, Gateways: reviewConnections{g: newFakeGateway(), a: fa}}
	k := newKernel(c, kindPolicyProposal, func() *v1alpha1.PolicyProposal { return &v1alpha1.PolicyProposal{} },
		kindSteps[*v1alpha1.PolicyProposal](r), nil, false, Backoff{}, time.Second)
	got, res := reconcileOnce(t, k, keyOf(p))
	want := []string{`Ready=False/DependencyNotReady: Sandbox "agent" has no gateway sandbox yet`,
		`Reconciling=True/DependencyNotReady: Sandbox "agent" has no gateway sandbox yet`}
	if diff := cmp.Diff(want, conditionsOf(got.Status.Conditions)); diff != "" {
		t.Errorf("conditions (-want +got):\n%s", diff)
	}
	if res.RequeueAfter != time.Second {
		t.Errorf("requeue %v, want the dependency interval", res.RequeueAfter)
	}
	if calls := fa.calls(); len(calls) != 0 {
		t.Errorf("approval calls without a gateway sandbox: %v", calls)
	}
}

// collidingSandboxes are a pair of Sandboxes whose gateway names collide (found by brute force
// over the 32-bit suffix): the victim's and the attacker's (Conflict, its sandboxID forged).
func collidingSandboxes(t *testing.T) (victim, attacker *v1alpha1.Sandbox, gwName string) {
	t.Helper()
	victim = &v1alpha1.Sandbox{ObjectMeta: metav1.ObjectMeta{Namespace: "team-prod", Name: "customer-analytics-ingestion-agent-worker-01", UID: "victim-uid", Generation: 1}}
	attacker = &v1alpha1.Sandbox{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "prod-customer-analytics-ingestion-agent-worker-01-bsnc76kb",
		UID: "attacker-uid", Generation: 1, Finalizers: []string{v1alpha1.Finalizer}},
		Spec:   v1alpha1.SandboxSpec{Image: "example.com/agent:1"},
		Status: v1alpha1.SandboxStatus{SandboxID: "forged"}}
	gwName = GatewayName(victim.Namespace, victim.Name)
	if GatewayName(attacker.Namespace, attacker.Name) != gwName {
		t.Fatalf("the names no longer collide: %s, %s", gwName, GatewayName(attacker.Namespace, attacker.Name))
	}
	return victim, attacker, gwName
}

// collisionAttack is the attacker's side of a gateway-name collision: the victim's gateway
// sandbox (one pending chunk) under the attacker's derived name, and the attacker's Sandbox,
// already reconciled to Conflict.
func collisionAttack(t *testing.T) (client.Client, reviewConnections, *recordingApprovals, *eventLog, *v1alpha1.Sandbox) {
	t.Helper()
	victim, att, gwName := collidingSandboxes(t)
	g := newFakeGateway()
	foreignGatewaySandbox(g, gwName, victim)
	fa := &recordingApprovals{fakeApprovals: fakeApprovals{chunks: map[string]*openshellv1.PolicyChunk{"c1": victimChunk()}}}
	conns := reviewConnections{g: g, a: fa}
	c := fake.NewClientBuilder().WithScheme(unitScheme(t)).WithObjects(att, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team"}}).
		WithStatusSubresource(&v1alpha1.PolicyProposal{}, &v1alpha1.Sandbox{}).Build()
	ev := &eventLog{}
	sr := &SandboxReconciler{Client: c, Gateways: conns, Recorder: ev, Transitional: unitTransitional, Resync: time.Minute, View: pollView{}}
	sk := newKernel(c, kindSandbox, func() *v1alpha1.Sandbox { return &v1alpha1.Sandbox{} }, kindSteps[*v1alpha1.Sandbox](sr), ev, true, Backoff{}, sr.transitional())
	if got, _ := reconcileOnce(t, sk, keyOf(att)); readyReason(got.Status.Conditions) != v1alpha1.ReasonConflict {
		t.Fatalf("attacker Sandbox: %v, want Conflict", conditionsOf(got.Status.Conditions))
	}
	return c, conns, fa, ev, att
}

// TestGatewayNameCollisionDecidesNothing: with colliding gateway names the attacker's Sandbox
// is Conflict, as the Sandbox kind always said, and a proposal the attacker makes for the
// victim's chunk neither mirrors nor approves it.
func TestGatewayNameCollisionDecidesNothing(t *testing.T) {
	c, conns, fa, ev, att := collisionAttack(t)
	p := &v1alpha1.PolicyProposal{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "tenant-made", Generation: 1},
		Spec: v1alpha1.PolicyProposalSpec{SandboxRef: v1alpha1.LocalObjectReference{Name: att.Name}, ChunkID: "c1", Decision: v1alpha1.ProposalApproved,
			Rule: &v1alpha1.NetworkPolicyRule{Endpoints: []v1alpha1.NetworkEndpoint{{Host: "exfil.attacker.example", Port: 443}}}}}
	if err := c.Create(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	pr := &PolicyProposalReconciler{Client: c, Gateways: conns, Recorder: ev}
	pk := newKernel(c, kindPolicyProposal, func() *v1alpha1.PolicyProposal { return &v1alpha1.PolicyProposal{} },
		kindSteps[*v1alpha1.PolicyProposal](pr), ev, false, Backoff{}, time.Second)
	gotP, _ := reconcileOnce(t, pk, keyOf(p))
	if calls := fa.calls(); len(calls) != 0 {
		t.Errorf("approval calls on the victim's gateway sandbox: %v", calls)
	}
	if readyReason(gotP.Status.Conditions) != v1alpha1.ReasonConflict || gotP.Status.Binary != "" {
		t.Errorf("proposal: %v, binary %q; want Conflict, nothing mirrored", conditionsOf(gotP.Status.Conditions), gotP.Status.Binary)
	}
	if fa.chunks["c1"].GetStatus() != "pending" || fa.chunks["c1"].GetProposedRule().GetEndpoints()[0].GetHost() != victimHost {
		t.Errorf("victim chunk changed: %v", fa.chunks["c1"])
	}
	for _, e := range ev.events {
		if strings.Contains(e.Message, victimHost) || strings.Contains(e.Message, victimBinary) {
			t.Errorf("event in the attacker's namespace names the victim's objects: %+v", e)
		}
	}
}
