// Package integration runs the whole manager (every controller, via controller.SetupAll)
// against a real kube-apiserver (envtest) and the gateway simulator over mutual TLS.
package integration

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/util/retry"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
	"github.com/openshell-operator/openshell-operator/internal/controller"
	"github.com/openshell-operator/openshell-operator/internal/gateway"
	"github.com/openshell-operator/openshell-operator/internal/gatewaysim"
)

const systemNS = "openshell-system"

var (
	testEnv  *envtest.Environment
	k8s      client.Client
	sim      *gatewaysim.Simulator
	certs    *gatewaysim.CertBundle
	simAddr  string
	gw       *gateway.Client
	ctx      context.Context
	cancel   context.CancelFunc
	timeout  = 30 * time.Second
	interval = 100 * time.Millisecond
)

func TestIntegration(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Manager integration (envtest + simulator over mTLS)")
}

var _ = BeforeSuite(func() {
	ctrl.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))
	ctx, cancel = context.WithCancel(context.Background())
	testEnv = &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
	}
	cfg, err := testEnv.Start()
	Expect(err).NotTo(HaveOccurred())
	scheme := runtime.NewScheme()
	Expect(clientgoscheme.AddToScheme(scheme)).To(Succeed())
	Expect(v1alpha1.AddToScheme(scheme)).To(Succeed())
	k8s, err = client.New(cfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())

	certs, err = gatewaysim.GenerateCertBundle()
	Expect(err).NotTo(HaveOccurred())
	sim = gatewaysim.New(gatewaysim.Options{ProvisioningDelay: 200 * time.Millisecond, DeletionDelay: 200 * time.Millisecond, PolicyPollInterval: 200 * time.Millisecond})
	simAddr, err = sim.Start("127.0.0.1:0", certs)
	Expect(err).NotTo(HaveOccurred())
	gw, err = gateway.FromCredentials(simAddr, certs.CACert, certs.ClientCert, certs.ClientKey)
	Expect(err).NotTo(HaveOccurred())

	Expect(k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: systemNS}})).To(Succeed())
	Expect(k8s.Create(ctx, tlsSecret("openshell-client-tls", certs.ClientCert, certs.ClientKey))).To(Succeed())
	Expect(k8s.Create(ctx, connection("default", "openshell-client-tls"))).To(Succeed())

	mgr, err := ctrl.NewManager(cfg, ctrl.Options{Scheme: scheme, Metrics: metricsserver.Options{BindAddress: "0"}})
	Expect(err).NotTo(HaveOccurred())
	Expect(controller.SetupAll(mgr, controller.Options{ProbeInterval: 2 * time.Second, Retry: time.Second, Transitional: 200 * time.Millisecond, RouteResync: 500 * time.Millisecond,
		Observer: controller.ObserverOptions{Resync: time.Second, PageSize: 5}, Backoff: controller.Backoff{Base: 100 * time.Millisecond, Max: 2 * time.Second}})).To(Succeed())
	go func() {
		defer GinkgoRecover()
		Expect(mgr.Start(ctx)).To(Succeed())
	}()
})

var _ = AfterSuite(func() {
	cancel()
	if gw != nil {
		_ = gw.Close()
	}
	if sim != nil {
		sim.Stop()
	}
	Expect(testEnv.Stop()).To(Succeed())
})

func tlsSecret(name string, cert, key []byte) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: systemNS, Name: name},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{"ca.crt": certs.CACert, "tls.crt": cert, "tls.key": key},
	}
}

func connection(name, secret string) *v1alpha1.GatewayConnection {
	return &v1alpha1.GatewayConnection{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1alpha1.GatewayConnectionSpec{
			Endpoint: simAddr,
			TLS:      v1alpha1.GatewayTLS{SecretRef: v1alpha1.NamespacedObjectReference{Namespace: systemNS, Name: secret}},
			// These specs exercise routes from throwaway namespaces; test/tenancy covers who
			// may claim them.
			InferenceRoutes: &v1alpha1.InferenceRouteGrant{Namespaces: &v1alpha1.AllowedNamespaces{From: v1alpha1.NamespacesFromAll}},
		},
	}
}

// edit applies mutate to the latest version of obj and updates it, retrying on conflicts:
// controllers write status concurrently, which bumps the resourceVersion under a test.
func edit(obj client.Object, mutate func()) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			return err
		}
		mutate()
		return k8s.Update(ctx, obj)
	})
}

// patchConnection edits the suite's "default" GatewayConnection, retrying on conflicts.
func patchConnection(mutate func(*v1alpha1.GatewayConnection)) {
	Eventually(func() error {
		gc := &v1alpha1.GatewayConnection{}
		if err := k8s.Get(ctx, client.ObjectKey{Name: "default"}, gc); err != nil {
			return err
		}
		mutate(gc)
		return k8s.Update(ctx, gc)
	}, timeout, interval).Should(Succeed())
}
