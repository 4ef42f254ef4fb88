package controller

import (
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
	openshellv1 "github.com/openshell-operator/openshell-operator/gen/openshell/v1"
)

func gwSandbox(phase openshellv1.SandboxPhase, conds ...*openshellv1.SandboxCondition) *openshellv1.Sandbox {
	return &openshellv1.Sandbox{Status: &openshellv1.SandboxStatus{Phase: phase, Conditions: conds}}
}

func TestDeriveSandboxStatus(t *testing.T) {
	ready := gwSandbox(openshellv1.SandboxPhase_SANDBOX_PHASE_READY)
	inSync := func(o sandboxObservation) sandboxObservation {
		o.SpecInSync, o.ProvidersAttached = true, true
		return o
	}
	rev := func(s openshellv1.PolicyStatus, loadErr string) *openshellv1.SandboxPolicyRevision {
		return &openshellv1.SandboxPolicyRevision{Version: 2, Status: s, LoadError: loadErr}
	}
	tests := []struct {
		name        string
		obs         sandboxObservation
		phase       string
		ready       metav1.ConditionStatus
		reason      string
		message     string
		reconciling bool
		stalled     bool
		applied     bool
		policy      string
	}{
		{name: "ready", obs: inSync(sandboxObservation{Sandbox: ready}),
			phase: sandboxPhaseReady, ready: metav1.ConditionTrue, reason: v1alpha1.ReasonReady,
			message: "the sandbox is ready", applied: true},
		{name: "ready under a global policy says so", obs: inSync(sandboxObservation{Sandbox: ready, GlobalPolicyVersion: 3}),
			phase: sandboxPhaseReady, ready: metav1.ConditionTrue, reason: v1alpha1.ReasonReady,
			message: "the sandbox is ready; the gateway-wide policy (version 3) overrides its own policy", applied: true},
		{name: "absent", obs: sandboxObservation{},
			phase: sandboxPhaseUnknown, ready: metav1.ConditionFalse, reason: v1alpha1.ReasonProgressing,
			message: "creating the sandbox on the gateway", reconciling: true},
		{name: "provisioning", obs: inSync(sandboxObservation{Sandbox: gwSandbox(openshellv1.SandboxPhase_SANDBOX_PHASE_PROVISIONING)}),
			phase: sandboxPhaseProvisioning, ready: metav1.ConditionFalse, reason: v1alpha1.ReasonProvisioning,
			message: "the sandbox is provisioning", reconciling: true, applied: true},
		{name: "error carries the gateway message and is not stalled",
			obs: inSync(sandboxObservation{Sandbox: gwSandbox(openshellv1.SandboxPhase_SANDBOX_PHASE_ERROR,
				&openshellv1.SandboxCondition{Type: "Ready", Status: "False", Reason: "Unschedulable", Message: "0/3 nodes available"})}),
			phase: sandboxPhaseError, ready: metav1.ConditionFalse, reason: v1alpha1.ReasonSandboxError,
			message: "0/3 nodes available", reconciling: true, applied: true},
		{name: "error without message", obs: inSync(sandboxObservation{Sandbox: gwSandbox(openshellv1.SandboxPhase_SANDBOX_PHASE_ERROR)}),
			phase: sandboxPhaseError, ready: metav1.ConditionFalse, reason: v1alpha1.ReasonSandboxError,
			message: "the gateway reports the sandbox in error", reconciling: true, applied: true},
		{name: "deleting", obs: inSync(sandboxObservation{Sandbox: gwSandbox(openshellv1.SandboxPhase_SANDBOX_PHASE_DELETING)}),
			phase: sandboxPhaseDeleting, ready: metav1.ConditionFalse, reason: v1alpha1.ReasonDeleting,
			message: "the sandbox is being deleted on the gateway", reconciling: true, applied: true},
		{name: "ready but providers not attached", obs: sandboxObservation{Sandbox: ready, SpecInSync: true},
			phase: sandboxPhaseReady, ready: metav1.ConditionFalse, reason: v1alpha1.ReasonProgressing,
			message: "applying the current generation to the sandbox", reconciling: true},
		{name: "ready but spec of an older generation", obs: sandboxObservation{Sandbox: ready, ProvidersAttached: true},
			phase: sandboxPhaseReady, ready: metav1.ConditionFalse, reason: v1alpha1.ReasonProgressing,
			message: "applying the current generation to the sandbox", reconciling: true},
		{name: "recreate pending under OnDelete is stalled",
			obs:   inSync(sandboxObservation{Sandbox: ready, RecreatePending: true, RecreateReasons: []string{"image", "gpu"}}),
			phase: sandboxPhaseReady, ready: metav1.ConditionFalse, reason: v1alpha1.ReasonRecreatePending,
			message: "updateStrategy OnDelete: changes to image, gpu apply when the sandbox is recreated", stalled: true},
		{name: "recreating", obs: sandboxObservation{Sandbox: gwSandbox(openshellv1.SandboxPhase_SANDBOX_PHASE_DELETING), Recreating: true},
			phase: sandboxPhaseDeleting, ready: metav1.ConditionFalse, reason: v1alpha1.ReasonRecreating,
			message: "recreating the sandbox to apply changes", reconciling: true},
		{name: "policy pending", obs: inSync(sandboxObservation{Sandbox: ready, PolicyVersion: 2,
			PolicyRevision: rev(openshellv1.PolicyStatus_POLICY_STATUS_PENDING, "")}),
			phase: sandboxPhaseReady, ready: metav1.ConditionFalse, reason: v1alpha1.ReasonPolicyPending,
			message: "waiting for the sandbox to load policy version 2", reconciling: true, applied: true, policy: sandboxPolicyPending},
		{name: "policy loaded by revision", obs: inSync(sandboxObservation{Sandbox: ready, PolicyVersion: 2,
			PolicyRevision: rev(openshellv1.PolicyStatus_POLICY_STATUS_LOADED, "")}),
			phase: sandboxPhaseReady, ready: metav1.ConditionTrue, reason: v1alpha1.ReasonReady,
			message: "the sandbox is ready", applied: true, policy: sandboxPolicyLoaded},
		{name: "policy loaded by active version", obs: inSync(sandboxObservation{Sandbox: ready, PolicyVersion: 2, ActivePolicyVersion: 2}),
			phase: sandboxPhaseReady, ready: metav1.ConditionTrue, reason: v1alpha1.ReasonReady,
			message: "the sandbox is ready", applied: true, policy: sandboxPolicyLoaded},
		{name: "policy failed is stalled, sandbox kept", obs: inSync(sandboxObservation{Sandbox: ready, PolicyVersion: 2,
			PolicyRevision: rev(openshellv1.PolicyStatus_POLICY_STATUS_FAILED, "bad rule")}),
			phase: sandboxPhaseReady, ready: metav1.ConditionFalse, reason: v1alpha1.ReasonPolicyFailed,
			message: "policy version 2 failed to load: bad rule", stalled: true, applied: true, policy: sandboxPolicyFailed},
		{name: "retryable failure", obs: inSync(sandboxObservation{Sandbox: ready,
			Failure: &sandboxFailure{Reason: v1alpha1.ReasonGatewayUnavailable, Message: "gateway unavailable"}}),
			phase: sandboxPhaseReady, ready: metav1.ConditionFalse, reason: v1alpha1.ReasonGatewayUnavailable,
			message: "gateway unavailable", reconciling: true},
		{name: "terminal failure", obs: sandboxObservation{
			Failure: &sandboxFailure{Reason: v1alpha1.ReasonGatewayRejected, Message: "spec is invalid", Terminal: true}},
			phase: sandboxPhaseUnknown, ready: metav1.ConditionFalse, reason: v1alpha1.ReasonGatewayRejected,
			message: "spec is invalid", stalled: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := deriveSandboxStatus(tt.obs)
			if got.Phase != tt.phase || got.Ready != tt.ready || got.Reason != tt.reason || got.Message != tt.message {
				t.Fatalf("got phase=%s ready=%s reason=%s message=%q; want %s %s %s %q",
					got.Phase, got.Ready, got.Reason, got.Message, tt.phase, tt.ready, tt.reason, tt.message)
			}
			if got.Reconciling != tt.reconciling || got.Stalled != tt.stalled {
				t.Fatalf("reconciling=%v stalled=%v, want %v %v", got.Reconciling, got.Stalled, tt.reconciling, tt.stalled)
			}
			if got.GenerationApplied != tt.applied {
				t.Fatalf("generationApplied=%v, want %v", got.GenerationApplied, tt.applied)
			}
			if got.PolicyStatus != tt.policy {
				t.Fatalf("policy=%q, want %q", got.PolicyStatus, tt.policy)
			}
			if got.Ready == metav1.ConditionTrue && (got.Reconciling || got.Stalled) {
				t.Fatal("Ready=True must not be Reconciling or Stalled")
			}
		})
	}
}

func TestClassifySandboxPolicyErrors(t *testing.T) {
	global := status.Error(codes.FailedPrecondition, "policy is managed globally; delete global policy before sandbox policy update")
	invalid := status.Error(codes.InvalidArgument, "policy contains unsafe content: x")
	tests := []struct {
		name     string
		err      error
		reason   string
		terminal bool
	}{
		{"global policy blocks updates: clears when it goes", fmt.Errorf("%w: %w", errGlobalPolicyActive, global), v1alpha1.ReasonGlobalPolicyActive, false},
		{"gateway rejects the policy: needs a spec change", fmt.Errorf("%w: %w", errPolicyRejected, invalid), v1alpha1.ReasonPolicyRejected, true},
		{"dependency", fmt.Errorf("%w: SandboxPolicy \"p\" not found", errSandboxDependency), v1alpha1.ReasonDependencyNotReady, false},
		{"unavailable", status.Error(codes.Unavailable, "down"), v1alpha1.ReasonGatewayUnavailable, false},
		{"other invalid argument", invalid, v1alpha1.ReasonGatewayRejected, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := classifySandboxError("policy", tc.err)
			if f.Reason != tc.reason || f.Terminal != tc.terminal {
				t.Fatalf("got %+v, want reason %s terminal %v", f, tc.reason, tc.terminal)
			}
		})
	}
	if f := classifySandboxError("policy", fmt.Errorf("%w: %w", errGlobalPolicyActive, global)); f.Message != "policy: policy is managed globally; delete global policy before sandbox policy update" {
		t.Fatalf("message carries the gateway's words: %q", f.Message)
	}
}
