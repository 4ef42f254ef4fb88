package gatewaysim

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	sandboxv1 "github.com/openshell-operator/openshell-operator/gen/openshell/sandbox/v1"
	openshellv1 "github.com/openshell-operator/openshell-operator/gen/openshell/v1"
)

// builtinProfiles are the provider profiles compiled into the gateway at the contract commit
// (semantics §3.6): claude-code, github and nvidia; claude-code and nvidia are inference
// capable. Their credentials, endpoints and binaries follow the upstream profile files.
var builtinProfiles = map[string]*openshellv1.ProviderProfile{
	"claude-code": {
		Id: "claude-code", DisplayName: "Claude Code", Description: "Claude Code CLI",
		Category: openshellv1.ProviderProfileCategory_PROVIDER_PROFILE_CATEGORY_AGENT, InferenceCapable: true,
		Credentials: []*openshellv1.ProviderProfileCredential{{
			Name: "api_key", Description: "Anthropic API key used by Claude Code", EnvVars: []string{"ANTHROPIC_API_KEY", "CLAUDE_API_KEY"},
			Required: true, AuthStyle: "header", HeaderName: "x-api-key",
		}},
		Endpoints: restEndpoints("read-write", "api.anthropic.com", "statsig.anthropic.com", "sentry.io"),
		Binaries:  binaries("/usr/bin/claude", "/usr/local/bin/claude"),
		Discovery: &openshellv1.ProviderProfileDiscovery{Credentials: []string{"api_key"}},
	},
	"github": {
		Id: "github", DisplayName: "GitHub", Description: "GitHub API and Git operations",
		Category: openshellv1.ProviderProfileCategory_PROVIDER_PROFILE_CATEGORY_SOURCE_CONTROL,
		Credentials: []*openshellv1.ProviderProfileCredential{{
			Name: "api_token", Description: "GitHub token", EnvVars: []string{"GITHUB_TOKEN", "GH_TOKEN"},
			Required: true, AuthStyle: "bearer", HeaderName: "authorization",
		}},
		Endpoints: restEndpoints("read-only", "api.github.com", "github.com"),
		Binaries:  binaries("/usr/bin/gh", "/usr/local/bin/gh", "/usr/bin/git", "/usr/local/bin/git"),
		Discovery: &openshellv1.ProviderProfileDiscovery{Credentials: []string{"api_token"}},
	},
	"nvidia": {
		Id: "nvidia", DisplayName: "NVIDIA", Description: "NVIDIA inference endpoints",
		Category: openshellv1.ProviderProfileCategory_PROVIDER_PROFILE_CATEGORY_INFERENCE, InferenceCapable: true,
		Credentials: []*openshellv1.ProviderProfileCredential{{
			Name: "api_key", Description: "NVIDIA API key", EnvVars: []string{"NVIDIA_API_KEY"},
			Required: true, AuthStyle: "bearer", HeaderName: "authorization",
		}},
		Endpoints: restEndpoints("read-write", "integrate.api.nvidia.com"),
		Binaries:  binaries("/usr/bin/curl", "/usr/local/bin/curl"),
		Discovery: &openshellv1.ProviderProfileDiscovery{Credentials: []string{"api_key"}},
	},
}

func restEndpoints(access string, hosts ...string) []*sandboxv1.NetworkEndpoint {
	out := make([]*sandboxv1.NetworkEndpoint, 0, len(hosts))
	for _, h := range hosts {
		out = append(out, &sandboxv1.NetworkEndpoint{Host: h, Port: 443, Protocol: "rest", Access: access, Enforcement: "enforce"})
	}
	return out
}

func binaries(paths ...string) []*sandboxv1.NetworkBinary {
	out := make([]*sandboxv1.NetworkBinary, 0, len(paths))
	for _, p := range paths {
		out = append(out, &sandboxv1.NetworkBinary{Path: p})
	}
	return out
}

// profileIDRE is a lowercase kebab-case id.
var profileIDRE = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)

const maxProfileIDLen = 64

// normalizeProfileID lowercases an id and turns '_' and spaces into '-'; it reports false
// when the result is not a kebab-case id of at most 64 characters.
func normalizeProfileID(id string) (string, bool) {
	n := strings.ToLower(strings.TrimSpace(id))
	n = strings.NewReplacer("_", "-", " ", "-").Replace(n)
	return n, len(n) <= maxProfileIDLen && profileIDRE.MatchString(n)
}

func invalidProfileID(id string) error {
	return status.Errorf(codes.InvalidArgument, "invalid provider profile id '%s': expected lowercase kebab-case (a-z, 0-9 and '-')", id)
}

// profile returns a built-in or custom profile by normalized id.
func (st *state) profile(id string) *openshellv1.ProviderProfile {
	if p := builtinProfiles[id]; p != nil {
		return p
	}
	return st.profiles[id]
}

// ListProviderProfiles lists built-in and custom profiles sorted by id (limit 0: 100, max 1000).
func (s *Simulator) ListProviderProfiles(_ context.Context, req *openshellv1.ListProviderProfilesRequest) (*openshellv1.ListProviderProfilesResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, 0, len(builtinProfiles)+len(s.state.profiles))
	for id := range builtinProfiles {
		ids = append(ids, id)
	}
	for id := range s.state.profiles {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	out := &openshellv1.ListProviderProfilesResponse{}
	for _, id := range page(ids, req.GetLimit(), req.GetOffset(), 100) {
		out.Profiles = append(out.Profiles, proto.Clone(s.state.profile(id)).(*openshellv1.ProviderProfile))
	}
	return out, nil
}

// GetProviderProfile returns one profile; the id is normalized first.
func (s *Simulator) GetProviderProfile(_ context.Context, req *openshellv1.GetProviderProfileRequest) (*openshellv1.ProviderProfileResponse, error) {
	id, ok := normalizeProfileID(req.GetId())
	if !ok {
		return nil, invalidProfileID(req.GetId())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.state.profile(id)
	if p == nil {
		return nil, status.Errorf(codes.NotFound, "provider profile '%s' not found", id)
	}
	return &openshellv1.ProviderProfileResponse{Profile: proto.Clone(p).(*openshellv1.ProviderProfile)}, nil
}

// lintProfile checks one import item and returns its normalized profile and diagnostics.
func lintProfile(item *openshellv1.ProviderProfileImportItem) (*openshellv1.ProviderProfile, []*openshellv1.ProviderProfileDiagnostic) {
	var diags []*openshellv1.ProviderProfileDiagnostic
	p := proto.Clone(item.GetProfile()).(*openshellv1.ProviderProfile)
	if item.GetProfile() == nil {
		p = &openshellv1.ProviderProfile{}
	}
	bad := func(field, format string, args ...any) {
		diags = append(diags, &openshellv1.ProviderProfileDiagnostic{
			Source: item.GetSource(), ProfileId: p.GetId(), Field: field, Message: fmt.Sprintf(format, args...), Severity: "error",
		})
	}
	if item.GetProfile() == nil {
		bad("profile", "profile is required")
		return p, diags
	}
	id, ok := normalizeProfileID(p.GetId())
	if !ok {
		bad("id", "invalid profile id '%s': expected lowercase kebab-case", p.GetId())
	}
	p.Id = id
	seen := map[string]bool{}
	for i, c := range p.GetCredentials() {
		if strings.TrimSpace(c.GetName()) == "" {
			bad(fmt.Sprintf("credentials[%d].name", i), "credential name is required")
		}
		if seen[c.GetName()] {
			bad(fmt.Sprintf("credentials[%d].name", i), "duplicate credential name '%s'", c.GetName())
		}
		seen[c.GetName()] = true
		for j, env := range c.GetEnvVars() {
			if !envKeyRE.MatchString(env) {
				bad(fmt.Sprintf("credentials[%d].env_vars[%d]", i, j), "'%s' is not a valid environment variable name", env)
			}
		}
	}
	for i, ep := range p.GetEndpoints() {
		if strings.TrimSpace(ep.GetHost()) == "" {
			bad(fmt.Sprintf("endpoints[%d].host", i), "endpoint host is required")
		}
		if ep.GetPort() == 0 && len(ep.GetPorts()) == 0 {
			bad(fmt.Sprintf("endpoints[%d].port", i), "endpoint needs a port")
		}
		for _, port := range append([]uint32{ep.GetPort()}, ep.GetPorts()...) {
			if port > 65535 {
				bad(fmt.Sprintf("endpoints[%d].port", i), "port %d is out of range", port)
			}
		}
	}
	for i, b := range p.GetBinaries() {
		if !strings.HasPrefix(b.GetPath(), "/") {
			bad(fmt.Sprintf("binaries[%d].path", i), "binary path '%s' must be absolute", b.GetPath())
		}
	}
	for i, name := range p.GetDiscovery().GetCredentials() {
		if !seen[name] {
			bad(fmt.Sprintf("discovery.credentials[%d]", i), "discovery names unknown credential '%s'", name)
		}
	}
	return p, diags
}

// LintProviderProfiles validates profiles without registering them.
func (s *Simulator) LintProviderProfiles(_ context.Context, req *openshellv1.LintProviderProfilesRequest) (*openshellv1.LintProviderProfilesResponse, error) {
	if len(req.GetProfiles()) == 0 {
		return nil, status.Error(codes.InvalidArgument, "profiles is required")
	}
	out := &openshellv1.LintProviderProfilesResponse{}
	for _, item := range req.GetProfiles() {
		_, diags := lintProfile(item)
		out.Diagnostics = append(out.Diagnostics, diags...)
	}
	out.Valid = len(out.Diagnostics) == 0
	return out, nil
}

// ImportProviderProfiles registers custom profiles, all or none. Problems, overwriting a
// built-in or an existing custom profile included, are diagnostics with imported=false, not
// an error status (semantics §3.6).
func (s *Simulator) ImportProviderProfiles(_ context.Context, req *openshellv1.ImportProviderProfilesRequest) (*openshellv1.ImportProviderProfilesResponse, error) {
	if len(req.GetProfiles()) == 0 {
		return nil, status.Error(codes.InvalidArgument, "profiles is required")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := &openshellv1.ImportProviderProfilesResponse{}
	var profiles []*openshellv1.ProviderProfile
	inRequest := map[string]bool{}
	for _, item := range req.GetProfiles() {
		p, diags := lintProfile(item)
		conflict := func(format string) {
			diags = append(diags, &openshellv1.ProviderProfileDiagnostic{
				Source: item.GetSource(), ProfileId: p.GetId(), Field: "id", Message: fmt.Sprintf(format, p.GetId()), Severity: "error",
			})
		}
		switch {
		case builtinProfiles[p.GetId()] != nil:
			conflict("profile '%s' is built in and cannot be overwritten")
		case s.state.profiles[p.GetId()] != nil:
			conflict("profile '%s' already exists; delete it before importing it again")
		case inRequest[p.GetId()] && p.GetId() != "":
			conflict("profile '%s' appears more than once in the request")
		}
		inRequest[p.GetId()] = true
		out.Diagnostics = append(out.Diagnostics, diags...)
		profiles = append(profiles, p)
	}
	if len(out.Diagnostics) > 0 {
		return out, nil
	}
	for _, p := range profiles {
		s.state.profiles[p.GetId()] = p
		out.Profiles = append(out.Profiles, proto.Clone(p).(*openshellv1.ProviderProfile))
	}
	out.Imported = true
	return out, nil
}

// DeleteProviderProfile deletes a custom profile: built-in or in use (a provider of that
// type exists) is FAILED_PRECONDITION, missing is NOT_FOUND.
func (s *Simulator) DeleteProviderProfile(_ context.Context, req *openshellv1.DeleteProviderProfileRequest) (*openshellv1.DeleteProviderProfileResponse, error) {
	id, ok := normalizeProfileID(req.GetId())
	if !ok {
		return nil, invalidProfileID(req.GetId())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if builtinProfiles[id] != nil {
		return nil, status.Errorf(codes.FailedPrecondition, "provider profile '%s' is built in and cannot be deleted", id)
	}
	if s.state.profiles[id] == nil {
		return nil, status.Errorf(codes.NotFound, "provider profile '%s' not found", id)
	}
	var users []string
	for name, r := range s.state.providers {
		if t, _ := normalizeProfileID(r.p.GetType()); t == id {
			users = append(users, name)
		}
	}
	if len(users) > 0 {
		sort.Strings(users)
		return nil, status.Errorf(codes.FailedPrecondition, "provider profile '%s' is used by provider(s): %s", id, strings.Join(users, ", "))
	}
	delete(s.state.profiles, id)
	return &openshellv1.DeleteProviderProfileResponse{Deleted: true}, nil
}
