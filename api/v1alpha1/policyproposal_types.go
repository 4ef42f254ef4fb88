package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ProposalDecision is a reviewer's decision on a proposed rule.
// +kubebuilder:validation:Enum=Pending;Approved;Rejected
type ProposalDecision string

// Proposal decisions.
const (
	// ProposalPending: no decision yet (or an approval undone).
	ProposalPending ProposalDecision = "Pending"
	// ProposalApproved: merge the rule into the sandbox's policy (once the quorum is met).
	ProposalApproved ProposalDecision = "Approved"
	// ProposalRejected: refuse the rule (and remove it if it had been approved).
	ProposalRejected ProposalDecision = "Rejected"
)

// ChunkStatus is the gateway's status of a draft chunk.
// +kubebuilder:validation:Enum=Pending;Approved;Rejected
type ChunkStatus string

// Chunk statuses, as the gateway reports them (pending, approved, rejected).
const (
	ChunkPending  ChunkStatus = "Pending"
	ChunkApproved ChunkStatus = "Approved"
	ChunkRejected ChunkStatus = "Rejected"
)

// Proposal metadata.
const (
	// LabelSandbox is set on every PolicyProposal to the name of its Sandbox, so reviewers
	// and the plugin can select one sandbox's proposals (`-l openshell.dev/sandbox=agent`).
	LabelSandbox = "openshell.dev/sandbox"
	// AnnotationApprovalQuorum on a Namespace is the number of distinct approvers (1-16) a
	// proposal in that namespace needs before the operator approves it on the gateway.
	// A tenant whose Role covers its own Namespace object could lower it: the namespace
	// guardrail (config/components/guardrails) refuses adding, changing or removing it by
	// anyone outside the platform administrator groups. Absent: one approval, or the
	// decision alone.
	AnnotationApprovalQuorum = "openshell.dev/approval-quorum"
	// AnnotationClearProposals on a Sandbox asks the operator to clear the sandbox's pending
	// draft chunks on the gateway (ClearDraftChunks); the operator removes the annotation
	// once done. `kubectl openshell clear` sets it to the request time.
	AnnotationClearProposals = "openshell.dev/clear-proposals"
	// MaxApprovalQuorum is the largest quorum a namespace can ask for.
	MaxApprovalQuorum = 16
)

// ProposalApproval is one reviewer's approval. An admission policy (config/admission)
// refuses an approval added in anyone's name but the requester's.
type ProposalApproval struct {
	// User is the approver's Kubernetes user name, exactly as the API server authenticated
	// the request that added this entry (request.userInfo.username).
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	User string `json:"user"`
	// Time the approval was given.
	Time metav1.Time `json:"time"`
}

// PolicyProposalSpec is the reviewer's decision on one draft chunk. The operator creates the
// object with sandboxRef, chunkID and decision Pending; reviewers change the rest.
// +kubebuilder:validation:XValidation:rule="self.decision != 'Rejected' || (has(self.reason) && size(self.reason) > 0)",message="reason is required when the decision is Rejected"
// +kubebuilder:validation:XValidation:rule="self.decision == 'Approved' || !has(self.approvals) || size(self.approvals) == 0",message="approvals can only be recorded with the decision Approved"
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.decision) || oldSelf.decision != 'Rejected' || self.decision != 'Pending'",message="a rejected proposal cannot go back to Pending (the gateway has no such transition): approve it or leave it rejected"
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.decision) || oldSelf.decision != 'Approved' || self.decision != 'Approved' || (has(self.rule) == has(oldSelf.rule) && (!has(self.rule) || self.rule == oldSelf.rule))",message="the rule of an approved proposal cannot change: undo the approval first (decision Pending)"
type PolicyProposalSpec struct {
	// SandboxRef names the Sandbox (same namespace) whose policy advisor proposed the rule.
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="sandboxRef is immutable"
	SandboxRef LocalObjectReference `json:"sandboxRef"`
	// ChunkID is the gateway's id of the draft chunk.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="chunkID is immutable"
	ChunkID string `json:"chunkID"`
	// Decision: Pending, Approved or Rejected. Setting Pending on an approved proposal undoes
	// the approval (the gateway removes the rule in a new policy version).
	// +kubebuilder:default=Pending
	// +optional
	Decision ProposalDecision `json:"decision,omitempty"`
	// Reason for a rejection; sent to the gateway, which surfaces it to the sandbox's agent.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Reason string `json:"reason,omitempty"`
	// Rule replaces the proposed rule (status.proposedRule) before it is approved; the
	// operator edits the pending chunk on the gateway, then approves it.
	// +optional
	Rule *NetworkPolicyRule `json:"rule,omitempty"`
	// Approvals are the reviewers who approved, one entry per user. Each entry's user must
	// be the user who added it (verified at admission). With a namespace quorum of N the
	// operator approves on the gateway once N distinct users are listed.
	// +kubebuilder:validation:MaxItems=16
	// +listType=map
	// +listMapKey=user
	// +optional
	Approvals []ProposalApproval `json:"approvals,omitempty"`
}

// ProposalOutcome is what the gateway made of the last decision the operator sent.
type ProposalOutcome struct {
	// Decision the operator sent (Approved, Rejected or Pending for an undo).
	// +optional
	Decision ProposalDecision `json:"decision,omitempty"`
	// Generation of the proposal whose decision was sent.
	// +optional
	Generation int64 `json:"generation,omitempty"`
	// PolicyVersion is the sandbox policy version the gateway created (approve, undo, reject
	// of an approved chunk).
	// +optional
	PolicyVersion uint32 `json:"policyVersion,omitempty"`
	// PolicyHash is the gateway's hash of that version.
	// +optional
	PolicyHash string `json:"policyHash,omitempty"`
	// Error is the gateway's refusal, verbatim (for example a global policy is active).
	// +kubebuilder:validation:MaxLength=4096
	// +optional
	Error string `json:"error,omitempty"`
	// Time the gateway answered.
	// +optional
	Time *metav1.Time `json:"time,omitempty"`
}

// PolicyProposalStatus mirrors the gateway's draft chunk and reports the decision's outcome.
type PolicyProposalStatus struct {
	CommonStatus `json:",inline"`
	// RuleName is the network policy key the rule is proposed under.
	// +optional
	RuleName string `json:"ruleName,omitempty"`
	// ProposedRule is the rule the policy advisor proposed (after an edit: the edited rule).
	// +optional
	ProposedRule *NetworkPolicyRule `json:"proposedRule,omitempty"`
	// Host of the denied connection that led to the proposal.
	// +optional
	Host string `json:"host,omitempty"`
	// Port of the denied connection.
	// +optional
	Port int32 `json:"port,omitempty"`
	// Endpoint is host:port, for display.
	// +optional
	Endpoint string `json:"endpoint,omitempty"`
	// Binary that made the denied connection.
	// +optional
	Binary string `json:"binary,omitempty"`
	// Rationale is the advisor's explanation.
	// +optional
	Rationale string `json:"rationale,omitempty"`
	// SecurityNotes are the concerns the gateway's analysis flagged; empty when none.
	// +optional
	SecurityNotes string `json:"securityNotes,omitempty"`
	// SecurityFlagged is true when securityNotes is not empty (approve-all skips these
	// unless asked).
	// +optional
	SecurityFlagged bool `json:"securityFlagged,omitempty"`
	// ConfidencePercent is the analysis confidence, 0-100 (0 in mechanistic mode).
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	// +optional
	ConfidencePercent int32 `json:"confidencePercent,omitempty"`
	// HitCount is how often the endpoint was denied and proposed again.
	// +optional
	HitCount int32 `json:"hitCount,omitempty"`
	// FirstSeen is when the endpoint was first proposed.
	// +optional
	FirstSeen *metav1.Time `json:"firstSeen,omitempty"`
	// LastSeen is when it was last proposed again.
	// +optional
	LastSeen *metav1.Time `json:"lastSeen,omitempty"`
	// ValidationResult is the gateway prover's verdict, for humans.
	// +optional
	ValidationResult string `json:"validationResult,omitempty"`
	// GatewayStatus is the chunk's status on the gateway.
	// +optional
	GatewayStatus ChunkStatus `json:"gatewayStatus,omitempty"`
	// RejectionReason is the reason the gateway stored with a rejection.
	// +optional
	RejectionReason string `json:"rejectionReason,omitempty"`
	// SupersededBy is the chunk that replaced this one (the gateway rejected this one as
	// "superseded by chunk <id>"); deciding a superseded proposal has no effect.
	// +optional
	SupersededBy string `json:"supersededBy,omitempty"`
	// DecidedAt is when the gateway recorded the last decision.
	// +optional
	DecidedAt *metav1.Time `json:"decidedAt,omitempty"`
	// RequiredApprovals is the namespace's quorum when the status was computed.
	// +optional
	RequiredApprovals int32 `json:"requiredApprovals,omitempty"`
	// InFlight is the decision the operator is sending to the gateway, recorded before the
	// call so a restart resumes from the gateway's state instead of sending it twice.
	// +optional
	InFlight *ProposalOutcome `json:"inFlight,omitempty"`
	// Outcome is the gateway's answer to the last decision sent.
	// +optional
	Outcome *ProposalOutcome `json:"outcome,omitempty"`
}

// PolicyProposal is one network rule the sandbox's policy advisor proposes (a gateway draft
// chunk), and the reviewer's decision on it. The operator creates it in the sandbox's
// namespace, owned by the Sandbox.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=pp;proposal,categories=openshell
// +kubebuilder:printcolumn:name="Sandbox",type=string,JSONPath=`.spec.sandboxRef.name`
// +kubebuilder:printcolumn:name="Endpoint",type=string,JSONPath=`.status.endpoint`
// +kubebuilder:printcolumn:name="Binary",type=string,JSONPath=`.status.binary`
// +kubebuilder:printcolumn:name="Flagged",type=boolean,JSONPath=`.status.securityFlagged`
// +kubebuilder:printcolumn:name="Decision",type=string,JSONPath=`.spec.decision`
// +kubebuilder:printcolumn:name="Gateway",type=string,JSONPath=`.status.gatewayStatus`
// +kubebuilder:printcolumn:name="Rule",type=string,JSONPath=`.status.ruleName`,priority=1
// +kubebuilder:printcolumn:name="Superseded By",type=string,JSONPath=`.status.supersededBy`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type PolicyProposal struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the reviewer's decision.
	Spec PolicyProposalSpec `json:"spec"`
	// Status mirrors the gateway's chunk.
	// Until the operator's first write it reads {observedGeneration: 0}, so kstatus (Flux) and
	// Argo CD read a new object as not yet observed, never as Current.
	// +optional
	// +kubebuilder:default={observedGeneration: 0}
	Status PolicyProposalStatus `json:"status,omitempty"`
}

// PolicyProposalList is a list of PolicyProposals.
// +kubebuilder:object:root=true
type PolicyProposalList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	// Items are the proposals.
	Items []PolicyProposal `json:"items"`
}

// GetConditions returns the conditions.
func (o *PolicyProposal) GetConditions() []metav1.Condition { return o.Status.Conditions }

// SetConditions replaces the conditions.
func (o *PolicyProposal) SetConditions(c []metav1.Condition) { o.Status.Conditions = c }

func init() {
	register(&PolicyProposal{}, &PolicyProposalList{})
}
