package gateway

import (
	"context"

	inferencev1 "github.com/openshell-operator/openshell-operator/gen/openshell/inference/v1"
)

// InferenceAPI manages cluster inference routes. Every Set bumps the route's version on the
// gateway, so callers should Set only when the live route differs. There is no delete.
type InferenceAPI struct{ c *Client }

// Get returns a route ("" means inference.local); NOT_FOUND when it was never set.
func (a *InferenceAPI) Get(ctx context.Context, route string) (*inferencev1.GetClusterInferenceResponse, error) {
	resp, err := a.c.infer.GetClusterInference(ctx, &inferencev1.GetClusterInferenceRequest{RouteName: route})
	if err != nil {
		return nil, wrap(err, "get inference route %q", route)
	}
	return resp, nil
}

// Set configures a route. Only NoVerify skips the gateway's verification.
func (a *InferenceAPI) Set(ctx context.Context, req *inferencev1.SetClusterInferenceRequest) (*inferencev1.SetClusterInferenceResponse, error) {
	resp, err := a.c.infer.SetClusterInference(ctx, req)
	if err != nil {
		return nil, wrap(err, "set inference route %q", req.GetRouteName())
	}
	return resp, nil
}
