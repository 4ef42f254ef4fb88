package gatewaysim

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"testing"

	"google.golang.org/grpc"

	datamodelv1 "github.com/openshell-operator/openshell-operator/gen/openshell/datamodel/v1"
	inferencev1 "github.com/openshell-operator/openshell-operator/gen/openshell/inference/v1"
	openshellv1 "github.com/openshell-operator/openshell-operator/gen/openshell/v1"
)

func TestCallsFor(t *testing.T) {
	s := New(Options{})
	ok := func(context.Context, any) (any, error) { return nil, nil }
	calls := []struct {
		method string
		req    any
	}{
		{"CreateProvider", &openshellv1.CreateProviderRequest{Provider: &datamodelv1.Provider{Metadata: &datamodelv1.ObjectMeta{Name: "p", Labels: map[string]string{"name": "label-value"}}}}},
		{"UpdateProvider", &openshellv1.UpdateProviderRequest{Provider: &datamodelv1.Provider{Metadata: &datamodelv1.ObjectMeta{Name: "p"}}}},
		{"CreateSandbox", &openshellv1.CreateSandboxRequest{Name: "s", Spec: &openshellv1.SandboxSpec{Providers: []string{"p"}, Template: &openshellv1.SandboxTemplate{RuntimeClassName: "kata"}}}},
		{"AttachSandboxProvider", &openshellv1.AttachSandboxProviderRequest{SandboxName: "s", ProviderName: "p"}},
		{"GetSandbox", &openshellv1.GetSandboxRequest{Name: "s"}},
		{"GetSandbox", &openshellv1.GetSandboxRequest{Name: "s"}},
		{"SetClusterInference", &inferencev1.SetClusterInferenceRequest{ProviderName: "p", RouteName: "inference.local", ModelId: "m"}},
		{"Health", &openshellv1.HealthRequest{}},
	}
	for _, c := range calls {
		if _, err := s.unaryInterceptor(context.Background(), c.req, &grpc.UnaryServerInfo{FullMethod: "/openshell.v1.OpenShell/" + c.method}, ok); err != nil {
			t.Fatalf("%s: %v", c.method, err)
		}
	}
	for _, tc := range []struct {
		name string
		want map[string]int
	}{
		// Providers listed in a sandbox spec, labels and nested names are not the target.
		{"p", map[string]int{"CreateProvider": 1, "UpdateProvider": 1, "AttachSandboxProvider": 1, "SetClusterInference": 1}},
		{"s", map[string]int{"CreateSandbox": 1, "AttachSandboxProvider": 1, "GetSandbox": 2}},
		{"kata", map[string]int{}},
		{"label-value", map[string]int{}},
		{"inference.local", map[string]int{}},
	} {
		if got := s.CallsFor(tc.name); !maps.Equal(got, tc.want) {
			t.Errorf("CallsFor(%q) = %v, want %v", tc.name, got, tc.want)
		}
	}

	rec := httptest.NewRecorder()
	s.AdminHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/calls/s", nil))
	got := map[string]int{}
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || got["GetSandbox"] != 2 {
		t.Errorf("GET /calls/s = %q (%v), want GetSandbox 2", rec.Body.String(), err)
	}

	s.ResetCounts()
	if got := s.CallsFor("s"); len(got) != 0 {
		t.Errorf("after ResetCounts CallsFor(s) = %v", got)
	}
}
