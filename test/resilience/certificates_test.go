package resilience

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"google.golang.org/grpc"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
	inferencev1 "github.com/openshell-operator/openshell-operator/gen/openshell/inference/v1"
	openshellv1 "github.com/openshell-operator/openshell-operator/gen/openshell/v1"
	"github.com/openshell-operator/openshell-operator/internal/gatewaysim"
)

// connectTo creates a GatewayConnection to addr with a TLS Secret of its own.
func connectTo(name, addr string, ca, cert, key []byte, serverName string) *v1alpha1.GatewayConnection {
	Expect(k8s.Create(ctx, tlsSecret(name+"-tls", ca, cert, key))).To(Succeed())
	gc := &v1alpha1.GatewayConnection{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1alpha1.GatewayConnectionSpec{
			Endpoint: addr, Timeout: &metav1.Duration{Duration: time.Second},
			TLS: v1alpha1.GatewayTLS{SecretRef: v1alpha1.NamespacedObjectReference{Namespace: systemNS, Name: name + "-tls"}, ServerName: serverName},
		},
	}
	Expect(k8s.Create(ctx, gc)).To(Succeed())
	return gc
}

func startSim(certs *gatewaysim.CertBundle) string {
	sim := gatewaysim.New(gatewaysim.Options{})
	addr, err := sim.Start("127.0.0.1:0", certs)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(sim.Stop)
	return addr
}

var _ = Describe("Certificates", func() {
	var op *operator
	BeforeEach(func() { op = startOperator(nil) })
	AfterEach(func() { op.stop() })

	It("refuses a server certificate for another name unless serverName says so", func() {
		certs, err := gatewaysim.GenerateCertBundle("gateway.internal")
		Expect(err).NotTo(HaveOccurred())
		addr := startSim(certs)
		gc := connectTo("cert-name", addr, certs.CACert, certs.ClientCert, certs.ClientKey, "")
		Eventually(connectionReady(gc), timeout, interval).Should(haveReason(metav1.ConditionFalse, v1alpha1.ReasonCertificateInvalid))
		Expect(meta(gc.Status.Conditions).Message).To(And(ContainSubstring("another name"), ContainSubstring("serverName")))

		Expect(edit(gc, func() { gc.Spec.TLS.ServerName = "gateway.internal" })).To(Succeed())
		Eventually(connectionReady(gc), timeout, interval).Should(haveReason(metav1.ConditionTrue, v1alpha1.ReasonReady))
	})

	It("says so when the Secret's CA does not verify the gateway", func() {
		certs, err := gatewaysim.GenerateCertBundle()
		Expect(err).NotTo(HaveOccurred())
		other, err := gatewaysim.GenerateCertBundle()
		Expect(err).NotTo(HaveOccurred())
		addr := startSim(certs)
		gc := connectTo("cert-wrong-ca", addr, other.CACert, certs.ClientCert, certs.ClientKey, "")
		Eventually(connectionReady(gc), timeout, interval).Should(haveReason(metav1.ConditionFalse, v1alpha1.ReasonCertificateInvalid))
		Expect(meta(gc.Status.Conditions).Message).To(And(ContainSubstring("ca.crt does not verify"), ContainSubstring("unknown authority")))
	})

	It("says so when the gateway refuses a client certificate from another CA", func() {
		certs, err := gatewaysim.GenerateCertBundle()
		Expect(err).NotTo(HaveOccurred())
		other, err := gatewaysim.GenerateCertBundle()
		Expect(err).NotTo(HaveOccurred())
		addr := startSim(certs)
		gc := connectTo("cert-wrong-client", addr, certs.CACert, other.ClientCert, other.ClientKey, "")
		Eventually(connectionReady(gc), timeout, interval).Should(haveReason(metav1.ConditionFalse, v1alpha1.ReasonAuthenticationFailed))
		Expect(meta(gc.Status.Conditions).Message).To(ContainSubstring("refused the client certificate"))
	})

	It("never falls back to plaintext", func() {
		certs, err := gatewaysim.GenerateCertBundle()
		Expect(err).NotTo(HaveOccurred())
		addr := freeAddr()
		lis, err := netListen(addr)
		Expect(err).NotTo(HaveOccurred())
		plain := grpc.NewServer()
		sim := gatewaysim.New(gatewaysim.Options{})
		openshellv1.RegisterOpenShellServer(plain, sim)
		inferencev1.RegisterInferenceServer(plain, sim)
		go func() { _ = plain.Serve(lis) }()
		DeferCleanup(plain.Stop)

		gc := connectTo("plaintext", addr, certs.CACert, certs.ClientCert, certs.ClientKey, "")
		Eventually(connectionReady(gc), timeout, interval).Should(haveReason(metav1.ConditionFalse, v1alpha1.ReasonGatewayUnavailable))
		Expect(meta(gc.Status.Conditions).Message).To(ContainSubstring("does not speak TLS"))
		Consistently(func() int { return sim.CallCount("Health") }, 2*time.Second, interval).Should(BeZero())
	})
})
