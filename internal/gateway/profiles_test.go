package gateway_test

import (
	"slices"
	"testing"

	"google.golang.org/grpc/codes"

	sandboxv1 "github.com/openshell-operator/openshell-operator/gen/openshell/sandbox/v1"
	openshellv1 "github.com/openshell-operator/openshell-operator/gen/openshell/v1"
	"github.com/openshell-operator/openshell-operator/internal/gatewaysim"
)

func profileItem(id string) *openshellv1.ProviderProfileImportItem {
	return &openshellv1.ProviderProfileImportItem{Source: id + ".yaml", Profile: &openshellv1.ProviderProfile{
		Id: id, Credentials: []*openshellv1.ProviderProfileCredential{{Name: "token", EnvVars: []string{"ACME_TOKEN"}}},
		Endpoints: []*sandboxv1.NetworkEndpoint{{Host: "api.acme.example", Port: 443}},
	}}
}

// TestProfiles exercises every profile call of the client over mTLS.
func TestProfiles(t *testing.T) {
	e := startEnv(t, gatewaysim.Options{})
	c := ctx(t)
	var ids []string
	for _, p := range must(e.client.Profiles.List(c, 0, 0)) {
		ids = append(ids, p.GetId())
	}
	if !slices.Equal(ids, []string{"claude-code", "github", "nvidia"}) {
		t.Fatalf("built-ins %v", ids)
	}
	if p := must(e.client.Profiles.Get(c, "NVIDIA")); p.GetId() != "nvidia" || !p.GetInferenceCapable() {
		t.Fatalf("get nvidia: %v", p)
	}
	_, err := e.client.Profiles.Get(c, "nope")
	wantCode(t, err, codes.NotFound)

	valid, diags := func() (bool, []*openshellv1.ProviderProfileDiagnostic) {
		v, d, err := e.client.Profiles.Lint(c, []*openshellv1.ProviderProfileImportItem{profileItem("acme")})
		if err != nil {
			t.Fatal(err)
		}
		return v, d
	}()
	if !valid || len(diags) != 0 {
		t.Fatalf("lint: %v %v", valid, diags)
	}
	res := must(e.client.Profiles.Import(c, []*openshellv1.ProviderProfileImportItem{profileItem("acme")}))
	if !res.Imported || len(res.Profiles) != 1 {
		t.Fatalf("import: %+v", res)
	}
	res = must(e.client.Profiles.Import(c, []*openshellv1.ProviderProfileImportItem{profileItem("github")}))
	if res.Imported || len(res.Diagnostics) != 1 || res.Diagnostics[0].GetProfileId() != "github" {
		t.Fatalf("import over a built-in: %+v", res)
	}
	_, err = e.client.Profiles.Delete(c, "github")
	wantCode(t, err, codes.FailedPrecondition)
	if deleted := must(e.client.Profiles.Delete(c, "acme")); !deleted {
		t.Fatal("delete acme")
	}
	_, err = e.client.Profiles.Delete(c, "acme")
	wantCode(t, err, codes.NotFound)
}
