package controller

import (
	"fmt"
	"slices"
	"strings"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
	inferencev1 "github.com/openshell-operator/openshell-operator/gen/openshell/inference/v1"
)

// defaultInferenceRoute is the route sandboxes call when spec.route is empty.
const defaultInferenceRoute = "inference.local"

// inferenceProviderTypes are the provider types the gateway can route inference to
// (gateway-semantics §4: anything else is INVALID_ARGUMENT, whatever the profile says).
var inferenceProviderTypes = []string{"anthropic", "nvidia", "openai"}

// inferenceRouteName is the canonical gateway route of an InferenceRoute.
func inferenceRouteName(ir *v1alpha1.InferenceRoute) string {
	if r := strings.TrimSpace(ir.Spec.Route); r != "" {
		return r
	}
	return defaultInferenceRoute
}

// routeClaimKey identifies one route on one gateway; claimants of the same key conflict.
func routeClaimKey(ir *v1alpha1.InferenceRoute) string {
	return gatewayRefName(ir.Spec.GatewayRef) + "/" + inferenceRouteName(ir)
}

// routeOwner returns the claimant that owns ir's gateway route: the oldest live one, ties
// broken by namespace/name so every reconcile agrees. Nil when there is none.
func routeOwner(ir *v1alpha1.InferenceRoute, all []v1alpha1.InferenceRoute) *v1alpha1.InferenceRoute {
	var owner *v1alpha1.InferenceRoute
	key := routeClaimKey(ir)
	for i := range all {
		c := &all[i]
		if !c.DeletionTimestamp.IsZero() || routeClaimKey(c) != key {
			continue
		}
		if owner == nil || claimsBefore(c, owner) {
			owner = c
		}
	}
	return owner
}

func claimsBefore(a, b *v1alpha1.InferenceRoute) bool {
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	}
	return a.Namespace+"/"+a.Name < b.Namespace+"/"+b.Name
}

// inferenceProviderCheck reports, before any gateway call, why a Provider cannot back a
// route; nil when it can.
func inferenceProviderCheck(ir *v1alpha1.InferenceRoute, p *v1alpha1.Provider, connection string) *outcome {
	ref := ir.Spec.ProviderRef.Name
	if p == nil {
		return &outcome{Reason: v1alpha1.ReasonDependencyNotReady, Message: fmt.Sprintf("Provider %q not found in namespace %s", ref, ir.Namespace)}
	}
	if !slices.Contains(inferenceProviderTypes, strings.ToLower(p.Spec.Type)) {
		return &outcome{Stalled: true, Reason: v1alpha1.ReasonUnsupportedProvider,
			Message: fmt.Sprintf("Provider %q has type %q; the gateway routes inference only to types %s", ref, p.Spec.Type, strings.Join(inferenceProviderTypes, ", "))}
	}
	if why := providerNotAttachable(p, connection); why != "" {
		return &outcome{Reason: v1alpha1.ReasonDependencyNotReady, Message: why}
	}
	return nil
}

// inferenceRequest is the SetClusterInference call for ir. The gateway ignores `verify` and
// verifies unless `no_verify` is set, so spec.verify maps onto no_verify.
func inferenceRequest(ir *v1alpha1.InferenceRoute, providerGatewayName string) *inferencev1.SetClusterInferenceRequest {
	verify := ir.Spec.Verify == nil || *ir.Spec.Verify
	return &inferencev1.SetClusterInferenceRequest{
		ProviderName: providerGatewayName,
		ModelId:      ir.Spec.Model,
		RouteName:    inferenceRouteName(ir),
		NoVerify:     !verify,
		TimeoutSecs:  uint64(max(ir.Spec.TimeoutSeconds, 0)),
	}
}

// inferenceRouteInSync reports whether the live route already serves the request. Set bumps
// the version on every call, so it is only called when this is false.
func inferenceRouteInSync(live *inferencev1.GetClusterInferenceResponse, want *inferencev1.SetClusterInferenceRequest) bool {
	return live != nil && live.GetProviderName() == want.GetProviderName() &&
		live.GetModelId() == want.GetModelId() && effectiveRouteTimeout(live.GetTimeoutSecs()) == effectiveRouteTimeout(want.GetTimeoutSecs())
}

// defaultRouteTimeoutSecs is what the gateway uses for timeout_secs 0 (semantics §4).
const defaultRouteTimeoutSecs = 60

// effectiveRouteTimeout compares timeouts as the gateway applies them: whether it reports an
// unset timeout as 0 or as its default, the route is the same and needs no Set (which would
// bump the version on every resync).
func effectiveRouteTimeout(secs uint64) uint64 {
	if secs == 0 {
		return defaultRouteTimeoutSecs
	}
	return secs
}

// validatedEndpoints renders the endpoints the gateway probed as "url (protocol)".
func validatedEndpoints(eps []*inferencev1.ValidatedEndpoint) []string {
	out := make([]string, 0, len(eps))
	for _, e := range eps {
		s := e.GetUrl()
		if e.GetProtocol() != "" {
			s += " (" + e.GetProtocol() + ")"
		}
		out = append(out, s)
	}
	return out
}
