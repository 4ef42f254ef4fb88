package gatewaysim

import (
	"testing"

	"google.golang.org/grpc/codes"

	inferencev1 "github.com/openshell-operator/openshell-operator/gen/openshell/inference/v1"
	openshellv1 "github.com/openshell-operator/openshell-operator/gen/openshell/v1"
)

// TestSandboxPrincipalMethodsRefuseUsers: the supervisor's RPCs are refused by
// authentication for a user principal, not answered UNIMPLEMENTED.
func TestSandboxPrincipalMethodsRefuseUsers(t *testing.T) {
	h := start(t, Options{})
	sb := h.sandbox(t, "a", nil)
	c := tctx(t)
	_, err := h.rpc.SubmitPolicyAnalysis(c, &openshellv1.SubmitPolicyAnalysisRequest{Name: "a", ProposedChunks: []*openshellv1.PolicyChunk{{RuleName: "x"}}})
	wantCode(t, err, codes.PermissionDenied)
	_, err = h.rpc.ReportPolicyStatus(c, &openshellv1.ReportPolicyStatusRequest{SandboxId: sb.GetMetadata().GetId(), Version: 1, Status: openshellv1.PolicyStatus_POLICY_STATUS_LOADED})
	wantCode(t, err, codes.PermissionDenied)
	_, err = h.rpc.GetSandboxProviderEnvironment(c, &openshellv1.GetSandboxProviderEnvironmentRequest{SandboxId: sb.GetMetadata().GetId()})
	wantCode(t, err, codes.PermissionDenied)
	_, err = h.infer.GetInferenceBundle(c, &inferencev1.GetInferenceBundleRequest{})
	wantCode(t, err, codes.PermissionDenied)
}

// TestSandboxPrincipalMethodsAuthenticateFirst: without the bearer token the gateway says
// UNAUTHENTICATED before it looks at the principal's kind.
func TestSandboxPrincipalMethodsAuthenticateFirst(t *testing.T) {
	h := start(t, Options{BearerToken: "secret"})
	_, err := h.rpc.ReportPolicyStatus(tctx(t), &openshellv1.ReportPolicyStatusRequest{SandboxId: "x", Version: 1})
	wantCode(t, err, codes.Unauthenticated)
}
