package controller

import (
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
	inferencev1 "github.com/openshell-operator/openshell-operator/gen/openshell/inference/v1"
)

func route(ns, name, routeName string, created time.Time) v1alpha1.InferenceRoute {
	return v1alpha1.InferenceRoute{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(ns + "/" + name), CreationTimestamp: metav1.NewTime(created)},
		Spec:       v1alpha1.InferenceRouteSpec{Route: routeName, ProviderRef: v1alpha1.LocalObjectReference{Name: "p"}, Model: "m"},
	}
}

func TestRouteOwner(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	old := route("b", "old", "", t0)
	young := route("a", "young", "inference.local", t0.Add(time.Minute))
	tieA := route("a", "tie", "", t0)
	system := route("c", "system", "sandbox-system", t0.Add(-time.Hour))
	deleting := route("a", "gone", "", t0.Add(-time.Hour))
	now := metav1.Now()
	deleting.DeletionTimestamp = &now
	otherGateway := route("a", "other-gw", "", t0.Add(-time.Hour))
	otherGateway.Spec.GatewayRef.Name = "second"

	cases := []struct {
		name string
		of   v1alpha1.InferenceRoute
		all  []v1alpha1.InferenceRoute
		want string
	}{
		{"alone", young, []v1alpha1.InferenceRoute{young}, "a/young"},
		{"oldest wins; empty route means inference.local", young, []v1alpha1.InferenceRoute{young, old}, "b/old"},
		{"same age: namespace/name order", old, []v1alpha1.InferenceRoute{old, tieA}, "a/tie"},
		{"other routes and gateways do not conflict", young, []v1alpha1.InferenceRoute{young, system, otherGateway}, "a/young"},
		{"deleting claimants are ignored", young, []v1alpha1.InferenceRoute{deleting, young}, "a/young"},
		{"a deleting route hands over", deleting, []v1alpha1.InferenceRoute{deleting, young}, "a/young"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := routeOwner(&tc.of, tc.all)
			if got == nil || got.Namespace+"/"+got.Name != tc.want {
				t.Fatalf("owner = %v, want %s", got, tc.want)
			}
		})
	}
	if got := routeOwner(&deleting, []v1alpha1.InferenceRoute{deleting}); got != nil {
		t.Fatalf("a lone deleting route has no owner, got %s", got.Name)
	}
}

func TestInferenceProviderCheck(t *testing.T) {
	ir := route("ns", "r", "", time.Now())
	// provider is Ready for its current generation on the default connection when gwName is
	// set (the gateway name itself is never read: it is derived); not Ready otherwise.
	provider := func(typ, gwName string) *v1alpha1.Provider {
		p := &v1alpha1.Provider{Spec: v1alpha1.ProviderSpec{Type: typ}, Status: v1alpha1.ProviderStatus{GatewayName: gwName}}
		p.Generation = 2
		if gwName != "" {
			p.Status.ObservedGeneration = 2
			p.Status.Conditions = []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, ObservedGeneration: 2}}
		}
		return p
	}
	cases := []struct {
		name   string
		p      *v1alpha1.Provider
		reason string
		stall  bool
	}{
		{"missing", nil, v1alpha1.ReasonDependencyNotReady, false},
		{"claude-code is not routable", provider("claude-code", "ns-p"), v1alpha1.ReasonUnsupportedProvider, true},
		{"github is not routable", provider("github", "ns-p"), v1alpha1.ReasonUnsupportedProvider, true},
		{"not on the gateway yet", provider("openai", ""), v1alpha1.ReasonDependencyNotReady, false},
		{"openai", provider("openai", "ns-p"), "", false},
		{"Anthropic any case", provider("Anthropic", "ns-p"), "", false},
		{"nvidia", provider("nvidia", "ns-p"), "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := inferenceProviderCheck(&ir, tc.p, v1alpha1.DefaultGatewayConnection)
			if tc.reason == "" {
				if got != nil {
					t.Fatalf("want no failure, got %+v", got)
				}
				return
			}
			if got == nil || got.Reason != tc.reason || got.Stalled != tc.stall {
				t.Fatalf("got %+v, want reason %s stalled %v", got, tc.reason, tc.stall)
			}
		})
	}
}

func TestInferenceRequestMapsVerifyToNoVerify(t *testing.T) {
	cases := []struct {
		name     string
		verify   *bool
		noVerify bool
	}{
		{"default verifies", nil, false},
		{"verify true", ptr.To(true), false},
		{"verify false sets no_verify", ptr.To(false), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ir := route("ns", "r", "", time.Now())
			ir.Spec.Verify, ir.Spec.TimeoutSeconds = tc.verify, 30
			req := inferenceRequest(&ir, "ns-p-1234")
			if req.GetNoVerify() != tc.noVerify || req.GetVerify() {
				t.Fatalf("no_verify = %v verify = %v, want no_verify %v and verify unset", req.GetNoVerify(), req.GetVerify(), tc.noVerify)
			}
			if req.GetRouteName() != "inference.local" || req.GetProviderName() != "ns-p-1234" || req.GetModelId() != "m" || req.GetTimeoutSecs() != 30 {
				t.Fatalf("unexpected request %v", req)
			}
		})
	}
}

func TestInferenceRouteInSync(t *testing.T) {
	want := &inferencev1.SetClusterInferenceRequest{ProviderName: "p", ModelId: "m", TimeoutSecs: 10}
	cases := []struct {
		name string
		live *inferencev1.GetClusterInferenceResponse
		in   bool
	}{
		{"not configured", nil, false},
		{"same (version ignored)", &inferencev1.GetClusterInferenceResponse{ProviderName: "p", ModelId: "m", TimeoutSecs: 10, Version: 7}, true},
		{"other model", &inferencev1.GetClusterInferenceResponse{ProviderName: "p", ModelId: "x", TimeoutSecs: 10}, false},
		{"other provider", &inferencev1.GetClusterInferenceResponse{ProviderName: "q", ModelId: "m", TimeoutSecs: 10}, false},
		{"other timeout", &inferencev1.GetClusterInferenceResponse{ProviderName: "p", ModelId: "m"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := inferenceRouteInSync(tc.live, want); got != tc.in {
				t.Fatalf("in sync = %v, want %v", got, tc.in)
			}
		})
	}
	// timeoutSeconds unset: the gateway's default 60 s, however it reports it.
	unset := &inferencev1.SetClusterInferenceRequest{ProviderName: "p", ModelId: "m"}
	for _, tc := range []struct {
		name string
		live uint64
		in   bool
	}{{"reported as 0", 0, true}, {"reported as the default 60", 60, true}, {"another timeout", 30, false}} {
		t.Run("unset timeout "+tc.name, func(t *testing.T) {
			live := &inferencev1.GetClusterInferenceResponse{ProviderName: "p", ModelId: "m", TimeoutSecs: tc.live}
			if got := inferenceRouteInSync(live, unset); got != tc.in {
				t.Fatalf("in sync = %v, want %v", got, tc.in)
			}
		})
	}
	eps := validatedEndpoints([]*inferencev1.ValidatedEndpoint{{Url: "https://api.openai.com/v1", Protocol: "openai_chat_completions"}, {Url: "https://x"}})
	if !slices.Equal(eps, []string{"https://api.openai.com/v1 (openai_chat_completions)", "https://x"}) {
		t.Fatalf("validated endpoints = %v", eps)
	}
}
