package controller

import (
	"encoding/json"
	"fmt"
	"math"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
	sandboxv1 "github.com/openshell-operator/openshell-operator/gen/openshell/sandbox/v1"
	openshellv1 "github.com/openshell-operator/openshell-operator/gen/openshell/v1"
	"github.com/openshell-operator/openshell-operator/internal/approvals"
)

// ruleFromGateway converts a wire rule to the CRD's shape (the JSON names are the proto's).
func ruleFromGateway(r *sandboxv1.NetworkPolicyRule) (*v1alpha1.NetworkPolicyRule, error) {
	if r == nil {
		return nil, nil
	}
	b, err := protojson.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode rule: %w", err)
	}
	out := &v1alpha1.NetworkPolicyRule{}
	if err := json.Unmarshal(b, out); err != nil {
		return nil, fmt.Errorf("convert rule: %w", err)
	}
	return out, nil
}

// ruleToGateway converts a CRD rule to the wire type; unknown fields fail.
func ruleToGateway(r *v1alpha1.NetworkPolicyRule) (*sandboxv1.NetworkPolicyRule, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode rule: %w", err)
	}
	out := &sandboxv1.NetworkPolicyRule{}
	if err := protojson.Unmarshal(b, out); err != nil {
		return nil, fmt.Errorf("convert rule: %w", err)
	}
	return out, nil
}

// chunkStatusOf maps the gateway's chunk status strings.
func chunkStatusOf(s string) v1alpha1.ChunkStatus {
	switch s {
	case "approved":
		return v1alpha1.ChunkApproved
	case "rejected":
		return v1alpha1.ChunkRejected
	}
	return v1alpha1.ChunkPending
}

// msTime is a millisecond timestamp as an API time; nil for 0.
func msTime(ms int64) *metav1.Time {
	if ms <= 0 {
		return nil
	}
	t := metav1.NewTime(time.UnixMilli(ms).UTC())
	return &t
}

// mirrorChunk copies the gateway's chunk into the proposal's status fields (the outcome
// fields are the controller's).
func mirrorChunk(st *v1alpha1.PolicyProposalStatus, c *openshellv1.PolicyChunk) error {
	rule, err := ruleFromGateway(c.GetProposedRule())
	if err != nil {
		return err
	}
	st.RuleName, st.ProposedRule = c.GetRuleName(), rule
	st.Host, st.Port, st.Binary = "", 0, c.GetBinary()
	if rule != nil && len(rule.Endpoints) > 0 {
		ep := rule.Endpoints[0]
		st.Host, st.Port = ep.Host, int32(ep.Port)
		if st.Port == 0 && len(ep.Ports) > 0 {
			st.Port = int32(ep.Ports[0])
		}
		if st.Binary == "" && len(rule.Binaries) > 0 {
			st.Binary = string(rule.Binaries[0].Path)
		}
	}
	st.Endpoint = st.Host
	if st.Port != 0 {
		st.Endpoint = fmt.Sprintf("%s:%d", st.Host, st.Port)
	}
	st.Rationale, st.SecurityNotes = c.GetRationale(), c.GetSecurityNotes()
	st.SecurityFlagged = c.GetSecurityNotes() != ""
	st.ConfidencePercent = int32(math.Round(math.Max(0, math.Min(1, float64(c.GetConfidence()))) * 100))
	st.HitCount = c.GetHitCount()
	st.FirstSeen, st.LastSeen = msTime(c.GetFirstSeenMs()), msTime(c.GetLastSeenMs())
	if st.FirstSeen == nil {
		st.FirstSeen = msTime(c.GetCreatedAtMs())
	}
	st.ValidationResult = c.GetValidationResult()
	st.GatewayStatus = chunkStatusOf(c.GetStatus())
	st.RejectionReason = c.GetRejectionReason()
	st.SupersededBy = approvals.SupersededBy(c.GetRejectionReason())
	st.DecidedAt = msTime(c.GetDecidedAtMs())
	return nil
}

// proposalAction is the gateway call a reconcile makes for a decision.
type proposalAction string

// Actions: none, or one of the chunk calls (edit is followed by approve when approving).
const (
	actNone    proposalAction = ""
	actEdit    proposalAction = "edit"
	actApprove proposalAction = "approve"
	actReject  proposalAction = "reject"
	actUndo    proposalAction = "undo"
)

// ruleEdited reports whether the reviewer's replacement rule differs from the chunk's.
func ruleEdited(p *v1alpha1.PolicyProposal) bool {
	return p.Spec.Rule != nil && !equality.Semantic.DeepEqual(p.Spec.Rule, p.Status.ProposedRule)
}

// decisionDone reports whether the current generation's decision was carried out: the
// operator then only mirrors the gateway, so a decision made elsewhere (the OpenShell CLI)
// is shown, never reverted.
func decisionDone(p *v1alpha1.PolicyProposal) bool {
	o := p.Status.Outcome
	return p.Status.InFlight == nil && o != nil && o.Generation == p.Generation && o.Error == ""
}

// nextAction decides the call for p's decision given the mirrored chunk status; none when
// the gateway already shows the decision, when it was carried out for this generation, for
// a superseded chunk, or while the quorum is not met. An undo needs an approval the operator
// carried out or saw (outcome Approved), so a chunk approved outside Kubernetes is never
// undone by the default Pending decision.
func nextAction(p *v1alpha1.PolicyProposal, quorum int) proposalAction {
	if decisionDone(p) || p.Status.SupersededBy != "" {
		return actNone
	}
	gw := p.Status.GatewayStatus
	switch p.Spec.Decision {
	case v1alpha1.ProposalApproved:
		switch {
		case !approvals.QuorumMet(p, quorum) || gw == v1alpha1.ChunkApproved:
			return actNone
		case gw == v1alpha1.ChunkPending && ruleEdited(p):
			return actEdit
		}
		return actApprove
	case v1alpha1.ProposalRejected:
		if gw == v1alpha1.ChunkRejected {
			return actNone
		}
		return actReject
	}
	switch {
	case gw == v1alpha1.ChunkApproved && p.Status.Outcome != nil && p.Status.Outcome.Decision == v1alpha1.ProposalApproved:
		return actUndo
	case gw == v1alpha1.ChunkPending && ruleEdited(p):
		return actEdit
	}
	return actNone
}

// proposalOutcome is the Ready condition of a proposal whose gateway calls succeeded.
func proposalOutcome(p *v1alpha1.PolicyProposal, quorum int) outcome {
	st := &p.Status
	switch {
	case st.SupersededBy != "":
		return readyOutcome("superseded by chunk " + st.SupersededBy)
	case p.Spec.Decision == v1alpha1.ProposalApproved && st.GatewayStatus == v1alpha1.ChunkPending && !approvals.QuorumMet(p, quorum):
		return readyOutcome(fmt.Sprintf("%d of %d approvals", len(p.Spec.Approvals), quorum))
	case st.GatewayStatus == v1alpha1.ChunkApproved:
		if st.Outcome != nil && st.Outcome.PolicyVersion > 0 && st.Outcome.Decision == v1alpha1.ProposalApproved {
			return readyOutcome(fmt.Sprintf("approved on the gateway: policy version %d", st.Outcome.PolicyVersion))
		}
		return readyOutcome("approved on the gateway")
	case st.GatewayStatus == v1alpha1.ChunkRejected:
		if st.RejectionReason != "" {
			return readyOutcome("rejected on the gateway: " + st.RejectionReason)
		}
		return readyOutcome("rejected on the gateway")
	}
	return readyOutcome(fmt.Sprintf("chunk %s is pending on the gateway", p.Spec.ChunkID))
}
