package controller

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"
)

// asName maps arbitrary fuzz input onto the alphabet of Kubernetes names (lowercase
// alphanumerics, '-' and, unless label, '.'), at most max characters; ok is false when
// nothing valid remains. The fuzzer thus spends its time on names that can exist.
func asName(raw string, max int, label bool) (string, bool) {
	b := make([]byte, 0, len(raw))
	for i := 0; i < len(raw) && len(b) < max; i++ {
		c := raw[i]
		switch {
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-':
		case c == '.' && !label:
		default:
			c = '-'
		}
		b = append(b, c)
	}
	s := string(b)
	var errs []string
	if label {
		errs = validation.IsDNS1123Label(s)
	} else {
		errs = validation.IsDNS1123Subdomain(s)
	}
	return s, len(errs) == 0
}

// FuzzGatewayName: for any two namespace/name pairs Kubernetes accepts, the gateway names are
// DNS-1123 labels of at most 63 characters, deterministic, readable (they start with the
// joined namespace and name, truncated) and distinct when the pairs are.
func FuzzGatewayName(f *testing.F) {
	seeds := [][4]string{
		{"team-a", "agent", "team-b", "agent"},
		{"a-b", "c", "a", "b-c"},
		{"ns", "x.y", "ns", "x-y"},
		{"ns", "a.b-c", "ns", "a-b.c"},
		{strings.Repeat("n", 63), strings.Repeat("m", 253), strings.Repeat("n", 63), strings.Repeat("m", 252) + "x"},
		{strings.Repeat("a", 63), "b", strings.Repeat("a", 62), "a-b"},
		{"0", "0", "0", "00"},
		{"Default", "My_Sandbox", "default", "my-sandbox"},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1], s[2], s[3])
	}
	f.Fuzz(func(t *testing.T, rawNS1, rawName1, rawNS2, rawName2 string) {
		ns1, ok1 := asName(rawNS1, 63, true)
		name1, ok2 := asName(rawName1, 253, false)
		ns2, ok3 := asName(rawNS2, 63, true)
		name2, ok4 := asName(rawName2, 253, false)
		if !ok1 || !ok2 || !ok3 || !ok4 {
			t.Skip("not Kubernetes names")
		}
		g1, g2 := GatewayName(ns1, name1), GatewayName(ns2, name2)
		for _, c := range []struct{ ns, name, got string }{{ns1, name1, g1}, {ns2, name2, g2}} {
			if errs := validation.IsDNS1123Label(c.got); len(errs) > 0 {
				t.Fatalf("GatewayName(%q, %q) = %q: %v", c.ns, c.name, c.got, errs)
			}
			if again := GatewayName(c.ns, c.name); again != c.got {
				t.Fatalf("GatewayName(%q, %q) is not deterministic: %q then %q", c.ns, c.name, c.got, again)
			}
			readable := strings.TrimRight(strings.ReplaceAll(c.ns+"-"+c.name, ".", "-"), "-")
			prefix := c.got[:len(c.got)-len("-12345678")]
			if prefix == "" || !strings.HasPrefix(readable, prefix) {
				t.Fatalf("GatewayName(%q, %q) = %q does not start with %q", c.ns, c.name, c.got, readable)
			}
		}
		if (ns1 != ns2 || name1 != name2) && g1 == g2 {
			t.Fatalf("%s/%s and %s/%s share the gateway name %q", ns1, name1, ns2, name2, g1)
		}
	})
}
