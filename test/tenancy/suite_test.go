// Package tenancy tests the operator as an attacker would: tenants are impersonated users
// whose only permissions are a namespace Role (what a platform grants a team), against a real
// kube-apiserver (envtest) that enforces RBAC and admission policies, and the gateway
// simulator over mutual TLS. The manager is built as cmd/main.go builds it (internal/managercfg)
// and runs as its ServiceAccount with exactly the RBAC config/rbac grants.
package tenancy

import (
	"context"
	"crypto/tls"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
	"github.com/openshell-operator/openshell-operator/internal/controller"
	"github.com/openshell-operator/openshell-operator/internal/devenv"
	"github.com/openshell-operator/openshell-operator/internal/gateway"
	"github.com/openshell-operator/openshell-operator/internal/gatewaysim"
	"github.com/openshell-operator/openshell-operator/internal/managercfg"
)

// operatorNS is where the operator runs and its cluster-wide references live.
const operatorNS = "openshell-system"

// clientTLS is the Secret in operatorNS with the simulator's client certificate.
const clientTLS = "openshell-client-tls"

var (
	testEnv *envtest.Environment
	// adminCfg is a cluster admin; admin is its client.
	adminCfg *rest.Config
	admin    client.Client
	// operatorCfg authenticates as the manager's ServiceAccount with config/rbac's roles.
	operatorCfg *rest.Config
	scheme      = runtime.NewScheme()
	root        = filepath.Join("..", "..")
	sim         *gatewaysim.Simulator
	certs       *gatewaysim.CertBundle
	simAddr     string
	// gw is a direct gateway client: what the test inspects, and how a foreign actor with
	// gateway access squats names.
	gw *gateway.Client
	// metricsURL is the operator's secure metrics endpoint.
	metricsURL string
	timeout    = 30 * time.Second
	interval   = 100 * time.Millisecond
)

func TestTenancy(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Tenancy (impersonated tenants on envtest)")
}

var _ = BeforeSuite(func() {
	ctrl.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))
	Expect(clientgoscheme.AddToScheme(scheme)).To(Succeed())
	Expect(v1alpha1.AddToScheme(scheme)).To(Succeed())
	testEnv = &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(root, "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
	}
	var err error
	adminCfg, err = testEnv.Start()
	Expect(err).NotTo(HaveOccurred())
	// Cleanups run last-registered first: the API server stops after the manager and the
	// simulator registered below.
	DeferCleanup(func() { Expect(testEnv.Stop()).To(Succeed()) })
	admin, err = client.New(adminCfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())
	ctx := context.Background()
	operatorCfg, err = devenv.InstallOperatorRBAC(ctx, adminCfg, root, operatorNS)
	Expect(err).NotTo(HaveOccurred())

	certs, err = gatewaysim.GenerateCertBundle()
	Expect(err).NotTo(HaveOccurred())
	sim = gatewaysim.New(gatewaysim.Options{ProvisioningDelay: 100 * time.Millisecond, DeletionDelay: 100 * time.Millisecond, PolicyPollInterval: 100 * time.Millisecond})
	simAddr, err = sim.Start("127.0.0.1:0", certs)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(sim.Stop)
	gw, err = gateway.FromCredentials(simAddr, certs.CACert, certs.ClientCert, certs.ClientKey)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(gw.Close)
	Expect(admin.Create(ctx, tlsSecret(operatorNS, clientTLS))).To(Succeed())

	// The manager as the binary builds it: secure metrics, uncached Secrets, the namespace-fair
	// API budget, the cluster resource namespace, as the operator's ServiceAccount.
	addr, err := devenv.FreeLoopbackAddr()
	Expect(err).NotTo(HaveOccurred())
	metricsURL = "https://" + addr + "/metrics"
	scope := managercfg.Scope{ClusterResourceNamespaces: []string{operatorNS}}
	mgr, err := ctrl.NewManager(operatorCfg, ctrl.Options{
		Scheme:                 scheme,
		Cache:                  managercfg.CacheOptions(scope),
		Client:                 managercfg.ClientOptions(),
		NewClient:              managercfg.NewClient(managercfg.DefaultKubeAPIQPS, managercfg.DefaultKubeAPIBurst),
		Metrics:                managercfg.MetricsOptions(addr, true, ""),
		HealthProbeBindAddress: "0",
	})
	Expect(err).NotTo(HaveOccurred())
	Expect(controller.SetupAll(mgr, controller.Options{
		ProbeInterval: 2 * time.Second, Retry: time.Second, Transitional: 200 * time.Millisecond, RouteResync: 500 * time.Millisecond,
		Observer: controller.ObserverOptions{Resync: time.Second}, Backoff: controller.Backoff{Base: 100 * time.Millisecond, Max: 2 * time.Second},
		ClusterResourceNamespaces: scope.ClusterResourceNamespaces,
	})).To(Succeed())
	mctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer GinkgoRecover()
		defer close(done)
		Expect(mgr.Start(mctx)).To(Succeed())
	}()
	// Stop the manager before the API server goes away.
	DeferCleanup(func() { cancel(); <-done })
	Eventually(func() error {
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // self-signed test endpoint
		resp, err := hc.Get(metricsURL)                                                                        //nolint:noctx // readiness poll
		if err == nil {
			_ = resp.Body.Close()
		}
		return err
	}).WithTimeout(timeout).WithPolling(interval).Should(Succeed())
})

// tlsSecret is a Secret with the simulator's client certificate.
func tlsSecret(ns, name string) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{"ca.crt": certs.CACert, "tls.crt": certs.ClientCert, "tls.key": certs.ClientKey},
	}
}

// namespace creates a namespace with labels.
func namespace(ctx context.Context, name string, labels map[string]string) {
	GinkgoHelper()
	Expect(admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}})).To(Succeed())
}

// tenant returns a client for user, who holds a Role granting every verb on every resource
// (status subresources included) of the openshell.dev and core API groups in namespace ns,
// and nothing else: the threat model of docs/security.md. The namespace must exist.
func tenant(ctx context.Context, user, ns string) client.Client {
	GinkgoHelper()
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: user + "-tenant"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{v1alpha1.GroupVersion.Group, ""},
			Resources: []string{"*"}, Verbs: []string{"*"}}},
	}
	Expect(admin.Create(ctx, role)).To(Succeed())
	Expect(admin.Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: user + "-tenant"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}},
	})).To(Succeed())
	// The API server's RBAC authorizer learns of new bindings through an informer: wait until
	// it does, so a tenant's first request is judged by its Role, not by the informer's lag.
	Eventually(func(g Gomega) {
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User: user, Groups: []string{"system:authenticated"},
			ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: ns, Verb: "create",
				Group: v1alpha1.GroupVersion.Group, Resource: "sandboxes"}}}
		g.Expect(admin.Create(ctx, sar)).To(Succeed())
		g.Expect(sar.Status.Allowed).To(BeTrue(), "the RoleBinding of %s is not in effect yet", user)
	}).WithTimeout(30 * time.Second).WithPolling(50 * time.Millisecond).Should(Succeed())
	cfg := rest.CopyConfig(adminCfg)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: []string{"system:authenticated"}}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())
	return c
}
