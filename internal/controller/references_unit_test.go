package controller

import (
	"context"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
	datamodelv1 "github.com/openshell-operator/openshell-operator/gen/openshell/datamodel/v1"
)

// seenProviders is a providerLookup holding what an observation loop listed.
type seenProviders map[string]*datamodelv1.ObjectMeta

func (s seenProviders) ProviderMeta(_, name string) (*datamodelv1.ObjectMeta, bool) {
	md, ok := s[name]
	return md, ok
}

// TestAttachProviderUsesTheObservedListOnlyWhenItProvesOwnership: a provider the loop listed
// with this Provider's ownership labels costs no call; one listed with other labels (a
// squatter) is asked of the gateway and refused there.
func TestAttachProviderUsesTheObservedListOnlyWhenItProvesOwnership(t *testing.T) {
	p := &v1alpha1.Provider{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "openai", UID: "uid-p", Generation: 1}}
	p.Status.ObservedGeneration = 1
	applyConditions(&p.Status.Conditions, 1, readyOutcome("in sync"))
	name := GatewayName("team", "openai")
	ctx := context.Background()

	g := newFakeGateway()
	got, why, err := attachProvider(ctx, fakeProviders{g}, seenProviders{name: {Name: name, Labels: OwnershipLabels(p)}}, p, "default")
	if err != nil || why != "" || got != name || g.calls["Providers.Get"] != 0 {
		t.Fatalf("owned and listed: name %q why %q err %v calls %v", got, why, err, g.calls)
	}

	squat := map[string]string{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue, v1alpha1.LabelNamespace: "team", v1alpha1.LabelName: "openai", v1alpha1.LabelUID: "other"}
	g = newFakeGateway()
	g.providers[name] = &datamodelv1.Provider{Metadata: &datamodelv1.ObjectMeta{Name: name, Labels: squat}}
	got, why, err = attachProvider(ctx, fakeProviders{g}, seenProviders{name: {Name: name, Labels: squat}}, p, "default")
	if err != nil || got != "" || why == "" || g.calls["Providers.Get"] != 1 {
		t.Fatalf("squatted: name %q why %q err %v calls %v", got, why, err, g.calls)
	}
}
