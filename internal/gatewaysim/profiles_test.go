package gatewaysim

import (
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	sandboxv1 "github.com/openshell-operator/openshell-operator/gen/openshell/sandbox/v1"
	openshellv1 "github.com/openshell-operator/openshell-operator/gen/openshell/v1"
)

func profileIDs(ps []*openshellv1.ProviderProfile) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.GetId())
	}
	return out
}

func customProfile(id string) *openshellv1.ProviderProfileImportItem {
	return &openshellv1.ProviderProfileImportItem{Source: id + ".yaml", Profile: &openshellv1.ProviderProfile{
		Id: id, DisplayName: id, Credentials: []*openshellv1.ProviderProfileCredential{{Name: "token", EnvVars: []string{"TOKEN"}, Required: true}},
		Endpoints: []*sandboxv1.NetworkEndpoint{{Host: "api.example.com", Port: 443}},
	}}
}

// TestProviderProfiles covers semantics §3.6: built-ins, sorting, paging, id normalisation,
// import diagnostics and delete preconditions.
func TestProviderProfiles(t *testing.T) {
	h := start(t, Options{})
	c := tctx(t)
	list, err := h.rpc.ListProviderProfiles(c, &openshellv1.ListProviderProfilesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if got := profileIDs(list.GetProfiles()); !slices.Equal(got, []string{"claude-code", "github", "nvidia"}) {
		t.Fatalf("built-ins %v", got)
	}
	for _, p := range list.GetProfiles() {
		if want := p.GetId() != "github"; p.GetInferenceCapable() != want {
			t.Errorf("%s inference_capable = %v, want %v", p.GetId(), p.GetInferenceCapable(), want)
		}
	}

	got, err := h.rpc.GetProviderProfile(c, &openshellv1.GetProviderProfileRequest{Id: " Claude_Code "})
	if err != nil || got.GetProfile().GetId() != "claude-code" {
		t.Fatalf("get with a non-normalized id: %v %v", got, err)
	}
	_, err = h.rpc.GetProviderProfile(c, &openshellv1.GetProviderProfileRequest{Id: "not/valid"})
	wantCode(t, err, codes.InvalidArgument)
	_, err = h.rpc.GetProviderProfile(c, &openshellv1.GetProviderProfileRequest{Id: "missing"})
	wantCode(t, err, codes.NotFound)

	imp, err := h.rpc.ImportProviderProfiles(c, &openshellv1.ImportProviderProfilesRequest{Profiles: []*openshellv1.ProviderProfileImportItem{customProfile("Acme_Corp"), customProfile("beta")}})
	if err != nil || !imp.GetImported() || len(imp.GetDiagnostics()) != 0 {
		t.Fatalf("import: %v %v", imp, err)
	}
	if ids := profileIDs(imp.GetProfiles()); !slices.Equal(ids, []string{"acme-corp", "beta"}) {
		t.Fatalf("imported ids %v", ids)
	}
	list, err = h.rpc.ListProviderProfiles(c, &openshellv1.ListProviderProfilesRequest{Limit: 2, Offset: 1})
	if err != nil {
		t.Fatal(err)
	}
	if ids := profileIDs(list.GetProfiles()); !slices.Equal(ids, []string{"beta", "claude-code"}) {
		t.Fatalf("page 2 of 2 sorted by id: %v", ids)
	}

	// Overwriting a built-in or an existing custom profile: diagnostics, imported=false, OK status.
	for _, item := range []*openshellv1.ProviderProfileImportItem{customProfile("github"), customProfile("acme-corp")} {
		imp, err := h.rpc.ImportProviderProfiles(c, &openshellv1.ImportProviderProfilesRequest{Profiles: []*openshellv1.ProviderProfileImportItem{item, customProfile("gamma")}})
		if err != nil {
			t.Fatalf("import conflict is not an error status: %v", err)
		}
		if imp.GetImported() || len(imp.GetDiagnostics()) != 1 || imp.GetDiagnostics()[0].GetProfileId() != item.GetProfile().GetId() || imp.GetDiagnostics()[0].GetSource() != item.GetSource() {
			t.Fatalf("import over %s: %v", item.GetProfile().GetId(), imp)
		}
	}
	if _, err := h.rpc.GetProviderProfile(c, &openshellv1.GetProviderProfileRequest{Id: "gamma"}); err == nil {
		t.Fatal("a refused import registers nothing")
	}

	bad := customProfile("broken")
	bad.Profile.Credentials[0].EnvVars = []string{"not-an-env"}
	bad.Profile.Endpoints[0].Host = ""
	lint, err := h.rpc.LintProviderProfiles(c, &openshellv1.LintProviderProfilesRequest{Profiles: []*openshellv1.ProviderProfileImportItem{bad, customProfile("fine")}})
	if err != nil || lint.GetValid() || len(lint.GetDiagnostics()) != 2 {
		t.Fatalf("lint: %v %v", lint, err)
	}
	if _, err := h.rpc.GetProviderProfile(c, &openshellv1.GetProviderProfileRequest{Id: "fine"}); err == nil {
		t.Fatal("lint registers nothing")
	}

	_, err = h.rpc.DeleteProviderProfile(c, &openshellv1.DeleteProviderProfileRequest{Id: "nvidia"})
	wantCode(t, err, codes.FailedPrecondition)
	_, err = h.rpc.DeleteProviderProfile(c, &openshellv1.DeleteProviderProfileRequest{Id: "missing"})
	wantCode(t, err, codes.NotFound)
	_, err = h.rpc.DeleteProviderProfile(c, &openshellv1.DeleteProviderProfileRequest{Id: "Bad Id!"})
	wantCode(t, err, codes.InvalidArgument)
	h.provider(t, "acme", "acme-corp", map[string]string{"TOKEN": "t"}, nil)
	_, err = h.rpc.DeleteProviderProfile(c, &openshellv1.DeleteProviderProfileRequest{Id: "acme-corp"})
	wantCode(t, err, codes.FailedPrecondition)
	if err == nil || !strings.Contains(err.Error(), "acme") {
		t.Fatalf("in-use message names the provider: %v", err)
	}
	del, err := h.rpc.DeleteProviderProfile(c, &openshellv1.DeleteProviderProfileRequest{Id: "BETA"})
	if err != nil || !del.GetDeleted() {
		t.Fatalf("delete beta: %v %v", del, err)
	}
}
