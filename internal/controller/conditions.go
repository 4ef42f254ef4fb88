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
