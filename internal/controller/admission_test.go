package controller

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
)

func TestAdmission(t *testing.T) {
	byName := func(names ...string) *v1alpha1.AllowedNamespaces {
		return &v1alpha1.AllowedNamespaces{From: v1alpha1.NamespacesFromSelector, Selector: &metav1.LabelSelector{
			MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpIn, Values: names}}}}
	}
	gc := func(use, routes *v1alpha1.AllowedNamespaces) *v1alpha1.GatewayConnection {
		c := &v1alpha1.GatewayConnection{ObjectMeta: metav1.ObjectMeta{Name: "shared"}, Spec: v1alpha1.GatewayConnectionSpec{Namespaces: use}}
		if routes != nil {
			c.Spec.InferenceRoutes = &v1alpha1.InferenceRouteGrant{Namespaces: routes}
		}
		return c
	}
	labels := func(ns string) map[string]string { return map[string]string{"kubernetes.io/metadata.name": ns} }
	for _, tc := range []struct {
		name   string
		gc     *v1alpha1.GatewayConnection
		ns     string
		routes bool
		want   string // "" admits; else a fragment of the message
	}{
		{name: "unset rules admit use", gc: gc(nil, nil), ns: "team-a"},
		{name: "unset rules grant no routes", gc: gc(nil, nil), ns: "team-a", routes: true,
			want: `GatewayConnection "shared" does not grant its inference routes to namespace "team-a" (spec.inferenceRoutes.namespaces)`},
		{name: "selected namespace", gc: gc(byName("team-a"), nil), ns: "team-a"},
		{name: "other namespace", gc: gc(byName("team-a"), nil), ns: "team-b",
			want: `GatewayConnection "shared" does not admit namespace "team-b" (spec.namespaces)`},
		{name: "None", gc: gc(&v1alpha1.AllowedNamespaces{From: v1alpha1.NamespacesFromNone}, nil), ns: "team-a", want: "does not admit"},
		{name: "granted routes", gc: gc(nil, byName("platform")), ns: "platform", routes: true},
		{name: "use is checked before routes", gc: gc(byName("x"), byName("platform")), ns: "platform", routes: true, want: "does not admit"},
		{name: "route grant does not matter for use", gc: gc(nil, byName("platform")), ns: "team-a"},
		{name: "unusable selector admits nothing", gc: gc(&v1alpha1.AllowedNamespaces{From: v1alpha1.NamespacesFromSelector,
			Selector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "a", Operator: "Near"}}}}, nil),
			ns: "team-a", want: "unusable spec.namespaces selector"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := admission(tc.gc, tc.ns, labels(tc.ns), gatewayUse{Connection: tc.gc.Name, Routes: tc.routes})
			switch {
			case tc.want == "" && f != nil:
				t.Fatalf("refused: %s", f.Message)
			case tc.want != "" && f == nil:
				t.Fatalf("admitted, want %q", tc.want)
			case tc.want != "" && (f.Reason != v1alpha1.ReasonNamespaceNotAllowed || !f.Stalled || f.Retry != retryOnChange || !strings.Contains(f.Message, tc.want)):
				t.Fatalf("got %+v, want NamespaceNotAllowed, stalled, retry on change, message with %q", f, tc.want)
			}
		})
	}
}

func TestClusterReference(t *testing.T) {
	if f := clusterReference("spec.tls.secretRef", "openshell-system", []string{"openshell-system"}); f != nil {
		t.Fatalf("refused the cluster resource namespace: %s", f.Message)
	}
	f := clusterReference("spec.tls.secretRef", "team-a", []string{"openshell-system", "openshell"})
	if f == nil || f.Reason != v1alpha1.ReasonReferenceNotAllowed || !f.Stalled ||
		f.Message != `spec.tls.secretRef: namespace "team-a" is not a cluster resource namespace of the operator (openshell-system, openshell); keep it there or add the namespace with --cluster-resource-namespace` {
		t.Fatalf("got %+v", f)
	}
}

func TestProviderNotAttachable(t *testing.T) {
	ready := func(gen, observed, condGen int64, status metav1.ConditionStatus, ref string) *v1alpha1.Provider {
		p := &v1alpha1.Provider{ObjectMeta: metav1.ObjectMeta{Name: "p", Generation: gen}, Spec: v1alpha1.ProviderSpec{GatewayRef: v1alpha1.GatewayReference{Name: ref}}}
		p.Status.ObservedGeneration = observed
		p.Status.Conditions = []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: status, ObservedGeneration: condGen}}
		return p
	}
	for _, tc := range []struct {
		name string
		p    *v1alpha1.Provider
		want string
	}{
		{"ready on the default connection", ready(3, 3, 3, metav1.ConditionTrue, ""), ""},
		{"ready on the named connection", ready(3, 3, 3, metav1.ConditionTrue, "default"), ""},
		{"another connection", ready(3, 3, 3, metav1.ConditionTrue, "other"), `Provider "p" is on another GatewayConnection`},
		{"not ready", ready(3, 3, 3, metav1.ConditionFalse, ""), "not Ready for its current generation"},
		{"ready for an older generation", ready(4, 3, 3, metav1.ConditionTrue, ""), "not Ready for its current generation"},
		{"condition of an older generation", ready(4, 4, 3, metav1.ConditionTrue, ""), "not Ready for its current generation"},
		{"no condition", &v1alpha1.Provider{ObjectMeta: metav1.ObjectMeta{Name: "p"}}, "not Ready for its current generation"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := providerNotAttachable(tc.p, v1alpha1.DefaultGatewayConnection); (tc.want == "" && got != "") || !strings.Contains(got, tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}
