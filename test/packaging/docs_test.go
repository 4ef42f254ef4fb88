package packaging

import (
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// schemaNode is the part of values.schema.json this test walks.
type schemaNode struct {
	Properties map[string]schemaNode `json:"properties"`
}

// valueKeys lists the documented keys of values: the dotted path of every value, descending
// into non-empty maps whose schema names their properties (free-form objects such as
// resources or securityContext are one key).
func valueKeys(values map[string]any, node schemaNode, prefix string, out *[]string) {
	for k, v := range values {
		path := prefix + k
		child, known := node.Properties[k]
		if m, ok := v.(map[string]any); ok && len(m) > 0 && known && len(child.Properties) > 0 {
			valueKeys(m, child, path+".", out)
			continue
		}
		*out = append(*out, path)
	}
}

// TestValuesAreDocumented asserts every key of the chart's values.yaml has a row in
// docs/install.md's values table and a property in values.schema.json.
func TestValuesAreDocumented(t *testing.T) {
	var values map[string]any
	var schema schemaNode // values.schema.json parses as YAML, a superset of JSON
	for file, into := range map[string]any{"values.yaml": &values, "values.schema.json": &schema} {
		data, err := os.ReadFile(filepath.Join(chartDir, file))
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.Unmarshal(data, into); err != nil {
			t.Fatalf("parse %s: %v", file, err)
		}
	}
	doc, err := os.ReadFile(filepath.Join(root, "docs", "install.md"))
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	valueKeys(values, schema, "", &keys)
	sort.Strings(keys)
	if len(keys) < 50 {
		t.Fatalf("found only %d value keys: %v", len(keys), keys)
	}
	for _, k := range keys {
		if !strings.Contains(string(doc), "| `"+k+"` |") {
			t.Errorf("values.yaml key %s has no row in docs/install.md's values table", k)
		}
		node, parts := schema, strings.Split(k, ".")
		for _, p := range parts {
			next, ok := node.Properties[p]
			if !ok {
				t.Errorf("values.yaml key %s is not in values.schema.json", k)
				break
			}
			node = next
		}
	}
	// And the other way round: no row for a key that does not exist.
	for _, line := range strings.Split(string(doc), "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		key, _, _ := strings.Cut(strings.TrimPrefix(line, "| `"), "`")
		if looksLikeValueKey(key) && !slices.Contains(keys, key) {
			t.Errorf("docs/install.md documents %s, which values.yaml does not have", key)
		}
	}
}

// looksLikeValueKey tells value keys from other backticked first cells in docs/install.md.
func looksLikeValueKey(s string) bool {
	return s != "" && !strings.ContainsAny(s, " /:=") && s == strings.TrimSpace(s) &&
		strings.ToLower(s[:1]) == s[:1]
}
