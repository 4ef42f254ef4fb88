package controller

import (
	"fmt"
	"slices"
	"strings"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
	openshellv1 "github.com/openshell-operator/openshell-operator/gen/openshell/v1"
)

// sandboxObservation is every gateway fact one Sandbox reconcile learned and every action
// it took; deriveSandboxStatus turns it (with the previous status) into the whole status.
// It holds no clients.
type sandboxObservation struct {
	// GatewayName is the sandbox's deterministic name on the gateway.
	GatewayName string
	// ID is the gateway id of the sandbox (the previous one while it cannot be seen).
	ID string
	// Sandbox is the gateway's object; nil when it does not exist (yet) or was not read.
	Sandbox *openshellv1.Sandbox
	// FromView: Sandbox came from the observation view, not from a read in this reconcile
	// (so it may be behind the gateway).
	FromView bool
	// Stale: the resource changed since the cache read it, so nothing was created and
	// nothing is written (fence.go).
	Stale bool
	// SpecInSync: the gateway's spec matches the desired spec of the current generation.
	SpecInSync bool
	// RecreatePending: updateStrategy OnDelete and a change needs a new sandbox.
	RecreatePending bool
	// RecreateReasons names the fields behind RecreatePending (stable order).
	RecreateReasons []string
	// Recreating: the old sandbox is being deleted to create a new one.
	Recreating bool
	// ProvidersAttached: the gateway's attached providers equal the desired ones.
	ProvidersAttached bool
	// Policy is the record of the policy sent to the sandbox after this reconcile's actions
	// (nil: none); it starts as the previous status' record.
	Policy *v1alpha1.SandboxPolicyState
	// PolicyVersion is the revision the operator pushed (0: none pushed; nothing to wait for).
	PolicyVersion uint32
	// PolicyRevision is the gateway's record of PolicyVersion, when known.
	PolicyRevision *openshellv1.SandboxPolicyRevision
	// ActivePolicyVersion is the sandbox's current_policy_version.
	ActivePolicyVersion uint32
	// GlobalPolicyVersion is the gateway-wide policy overriding the sandbox's (0: none).
	GlobalPolicyVersion uint32
	// Deleting: the resource is being deleted and the gateway sandbox is on its way out.
	Deleting bool
	// Failure is the error of this reconcile, if any.
	Failure *failure
	// ApprovedRulesNotInSpec counts approved proposal rules the spec lacks (nil: not
	// computed this reconcile, the previous count stays).
	ApprovedRulesNotInSpec *int32
	// HasProposals: the sandbox has PolicyProposals, so the gateway may have created policy
	// versions itself (approvals, undos) that the status follows.
	HasProposals bool
}

// sandboxDerivedStatus is the outcome of status derivation.
type sandboxDerivedStatus struct {
	// Status is the whole new status but its conditions and observedGeneration, which the
	// kernel writes from Outcome.
	Status  v1alpha1.SandboxStatus
	Outcome outcome
	// GenerationApplied: the current generation has been fully applied to the gateway.
	GenerationApplied bool
}

// sandboxPhase maps the gateway's phase.
func sandboxPhase(sb *openshellv1.Sandbox) v1alpha1.SandboxPhase {
	switch sb.GetStatus().GetPhase() {
	case openshellv1.SandboxPhase_SANDBOX_PHASE_PROVISIONING:
		return v1alpha1.SandboxPhaseProvisioning
	case openshellv1.SandboxPhase_SANDBOX_PHASE_READY:
		return v1alpha1.SandboxPhaseReady
	case openshellv1.SandboxPhase_SANDBOX_PHASE_ERROR:
		return v1alpha1.SandboxPhaseError
	case openshellv1.SandboxPhase_SANDBOX_PHASE_DELETING:
		return v1alpha1.SandboxPhaseDeleting
	default:
		return v1alpha1.SandboxPhaseUnknown
	}
}

// sandboxPolicyState maps the revision the operator pushed to a load state.
func sandboxPolicyState(o sandboxObservation) (state v1alpha1.PolicyLoadStatus, loadError string) {
	if o.PolicyVersion == 0 {
		return "", ""
	}
	if o.ActivePolicyVersion == o.PolicyVersion {
		return v1alpha1.PolicyLoadLoaded, ""
	}
	switch o.PolicyRevision.GetStatus() {
	case openshellv1.PolicyStatus_POLICY_STATUS_LOADED:
		return v1alpha1.PolicyLoadLoaded, ""
	case openshellv1.PolicyStatus_POLICY_STATUS_FAILED:
		return v1alpha1.PolicyLoadFailed, o.PolicyRevision.GetLoadError()
	case openshellv1.PolicyStatus_POLICY_STATUS_SUPERSEDED:
		return v1alpha1.PolicyLoadSuperseded, ""
	default:
		return v1alpha1.PolicyLoadPending, ""
	}
}

// gatewayReadyMessage is the message of the gateway's Ready condition, if any.
func gatewayReadyMessage(sb *openshellv1.Sandbox) string {
	for _, c := range sb.GetStatus().GetConditions() {
		if c.GetType() == "Ready" {
			if c.GetMessage() != "" {
				return c.GetMessage()
			}
			return c.GetReason()
		}
	}
	return ""
}

// deriveSandboxStatus computes the whole status from the previous one and the observation.
// Facts the reconcile could not see (a failed call) keep their previous values.
func deriveSandboxStatus(prev v1alpha1.SandboxStatus, o sandboxObservation) sandboxDerivedStatus {
	phase := v1alpha1.SandboxPhaseUnknown
	if o.Sandbox != nil {
		phase = sandboxPhase(o.Sandbox)
	}
	policyStatus, policyError := sandboxPolicyState(o)
	out := sandboxDerivedStatus{Outcome: sandboxOutcome(o, phase, policyStatus, policyError)}
	out.GenerationApplied = o.Sandbox != nil && o.SpecInSync && o.ProvidersAttached &&
		!o.RecreatePending && !o.Recreating && o.Failure == nil && !o.Deleting

	st := prev
	st.SandboxID = o.ID
	st.Policy = o.Policy.DeepCopy()
	conflict := o.Failure != nil && o.Failure.Reason == v1alpha1.ReasonConflict
	switch {
	case o.Sandbox != nil:
		st.Phase = phase
		st.GatewayName = o.Sandbox.GetMetadata().GetName()
		st.Providers = slices.Sorted(slices.Values(o.Sandbox.GetSpec().GetProviders()))
	case o.Failure == nil || conflict:
		st.Phase = phase
	}
	if st.GatewayName == "" {
		st.GatewayName = o.GatewayName
	}
	if st.Policy != nil && o.Failure == nil && o.Sandbox != nil {
		st.Policy.ActiveVersion = o.ActivePolicyVersion
	}
	if st.Policy != nil && o.PolicyVersion != 0 && o.Failure == nil {
		st.Policy.Status, st.Policy.LoadError = policyStatus, policyError
		if h := o.PolicyRevision.GetPolicyHash(); h != "" {
			st.Policy.Hash = h
		}
	}
	if o.Failure == nil || o.Failure.Reason == v1alpha1.ReasonGlobalPolicyActive {
		if st.Policy == nil && o.GlobalPolicyVersion != 0 {
			st.Policy = &v1alpha1.SandboxPolicyState{}
		}
		if st.Policy != nil {
			st.Policy.GlobalPolicyVersion = o.GlobalPolicyVersion
		}
	}
	if st.Policy != nil && o.ApprovedRulesNotInSpec != nil {
		st.Policy.ApprovedRulesNotInSpec = *o.ApprovedRulesNotInSpec
	}
	out.Status = st
	return out
}

// sandboxOutcome is the Ready condition of a sandbox. The first matching rule wins; messages
// carry no timestamps so repeated reconciles write nothing.
func sandboxOutcome(o sandboxObservation, phase v1alpha1.SandboxPhase, policyStatus v1alpha1.PolicyLoadStatus, policyError string) outcome {
	switch {
	case o.Failure != nil:
		return o.Failure.outcome
	case o.Deleting:
		return progressing(v1alpha1.ReasonDeleting, "waiting for the gateway to delete the sandbox")
	case o.Recreating:
		return progressing(v1alpha1.ReasonRecreating, "recreating the sandbox to apply changes")
	case o.Sandbox == nil:
		return progressing(v1alpha1.ReasonProgressing, "creating the sandbox on the gateway")
	case phase == v1alpha1.SandboxPhaseDeleting:
		return progressing(v1alpha1.ReasonDeleting, "the sandbox is being deleted on the gateway")
	case o.RecreatePending:
		// Progress needs a user action (delete the gateway sandbox or the resource).
		return stalled(v1alpha1.ReasonRecreatePending,
			fmt.Sprintf("updateStrategy OnDelete: changes to %s apply when the sandbox is recreated",
				strings.Join(o.RecreateReasons, ", ")))
	case phase == v1alpha1.SandboxPhaseError:
		// ERROR is recomputed by the gateway on every driver event, so it can recover:
		// Reconciling, not Stalled.
		msg := gatewayReadyMessage(o.Sandbox)
		if msg == "" {
			msg = "the gateway reports the sandbox in error"
		}
		return progressing(v1alpha1.ReasonSandboxError, msg)
	case phase != v1alpha1.SandboxPhaseReady:
		return progressing(v1alpha1.ReasonProvisioning, "the sandbox is provisioning")
	case !o.SpecInSync || !o.ProvidersAttached:
		return progressing(v1alpha1.ReasonProgressing, "applying the current generation to the sandbox")
	case policyStatus == v1alpha1.PolicyLoadFailed:
		msg := fmt.Sprintf("policy version %d failed to load", o.PolicyVersion)
		if policyError != "" {
			msg += ": " + policyError
		}
		return stalled(v1alpha1.ReasonPolicyFailed, msg)
	case policyStatus == v1alpha1.PolicyLoadPending || policyStatus == v1alpha1.PolicyLoadSuperseded:
		return progressing(v1alpha1.ReasonPolicyPending,
			fmt.Sprintf("waiting for the sandbox to load policy version %d", o.PolicyVersion))
	}
	if o.GlobalPolicyVersion != 0 {
		return readyOutcome(fmt.Sprintf("the sandbox is ready; the gateway-wide policy (version %d) overrides its own policy", o.GlobalPolicyVersion))
	}
	return readyOutcome("the sandbox is ready")
}
