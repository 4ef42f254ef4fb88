// Package instances runs two operator instances on one API server, each for its own group of
// namespaces (--watch-namespaces), its own GatewayConnections (--gateway-connection-selector)
// and its own leader-election Lease, with the narrowed RBAC a namespace-scoped install grants:
// a ClusterRole for what is cluster-scoped only, Roles in the served namespaces. It shows each
// works with those permissions and that neither writes the other's objects.
package instances

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
	"github.com/openshell-operator/openshell-operator/internal/controller"
	"github.com/openshell-operator/openshell-operator/internal/devenv"
	"github.com/openshell-operator/openshell-operator/internal/gatewaysim"
	"github.com/openshell-operator/openshell-operator/internal/managercfg"
)

// clusterScoped are the resources a namespace-scoped install keeps in its ClusterRole (the
// chart's templates/rbac.yaml splits config/rbac/role.yaml the same way).
var clusterScoped = []string{"gatewayconnections", "gatewayconnections/status", "namespaces", "tokenreviews", "subjectaccessreviews"}

var (
	testEnv  *envtest.Environment
	adminCfg *rest.Config
	admin    client.Client
	scheme   = runtime.NewScheme()
	root     = filepath.Join("..", "..")
	certs    *gatewaysim.CertBundle
	simAddr  string
	timeout  = 30 * time.Second
	interval = 100 * time.Millisecond
)

func TestInstances(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Two namespace-scoped operator instances on one API server")
}

// instance is one operator install.
type instance struct {
	name string
	// system is its own namespace (Lease, TLS Secret: its cluster resource namespace).
	system string
	// tenants are the namespaces it serves.
	tenants []string
}

// selector is the label a connection carries to be served by this instance.
func (i instance) label() map[string]string {
	return map[string]string{"openshell.dev/operator-instance": i.name}
}

// userAgent is the instance's client identity: the field manager of everything it writes.
func (i instance) userAgent() string { return i.name + "-operator" }

// adminAgent is the platform administrator's field manager.
const adminAgent = "platform-admin"

var instances = []instance{
	{name: "team-a", system: "openshell-team-a", tenants: []string{"team-a1", "team-a2"}},
	{name: "team-b", system: "openshell-team-b", tenants: []string{"team-b1"}},
}

var _ = BeforeSuite(func() {
	ctrl.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))
	Expect(clientgoscheme.AddToScheme(scheme)).To(Succeed())
	Expect(v1alpha1.AddToScheme(scheme)).To(Succeed())
	testEnv = &envtest.Environment{CRDDirectoryPaths: []string{filepath.Join(root, "config", "crd", "bases")}, ErrorIfCRDPathMissing: true}
	var err error
	adminCfg, err = testEnv.Start()
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { Expect(testEnv.Stop()).To(Succeed()) })
	adminCfg.UserAgent = adminAgent
	admin, err = client.New(adminCfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())

	certs, err = gatewaysim.GenerateCertBundle()
	Expect(err).NotTo(HaveOccurred())
	sim := gatewaysim.New(gatewaysim.Options{ProvisioningDelay: 100 * time.Millisecond, DeletionDelay: 100 * time.Millisecond})
	simAddr, err = sim.Start("127.0.0.1:0", certs)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(sim.Stop)

	ctx := context.Background()
	for _, in := range instances {
		startInstance(ctx, in)
	}
})

// splitRole splits config/rbac/role.yaml into the cluster-scoped and the namespaced rules.
func splitRole() (clusterRules, namespacedRules []rbacv1.PolicyRule) {
	GinkgoHelper()
	objs, err := devenv.ReadRBAC(root, "unused")
	Expect(err).NotTo(HaveOccurred())
	for _, o := range objs {
		if o.GetKind() != "ClusterRole" || o.GetName() != "manager-role" {
			continue
		}
		var role rbacv1.ClusterRole
		Expect(runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &role)).To(Succeed())
		for _, r := range role.Rules {
			c, n := r.DeepCopy(), r.DeepCopy()
			c.Resources, n.Resources = nil, nil
			for _, res := range r.Resources {
				if slices.Contains(clusterScoped, res) {
					c.Resources = append(c.Resources, res)
				} else {
					n.Resources = append(n.Resources, res)
				}
			}
			if len(c.Resources) > 0 {
				clusterRules = append(clusterRules, *c)
			}
			if len(n.Resources) > 0 {
				namespacedRules = append(namespacedRules, *n)
			}
		}
	}
	Expect(clusterRules).NotTo(BeEmpty())
	Expect(namespacedRules).NotTo(BeEmpty())
	return clusterRules, namespacedRules
}

// startInstance creates the instance's namespaces, ServiceAccount and narrowed RBAC, its TLS
// Secret and GatewayConnection, and runs its manager as that ServiceAccount.
func startInstance(ctx context.Context, in instance) {
	GinkgoHelper()
	clusterRules, namespacedRules := splitRole()
	sa := rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Namespace: in.system, Name: "operator"}
	for _, ns := range append([]string{in.system}, in.tenants...) {
		Expect(admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
		Expect(admin.Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "operator"}, Rules: namespacedRules})).To(Succeed())
		Expect(admin.Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "operator"},
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "operator"}, Subjects: []rbacv1.Subject{sa}})).To(Succeed())
	}
	Expect(admin.Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: in.system, Name: "leader-election"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{coordinationv1.GroupName}, Resources: []string{"leases"},
			Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete"}}}})).To(Succeed())
	Expect(admin.Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: in.system, Name: "leader-election"},
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "leader-election"}, Subjects: []rbacv1.Subject{sa}})).To(Succeed())
	Expect(admin.Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: in.name + "-operator"}, Rules: clusterRules})).To(Succeed())
	Expect(admin.Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: in.name + "-operator"},
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: in.name + "-operator"}, Subjects: []rbacv1.Subject{sa}})).To(Succeed())

	Expect(admin.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: in.system, Name: "client-tls"}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{"ca.crt": certs.CACert, "tls.crt": certs.ClientCert, "tls.key": certs.ClientKey}})).To(Succeed())
	Expect(admin.Create(ctx, &v1alpha1.GatewayConnection{
		ObjectMeta: metav1.ObjectMeta{Name: in.name, Labels: in.label()},
		Spec: v1alpha1.GatewayConnectionSpec{Endpoint: simAddr,
			TLS: v1alpha1.GatewayTLS{SecretRef: v1alpha1.NamespacedObjectReference{Namespace: in.system, Name: "client-tls"}}},
	})).To(Succeed())

	cfg, err := devenv.ServiceAccountConfig(ctx, adminCfg, in.system, "operator")
	Expect(err).NotTo(HaveOccurred())
	cfg.UserAgent = in.userAgent()
	sel, err := managercfg.ParseGatewayConnectionSelector("openshell.dev/operator-instance=" + in.name)
	Expect(err).NotTo(HaveOccurred())
	scope := managercfg.Scope{WatchNamespaces: in.tenants, ClusterResourceNamespaces: []string{in.system}, GatewayConnectionSelector: sel}
	leaseID, err := managercfg.LeaderElectionID(in.name + ".openshell.dev")
	Expect(err).NotTo(HaveOccurred())
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme: scheme, Cache: managercfg.CacheOptions(scope), Client: managercfg.ClientOptions(),
		Metrics: managercfg.MetricsOptions("0", false, ""), HealthProbeBindAddress: "0",
		LeaderElection: true, LeaderElectionID: leaseID, LeaderElectionNamespace: in.system,
		// Two managers in one test process share controller-runtime's metric names; in a
		// cluster each instance is its own process.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	Expect(err).NotTo(HaveOccurred())
	Expect(controller.SetupAll(mgr, controller.Options{ProbeInterval: 2 * time.Second, Retry: time.Second,
		Transitional: 200 * time.Millisecond, ClusterResourceNamespaces: scope.ClusterResourceNamespaces,
		Backoff: controller.Backoff{Base: 100 * time.Millisecond, Max: 2 * time.Second}})).To(Succeed())
	mctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer GinkgoRecover()
		defer close(done)
		Expect(mgr.Start(mctx)).To(Succeed())
	}()
	DeferCleanup(func() { cancel(); <-done })
}

func readyOf(ctx context.Context, obj interface {
	client.Object
	GetCommonStatus() *v1alpha1.CommonStatus
}) func(Gomega) *metav1.Condition {
	return func(g Gomega) *metav1.Condition {
		g.Expect(admin.Get(ctx, client.ObjectKeyFromObject(obj), obj)).To(Succeed())
		c := meta.FindStatusCondition(obj.GetCommonStatus().Conditions, v1alpha1.ConditionReady)
		g.Expect(c).NotTo(BeNil())
		return c
	}
}

// writers are the field managers that wrote obj.
func writers(obj client.Object) []string {
	var out []string
	for _, mf := range obj.GetManagedFields() {
		if !slices.Contains(out, mf.Manager) {
			out = append(out, mf.Manager)
		}
	}
	return out
}

var _ = Describe("two namespace-scoped instances", func() {
	It("each reconciles only its own namespaces and connection, with the narrowed RBAC", func(ctx SpecContext) {
		var sandboxes []*v1alpha1.Sandbox
		for _, in := range instances {
			for _, ns := range in.tenants {
				sb := &v1alpha1.Sandbox{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "agent"},
					Spec: v1alpha1.SandboxSpec{GatewayRef: v1alpha1.GatewayReference{Name: in.name}}}
				Expect(admin.Create(ctx, sb)).To(Succeed())
				sandboxes = append(sandboxes, sb)
			}
		}
		for i, in := range instances {
			gc := &v1alpha1.GatewayConnection{ObjectMeta: metav1.ObjectMeta{Name: in.name}}
			Eventually(readyOf(ctx, gc)).WithContext(ctx).WithTimeout(timeout).WithPolling(interval).Should(HaveField("Status", metav1.ConditionTrue))
			// Only this instance wrote the cluster-scoped connection's status.
			Expect(writers(gc)).To(ConsistOf(adminAgent, in.userAgent()), "connection %s", in.name)
			other := instances[1-i]
			Expect(writers(gc)).NotTo(ContainElement(other.userAgent()))

			lease := &coordinationv1.Lease{}
			Eventually(func() error {
				return admin.Get(ctx, client.ObjectKey{Namespace: in.system, Name: in.name + ".openshell.dev"}, lease)
			}).WithContext(ctx).WithTimeout(timeout).WithPolling(interval).Should(Succeed())
		}
		for _, sb := range sandboxes {
			Eventually(readyOf(ctx, sb)).WithContext(ctx).WithTimeout(timeout).WithPolling(interval).Should(HaveField("Status", metav1.ConditionTrue))
			owner := instances[0]
			if sb.Spec.GatewayRef.Name == instances[1].name {
				owner = instances[1]
			}
			// The creator's entry survives the operator's finalizer update, which sends the
			// object as its cache holds it: without managedFields (managercfg.CacheOptions).
			Expect(writers(sb)).To(ContainElements(adminAgent, owner.userAgent()), "sandbox %s/%s", sb.Namespace, sb.Name)
			Expect(sb.Finalizers).To(ContainElement(v1alpha1.Finalizer), "sandbox %s/%s", sb.Namespace, sb.Name)
			for _, in := range instances {
				if in.name != owner.name {
					Expect(writers(sb)).NotTo(ContainElement(in.userAgent()), "sandbox %s/%s", sb.Namespace, sb.Name)
				}
			}
		}
	})

	It("a tenant of one instance cannot reach the other instance's gateway", func(ctx SpecContext) {
		// team-b1 is served by team-b, which does not serve the team-a connection.
		sb := &v1alpha1.Sandbox{ObjectMeta: metav1.ObjectMeta{Namespace: "team-b1", Name: "cross"},
			Spec: v1alpha1.SandboxSpec{GatewayRef: v1alpha1.GatewayReference{Name: "team-a"}}}
		Expect(admin.Create(ctx, sb)).To(Succeed())
		Eventually(readyOf(ctx, sb)).WithContext(ctx).WithTimeout(timeout).WithPolling(interval).Should(And(
			HaveField("Reason", v1alpha1.ReasonDependencyNotReady),
			HaveField("Message", ContainSubstring(fmt.Sprintf("GatewayConnection %q", "team-a")))))
		Expect(writers(sb)).NotTo(ContainElement(instances[0].userAgent()))
	})

	It("an unserved namespace is left alone by both", func(ctx SpecContext) {
		Expect(admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "nobody"}})).To(Succeed())
		sb := &v1alpha1.Sandbox{ObjectMeta: metav1.ObjectMeta{Namespace: "nobody", Name: "agent"},
			Spec: v1alpha1.SandboxSpec{GatewayRef: v1alpha1.GatewayReference{Name: "team-a"}}}
		Expect(admin.Create(ctx, sb)).To(Succeed())
		Consistently(func(g Gomega) {
			g.Expect(admin.Get(ctx, client.ObjectKeyFromObject(sb), sb)).To(Succeed())
			g.Expect(sb.Finalizers).To(BeEmpty())
			g.Expect(sb.Status.Conditions).To(BeEmpty())
		}).WithContext(ctx).WithTimeout(2 * time.Second).WithPolling(interval).Should(Succeed())
	})
})
