package gateway

import (
	"context"

	openshellv1 "github.com/openshell-operator/openshell-operator/gen/openshell/v1"
)

// ProfilesAPI manages provider type profiles: the gateway's built-ins and custom ones.
type ProfilesAPI struct{ c *Client }

// List returns one page of profiles sorted by id; limit 0 means the gateway default (100).
func (a *ProfilesAPI) List(ctx context.Context, limit, offset uint32) ([]*openshellv1.ProviderProfile, error) {
	resp, err := a.c.rpc.ListProviderProfiles(ctx, &openshellv1.ListProviderProfilesRequest{Limit: limit, Offset: offset})
	if err != nil {
		return nil, wrap(err, "list provider profiles")
	}
	return resp.GetProfiles(), nil
}

// Get returns one profile; the gateway normalizes id to lowercase kebab-case first.
func (a *ProfilesAPI) Get(ctx context.Context, id string) (*openshellv1.ProviderProfile, error) {
	resp, err := a.c.rpc.GetProviderProfile(ctx, &openshellv1.GetProviderProfileRequest{Id: id})
	if err != nil {
		return nil, wrap(err, "get provider profile %q", id)
	}
	return resp.GetProfile(), nil
}

// ImportResult is the outcome of Import: the gateway reports problems as diagnostics with
// Imported false, not as an error.
type ImportResult struct {
	// Imported says whether the profiles were registered (all of them, or none).
	Imported bool
	// Profiles are the registered profiles, ids normalized.
	Profiles []*openshellv1.ProviderProfile
	// Diagnostics say what is wrong with the refused profiles.
	Diagnostics []*openshellv1.ProviderProfileDiagnostic
}

// Import registers custom profiles; an id that is built in or already exists is refused in
// the diagnostics.
func (a *ProfilesAPI) Import(ctx context.Context, items []*openshellv1.ProviderProfileImportItem) (*ImportResult, error) {
	resp, err := a.c.rpc.ImportProviderProfiles(ctx, &openshellv1.ImportProviderProfilesRequest{Profiles: items})
	if err != nil {
		return nil, wrap(err, "import provider profiles")
	}
	return &ImportResult{Imported: resp.GetImported(), Profiles: resp.GetProfiles(), Diagnostics: resp.GetDiagnostics()}, nil
}

// Lint validates profiles without registering them; it reports whether they are valid.
func (a *ProfilesAPI) Lint(ctx context.Context, items []*openshellv1.ProviderProfileImportItem) (bool, []*openshellv1.ProviderProfileDiagnostic, error) {
	resp, err := a.c.rpc.LintProviderProfiles(ctx, &openshellv1.LintProviderProfilesRequest{Profiles: items})
	if err != nil {
		return false, nil, wrap(err, "lint provider profiles")
	}
	return resp.GetValid(), resp.GetDiagnostics(), nil
}

// Delete deletes a custom profile. A built-in or in-use profile is FailedPrecondition, a
// missing one NotFound.
func (a *ProfilesAPI) Delete(ctx context.Context, id string) (bool, error) {
	resp, err := a.c.rpc.DeleteProviderProfile(ctx, &openshellv1.DeleteProviderProfileRequest{Id: id})
	if err != nil {
		return false, wrap(err, "delete provider profile %q", id)
	}
	return resp.GetDeleted(), nil
}
