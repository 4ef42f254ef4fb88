package controller

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
)

var dns1123Label = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

func TestGatewayName(t *testing.T) {
	cases := []struct{ ns, name, prefix string }{
		{"team-a", "agent", "team-a-agent-"},
		{"a-b", "c", "a-b-c-"},
		{"a", "b-c", "a-b-c-"},
		{"ns", "Name.With.Dots", "ns-name-with-dots-"},
		{strings.Repeat("n", 63), strings.Repeat("m", 253), strings.Repeat("n", 54)},
	}
	seen := map[string]string{}
	for _, tc := range cases {
		got := GatewayName(tc.ns, tc.name)
		if !dns1123Label.MatchString(got) || len(got) > 63 {
			t.Errorf("GatewayName(%q, %q) = %q is not a DNS-1123 label of at most 63", tc.ns, tc.name, got)
		}
		if !strings.HasPrefix(got, tc.prefix) {
			t.Errorf("GatewayName(%q, %q) = %q should start with %q", tc.ns, tc.name, got, tc.prefix)
		}
		if GatewayName(tc.ns, tc.name) != got {
			t.Errorf("not deterministic")
		}
		if other, dup := seen[got]; dup {
			t.Errorf("collision: %s/%s and %s", tc.ns, tc.name, other)
		}
		seen[got] = tc.ns + "/" + tc.name
	}
	// Many distinct pairs, including ambiguous joins and long shared prefixes, never collide.
	for i := 0; i < 3000; i++ {
		ns, name := fmt.Sprintf("ns-%d", i%37), fmt.Sprintf("%s-%d", strings.Repeat("x", i%70), i)
		got := GatewayName(ns, name)
		if other, dup := seen[got]; dup && other != ns+"/"+name {
			t.Fatalf("collision between %s/%s and %s", ns, name, other)
		}
		if !dns1123Label.MatchString(got) {
			t.Fatalf("invalid label %q", got)
		}
		seen[got] = ns + "/" + name
	}
}

func TestOwnership(t *testing.T) {
	p := &v1alpha1.Provider{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "p", UID: "u1"}}
	labels := OwnershipLabels(p)
	if !OwnedBy(labels, p) {
		t.Fatal("own labels must prove ownership")
	}
	for name, other := range map[string]*v1alpha1.Provider{
		"other namespace": {ObjectMeta: metav1.ObjectMeta{Namespace: "b", Name: "p", UID: "u1"}},
		"other name":      {ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "q", UID: "u1"}},
		"recreated (uid)": {ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "p", UID: "u2"}},
	} {
		if OwnedBy(labels, other) {
			t.Errorf("%s must not be seen as the owner", name)
		}
	}
	if OwnedBy(map[string]string{"app": "x"}, p) || OwnedBy(nil, p) {
		t.Fatal("foreign or unlabelled objects are never owned")
	}
}
