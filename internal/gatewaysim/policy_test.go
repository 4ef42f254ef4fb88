package gatewaysim

import (
	"testing"

	sandboxv1 "github.com/openshell-operator/openshell-operator/gen/openshell/sandbox/v1"
)

func TestPolicyHashIsCanonical(t *testing.T) {
	mk := func(order []string) *sandboxv1.SandboxPolicy {
		p := &sandboxv1.SandboxPolicy{NetworkPolicies: map[string]*sandboxv1.NetworkPolicyRule{}}
		for _, k := range order {
			p.NetworkPolicies[k] = &sandboxv1.NetworkPolicyRule{Name: k, Endpoints: []*sandboxv1.NetworkEndpoint{{Host: k + ".example.com", Port: 443,
				Rules: []*sandboxv1.L7Rule{{Allow: &sandboxv1.L7Allow{Query: map[string]*sandboxv1.L7QueryMatcher{"a": {Glob: "x"}, "b": {Glob: "y"}, "c": {Any: []string{"1"}}}}}}}}}
		}
		return p
	}
	base := PolicyHash(mk([]string{"a", "b", "c", "d"}))
	for i := 0; i < 50; i++ {
		if got := PolicyHash(mk([]string{"d", "c", "b", "a"})); got != base {
			t.Fatalf("hash depends on map order: %s != %s", got, base)
		}
	}
	if len(base) != 64 {
		t.Fatalf("want lowercase hex SHA-256, got %q", base)
	}
	changed := mk([]string{"a", "b", "c", "d"})
	changed.Version = 2
	if PolicyHash(changed) == base {
		t.Fatal("the version is part of the hash")
	}
}

func TestLabelRulesAndSelectors(t *testing.T) {
	cases := []struct {
		labels map[string]string
		ok     bool
	}{
		{map[string]string{"app": "x"}, true},
		{map[string]string{"openshell.dev/name": "a.b-c_d"}, true},
		{map[string]string{"key": ""}, true},
		{map[string]string{"-bad": "x"}, false},
		{map[string]string{"Bad.Prefix/x": "y"}, false},
		{map[string]string{"a..b/x": "y"}, false},
		{map[string]string{"x": "-bad"}, false},
	}
	for _, tc := range cases {
		if err := validateLabels(tc.labels); (err == nil) != tc.ok {
			t.Errorf("validateLabels(%v) = %v, want ok=%v", tc.labels, err, tc.ok)
		}
	}
	sel, err := parseSelector(" a=1, b = 2 ,,")
	if err != nil || len(sel) != 2 || sel["b"] != "2" {
		t.Fatalf("selector parse: %v %v", sel, err)
	}
	if !matches(map[string]string{"a": "1", "b": "2", "c": "3"}, sel) || matches(map[string]string{"a": "1"}, sel) {
		t.Fatal("selectors are an AND of equalities")
	}
	if _, err := parseSelector("a"); err == nil {
		t.Fatal("a pair without = is invalid")
	}
}

func TestPagingRules(t *testing.T) {
	items := make([]int, 1500)
	if got := len(page(items, 0, 0, 100)); got != 100 {
		t.Fatalf("limit 0 means the default: %d", got)
	}
	if got := len(page(items, 5000, 0, 100)); got != 1000 {
		t.Fatalf("limit is capped at 1000: %d", got)
	}
	if got := page(items, 10, 1495, 100); len(got) != 5 {
		t.Fatalf("last short page: %d", len(got))
	}
	if got := page(items, 10, 2000, 100); got != nil {
		t.Fatal("offset past the end gives nothing")
	}
}
