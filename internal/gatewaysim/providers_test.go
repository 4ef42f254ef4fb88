package gatewaysim

import (
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	datamodelv1 "github.com/openshell-operator/openshell-operator/gen/openshell/datamodel/v1"
	inferencev1 "github.com/openshell-operator/openshell-operator/gen/openshell/inference/v1"
	openshellv1 "github.com/openshell-operator/openshell-operator/gen/openshell/v1"
)

// TestCredentialClashIgnoresInactiveKeys: only active, unexpired, valid environment keys
// must be unique across a sandbox's providers (semantics §3.1, §3.4).
func TestCredentialClashIgnoresInactiveKeys(t *testing.T) {
	h := start(t, Options{})
	c := tctx(t)
	past := time.Now().Add(-time.Hour).UnixMilli()
	future := time.Now().Add(time.Hour).UnixMilli()
	mk := func(name string, creds map[string]string, exp map[string]int64) {
		t.Helper()
		_, err := h.rpc.CreateProvider(c, &openshellv1.CreateProviderRequest{Provider: &datamodelv1.Provider{
			Metadata: &datamodelv1.ObjectMeta{Name: name}, Type: "generic", Credentials: creds, CredentialExpiresAtMs: exp,
		}})
		if err != nil {
			t.Fatalf("create provider %s: %v", name, err)
		}
	}
	mk("live", map[string]string{"TOKEN": "a", "not-an-env": "x", "9LIVES": "y"}, nil)
	mk("expired", map[string]string{"TOKEN": "b"}, map[string]int64{"TOKEN": past})
	mk("invalid-keys", map[string]string{"not-an-env": "c", "9LIVES": "d", "OTHER": "e"}, nil)
	mk("unexpired", map[string]string{"TOKEN": "f"}, map[string]int64{"TOKEN": future})

	for _, providers := range [][]string{{"live", "expired"}, {"live", "invalid-keys"}} {
		if _, err := h.rpc.CreateSandbox(c, &openshellv1.CreateSandboxRequest{Name: providers[1], Spec: &openshellv1.SandboxSpec{Providers: providers}}); err != nil {
			t.Fatalf("providers %v do not clash on active keys: %v", providers, err)
		}
	}
	_, err := h.rpc.CreateSandbox(c, &openshellv1.CreateSandboxRequest{Name: "clash", Spec: &openshellv1.SandboxSpec{Providers: []string{"live", "unexpired"}}})
	wantCode(t, err, codes.FailedPrecondition)

	// Attach follows the same rule.
	h.sandbox(t, "attach", &openshellv1.SandboxSpec{Providers: []string{"live"}})
	if _, err := h.rpc.AttachSandboxProvider(c, &openshellv1.AttachSandboxProviderRequest{SandboxName: "attach", ProviderName: "expired"}); err != nil {
		t.Fatalf("attach an expired clash: %v", err)
	}
	_, err = h.rpc.AttachSandboxProvider(c, &openshellv1.AttachSandboxProviderRequest{SandboxName: "attach", ProviderName: "unexpired"})
	wantCode(t, err, codes.FailedPrecondition)
}

func TestProviderValidationGaps(t *testing.T) {
	h := start(t, Options{})
	c := tctx(t)
	_, err := h.rpc.CreateProvider(c, &openshellv1.CreateProviderRequest{Provider: &datamodelv1.Provider{
		Metadata: &datamodelv1.ObjectMeta{Name: "neg"}, Type: "openai", Credentials: map[string]string{"OPENAI_API_KEY": "k"},
		CredentialExpiresAtMs: map[string]int64{"OPENAI_API_KEY": -1},
	}})
	wantCode(t, err, codes.InvalidArgument)

	h.provider(t, "oai", "openai", map[string]string{"OPENAI_API_KEY": "k"}, nil)
	resp, err := h.infer.SetClusterInference(c, &inferencev1.SetClusterInferenceRequest{RouteName: "  sandbox-system \t", ProviderName: "oai", ModelId: "m", NoVerify: true})
	if err != nil {
		t.Fatalf("a route name with surrounding whitespace is trimmed: %v", err)
	}
	if resp.GetRouteName() != RouteSandboxSystem {
		t.Fatalf("route %q, want the canonical %q", resp.GetRouteName(), RouteSandboxSystem)
	}
	_, err = h.infer.GetClusterInference(c, &inferencev1.GetClusterInferenceRequest{RouteName: " inference.local "})
	wantCode(t, err, codes.NotFound)

	h.provider(t, "empty", "openai", map[string]string{"OPENAI_API_KEY": ""}, nil)
	_, err = h.infer.SetClusterInference(c, &inferencev1.SetClusterInferenceRequest{ProviderName: "empty", ModelId: "m", NoVerify: true})
	wantCode(t, err, codes.InvalidArgument)
}
