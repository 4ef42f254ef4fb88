package packaging

import (
	"flag"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/yaml"
)

// nonRootUID is the distroless "nonroot" user the image runs as (Dockerfile: USER 65532).
const nonRootUID = 65532

// managerContainer is the name of the manager container in every rendering.
const managerContainer = "manager"

// managerFlagSet is a FlagSet with the flags cmd/main.go defines, read from its source with
// their types and literal defaults, plus the zap logging flags main binds.
type managerFlagSet struct {
	fs *flag.FlagSet
	// defaults are the literal default values in cmd/main.go, by flag name.
	defaults map[string]string
}

// newManagerFlags parses cmd/main.go for flag.<Type>Var(&v, "name", default, usage) calls.
func newManagerFlags(t *testing.T) managerFlagSet {
	t.Helper()
	fset := token.NewFileSet()
	file, err := parser.ParseFile(fset, filepath.Join(root, "cmd", "main.go"), nil, 0)
	if err != nil {
		t.Fatalf("parse cmd/main.go: %v", err)
	}
	m := managerFlagSet{fs: flag.NewFlagSet("manager", flag.ContinueOnError), defaults: map[string]string{}}
	m.fs.SetOutput(io.Discard)
	ast.Inspect(file, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok || len(call.Args) != 4 {
			return true
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		if pkg, ok := sel.X.(*ast.Ident); !ok || pkg.Name != "flag" {
			return true
		}
		nameLit, ok := call.Args[1].(*ast.BasicLit)
		if !ok || nameLit.Kind != token.STRING {
			return true
		}
		name, err := strconv.Unquote(nameLit.Value)
		if err != nil {
			t.Fatalf("cmd/main.go: flag name %s: %v", nameLit.Value, err)
		}
		def := ""
		if lit, ok := call.Args[2].(*ast.BasicLit); ok {
			def = strings.Trim(lit.Value, `"`)
			m.defaults[name] = def
		} else if id, ok := call.Args[2].(*ast.Ident); ok && (id.Name == "true" || id.Name == "false") {
			def = id.Name
			m.defaults[name] = def
		}
		switch sel.Sel.Name {
		case "StringVar":
			m.fs.String(name, def, "")
		case "BoolVar":
			m.fs.Bool(name, def == "true", "")
		case "IntVar", "Int64Var", "UintVar", "Uint64Var":
			m.fs.Int64(name, 0, "")
		case "Float64Var":
			m.fs.Float64(name, 0, "")
		case "DurationVar":
			m.fs.Duration(name, 0, "")
		default:
			t.Fatalf("cmd/main.go: flag %q defined with flag.%s, which this test does not know", name, sel.Sel.Name)
		}
		return true
	})
	for _, want := range []string{"leader-elect", "health-probe-bind-address", "metrics-bind-address",
		"observation-mode", "max-concurrent-reconciles", "kube-api-qps", "kube-api-burst"} {
		if m.fs.Lookup(want) == nil {
			t.Fatalf("cmd/main.go no longer defines --%s (or this test no longer finds it)", want)
		}
	}
	opts := zap.Options{}
	opts.BindFlags(m.fs)
	return m
}

// parse parses args like the manager would and returns the value of every flag, set or not.
func (m managerFlagSet) parse(t *testing.T, args []string) map[string]string {
	t.Helper()
	if err := m.fs.Parse(args); err != nil {
		t.Fatalf("manager arguments %q do not parse with cmd/main.go's flags: %v", args, err)
	}
	if m.fs.NArg() != 0 {
		t.Fatalf("manager arguments have positional leftovers %q", m.fs.Args())
	}
	seen := map[string]int{}
	for _, a := range args {
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		seen[name]++
		if seen[name] > 1 {
			t.Errorf("manager flag --%s is passed more than once: %q", name, args)
		}
	}
	vals := map[string]string{}
	m.fs.VisitAll(func(f *flag.Flag) { vals[f.Name] = f.Value.String() })
	return vals
}

// container returns the named container of a pod spec.
func container(t *testing.T, spec *corev1.PodSpec, name string) *corev1.Container {
	t.Helper()
	for i := range spec.Containers {
		if spec.Containers[i].Name == name {
			return &spec.Containers[i]
		}
	}
	t.Fatalf("no container %q in the pod spec", name)
	return nil
}

// bindPort is the port of a ":port" bind address, 0 for "0" (disabled).
func bindPort(t *testing.T, addr string) int32 {
	t.Helper()
	if addr == "0" {
		return 0
	}
	_, p, ok := strings.Cut(addr, ":")
	n, err := strconv.ParseInt(p, 10, 32)
	if !ok || err != nil {
		t.Fatalf("bind address %q is not [host]:port", addr)
	}
	return int32(n)
}

// containerPort resolves a probe or Service port (number or name) against a container.
func containerPort(t *testing.T, c *corev1.Container, port string, number int32) int32 {
	t.Helper()
	if port == "" {
		return number
	}
	for _, p := range c.Ports {
		if p.Name == port {
			return p.ContainerPort
		}
	}
	t.Fatalf("container %s has no port named %q", c.Name, port)
	return 0
}

// deploymentFacts are what the posture check found, for case-specific assertions.
type deploymentFacts struct {
	deploy  appsv1.Deployment
	manager *corev1.Container
	// flags are the manager's flag values after parsing its arguments.
	flags map[string]string
	// metricsPort is the metrics container port, 0 when metrics are off.
	metricsPort int32
}

// checkDeployment asserts the manager Deployment's security posture, probes and flags: the
// restricted Pod Security Standard, distroless nonroot uid, read-only root filesystem, no
// privilege escalation, all capabilities dropped, RuntimeDefault seccomp, liveness /healthz
// and readiness /readyz on the health port, and arguments that cmd/main.go accepts.
func checkDeployment(t *testing.T, r rendered) deploymentFacts {
	t.Helper()
	var f deploymentFacts
	r.one(t, "Deployment", &f.deploy)
	d := &f.deploy
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil || sel.Empty() || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("Deployment selector %v does not match its pod labels %v (err %v)", d.Spec.Selector, d.Spec.Template.Labels, err)
	}
	pod := &d.Spec.Template.Spec
	if pod.HostNetwork || pod.HostPID || pod.HostIPC {
		t.Errorf("manager pod uses host namespaces")
	}
	if pod.ServiceAccountName == "" {
		t.Errorf("manager pod has no serviceAccountName")
	}
	if len(pod.Containers) != 1 || len(pod.InitContainers) != 0 {
		t.Errorf("manager pod has %d containers and %d init containers, want just %q",
			len(pod.Containers), len(pod.InitContainers), managerContainer)
	}
	c := container(t, pod, managerContainer)
	f.manager = c
	psc := pod.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	sc := c.SecurityContext
	if sc == nil {
		t.Fatalf("manager container has no securityContext")
	}
	// Container settings win over pod settings; both levels count.
	runAsNonRoot := firstNonNil(sc.RunAsNonRoot, psc.RunAsNonRoot)
	runAsUser := firstNonNil(sc.RunAsUser, psc.RunAsUser)
	seccomp := firstNonNil(sc.SeccompProfile, psc.SeccompProfile)
	switch {
	case runAsNonRoot == nil || !*runAsNonRoot:
		t.Errorf("runAsNonRoot is not true")
	case runAsUser == nil || *runAsUser != nonRootUID:
		t.Errorf("runAsUser = %v, want %d (distroless nonroot)", deref(runAsUser), nonRootUID)
	}
	if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("seccompProfile = %+v, want RuntimeDefault", seccomp)
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Errorf("readOnlyRootFilesystem is not true")
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("allowPrivilegeEscalation is not false")
	}
	if sc.Privileged != nil && *sc.Privileged {
		t.Errorf("manager container is privileged")
	}
	if sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) != 0 {
		t.Errorf("capabilities = %+v, want drop [ALL] and nothing added", sc.Capabilities)
	}
	for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if _, ok := c.Resources.Requests[res]; !ok {
			t.Errorf("manager has no %s request", res)
		}
		if _, ok := c.Resources.Limits[res]; !ok {
			t.Errorf("manager has no %s limit", res)
		}
	}
	if len(c.Command) != 1 || c.Command[0] != "/manager" {
		t.Errorf("command = %q, want [/manager] (the Dockerfile's binary)", c.Command)
	}

	f.flags = newManagerFlags(t).parse(t, c.Args)
	health := bindPort(t, f.flags["health-probe-bind-address"])
	for _, p := range []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{{"liveness", c.LivenessProbe, "/healthz"}, {"readiness", c.ReadinessProbe, "/readyz"}} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("no %s httpGet probe", p.name)
			continue
		}
		g := p.probe.HTTPGet
		if g.Path != p.path {
			t.Errorf("%s probe path = %q, want %q", p.name, g.Path, p.path)
		}
		if got := containerPort(t, c, g.Port.StrVal, g.Port.IntVal); got != health {
			t.Errorf("%s probe port = %d, want the health port %d", p.name, got, health)
		}
	}
	f.metricsPort = bindPort(t, f.flags["metrics-bind-address"])
	if f.metricsPort != 0 {
		if got := containerPort(t, c, "metrics", 0); got != f.metricsPort {
			t.Errorf("container port metrics = %d, want %d (--metrics-bind-address)", got, f.metricsPort)
		}
	}
	return f
}

// firstNonNil returns the first non-nil pointer.
func firstNonNil[T any](ps ...*T) *T {
	for _, p := range ps {
		if p != nil {
			return p
		}
	}
	return nil
}

// deref is *p, or the zero value.
func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// readConfig reads a YAML file under config/ into a typed object, strictly.
func readConfig(t *testing.T, path string, into any) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, path))
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	objs, err := parseObjects(data)
	if err != nil || len(objs) != 1 {
		t.Fatalf("%s: want one object, got %d (%v)", path, len(objs), err)
	}
	decodeStrict(t, objs[0], into)
}

// checkManagerRules asserts the ClusterRole's rules are exactly config/rbac/role.yaml's (the
// generated role) and returns the role.
func checkManagerRules(t *testing.T, r rendered) rbacv1.ClusterRole {
	t.Helper()
	var want rbacv1.ClusterRole
	readConfig(t, "config/rbac/role.yaml", &want)
	got := managerClusterRole(t, r)
	if !reflect.DeepEqual(got.Rules, want.Rules) {
		g, _ := yaml.Marshal(got.Rules)
		w, _ := yaml.Marshal(want.Rules)
		t.Errorf("ClusterRole %s rules differ from config/rbac/role.yaml (run make manifests):\ngot:\n%s\nwant:\n%s", got.Name, g, w)
	}
	return got
}

// managerClusterRole returns the manager's ClusterRole: the one that is neither the
// metrics-reader role nor a reviewer role of the approvals.
func managerClusterRole(t *testing.T, r rendered) rbacv1.ClusterRole {
	t.Helper()
	var found []rbacv1.ClusterRole
	for _, o := range r.ofKind("ClusterRole") {
		var cr rbacv1.ClusterRole
		decodeStrict(t, o, &cr)
		if !strings.HasSuffix(cr.Name, "metrics-reader") && !isApprovalsObject(t, o) {
			found = append(found, cr)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want one manager ClusterRole, got %d", len(found))
	}
	return found[0]
}

// checkMetricsReader asserts the metrics-reader ClusterRole grants GET on /metrics only.
func checkMetricsReader(t *testing.T, r rendered) {
	t.Helper()
	var want rbacv1.ClusterRole
	readConfig(t, "config/rbac/metrics_reader_role.yaml", &want)
	for _, o := range r.ofKind("ClusterRole") {
		var cr rbacv1.ClusterRole
		decodeStrict(t, o, &cr)
		if strings.HasSuffix(cr.Name, "metrics-reader") {
			if !reflect.DeepEqual(cr.Rules, want.Rules) {
				t.Errorf("ClusterRole %s rules %+v, want config/rbac/metrics_reader_role.yaml's %+v", cr.Name, cr.Rules, want.Rules)
			}
			return
		}
	}
	t.Errorf("no metrics-reader ClusterRole")
}

// checkLeaderElectionRules asserts the leader-election Role's rules are
// config/rbac/leader_election_role.yaml's.
func checkLeaderElectionRules(t *testing.T, r rendered) {
	t.Helper()
	var want, got rbacv1.Role
	readConfig(t, "config/rbac/leader_election_role.yaml", &want)
	r.one(t, "Role", &got)
	if !reflect.DeepEqual(got.Rules, want.Rules) {
		t.Errorf("leader election Role rules %+v differ from config/rbac/leader_election_role.yaml %+v", got.Rules, want.Rules)
	}
}

// checkBindings asserts the ClusterRoleBinding (and the leader-election RoleBinding, when
// present) bind the rendered roles to the manager's ServiceAccount.
func checkBindings(t *testing.T, r rendered, role rbacv1.ClusterRole, saName, saNamespace string) {
	t.Helper()
	var crb rbacv1.ClusterRoleBinding
	r.one(t, "ClusterRoleBinding", &crb)
	if crb.RoleRef.Kind != "ClusterRole" || crb.RoleRef.Name != role.Name {
		t.Errorf("ClusterRoleBinding roleRef = %+v, want ClusterRole %s", crb.RoleRef, role.Name)
	}
	wantSubject := []rbacv1.Subject{{Kind: "ServiceAccount", Name: saName, Namespace: saNamespace}}
	if !reflect.DeepEqual(crb.Subjects, wantSubject) {
		t.Errorf("ClusterRoleBinding subjects = %+v, want %+v", crb.Subjects, wantSubject)
	}
	if rbs := r.ofKind("RoleBinding"); len(rbs) > 0 {
		var rb rbacv1.RoleBinding
		var role rbacv1.Role
		r.one(t, "RoleBinding", &rb)
		r.one(t, "Role", &role)
		if rb.RoleRef.Kind != "Role" || rb.RoleRef.Name != role.Name || rb.Namespace != role.Namespace {
			t.Errorf("RoleBinding %s/%s roleRef = %+v, want Role %s/%s", rb.Namespace, rb.Name, rb.RoleRef, role.Namespace, role.Name)
		}
		if !reflect.DeepEqual(rb.Subjects, wantSubject) {
			t.Errorf("RoleBinding subjects = %+v, want %+v", rb.Subjects, wantSubject)
		}
	}
}

// crdFiles returns config/crd/bases' CRDs as unstructured objects, by name.
func crdFiles(t *testing.T) map[string]*unstructured.Unstructured {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root, "config", "crd", "bases", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no CRDs in config/crd/bases (%v)", err)
	}
	out := map[string]*unstructured.Unstructured{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatalf("read %s: %v", f, err)
		}
		objs, err := parseObjects(data)
		if err != nil || len(objs) != 1 {
			t.Fatalf("%s: want one CRD, got %d (%v)", f, len(objs), err)
		}
		out[objs[0].GetName()] = objs[0]
	}
	return out
}

// checkCRDs asserts the rendering carries exactly config/crd/bases' CRDs, unchanged.
func checkCRDs(t *testing.T, r rendered) {
	t.Helper()
	compareCRDs(t, r, func(o *unstructured.Unstructured) any { return o.Object })
}

// checkCRDSpecs asserts the rendering carries config/crd/bases' CRDs with unchanged names and
// specs (kustomize adds labels).
func checkCRDSpecs(t *testing.T, r rendered) {
	t.Helper()
	compareCRDs(t, r, func(o *unstructured.Unstructured) any { return o.Object["spec"] })
}

// compareCRDs compares the rendered CRDs with config/crd/bases' by name, through part.
func compareCRDs(t *testing.T, r rendered, part func(*unstructured.Unstructured) any) {
	t.Helper()
	want := crdFiles(t)
	got := r.ofKind("CustomResourceDefinition")
	if len(got) != len(want) {
		t.Errorf("rendered %d CRDs, config/crd/bases has %d", len(got), len(want))
	}
	for _, crd := range got {
		w, ok := want[crd.GetName()]
		if !ok {
			t.Errorf("rendered CRD %s is not in config/crd/bases", crd.GetName())
			continue
		}
		if !reflect.DeepEqual(part(crd), part(w)) {
			t.Errorf("rendered CRD %s differs from config/crd/bases (run make manifests)", crd.GetName())
		}
	}
}

// checkGuardrails asserts the rendering carries the guardrail policies of
// config/components/guardrails/policies.yaml (same specs, possibly renamed), a binding per
// policy using the parameters ConfigMap ns/params, and that ConfigMap; or none of them.
func checkGuardrails(t *testing.T, r rendered, want bool, ns, params string) {
	t.Helper()
	// The approvals policy is a ValidatingAdmissionPolicy too (checkApprovals); the guardrails
	// are the ones named "<anything>-guardrails-<what>".
	guardrail := func(kind string) []*unstructured.Unstructured {
		var out []*unstructured.Unstructured
		for _, o := range r.ofKind(kind) {
			if strings.Contains(o.GetName(), "guardrails-") {
				out = append(out, o)
			}
		}
		return out
	}
	policies, bindings := guardrail("ValidatingAdmissionPolicy"), guardrail("ValidatingAdmissionPolicyBinding")
	if !want {
		if len(policies)+len(bindings) != 0 {
			t.Errorf("guardrails rendered although not enabled: %d policies, %d bindings", len(policies), len(bindings))
		}
		return
	}
	data, err := os.ReadFile(filepath.Join(root, "config", "components", "guardrails", "policies.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	sources, err := parseObjects(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(policies) != len(sources) || len(bindings) != len(sources) {
		t.Fatalf("%d policies and %d bindings, want %d of each", len(policies), len(bindings), len(sources))
	}
	specs := map[string]any{}
	for _, p := range policies {
		specs[p.GetName()] = p.Object["spec"]
	}
	// Renderings rename and reorder the policies; "<anything>-guardrails-<what>" pairs with
	// the source of the same <what>.
	what := func(name string) string {
		_, w, _ := strings.Cut(name, "guardrails-")
		return w
	}
	for _, src := range sources {
		var got *unstructured.Unstructured
		for _, p := range policies {
			if what(p.GetName()) == what(src.GetName()) {
				got = p
			}
		}
		switch {
		case got == nil:
			t.Errorf("no rendered policy for %s", src.GetName())
		case !reflect.DeepEqual(got.Object["spec"], src.Object["spec"]):
			t.Errorf("policy %s spec differs from config/components/guardrails/policies.yaml's %s (run make helm-sync)", got.GetName(), src.GetName())
		}
	}
	for _, b := range bindings {
		var vb admissionregistrationv1.ValidatingAdmissionPolicyBinding
		decodeStrict(t, b, &vb)
		if _, ok := specs[vb.Spec.PolicyName]; !ok {
			t.Errorf("binding %s names policy %q, which is not rendered", vb.Name, vb.Spec.PolicyName)
		}
		if p := vb.Spec.ParamRef; p == nil || p.Name != params || p.Namespace != ns ||
			p.ParameterNotFoundAction == nil || *p.ParameterNotFoundAction != admissionregistrationv1.DenyAction {
			t.Errorf("binding %s paramRef = %+v, want %s/%s with parameterNotFoundAction Deny", vb.Name, vb.Spec.ParamRef, ns, params)
		}
	}
	found := false
	for _, o := range r.ofKind("ConfigMap") {
		if o.GetName() == params && o.GetNamespace() == ns {
			found = true
			var cm corev1.ConfigMap
			decodeStrict(t, o, &cm)
			for _, k := range []string{"allowedRuntimeClasses", "allowedImageRegistries", "forbiddenPodLabelPrefixes",
				"forbiddenPodAnnotationPrefixes", "maxCPU", "maxMemory", "allowGPU", "forbiddenCIDRs", "forbiddenHosts",
				"protectedNamespaceLabelPrefixes", "namespaceLabelAdminGroups"} {
				if _, ok := cm.Data[k]; !ok {
					t.Errorf("guardrail parameters lack %s", k)
				}
			}
		}
	}
	if !found {
		t.Errorf("no guardrail parameters ConfigMap %s/%s", ns, params)
	}
}

// approvalsReference is `kustomize build config/approvals`: the admission policy that verifies
// approvers, its binding and the reviewer ClusterRoles the chart must render the same.
var approvalsReference = sync.OnceValues(func() ([]*unstructured.Unstructured, error) {
	return kustomizeBuild("config/approvals")
})

// approvalsWhat is the part of an approvals object's name a rendering keeps: kustomize's
// "openshell-<what>" is the chart's "<fullname>-<what>".
func approvalsWhat(name string) string {
	return strings.TrimPrefix(name, "openshell-")
}

// isApprovalsObject tells whether o is one of config/approvals' objects, under any prefix.
func isApprovalsObject(t *testing.T, o *unstructured.Unstructured) bool {
	t.Helper()
	ref, err := approvalsReference()
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range ref {
		if o.GetKind() == w.GetKind() && strings.HasSuffix(o.GetName(), "-"+approvalsWhat(w.GetName())) {
			return true
		}
	}
	return false
}

// checkApprovals asserts the rendering carries config/approvals' objects as kustomize renders
// them, named <prefix>-<what>: the ValidatingAdmissionPolicy with the same spec, its binding
// with the same spec naming the renamed policy, and the reviewer ClusterRoles with the same
// rules and aggregation labels; or none of them.
func checkApprovals(t *testing.T, r rendered, want bool, prefix string) {
	t.Helper()
	ref, err := approvalsReference()
	if err != nil {
		t.Fatal(err)
	}
	var got []*unstructured.Unstructured
	for _, o := range r.objs {
		if isApprovalsObject(t, o) {
			got = append(got, o)
		}
	}
	if !want {
		for _, o := range got {
			t.Errorf("approvals %s %s rendered although not enabled", o.GetKind(), o.GetName())
		}
		return
	}
	kinds := map[string]int{}
	for _, w := range ref {
		kinds[w.GetKind()]++
	}
	if !reflect.DeepEqual(kinds, map[string]int{"ValidatingAdmissionPolicy": 1, "ValidatingAdmissionPolicyBinding": 1, "ClusterRole": 2}) {
		t.Fatalf("kustomize build config/approvals renders %v, want the policy, its binding and two ClusterRoles", kinds)
	}
	if len(got) != len(ref) {
		t.Errorf("%d approvals objects rendered, config/approvals has %d", len(got), len(ref))
	}
	// aggregation are the labels that matter to the API server (the aggregate-to-* ones);
	// the others (app.kubernetes.io/*, helm.sh/chart) are each packaging's own.
	aggregation := func(o *unstructured.Unstructured) map[string]string {
		out := map[string]string{}
		for k, v := range o.GetLabels() {
			if strings.HasPrefix(k, "rbac.authorization.k8s.io/") {
				out[k] = v
			}
		}
		return out
	}
	for _, w := range ref {
		name := prefix + "-" + approvalsWhat(w.GetName())
		var g *unstructured.Unstructured
		for _, o := range got {
			if o.GetKind() == w.GetKind() && o.GetName() == name {
				g = o
			}
		}
		if g == nil {
			t.Errorf("no %s %s (config/approvals' %s)", w.GetKind(), name, w.GetName())
			continue
		}
		if g.GetNamespace() != "" {
			t.Errorf("%s %s has namespace %q", g.GetKind(), name, g.GetNamespace())
		}
		switch w.GetKind() {
		case "ValidatingAdmissionPolicy":
			var gp, wp admissionregistrationv1.ValidatingAdmissionPolicy
			decodeStrict(t, g, &gp)
			decodeStrict(t, w, &wp)
			if !reflect.DeepEqual(gp.Spec, wp.Spec) {
				t.Errorf("policy %s spec differs from config/approvals' %s (run make helm-sync)", name, w.GetName())
			}
		case "ValidatingAdmissionPolicyBinding":
			var gb, wb admissionregistrationv1.ValidatingAdmissionPolicyBinding
			decodeStrict(t, g, &gb)
			decodeStrict(t, w, &wb)
			if wantPolicy := prefix + "-" + approvalsWhat(wb.Spec.PolicyName); gb.Spec.PolicyName != wantPolicy {
				t.Errorf("binding %s names policy %q, want %q", name, gb.Spec.PolicyName, wantPolicy)
			}
			gb.Spec.PolicyName, wb.Spec.PolicyName = "", ""
			if !reflect.DeepEqual(gb.Spec, wb.Spec) {
				t.Errorf("binding %s spec %+v differs from config/approvals' %s %+v (run make helm-sync)", name, gb.Spec, w.GetName(), wb.Spec)
			}
		case "ClusterRole":
			var gr, wr rbacv1.ClusterRole
			decodeStrict(t, g, &gr)
			decodeStrict(t, w, &wr)
			if !reflect.DeepEqual(gr.Rules, wr.Rules) || !reflect.DeepEqual(gr.AggregationRule, wr.AggregationRule) {
				t.Errorf("ClusterRole %s rules differ from config/approvals' %s (run make helm-sync)", name, w.GetName())
			}
			if ga, wa := aggregation(g), aggregation(w); !reflect.DeepEqual(ga, wa) {
				t.Errorf("ClusterRole %s labels %v, want config/approvals' %v", name, ga, wa)
			}
		}
	}
}
