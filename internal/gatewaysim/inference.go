package gatewaysim

import (
	"context"
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

// inferenceEndpoints are the endpoints a verification of each provider type "validates".
var inferenceEndpoints = map[string][]*inferencev1.ValidatedEndpoint{
	"openai":    {{Url: "https://api.openai.com/v1/chat/completions", Protocol: "openai_chat_completions"}},
	"anthropic": {{Url: "https://api.anthropic.com/v1/messages", Protocol: "anthropic_messages"}},
	"nvidia":    {{Url: "https://integrate.api.nvidia.com/v1/chat/completions", Protocol: "openai_chat_completions"}},
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

// SetClusterInference stores a route; every call bumps its version. Only no_verify skips
// verification; the verify field is ignored like at the contract commit.
func (s *Simulator) SetClusterInference(_ context.Context, req *inferencev1.SetClusterInferenceRequest) (*inferencev1.SetClusterInferenceResponse, error) {
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
	defer s.mu.Unlock()
	st := s.state
	p := st.providers[req.GetProviderName()]
	if p == nil {
		return nil, status.Errorf(codes.FailedPrecondition, "provider '%s' not found", req.GetProviderName())
	}
	endpoints, ok := inferenceEndpoints[strings.ToLower(p.p.Type)]
	if !ok {
		return nil, status.Errorf(codes.InvalidArgument, "provider type '%s' is not supported for inference routing (supported: anthropic, nvidia, openai)", p.p.Type)
	}
	if !hasCredential(p.p) {
		return nil, status.Errorf(codes.InvalidArgument, "provider '%s' has no non-empty credential to use for inference", req.GetProviderName())
	}
	var version uint64 = 1
	if cur := st.inference[route]; cur != nil {
		version = cur.Version + 1
	}
	st.inference[route] = &inferencev1.GetClusterInferenceResponse{
		ProviderName: req.GetProviderName(), ModelId: req.GetModelId(), Version: version, RouteName: route, TimeoutSecs: req.GetTimeoutSecs(),
	}
	out := &inferencev1.SetClusterInferenceResponse{
		ProviderName: req.GetProviderName(), ModelId: req.GetModelId(), Version: version, RouteName: route,
		TimeoutSecs: req.GetTimeoutSecs(), ValidationPerformed: !req.GetNoVerify(),
	}
	if !req.GetNoVerify() {
		for _, e := range endpoints {
			out.ValidatedEndpoints = append(out.ValidatedEndpoints, proto.Clone(e).(*inferencev1.ValidatedEndpoint))
		}
	}
	return out, nil
}

// hasCredential: resolve_provider_route needs some non-empty credential (semantics §4 step 3).
func hasCredential(p *datamodelv1.Provider) bool {
	for _, v := range p.GetCredentials() {
		if strings.TrimSpace(v) != "" {
			return true
		}
	}
	return false
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
		return nil, status.Errorf(codes.NotFound, "inference route '%s' is not configured", route)
	}
	return proto.Clone(cur).(*inferencev1.GetClusterInferenceResponse), nil
}
