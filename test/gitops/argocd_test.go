package gitops

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	kstatus "github.com/fluxcd/cli-utils/pkg/kstatus/status"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
)

var update = flag.Bool("update", false,
	"rewrite config/argocd: testdata/*.yaml and health_test.yaml from objects_test.go, health.lua and argocd-cm.yaml from src/*.lua")

// argocdDir is config/argocd, seen from this package.
const argocdDir = "../../config/argocd"

// testdataHeader starts every generated testdata file.
const testdataHeader = "# Generated from test/gitops/objects_test.go by `go test ./test/gitops -run TestGeneratedFiles -update`; do not edit.\n"

// kindDir is config/argocd/openshell.dev/<kind>.
func kindDir(kind string) string { return filepath.Join(argocdDir, Group, kind) }

// sortedKinds are the keys of allCases, sorted.
func sortedKinds() []string {
	kinds := make([]string, 0, len(allCases()))
	for k := range allCases() {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	return kinds
}

// toObject converts a typed object to what the Argo CD controller holds for a live object: an
// unstructured map (int64 numbers), without status when the operator has written none.
func toObject(t *testing.T, c healthCase) map[string]any {
	t.Helper()
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(c.obj)
	if err != nil {
		t.Fatalf("%s: converting to unstructured: %v", c.file, err)
	}
	if s, ok := obj["status"].(map[string]any); ok && len(s) == 0 {
		delete(obj, "status")
	}
	return obj
}

// checkHealth runs script on obj and compares the result with want.
func checkHealth(script string, obj map[string]any, want HealthStatus) error {
	got, err := ExecuteHealthLua(script, obj)
	if err != nil {
		return err
	}
	if got != want {
		return fmt.Errorf("health is %+v, want %+v", got, want)
	}
	return nil
}

// wantKstatus is the kstatus a case expects.
func wantKstatus(c healthCase) kstatus.Status {
	if c.kstatus != "" {
		return c.kstatus
	}
	return map[string]kstatus.Status{
		HealthHealthy:     kstatus.CurrentStatus,
		HealthProgressing: kstatus.InProgressStatus,
		HealthDegraded:    kstatus.FailedStatus,
	}[c.want.Status]
}

// TestHealthChecks runs every kind's health.lua on live-shaped objects built from the Go types
// and checks Argo CD's health, and that Flux's kstatus reads the same object consistently.
func TestHealthChecks(t *testing.T) {
	for _, kind := range sortedKinds() {
		script, err := HealthScript(argocdDir, kind)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range allCases()[kind] {
			t.Run(kind+"/"+c.file, func(t *testing.T) {
				obj := toObject(t, c)
				if err := checkHealth(script, obj, c.want); err != nil {
					t.Error(err)
				}
				res, err := kstatus.Compute(&unstructured.Unstructured{Object: obj})
				if err != nil {
					t.Fatalf("kstatus: %v", err)
				}
				if res.Status != wantKstatus(c) {
					t.Errorf("kstatus is %s (%s), want %s", res.Status, res.Message, wantKstatus(c))
				}
			})
		}
	}
}

// TestEdgeCases runs every kind's health.lua on condition sets the kstatus contract allows but
// this operator does not write.
func TestEdgeCases(t *testing.T) {
	for _, kind := range sortedKinds() {
		script, err := HealthScript(argocdDir, kind)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range edgeCases(kind) {
			t.Run(kind+"/"+c.file, func(t *testing.T) {
				if err := checkHealth(script, toObject(t, c), c.want); err != nil {
					t.Error(err)
				}
			})
		}
	}
}

// TestEveryKindCovered: every kind of the API has a health check and Healthy, Progressing and
// Degraded cases including a missing status and an unobserved generation; no extra checks.
func TestEveryKindCovered(t *testing.T) {
	s := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	var apiKinds []string
	for kind := range s.KnownTypes(v1alpha1.GroupVersion) {
		if strings.HasSuffix(kind, "List") || strings.HasSuffix(kind, "Options") || strings.HasSuffix(kind, "Event") {
			continue
		}
		apiKinds = append(apiKinds, kind)
	}
	sort.Strings(apiKinds)
	checks, err := Kinds(argocdDir)
	if err != nil {
		t.Fatal(err)
	}
	sources, err := SourceKinds(argocdDir)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(checks, apiKinds) || !slices.Equal(sources, apiKinds) || !slices.Equal(sortedKinds(), apiKinds) {
		t.Fatalf("health checks %v, sources %v, test cases %v, API kinds %v: want all equal",
			checks, sources, sortedKinds(), apiKinds)
	}
	for _, kind := range apiKinds {
		seen := map[string]bool{}
		for _, c := range allCases()[kind] {
			seen[c.want.Status] = true
			seen[c.file] = true
			if got := c.obj.GetObjectKind().GroupVersionKind().Kind; got != kind {
				t.Errorf("%s/%s: object kind is %q", kind, c.file, got)
			}
		}
		for _, need := range []string{HealthHealthy, HealthProgressing, HealthDegraded,
			"progressing_noStatus", "progressing_generationNotObserved"} {
			if !seen[need] {
				t.Errorf("%s: no %s case", kind, need)
			}
		}
	}
}

// argoTests is Argo CD's health_test.yaml.
type argoTests struct {
	Tests []argoTest `json:"tests"`
}

// argoTest is one case of health_test.yaml.
type argoTest struct {
	HealthStatus HealthStatus `json:"healthStatus"`
	InputPath    string       `json:"inputPath"`
}

// TestArgoHealthTests runs health_test.yaml of every kind the way Argo CD's own
// TestLuaHealthScript does (objects read from the YAML testdata), and checks that every
// testdata file is listed.
func TestArgoHealthTests(t *testing.T) {
	kinds, err := Kinds(argocdDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range kinds {
		script, err := HealthScript(argocdDir, kind)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := os.ReadFile(filepath.Join(kindDir(kind), "health_test.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		var tests argoTests
		if err := yaml.UnmarshalStrict(raw, &tests); err != nil {
			t.Fatalf("%s: parsing health_test.yaml: %v", kind, err)
		}
		listed := map[string]bool{}
		for _, tc := range tests.Tests {
			listed[filepath.Clean(tc.InputPath)] = true
			t.Run(kind+"/"+tc.InputPath, func(t *testing.T) {
				b, err := os.ReadFile(filepath.Join(kindDir(kind), tc.InputPath))
				if err != nil {
					t.Fatal(err)
				}
				obj := map[string]any{}
				if err := yaml.Unmarshal(b, &obj); err != nil {
					t.Fatal(err)
				}
				if err := checkHealth(script, obj, tc.HealthStatus); err != nil {
					t.Error(err)
				}
			})
		}
		files, err := filepath.Glob(filepath.Join(kindDir(kind), "testdata", "*.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if len(files) == 0 {
			t.Errorf("%s: no testdata", kind)
		}
		for _, f := range files {
			if rel := filepath.Join("testdata", filepath.Base(f)); !listed[rel] {
				t.Errorf("%s: %s is not in health_test.yaml", kind, rel)
			}
		}
	}
}

// generatedFiles renders everything under config/argocd that is generated, by path.
func generatedFiles(t *testing.T) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	for _, kind := range sortedKinds() {
		var tests argoTests
		for _, c := range allCases()[kind] {
			b, err := yaml.Marshal(toObject(t, c))
			if err != nil {
				t.Fatal(err)
			}
			in := filepath.Join("testdata", c.file+".yaml")
			files[filepath.Join(kindDir(kind), in)] = append([]byte(testdataHeader), b...)
			tests.Tests = append(tests.Tests, argoTest{HealthStatus: c.want, InputPath: in})
		}
		b, err := yaml.Marshal(tests)
		if err != nil {
			t.Fatal(err)
		}
		files[filepath.Join(kindDir(kind), "health_test.yaml")] = append([]byte(testdataHeader), b...)
	}
	scripts, err := RenderHealthScripts(argocdDir)
	if err != nil {
		t.Fatal(err)
	}
	for kind, script := range scripts {
		files[filepath.Join(kindDir(kind), HealthScriptFile)] = []byte(script)
	}
	cm, err := RenderConfigMap(argocdDir)
	if err != nil {
		t.Fatal(err)
	}
	files[filepath.Join(argocdDir, "argocd-cm.yaml")] = cm
	return files
}

// TestGeneratedFiles fails when config/argocd differs from what objects_test.go and the
// sources in config/argocd/src generate (with -update it rewrites the files and removes stale
// testdata). A health.lua without a source is never removed: it may be a check written by hand.
func TestGeneratedFiles(t *testing.T) {
	files := generatedFiles(t)
	scripts, err := filepath.Glob(filepath.Join(argocdDir, Group, "*", HealthScriptFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range scripts {
		if _, ok := files[f]; !ok {
			t.Errorf("%s has no source %s: health checks are generated from config/argocd/src (docs/gitops.md)",
				f, filepath.Join(argocdDir, SourceDir, filepath.Base(filepath.Dir(f))+".lua"))
		}
	}
	existing, err := filepath.Glob(filepath.Join(argocdDir, Group, "*", "testdata", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range existing {
		if _, ok := files[f]; ok {
			continue
		}
		if *update {
			if err := os.Remove(f); err != nil {
				t.Fatal(err)
			}
			continue
		}
		t.Errorf("%s is not generated by any case; run go test ./test/gitops -run TestGeneratedFiles -update", f)
	}
	for path, want := range files {
		if *update {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("%v; run go test ./test/gitops -run TestGeneratedFiles -update", err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is stale; run go test ./test/gitops -run TestGeneratedFiles -update", path)
		}
	}
}

// TestConfigMapSnippet parses argocd-cm.yaml as a ConfigMap: one key per health check whose
// value is exactly the health.lua file.
func TestConfigMapSnippet(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(argocdDir, "argocd-cm.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cm corev1.ConfigMap
	if err := yaml.UnmarshalStrict(raw, &cm); err != nil {
		t.Fatalf("parsing argocd-cm.yaml: %v", err)
	}
	if cm.Kind != "ConfigMap" || cm.Name != "argocd-cm" || cm.Namespace != "argocd" {
		t.Errorf("argocd-cm.yaml is %s %s/%s, want ConfigMap argocd/argocd-cm", cm.Kind, cm.Namespace, cm.Name)
	}
	kinds, err := Kinds(argocdDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(cm.Data) != len(kinds) {
		t.Errorf("argocd-cm.yaml has %d keys, want %d (one per kind)", len(cm.Data), len(kinds))
	}
	for _, kind := range kinds {
		script, err := HealthScript(argocdDir, kind)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := cm.Data["resource.customizations.health.openshell.dev_"+kind]
		switch {
		case !ok:
			t.Errorf("argocd-cm.yaml has no key for %s", kind)
		case got != script:
			t.Errorf("argocd-cm.yaml: the %s check differs from its health.lua", kind)
		}
	}
}

// mutate replaces exactly one occurrence of old in script, failing when there is none.
func mutate(t *testing.T, script, old, replacement string) string {
	t.Helper()
	if n := strings.Count(script, old); n != 1 {
		t.Fatalf("mutation target %q occurs %d times, want 1", old, n)
	}
	return strings.Replace(script, old, replacement, 1)
}

// TestCasesDetectWrongChecks proves the cases can fail: each broken variant of a check (a rule
// dropped) and each wrong expectation is caught by at least one case.
func TestCasesDetectWrongChecks(t *testing.T) {
	mutants := []struct {
		name   string
		kinds  []string
		broken func(t *testing.T, script string) string
	}{
		{"always healthy", sortedKinds(), func(*testing.T, string) string {
			return `return {status = "Healthy", message = "ok"}`
		}},
		{"ignores Stalled", sortedKinds(), func(t *testing.T, s string) string {
			return mutate(t, s, "if isTrue(stalled) then\n  hs.status", "if false then\n  hs.status")
		}},
		{"ignores observedGeneration", sortedKinds(), func(t *testing.T, s string) string {
			return mutate(t, s, "status.observedGeneration ~= obj.metadata.generation", "false")
		}},
		{"ignores missing status", sortedKinds(), func(t *testing.T, s string) string {
			return mutate(t, s, `if status == nil or status.observedGeneration == nil then`, `if false then`)
		}},
		{"ignores Reconciling", sortedKinds(), func(t *testing.T, s string) string {
			return mutate(t, s, "if isTrue(reconciling) then\n  hs.status", "if false then\n  hs.status")
		}},
		{"Stalled after Ready", sortedKinds(), func(t *testing.T, s string) string {
			return mutate(t, s, "if isTrue(stalled) then\n  hs.status", "if isTrue(stalled) and not isTrue(ready) then\n  hs.status")
		}},
		{"ignores deletion", []string{"PolicyProposal", "Provider", "Sandbox"}, func(t *testing.T, s string) string {
			return mutate(t, s, "obj.metadata.deletionTimestamp ~= nil", "false")
		}},
		{"message is the reason", sortedKinds(), func(t *testing.T, s string) string {
			return strings.ReplaceAll(s, "condition.message ~= nil and condition.message ~= \"\"", "false")
		}},
		{"ignores phase Error", []string{"Sandbox"}, func(t *testing.T, s string) string {
			return mutate(t, s, `status.phase == "Error"`, "false")
		}},
		{"never waits for a decision", []string{"PolicyProposal"}, func(t *testing.T, s string) string {
			return mutate(t, s, `if spec.decision == nil or spec.decision == "Pending" then`, "if false then")
		}},
		{"ignores the quorum", []string{"PolicyProposal"}, func(t *testing.T, s string) string {
			return mutate(t, s, "approvals < status.requiredApprovals", "false")
		}},
		{"waits on decided chunks", []string{"PolicyProposal"}, func(t *testing.T, s string) string {
			return mutate(t, s, `if status.gatewayStatus == "Pending" then`, "if true then")
		}},
	}
	for _, m := range mutants {
		for _, kind := range m.kinds {
			t.Run(m.name+"/"+kind, func(t *testing.T) {
				script, err := HealthScript(argocdDir, kind)
				if err != nil {
					t.Fatal(err)
				}
				broken := m.broken(t, script)
				for _, c := range append(allCases()[kind], edgeCases(kind)...) {
					if checkHealth(broken, toObject(t, c), c.want) != nil {
						return
					}
				}
				t.Errorf("no %s case fails when the check %s", kind, m.name)
			})
		}
	}

	t.Run("wrong expectations", func(t *testing.T) {
		for _, kind := range sortedKinds() {
			script, err := HealthScript(argocdDir, kind)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range allCases()[kind] {
				for _, wrong := range []HealthStatus{
					{HealthHealthy, c.want.Message}, {HealthProgressing, c.want.Message},
					{HealthDegraded, c.want.Message}, {c.want.Status, c.want.Message + "!"},
				} {
					if wrong != c.want && checkHealth(script, toObject(t, c), wrong) == nil {
						t.Errorf("%s/%s: expecting %+v passes", kind, c.file, wrong)
					}
				}
			}
		}
	})
}

// TestExecuteHealthLua checks the harness behaves like Argo CD's.
func TestExecuteHealthLua(t *testing.T) {
	obj := map[string]any{"metadata": map[string]any{"name": "x", "generation": int64(7)},
		"status": map[string]any{"observedGeneration": float64(7), "list": []any{"a", int32(2), true, nil}}}
	tests := []struct {
		name    string
		script  string
		want    HealthStatus
		wantErr string
	}{
		{name: "status and message",
			script: `return {status = "Suspended", message = obj.metadata.name}`,
			want:   HealthStatus{HealthSuspended, "x"}},
		{name: "numbers compare across int64 and float64",
			script: `if obj.metadata.generation == obj.status.observedGeneration then return {status = "Healthy", message = tostring(obj.metadata.generation)} end`,
			want:   HealthStatus{HealthHealthy, "7"}},
		{name: "arrays are Lua arrays",
			script: `local l = obj.status.list; return {status = "Healthy", message = l[1] .. tostring(l[2]) .. tostring(l[3])}`,
			want:   HealthStatus{HealthHealthy, "a2true"}},
		{name: "table library open",
			script: `local t = {"b", "a"}; table.sort(t); return {status = "Healthy", message = table.concat(t, ",")}`,
			want:   HealthStatus{HealthHealthy, "a,b"}},
		{name: "unknown status becomes Unknown",
			script: `return {status = "Fine"}`,
			want:   HealthStatus{HealthUnknown, invalidHealthStatus}},
		{name: "missing status becomes Unknown",
			script: `return {message = "no status"}`,
			want:   HealthStatus{HealthUnknown, invalidHealthStatus}},
		{name: "string library closed", script: `return {status = string.format("%s", "Healthy")}`,
			wantErr: "key 'format'"},
		{name: "os library closed", script: `return {status = "Healthy", message = os.getenv("HOME")}`,
			wantErr: "key 'getenv'"},
		{name: "not a table", script: `return "Healthy"`, wantErr: "expect table output"},
		{name: "status not a string", script: `return {status = 1}`, wantErr: "status of type number"},
		{name: "syntax error", script: `return {`, wantErr: "running health script"},
		{name: "endless loop times out", script: `while true do end`, wantErr: "context deadline exceeded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ExecuteHealthLua(tt.script, obj)
			switch {
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
			case tt.wantErr == "" && err != nil:
				t.Fatal(err)
			case got != tt.want:
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// writeSources writes a config/argocd with the given files under src and returns it.
func writeSources(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, SourceDir), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, SourceDir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestRenderHealthScript: common.lua with a kind's parts in its slots, notes dropped, a slot
// without a part dropped with its empty line; malformed sources are refused.
func TestRenderHealthScript(t *testing.T) {
	const common = "--@ a note\nlocal hs = {}\n\n--@slot first\n\n--@slot second\n\nreturn hs\n"
	header := func(kind string) string { return fmt.Sprintf(healthScriptHeader, kind) }
	tests := []struct {
		name    string
		common  string
		kind    string
		want    string
		wantErr string
	}{
		{name: "no parts", common: common, kind: "--@ nothing of its own\n",
			want: "local hs = {}\n\nreturn hs\n"},
		{name: "one part", common: common, kind: "--@ a note\n--@part second\n\nhs.b = 2\n\n",
			want: "local hs = {}\n\nhs.b = 2\n\nreturn hs\n"},
		{name: "both parts, notes inside dropped", common: common,
			kind: "--@part second\nhs.b = 2\n--@ dropped\n--@part first\nhs.a = 1\n\nhs.a = 3\n",
			want: "local hs = {}\n\nhs.a = 1\n\nhs.a = 3\n\nhs.b = 2\n\nreturn hs\n"},
		{name: "part without slot", common: common, kind: "--@part third\nx = 1\n",
			wantErr: `part "third" has no slot`},
		{name: "part twice", common: common, kind: "--@part first\nx = 1\n--@part first\nx = 2\n",
			wantErr: `part "first" given twice`},
		{name: "empty part", common: common, kind: "--@part first\n\n--@part second\nx = 1\n",
			wantErr: `part "first" is empty`},
		{name: "code outside a part", common: common, kind: "x = 1\n--@part first\nx = 2\n",
			wantErr: "line 1 is outside a part"},
		{name: "slot in a kind's source", common: common, kind: "--@slot first\n",
			wantErr: "neither a note nor a part"},
		{name: "part without a name", common: common, kind: "--@part \nx = 1\n",
			wantErr: "a part needs one name"},
		{name: "unknown directive in common", common: "--@part first\n\nreturn {}\n", kind: "",
			wantErr: "neither a note nor a slot"},
		{name: "slot twice", common: "--@slot a\n\n--@slot a\n\nreturn {}\n", kind: "",
			wantErr: `slot "a" given twice`},
		{name: "slot not followed by an empty line", common: "--@slot a\nreturn {}\n", kind: "",
			wantErr: "must be followed by an empty line"},
		{name: "slot at the end", common: "return {}\n--@slot a\n", kind: "",
			wantErr: "must be followed by an empty line"},
		{name: "slot with two names", common: "--@slot a b\n\nreturn {}\n", kind: "",
			wantErr: "a slot needs one name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeSources(t, map[string]string{CommonSource: tt.common, "Thing.lua": tt.kind})
			got, err := RenderHealthScript(dir, "Thing")
			switch {
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
			case tt.wantErr == "" && err != nil:
				t.Fatal(err)
			case tt.wantErr == "" && got != header("Thing")+tt.want:
				t.Fatalf("got\n%s\nwant\n%s%s", got, header("Thing"), tt.want)
			}
		})
	}
	if _, err := RenderHealthScript(writeSources(t, map[string]string{CommonSource: common}), "Thing"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("kind without a source: error %v, want not exist", err)
	}
}

// TestRenderConfigMapRefusesUnsafeScripts: scripts a YAML literal block would alter are refused.
func TestRenderConfigMapRefusesUnsafeScripts(t *testing.T) {
	for name, src := range map[string]struct{ common, kind string }{
		"no final newline":              {"return {}", ""},
		"two final newlines":            {"return {}\n\n", ""},
		"tab":                           {"if x then\n\treturn {}\nend\n", ""},
		"trailing whitespace":           {"return {} \n", ""},
		"trailing whitespace in a part": {"--@slot a\n\nreturn {}\n", "--@part a\nx = 1 \n"},
		"carriage return":               {"return {}\r\n", ""},
	} {
		t.Run(name, func(t *testing.T) {
			dir := writeSources(t, map[string]string{CommonSource: src.common, "Thing.lua": src.kind})
			if _, err := RenderConfigMap(dir); err == nil {
				t.Fatal("rendered, want an error")
			}
		})
	}
	if _, err := RenderConfigMap(t.TempDir()); err == nil || errors.Is(err, os.ErrNotExist) {
		t.Fatalf("empty dir: error %v, want no health check sources found", err)
	}
}
