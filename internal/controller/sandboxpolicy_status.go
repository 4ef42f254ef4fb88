package controller

import (
	"fmt"
	"slices"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
)

// policyUse is how one referencing Sandbox stands with the current policy spec.
type policyUse struct {
	// Sandbox is namespace/name, for messages.
	Sandbox string
	// State is Loaded, Pending or Failed.
	State v1alpha1.PolicyLoadStatus
	// Rejected: the gateway refused the policy itself (not a load failure).
	Rejected bool
	// Message is the sandbox's explanation when not loaded.
	Message string
}

// classifyPolicyUse places a sandbox referencing a policy whose canonical hash is hash.
// A sandbox counts as Loaded only once it runs exactly this spec (its sourceHash matches) and
// the gateway reports the revision loaded, or the create-time baseline is running.
func classifyPolicyUse(sb *v1alpha1.Sandbox, hash string) policyUse {
	use := policyUse{Sandbox: sb.Namespace + "/" + sb.Name, State: v1alpha1.PolicyLoadPending}
	ready := meta.FindStatusCondition(sb.Status.Conditions, v1alpha1.ConditionReady)
	if ready != nil {
		use.Message = ready.Message
		switch ready.Reason {
		case v1alpha1.ReasonPolicyRejected:
			use.State, use.Rejected = v1alpha1.PolicyLoadFailed, true
			return use
		case v1alpha1.ReasonPolicyFailed:
			use.State = v1alpha1.PolicyLoadFailed
			return use
		}
	}
	st := sb.Status.Policy
	if st == nil || st.SourceHash != hash {
		return use
	}
	switch st.Status {
	case v1alpha1.PolicyLoadFailed:
		use.State = v1alpha1.PolicyLoadFailed
		if st.LoadError != "" {
			use.Message = st.LoadError
		}
	case v1alpha1.PolicyLoadLoaded, "":
		if ready != nil && ready.Status == metav1.ConditionTrue {
			use.State, use.Message = v1alpha1.PolicyLoadLoaded, ""
		}
	}
	return use
}

// deriveSandboxPolicyStatus computes the counts and the outcome of a SandboxPolicy from its
// conversion error and its users. Users are reported in name order so messages are stable.
func deriveSandboxPolicyStatus(convErr error, uses []policyUse) (v1alpha1.PolicyLoadCounts, outcome) {
	uses = slices.Clone(uses)
	slices.SortFunc(uses, func(a, b policyUse) int {
		if a.Sandbox < b.Sandbox {
			return -1
		}
		if a.Sandbox > b.Sandbox {
			return 1
		}
		return 0
	})
	counts := v1alpha1.PolicyLoadCounts{Total: int32(len(uses))}
	var rejected, failed *policyUse
	for i := range uses {
		u := &uses[i]
		switch u.State {
		case v1alpha1.PolicyLoadLoaded:
			counts.Loaded++
		case v1alpha1.PolicyLoadFailed:
			counts.Failed++
			if u.Rejected && rejected == nil {
				rejected = u
			}
			if failed == nil {
				failed = u
			}
		default:
			counts.Pending++
		}
	}
	switch {
	case convErr != nil:
		return counts, outcome{Stalled: true, Reason: v1alpha1.ReasonInvalidSpec, Message: convErr.Error()}
	case rejected != nil:
		return counts, outcome{Stalled: true, Reason: v1alpha1.ReasonPolicyRejected,
			Message: fmt.Sprintf("the gateway rejected the policy for Sandbox %s: %s", rejected.Sandbox, rejected.Message)}
	case failed != nil:
		return counts, outcome{Stalled: true, Reason: v1alpha1.ReasonPolicyFailed,
			Message: fmt.Sprintf("%d of %d sandboxes failed to load the policy; Sandbox %s: %s", counts.Failed, counts.Total, failed.Sandbox, failed.Message)}
	case counts.Pending > 0:
		return counts, outcome{Reason: v1alpha1.ReasonPolicyPending,
			Message: fmt.Sprintf("%d of %d sandboxes loaded the current policy", counts.Loaded, counts.Total)}
	case counts.Total == 0:
		return counts, outcome{Ready: true, Reason: v1alpha1.ReasonReady, Message: "valid; no sandbox references this policy"}
	}
	return counts, outcome{Ready: true, Reason: v1alpha1.ReasonReady, Message: fmt.Sprintf("loaded by all %d sandboxes", counts.Total)}
}
