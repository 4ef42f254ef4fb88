package packaging

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// restrictedLabel makes a namespace enforce the restricted Pod Security Standard.
const restrictedLabel = "pod-security.kubernetes.io/enforce"

// TestAPIServerAcceptsRenders sends every chart value set and every kustomize rendering to a
// real kube-apiserver (envtest, CRDs from the chart's crds/) as server-side dry runs: the
// GatewayConnections pass the CRD's OpenAPI and CEL rules, the workloads and policies pass
// API validation, and a Pod made from the manager's pod template is admitted in a namespace
// enforcing the restricted Pod Security Standard. Skipped without KUBEBUILDER_ASSETS (`make
// test` provides it).
func TestAPIServerAcceptsRenders(t *testing.T) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		t.Skip("KUBEBUILDER_ASSETS is not set; `make test` provides kube-apiserver and etcd")
	}
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(chartDir, "crds")},
		ErrorIfCRDPathMissing: true,
	}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("start envtest: %v", err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stop envtest: %v", err)
		}
	})
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	ctx := context.Background()

	t.Run("control: the restricted standard is enforced", func(t *testing.T) {
		ns := ensureNamespace(t, ctx, c, "control", nil)
		privileged := true
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "privileged", Namespace: ns},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox",
				SecurityContext: &corev1.SecurityContext{Privileged: &privileged}}}},
		}
		err := c.Create(ctx, pod, client.DryRunAll)
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "PodSecurity") {
			t.Fatalf("a privileged pod in a restricted namespace got %v, want Forbidden by PodSecurity", err)
		}
	})

	for i, tc := range chartCases(t) {
		t.Run("chart/"+tc.name, func(t *testing.T) {
			ns := ensureNamespace(t, ctx, c, fmt.Sprintf("chart-%d", i), nil)
			for _, w := range tc.watchNamespaces {
				ensureNamespace(t, ctx, c, w, nil)
			}
			objs, err := helmTemplate(ns, tc.values, tc.set, tc.setJSON)
			if err != nil {
				t.Fatal(err)
			}
			dryRun(t, ctx, c, ns, objs)
		})
	}
	for _, tc := range kustomizeCases {
		if !tc.operator {
			continue
		}
		t.Run("kustomize/"+tc.dir, func(t *testing.T) {
			objs, err := kustomizeBuild(tc.dir)
			if err != nil {
				t.Fatal(err)
			}
			var nsObj corev1.Namespace
			rendered{objs: objs}.one(t, "Namespace", &nsObj)
			ns := ensureNamespace(t, ctx, c, nsObj.Name, nsObj.Labels)
			dryRun(t, ctx, c, ns, objs)
		})
	}
}

// ensureNamespace creates a namespace enforcing the restricted Pod Security Standard.
func ensureNamespace(t *testing.T, ctx context.Context, c client.Client, name string, labels map[string]string) string {
	t.Helper()
	if labels[restrictedLabel] != "restricted" {
		labels = map[string]string{restrictedLabel: "restricted"}
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	if err := c.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create namespace %s: %v", name, err)
	}
	return name
}

// dryRun creates the manager's ServiceAccount for real (Pod admission needs it), then sends
// every other object as a server-side dry run, plus a Pod from the Deployment's template.
// CustomResourceDefinitions (installed by envtest from the same files) and ServiceMonitors
// (no Prometheus Operator here) are left out.
func dryRun(t *testing.T, ctx context.Context, c client.Client, ns string, objs []*unstructured.Unstructured) {
	t.Helper()
	r := rendered{objs: objs}
	var deploy appsv1.Deployment
	r.one(t, "Deployment", &deploy)
	// The rendered ServiceAccount, else the one a user provides (serviceAccount.create=false).
	var sa client.Object = &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{
		Name: deploy.Spec.Template.Spec.ServiceAccountName, Namespace: ns}}
	if sas := r.ofKind("ServiceAccount"); len(sas) == 1 {
		sa = sas[0].DeepCopy()
	}
	if err := c.Create(ctx, sa); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create ServiceAccount %s: %v", sa.GetName(), err)
	}
	for _, o := range objs {
		switch o.GetKind() {
		case "CustomResourceDefinition", "ServiceMonitor", "Namespace", "ServiceAccount":
			continue
		}
		if err := c.Create(ctx, o.DeepCopy(), client.DryRunAll); err != nil {
			t.Errorf("the API server refuses %s %s: %v", o.GetKind(), o.GetName(), err)
		}
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "manager", Namespace: ns, Labels: deploy.Spec.Template.Labels},
		Spec:       deploy.Spec.Template.Spec,
	}
	if err := c.Create(ctx, pod, client.DryRunAll); err != nil {
		t.Errorf("the manager pod is not admitted under the restricted Pod Security Standard: %v", err)
	}
}
