package controller

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
	inferencev1 "github.com/openshell-operator/openshell-operator/gen/openshell/inference/v1"
)

func unitRoute(ns, name string, created time.Time) *v1alpha1.InferenceRoute {
	return &v1alpha1.InferenceRoute{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + ns + "-" + name), Generation: 1,
			Finalizers: []string{v1alpha1.Finalizer}, CreationTimestamp: metav1.NewTime(created)},
		Spec: v1alpha1.InferenceRouteSpec{ProviderRef: v1alpha1.LocalObjectReference{Name: "openai"}, Model: "gpt-x"},
	}
}

func routeProvider(ns string, mut ...func(*v1alpha1.Provider)) *v1alpha1.Provider {
	p := &v1alpha1.Provider{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "openai"}, Spec: v1alpha1.ProviderSpec{Type: "openai"}}
	p.Status.GatewayName = GatewayName(ns, "openai")
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
				Version: 1, Requeue: defaultRouteResync, Calls: map[string]int{"Inference.Get": 1, "Inference.Set": 1}}},
		{name: "a route in sync is not set again (every Set bumps the version)",
			objs: []client.Object{routeProvider("team")},
			prepare: func(g *fakeGateway) {
				g.route = &inferencev1.GetClusterInferenceResponse{ProviderName: pname, ModelId: "gpt-x", Version: 4, RouteName: "inference.local", TimeoutSecs: 60}
			},
			want: want{Conditions: []string{"Ready=True/Ready: route inference.local serves model gpt-x through provider " + pname},
				Version: 4, Requeue: defaultRouteResync, Calls: map[string]int{"Inference.Get": 1}}},
		{name: "an older claimant owns the route: Conflict, no call",
			objs: []client.Object{routeProvider("team"), unitRoute("team", "first", t0.Add(-time.Hour))},
			want: want{Conditions: []string{
				"Ready=False/Conflict: route inference.local of GatewayConnection default is managed by the older InferenceRoute team/first; this one takes over when that one is deleted",
				"Stalled=True/Conflict: route inference.local of GatewayConnection default is managed by the older InferenceRoute team/first; this one takes over when that one is deleted"},
				Calls: map[string]int{}}},
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
				Requeue: defaultDependencyInterval, Calls: map[string]int{"Inference.Get": 1, "Inference.Set": 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conns, g := oneGateway()
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

func joinedInferenceTypes() string { return strings.Join(inferenceProviderTypes, ", ") }
