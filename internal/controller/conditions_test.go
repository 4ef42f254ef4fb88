package controller

import (
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
)

func TestApplyConditions(t *testing.T) {
	cases := []struct {
		name                      string
		o                         outcome
		ready, reconciling, stall metav1.ConditionStatus
	}{
		{"ready", outcome{Ready: true, Reason: "Ready", Message: "ok"}, metav1.ConditionTrue, "", ""},
		{"progressing", outcome{Reason: "Provisioning", Message: "wait"}, metav1.ConditionFalse, metav1.ConditionTrue, ""},
		{"stalled", outcome{Stalled: true, Reason: "InvalidSpec", Message: "bad"}, metav1.ConditionFalse, "", metav1.ConditionTrue},
	}
	status := func(conds []metav1.Condition, t string) metav1.ConditionStatus {
		if c := meta.FindStatusCondition(conds, t); c != nil {
			return c.Status
		}
		return ""
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Start from the opposite state to prove stale conditions are removed.
			conds := []metav1.Condition{}
			applyConditions(&conds, 1, outcome{Stalled: true, Reason: "X"})
			applyConditions(&conds, 1, outcome{Reason: "Y"})
			applyConditions(&conds, 2, tc.o)
			if status(conds, v1alpha1.ConditionReady) != tc.ready || status(conds, v1alpha1.ConditionReconciling) != tc.reconciling || status(conds, v1alpha1.ConditionStalled) != tc.stall {
				t.Fatalf("got %+v", conds)
			}
			ready := meta.FindStatusCondition(conds, v1alpha1.ConditionReady)
			if ready.Reason != tc.o.Reason || ready.Message != tc.o.Message || ready.ObservedGeneration != 2 {
				t.Fatalf("ready condition: %+v", ready)
			}
		})
	}
}
