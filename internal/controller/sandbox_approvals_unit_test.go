package controller

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
	datamodelv1 "github.com/openshell-operator/openshell-operator/gen/openshell/datamodel/v1"
	sandboxv1 "github.com/openshell-operator/openshell-operator/gen/openshell/sandbox/v1"
	openshellv1 "github.com/openshell-operator/openshell-operator/gen/openshell/v1"
)

// draftReads is a gateway's draft chunks that records each GetDraft (sandbox and filter),
// applies the status filter as the gateway does, and can fail it.
type draftReads struct {
	fakeApprovals
	reads []string
	err   error
}

func (d *draftReads) GetDraft(ctx context.Context, sandbox, statusFilter string) (*openshellv1.GetDraftPolicyResponse, error) {
	d.reads = append(d.reads, sandbox+" "+statusFilter)
	if d.err != nil {
		return nil, d.err
	}
	all, err := d.fakeApprovals.GetDraft(ctx, sandbox, statusFilter)
	if err != nil {
		return nil, err
	}
	out := &openshellv1.GetDraftPolicyResponse{}
	for _, c := range all.GetChunks() {
		if statusFilter == "" || c.GetStatus() == statusFilter {
			out.Chunks = append(out.Chunks, c)
		}
	}
	return out, nil
}

// pushedRules is the last pushed policy's network rules as "key=host:port,...", sorted.
func pushedRules(revs []*openshellv1.SandboxPolicyRevision) []string {
	if len(revs) == 0 {
		return nil
	}
	var out []string
	for k, r := range revs[len(revs)-1].GetPolicy().GetNetworkPolicies() {
		var eps []string
		for _, ep := range r.GetEndpoints() {
			port := ep.GetPort()
			if port == 0 && len(ep.GetPorts()) > 0 {
				port = ep.GetPorts()[0]
			}
			eps = append(eps, fmt.Sprintf("%s:%d", ep.GetHost(), port))
		}
		out = append(out, k+"="+strings.Join(eps, ","))
	}
	sort.Strings(out)
	return out
}

// TestSandboxApprovedRulesComeFromTheGateway: the rules merged into the pushed policy are the
// gateway's approved draft chunks of the gateway sandbox this Sandbox owns. A PolicyProposal's
// status (tenant-writable) claiming an approval, or an approval in flight, pushes nothing; a
// failed read pushes nothing either (not the spec without the approved rules); proposals are
// only the hint to read, and nothing is read for a gateway sandbox the Sandbox does not own.
func TestSandboxApprovedRulesComeFromTheGateway(t *testing.T) {
	name := GatewayName("team", "agent")
	imds := v1alpha1.NetworkPolicyRule{Name: "imds", Endpoints: []v1alpha1.NetworkEndpoint{{Host: "169.254.169.254", Port: 80}}}
	proposal := func(pname string, mut func(*v1alpha1.PolicyProposal)) *v1alpha1.PolicyProposal {
		p := &v1alpha1.PolicyProposal{
			ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: pname, Labels: map[string]string{v1alpha1.LabelSandbox: "agent"}},
			Spec:       v1alpha1.PolicyProposalSpec{SandboxRef: v1alpha1.LocalObjectReference{Name: "agent"}, ChunkID: "c1", Decision: v1alpha1.ProposalPending},
		}
		if mut != nil {
			mut(p)
		}
		return p
	}
	forged := proposal("forged", func(p *v1alpha1.PolicyProposal) {
		p.Spec.ChunkID = "nonexistent"
		p.Status = v1alpha1.PolicyProposalStatus{GatewayStatus: v1alpha1.ChunkApproved, RuleName: "imds", ProposedRule: imds.DeepCopy()}
	})
	inFlight := proposal("inflight", func(p *v1alpha1.PolicyProposal) {
		p.Spec.ChunkID, p.Spec.Decision, p.Spec.Rule = "nonexistent", v1alpha1.ProposalApproved, imds.DeepCopy()
		p.Status = v1alpha1.PolicyProposalStatus{GatewayStatus: v1alpha1.ChunkPending, RuleName: "imds", ProposedRule: imds.DeepCopy(),
			InFlight: &v1alpha1.ProposalOutcome{Decision: v1alpha1.ProposalApproved, Generation: 1}}
	})
	// The genuine proposal's status says nothing yet (the mirror lags): the gateway decides.
	genuine := proposal(proposalName("agent", "c1"), nil)
	chunk := func(id, st, host string) *openshellv1.PolicyChunk {
		return &openshellv1.PolicyChunk{Id: id, Status: st, RuleName: "allow_" + id, Binary: "/usr/bin/curl",
			ProposedRule: &sandboxv1.NetworkPolicyRule{Endpoints: []*sandboxv1.NetworkEndpoint{{Host: host, Port: 443}}}}
	}
	chunks := map[string]*openshellv1.PolicyChunk{
		"c1": chunk("c1", "approved", "api.example.com"),
		"c2": chunk("c2", "pending", "pending.example.com"),
		"c3": chunk("c3", "rejected", "rejected.example.com"),
	}
	unavailable := status.Error(codes.Unavailable, "gateway restarting")

	type result struct {
		Reason    string
		Pushed    []string
		Updates   int
		Reads     []string
		NotInSpec int32
	}
	read := []string{name + " approved"}
	tests := []struct {
		name      string
		proposals []client.Object
		chunks    map[string]*openshellv1.PolicyChunk
		readErr   error
		owner     string
		want      result
	}{
		{name: "a forged Approved status is not pushed", proposals: []client.Object{forged},
			want: result{Reason: v1alpha1.ReasonPolicyPending, Pushed: []string{"github=api.github.com:443"}, Updates: 1, Reads: read}},
		{name: "a forged approval in flight is not pushed", proposals: []client.Object{inFlight},
			want: result{Reason: v1alpha1.ReasonPolicyPending, Pushed: []string{"github=api.github.com:443"}, Updates: 1, Reads: read}},
		{name: "a chunk approved on the gateway is merged; pending and rejected ones are not", proposals: []client.Object{genuine}, chunks: chunks,
			want: result{Reason: v1alpha1.ReasonPolicyPending, Pushed: []string{"allow_c1=api.example.com:443", "github=api.github.com:443"},
				Updates: 1, Reads: read, NotInSpec: 1}},
		{name: "a forged status beside a genuine approval: only the gateway's rule", proposals: []client.Object{forged, genuine}, chunks: chunks,
			want: result{Reason: v1alpha1.ReasonPolicyPending, Pushed: []string{"allow_c1=api.example.com:443", "github=api.github.com:443"},
				Updates: 1, Reads: read, NotInSpec: 1}},
		{name: "a failed read pushes nothing", proposals: []client.Object{genuine}, chunks: chunks, readErr: unavailable,
			want: result{Reason: gatewayFailure("get approved draft chunks", unavailable).Reason, Reads: read}},
		{name: "no proposals: no read", chunks: chunks,
			want: result{Reason: v1alpha1.ReasonPolicyPending, Pushed: []string{"github=api.github.com:443"}, Updates: 1}},
		{name: "a gateway sandbox owned by someone else: no read, no push", proposals: []client.Object{genuine}, chunks: chunks, owner: "uid-other",
			want: result{Reason: v1alpha1.ReasonConflict}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newFakeGateway()
			owner := unitSandbox()
			if tt.owner != "" {
				owner.UID = "uid-other"
			}
			g.sandboxes[name] = &openshellv1.Sandbox{Metadata: &datamodelv1.ObjectMeta{Name: name, Id: "id-7", Labels: OwnershipLabels(owner)},
				Spec:   &openshellv1.SandboxSpec{Template: &openshellv1.SandboxTemplate{Image: "example.com/agent:1"}},
				Status: &openshellv1.SandboxStatus{Phase: openshellv1.SandboxPhase_SANDBOX_PHASE_READY}}
			drafts := &draftReads{fakeApprovals: fakeApprovals{chunks: tt.chunks}, err: tt.readErr}
			sb := unitSandbox(func(sb *v1alpha1.Sandbox) {
				sb.Status.SandboxID = "id-7"
				sb.Spec.Policy = &v1alpha1.SandboxPolicySpec{NetworkPolicies: map[string]v1alpha1.NetworkPolicyRule{
					"github": {Endpoints: []v1alpha1.NetworkEndpoint{{Host: "api.github.com", Port: 443}}}}}
			})
			objs := append([]client.Object{sb}, tt.proposals...)
			k, _ := sandboxKernel(fakeAPI(t, objs...), reviewConnections{g: g, a: drafts}, &eventLog{})
			got, _ := reconcileOnce(t, k, keyOf(sb))
			res := result{Reason: readyReason(got.Status.Conditions), Pushed: pushedRules(g.policies[name]),
				Updates: g.calls["Policies.Update"], Reads: drafts.reads}
			if got.Status.Policy != nil {
				res.NotInSpec = got.Status.Policy.ApprovedRulesNotInSpec
			}
			if d := cmp.Diff(tt.want, res); d != "" {
				t.Errorf("result (-want +got):\n%s", d)
			}
		})
	}
}
