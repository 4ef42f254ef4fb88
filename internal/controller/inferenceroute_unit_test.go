package controller

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
	datamodelv1 "github.com/openshell-operator/openshell-operator/gen/openshell/datamodel/v1"
	inferencev1 "github.com/openshell-operator/openshell-operator/gen/openshell/inference/v1"
)

func unitRoute(ns, name string, created time.Time) *v1alpha1.InferenceRoute {
	return &v1alpha1.InferenceRoute{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + ns + "-" + name), Generation: 1,
			Finalizers: []string{v1alpha1.Finalizer}, CreationTimestamp: metav1.NewTime(created)},
		Spec: v1alpha1.InferenceRouteSpec{ProviderRef: v1alpha1.LocalObjectReference{Name: "openai"}, Model: "gpt-x"},
	}
}

// routeProvider is a Provider Ready for its current generation; the test registers its owned
// gateway provider (attachProvider checks both).
func routeProvider(ns string, mut ...func(*v1alpha1.Provider)) *v1alpha1.Provider {
	p := &v1alpha1.Provider{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "openai", UID: types.UID("uid-provider-" + ns), Generation: 1},
		Spec: v1alpha1.ProviderSpec{Type: "openai"}}
	p.Status.GatewayName = GatewayName(ns, "openai")
	p.Status.ObservedGeneration = 1
	p.Status.Conditions = []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonReady, ObservedGeneration: 1}}
	for _, m := range mut {
		m(p)
	}
	return p
}

func TestInferenceRouteBranches(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	pname := GatewayName("team", "openai")
	type want struct {
		Conditions []string
		Version    uint64
		Requeue    time.Duration
		Calls      map[string]int
	}
	tests := []struct {
		name    string
		objs    []client.Object
		prepare func(*fakeGateway)
		want    want
	}{
		{name: "sets the route and is Ready",
			objs: []client.Object{routeProvider("team")},
			want: want{Conditions: []string{"Ready=True/Ready: route inference.local serves model gpt-x through provider " + pname},
				Version: 1, Requeue: defaultRouteResync, Calls: map[string]int{"Providers.Get": 1, "Inference.Get": 1, "Inference.Set": 1}}},
		{name: "a route in sync is not set again (every Set bumps the version)",
			objs: []client.Object{routeProvider("team")},
			prepare: func(g *fakeGateway) {
				g.route = &inferencev1.GetClusterInferenceResponse{ProviderName: pname, ModelId: "gpt-x", Version: 4, RouteName: "inference.local", TimeoutSecs: 60}
			},
			want: want{Conditions: []string{"Ready=True/Ready: route inference.local serves model gpt-x through provider " + pname},
				Version: 4, Requeue: defaultRouteResync, Calls: map[string]int{"Providers.Get": 1, "Inference.Get": 1}}},
		{name: "an older claimant owns the route: Conflict, no call",
			objs: []client.Object{routeProvider("team"), unitRoute("team", "first", t0.Add(-time.Hour))},
			want: want{Conditions: []string{
				"Ready=False/Conflict: route inference.local of GatewayConnection default is claimed by an older InferenceRoute; a route is never handed over automatically",
				"Stalled=True/Conflict: route inference.local of GatewayConnection default is claimed by an older InferenceRoute; a route is never handed over automatically"},
				Calls: map[string]int{}}},
		{name: "a route set for another granted namespace is never taken over",
			objs: []client.Object{routeProvider("team"), grantAll(), namespaceObj("team"), namespaceObj("other")},
			prepare: func(g *fakeGateway) {
				g.providers["other-p"] = &datamodelv1.Provider{Metadata: &datamodelv1.ObjectMeta{Name: "other-p",
					Labels: map[string]string{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue, v1alpha1.LabelNamespace: "other"}}}
				g.route = &inferencev1.GetClusterInferenceResponse{ProviderName: "other-p", ModelId: "m", Version: 2, RouteName: "inference.local"}
			},
			want: want{Conditions: []string{
				"Ready=False/Conflict: route inference.local of GatewayConnection default is set for another namespace and is never handed over automatically; a platform administrator releases it by revoking that namespace's grant (spec.inferenceRoutes.namespaces)",
				"Stalled=True/Conflict: route inference.local of GatewayConnection default is set for another namespace and is never handed over automatically; a platform administrator releases it by revoking that namespace's grant (spec.inferenceRoutes.namespaces)"},
				Calls: map[string]int{"Providers.Get": 2, "Inference.Get": 1}}},
		{name: "a route held by a namespace no longer granted is set",
			objs: []client.Object{routeProvider("team"), grantOnly("team"), namespaceObj("team"), namespaceObj("other")},
			prepare: func(g *fakeGateway) {
				g.providers["other-p"] = &datamodelv1.Provider{Metadata: &datamodelv1.ObjectMeta{Name: "other-p",
					Labels: map[string]string{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue, v1alpha1.LabelNamespace: "other"}}}
				g.route = &inferencev1.GetClusterInferenceResponse{ProviderName: "other-p", ModelId: "m", Version: 2, RouteName: "inference.local"}
			},
			want: want{Conditions: []string{"Ready=True/Ready: route inference.local serves model gpt-x through provider " + pname},
				Version: 3, Requeue: defaultRouteResync, Calls: map[string]int{"Providers.Get": 2, "Inference.Get": 1, "Inference.Set": 1}}},
		{name: "a route pointing at a provider the operator does not manage is left alone",
			objs: []client.Object{routeProvider("team")},
			prepare: func(g *fakeGateway) {
				g.providers["cli-p"] = &datamodelv1.Provider{Metadata: &datamodelv1.ObjectMeta{Name: "cli-p"}}
				g.route = &inferencev1.GetClusterInferenceResponse{ProviderName: "cli-p", ModelId: "m", Version: 2, RouteName: "inference.local"}
			},
			want: want{Conditions: []string{
				"Ready=False/Conflict: route inference.local of GatewayConnection default points at a provider the operator does not manage; it is left untouched",
				"Stalled=True/Conflict: route inference.local of GatewayConnection default points at a provider the operator does not manage; it is left untouched"},
				Calls: map[string]int{"Providers.Get": 2, "Inference.Get": 1}}},
		{name: "a forged Provider status attaches nothing: the gateway provider is not this Provider's",
			objs: []client.Object{routeProvider("team", func(p *v1alpha1.Provider) { p.Status.GatewayName = GatewayName("victim", "openai") })},
			prepare: func(g *fakeGateway) {
				// The gateway object of the derived name belongs to another resource (other UID).
				g.providers[pname].Metadata.Labels[v1alpha1.LabelUID] = "someone-else"
			},
			want: want{Conditions: []string{`Ready=False/DependencyNotReady: the gateway provider of Provider "openai" is not owned by it`,
				`Reconciling=True/DependencyNotReady: the gateway provider of Provider "openai" is not owned by it`},
				Requeue: defaultDependencyInterval, Calls: map[string]int{"Providers.Get": 1}}},
		{name: "the Provider is missing: waits on the dependency",
			want: want{Conditions: []string{`Ready=False/DependencyNotReady: Provider "openai" not found in namespace team`,
				`Reconciling=True/DependencyNotReady: Provider "openai" not found in namespace team`},
				Requeue: defaultDependencyInterval, Calls: map[string]int{}}},
		{name: "a provider type the gateway cannot route to stalls",
			objs: []client.Object{routeProvider("team", func(p *v1alpha1.Provider) { p.Spec.Type = "github" })},
			want: want{Conditions: []string{`Ready=False/UnsupportedProvider: Provider "openai" has type "github"; the gateway routes inference only to types ` + joinedInferenceTypes(),
				`Stalled=True/UnsupportedProvider: Provider "openai" has type "github"; the gateway routes inference only to types ` + joinedInferenceTypes()},
				Calls: map[string]int{}}},
		{name: "verification failed: retried on the dependency interval, not Stalled",
			objs: []client.Object{routeProvider("team")},
			prepare: func(g *fakeGateway) {
				g.errs["Inference.Set"] = status.Error(codes.FailedPrecondition, "failed to verify inference endpoint")
			},
			want: want{Conditions: []string{"Ready=False/GatewayRejected: set inference route: failed to verify inference endpoint (FailedPrecondition)",
				"Reconciling=True/GatewayRejected: set inference route: failed to verify inference endpoint (FailedPrecondition)"},
				Requeue: defaultDependencyInterval, Calls: map[string]int{"Providers.Get": 1, "Inference.Get": 1, "Inference.Set": 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conns, g := oneGateway()
			for _, o := range tt.objs {
				if p, ok := o.(*v1alpha1.Provider); ok {
					g.providers[GatewayName(p.Namespace, p.Name)] = &datamodelv1.Provider{
						Metadata: &datamodelv1.ObjectMeta{Name: GatewayName(p.Namespace, p.Name), Labels: OwnershipLabels(p)}, Type: p.Spec.Type}
				}
			}
			if tt.prepare != nil {
				tt.prepare(g)
			}
			ir := unitRoute("team", "route", t0)
			c := fakeAPI(t, append(tt.objs, ir)...)
			r := &InferenceRouteReconciler{Client: c, Gateways: conns}
			k := newKernel(c, kindInferenceRoute, func() *v1alpha1.InferenceRoute { return &v1alpha1.InferenceRoute{} },
				kindSteps[*v1alpha1.InferenceRoute](r), nil, true, Backoff{}, 0)
			got, res := reconcileOnce(t, k, keyOf(ir))
			if diff := cmp.Diff(tt.want, want{Conditions: conditionsOf(got.Status.Conditions), Version: got.Status.RouteVersion,
				Requeue: res.RequeueAfter, Calls: g.calls}); diff != "" {
				t.Fatalf("(-want +got):\n%s", diff)
			}
		})
	}
}

func namespaceObj(name string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"kubernetes.io/metadata.name": name}}}
}

// grantAll is the default connection granting its routes to every namespace.
func grantAll() *v1alpha1.GatewayConnection {
	return &v1alpha1.GatewayConnection{ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.DefaultGatewayConnection}, Spec: v1alpha1.GatewayConnectionSpec{
		InferenceRoutes: &v1alpha1.InferenceRouteGrant{Namespaces: &v1alpha1.AllowedNamespaces{From: v1alpha1.NamespacesFromAll}}}}
}

// grantOnly is the default connection granting its routes to namespace ns.
func grantOnly(ns string) *v1alpha1.GatewayConnection {
	gc := grantAll()
	gc.Spec.InferenceRoutes.Namespaces = &v1alpha1.AllowedNamespaces{From: v1alpha1.NamespacesFromSelector,
		Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": ns}}}
	return gc
}

func joinedInferenceTypes() string { return strings.Join(inferenceProviderTypes, ", ") }
