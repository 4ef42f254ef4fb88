package packaging

import (
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
)

// kustomizeNamespace is config/default's namespace.
const kustomizeNamespace = "openshell-system"

// kustomizeCase is one kustomization under config/ and what it must render.
type kustomizeCase struct {
	dir string
	// operator: the whole operator (config/default) is in the rendering.
	operator bool
	// gateway is the GatewayConnection the rendering must carry; nil: none.
	gateway *v1alpha1.GatewayConnection
	// guardrails: the rendering carries config/components/guardrails (two policies, two
	// bindings, their parameters).
	guardrails bool
}

var kustomizeCases = []kustomizeCase{
	{dir: "config/default", operator: true},
	{dir: "config/overlays/with-gateway", operator: true, gateway: gatewayConnection("default", openshellHelmGateway())},
	{dir: "config/overlays/with-guardrails", operator: true, guardrails: true},
	{dir: "config/crd"},
}

// TestKustomize builds each kustomization with the pinned kustomize and checks it like the
// chart: the same posture, flags, RBAC and CRDs.
func TestKustomize(t *testing.T) {
	for _, tc := range kustomizeCases {
		t.Run(tc.dir, func(t *testing.T) {
			objs, err := kustomizeBuild(tc.dir)
			if err != nil {
				t.Fatal(err)
			}
			r := rendered{objs: objs}
			for _, o := range objs {
				if !decodeKnown(t, o) {
					continue
				}
				if !tc.operator || o.GetKind() == "CustomResourceDefinition" {
					continue
				}
				switch {
				case clusterScoped[o.GetKind()] || o.GetKind() == "Namespace":
					if o.GetNamespace() != "" {
						t.Errorf("cluster-scoped %s %s has namespace %q", o.GetKind(), o.GetName(), o.GetNamespace())
					}
				case o.GetNamespace() != kustomizeNamespace:
					t.Errorf("%s %s is in namespace %q, want %q", o.GetKind(), o.GetName(), o.GetNamespace(), kustomizeNamespace)
				}
			}
			checkCRDSpecs(t, r)
			checkGuardrails(t, r, tc.guardrails, kustomizeNamespace, "openshell-guardrails")
			// config/approvals is applied on its own (TestKustomizeApprovals), never from these.
			checkApprovals(t, r, false, "")
			if tc.operator {
				checkKustomizeOperator(t, r)
			}
			gwcs := r.ofKind("GatewayConnection")
			switch {
			case tc.gateway == nil && len(gwcs) != 0:
				t.Errorf("unexpected GatewayConnection %s", gwcs[0].GetName())
			case tc.gateway != nil:
				var got v1alpha1.GatewayConnection
				r.one(t, "GatewayConnection", &got)
				if got.Name != tc.gateway.Name || !reflect.DeepEqual(got.Spec, tc.gateway.Spec) {
					t.Errorf("GatewayConnection %q spec %+v, want %q %+v", got.Name, got.Spec, tc.gateway.Name, tc.gateway.Spec)
				}
			}
		})
	}
}

// checkKustomizeOperator checks config/default's operator objects.
func checkKustomizeOperator(t *testing.T, r rendered) {
	t.Helper()
	var ns corev1.Namespace
	r.one(t, "Namespace", &ns)
	if ns.Name != kustomizeNamespace || ns.Labels["pod-security.kubernetes.io/enforce"] != "restricted" {
		t.Errorf("Namespace %s labels %v, want %s enforcing the restricted Pod Security Standard", ns.Name, ns.Labels, kustomizeNamespace)
	}
	d := checkDeployment(t, r)
	if d.flags["leader-elect"] != "true" {
		t.Errorf("--leader-elect = %s, want true", d.flags["leader-elect"])
	}
	role := checkManagerRules(t, r)
	checkMetricsReader(t, r)
	if d.flags["metrics-secure"] != "true" {
		t.Errorf("--metrics-secure = %s, want true", d.flags["metrics-secure"])
	}
	checkLeaderElectionRules(t, r)
	var sa corev1.ServiceAccount
	r.one(t, "ServiceAccount", &sa)
	if d.deploy.Spec.Template.Spec.ServiceAccountName != sa.Name {
		t.Errorf("Deployment runs as %q, the ServiceAccount is %q", d.deploy.Spec.Template.Spec.ServiceAccountName, sa.Name)
	}
	checkBindings(t, r, role, sa.Name, kustomizeNamespace)
	checkMetricsService(t, r, d)
}

// TestKustomizeApprovals builds config/approvals, the reference the chart's approvals are
// compared with: the policy, its binding and the two reviewer ClusterRoles, cluster-scoped and
// named openshell-<what>, each decoding strictly into its type.
func TestKustomizeApprovals(t *testing.T) {
	objs, err := kustomizeBuild("config/approvals")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if !decodeKnown(t, o) {
			continue
		}
		if !strings.HasPrefix(o.GetName(), "openshell-") {
			t.Errorf("%s %s is not named openshell-<what> (the chart names it <fullname>-<what>)", o.GetKind(), o.GetName())
		}
	}
	checkApprovals(t, rendered{objs: objs}, true, "openshell")
}
