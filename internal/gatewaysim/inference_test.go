package gatewaysim

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	inferencev1 "github.com/openshell-operator/openshell-operator/gen/openshell/inference/v1"
)

// closedLoopbackURL is a loopback URL nothing listens on.
func closedLoopbackURL(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	_ = lis.Close()
	return "http://" + addr + "/v1"
}

// TestInferenceVerificationProbes: verification uses the provider's configured base URL,
// probes it, and fails with FAILED_PRECONDITION when the endpoint does not answer 2xx
// (semantics §4 steps 3-4); no_verify skips the probe.
func TestInferenceVerificationProbes(t *testing.T) {
	var hits atomic.Int32
	var lastAuth atomic.Value
	fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		lastAuth.Store(r.Header.Get("Authorization") + r.Header.Get("x-api-key"))
		FakeInferenceHandler().ServeHTTP(w, r)
	}))
	defer fake.Close()
	unauthorized := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "bad key", http.StatusUnauthorized)
	}))
	defer unauthorized.Close()

	h := start(t, Options{})
	c := tctx(t)
	h.provider(t, "local", "openai", map[string]string{"OPENAI_API_KEY": "sk-local"}, map[string]string{"OPENAI_BASE_URL": fake.URL + "/v1/"})
	h.provider(t, "claude", "anthropic", map[string]string{"OTHER": "", "ANTHROPIC_KEY_ALT": "ak"}, map[string]string{"ANTHROPIC_BASE_URL": fake.URL})
	h.provider(t, "down", "openai", map[string]string{"OPENAI_API_KEY": "sk"}, map[string]string{"OPENAI_BASE_URL": closedLoopbackURL(t)})
	h.provider(t, "denied", "nvidia", map[string]string{"NVIDIA_API_KEY": "nv"}, map[string]string{"NVIDIA_BASE_URL": unauthorized.URL})

	resp, err := h.infer.SetClusterInference(c, &inferencev1.SetClusterInferenceRequest{ProviderName: "local", ModelId: "gpt"})
	if err != nil {
		t.Fatal(err)
	}
	if !resp.GetValidationPerformed() || len(resp.GetValidatedEndpoints()) != 1 || resp.GetValidatedEndpoints()[0].GetUrl() != fake.URL+"/v1/chat/completions" {
		t.Fatalf("verified endpoints %v, want the configured base URL", resp.GetValidatedEndpoints())
	}
	if hits.Load() != 1 || lastAuth.Load() != "Bearer sk-local" {
		t.Fatalf("probe hits %d auth %q", hits.Load(), lastAuth.Load())
	}
	resp, err = h.infer.SetClusterInference(c, &inferencev1.SetClusterInferenceRequest{ProviderName: "claude", ModelId: "claude-x"})
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.GetValidatedEndpoints()[0]; got.GetUrl() != fake.URL+"/messages" || got.GetProtocol() != "anthropic_messages" || lastAuth.Load() != "ak" {
		t.Fatalf("anthropic probe: %v auth %q", got, lastAuth.Load())
	}

	for _, name := range []string{"down", "denied"} {
		_, err := h.infer.SetClusterInference(c, &inferencev1.SetClusterInferenceRequest{RouteName: RouteSandboxSystem, ProviderName: name, ModelId: "m"})
		wantCode(t, err, codes.FailedPrecondition)
		if msg := status.Convert(err).Message(); !strings.HasPrefix(msg, "failed to verify inference endpoint") || !strings.Contains(msg, "--no-verify") {
			t.Fatalf("%s: message %q", name, msg)
		}
	}
	_, err = h.infer.GetClusterInference(c, &inferencev1.GetClusterInferenceRequest{RouteName: RouteSandboxSystem})
	wantCode(t, err, codes.NotFound) // a failed verification stores nothing

	resp, err = h.infer.SetClusterInference(c, &inferencev1.SetClusterInferenceRequest{RouteName: RouteSandboxSystem, ProviderName: "down", ModelId: "m", NoVerify: true})
	if err != nil || resp.GetValidationPerformed() || len(resp.GetValidatedEndpoints()) != 0 {
		t.Fatalf("no_verify: %v %v", resp, err)
	}
}

// TestInferenceProbeStaysOnLoopback: by default a non-loopback endpoint is never dialed, and
// the dialer refuses non-loopback addresses even when a loopback endpoint redirects there.
func TestInferenceProbeStaysOnLoopback(t *testing.T) {
	h := start(t, Options{})
	c := tctx(t)
	// A reserved TEST-NET address: dialing it would hang until the probe timeout.
	h.provider(t, "remote", "openai", map[string]string{"OPENAI_API_KEY": "sk"}, map[string]string{"OPENAI_BASE_URL": "http://192.0.2.1:9/v1"})
	resp, err := h.infer.SetClusterInference(c, &inferencev1.SetClusterInferenceRequest{ProviderName: "remote", ModelId: "m"})
	if err != nil || !resp.GetValidationPerformed() || resp.GetValidatedEndpoints()[0].GetUrl() != "http://192.0.2.1:9/v1/chat/completions" {
		t.Fatalf("non-loopback endpoint: %v %v", resp, err)
	}
	if _, err := loopbackOnlyDial(context.Background(), "tcp", "192.0.2.1:80"); err == nil || !strings.Contains(err.Error(), "refusing") {
		t.Fatalf("the loopback dialer must refuse a non-loopback address: %v", err)
	}
	redirect := httptest.NewServer(http.RedirectHandler("http://192.0.2.1:9/v1/chat/completions", http.StatusTemporaryRedirect))
	defer redirect.Close()
	h.provider(t, "redirect", "openai", map[string]string{"OPENAI_API_KEY": "sk"}, map[string]string{"OPENAI_BASE_URL": redirect.URL + "/v1"})
	_, err = h.infer.SetClusterInference(c, &inferencev1.SetClusterInferenceRequest{ProviderName: "redirect", ModelId: "m"})
	wantCode(t, err, codes.FailedPrecondition)
	if !strings.Contains(err.Error(), "refusing to dial") {
		t.Fatalf("redirect out of loopback: %v", err)
	}
}

func TestParseInferenceProbe(t *testing.T) {
	for in, want := range map[string]InferenceProbe{"": ProbeLoopback, "loopback": ProbeLoopback, "ALL": ProbeAll, "none": ProbeNone} {
		if got, err := ParseInferenceProbe(in); err != nil || got != want {
			t.Errorf("ParseInferenceProbe(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseInferenceProbe("sometimes"); err == nil {
		t.Error("an unknown mode is an error")
	}
}
