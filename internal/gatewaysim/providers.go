package gatewaysim

import (
	"context"
	"sort"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	datamodelv1 "github.com/openshell-operator/openshell-operator/gen/openshell/datamodel/v1"
	openshellv1 "github.com/openshell-operator/openshell-operator/gen/openshell/v1"
)

// Redacted is what every read returns in place of a credential value.
const Redacted = "REDACTED"

func redacted(p *datamodelv1.Provider) *datamodelv1.Provider {
	out := proto.Clone(p).(*datamodelv1.Provider)
	for k := range out.Credentials {
		out.Credentials[k] = Redacted
	}
	return out
}

func validateProviderLimits(p *datamodelv1.Provider) error {
	if len(p.GetMetadata().GetName()) > maxNameLen {
		return status.Errorf(codes.InvalidArgument, "provider.name exceeds %d bytes", maxNameLen)
	}
	if len(p.GetType()) > 64 {
		return status.Error(codes.InvalidArgument, "provider.type exceeds 64 bytes")
	}
	if len(p.GetCredentials()) > 32 {
		return status.Error(codes.InvalidArgument, "provider.credentials exceeds 32 entries")
	}
	if len(p.GetConfig()) > 64 {
		return status.Error(codes.InvalidArgument, "provider.config exceeds 64 entries")
	}
	if len(p.GetCredentialExpiresAtMs()) > 32 {
		return status.Error(codes.InvalidArgument, "provider.credential_expires_at_ms exceeds 32 entries")
	}
	for _, m := range []map[string]string{p.GetCredentials(), p.GetConfig()} {
		for k, v := range m {
			if len(k) > maxEnvKeyLen || len(v) > maxEnvValueLen {
				return status.Errorf(codes.InvalidArgument, "provider map entry %q exceeds size limits", k)
			}
		}
	}
	return nil
}

// CreateProvider stores a provider (semantics §3.1).
func (s *Simulator) CreateProvider(_ context.Context, req *openshellv1.CreateProviderRequest) (*openshellv1.ProviderResponse, error) {
	if req.GetProvider() == nil {
		return nil, status.Error(codes.InvalidArgument, "provider is required")
	}
	p := proto.Clone(req.GetProvider()).(*datamodelv1.Provider)
	if p.Metadata == nil {
		p.Metadata = &datamodelv1.ObjectMeta{}
	}
	if err := validateLabels(p.Metadata.Labels); err != nil {
		return nil, err
	}
	if strings.TrimSpace(p.Type) == "" {
		return nil, status.Error(codes.InvalidArgument, "provider.type is required")
	}
	if len(p.Credentials) == 0 {
		return nil, status.Error(codes.InvalidArgument, "provider.credentials must not be empty")
	}
	if err := validateProviderLimits(p); err != nil {
		return nil, err
	}
	for k, v := range p.GetCredentialExpiresAtMs() {
		if v < 0 {
			return nil, status.Errorf(codes.InvalidArgument, "provider.credential_expires_at_ms[%q] must be >= 0", k)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.state
	if p.Metadata.Name == "" {
		p.Metadata.Name = randomLetters(6)
	}
	if st.providers[p.Metadata.Name] != nil {
		return nil, status.Error(codes.AlreadyExists, "provider already exists")
	}
	p.Metadata.Id = newID()
	p.Metadata.ResourceVersion = 1
	st.providers[p.Metadata.Name] = &providerRec{p: p, seq: st.next()}
	return &openshellv1.ProviderResponse{Provider: redacted(p)}, nil
}

// GetProvider returns a provider with credential values redacted.
func (s *Simulator) GetProvider(_ context.Context, req *openshellv1.GetProviderRequest) (*openshellv1.ProviderResponse, error) {
	if req.GetName() == "" {
		return nil, status.Error(codes.InvalidArgument, "name is required")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.state.providers[req.GetName()]
	if r == nil {
		return nil, status.Error(codes.NotFound, "provider not found")
	}
	return &openshellv1.ProviderResponse{Provider: redacted(r.p)}, nil
}

// ListProviders lists providers by creation time then name, redacted.
func (s *Simulator) ListProviders(_ context.Context, req *openshellv1.ListProvidersRequest) (*openshellv1.ListProvidersResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	recs := make([]*providerRec, 0, len(s.state.providers))
	for _, r := range s.state.providers {
		recs = append(recs, r)
	}
	sort.Slice(recs, func(i, j int) bool {
		a, b := recs[i].p.Metadata, recs[j].p.Metadata
		if a.CreatedAtMs != b.CreatedAtMs {
			return a.CreatedAtMs < b.CreatedAtMs
		}
		return a.Name < b.Name
	})
	out := &openshellv1.ListProvidersResponse{}
	for _, r := range page(recs, req.GetLimit(), req.GetOffset(), 100) {
		out.Providers = append(out.Providers, redacted(r.p))
	}
	return out, nil
}

// mergeMap applies the gateway's map merge: an empty incoming map changes nothing, an empty
// value deletes the key, anything else is upserted.
func mergeMap(dst, in map[string]string) map[string]string {
	if len(in) == 0 {
		return dst
	}
	if dst == nil {
		dst = map[string]string{}
	}
	for k, v := range in {
		if v == "" {
			delete(dst, k)
		} else {
			dst[k] = v
		}
	}
	return dst
}

// UpdateProvider merges credentials and config into a stored provider (semantics §3.3).
func (s *Simulator) UpdateProvider(_ context.Context, req *openshellv1.UpdateProviderRequest) (*openshellv1.ProviderResponse, error) {
	in := req.GetProvider()
	if in == nil {
		return nil, status.Error(codes.InvalidArgument, "provider is required")
	}
	name := in.GetMetadata().GetName()
	if name == "" {
		return nil, status.Error(codes.InvalidArgument, "provider.name is required")
	}
	if err := validateProviderLimits(in); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.state
	r := st.providers[name]
	if r == nil {
		return nil, status.Error(codes.NotFound, "provider not found")
	}
	if in.Type != "" && !strings.EqualFold(in.Type, r.p.Type) {
		return nil, status.Error(codes.InvalidArgument, "provider type cannot be changed; delete and recreate the provider")
	}
	if rv := in.GetMetadata().GetResourceVersion(); rv != 0 && rv != r.p.Metadata.ResourceVersion {
		return nil, status.Errorf(codes.Aborted, "provider was modified concurrently (current resource_version: %d)", r.p.Metadata.ResourceVersion)
	}
	next := proto.Clone(r.p).(*datamodelv1.Provider)
	next.Credentials = mergeMap(next.Credentials, in.Credentials)
	next.Config = mergeMap(next.Config, in.Config)
	for k, v := range req.GetCredentialExpiresAtMs() {
		if next.CredentialExpiresAtMs == nil {
			next.CredentialExpiresAtMs = map[string]int64{}
		}
		if v <= 0 {
			delete(next.CredentialExpiresAtMs, k)
		} else {
			next.CredentialExpiresAtMs[k] = v
		}
	}
	// The new credential keys must not clash on any sandbox the provider is attached to.
	old := r.p
	r.p = next
	for _, sb := range st.sandboxes {
		if contains(sb.sb.Spec.Providers, name) {
			if err := st.checkProviders(sb.sb.Spec.Providers); err != nil {
				r.p = old
				return nil, err
			}
		}
	}
	next.Metadata.ResourceVersion++
	return &openshellv1.ProviderResponse{Provider: redacted(next)}, nil
}

// DeleteProvider deletes a provider unless a sandbox (DELETING ones included) still uses it.
func (s *Simulator) DeleteProvider(_ context.Context, req *openshellv1.DeleteProviderRequest) (*openshellv1.DeleteProviderResponse, error) {
	if req.GetName() == "" {
		return nil, status.Error(codes.InvalidArgument, "name is required")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.state
	if st.providers[req.GetName()] == nil {
		return &openshellv1.DeleteProviderResponse{Deleted: false}, nil
	}
	var users []string
	for n, sb := range st.sandboxes {
		if contains(sb.sb.Spec.Providers, req.GetName()) {
			users = append(users, n)
		}
	}
	if len(users) > 0 {
		sort.Strings(users)
		return nil, status.Errorf(codes.FailedPrecondition, "provider '%s' is attached to sandbox(es): %s", req.GetName(), strings.Join(users, ", "))
	}
	delete(st.providers, req.GetName())
	return &openshellv1.DeleteProviderResponse{Deleted: true}, nil
}

// ProviderCredentials returns the stored (unredacted) credentials of a provider, for tests
// that must prove what the gateway holds. It reports false when the provider does not exist.
func (s *Simulator) ProviderCredentials(name string) (map[string]string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.state.providers[name]
	if r == nil {
		return nil, false
	}
	out := map[string]string{}
	for k, v := range r.p.Credentials {
		out[k] = v
	}
	return out, true
}
