package controller

import (
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
)

// outcome is the result of one reconcile as shown in the conditions.
type outcome struct {
	// Ready means the object converged.
	Ready bool
	// Stalled means only a user change can fix it (a terminal error).
	Stalled bool
	// Reason and Message of the Ready condition (and of Reconciling or Stalled).
	Reason, Message string
}

// readyOutcome is Ready=True with the Ready reason.
func readyOutcome(msg string) outcome {
	return outcome{Ready: true, Reason: v1alpha1.ReasonReady, Message: msg}
}

// progressing is Ready=False, Reconciling=True.
func progressing(reason, msg string) outcome { return outcome{Reason: reason, Message: msg} }

// stalled is Ready=False, Stalled=True: only a user change can fix it.
func stalled(reason, msg string) outcome { return outcome{Stalled: true, Reason: reason, Message: msg} }

// applyConditions sets Ready, Reconciling and Stalled from o, kstatus-compatibly: Ready=True
// removes the other two; otherwise Ready=False with Stalled=True when terminal, else
// Reconciling=True, all with the same reason and message.
func applyConditions(conds *[]metav1.Condition, generation int64, o outcome) {
	set := func(t string, s metav1.ConditionStatus) {
		meta.SetStatusCondition(conds, metav1.Condition{Type: t, Status: s, Reason: o.Reason,
			Message: o.Message, ObservedGeneration: generation})
	}
	switch {
	case o.Ready:
		set(v1alpha1.ConditionReady, metav1.ConditionTrue)
		meta.RemoveStatusCondition(conds, v1alpha1.ConditionReconciling)
		meta.RemoveStatusCondition(conds, v1alpha1.ConditionStalled)
	case o.Stalled:
		set(v1alpha1.ConditionReady, metav1.ConditionFalse)
		set(v1alpha1.ConditionStalled, metav1.ConditionTrue)
		meta.RemoveStatusCondition(conds, v1alpha1.ConditionReconciling)
	default:
		set(v1alpha1.ConditionReady, metav1.ConditionFalse)
		set(v1alpha1.ConditionReconciling, metav1.ConditionTrue)
		meta.RemoveStatusCondition(conds, v1alpha1.ConditionStalled)
	}
}

// readyReason is the reason of the Ready condition ("" when there is none).
func readyReason(conds []metav1.Condition) string {
	if c := meta.FindStatusCondition(conds, v1alpha1.ConditionReady); c != nil {
		return c.Reason
	}
	return ""
}

// readyChanged reports a change of the Ready condition's status or reason, which is when an
// event is worth emitting.
func readyChanged(before, after []metav1.Condition) bool {
	find := func(cs []metav1.Condition) (metav1.ConditionStatus, string) {
		if c := meta.FindStatusCondition(cs, v1alpha1.ConditionReady); c != nil {
			return c.Status, c.Reason
		}
		return "", ""
	}
	s1, r1 := find(before)
	s2, r2 := find(after)
	return s1 != s2 || r1 != r2
}
