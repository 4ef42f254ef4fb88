package controller

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
	sandboxv1 "github.com/openshell-operator/openshell-operator/gen/openshell/sandbox/v1"
	openshellv1 "github.com/openshell-operator/openshell-operator/gen/openshell/v1"
)

// fakeApprovals is a gateway's draft chunks behind approvalsGateway, recording calls in order.
type fakeApprovals struct {
	mu     sync.Mutex
	chunks map[string]*openshellv1.PolicyChunk
	calls  []string
	errs   map[string]error
}

func (f *fakeApprovals) call(m string) error {
	f.calls = append(f.calls, m)
	return f.errs[m]
}

func (f *fakeApprovals) GetDraft(_ context.Context, _ string, _ string) (*openshellv1.GetDraftPolicyResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := &openshellv1.GetDraftPolicyResponse{}
	for _, c := range f.chunks {
		out.Chunks = append(out.Chunks, proto.Clone(c).(*openshellv1.PolicyChunk))
	}
	return out, nil
}

func (f *fakeApprovals) Approve(_ context.Context, _, id string) (*openshellv1.ApproveDraftChunkResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("Approve"); err != nil {
		return nil, err
	}
	f.chunks[id].Status = "approved"
	return &openshellv1.ApproveDraftChunkResponse{PolicyVersion: 5, PolicyHash: "h5"}, nil
}

func (f *fakeApprovals) Reject(_ context.Context, _, id, reason string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("Reject"); err != nil {
		return err
	}
	f.chunks[id].Status, f.chunks[id].RejectionReason = "rejected", reason
	return nil
}

func (f *fakeApprovals) Edit(_ context.Context, _, id string, rule *sandboxv1.NetworkPolicyRule) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("Edit"); err != nil {
		return err
	}
	f.chunks[id].ProposedRule = rule
	return nil
}

func (f *fakeApprovals) Undo(_ context.Context, _, id string) (*openshellv1.UndoDraftChunkResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("Undo"); err != nil {
		return nil, err
	}
	f.chunks[id].Status = "pending"
	return &openshellv1.UndoDraftChunkResponse{PolicyVersion: 6}, nil
}

func (f *fakeApprovals) Clear(context.Context, string) (uint32, error) {
	return 0, errors.New("not used")
}

// approvalsConnections is a registry with one gateway having approvals and the gateway
// sandboxes of owners, owned by them (the draft and approval calls need one).
type approvalsConnections struct {
	a      *fakeApprovals
	owners []*v1alpha1.Sandbox
}

func (c approvalsConnections) Get(string) (gatewayAPI, error) {
	g := newFakeGateway()
	for _, sb := range c.owners {
		putOwnedGatewaySandbox(g, sb)
	}
	api := g.api()
	api.Approvals = c.a
	return api, nil
}

func TestPolicyProposalBranches(t *testing.T) {
	rule := &sandboxv1.NetworkPolicyRule{Endpoints: []*sandboxv1.NetworkEndpoint{{Host: "api.github.com", Port: 443}}}
	chunk := func(st string) *openshellv1.PolicyChunk {
		return &openshellv1.PolicyChunk{Id: "c1", Status: st, RuleName: "gh", ProposedRule: proto.Clone(rule).(*sandboxv1.NetworkPolicyRule)}
	}
	sb := &v1alpha1.Sandbox{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "agent", UID: "u1"}, Status: v1alpha1.SandboxStatus{SandboxID: "id"}}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team"}}
	proposal := func(gen int64, decision v1alpha1.ProposalDecision, mut ...func(*v1alpha1.PolicyProposal)) *v1alpha1.PolicyProposal {
		p := &v1alpha1.PolicyProposal{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "agent-x", Generation: gen},
			Spec: v1alpha1.PolicyProposalSpec{SandboxRef: v1alpha1.LocalObjectReference{Name: "agent"}, ChunkID: "c1", Decision: decision}}
		for _, m := range mut {
			m(p)
		}
		return p
	}
	approvedBefore := func(p *v1alpha1.PolicyProposal) {
		p.Status.Outcome = &v1alpha1.ProposalOutcome{Decision: v1alpha1.ProposalApproved, Generation: p.Generation - 1, PolicyVersion: 5}
	}
	type result struct {
		Ready    []string
		Gateway  v1alpha1.ChunkStatus
		Outcome  *v1alpha1.ProposalOutcome
		InFlight bool
		Calls    []string
	}
	tests := []struct {
		name     string
		p        *v1alpha1.PolicyProposal
		objs     []client.Object
		chunk    *openshellv1.PolicyChunk
		errs     map[string]error
		want     result
		twice    bool
		wantRule string
	}{
		{name: "a pending chunk waits for a decision; no call",
			p: proposal(1, v1alpha1.ProposalPending), chunk: chunk("pending"),
			want: result{Ready: []string{"Ready=True/Ready: chunk c1 is pending on the gateway"}, Gateway: v1alpha1.ChunkPending,
				Outcome: &v1alpha1.ProposalOutcome{Decision: v1alpha1.ProposalPending, Generation: 1}}},
		{name: "approve once, even when reconciled again",
			p: proposal(2, v1alpha1.ProposalApproved), chunk: chunk("pending"), twice: true,
			want: result{Ready: []string{"Ready=True/Ready: approved on the gateway: policy version 5"}, Gateway: v1alpha1.ChunkApproved,
				Outcome: &v1alpha1.ProposalOutcome{Decision: v1alpha1.ProposalApproved, Generation: 2, PolicyVersion: 5, PolicyHash: "h5"},
				Calls:   []string{"Approve"}}},
		{name: "restarted after the call: the intent is found, the gateway read, no second approve",
			p: proposal(2, v1alpha1.ProposalApproved, func(p *v1alpha1.PolicyProposal) {
				p.Status.InFlight = &v1alpha1.ProposalOutcome{Decision: v1alpha1.ProposalApproved, Generation: 2}
			}), chunk: chunk("approved"),
			want: result{Ready: []string{"Ready=True/Ready: approved on the gateway"}, Gateway: v1alpha1.ChunkApproved,
				Outcome: &v1alpha1.ProposalOutcome{Decision: v1alpha1.ProposalApproved, Generation: 2}}},
		{name: "restarted before the call: the intent is found, the chunk still pending, approved once",
			p: proposal(2, v1alpha1.ProposalApproved, func(p *v1alpha1.PolicyProposal) {
				p.Status.InFlight = &v1alpha1.ProposalOutcome{Decision: v1alpha1.ProposalApproved, Generation: 2}
			}), chunk: chunk("pending"),
			want: result{Ready: []string{"Ready=True/Ready: approved on the gateway: policy version 5"}, Gateway: v1alpha1.ChunkApproved,
				Outcome: &v1alpha1.ProposalOutcome{Decision: v1alpha1.ProposalApproved, Generation: 2, PolicyVersion: 5, PolicyHash: "h5"},
				Calls:   []string{"Approve"}}},
		{name: "refused while a global policy is active: reported, retried, not Stalled",
			p: proposal(2, v1alpha1.ProposalApproved), chunk: chunk("pending"),
			errs: map[string]error{"Approve": status.Error(codes.FailedPrecondition, "policy is managed globally; delete global policy before sandbox policy update")},
			want: result{Ready: []string{
				"Ready=False/GlobalPolicyActive: approve chunk: policy is managed globally; delete global policy before sandbox policy update (FailedPrecondition)",
				"Reconciling=True/GlobalPolicyActive: approve chunk: policy is managed globally; delete global policy before sandbox policy update (FailedPrecondition)"},
				Gateway: v1alpha1.ChunkPending,
				Outcome: &v1alpha1.ProposalOutcome{Decision: v1alpha1.ProposalApproved, Generation: 2,
					Error: "approve chunk: policy is managed globally; delete global policy before sandbox policy update (FailedPrecondition)"},
				Calls: []string{"Approve"}}},
		{name: "edit, then approve the edited rule",
			p: proposal(2, v1alpha1.ProposalApproved, func(p *v1alpha1.PolicyProposal) {
				p.Spec.Rule = &v1alpha1.NetworkPolicyRule{Endpoints: []v1alpha1.NetworkEndpoint{{Host: "api.github.com", Ports: []v1alpha1.Port{443}, Access: "read-only"}}}
			}), chunk: chunk("pending"), wantRule: "read-only",
			want: result{Ready: []string{"Ready=True/Ready: approved on the gateway: policy version 5"}, Gateway: v1alpha1.ChunkApproved,
				Outcome: &v1alpha1.ProposalOutcome{Decision: v1alpha1.ProposalApproved, Generation: 2, PolicyVersion: 5, PolicyHash: "h5"},
				Calls:   []string{"Edit", "Approve"}}},
		{name: "reject with the reason",
			p: proposal(2, v1alpha1.ProposalRejected, func(p *v1alpha1.PolicyProposal) { p.Spec.Reason = "mirror" }), chunk: chunk("pending"),
			want: result{Ready: []string{"Ready=True/Ready: rejected on the gateway: mirror"}, Gateway: v1alpha1.ChunkRejected,
				Outcome: &v1alpha1.ProposalOutcome{Decision: v1alpha1.ProposalRejected, Generation: 2}, Calls: []string{"Reject"}}},
		{name: "undo what the operator approved",
			p: proposal(3, v1alpha1.ProposalPending, approvedBefore), chunk: chunk("approved"),
			want: result{Ready: []string{"Ready=True/Ready: chunk c1 is pending on the gateway"}, Gateway: v1alpha1.ChunkPending,
				Outcome: &v1alpha1.ProposalOutcome{Decision: v1alpha1.ProposalPending, Generation: 3, PolicyVersion: 6}, Calls: []string{"Undo"}}},
		{name: "an approval made with the OpenShell CLI is mirrored, never undone",
			p: proposal(1, v1alpha1.ProposalPending), chunk: chunk("approved"),
			want: result{Ready: []string{"Ready=True/Ready: approved on the gateway"}, Gateway: v1alpha1.ChunkApproved}},
		{name: "quorum of two with one approval: no call",
			p: proposal(2, v1alpha1.ProposalApproved, func(p *v1alpha1.PolicyProposal) {
				p.Spec.Approvals = []v1alpha1.ProposalApproval{{User: "alice"}}
			}), chunk: chunk("pending"),
			objs: []client.Object{&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team", Annotations: map[string]string{v1alpha1.AnnotationApprovalQuorum: "2"}}}},
			want: result{Ready: []string{"Ready=True/Ready: 1 of 2 approvals"}, Gateway: v1alpha1.ChunkPending}},
		{name: "an invalid quorum annotation is Stalled",
			p: proposal(2, v1alpha1.ProposalApproved), chunk: chunk("pending"),
			objs: []client.Object{&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team", Annotations: map[string]string{v1alpha1.AnnotationApprovalQuorum: "many"}}}},
			want: result{Ready: []string{
				`Ready=False/InvalidSpec: namespace annotation openshell.dev/approval-quorum="many": want a number from 1 to 16`,
				`Stalled=True/InvalidSpec: namespace annotation openshell.dev/approval-quorum="many": want a number from 1 to 16`}}},
		{name: "a chunk gone from the gateway is reported",
			p: proposal(1, v1alpha1.ProposalPending),
			want: result{Ready: []string{
				"Ready=False/GatewayRejected: chunk c1 is not on the gateway (cleared)",
				"Reconciling=True/GatewayRejected: chunk c1 is not on the gateway (cleared)"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fa := &fakeApprovals{chunks: map[string]*openshellv1.PolicyChunk{}, errs: tt.errs}
			if tt.chunk != nil {
				fa.chunks["c1"] = tt.chunk
			}
			objs := append([]client.Object{sb.DeepCopy(), tt.p}, tt.objs...)
			if len(tt.objs) == 0 {
				objs = append(objs, ns.DeepCopy())
			}
			c := fake.NewClientBuilder().WithScheme(unitScheme(t)).WithObjects(objs...).
				WithStatusSubresource(&v1alpha1.PolicyProposal{}).Build()
			ev := &eventLog{}
			r := &PolicyProposalReconciler{Client: c, Gateways: approvalsConnections{a: fa, owners: []*v1alpha1.Sandbox{sb}}, Recorder: ev}
			k := newKernel(c, kindPolicyProposal, func() *v1alpha1.PolicyProposal { return &v1alpha1.PolicyProposal{} },
				kindSteps[*v1alpha1.PolicyProposal](r), ev, false, Backoff{}, time.Second)
			got, _ := reconcileOnce(t, k, keyOf(tt.p))
			if tt.twice {
				got, _ = reconcileOnce(t, k, keyOf(tt.p))
			}
			if got.Status.Outcome != nil {
				got.Status.Outcome.Time = nil
			}
			res := result{Ready: conditionsOf(got.Status.Conditions), Gateway: got.Status.GatewayStatus,
				Outcome: got.Status.Outcome, InFlight: got.Status.InFlight != nil, Calls: fa.calls}
			if d := cmp.Diff(tt.want, res); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
			if tt.wantRule != "" && fa.chunks["c1"].GetProposedRule().GetEndpoints()[0].GetAccess() != tt.wantRule {
				t.Errorf("gateway rule %v, want access %s", fa.chunks["c1"].GetProposedRule(), tt.wantRule)
			}
		})
	}
}

// TestPollModeDraftReadsKeepTheBudget: without an observation loop each sandbox's draft is
// re-read at the poll resync, or less often once its gateway has more sandboxes than the
// budget reads in that time, counting each gateway's sandboxes apart and dropping deleted ones.
func TestPollModeDraftReadsKeepTheBudget(t *testing.T) {
	sandbox := func(name, gateway string) *v1alpha1.Sandbox {
		return &v1alpha1.Sandbox{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: name},
			Spec: v1alpha1.SandboxSpec{GatewayRef: v1alpha1.GatewayReference{Name: gateway}}, Status: v1alpha1.SandboxStatus{SandboxID: "id-" + name}}
	}
	var objs []client.Object
	var owners []*v1alpha1.Sandbox
	for i := range 4 {
		owners = append(owners, sandbox(fmt.Sprintf("a%d", i), "gw-a"))
	}
	owners = append(owners, sandbox("b0", "gw-b"))
	for _, sb := range owners {
		objs = append(objs, sb)
	}
	c := fake.NewClientBuilder().WithScheme(unitScheme(t)).WithObjects(objs...).Build()
	// A budget of 2 reads a minute and a 1-minute resync: up to 2 sandboxes per gateway are
	// re-read every minute, 4 every 2 minutes.
	r := &PolicyDraftReconciler{Client: c, Gateways: approvalsConnections{a: &fakeApprovals{}, owners: owners}, Resync: time.Minute, ReadsPerMinute: 2}
	reconcile := func(name string) time.Duration {
		t.Helper()
		res, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: types.NamespacedName{Namespace: "team", Name: name}})
		if err != nil {
			t.Fatalf("reconcile %s: %v", name, err)
		}
		return res.RequeueAfter
	}
	var got []time.Duration
	for _, name := range []string{"a0", "a1", "a2", "a3", "b0", "a0"} {
		got = append(got, reconcile(name))
	}
	if err := c.Delete(context.Background(), objs[3]); err != nil {
		t.Fatal(err)
	}
	reconcile("a3")
	got = append(got, reconcile("a0"))
	r.ReadsPerMinute = -1
	got = append(got, reconcile("a0"))
	want := []time.Duration{time.Minute, time.Minute, 90 * time.Second, 2 * time.Minute, time.Minute, 2 * time.Minute,
		90 * time.Second, time.Minute}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("requeue intervals (-want +got):\n%s", diff)
	}
}
