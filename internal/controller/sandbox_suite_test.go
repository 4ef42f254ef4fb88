//go:build envtest

package controller

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
	"github.com/openshell-operator/openshell-operator/internal/gateway"
	"github.com/openshell-operator/openshell-operator/internal/gatewaysim"
)

// The Sandbox controller alone on envtest, against the simulator over mTLS, with a registry
// double that can take the connection down. The whole manager runs in test/integration; fast
// branch tests without any server are the *_unit_test.go files (make test-unit).

var (
	sbEnv    *envtest.Environment
	sbClient client.Client
	sbSim    *gatewaysim.Simulator
	sbGW     *gateway.Client
	sbReg    = &staticGateways{}
	sbCancel context.CancelFunc
)

// staticGateways is a registry test double: one named connection that can be marked not ready.
type staticGateways struct {
	mu     sync.Mutex
	client *gateway.Client
	down   bool
}

func (s *staticGateways) Get(name string) (gatewayAPI, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if name != v1alpha1.DefaultGatewayConnection || s.down || s.client == nil {
		return gatewayAPI{}, errors.New("connection not ready")
	}
	return apiOf(s.client), nil
}

func TestSandboxController(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Sandbox controller")
}

var _ = BeforeSuite(func() {
	logf.SetLogger(GinkgoLogr)
	sbEnv = &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
	}
	cfg, err := sbEnv.Start()
	Expect(err).NotTo(HaveOccurred())
	scheme := runtime.NewScheme()
	Expect(clientgoscheme.AddToScheme(scheme)).To(Succeed())
	Expect(v1alpha1.AddToScheme(scheme)).To(Succeed())
	sbClient, err = client.New(cfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())

	certs, err := gatewaysim.GenerateCertBundle()
	Expect(err).NotTo(HaveOccurred())
	sbSim = gatewaysim.New(gatewaysim.Options{
		ProvisioningDelay:  300 * time.Millisecond,
		DeletionDelay:      2 * time.Second,
		PolicyPollInterval: 300 * time.Millisecond,
	})
	addr, err := sbSim.Start("127.0.0.1:0", certs)
	Expect(err).NotTo(HaveOccurred())
	sbGW, err = gateway.FromCredentials(addr, certs.CACert, certs.ClientCert, certs.ClientKey)
	Expect(err).NotTo(HaveOccurred())
	sbReg.client = sbGW

	mgr, err := ctrl.NewManager(cfg, ctrl.Options{Scheme: scheme, Metrics: metricsserver.Options{BindAddress: "0"}})
	Expect(err).NotTo(HaveOccurred())
	Expect((&SandboxReconciler{
		Client:       mgr.GetClient(),
		Gateways:     sbReg,
		Recorder:     mgr.GetEventRecorderFor("sandbox-controller"), //nolint:staticcheck // core/v1 events
		Transitional: 300 * time.Millisecond,
		Resync:       time.Second, // gateway-side changes (ERROR, out-of-band delete) are seen by resync
	}).SetupWithManager(mgr)).To(Succeed())
	var ctx context.Context
	ctx, sbCancel = context.WithCancel(context.Background())
	go func() {
		defer GinkgoRecover()
		Expect(mgr.Start(ctx)).To(Succeed())
	}()
})

var _ = AfterSuite(func() {
	if sbCancel != nil {
		sbCancel()
	}
	if sbGW != nil {
		_ = sbGW.Close()
	}
	if sbSim != nil {
		sbSim.Stop()
	}
	if sbEnv != nil {
		Expect(sbEnv.Stop()).To(Succeed())
	}
})
