// Package packaging tests what users install: the Helm chart in charts/openshell-operator and
// the kustomize trees under config/. It renders them with the pinned helm and kustomize from
// bin/ (built by `make helm kustomize` when missing; $HELM and $KUSTOMIZE override), parses
// every object into its Go type, and checks security posture, flags, RBAC, CRDs and the
// optional objects. When KUBEBUILDER_ASSETS is set (`make test` sets it) the renders are also
// sent to a real kube-apiserver as server-side dry runs.
package packaging

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
)

// Paths, seen from this package and resolved once in TestMain.
var (
	// root is the repository root.
	root string
	// chartDir is the Helm chart.
	chartDir string
	// helmBin and kustomizeBin are the tool binaries.
	helmBin, kustomizeBin string
)

// scheme knows every kind the chart and config/ render, except the Prometheus Operator's.
var scheme = runtime.NewScheme()

func TestMain(m *testing.M) {
	if err := setup(); err != nil {
		fmt.Fprintln(os.Stderr, "packaging:", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// setup resolves the paths, builds missing tools and fills the scheme.
func setup() error {
	var err error
	if root, err = filepath.Abs(filepath.Join("..", "..")); err != nil {
		return fmt.Errorf("resolve repository root: %w", err)
	}
	chartDir = filepath.Join(root, "charts", "openshell-operator")
	if helmBin, err = tool("HELM", "helm"); err != nil {
		return err
	}
	if kustomizeBin, err = tool("KUSTOMIZE", "kustomize"); err != nil {
		return err
	}
	for _, add := range []func(*runtime.Scheme) error{
		clientgoscheme.AddToScheme, apiextensionsv1.AddToScheme, v1alpha1.AddToScheme,
	} {
		if err := add(scheme); err != nil {
			return fmt.Errorf("build scheme: %w", err)
		}
	}
	return nil
}

// tool returns $env, else bin/<name>, building it with `make <name>` (the pinned version from
// the Go module proxy) when it is not there yet.
func tool(env, name string) (string, error) {
	if p := os.Getenv(env); p != "" {
		return p, nil
	}
	p := filepath.Join(root, "bin", name)
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	fmt.Fprintf(os.Stderr, "packaging: building %s with `make %s` (first run only)\n", name, name)
	cmd := exec.Command("make", "--no-print-directory", name)
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("make %s: %w", name, err)
	}
	return p, nil
}

// run runs a tool in the repository root and returns its stdout; the error carries stderr.
func run(bin string, args ...string) ([]byte, error) {
	cmd := exec.Command(bin, args...)
	cmd.Dir = root
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("%s %s: %w: %s", filepath.Base(bin), strings.Join(args, " "), err,
			strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

// releaseName is the Helm release every render uses.
const releaseName = "openshell-operator"

// helmArgs are the arguments of `helm template` or `helm lint` for value files under ci/,
// --set pairs and --set-json pairs.
func helmArgs(valuesFiles, set, setJSON []string) []string {
	var args []string
	for _, f := range valuesFiles {
		args = append(args, "-f", filepath.Join(chartDir, "ci", f))
	}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	for _, s := range setJSON {
		args = append(args, "--set-json", s)
	}
	return args
}

// helmTemplate renders the chart, CRDs included, into namespace.
func helmTemplate(namespace string, valuesFiles, set, setJSON []string) ([]*unstructured.Unstructured, error) {
	args := append([]string{"template", releaseName, chartDir, "--namespace", namespace, "--include-crds"},
		helmArgs(valuesFiles, set, setJSON)...)
	out, err := run(helmBin, args...)
	if err != nil {
		return nil, err
	}
	return parseObjects(out)
}

// kustomizeBuild renders a kustomization under config/.
func kustomizeBuild(dir string) ([]*unstructured.Unstructured, error) {
	out, err := run(kustomizeBin, "build", filepath.Join(root, dir))
	if err != nil {
		return nil, err
	}
	return parseObjects(out)
}

// parseObjects splits a multi-document YAML stream into objects, skipping empty documents.
func parseObjects(data []byte) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var objs []*unstructured.Unstructured
	for {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return objs, nil
			}
			return nil, fmt.Errorf("parse rendered YAML: %w", err)
		}
		if len(m) == 0 {
			continue
		}
		objs = append(objs, &unstructured.Unstructured{Object: m})
	}
}

// rendered is the objects of one helm template or kustomize build.
type rendered struct {
	objs []*unstructured.Unstructured
}

// ofKind returns the objects of a kind.
func (r rendered) ofKind(kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range r.objs {
		if o.GetKind() == kind {
			out = append(out, o)
		}
	}
	return out
}

// one decodes the single object of kind into into, failing unless there is exactly one.
func (r rendered) one(t *testing.T, kind string, into runtime.Object) {
	t.Helper()
	objs := r.ofKind(kind)
	if len(objs) != 1 {
		t.Fatalf("want exactly one %s, got %d", kind, len(objs))
	}
	decodeStrict(t, objs[0], into)
}

// decodeKnown decodes u strictly into its type of the scheme; a kind the scheme does not know
// is an error, and false.
func decodeKnown(t *testing.T, u *unstructured.Unstructured) bool {
	t.Helper()
	typed, err := scheme.New(u.GroupVersionKind())
	if err != nil {
		t.Errorf("%s %s: unexpected kind %v", u.GetKind(), u.GetName(), u.GroupVersionKind())
		return false
	}
	decodeStrict(t, u, typed)
	return true
}

// decodeStrict converts u into a typed object, failing on fields the type does not have (a
// template typo would otherwise be dropped silently by the API server or kubectl).
func decodeStrict(t *testing.T, u *unstructured.Unstructured, into any) {
	t.Helper()
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, into, true); err != nil {
		t.Fatalf("%s %s does not decode strictly: %v", u.GetKind(), u.GetName(), err)
	}
}
