package controller

import (
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/google/go-cmp/cmp"

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
	type want struct {
		Phase   v1alpha1.SandboxPhase
		Policy  v1alpha1.PolicyLoadStatus
		Outcome outcome
		Applied bool
	}
	progress := func(reason, msg string) outcome { return progressing(reason, msg) }
	tests := []struct {
		name string
		obs  sandboxObservation
		want want
	}{
		{"ready", inSync(sandboxObservation{Sandbox: ready}),
			want{Phase: v1alpha1.SandboxPhaseReady, Outcome: readyOutcome("the sandbox is ready"), Applied: true}},
		{"ready under a global policy says so", inSync(sandboxObservation{Sandbox: ready, GlobalPolicyVersion: 3}),
			want{Phase: v1alpha1.SandboxPhaseReady, Applied: true,
				Outcome: readyOutcome("the sandbox is ready; the gateway-wide policy (version 3) overrides its own policy")}},
		{"absent", sandboxObservation{},
			want{Phase: v1alpha1.SandboxPhaseUnknown, Outcome: progress(v1alpha1.ReasonProgressing, "creating the sandbox on the gateway")}},
		{"provisioning", inSync(sandboxObservation{Sandbox: gwSandbox(openshellv1.SandboxPhase_SANDBOX_PHASE_PROVISIONING)}),
			want{Phase: v1alpha1.SandboxPhaseProvisioning, Applied: true, Outcome: progress(v1alpha1.ReasonProvisioning, "the sandbox is provisioning")}},
		{"error carries the gateway message and is not stalled",
			inSync(sandboxObservation{Sandbox: gwSandbox(openshellv1.SandboxPhase_SANDBOX_PHASE_ERROR,
				&openshellv1.SandboxCondition{Type: "Ready", Status: "False", Reason: "Unschedulable", Message: "0/3 nodes available"})}),
			want{Phase: v1alpha1.SandboxPhaseError, Applied: true, Outcome: progress(v1alpha1.ReasonSandboxError, "0/3 nodes available")}},
		{"error without message", inSync(sandboxObservation{Sandbox: gwSandbox(openshellv1.SandboxPhase_SANDBOX_PHASE_ERROR)}),
			want{Phase: v1alpha1.SandboxPhaseError, Applied: true, Outcome: progress(v1alpha1.ReasonSandboxError, "the gateway reports the sandbox in error")}},
		{"deleting", inSync(sandboxObservation{Sandbox: gwSandbox(openshellv1.SandboxPhase_SANDBOX_PHASE_DELETING)}),
			want{Phase: v1alpha1.SandboxPhaseDeleting, Applied: true, Outcome: progress(v1alpha1.ReasonDeleting, "the sandbox is being deleted on the gateway")}},
		{"resource deleting", sandboxObservation{Sandbox: ready, Deleting: true},
			want{Phase: v1alpha1.SandboxPhaseReady, Outcome: progress(v1alpha1.ReasonDeleting, "waiting for the gateway to delete the sandbox")}},
		{"ready but providers not attached", sandboxObservation{Sandbox: ready, SpecInSync: true},
			want{Phase: v1alpha1.SandboxPhaseReady, Outcome: progress(v1alpha1.ReasonProgressing, "applying the current generation to the sandbox")}},
		{"ready but spec of an older generation", sandboxObservation{Sandbox: ready, ProvidersAttached: true},
			want{Phase: v1alpha1.SandboxPhaseReady, Outcome: progress(v1alpha1.ReasonProgressing, "applying the current generation to the sandbox")}},
		{"recreate pending under OnDelete is stalled",
			inSync(sandboxObservation{Sandbox: ready, RecreatePending: true, RecreateReasons: []string{"image", "gpu"}}),
			want{Phase: v1alpha1.SandboxPhaseReady,
				Outcome: stalled(v1alpha1.ReasonRecreatePending, "updateStrategy OnDelete: changes to image, gpu apply when the sandbox is recreated")}},
		{"recreating", sandboxObservation{Sandbox: gwSandbox(openshellv1.SandboxPhase_SANDBOX_PHASE_DELETING), Recreating: true},
			want{Phase: v1alpha1.SandboxPhaseDeleting, Outcome: progress(v1alpha1.ReasonRecreating, "recreating the sandbox to apply changes")}},
		{"policy pending", inSync(sandboxObservation{Sandbox: ready, PolicyVersion: 2, Policy: &v1alpha1.SandboxPolicyState{Version: 2},
			PolicyRevision: rev(openshellv1.PolicyStatus_POLICY_STATUS_PENDING, "")}),
			want{Phase: v1alpha1.SandboxPhaseReady, Policy: v1alpha1.PolicyLoadPending, Applied: true,
				Outcome: progress(v1alpha1.ReasonPolicyPending, "waiting for the sandbox to load policy version 2")}},
		{"policy loaded by revision", inSync(sandboxObservation{Sandbox: ready, PolicyVersion: 2, Policy: &v1alpha1.SandboxPolicyState{Version: 2},
			PolicyRevision: rev(openshellv1.PolicyStatus_POLICY_STATUS_LOADED, "")}),
			want{Phase: v1alpha1.SandboxPhaseReady, Policy: v1alpha1.PolicyLoadLoaded, Applied: true, Outcome: readyOutcome("the sandbox is ready")}},
		{"policy loaded by active version", inSync(sandboxObservation{Sandbox: ready, PolicyVersion: 2, ActivePolicyVersion: 2,
			Policy: &v1alpha1.SandboxPolicyState{Version: 2}}),
			want{Phase: v1alpha1.SandboxPhaseReady, Policy: v1alpha1.PolicyLoadLoaded, Applied: true, Outcome: readyOutcome("the sandbox is ready")}},
		{"policy failed is stalled, sandbox kept", inSync(sandboxObservation{Sandbox: ready, PolicyVersion: 2, Policy: &v1alpha1.SandboxPolicyState{Version: 2},
			PolicyRevision: rev(openshellv1.PolicyStatus_POLICY_STATUS_FAILED, "bad rule")}),
			want{Phase: v1alpha1.SandboxPhaseReady, Policy: v1alpha1.PolicyLoadFailed, Applied: true,
				Outcome: stalled(v1alpha1.ReasonPolicyFailed, "policy version 2 failed to load: bad rule")}},
		{"retryable failure keeps the last phase", inSync(sandboxObservation{
			Failure: failed(v1alpha1.ReasonGatewayUnavailable, "gateway unavailable", retryBackoff)}),
			want{Phase: v1alpha1.SandboxPhaseReady, Outcome: progress(v1alpha1.ReasonGatewayUnavailable, "gateway unavailable")}},
		{"terminal failure", sandboxObservation{Failure: failed(v1alpha1.ReasonGatewayRejected, "spec is invalid", retryOnChange)},
			want{Phase: v1alpha1.SandboxPhaseReady, Outcome: stalled(v1alpha1.ReasonGatewayRejected, "spec is invalid")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prev := v1alpha1.SandboxStatus{Phase: v1alpha1.SandboxPhaseReady}
			d := deriveSandboxStatus(prev, tt.obs)
			var policy v1alpha1.PolicyLoadStatus
			if d.Status.Policy != nil {
				policy = d.Status.Policy.Status
			}
			got := want{Phase: d.Status.Phase, Policy: policy, Outcome: d.Outcome, Applied: d.GenerationApplied}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Fatalf("derived status (-want +got):\n%s", diff)
			}
		})
	}
}

func TestClassifySandboxPolicyErrors(t *testing.T) {
	global := status.Error(codes.FailedPrecondition, "policy is managed globally; delete global policy before sandbox policy update")
	invalid := status.Error(codes.InvalidArgument, "policy contains unsafe content: x")
	tests := []struct {
		name  string
		err   error
		want  outcome
		retry retry
	}{
		{"global policy blocks updates: clears when it goes",
			withReason(fmt.Errorf("%w: %w", errGlobalPolicyActive, global), v1alpha1.ReasonGlobalPolicyActive, retryDependency),
			progressing(v1alpha1.ReasonGlobalPolicyActive, "policy: policy is managed globally; delete global policy before sandbox policy update (FailedPrecondition)"),
			retryDependency},
		{"gateway rejects the policy: needs a spec change",
			withReason(fmt.Errorf("%w: %w", errPolicyRejected, invalid), v1alpha1.ReasonPolicyRejected, retryOnChange),
			stalled(v1alpha1.ReasonPolicyRejected, "policy: policy contains unsafe content: x (InvalidArgument)"), retryOnChange},
		{"unavailable", status.Error(codes.Unavailable, "down"),
			progressing(v1alpha1.ReasonGatewayUnavailable, "policy: down (Unavailable)"), retryBackoff},
		{"other invalid argument", invalid,
			stalled(v1alpha1.ReasonGatewayRejected, "policy: policy contains unsafe content: x (InvalidArgument)"), retryOnChange},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := gatewayFailure("policy", tc.err)
			if diff := cmp.Diff(tc.want, f.outcome); diff != "" || f.Retry != tc.retry {
				t.Fatalf("(-want +got):\n%s\nretry %v, want %v", diff, f.Retry, tc.retry)
			}
		})
	}
}
