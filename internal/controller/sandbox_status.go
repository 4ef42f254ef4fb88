package controller

import (
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
	openshellv1 "github.com/openshell-operator/openshell-operator/gen/openshell/v1"
)

// Sandbox phases written to status (the gateway's phases, in Kubernetes casing).
const (
	sandboxPhaseProvisioning = "Provisioning"
	sandboxPhaseReady        = "Ready"
	sandboxPhaseError        = "Error"
	sandboxPhaseDeleting     = "Deleting"
	sandboxPhaseUnknown      = "Unknown"
)

// Policy load states written to status.
const (
	sandboxPolicyPending    = "Pending"
	sandboxPolicyLoaded     = "Loaded"
	sandboxPolicyFailed     = "Failed"
	sandboxPolicySuperseded = "Superseded"
)

// sandboxFailure is a classified error of one reconcile.
type sandboxFailure struct {
	Reason   string
	Message  string
	Terminal bool // needs a spec change: Stalled, no hot loop
}

// sandboxObservation is everything status derivation needs; it holds no clients.
type sandboxObservation struct {
	// Sandbox is the gateway's object; nil when it does not exist (yet).
	Sandbox *openshellv1.Sandbox
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
	// PolicyVersion is the revision the operator pushed (0: none pushed; nothing to wait for).
	PolicyVersion uint32
	// PolicyRevision is the gateway's record of PolicyVersion, when known.
	PolicyRevision *openshellv1.SandboxPolicyRevision
	// ActivePolicyVersion is the sandbox's current_policy_version.
	ActivePolicyVersion uint32
	// GlobalPolicyVersion is the gateway-wide policy overriding the sandbox's (0: none).
	GlobalPolicyVersion uint32
	// Failure is the error of this reconcile, if any.
	Failure *sandboxFailure
}

// sandboxDerivedStatus is the outcome of status derivation.
type sandboxDerivedStatus struct {
	Phase        string
	PolicyStatus string
	PolicyError  string
	Ready        metav1.ConditionStatus
	Reason       string
	Message      string
	Reconciling  bool
	Stalled      bool
	// GenerationApplied: the current generation has been fully applied to the gateway.
	GenerationApplied bool
}

// sandboxPhase maps the gateway's phase.
func sandboxPhase(sb *openshellv1.Sandbox) string {
	switch sb.GetStatus().GetPhase() {
	case openshellv1.SandboxPhase_SANDBOX_PHASE_PROVISIONING:
		return sandboxPhaseProvisioning
	case openshellv1.SandboxPhase_SANDBOX_PHASE_READY:
		return sandboxPhaseReady
	case openshellv1.SandboxPhase_SANDBOX_PHASE_ERROR:
		return sandboxPhaseError
	case openshellv1.SandboxPhase_SANDBOX_PHASE_DELETING:
		return sandboxPhaseDeleting
	default:
		return sandboxPhaseUnknown
	}
}

// sandboxPolicyState maps the revision the operator pushed to a load state.
func sandboxPolicyState(o sandboxObservation) (state, loadError string) {
	if o.PolicyVersion == 0 {
		return "", ""
	}
	if o.ActivePolicyVersion == o.PolicyVersion {
		return sandboxPolicyLoaded, ""
	}
	switch o.PolicyRevision.GetStatus() {
	case openshellv1.PolicyStatus_POLICY_STATUS_LOADED:
		return sandboxPolicyLoaded, ""
	case openshellv1.PolicyStatus_POLICY_STATUS_FAILED:
		return sandboxPolicyFailed, o.PolicyRevision.GetLoadError()
	case openshellv1.PolicyStatus_POLICY_STATUS_SUPERSEDED:
		return sandboxPolicySuperseded, ""
	default:
		return sandboxPolicyPending, ""
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

// deriveSandboxStatus computes phase and conditions. The first matching rule wins; messages
// carry no timestamps so repeated reconciles write nothing.
func deriveSandboxStatus(o sandboxObservation) sandboxDerivedStatus {
	out := sandboxDerivedStatus{Ready: metav1.ConditionFalse, Phase: sandboxPhaseUnknown}
	if o.Sandbox != nil {
		out.Phase = sandboxPhase(o.Sandbox)
	}
	out.PolicyStatus, out.PolicyError = sandboxPolicyState(o)
	out.GenerationApplied = o.Sandbox != nil && o.SpecInSync && o.ProvidersAttached &&
		!o.RecreatePending && !o.Recreating && o.Failure == nil

	notReady := func(reason, msg string, stalled bool) sandboxDerivedStatus {
		out.Reason, out.Message = reason, msg
		out.Stalled, out.Reconciling = stalled, !stalled
		return out
	}
	switch {
	case o.Failure != nil:
		return notReady(o.Failure.Reason, o.Failure.Message, o.Failure.Terminal)
	case o.Recreating:
		return notReady(v1alpha1.ReasonRecreating, "recreating the sandbox to apply changes", false)
	case o.Sandbox == nil:
		return notReady(v1alpha1.ReasonProgressing, "creating the sandbox on the gateway", false)
	case out.Phase == sandboxPhaseDeleting:
		return notReady(v1alpha1.ReasonDeleting, "the sandbox is being deleted on the gateway", false)
	case o.RecreatePending:
		// Progress needs a user action (delete the gateway sandbox or the resource).
		return notReady(v1alpha1.ReasonRecreatePending,
			fmt.Sprintf("updateStrategy OnDelete: changes to %s apply when the sandbox is recreated",
				strings.Join(o.RecreateReasons, ", ")), true)
	case out.Phase == sandboxPhaseError:
		// ERROR is recomputed by the gateway on every driver event, so it can recover:
		// Reconciling, not Stalled.
		msg := gatewayReadyMessage(o.Sandbox)
		if msg == "" {
			msg = "the gateway reports the sandbox in error"
		}
		return notReady(v1alpha1.ReasonSandboxError, msg, false)
	case out.Phase != sandboxPhaseReady:
		return notReady(v1alpha1.ReasonProvisioning, "the sandbox is provisioning", false)
	case !o.SpecInSync || !o.ProvidersAttached:
		return notReady(v1alpha1.ReasonProgressing, "applying the current generation to the sandbox", false)
	case out.PolicyStatus == sandboxPolicyFailed:
		msg := fmt.Sprintf("policy version %d failed to load", o.PolicyVersion)
		if out.PolicyError != "" {
			msg += ": " + out.PolicyError
		}
		return notReady(v1alpha1.ReasonPolicyFailed, msg, true)
	case out.PolicyStatus == sandboxPolicyPending || out.PolicyStatus == sandboxPolicySuperseded:
		return notReady(v1alpha1.ReasonPolicyPending,
			fmt.Sprintf("waiting for the sandbox to load policy version %d", o.PolicyVersion), false)
	}
	out.Ready, out.Reason, out.Message = metav1.ConditionTrue, v1alpha1.ReasonReady, "the sandbox is ready"
	if o.GlobalPolicyVersion != 0 {
		out.Message = fmt.Sprintf("the sandbox is ready; the gateway-wide policy (version %d) overrides its own policy", o.GlobalPolicyVersion)
	}
	return out
}
