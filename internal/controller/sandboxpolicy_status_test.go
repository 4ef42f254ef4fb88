package controller

import (
	"errors"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
)

func policyUser(name, reason string, ready bool, st *v1alpha1.SandboxPolicyState) *v1alpha1.Sandbox {
	sb := &v1alpha1.Sandbox{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name}}
	status := metav1.ConditionFalse
	if ready {
		status = metav1.ConditionTrue
	}
	if reason != "" {
		sb.Status.Conditions = []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: status, Reason: reason, Message: reason + " message"}}
	}
	sb.Status.Policy = st
	return sb
}

func TestClassifyPolicyUse(t *testing.T) {
	const h = "current"
	cases := []struct {
		name         string
		sb           *v1alpha1.Sandbox
		state        v1alpha1.PolicyLoadStatus
		rejected     bool
		wantMessages string
	}{
		{"no status yet", policyUser("a", "", false, nil), v1alpha1.PolicyLoadPending, false, ""},
		{"baseline running and ready", policyUser("a", v1alpha1.ReasonReady, true, &v1alpha1.SandboxPolicyState{SourceHash: h}), v1alpha1.PolicyLoadLoaded, false, ""},
		{"baseline still provisioning", policyUser("a", v1alpha1.ReasonProvisioning, false, &v1alpha1.SandboxPolicyState{SourceHash: h}), v1alpha1.PolicyLoadPending, false, "Provisioning message"},
		{"older spec loaded", policyUser("a", v1alpha1.ReasonReady, true, &v1alpha1.SandboxPolicyState{SourceHash: "old", Status: v1alpha1.PolicyLoadLoaded}), v1alpha1.PolicyLoadPending, false, "Ready message"},
		{"revision pending", policyUser("a", v1alpha1.ReasonPolicyPending, false, &v1alpha1.SandboxPolicyState{SourceHash: h, Version: 2, Status: v1alpha1.PolicyLoadPending}), v1alpha1.PolicyLoadPending, false, "PolicyPending message"},
		{"revision loaded", policyUser("a", v1alpha1.ReasonReady, true, &v1alpha1.SandboxPolicyState{SourceHash: h, Version: 2, Status: v1alpha1.PolicyLoadLoaded}), v1alpha1.PolicyLoadLoaded, false, ""},
		{"revision failed", policyUser("a", v1alpha1.ReasonPolicyFailed, false, &v1alpha1.SandboxPolicyState{SourceHash: h, Version: 2, Status: v1alpha1.PolicyLoadFailed, LoadError: "bad"}), v1alpha1.PolicyLoadFailed, false, "PolicyFailed message"},
		{"gateway rejected", policyUser("a", v1alpha1.ReasonPolicyRejected, false, &v1alpha1.SandboxPolicyState{SourceHash: "old"}), v1alpha1.PolicyLoadFailed, true, "PolicyRejected message"},
		{"global policy blocks", policyUser("a", v1alpha1.ReasonGlobalPolicyActive, false, &v1alpha1.SandboxPolicyState{SourceHash: "old"}), v1alpha1.PolicyLoadPending, false, "GlobalPolicyActive message"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := classifyPolicyUse(tc.sb, h)
			if got.State != tc.state || got.Rejected != tc.rejected || got.Message != tc.wantMessages {
				t.Fatalf("got %+v, want state %s rejected %v message %q", got, tc.state, tc.rejected, tc.wantMessages)
			}
		})
	}
}

func TestDeriveSandboxPolicyStatus(t *testing.T) {
	loaded := policyUse{Sandbox: "ns/a", State: v1alpha1.PolicyLoadLoaded}
	pending := policyUse{Sandbox: "ns/b", State: v1alpha1.PolicyLoadPending}
	failedB := policyUse{Sandbox: "ns/b", State: v1alpha1.PolicyLoadFailed, Message: "load error b"}
	failedC := policyUse{Sandbox: "ns/c", State: v1alpha1.PolicyLoadFailed, Message: "load error c"}
	rejected := policyUse{Sandbox: "ns/d", State: v1alpha1.PolicyLoadFailed, Rejected: true, Message: "unsafe host"}
	cases := []struct {
		name    string
		convErr error
		uses    []policyUse
		counts  v1alpha1.PolicyLoadCounts
		want    outcome
	}{
		{"unused", nil, nil, v1alpha1.PolicyLoadCounts{},
			outcome{Ready: true, Reason: v1alpha1.ReasonReady, Message: "valid; no sandbox references this policy"}},
		{"all loaded", nil, []policyUse{loaded}, v1alpha1.PolicyLoadCounts{Total: 1, Loaded: 1},
			outcome{Ready: true, Reason: v1alpha1.ReasonReady, Message: "loaded by all 1 sandboxes"}},
		{"one pending", nil, []policyUse{pending, loaded}, v1alpha1.PolicyLoadCounts{Total: 2, Loaded: 1, Pending: 1},
			outcome{Reason: v1alpha1.ReasonPolicyPending, Message: "1 of 2 sandboxes loaded the current policy"}},
		{"failures name the first sandbox by name", nil, []policyUse{failedC, loaded, failedB}, v1alpha1.PolicyLoadCounts{Total: 3, Loaded: 1, Failed: 2},
			outcome{Stalled: true, Reason: v1alpha1.ReasonPolicyFailed, Message: "2 of 3 sandboxes failed to load the policy; Sandbox ns/b: load error b"}},
		{"gateway rejection wins over load failures", nil, []policyUse{failedB, rejected}, v1alpha1.PolicyLoadCounts{Total: 2, Failed: 2},
			outcome{Stalled: true, Reason: v1alpha1.ReasonPolicyRejected, Message: "the gateway rejected the policy for Sandbox ns/d: unsafe host"}},
		{"conversion error", errors.New("convert policy: boom"), []policyUse{loaded}, v1alpha1.PolicyLoadCounts{Total: 1, Loaded: 1},
			outcome{Stalled: true, Reason: v1alpha1.ReasonInvalidSpec, Message: "convert policy: boom"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			counts, got := deriveSandboxPolicyStatus(tc.convErr, tc.uses)
			if counts != tc.counts {
				t.Errorf("counts = %+v, want %+v", counts, tc.counts)
			}
			if got != tc.want {
				t.Errorf("outcome = %+v, want %+v", got, tc.want)
			}
		})
	}
}
