package controller

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
	sandboxv1 "github.com/openshell-operator/openshell-operator/gen/openshell/sandbox/v1"
	openshellv1 "github.com/openshell-operator/openshell-operator/gen/openshell/v1"
)

func TestMirrorChunk(t *testing.T) {
	first := time.Date(2026, time.May, 4, 9, 0, 0, 0, time.UTC)
	c := &openshellv1.PolicyChunk{Id: "c1", Status: "rejected", RuleName: "allow_api_github_com",
		ProposedRule: &sandboxv1.NetworkPolicyRule{Name: "allow_api_github_com",
			Endpoints: []*sandboxv1.NetworkEndpoint{{Host: "api.github.com", Ports: []uint32{443, 8443}, Protocol: "rest"}},
			Binaries:  []*sandboxv1.NetworkBinary{{Path: "/usr/bin/gh"}}},
		Rationale: "denied twice", SecurityNotes: "wildcard", Confidence: 0.876, HitCount: 2,
		FirstSeenMs: first.UnixMilli(), LastSeenMs: first.Add(time.Minute).UnixMilli(), DecidedAtMs: first.Add(2 * time.Minute).UnixMilli(),
		ValidationResult: "no new findings", RejectionReason: "superseded by chunk c2"}
	var st v1alpha1.PolicyProposalStatus
	if err := mirrorChunk(&st, c); err != nil {
		t.Fatal(err)
	}
	at := func(d time.Duration) *metav1.Time { t := metav1.NewTime(first.Add(d)); return &t }
	want := v1alpha1.PolicyProposalStatus{RuleName: "allow_api_github_com",
		ProposedRule: &v1alpha1.NetworkPolicyRule{Name: "allow_api_github_com",
			Endpoints: []v1alpha1.NetworkEndpoint{{Host: "api.github.com", Ports: []v1alpha1.Port{443, 8443}, Protocol: "rest"}},
			Binaries:  []v1alpha1.NetworkBinary{{Path: "/usr/bin/gh"}}},
		Host: "api.github.com", Port: 443, Endpoint: "api.github.com:443", Binary: "/usr/bin/gh",
		Rationale: "denied twice", SecurityNotes: "wildcard", SecurityFlagged: true, ConfidencePercent: 88, HitCount: 2,
		FirstSeen: at(0), LastSeen: at(time.Minute), DecidedAt: at(2 * time.Minute), ValidationResult: "no new findings",
		GatewayStatus: v1alpha1.ChunkRejected, RejectionReason: "superseded by chunk c2", SupersededBy: "c2"}
	if d := cmp.Diff(want, st); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	back, err := ruleToGateway(st.ProposedRule)
	if err != nil || back.GetEndpoints()[0].GetPorts()[1] != 8443 || back.GetBinaries()[0].GetPath() != "/usr/bin/gh" {
		t.Errorf("round trip: %v, %v", back, err)
	}
}

func TestNextAction(t *testing.T) {
	rule := &v1alpha1.NetworkPolicyRule{Endpoints: []v1alpha1.NetworkEndpoint{{Host: "a.example.com", Port: 443}}}
	edited := &v1alpha1.NetworkPolicyRule{Endpoints: []v1alpha1.NetworkEndpoint{{Host: "a.example.com", Port: 8443}}}
	p := func(decision v1alpha1.ProposalDecision, gw v1alpha1.ChunkStatus, mut ...func(*v1alpha1.PolicyProposal)) *v1alpha1.PolicyProposal {
		out := &v1alpha1.PolicyProposal{ObjectMeta: metav1.ObjectMeta{Generation: 3},
			Spec:   v1alpha1.PolicyProposalSpec{Decision: decision},
			Status: v1alpha1.PolicyProposalStatus{GatewayStatus: gw, ProposedRule: rule}}
		for _, m := range mut {
			m(out)
		}
		return out
	}
	done := func(d v1alpha1.ProposalDecision, gen int64) func(*v1alpha1.PolicyProposal) {
		return func(p *v1alpha1.PolicyProposal) {
			p.Status.Outcome = &v1alpha1.ProposalOutcome{Decision: d, Generation: gen}
		}
	}
	tests := []struct {
		name   string
		p      *v1alpha1.PolicyProposal
		quorum int
		want   proposalAction
	}{
		{"pending stays pending", p(v1alpha1.ProposalPending, v1alpha1.ChunkPending), 1, actNone},
		{"approve", p(v1alpha1.ProposalApproved, v1alpha1.ChunkPending), 1, actApprove},
		{"approve a rejected chunk", p(v1alpha1.ProposalApproved, v1alpha1.ChunkRejected), 1, actApprove},
		{"edit before approving", p(v1alpha1.ProposalApproved, v1alpha1.ChunkPending, func(p *v1alpha1.PolicyProposal) { p.Spec.Rule = edited }), 1, actEdit},
		{"an unchanged replacement is no edit", p(v1alpha1.ProposalApproved, v1alpha1.ChunkPending, func(p *v1alpha1.PolicyProposal) { p.Spec.Rule = rule.DeepCopy() }), 1, actApprove},
		{"edit a pending one", p(v1alpha1.ProposalPending, v1alpha1.ChunkPending, func(p *v1alpha1.PolicyProposal) { p.Spec.Rule = edited }), 1, actEdit},
		{"quorum not met", p(v1alpha1.ProposalApproved, v1alpha1.ChunkPending, func(p *v1alpha1.PolicyProposal) {
			p.Spec.Approvals = []v1alpha1.ProposalApproval{{User: "alice"}}
		}), 2, actNone},
		{"quorum met", p(v1alpha1.ProposalApproved, v1alpha1.ChunkPending, func(p *v1alpha1.PolicyProposal) {
			p.Spec.Approvals = []v1alpha1.ProposalApproval{{User: "alice"}, {User: "bob"}}
		}), 2, actApprove},
		{"already approved on the gateway", p(v1alpha1.ProposalApproved, v1alpha1.ChunkApproved), 1, actNone},
		{"reject", p(v1alpha1.ProposalRejected, v1alpha1.ChunkPending), 1, actReject},
		{"reject an approved chunk", p(v1alpha1.ProposalRejected, v1alpha1.ChunkApproved), 1, actReject},
		{"already rejected", p(v1alpha1.ProposalRejected, v1alpha1.ChunkRejected), 1, actNone},
		{"undo what the operator approved", p(v1alpha1.ProposalPending, v1alpha1.ChunkApproved, done(v1alpha1.ProposalApproved, 2)), 1, actUndo},
		{"never undo an approval made elsewhere", p(v1alpha1.ProposalPending, v1alpha1.ChunkApproved), 1, actNone},
		{"this generation's decision was carried out: the gateway changed elsewhere, mirror only",
			p(v1alpha1.ProposalApproved, v1alpha1.ChunkRejected, done(v1alpha1.ProposalApproved, 3)), 1, actNone},
		{"a refused call is retried", p(v1alpha1.ProposalApproved, v1alpha1.ChunkPending, func(p *v1alpha1.PolicyProposal) {
			p.Status.Outcome = &v1alpha1.ProposalOutcome{Decision: v1alpha1.ProposalApproved, Generation: 3, Error: "refused"}
		}), 1, actApprove},
		{"an intent without outcome resumes from the gateway", p(v1alpha1.ProposalApproved, v1alpha1.ChunkApproved, func(p *v1alpha1.PolicyProposal) {
			p.Status.InFlight = &v1alpha1.ProposalOutcome{Decision: v1alpha1.ProposalApproved, Generation: 3}
		}), 1, actNone},
		{"superseded", p(v1alpha1.ProposalApproved, v1alpha1.ChunkRejected, func(p *v1alpha1.PolicyProposal) { p.Status.SupersededBy = "c2" }), 1, actNone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := nextAction(tt.p, tt.quorum); got != tt.want {
				t.Errorf("nextAction = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestProposalOutcome(t *testing.T) {
	p := func(decision v1alpha1.ProposalDecision, st v1alpha1.PolicyProposalStatus) *v1alpha1.PolicyProposal {
		return &v1alpha1.PolicyProposal{Spec: v1alpha1.PolicyProposalSpec{Decision: decision, ChunkID: "c1",
			Approvals: []v1alpha1.ProposalApproval{{User: "alice"}}}, Status: st}
	}
	tests := []struct {
		p      *v1alpha1.PolicyProposal
		quorum int
		want   string
	}{
		{p(v1alpha1.ProposalPending, v1alpha1.PolicyProposalStatus{GatewayStatus: v1alpha1.ChunkPending}), 1, "chunk c1 is pending on the gateway"},
		{p(v1alpha1.ProposalApproved, v1alpha1.PolicyProposalStatus{GatewayStatus: v1alpha1.ChunkPending}), 2, "1 of 2 approvals"},
		{p(v1alpha1.ProposalApproved, v1alpha1.PolicyProposalStatus{GatewayStatus: v1alpha1.ChunkApproved,
			Outcome: &v1alpha1.ProposalOutcome{Decision: v1alpha1.ProposalApproved, PolicyVersion: 7}}), 1, "approved on the gateway: policy version 7"},
		{p(v1alpha1.ProposalPending, v1alpha1.PolicyProposalStatus{GatewayStatus: v1alpha1.ChunkApproved}), 1, "approved on the gateway"},
		{p(v1alpha1.ProposalRejected, v1alpha1.PolicyProposalStatus{GatewayStatus: v1alpha1.ChunkRejected, RejectionReason: "no"}), 1, "rejected on the gateway: no"},
		{p(v1alpha1.ProposalPending, v1alpha1.PolicyProposalStatus{GatewayStatus: v1alpha1.ChunkRejected, SupersededBy: "c2"}), 1, "superseded by chunk c2"},
	}
	for _, tt := range tests {
		got := proposalOutcome(tt.p, tt.quorum)
		if !got.Ready || got.Message != tt.want {
			t.Errorf("outcome %+v, want Ready with %q", got, tt.want)
		}
	}
}

func TestProposalName(t *testing.T) {
	a, b := proposalName("agent", "7c1e2f0a-5b3d-4e8f-9a6b-0c1d2e3f4a5b"), proposalName("agent", "7c1e2f0a-5b3d-4e8f-9a6b-0c1d2e3f4a5c")
	if a == b || len(a) != len("agent-")+10 || a != proposalName("agent", "7c1e2f0a-5b3d-4e8f-9a6b-0c1d2e3f4a5b") {
		t.Errorf("names %q and %q: want distinct, stable, sandbox-digest10", a, b)
	}
}
