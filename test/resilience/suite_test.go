// Package resilience breaks things on purpose: gateway faults, Kubernetes faults,
// certificates and credential hygiene, each against envtest and the simulator over mTLS with
// operators started and stopped per spec (docs/reliability.md maps failures to specs).
package resilience

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
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
	cfg      *rest.Config
	scheme   = runtime.NewScheme()
	k8s      client.Client
	ctx      context.Context
	cancel   context.CancelFunc
	logs     = &syncBuffer{}
	timeout  = 30 * time.Second
	interval = 100 * time.Millisecond
)

func TestResilience(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Resilience (faults, certificates, hygiene)")
}

var _ = BeforeSuite(func() {
	// Every operator log line goes to the spec output and to a buffer the hygiene spec reads.
	ctrl.SetLogger(zap.New(zap.WriteTo(&teeWriter{logs}), zap.UseDevMode(true)))
	ctx, cancel = context.WithCancel(context.Background())
	testEnv = &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
	}
	var err error
	cfg, err = testEnv.Start()
	Expect(err).NotTo(HaveOccurred())
	Expect(clientgoscheme.AddToScheme(scheme)).To(Succeed())
	Expect(v1alpha1.AddToScheme(scheme)).To(Succeed())
	k8s, err = client.New(cfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())
	Expect(k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: systemNS}})).To(Succeed())
})

var _ = AfterSuite(func() {
	cancel()
	Expect(testEnv.Stop()).To(Succeed())
})

// operator is one manager process's worth of controllers, started and stopped by a spec.
type operator struct {
	mgr    ctrl.Manager
	cancel context.CancelFunc
	done   chan error
}

// operatorOptions are the fast intervals every spec runs with.
func operatorOptions() controller.Options {
	return controller.Options{ProbeInterval: time.Second, Retry: 500 * time.Millisecond, Transitional: 200 * time.Millisecond,
		RouteResync: time.Second, Observer: controller.ObserverOptions{Resync: time.Second, PageSize: 5},
		Backoff: controller.Backoff{Base: 100 * time.Millisecond, Max: 2 * time.Second}}
}

// startOperator starts a manager with every controller; mutate adjusts its options (leader
// election). Several run in one process, so controller name validation is off.
func startOperator(mutate func(*ctrl.Options)) *operator {
	opts := ctrl.Options{Scheme: scheme, Metrics: metricsserver.Options{BindAddress: "0"},
		Controller: config.Controller{SkipNameValidation: ptr.To(true)}}
	if mutate != nil {
		mutate(&opts)
	}
	mgr, err := ctrl.NewManager(cfg, opts)
	Expect(err).NotTo(HaveOccurred())
	Expect(controller.SetupAll(mgr, operatorOptions())).To(Succeed())
	octx, ocancel := context.WithCancel(ctx)
	o := &operator{mgr: mgr, cancel: ocancel, done: make(chan error, 1)}
	go func() { o.done <- mgr.Start(octx) }()
	return o
}

// stop stops the manager and waits for it; an operator that exited early failed the spec.
func (o *operator) stop() {
	o.cancel()
	Eventually(o.done, timeout).Should(Receive(BeNil()))
}

// running reports that the manager has not exited (no crash, no fatal error).
func (o *operator) running() bool {
	select {
	case err := <-o.done:
		o.done <- err
		return false
	default:
		return true
	}
}

// gatewayFixture is one simulator with its PKI, TLS Secret and GatewayConnection.
type gatewayFixture struct {
	name  string
	certs *gatewaysim.CertBundle
	sim   *gatewaysim.Simulator
	addr  string
	// client reads the gateway as a test would, with the same client certificate.
	client *gateway.Client
}

var fixtureCounter int

// newGateway prepares a fixture; start decides whether its simulator runs yet.
func newGateway(start bool) *gatewayFixture {
	fixtureCounter++
	f := &gatewayFixture{name: fmt.Sprintf("gw-%d", fixtureCounter)}
	var err error
	f.certs, err = gatewaysim.GenerateCertBundle()
	Expect(err).NotTo(HaveOccurred())
	f.addr = freeAddr()
	if start {
		f.start()
	}
	f.client, err = gateway.FromCredentials(f.addr, f.certs.CACert, f.certs.ClientCert, f.certs.ClientKey)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() {
		_ = f.client.Close()
		if f.sim != nil {
			f.sim.Stop()
		}
	})
	Expect(k8s.Create(ctx, tlsSecret(f.name+"-tls", f.certs.CACert, f.certs.ClientCert, f.certs.ClientKey))).To(Succeed())
	Expect(k8s.Create(ctx, &v1alpha1.GatewayConnection{
		ObjectMeta: metav1.ObjectMeta{Name: f.name},
		Spec: v1alpha1.GatewayConnectionSpec{
			Endpoint: f.addr, Timeout: &metav1.Duration{Duration: time.Second},
			TLS: v1alpha1.GatewayTLS{SecretRef: v1alpha1.NamespacedObjectReference{Namespace: systemNS, Name: f.name + "-tls"}},
		},
	})).To(Succeed())
	return f
}

func (f *gatewayFixture) start() {
	f.sim = gatewaysim.New(gatewaysim.Options{ProvisioningDelay: 200 * time.Millisecond, DeletionDelay: 200 * time.Millisecond, PolicyPollInterval: 200 * time.Millisecond})
	addr, err := f.sim.Start(f.addr, f.certs)
	Expect(err).NotTo(HaveOccurred())
	Expect(addr).To(Equal(f.addr))
}

// sandboxCount is the number of sandboxes on the gateway.
func (f *gatewayFixture) sandboxCount() int {
	all, err := f.client.Sandboxes.ListAll(ctx, "", 100)
	Expect(err).NotTo(HaveOccurred())
	return len(all)
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	defer func() { _ = l.Close() }()
	return l.Addr().String()
}

func tlsSecret(name string, ca, cert, key []byte) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: systemNS, Name: name},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{"ca.crt": ca, "tls.crt": cert, "tls.key": key},
	}
}

var nsCounter int

func newNamespace() string {
	nsCounter++
	name := fmt.Sprintf("rs-%d", nsCounter)
	Expect(k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})).To(Succeed())
	return name
}

func sandbox(ns, name, gatewayName string) *v1alpha1.Sandbox {
	return &v1alpha1.Sandbox{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.SandboxSpec{
			GatewayRef: v1alpha1.GatewayReference{Name: gatewayName}, Image: "busybox",
			UpdateStrategy: v1alpha1.UpdateStrategyRecreate, DeletionPolicy: v1alpha1.DeletionPolicyDelete,
		},
	}
}

// readyCondition reads an object's Ready condition.
func readyCondition(obj client.Object, conds func() []metav1.Condition) func() *metav1.Condition {
	return func() *metav1.Condition {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			return nil
		}
		for i, c := range conds() {
			if c.Type == v1alpha1.ConditionReady {
				return &conds()[i]
			}
		}
		return nil
	}
}

func sandboxReady(sb *v1alpha1.Sandbox) func() *metav1.Condition {
	return readyCondition(sb, func() []metav1.Condition { return sb.Status.Conditions })
}

func connectionReady(gc *v1alpha1.GatewayConnection) func() *metav1.Condition {
	return readyCondition(gc, func() []metav1.Condition { return gc.Status.Conditions })
}

func haveReason(status metav1.ConditionStatus, reason string) OmegaMatcher {
	return And(Not(BeNil()), WithTransform(func(c *metav1.Condition) string { return string(c.Status) + "/" + c.Reason }, Equal(string(status)+"/"+reason)))
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// teeWriter writes to the spec output and to a buffer.
type teeWriter struct{ buf *syncBuffer }

func (t *teeWriter) Write(p []byte) (int, error) {
	_, _ = t.buf.Write(p)
	return GinkgoWriter.Write(p)
}

func credentials(ns, name, value string) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Data: map[string][]byte{"OPENAI_API_KEY": []byte(value)}}
}

func provider(ns, name, secret, gatewayName string) *v1alpha1.Provider {
	return &v1alpha1.Provider{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.ProviderSpec{
			GatewayRef: v1alpha1.GatewayReference{Name: gatewayName}, Type: "openai",
			CredentialsSecretRef: v1alpha1.CredentialsSecretReference{Name: secret},
			DeletionPolicy:       v1alpha1.DeletionPolicyDelete,
		},
	}
}

func netListen(addr string) (net.Listener, error) { return net.Listen("tcp", addr) }

// edit applies mutate to the latest version of obj and updates it, retrying on conflicts.
func edit(obj client.Object, mutate func()) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			return err
		}
		mutate()
		return k8s.Update(ctx, obj)
	})
}
