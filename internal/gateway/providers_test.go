package gateway_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	datamodelv1 "github.com/openshell-operator/openshell-operator/gen/openshell/datamodel/v1"
	inferencev1 "github.com/openshell-operator/openshell-operator/gen/openshell/inference/v1"
	openshellv1 "github.com/openshell-operator/openshell-operator/gen/openshell/v1"
	"github.com/openshell-operator/openshell-operator/internal/gatewaysim"
)

func TestProviderCRUDRedactionAndMerge(t *testing.T) {
	e := startEnv(t, gatewaysim.Options{})
	c := ctx(t)
	p := provider("openai", "openai", map[string]string{"OPENAI_API_KEY": "sk-secret", "ORG": "o1"})
	p.Config = map[string]string{"base_url": "https://api.openai.com"}
	created := must(e.client.Providers.Create(c, p))
	if created.GetCredentials()["OPENAI_API_KEY"] != gatewaysim.Redacted || created.GetMetadata().GetResourceVersion() != 1 {
		t.Fatalf("create must answer REDACTED at rv 1: %v", created)
	}
	got := must(e.client.Providers.Get(c, "openai"))
	for k, v := range got.GetCredentials() {
		if v != gatewaysim.Redacted {
			t.Fatalf("credential %s leaked through Get", k)
		}
	}
	if got.GetConfig()["base_url"] == "" {
		t.Fatal("config is returned unredacted")
	}

	// Only changed keys are sent: rotate one, delete another with "".
	must(e.client.Providers.Update(c, &datamodelv1.Provider{Metadata: &datamodelv1.ObjectMeta{Name: "openai"}, Credentials: map[string]string{"OPENAI_API_KEY": "sk-rotated", "ORG": ""}}))
	stored, _ := e.sim.ProviderCredentials("openai")
	if len(stored) != 1 || stored["OPENAI_API_KEY"] != "sk-rotated" {
		t.Fatalf("map merge: got %d keys after update", len(stored))
	}
	// The REDACTED trap: a read-modify-write round trip writes the literal string.
	got.Metadata.ResourceVersion = 0
	must(e.client.Providers.Update(c, got))
	stored, _ = e.sim.ProviderCredentials("openai")
	if stored["OPENAI_API_KEY"] != gatewaysim.Redacted {
		t.Fatal("the simulator should reproduce the REDACTED round-trip hazard")
	}

	_, err := e.client.Providers.Update(c, &datamodelv1.Provider{Metadata: &datamodelv1.ObjectMeta{Name: "openai"}, Type: "anthropic"})
	wantCode(t, err, codes.InvalidArgument)
	_, err = e.client.Providers.Update(c, &datamodelv1.Provider{Metadata: &datamodelv1.ObjectMeta{Name: "openai", ResourceVersion: 99}, Config: map[string]string{"a": "b"}})
	wantCode(t, err, codes.Aborted)
	_, err = e.client.Providers.Update(c, &datamodelv1.Provider{Metadata: &datamodelv1.ObjectMeta{Name: "ghost"}})
	wantCode(t, err, codes.NotFound)
	_, err = e.client.Providers.Create(c, provider("openai", "openai", map[string]string{"K": "v"}))
	wantCode(t, err, codes.AlreadyExists)
	_, err = e.client.Providers.Create(c, provider("empty", "openai", nil))
	wantCode(t, err, codes.InvalidArgument)
	_, err = e.client.Providers.Create(c, provider("notype", "", map[string]string{"K": "v"}))
	wantCode(t, err, codes.InvalidArgument)
	_, err = e.client.Providers.Get(c, "ghost")
	wantCode(t, err, codes.NotFound)

	for _, n := range []string{"b1", "b2", "b3"} {
		must(e.client.Providers.Create(c, provider(n, "github", map[string]string{"T_" + strings.ToUpper(n): "x"})))
	}
	if all := must(e.client.Providers.ListAll(c, 2)); len(all) != 4 {
		t.Fatalf("ListAll: %d providers, want 4", len(all))
	}
	if page := must(e.client.Providers.List(c, 1, 1)); len(page) != 1 {
		t.Fatalf("List page: %d", len(page))
	}

	must(e.client.Sandboxes.Create(c, "user", &openshellv1.SandboxSpec{Providers: []string{"b1"}}, nil))
	_, err = e.client.Providers.Delete(c, "b1")
	wantCode(t, err, codes.FailedPrecondition)
	if !strings.Contains(err.Error(), "attached to sandbox(es): user") {
		t.Fatalf("in-use message should name the sandbox: %v", err)
	}
	if deleted := must(e.client.Providers.Delete(c, "b2")); !deleted {
		t.Fatal("delete of an unused provider should report true")
	}
	if deleted := must(e.client.Providers.Delete(c, "b2")); deleted {
		t.Fatal("delete of a missing provider reports false, not an error")
	}
}

func TestInferenceRoutes(t *testing.T) {
	e := startEnv(t, gatewaysim.Options{})
	c := ctx(t)
	must(e.client.Providers.Create(c, provider("nv", "nvidia", map[string]string{"NVIDIA_API_KEY": "k"})))
	must(e.client.Providers.Create(c, provider("gh", "github", map[string]string{"GITHUB_TOKEN": "k"})))

	_, err := e.client.Inference.Get(c, "")
	wantCode(t, err, codes.NotFound)
	set := must(e.client.Inference.Set(c, &inferencev1.SetClusterInferenceRequest{ProviderName: "nv", ModelId: "llama", Verify: false}))
	if set.GetVersion() != 1 || set.GetRouteName() != "inference.local" || !set.GetValidationPerformed() || len(set.GetValidatedEndpoints()) == 0 {
		t.Fatalf("first set: version 1 on inference.local, verified (verify=false is ignored): %v", set)
	}
	set = must(e.client.Inference.Set(c, &inferencev1.SetClusterInferenceRequest{ProviderName: "nv", ModelId: "llama", NoVerify: true}))
	if set.GetVersion() != 2 || set.GetValidationPerformed() {
		t.Fatalf("every set bumps the version; no_verify skips verification: %v", set)
	}
	got := must(e.client.Inference.Get(c, "inference.local"))
	if got.GetVersion() != 2 || got.GetModelId() != "llama" {
		t.Fatalf("get: %v", got)
	}
	cases := []struct {
		req  *inferencev1.SetClusterInferenceRequest
		code codes.Code
	}{
		{&inferencev1.SetClusterInferenceRequest{ProviderName: "nv", ModelId: "m", RouteName: "other"}, codes.InvalidArgument},
		{&inferencev1.SetClusterInferenceRequest{ProviderName: "", ModelId: "m"}, codes.InvalidArgument},
		{&inferencev1.SetClusterInferenceRequest{ProviderName: "nv", ModelId: ""}, codes.InvalidArgument},
		{&inferencev1.SetClusterInferenceRequest{ProviderName: "missing", ModelId: "m"}, codes.FailedPrecondition},
		{&inferencev1.SetClusterInferenceRequest{ProviderName: "gh", ModelId: "m"}, codes.InvalidArgument},
	}
	for _, tc := range cases {
		_, err := e.client.Inference.Set(c, tc.req)
		wantCode(t, err, tc.code)
	}
	sys := must(e.client.Inference.Set(c, &inferencev1.SetClusterInferenceRequest{ProviderName: "nv", ModelId: "m", RouteName: "sandbox-system", TimeoutSecs: 30}))
	if sys.GetVersion() != 1 || sys.GetTimeoutSecs() != 30 {
		t.Fatalf("routes are versioned independently: %v", sys)
	}
}

func TestFaultInjection(t *testing.T) {
	e := startEnv(t, gatewaysim.Options{})
	c := ctx(t)
	e.sim.InjectError("GetSandbox", codes.Unavailable, "gateway down", 2)
	for i := 0; i < 2; i++ {
		_, err := e.client.Sandboxes.Get(c, "x")
		wantCode(t, err, codes.Unavailable)
	}
	_, err := e.client.Sandboxes.Get(c, "x")
	wantCode(t, err, codes.NotFound)

	e.sim.InjectError("*", codes.Internal, "boom", -1)
	_, err = e.client.Health(c)
	wantCode(t, err, codes.Internal)
	e.sim.ClearFaults()
	must(e.client.Health(c))

	must(e.client.Sandboxes.Create(c, "keep", &openshellv1.SandboxSpec{}, nil))
	e.sim.Restart()
	_, err = e.client.Sandboxes.Get(c, "keep")
	wantCode(t, err, codes.NotFound)

	e.sim.ResetCounts()
	must(e.client.Sandboxes.Create(c, "count", &openshellv1.SandboxSpec{}, nil))
	must(e.client.Sandboxes.Get(c, "count"))
	if e.sim.CallCount("CreateSandbox") != 1 || e.sim.CallCount("GetSandbox") != 1 || e.sim.MutatingCallCount() != 1 {
		t.Fatalf("counters: %v", e.sim.Calls())
	}
}

func TestDefaultTimeoutIsRetryable(t *testing.T) {
	e := startEnv(t, gatewaysim.Options{}, gatewaysimTimeout(150*time.Millisecond)...)
	e.sim.InjectLatency("GetSandbox", 2*time.Second)
	// No deadline on the context: the client's default per-call timeout applies.
	_, err := e.client.Sandboxes.Get(context.Background(), "slow")
	wantCode(t, err, codes.DeadlineExceeded)
	if !isRetryable(err) {
		t.Fatalf("a timeout should be retryable: %v", err)
	}
}
