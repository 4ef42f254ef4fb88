package gatewaysim

import (
	"context"
	"sort"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	datamodelv1 "github.com/openshell-operator/openshell-operator/gen/openshell/datamodel/v1"
	inferencev1 "github.com/openshell-operator/openshell-operator/gen/openshell/inference/v1"
)

// Inference routes the gateway accepts (semantics §4); "" means inference.local.
const (
	RouteInferenceLocal = "inference.local"
	RouteSandboxSystem  = "sandbox-system"
)

// inferenceType is what resolve_provider_route knows of a provider type: the preferred
// credential, the config key of the base URL, the profile's default base URL and the
// endpoint a verification probes below it.
type inferenceType struct {
	keyName, baseURLKey, defaultBase, path, protocol string
}

// inferenceTypes are the provider types inference accepts (openai, anthropic, nvidia).
var inferenceTypes = map[string]inferenceType{
	"openai":    {"OPENAI_API_KEY", "OPENAI_BASE_URL", "https://api.openai.com/v1", "/chat/completions", "openai_chat_completions"},
	"anthropic": {"ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "https://api.anthropic.com/v1", "/messages", "anthropic_messages"},
	"nvidia":    {"NVIDIA_API_KEY", "NVIDIA_BASE_URL", "https://integrate.api.nvidia.com/v1", "/chat/completions", "openai_chat_completions"},
}

func normalizeRoute(route string) (string, error) {
	route = strings.TrimSpace(route)
	switch route {
	case "", RouteInferenceLocal:
		return RouteInferenceLocal, nil
	case RouteSandboxSystem:
		return RouteSandboxSystem, nil
	}
	return "", status.Errorf(codes.InvalidArgument, "unknown route_name '%s'; expected '%s' or '%s'", route, RouteInferenceLocal, RouteSandboxSystem)
}

// resolvedRoute is a provider resolved for inference: where to probe and with which key.
type resolvedRoute struct {
	typ      string
	endpoint *inferencev1.ValidatedEndpoint
	key      string
}

// resolveProviderRoute follows resolve_provider_route (semantics §4 step 3): a supported
// type, some non-empty credential (the preferred one, else the first in key order), and
// the base URL from config or the profile default.
func resolveProviderRoute(p *datamodelv1.Provider) (*resolvedRoute, error) {
	typ := strings.ToLower(strings.TrimSpace(p.GetType()))
	it, ok := inferenceTypes[typ]
	if !ok {
		return nil, status.Errorf(codes.InvalidArgument, "provider '%s' has unsupported type '%s' for inference routing (supported: openai, anthropic, nvidia)", p.GetMetadata().GetName(), p.GetType())
	}
	key := strings.TrimSpace(p.GetCredentials()[it.keyName])
	if key == "" {
		for _, k := range sortedMapKeys(p.GetCredentials()) {
			if v := strings.TrimSpace(p.GetCredentials()[k]); v != "" {
				key = v
				break
			}
		}
	}
	if key == "" {
		return nil, status.Errorf(codes.InvalidArgument, "provider '%s' has no non-empty credential to use for inference", p.GetMetadata().GetName())
	}
	base := strings.TrimSpace(p.GetConfig()[it.baseURLKey])
	if base == "" {
		base = it.defaultBase
	}
	url := strings.TrimRight(base, "/") + it.path
	return &resolvedRoute{typ: typ, key: key, endpoint: &inferencev1.ValidatedEndpoint{Url: url, Protocol: it.protocol}}, nil
}

func sortedMapKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// SetClusterInference stores a route; every call bumps its version. Only no_verify skips
// verification (the verify field is ignored like at the contract commit); verification
// probes the provider's endpoint as Options.InferenceProbe allows.
func (s *Simulator) SetClusterInference(ctx context.Context, req *inferencev1.SetClusterInferenceRequest) (*inferencev1.SetClusterInferenceResponse, error) {
	route, err := normalizeRoute(req.GetRouteName())
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(req.GetProviderName()) == "" {
		return nil, status.Error(codes.InvalidArgument, "provider_name is required")
	}
	if strings.TrimSpace(req.GetModelId()) == "" {
		return nil, status.Error(codes.InvalidArgument, "model_id is required")
	}
	s.mu.Lock()
	p := s.state.providers[req.GetProviderName()]
	var resolved *resolvedRoute
	if p != nil {
		resolved, err = resolveProviderRoute(p.p)
	}
	s.mu.Unlock()
	if p == nil {
		return nil, status.Errorf(codes.FailedPrecondition, "provider '%s' not found", req.GetProviderName())
	}
	if err != nil {
		return nil, err
	}
	out := &inferencev1.SetClusterInferenceResponse{
		ProviderName: req.GetProviderName(), ModelId: req.GetModelId(), RouteName: route,
		TimeoutSecs: req.GetTimeoutSecs(), ValidationPerformed: !req.GetNoVerify(),
	}
	if !req.GetNoVerify() {
		// The probe runs without the lock: it may take as long as the endpoint does.
		if err := s.verifyInference(ctx, resolved, req.GetModelId()); err != nil {
			return nil, status.Errorf(codes.FailedPrecondition, "failed to verify inference endpoint for provider '%s' and model '%s' at %s: %v; retry with '--no-verify' to skip verification",
				req.GetProviderName(), req.GetModelId(), resolved.endpoint.GetUrl(), err)
		}
		out.ValidatedEndpoints = []*inferencev1.ValidatedEndpoint{proto.Clone(resolved.endpoint).(*inferencev1.ValidatedEndpoint)}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.state
	if st.providers[req.GetProviderName()] == nil {
		return nil, status.Errorf(codes.FailedPrecondition, "provider '%s' not found", req.GetProviderName())
	}
	var version uint64 = 1
	if cur := st.inference[route]; cur != nil {
		version = cur.Version + 1
	}
	out.Version = version
	st.inference[route] = &inferencev1.GetClusterInferenceResponse{
		ProviderName: req.GetProviderName(), ModelId: req.GetModelId(), Version: version, RouteName: route, TimeoutSecs: req.GetTimeoutSecs(),
	}
	return out, nil
}

// GetClusterInference returns a configured route, or NOT_FOUND when it was never set.
func (s *Simulator) GetClusterInference(_ context.Context, req *inferencev1.GetClusterInferenceRequest) (*inferencev1.GetClusterInferenceResponse, error) {
	route, err := normalizeRoute(req.GetRouteName())
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.state.inference[route]
	if cur == nil {
		return nil, status.Errorf(codes.NotFound, "inference route '%s' is not configured; run 'openshell inference set --provider <name> --model <id>'", route)
	}
	return proto.Clone(cur).(*inferencev1.GetClusterInferenceResponse), nil
}
