package v1alpha1

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestAllowedNamespacesAdmits(t *testing.T) {
	team := map[string]string{"kubernetes.io/metadata.name": "team-a", "tenant": "a"}
	other := map[string]string{"kubernetes.io/metadata.name": "team-b"}
	selector := &AllowedNamespaces{From: NamespacesFromSelector, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"tenant": "a"}}}
	for _, tc := range []struct {
		name     string
		rule     *AllowedNamespaces
		fallback NamespacesFrom
		labels   map[string]string
		want     bool
		wantErr  bool
	}{
		{name: "nil takes the fallback All", fallback: NamespacesFromAll, labels: other, want: true},
		{name: "nil takes the fallback None", fallback: NamespacesFromNone, labels: team, want: false},
		{name: "All", rule: &AllowedNamespaces{From: NamespacesFromAll}, fallback: NamespacesFromNone, labels: other, want: true},
		{name: "None", rule: &AllowedNamespaces{From: NamespacesFromNone}, fallback: NamespacesFromAll, labels: team, want: false},
		{name: "selector matches", rule: selector, labels: team, want: true},
		{name: "selector does not match", rule: selector, labels: other, want: false},
		{name: "empty selector matches all", rule: &AllowedNamespaces{From: NamespacesFromSelector, Selector: &metav1.LabelSelector{}}, labels: other, want: true},
		{name: "Selector without selector admits nothing", rule: &AllowedNamespaces{From: NamespacesFromSelector}, labels: team, want: false},
		{name: "unknown from admits nothing", rule: &AllowedNamespaces{From: "Some"}, labels: team, want: false},
		{name: "bad operator", rule: &AllowedNamespaces{From: NamespacesFromSelector, Selector: &metav1.LabelSelector{
			MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "tenant", Operator: "Near"}}}}, labels: team, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.rule.Admits(tc.labels, tc.fallback)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("Admits = %v, %v; want %v, error %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}
