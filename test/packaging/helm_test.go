package packaging

import (
	"bytes"
	"cmp"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
)

// releaseNamespace is where the chart is rendered unless a case says otherwise.
const releaseNamespace = "openshell-system"

// chartCase is one set of values and what the chart must render for it.
type chartCase struct {
	name string
	// values are files under the chart's ci/ directory; set and setJSON are --set and
	// --set-json pairs.
	values, set, setJSON []string

	replicas int32
	// leaderElect: --leader-elect is passed and the Lease Role/RoleBinding exist.
	leaderElect bool
	// metrics: metrics are served and the metrics Service exists.
	metrics        bool
	serviceMonitor bool
	networkPolicy  bool
	// egress are the protocol/port pairs the NetworkPolicy must let out (all of them and no
	// others); nil means the defaults: the API server, the gateway and DNS.
	egress []string
	// serviceAccount is the manager's ServiceAccount; createSA says whether the chart creates it.
	serviceAccount string
	createSA       bool
	// rbac: the ClusterRole, ClusterRoleBinding (and leader-election Role) are rendered.
	rbac bool
	// insecureMetrics: metrics are plain HTTP (metrics.secure=false), so no metrics-reader
	// ClusterRole is rendered.
	insecureMetrics bool
	// watchNamespaces: a namespace-scoped install; Roles are expected in these namespaces
	// and in scopedRoleNamespaces' others.
	watchNamespaces, scopedRoleNamespaces []string
	// guardrails: the ValidatingAdmissionPolicies, bindings and parameters are rendered.
	guardrails bool
	// approvals: config/approvals' policy, binding and reviewer ClusterRoles are rendered.
	approvals bool
	// fullname is the chart's full name when it is not the release name (fullnameOverride).
	fullname string
	// gateway is the GatewayConnection the chart must render; nil: none.
	gateway *v1alpha1.GatewayConnection
	// image is the manager image.
	image string
	// flags are manager flag values to expect (a subset).
	flags map[string]string
	// check runs case-specific assertions.
	check func(t *testing.T, r rendered)
}

// chartAppVersion is the chart's appVersion, the default image tag.
func chartAppVersion(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(chartDir, "Chart.yaml"))
	if err != nil {
		t.Fatalf("read Chart.yaml: %v", err)
	}
	var c struct {
		APIVersion string `json:"apiVersion"`
		Version    string `json:"version"`
		AppVersion string `json:"appVersion"`
	}
	if err := yaml.Unmarshal(data, &c); err != nil {
		t.Fatalf("parse Chart.yaml: %v", err)
	}
	if c.APIVersion != "v2" || c.Version == "" || c.AppVersion == "" {
		t.Fatalf("Chart.yaml: apiVersion %q version %q appVersion %q, want v2 and both versions set", c.APIVersion, c.Version, c.AppVersion)
	}
	return c.AppVersion
}

// gatewayConnection builds the expected GatewayConnection.
func gatewayConnection(name string, spec v1alpha1.GatewayConnectionSpec) *v1alpha1.GatewayConnection {
	return &v1alpha1.GatewayConnection{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec}
}

// openshellHelmGateway is the connection to a gateway installed with the OpenShell Helm chart
// (release "openshell", namespace "openshell"): its Service on 8080 and its client Secret.
func openshellHelmGateway() v1alpha1.GatewayConnectionSpec {
	return v1alpha1.GatewayConnectionSpec{
		Endpoint: "openshell.openshell.svc.cluster.local:8080",
		TLS: v1alpha1.GatewayTLS{SecretRef: v1alpha1.NamespacedObjectReference{
			Namespace: "openshell", Name: "openshell-client-tls"}},
		Timeout: &metav1.Duration{Duration: 30 * time.Second},
	}
}

func chartCases(t *testing.T) []chartCase {
	defaultImage := "ghcr.io/openshell-operator/openshell-operator:" + chartAppVersion(t)
	defaults := func(c chartCase) chartCase {
		c.replicas, c.leaderElect, c.metrics, c.serviceAccount, c.createSA, c.rbac, c.image =
			1, true, true, releaseName, true, true, defaultImage
		return c
	}
	withToken := openshellHelmGateway()
	withToken.Auth = &v1alpha1.GatewayAuth{TokenSecretRef: v1alpha1.SecretKeyReference{
		Namespace: "openshell", Name: "operator-token", Key: "token"}}
	truth := true

	cases := []chartCase{
		func() chartCase {
			c := defaults(chartCase{name: "defaults", values: []string{"default-values.yaml"}})
			c.flags = map[string]string{"leader-elect": "true", "observation-mode": "watch",
				"max-concurrent-reconciles": "8", "kube-api-qps": "200", "kube-api-burst": "400",
				"health-probe-bind-address": ":8081", "metrics-bind-address": ":8443", "metrics-secure": "true",
				"cluster-resource-namespace": releaseNamespace, "leader-election-id": "openshell-operator.openshell.dev",
				"watch-namespaces": "", "gateway-connection-selector": ""}
			c.check = checkDefaultsMatchManager
			return c
		}(),
		func() chartCase {
			c := defaults(chartCase{name: "gateway", values: []string{"gateway-values.yaml"}})
			c.gateway = gatewayConnection("default", openshellHelmGateway())
			// The connection's Secret namespace is a cluster resource namespace.
			c.flags = map[string]string{"cluster-resource-namespace": releaseNamespace + ",openshell"}
			return c
		}(),
		func() chartCase {
			c := defaults(chartCase{name: "gateway with namespace rules", set: []string{"gateway.create=true"},
				setJSON: []string{`gateway.namespaces={"from":"Selector","selector":{"matchLabels":{"openshell.dev/tenant":"true"}}}`,
					`gateway.inferenceRouteNamespaces={"from":"Selector","selector":{"matchLabels":{"kubernetes.io/metadata.name":"platform-ai"}}}`}})
			spec := openshellHelmGateway()
			spec.Namespaces = &v1alpha1.AllowedNamespaces{From: v1alpha1.NamespacesFromSelector,
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"openshell.dev/tenant": "true"}}}
			spec.InferenceRoutes = &v1alpha1.InferenceRouteGrant{Namespaces: &v1alpha1.AllowedNamespaces{From: v1alpha1.NamespacesFromSelector,
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": "platform-ai"}}}}
			c.gateway = gatewayConnection("default", spec)
			return c
		}(),
		func() chartCase {
			c := defaults(chartCase{name: "namespace-scoped install", set: []string{
				"manager.watchNamespaces={team-a,team-b}", "manager.gatewayConnectionSelector=openshell.dev/operator-instance=teams",
				"leaderElection.id=teams.openshell.dev"}})
			c.watchNamespaces, c.scopedRoleNamespaces = []string{"team-a", "team-b"}, []string{"team-a", "team-b", releaseNamespace}
			c.flags = map[string]string{"watch-namespaces": "team-a,team-b", "cluster-resource-namespace": releaseNamespace,
				"gateway-connection-selector": "openshell.dev/operator-instance=teams", "leader-election-id": "teams.openshell.dev"}
			return c
		}(),
		func() chartCase {
			c := defaults(chartCase{name: "metrics serving certificate from a Secret", set: []string{"metrics.certSecretName=metrics-tls"}})
			c.flags = map[string]string{"metrics-secure": "true", "metrics-cert-dir": "/etc/openshell-operator/metrics-certs"}
			c.check = func(t *testing.T, r rendered) {
				var d appsv1.Deployment
				r.one(t, "Deployment", &d)
				pod := d.Spec.Template.Spec
				mgr := container(t, &pod, managerContainer)
				if len(pod.Volumes) != 1 || pod.Volumes[0].Secret == nil || pod.Volumes[0].Secret.SecretName != "metrics-tls" {
					t.Errorf("volumes = %+v, want the Secret metrics-tls", pod.Volumes)
				}
				if len(mgr.VolumeMounts) != 1 || mgr.VolumeMounts[0].MountPath != "/etc/openshell-operator/metrics-certs" || !mgr.VolumeMounts[0].ReadOnly {
					t.Errorf("volumeMounts = %+v, want the certificate read-only at --metrics-cert-dir", mgr.VolumeMounts)
				}
			}
			return c
		}(),
		func() chartCase {
			c := defaults(chartCase{name: "guardrails", set: []string{"guardrails.enabled=true", "guardrails.maxCPU=4",
				"guardrails.allowGPU=false", "guardrails.allowedRuntimeClasses={gvisor,kata}"}, setJSON: []string{
				`guardrails.namespaceSelector={"matchLabels":{"openshell.dev/tenant":"true"}}`}})
			c.guardrails = true
			c.check = func(t *testing.T, r rendered) {
				var cm corev1.ConfigMap
				r.one(t, "ConfigMap", &cm)
				want := map[string]string{"allowedRuntimeClasses": "gvisor,kata", "allowedImageRegistries": "", "maxCPU": "4", "maxMemory": "",
					"allowGPU": "false", "forbiddenPodLabelPrefixes": "kubernetes.io/,k8s.io/,openshell.dev/",
					"forbiddenPodAnnotationPrefixes":  "kubernetes.io/,k8s.io/,openshell.dev/",
					"forbiddenCIDRs":                  "169.254.0.0/16,fe80::/10,fd00:ec2::254/128,100.100.100.200/32",
					"forbiddenHosts":                  "metadata.google.internal,metadata.goog,metadata",
					"protectedNamespaceLabelPrefixes": "openshell.dev/", "namespaceLabelAdminGroups": "system:masters"}
				if !reflect.DeepEqual(cm.Data, want) {
					t.Errorf("guardrail parameters = %v, want %v", cm.Data, want)
				}
				for _, b := range r.ofKind("ValidatingAdmissionPolicyBinding") {
					sel, _, _ := unstructured.NestedStringMap(b.Object, "spec", "matchResources", "namespaceSelector", "matchLabels")
					if sel["openshell.dev/tenant"] != "true" {
						t.Errorf("binding %s namespaceSelector = %v", b.GetName(), sel)
					}
				}
			}
			return c
		}(),
		func() chartCase {
			c := defaults(chartCase{name: "approvals", values: []string{"approvals-values.yaml"}})
			c.approvals = true
			return c
		}(),
		func() chartCase {
			c := defaults(chartCase{name: "approvals and guardrails", set: []string{"approvals.enabled=true", "guardrails.enabled=true"}})
			c.approvals, c.guardrails = true, true
			return c
		}(),
		func() chartCase {
			c := defaults(chartCase{name: "gateway with token default namespace and key", set: []string{
				"gateway.create=true", "gateway.auth.tokenSecretName=operator-token"}})
			c.gateway = gatewayConnection("default", withToken)
			return c
		}(),
		func() chartCase {
			c := defaults(chartCase{name: "gateway with every field", values: []string{"gateway-token-values.yaml"}})
			c.gateway = gatewayConnection("production", v1alpha1.GatewayConnectionSpec{
				Endpoint: "https://openshell.gateways.example.com:443",
				TLS: v1alpha1.GatewayTLS{
					SecretRef:  v1alpha1.NamespacedObjectReference{Namespace: "openshell", Name: "openshell-client-tls"},
					ServerName: "openshell",
				},
				Auth: &v1alpha1.GatewayAuth{TokenSecretRef: v1alpha1.SecretKeyReference{
					Namespace: "openshell-system", Name: "openshell-operator-token", Key: "id_token"}},
				Timeout:         &metav1.Duration{Duration: 45 * time.Second},
				Settings:        map[string]v1alpha1.SettingValue{"ocsf_json_enabled": {Bool: &truth}},
				GlobalPolicyRef: &v1alpha1.NamespacedObjectReference{Namespace: "platform", Name: "restricted"},
			})
			c.check = func(t *testing.T, r rendered) {
				gwc := r.ofKind("GatewayConnection")[0]
				if gwc.GetAnnotations()["argocd.argoproj.io/sync-wave"] != "1" {
					t.Errorf("GatewayConnection annotations = %v, want the sync wave", gwc.GetAnnotations())
				}
			}
			return c
		}(),
		func() chartCase {
			c := defaults(chartCase{name: "service monitor and network policy", values: []string{"monitoring-values.yaml"}})
			c.serviceMonitor, c.networkPolicy = true, true
			c.check = checkMonitoringValues
			return c
		}(),
		func() chartCase {
			c := defaults(chartCase{name: "no leader election", values: []string{"no-leader-election-values.yaml"}})
			c.leaderElect = false
			c.flags = map[string]string{"leader-elect": "false"}
			return c
		}(),
		func() chartCase {
			c := defaults(chartCase{name: "two replicas, digest, scheduling, tuned flags", values: []string{"ha-values.yaml"}})
			c.replicas = 2
			c.image = "registry.example.com/platform/openshell-operator@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
			c.insecureMetrics = true
			c.flags = map[string]string{"observation-mode": "poll", "max-concurrent-reconciles": "8",
				"kube-api-qps": "100", "kube-api-burst": "200", "zap-log-level": "debug",
				"zap-encoder": "console", "metrics-secure": "false", "metrics-bind-address": ":8443"}
			c.check = checkHAValues
			return c
		}(),
		func() chartCase {
			c := defaults(chartCase{name: "no metrics, external service account and RBAC", values: []string{"no-metrics-values.yaml"}})
			c.metrics, c.networkPolicy, c.createSA, c.rbac = false, true, false, false
			c.serviceAccount = "platform-openshell-operator"
			c.flags = map[string]string{"metrics-bind-address": "0"}
			c.check = func(t *testing.T, r rendered) {
				var np networkingv1.NetworkPolicy
				r.one(t, "NetworkPolicy", &np)
				want := []networkingv1.NetworkPolicyPort{tcpPort(8081)}
				if len(np.Spec.Ingress) != 1 || !reflect.DeepEqual(np.Spec.Ingress[0].Ports, want) {
					t.Errorf("ingress = %+v, want one rule to the health port only", np.Spec.Ingress)
				}
			}
			return c
		}(),
		func() chartCase {
			c := defaults(chartCase{name: "network policy without ingress", set: []string{"networkPolicy.enabled=true"},
				setJSON: []string{"networkPolicy.ingress.namespaceSelectors=[]", "networkPolicy.egress.dns.to=[]"}})
			c.networkPolicy = true
			c.check = func(t *testing.T, r rendered) {
				var np networkingv1.NetworkPolicy
				r.one(t, "NetworkPolicy", &np)
				if len(np.Spec.Ingress) != 0 {
					t.Errorf("ingress = %+v, want none (deny all)", np.Spec.Ingress)
				}
			}
			return c
		}(),
		func() chartCase {
			c := defaults(chartCase{name: "network policy denying all egress", set: []string{
				"networkPolicy.enabled=true", "networkPolicy.egress.dns.enabled=false"},
				setJSON: []string{"networkPolicy.egress.apiServer.ports=[]", "networkPolicy.egress.gateway.ports=[]"}})
			c.networkPolicy, c.egress = true, []string{}
			c.check = func(t *testing.T, r rendered) {
				var np networkingv1.NetworkPolicy
				r.one(t, "NetworkPolicy", &np)
				if len(np.Spec.Egress) != 0 {
					t.Errorf("egress = %+v, want none", np.Spec.Egress)
				}
			}
			return c
		}(),
		func() chartCase {
			c := defaults(chartCase{name: "names", set: []string{"fullnameOverride=platform-operator", "image.tag=v9.9.9",
				"approvals.enabled=true", "guardrails.enabled=true"}})
			c.serviceAccount, c.fullname, c.approvals, c.guardrails = "platform-operator", "platform-operator", true, true
			c.image = "ghcr.io/openshell-operator/openshell-operator:v9.9.9"
			c.check = func(t *testing.T, r rendered) {
				for _, o := range r.objs {
					if o.GetKind() != "CustomResourceDefinition" && !strings.HasPrefix(o.GetName(), "platform-operator") {
						t.Errorf("%s %s is not named after fullnameOverride", o.GetKind(), o.GetName())
					}
				}
			}
			return c
		}(),
	}
	return cases
}

// chartFailureCase is a set of values the chart must refuse, with part of the message.
type chartFailureCase struct {
	name          string
	set, setJSON  []string
	wantInMessage string
}

var chartFailureCases = []chartFailureCase{
	{"unknown observation mode", []string{"manager.observationMode=sideways"}, nil, "/manager/observationMode"},
	{"several replicas without leader election", []string{"replicas=2", "leaderElection.enabled=false"}, nil, "replicas > 1 needs leaderElection.enabled"},
	{"plaintext gateway endpoint", []string{"gateway.create=true", "gateway.endpoint=http://gw:8080"}, nil, "/gateway/endpoint"},
	{"setting with two values", []string{"gateway.settings.x.bool=true", "gateway.settings.x.int=1"}, nil, "/gateway/settings/x"},
	{"misspelt top-level key", []string{"replica=2"}, nil, "additional properties 'replica'"},
	{"misspelt nested key", []string{"networkPolicy.enable=true"}, nil, "additional properties 'enable'"},
	{"malformed digest", []string{"image.digest=sha256:nothex"}, nil, "/image/digest"},
	{"service account neither created nor named", []string{"serviceAccount.create=false"}, nil, "serviceAccount.name is required"},
	{"metrics and health on one port", []string{"metrics.port=8081"}, nil, "must differ"},
	{"service monitor without metrics", []string{"metrics.enabled=false", "metrics.serviceMonitor.enabled=true"}, nil, "needs metrics.enabled"},
	{"gateway without a Secret", []string{"gateway.create=true", "gateway.tls.secretName="}, nil, "/gateway/tls/secretName"},
	{"bad scrape interval", []string{"metrics.serviceMonitor.interval=soon"}, nil, "/metrics/serviceMonitor/interval"},
	{"bad gateway port", nil, []string{"networkPolicy.egress.gateway.ports=[0]"}, "/networkPolicy/egress/gateway/ports/0"},
	{"watch namespace that cannot exist", []string{"manager.watchNamespaces={Team_A}"}, nil, "/manager/watchNamespaces/0"},
	{"unknown guardrail action", nil, []string{`guardrails.validationActions=["Block"]`}, "/guardrails/validationActions/0"},
	{"approvals toggle that is not a boolean", []string{"approvals.enabled=yes"}, nil, "/approvals/enabled"},
	{"gateway namespaces from an unknown value", nil, []string{`gateway.namespaces={"from":"Same"}`}, "/gateway/namespaces/from"},
}

// ciValueFiles lists the chart's ci/*-values.yaml files.
func ciValueFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(chartDir, "ci", "*-values.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no ci/*-values.yaml in the chart (%v)", err)
	}
	for i, f := range files {
		files[i] = filepath.Base(f)
	}
	return files
}

// TestHelmLint lints the chart strictly with its defaults and each ci/ value set, and proves
// lint applies the values schema.
func TestHelmLint(t *testing.T) {
	type lintCase struct {
		name        string
		values, set []string
		wantErr     bool
	}
	cases := []lintCase{{name: "chart defaults"}}
	for _, f := range ciValueFiles(t) {
		cases = append(cases, lintCase{name: f, values: []string{f}})
	}
	cases = append(cases, lintCase{name: "values against the schema", set: []string{"manager.observationMode=sideways"}, wantErr: true})

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"lint", "--strict", chartDir}, helmArgs(tc.values, tc.set, nil)...)
			out, err := run(helmBin, args...)
			switch {
			case tc.wantErr && err == nil:
				t.Fatalf("helm lint accepted invalid values:\n%s", out)
			case !tc.wantErr && err != nil:
				t.Fatalf("%v\n%s", err, out)
			}
		})
	}
}

// TestHelmTemplate renders each value set and checks every object.
func TestHelmTemplate(t *testing.T) {
	cases := chartCases(t)
	covered := map[string]bool{}
	for _, tc := range cases {
		for _, f := range tc.values {
			covered[f] = true
		}
	}
	for _, f := range ciValueFiles(t) {
		if !covered[f] {
			t.Errorf("ci/%s is linted but no TestHelmTemplate case renders it", f)
		}
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			objs, err := helmTemplate(releaseNamespace, tc.values, tc.set, tc.setJSON)
			if err != nil {
				t.Fatal(err)
			}
			checkChart(t, tc, rendered{objs: objs})
		})
	}
}

// TestHelmTemplateRefuses proves the schema and the template checks refuse bad values.
func TestHelmTemplateRefuses(t *testing.T) {
	for _, tc := range chartFailureCases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := helmTemplate(releaseNamespace, nil, tc.set, tc.setJSON)
			if err == nil {
				t.Fatalf("helm template accepted %v %v", tc.set, tc.setJSON)
			}
			if !strings.Contains(err.Error(), tc.wantInMessage) {
				t.Fatalf("error %q does not mention %q", err, tc.wantInMessage)
			}
		})
	}
}

// clusterScoped are the kinds the chart renders without a namespace.
var clusterScoped = map[string]bool{"ClusterRole": true, "ClusterRoleBinding": true,
	"CustomResourceDefinition": true, "GatewayConnection": true,
	"ValidatingAdmissionPolicy": true, "ValidatingAdmissionPolicyBinding": true}

// checkChart runs the checks every rendering gets, then the case's.
func checkChart(t *testing.T, tc chartCase, r rendered) {
	t.Helper()
	kinds := map[string]int{}
	for _, o := range r.objs {
		kinds[o.GetKind()]++
		if o.GetKind() == "ServiceMonitor" {
			continue // not in the scheme; checked below
		}
		typed, err := scheme.New(o.GroupVersionKind())
		if err != nil {
			t.Errorf("%s %s: unexpected kind %v (add it to the scheme and to these checks)", o.GetKind(), o.GetName(), o.GroupVersionKind())
			continue
		}
		decodeStrict(t, o, typed)
		if o.GetKind() == "CustomResourceDefinition" {
			continue // byte copies of config/crd/bases, checked by checkCRDs
		}
		switch {
		case clusterScoped[o.GetKind()] && o.GetNamespace() != "":
			t.Errorf("cluster-scoped %s %s has namespace %q", o.GetKind(), o.GetName(), o.GetNamespace())
		case (o.GetKind() == "Role" || o.GetKind() == "RoleBinding") && slices.Contains(tc.scopedRoleNamespaces, o.GetNamespace()):
			// a namespace-scoped install's manager Roles, checked by checkScopedRBAC
		case !clusterScoped[o.GetKind()] && o.GetNamespace() != releaseNamespace:
			t.Errorf("%s %s is in namespace %q, want the release namespace %q", o.GetKind(), o.GetName(), o.GetNamespace(), releaseNamespace)
		}
		l := o.GetLabels()
		if l["app.kubernetes.io/managed-by"] != "Helm" || l["app.kubernetes.io/instance"] != releaseName {
			t.Errorf("%s %s lacks the Helm release labels: %v", o.GetKind(), o.GetName(), l)
		}
	}
	checkCRDs(t, r)

	d := checkDeployment(t, r)
	if got := deref(d.deploy.Spec.Replicas); got != tc.replicas {
		t.Errorf("replicas = %d, want %d", got, tc.replicas)
	}
	if d.manager.Image != tc.image {
		t.Errorf("image = %q, want %q", d.manager.Image, tc.image)
	}
	if got := d.flags["leader-elect"]; got != boolString(tc.leaderElect) {
		t.Errorf("--leader-elect = %s, want %v", got, tc.leaderElect)
	}
	for name, want := range tc.flags {
		if got := d.flags[name]; got != want {
			t.Errorf("--%s = %q, want %q", name, got, want)
		}
	}
	pod := d.deploy.Spec.Template.Spec
	if pod.ServiceAccountName != tc.serviceAccount {
		t.Errorf("serviceAccountName = %q, want %q", pod.ServiceAccountName, tc.serviceAccount)
	}

	wantKinds := map[string]int{"Deployment": 1, "CustomResourceDefinition": len(crdFiles(t))}
	if tc.createSA {
		wantKinds["ServiceAccount"] = 1
		var sa corev1.ServiceAccount
		r.one(t, "ServiceAccount", &sa)
		if sa.Name != tc.serviceAccount {
			t.Errorf("ServiceAccount %s, want %s", sa.Name, tc.serviceAccount)
		}
	}
	switch {
	case tc.rbac && len(tc.watchNamespaces) > 0:
		wantKinds["ClusterRole"], wantKinds["ClusterRoleBinding"] = 1, 1
		wantKinds["Role"], wantKinds["RoleBinding"] = len(tc.scopedRoleNamespaces), len(tc.scopedRoleNamespaces)
		if tc.leaderElect {
			wantKinds["Role"]++
			wantKinds["RoleBinding"]++
		}
		checkScopedRBAC(t, r, tc.scopedRoleNamespaces, tc.serviceAccount)
	case tc.rbac:
		wantKinds["ClusterRole"], wantKinds["ClusterRoleBinding"] = 1, 1
		role := checkManagerRules(t, r)
		if tc.leaderElect {
			wantKinds["Role"], wantKinds["RoleBinding"] = 1, 1
			checkLeaderElectionRules(t, r)
		}
		checkBindings(t, r, role, tc.serviceAccount, releaseNamespace)
	}
	if tc.rbac && tc.metrics && !tc.insecureMetrics {
		wantKinds["ClusterRole"]++
		checkMetricsReader(t, r)
	}
	if tc.guardrails {
		wantKinds["ValidatingAdmissionPolicy"], wantKinds["ValidatingAdmissionPolicyBinding"], wantKinds["ConfigMap"] = 3, 3, 1
	}
	if tc.approvals {
		wantKinds["ValidatingAdmissionPolicy"]++
		wantKinds["ValidatingAdmissionPolicyBinding"]++
		wantKinds["ClusterRole"] += 2
	}
	fullname := cmp.Or(tc.fullname, releaseName)
	checkGuardrails(t, r, tc.guardrails, releaseNamespace, fullname+"-guardrails")
	checkApprovals(t, r, tc.approvals, fullname)
	if tc.metrics {
		wantKinds["Service"] = 1
		checkMetricsService(t, r, d)
	}
	if tc.serviceMonitor {
		wantKinds["ServiceMonitor"] = 1
		checkServiceMonitor(t, r)
	}
	if tc.networkPolicy {
		wantKinds["NetworkPolicy"] = 1
		egress := tc.egress
		if egress == nil {
			egress = []string{"TCP/443", "TCP/53", "TCP/6443", "TCP/8080", "UDP/53"}
		}
		checkNetworkPolicy(t, r, d, egress)
	}
	if tc.gateway != nil {
		wantKinds["GatewayConnection"] = 1
		var got v1alpha1.GatewayConnection
		r.one(t, "GatewayConnection", &got)
		if got.Name != tc.gateway.Name || !reflect.DeepEqual(got.Spec, tc.gateway.Spec) {
			g, _ := yaml.Marshal(got.Spec)
			w, _ := yaml.Marshal(tc.gateway.Spec)
			t.Errorf("GatewayConnection %q spec:\n%s\nwant %q:\n%s", got.Name, g, tc.gateway.Name, w)
		}
	}
	if !reflect.DeepEqual(kinds, wantKinds) {
		t.Errorf("rendered kinds %v, want %v", kinds, wantKinds)
	}
	if tc.check != nil {
		tc.check(t, r)
	}
}

// boolString is "true" or "false".
func boolString(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// checkDefaultsMatchManager asserts the chart's default flag values are cmd/main.go's
// defaults (leader election aside, which the chart turns on).
func checkDefaultsMatchManager(t *testing.T, r rendered) {
	t.Helper()
	var d appsv1.Deployment
	r.one(t, "Deployment", &d)
	m := newManagerFlags(t)
	for _, arg := range container(t, &d.Spec.Template.Spec, managerContainer).Args {
		name, val, _ := strings.Cut(strings.TrimLeft(arg, "-"), "=")
		def, ok := m.defaults[name]
		// The chart differs on purpose: leader election on, HTTPS metrics with authn/authz on
		// 8443 (the binary serves plain HTTP on 8080 for local runs), a lease and cluster
		// resource namespace named after the release.
		if !ok || slices.Contains([]string{"leader-elect", "metrics-secure", "metrics-bind-address",
			"leader-election-id", "cluster-resource-namespace"}, name) {
			continue
		}
		if val != def {
			t.Errorf("chart default --%s=%s, cmd/main.go default %s", name, val, def)
		}
	}
}

// checkMetricsService asserts the metrics Service selects the manager pods and targets the
// metrics port.
func checkMetricsService(t *testing.T, r rendered, d deploymentFacts) {
	t.Helper()
	var svc corev1.Service
	r.one(t, "Service", &svc)
	if len(svc.Spec.Selector) == 0 || !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(d.deploy.Spec.Template.Labels)) {
		t.Errorf("metrics Service selector %v does not select the manager pods %v", svc.Spec.Selector, d.deploy.Spec.Template.Labels)
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Name != "metrics" {
		t.Fatalf("metrics Service ports = %+v, want one named metrics", svc.Spec.Ports)
	}
	tp := svc.Spec.Ports[0].TargetPort
	if got := containerPort(t, d.manager, tp.StrVal, tp.IntVal); got != d.metricsPort {
		t.Errorf("metrics Service targets port %d, the manager serves metrics on %d", got, d.metricsPort)
	}
}

// checkServiceMonitor asserts the ServiceMonitor scrapes the metrics Service's metrics port.
func checkServiceMonitor(t *testing.T, r rendered) {
	t.Helper()
	sm := r.ofKind("ServiceMonitor")[0]
	if sm.GetAPIVersion() != "monitoring.coreos.com/v1" {
		t.Errorf("ServiceMonitor apiVersion %s, want monitoring.coreos.com/v1", sm.GetAPIVersion())
	}
	var svc corev1.Service
	r.one(t, "Service", &svc)
	sel, _, _ := unstructured.NestedStringMap(sm.Object, "spec", "selector", "matchLabels")
	if len(sel) == 0 || !labels.SelectorFromSet(sel).Matches(labels.Set(svc.Labels)) {
		t.Errorf("ServiceMonitor selector %v does not select the metrics Service %v", sel, svc.Labels)
	}
	ns, _, _ := unstructured.NestedStringSlice(sm.Object, "spec", "namespaceSelector", "matchNames")
	if !slices.Equal(ns, []string{releaseNamespace}) {
		t.Errorf("ServiceMonitor namespaceSelector %v, want [%s]", ns, releaseNamespace)
	}
	eps, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
	if len(eps) != 1 {
		t.Fatalf("ServiceMonitor endpoints = %v, want one", eps)
	}
	ep, _ := eps[0].(map[string]any)
	if ep["port"] != svc.Spec.Ports[0].Name || ep["path"] != "/metrics" {
		t.Errorf("ServiceMonitor endpoint %v, want port %s path /metrics", ep, svc.Spec.Ports[0].Name)
	}
	// Metrics are secure by default: HTTPS with Prometheus' ServiceAccount token.
	if ep["scheme"] != "https" || ep["bearerTokenFile"] != "/var/run/secrets/kubernetes.io/serviceaccount/token" {
		t.Errorf("ServiceMonitor endpoint %v, want https with the ServiceAccount token", ep)
	}
}

// tcpPort is a NetworkPolicy TCP port.
func tcpPort(p int32) networkingv1.NetworkPolicyPort {
	tcp := corev1.ProtocolTCP
	port := intstr.FromInt32(p)
	return networkingv1.NetworkPolicyPort{Protocol: &tcp, Port: &port}
}

// checkNetworkPolicy asserts the NetworkPolicy selects the manager, lets in only the metrics
// and health ports from selected namespaces, and lets out only port-scoped traffic: the API
// server, the gateway and DNS.
func checkNetworkPolicy(t *testing.T, r rendered, d deploymentFacts, egress []string) {
	t.Helper()
	var np networkingv1.NetworkPolicy
	r.one(t, "NetworkPolicy", &np)
	sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
	if err != nil || sel.Empty() || !sel.Matches(labels.Set(d.deploy.Spec.Template.Labels)) {
		t.Errorf("NetworkPolicy podSelector %v does not select the manager pods", np.Spec.PodSelector)
	}
	if !slices.Equal(np.Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}) {
		t.Errorf("policyTypes = %v, want Ingress and Egress", np.Spec.PolicyTypes)
	}
	allowedIn := map[int32]bool{bindPort(t, d.flags["health-probe-bind-address"]): true}
	if d.metricsPort != 0 {
		allowedIn[d.metricsPort] = true
	}
	for _, rule := range np.Spec.Ingress {
		if len(rule.Ports) == 0 || len(rule.From) == 0 {
			t.Errorf("ingress rule %+v opens all ports or all sources", rule)
		}
		for _, p := range rule.Ports {
			if p.Port == nil || !allowedIn[p.Port.IntVal] || deref(p.Protocol) != corev1.ProtocolTCP {
				t.Errorf("ingress allows %+v, want only TCP %v", p, allowedIn)
			}
		}
		for _, peer := range rule.From {
			if peer.NamespaceSelector == nil || peer.IPBlock != nil {
				t.Errorf("ingress peer %+v is not a namespace selector", peer)
			}
		}
	}
	out := map[string]bool{}
	for _, rule := range np.Spec.Egress {
		if len(rule.Ports) == 0 {
			t.Errorf("egress rule %+v opens all ports", rule)
		}
		for _, p := range rule.Ports {
			out[string(deref(p.Protocol))+"/"+p.Port.String()] = true
		}
	}
	if got := sortedKeys(out); !slices.Equal(got, egress) {
		t.Errorf("egress allows %v, want %v", got, egress)
	}
}

// sortedKeys are a map's keys in order.
func sortedKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// checkMonitoringValues asserts what ci/monitoring-values.yaml asks for.
func checkMonitoringValues(t *testing.T, r rendered) {
	t.Helper()
	sm := r.ofKind("ServiceMonitor")[0]
	if sm.GetLabels()["release"] != "kube-prometheus-stack" {
		t.Errorf("ServiceMonitor labels %v lack release: kube-prometheus-stack", sm.GetLabels())
	}
	ep, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
	if e := ep[0].(map[string]any); e["interval"] != "15s" || e["scrapeTimeout"] != "10s" {
		t.Errorf("ServiceMonitor endpoint %v, want interval 15s and scrapeTimeout 10s", e)
	}
	var np networkingv1.NetworkPolicy
	r.one(t, "NetworkPolicy", &np)
	wantFrom := []networkingv1.NetworkPolicyPeer{{
		NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": "monitoring"}},
		PodSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/name": "prometheus"}},
	}}
	if len(np.Spec.Ingress) != 1 || !reflect.DeepEqual(np.Spec.Ingress[0].From, wantFrom) {
		t.Errorf("ingress = %+v, want from %+v", np.Spec.Ingress, wantFrom)
	}
	if want := []networkingv1.NetworkPolicyPort{tcpPort(8443), tcpPort(8081)}; !reflect.DeepEqual(np.Spec.Ingress[0].Ports, want) {
		t.Errorf("ingress ports = %+v, want metrics and health", np.Spec.Ingress[0].Ports)
	}
	var cidrs []string
	var gatewayPeers []networkingv1.NetworkPolicyPeer
	for _, rule := range np.Spec.Egress {
		for _, peer := range rule.To {
			if peer.IPBlock != nil {
				cidrs = append(cidrs, peer.IPBlock.CIDR)
			}
		}
		if reflect.DeepEqual(rule.Ports, []networkingv1.NetworkPolicyPort{tcpPort(8080)}) {
			gatewayPeers = rule.To
		}
	}
	if !slices.Equal(cidrs, []string{"10.96.0.1/32", "192.168.0.10/32"}) {
		t.Errorf("API server CIDRs = %v", cidrs)
	}
	wantGW := []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{
		MatchLabels: map[string]string{"kubernetes.io/metadata.name": "openshell"}}}}
	if !reflect.DeepEqual(gatewayPeers, wantGW) {
		t.Errorf("gateway egress peers = %+v, want the openshell namespace", gatewayPeers)
	}
}

// checkScopedRBAC asserts a namespace-scoped install: the ClusterRole holds only the
// cluster-scoped resources of config/rbac/role.yaml, each namespace gets a Role with the rest
// bound to the manager, and together they grant exactly role.yaml's (resource, verb) pairs.
func checkScopedRBAC(t *testing.T, r rendered, namespaces []string, sa string) {
	t.Helper()
	var want rbacv1.ClusterRole
	readConfig(t, "config/rbac/role.yaml", &want)
	pairs := func(rules []rbacv1.PolicyRule) map[string]bool {
		out := map[string]bool{}
		for _, rule := range rules {
			for _, g := range rule.APIGroups {
				for _, res := range rule.Resources {
					for _, v := range rule.Verbs {
						out[g+"/"+res+":"+v] = true
					}
				}
			}
		}
		return out
	}
	clusterScopedResources := map[string]bool{"gatewayconnections": true, "gatewayconnections/status": true,
		"namespaces": true, "tokenreviews": true, "subjectaccessreviews": true}
	cr := managerClusterRole(t, r)
	for _, rule := range cr.Rules {
		for _, res := range rule.Resources {
			if !clusterScopedResources[res] {
				t.Errorf("ClusterRole %s grants namespaced %s in a namespace-scoped install", cr.Name, res)
			}
		}
	}
	got := pairs(cr.Rules)
	seen := map[string]bool{}
	for _, o := range r.ofKind("Role") {
		var role rbacv1.Role
		decodeStrict(t, o, &role)
		if strings.HasSuffix(role.Name, "-leader-election") {
			continue
		}
		seen[role.Namespace] = true
		for k := range pairs(role.Rules) {
			got[k] = true
		}
	}
	for _, ns := range namespaces {
		if !seen[ns] {
			t.Errorf("no manager Role in namespace %s", ns)
		}
	}
	if w := pairs(want.Rules); !reflect.DeepEqual(got, w) {
		t.Errorf("ClusterRole and Roles grant %v, config/rbac/role.yaml %v", sortedKeys(got), sortedKeys(w))
	}
	for _, o := range r.ofKind("RoleBinding") {
		var rb rbacv1.RoleBinding
		decodeStrict(t, o, &rb)
		if len(rb.Subjects) != 1 || rb.Subjects[0].Name != sa || rb.Subjects[0].Namespace != releaseNamespace {
			t.Errorf("RoleBinding %s/%s subjects %+v, want the manager's ServiceAccount", rb.Namespace, rb.Name, rb.Subjects)
		}
	}
}

// checkHAValues asserts what ci/ha-values.yaml asks for besides flags and image.
func checkHAValues(t *testing.T, r rendered) {
	t.Helper()
	var d appsv1.Deployment
	r.one(t, "Deployment", &d)
	pod := d.Spec.Template
	c := container(t, &pod.Spec, managerContainer)
	switch {
	case c.ImagePullPolicy != corev1.PullAlways:
		t.Errorf("imagePullPolicy = %s", c.ImagePullPolicy)
	case !reflect.DeepEqual(pod.Spec.ImagePullSecrets, []corev1.LocalObjectReference{{Name: "registry-credentials"}}):
		t.Errorf("imagePullSecrets = %v", pod.Spec.ImagePullSecrets)
	case pod.Annotations["example.com/team"] != "platform" || pod.Labels["example.com/tier"] != "control-plane":
		t.Errorf("pod annotations %v / labels %v lack the extra values", pod.Annotations, pod.Labels)
	case pod.Spec.NodeSelector["kubernetes.io/os"] != "linux":
		t.Errorf("nodeSelector = %v", pod.Spec.NodeSelector)
	case len(pod.Spec.Tolerations) != 1 || pod.Spec.Tolerations[0].Key != "node-role.kubernetes.io/control-plane":
		t.Errorf("tolerations = %v", pod.Spec.Tolerations)
	case pod.Spec.Affinity == nil || pod.Spec.Affinity.PodAntiAffinity == nil:
		t.Errorf("affinity = %v", pod.Spec.Affinity)
	case len(pod.Spec.TopologySpreadConstraints) != 1 || pod.Spec.PriorityClassName != "system-cluster-critical":
		t.Errorf("topologySpreadConstraints %v / priorityClassName %q", pod.Spec.TopologySpreadConstraints, pod.Spec.PriorityClassName)
	case c.Resources.Limits.Memory().String() != "512Mi":
		t.Errorf("memory limit = %s", c.Resources.Limits.Memory())
	case len(c.Env) != 2 || c.Env[0].Name != "POD_NAMESPACE" || c.Env[1].Name != "GOMAXPROCS":
		t.Errorf("env = %v", c.Env)
	}
}

// TestChartCopiesAreCurrent asserts the chart's crds/ and files/ are byte copies of
// config/crd/bases, config/rbac/role.yaml, the guardrail policies and config/approvals
// (`make manifests` refreshes them).
func TestChartCopiesAreCurrent(t *testing.T) {
	bases, err := filepath.Glob(filepath.Join(root, "config", "crd", "bases", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	copies, err := filepath.Glob(filepath.Join(chartDir, "crds", "*"))
	if err != nil {
		t.Fatal(err)
	}
	pairs := map[string]string{
		filepath.Join(root, "config", "rbac", "role.yaml"):                         filepath.Join(chartDir, "files", "manager-role.yaml"),
		filepath.Join(root, "config", "components", "guardrails", "policies.yaml"): filepath.Join(chartDir, "files", "guardrails-policies.yaml"),
		filepath.Join(root, "config", "approvals", "approvals_policy.yaml"):        filepath.Join(chartDir, "files", "approvals-policy.yaml"),
		filepath.Join(root, "config", "approvals", "reviewer_roles.yaml"):          filepath.Join(chartDir, "files", "approvals-reviewer-roles.yaml"),
	}
	names := map[string]bool{}
	for _, b := range bases {
		pairs[b] = filepath.Join(chartDir, "crds", filepath.Base(b))
		names[filepath.Base(b)] = true
	}
	for _, c := range copies {
		if !names[filepath.Base(c)] {
			t.Errorf("chart crds/%s has no counterpart in config/crd/bases (run make manifests)", filepath.Base(c))
		}
	}
	for src, dst := range pairs {
		want, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(dst)
		if err != nil {
			t.Errorf("%v (run make manifests)", err)
			continue
		}
		if !bytes.Equal(got, want) {
			rel, _ := filepath.Rel(root, dst)
			t.Errorf("%s is not a copy of %s (run make manifests)", rel, src)
		}
	}
}

// TestHelmPackage packages the chart and renders the archive: everything a template reads
// (files/, crds/) must survive .helmignore, and ci/ must not ship.
func TestHelmPackage(t *testing.T) {
	dir := t.TempDir()
	if _, err := run(helmBin, "package", chartDir, "--destination", dir); err != nil {
		t.Fatal(err)
	}
	archives, err := filepath.Glob(filepath.Join(dir, "openshell-operator-*.tgz"))
	if err != nil || len(archives) != 1 {
		t.Fatalf("want one packaged chart, got %v (%v)", archives, err)
	}
	list, err := run("tar", "tzf", archives[0])
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(list), "openshell-operator/ci/") {
		t.Errorf("the package ships ci/:\n%s", list)
	}
	out, err := run(helmBin, "template", releaseName, archives[0], "--namespace", releaseNamespace,
		"--include-crds", "--set", "gateway.create=true", "--set", "approvals.enabled=true", "--set", "guardrails.enabled=true")
	if err != nil {
		t.Fatal(err)
	}
	objs, err := parseObjects(out)
	if err != nil {
		t.Fatal(err)
	}
	r := rendered{objs: objs}
	checkCRDs(t, r)
	checkManagerRules(t, r)
	checkDeployment(t, r)
	checkGuardrails(t, r, true, releaseNamespace, releaseName+"-guardrails")
	checkApprovals(t, r, true, releaseName)
	if n := len(r.ofKind("GatewayConnection")); n != 1 {
		t.Errorf("the packaged chart renders %d GatewayConnections, want 1", n)
	}
}
