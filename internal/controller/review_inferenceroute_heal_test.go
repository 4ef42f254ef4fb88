package controller

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
	datamodelv1 "github.com/openshell-operator/openshell-operator/gen/openshell/datamodel/v1"
	inferencev1 "github.com/openshell-operator/openshell-operator/gen/openshell/inference/v1"
)

// TestRouteHealEventNamesOnlyOwnProvider: the Healed event of a route changed on the gateway
// names the provider and model it replaced only when that provider is of the route's own
// namespace (the operator's ownership labels). Taking over the route of a former grant holder
// whose status.routeVersion (tenant-writable) is forged says neither the holder's provider
// (its namespace and name) nor its model.
func TestRouteHealEventNamesOnlyOwnProvider(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	own := GatewayName("team", "openai")
	victim := GatewayName("victim-corp", "azure-openai-prod")
	const victimModel = "ft:gpt-4o:victim-corp:secret-project"
	tests := []struct {
		name    string
		prepare func(g *fakeGateway)
		want    []recordedEvent
	}{
		{name: "the former holder's provider and model are not named",
			prepare: func(g *fakeGateway) {
				g.providers[victim] = &datamodelv1.Provider{Metadata: &datamodelv1.ObjectMeta{Name: victim,
					Labels: map[string]string{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue, v1alpha1.LabelNamespace: "victim-corp"}}}
				g.route = &inferencev1.GetClusterInferenceResponse{ProviderName: victim, ModelId: victimModel, Version: 2, RouteName: "inference.local"}
			},
			want: []recordedEvent{{corev1.EventTypeWarning, eventHealed, "route inference.local was changed on the gateway; set it back (version 3)"}}},
		{name: "a provider gone from the gateway is not named",
			prepare: func(g *fakeGateway) {
				g.route = &inferencev1.GetClusterInferenceResponse{ProviderName: victim, ModelId: victimModel, Version: 2, RouteName: "inference.local"}
			},
			want: []recordedEvent{{corev1.EventTypeWarning, eventHealed, "route inference.local was changed on the gateway; set it back (version 3)"}}},
		{name: "the route's own provider with another model is named",
			prepare: func(g *fakeGateway) {
				g.route = &inferencev1.GetClusterInferenceResponse{ProviderName: own, ModelId: "gpt-old", Version: 2, RouteName: "inference.local"}
			},
			want: []recordedEvent{{corev1.EventTypeWarning, eventHealed,
				"route inference.local was changed on the gateway (provider " + own + ", model gpt-old); set it back (version 3)"}}},
		{name: "another provider of the route's own namespace is named",
			prepare: func(g *fakeGateway) {
				other := GatewayName("team", "azure")
				g.providers[other] = &datamodelv1.Provider{Metadata: &datamodelv1.ObjectMeta{Name: other,
					Labels: map[string]string{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue, v1alpha1.LabelNamespace: "team"}}}
				g.route = &inferencev1.GetClusterInferenceResponse{ProviderName: other, ModelId: "gpt-az", Version: 2, RouteName: "inference.local"}
			},
			want: []recordedEvent{{corev1.EventTypeWarning, eventHealed,
				"route inference.local was changed on the gateway (provider " + GatewayName("team", "azure") + ", model gpt-az); set it back (version 3)"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conns, g := oneGateway()
			p := routeProvider("team")
			g.providers[own] = &datamodelv1.Provider{Metadata: &datamodelv1.ObjectMeta{Name: own, Labels: OwnershipLabels(p)}, Type: "openai"}
			tt.prepare(g)
			ir := unitRoute("team", "route", t0)
			ir.Status.RouteVersion = 1 // status is the tenant's to write
			c := fakeAPI(t, p, grantOnly("team"), namespaceObj("team"), namespaceObj("victim-corp"), ir)
			ev := &eventLog{}
			r := &InferenceRouteReconciler{Client: c, Gateways: conns, Recorder: ev}
			k := newKernel(c, kindInferenceRoute, func() *v1alpha1.InferenceRoute { return &v1alpha1.InferenceRoute{} },
				kindSteps[*v1alpha1.InferenceRoute](r), ev, true, Backoff{}, 0)
			reconcileOnce(t, k, keyOf(ir))
			var healed []recordedEvent
			for _, e := range ev.events {
				if strings.Contains(e.Message, "victim") || strings.Contains(e.Message, victimModel) {
					t.Errorf("event names the former holder: %+v", e)
				}
				if e.Reason == eventHealed {
					healed = append(healed, e)
				}
			}
			if diff := cmp.Diff(tt.want, healed); diff != "" {
				t.Errorf("Healed events (-want +got):\n%s", diff)
			}
		})
	}
}
