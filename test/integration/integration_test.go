package integration

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"google.golang.org/grpc/codes"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
	datamodelv1 "github.com/openshell-operator/openshell-operator/gen/openshell/datamodel/v1"
	"github.com/openshell-operator/openshell-operator/internal/controller"
	"github.com/openshell-operator/openshell-operator/internal/gateway"
	"github.com/openshell-operator/openshell-operator/internal/gatewaysim"
)

// condition returns a condition of obj, fetched fresh.
func condition(obj client.Object, conds func() []metav1.Condition, t string) func(g Gomega) *metav1.Condition {
	return func(g Gomega) *metav1.Condition {
		g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(obj), obj)).To(Succeed())
		return meta.FindStatusCondition(conds(), t)
	}
}

func haveStatusReason(status metav1.ConditionStatus, reason string) OmegaMatcher {
	return And(Not(BeNil()), WithTransform(func(c *metav1.Condition) string { return string(c.Status) + "/" + c.Reason }, Equal(string(status)+"/"+reason)))
}

var nsCounter int

func newNamespace() string {
	nsCounter++
	name := fmt.Sprintf("it-%d", nsCounter)
	Expect(k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})).To(Succeed())
	return name
}

func credentialsSecret(ns, name string, data map[string]string) *corev1.Secret {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: map[string][]byte{}}
	for k, v := range data {
		s.Data[k] = []byte(v)
	}
	return s
}

func provider(ns, name, secret string, keys ...string) *v1alpha1.Provider {
	return &v1alpha1.Provider{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.ProviderSpec{
			GatewayRef:           v1alpha1.GatewayReference{Name: "default"},
			Type:                 "openai",
			CredentialsSecretRef: v1alpha1.CredentialsSecretReference{Name: secret, Keys: keys},
			DeletionPolicy:       v1alpha1.DeletionPolicyDelete,
		},
	}
}

var _ = Describe("GatewayConnection", func() {
	It("becomes Ready with the gateway's version over mTLS", func() {
		gc := &v1alpha1.GatewayConnection{ObjectMeta: metav1.ObjectMeta{Name: "default"}}
		// Ready for the current generation: another spec may just have edited "default"
		// (patchConnection), and Ready=True of the generation before is not this answer.
		Eventually(func(g Gomega) {
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(gc), gc)).To(Succeed())
			g.Expect(gc.Status.ObservedGeneration).To(Equal(gc.Generation))
			g.Expect(meta.FindStatusCondition(gc.Status.Conditions, v1alpha1.ConditionReady)).To(haveStatusReason(metav1.ConditionTrue, v1alpha1.ReasonReady))
		}, timeout, interval).Should(Succeed())
		Expect(gc.Status.GatewayVersion).To(Equal(gatewaysim.Version))
		Expect(gc.Status.CertificateNotAfter).NotTo(BeNil())
	})

	It("says which Secret is missing, then recovers when it appears", func() {
		gc := connection("missing-secret", "not-there")
		Expect(k8s.Create(ctx, gc)).To(Succeed())
		Eventually(condition(gc, func() []metav1.Condition { return gc.Status.Conditions }, v1alpha1.ConditionStalled), timeout, interval).
			Should(haveStatusReason(metav1.ConditionTrue, v1alpha1.ReasonSecretNotFound))
		Expect(meta.FindStatusCondition(gc.Status.Conditions, v1alpha1.ConditionReady).Message).To(ContainSubstring("openshell-system/not-there"))
		Expect(k8s.Create(ctx, tlsSecret("not-there", certs.ClientCert, certs.ClientKey))).To(Succeed())
		Eventually(condition(gc, func() []metav1.Condition { return gc.Status.Conditions }, v1alpha1.ConditionReady), timeout, interval).
			Should(haveStatusReason(metav1.ConditionTrue, v1alpha1.ReasonReady))
	})

	It("reports a missing key and an expired certificate with its expiry, never key material", func() {
		noKey := tlsSecret("no-key", certs.ClientCert, nil)
		delete(noKey.Data, "tls.key")
		noKey.Type = corev1.SecretTypeOpaque
		Expect(k8s.Create(ctx, noKey)).To(Succeed())
		gc := connection("no-key", "no-key")
		Expect(k8s.Create(ctx, gc)).To(Succeed())
		Eventually(condition(gc, func() []metav1.Condition { return gc.Status.Conditions }, v1alpha1.ConditionReady), timeout, interval).
			Should(haveStatusReason(metav1.ConditionFalse, v1alpha1.ReasonSecretKeyMissing))
		Expect(meta.FindStatusCondition(gc.Status.Conditions, v1alpha1.ConditionReady).Message).To(ContainSubstring(`"tls.key"`))

		expiry := time.Now().Add(-time.Hour).Truncate(time.Second)
		cert, key, err := certs.IssueClient("expired-client", expiry)
		Expect(err).NotTo(HaveOccurred())
		Expect(k8s.Create(ctx, tlsSecret("expired", cert, key))).To(Succeed())
		exp := connection("expired", "expired")
		Expect(k8s.Create(ctx, exp)).To(Succeed())
		Eventually(condition(exp, func() []metav1.Condition { return exp.Status.Conditions }, v1alpha1.ConditionStalled), timeout, interval).
			Should(haveStatusReason(metav1.ConditionTrue, v1alpha1.ReasonCertificateExpired))
		msg := meta.FindStatusCondition(exp.Status.Conditions, v1alpha1.ConditionReady).Message
		Expect(msg).To(ContainSubstring(expiry.UTC().Format(time.RFC3339)))
		Expect(msg).NotTo(ContainSubstring("PRIVATE KEY"))
	})

	It("follows its Secret: the next TLS handshake presents a rotated certificate, with no restart or re-dial", func() {
		// The connection goes through a relay that terminates TLS as the gateway does, so the
		// spec sees which client certificate each handshake presents and can cut connections.
		relay, err := startTLSRelay(certs, simAddr)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(relay.Close)
		original, err := certSerial(certs.ClientCert)
		Expect(err).NotTo(HaveOccurred())

		Expect(k8s.Create(ctx, tlsSecret("rotating", certs.ClientCert, certs.ClientKey))).To(Succeed())
		gc := connection("rotating", "rotating")
		gc.Spec.Endpoint = relay.Addr()
		Expect(k8s.Create(ctx, gc)).To(Succeed())
		Eventually(condition(gc, func() []metav1.Condition { return gc.Status.Conditions }, v1alpha1.ConditionReady), timeout, interval).
			Should(haveStatusReason(metav1.ConditionTrue, v1alpha1.ReasonReady))
		firstExpiry := gc.Status.CertificateNotAfter.Time
		Expect(relay.Serials()).To(HaveExactElements(original))

		later := time.Now().Add(48 * time.Hour).Truncate(time.Second)
		cert, key, err := certs.IssueClient("rotated-client", later)
		Expect(err).NotTo(HaveOccurred())
		rotated, err := certSerial(cert)
		Expect(err).NotTo(HaveOccurred())
		secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: systemNS, Name: "rotating"}}
		Expect(edit(secret, func() {
			secret.Data["tls.crt"], secret.Data["tls.key"] = cert, key
		})).To(Succeed())
		Eventually(func() time.Time {
			_ = k8s.Get(ctx, client.ObjectKeyFromObject(gc), gc)
			if gc.Status.CertificateNotAfter == nil {
				return time.Time{}
			}
			return gc.Status.CertificateNotAfter.Time
		}, timeout, interval).Should(BeTemporally("==", later))
		Expect(firstExpiry).NotTo(BeTemporally("==", later))

		// Taking the new pair re-dials nothing: the open connection keeps carrying the probes
		// with the certificate it was opened with.
		sent := relay.Sent(0)
		Eventually(func() int64 { return relay.Sent(0) }, timeout, interval).Should(BeNumerically(">", sent))
		Expect(relay.Serials()).To(HaveExactElements(original))

		// Cut the connection, as a gateway restart would: the handshake that follows presents
		// the rotated certificate, and the connection is Ready over it.
		relay.DropAll()
		Eventually(relay.Serials, timeout, interval).Should(ContainElement(rotated))
		Expect(relay.Serials()[0]).To(Equal(original))
		Expect(relay.Serials()[1:]).To(HaveEach(rotated), "every handshake after the rotation presents the new certificate")
		Eventually(func() int64 { return relay.Sent(len(relay.Serials()) - 1) }, timeout, interval).Should(BeNumerically(">", 0))
		Eventually(condition(gc, func() []metav1.Condition { return gc.Status.Conditions }, v1alpha1.ConditionReady), timeout, interval).
			Should(haveStatusReason(metav1.ConditionTrue, v1alpha1.ReasonReady))

		// A certificate from another CA is refused by the gateway at the next handshake; the
		// operator does not fall back to anything silently.
		other, err := gatewaysim.GenerateCertBundle()
		Expect(err).NotTo(HaveOccurred())
		Expect(edit(secret, func() {
			secret.Data["ca.crt"], secret.Data["tls.crt"], secret.Data["tls.key"] = other.CACert, other.ClientCert, other.ClientKey
		})).To(Succeed())
		Eventually(condition(gc, func() []metav1.Condition { return gc.Status.Conditions }, v1alpha1.ConditionReady), timeout, interval).
			Should(haveStatusReason(metav1.ConditionFalse, v1alpha1.ReasonCertificateInvalid))
		Expect(meta.FindStatusCondition(gc.Status.Conditions, v1alpha1.ConditionReady).Message).To(ContainSubstring("ca.crt does not verify"))
	})

	It("reports an unreachable gateway and recovers by itself", func() {
		gc := &v1alpha1.GatewayConnection{ObjectMeta: metav1.ObjectMeta{Name: "default"}}
		sim.InjectError("Health", codes.Unavailable, "gateway restarting", -1)
		DeferCleanup(sim.ClearFaults)
		Eventually(condition(gc, func() []metav1.Condition { return gc.Status.Conditions }, v1alpha1.ConditionReconciling), timeout, interval).
			Should(haveStatusReason(metav1.ConditionTrue, v1alpha1.ReasonGatewayUnavailable))
		Expect(meta.FindStatusCondition(gc.Status.Conditions, v1alpha1.ConditionReady).Message).To(ContainSubstring("gateway restarting"))
		sim.ClearFaults()
		Eventually(condition(gc, func() []metav1.Condition { return gc.Status.Conditions }, v1alpha1.ConditionReady), timeout, interval).
			Should(haveStatusReason(metav1.ConditionTrue, v1alpha1.ReasonReady))
	})
})

var _ = Describe("Provider", func() {
	readyProvider := func(p *v1alpha1.Provider) {
		Eventually(condition(p, func() []metav1.Condition { return p.Status.Conditions }, v1alpha1.ConditionReady), timeout, interval).
			Should(haveStatusReason(metav1.ConditionTrue, v1alpha1.ReasonReady))
	}

	It("creates an owned gateway provider, rotates credentials and never leaks them", func() {
		ns := newNamespace()
		Expect(k8s.Create(ctx, credentialsSecret(ns, "creds", map[string]string{"OPENAI_API_KEY": "sk-first", "UNUSED": "x"}))).To(Succeed())
		p := provider(ns, "openai", "creds", "OPENAI_API_KEY")
		Expect(k8s.Create(ctx, p)).To(Succeed())
		readyProvider(p)
		name := controller.GatewayName(ns, "openai")
		Expect(p.Status.GatewayName).To(Equal(name))
		Expect(p.Status.ProviderID).NotTo(BeEmpty())
		Expect(p.Status.CredentialKeys).To(Equal([]string{"OPENAI_API_KEY"}))
		Expect(p.Status.CredentialsHash).To(HaveLen(64))
		stored, ok := sim.ProviderCredentials(name)
		Expect(ok).To(BeTrue())
		Expect(stored).To(Equal(map[string]string{"OPENAI_API_KEY": "sk-first"}))
		live, err := gw.Providers.Get(ctx, name)
		Expect(err).NotTo(HaveOccurred())
		Expect(live.GetMetadata().GetLabels()).To(HaveKeyWithValue(v1alpha1.LabelNamespace, ns))
		Expect(live.GetMetadata().GetLabels()).To(HaveKeyWithValue(v1alpha1.LabelUID, string(p.UID)))

		secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "creds"}}
		Expect(edit(secret, func() {
			secret.Data["OPENAI_API_KEY"] = []byte("sk-rotated")
		})).To(Succeed())
		Eventually(func() map[string]string { m, _ := sim.ProviderCredentials(name); return m }, timeout, interval).
			Should(Equal(map[string]string{"OPENAI_API_KEY": "sk-rotated"}))

		// No credential value in status or events.
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(p), p)).To(Succeed())
		Expect(fmt.Sprintf("%+v", p.Status)).NotTo(ContainSubstring("sk-"))
		events := &corev1.EventList{}
		Expect(k8s.List(ctx, events, client.InNamespace(ns))).To(Succeed())
		for _, e := range events.Items {
			Expect(e.Message).NotTo(ContainSubstring("sk-"))
		}
	})

	It("keeps same-named providers of two namespaces apart", func() {
		a, b := newNamespace(), newNamespace()
		for _, ns := range []string{a, b} {
			Expect(k8s.Create(ctx, credentialsSecret(ns, "creds", map[string]string{"KEY_" + ns[3:]: "v"}))).To(Succeed())
			p := provider(ns, "shared", "creds")
			Expect(k8s.Create(ctx, p)).To(Succeed())
			readyProvider(p)
		}
		Expect(controller.GatewayName(a, "shared")).NotTo(Equal(controller.GatewayName(b, "shared")))
		for _, ns := range []string{a, b} {
			_, ok := sim.ProviderCredentials(controller.GatewayName(ns, "shared"))
			Expect(ok).To(BeTrue())
		}
	})

	It("reports a foreign gateway provider as Conflict and leaves it untouched", func() {
		ns := newNamespace()
		name := controller.GatewayName(ns, "taken")
		_, err := gw.Providers.Create(ctx, &datamodelv1.Provider{Metadata: &datamodelv1.ObjectMeta{Name: name}, Type: "github", Credentials: map[string]string{"GITHUB_TOKEN": "theirs"}})
		Expect(err).NotTo(HaveOccurred())
		Expect(k8s.Create(ctx, credentialsSecret(ns, "creds", map[string]string{"OPENAI_API_KEY": "ours"}))).To(Succeed())
		p := provider(ns, "taken", "creds")
		Expect(k8s.Create(ctx, p)).To(Succeed())
		Eventually(condition(p, func() []metav1.Condition { return p.Status.Conditions }, v1alpha1.ConditionStalled), timeout, interval).
			Should(haveStatusReason(metav1.ConditionTrue, v1alpha1.ReasonConflict))
		stored, _ := sim.ProviderCredentials(name)
		Expect(stored).To(Equal(map[string]string{"GITHUB_TOKEN": "theirs"}))
		// Deleting our resource must not delete their provider.
		Expect(k8s.Delete(ctx, p)).To(Succeed())
		Eventually(func() bool { return apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKeyFromObject(p), p)) }, timeout, interval).Should(BeTrue())
		_, ok := sim.ProviderCredentials(name)
		Expect(ok).To(BeTrue())
	})

	It("reports a missing Secret key clearly and makes no gateway call", func() {
		ns := newNamespace()
		Expect(k8s.Create(ctx, credentialsSecret(ns, "creds", map[string]string{"OTHER": "v"}))).To(Succeed())
		before := sim.CallCount("CreateProvider") + sim.CallCount("UpdateProvider")
		p := provider(ns, "nokey", "creds", "OPENAI_API_KEY")
		Expect(k8s.Create(ctx, p)).To(Succeed())
		Eventually(condition(p, func() []metav1.Condition { return p.Status.Conditions }, v1alpha1.ConditionStalled), timeout, interval).
			Should(haveStatusReason(metav1.ConditionTrue, v1alpha1.ReasonSecretKeyMissing))
		Expect(meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionReady).Message).To(ContainSubstring(`"OPENAI_API_KEY"`))
		Consistently(func() int { return sim.CallCount("CreateProvider") + sim.CallCount("UpdateProvider") }, 2*time.Second, 200*time.Millisecond).Should(Equal(before))
		_, ok := sim.ProviderCredentials(controller.GatewayName(ns, "nokey"))
		Expect(ok).To(BeFalse())
	})

	It("heals a provider deleted on the gateway and blocks deletion while a Sandbox uses it", func() {
		ns := newNamespace()
		Expect(k8s.Create(ctx, credentialsSecret(ns, "creds", map[string]string{"OPENAI_API_KEY": "k"}))).To(Succeed())
		p := provider(ns, "heal", "creds")
		Expect(k8s.Create(ctx, p)).To(Succeed())
		readyProvider(p)
		name := controller.GatewayName(ns, "heal")
		firstID := p.Status.ProviderID
		deleted, err := gw.Providers.Delete(ctx, name)
		Expect(err).NotTo(HaveOccurred())
		Expect(deleted).To(BeTrue())
		// Nothing touches the Provider or its Secret: the observation loop's provider list
		// sees the gateway provider gone and enqueues it.
		Eventually(func() string {
			_ = k8s.Get(ctx, client.ObjectKeyFromObject(p), p)
			return p.Status.ProviderID
		}, timeout, interval).ShouldNot(Equal(firstID))
		_, ok := sim.ProviderCredentials(name)
		Expect(ok).To(BeTrue())

		sb := &v1alpha1.Sandbox{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "user"}, Spec: v1alpha1.SandboxSpec{Providers: []string{"heal"}}}
		Expect(k8s.Create(ctx, sb)).To(Succeed())
		Expect(k8s.Delete(ctx, p)).To(Succeed())
		Eventually(condition(p, func() []metav1.Condition { return p.Status.Conditions }, v1alpha1.ConditionReady), timeout, interval).
			Should(haveStatusReason(metav1.ConditionFalse, v1alpha1.ReasonInUse))
		Expect(meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionReady).Message).To(ContainSubstring("user"))
		_, ok = sim.ProviderCredentials(name)
		Expect(ok).To(BeTrue())

		Expect(k8s.Delete(ctx, sb)).To(Succeed())
		Eventually(func() bool { return apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKeyFromObject(p), p)) }, timeout, interval).Should(BeTrue())
		Eventually(func() bool { _, ok := sim.ProviderCredentials(name); return ok }, timeout, interval).Should(BeFalse())
	})

	It("does nothing once converged: no status writes, no mutating gateway calls", func() {
		ns := newNamespace()
		Expect(k8s.Create(ctx, credentialsSecret(ns, "creds", map[string]string{"OPENAI_API_KEY": "k"}))).To(Succeed())
		p := provider(ns, "quiet", "creds")
		Expect(k8s.Create(ctx, p)).To(Succeed())
		readyProvider(p)
		gc := &v1alpha1.GatewayConnection{ObjectMeta: metav1.ObjectMeta{Name: "default"}}
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(gc), gc)).To(Succeed())
		time.Sleep(time.Second) // let in-flight reconciles of other specs settle
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(p), p)).To(Succeed())
		pRV, gcRV := p.ResourceVersion, gc.ResourceVersion
		mutatingBefore := sim.CallCount("CreateProvider") + sim.CallCount("UpdateProvider") + sim.CallCount("DeleteProvider")
		// Several probe intervals (2s) of the connection.
		Consistently(func(g Gomega) {
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(p), p)).To(Succeed())
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(gc), gc)).To(Succeed())
			g.Expect(p.ResourceVersion).To(Equal(pRV))
			g.Expect(gc.ResourceVersion).To(Equal(gcRV))
		}, 6*time.Second, 500*time.Millisecond).Should(Succeed())
		Expect(sim.CallCount("CreateProvider") + sim.CallCount("UpdateProvider") + sim.CallCount("DeleteProvider")).To(Equal(mutatingBefore))
	})

	It("waits with DependencyNotReady while its connection is missing", func() {
		ns := newNamespace()
		Expect(k8s.Create(ctx, credentialsSecret(ns, "creds", map[string]string{"OPENAI_API_KEY": "k"}))).To(Succeed())
		p := provider(ns, "orphaned", "creds")
		p.Spec.GatewayRef.Name = "no-such-connection"
		Expect(k8s.Create(ctx, p)).To(Succeed())
		Eventually(condition(p, func() []metav1.Condition { return p.Status.Conditions }, v1alpha1.ConditionReconciling), timeout, interval).
			Should(haveStatusReason(metav1.ConditionTrue, v1alpha1.ReasonDependencyNotReady))
		Expect(meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionStalled)).To(BeNil())
	})
})

var _ = Describe("Sandbox through the whole manager", func() {
	It("resolves its Provider through the real connection registry and becomes Ready", func() {
		ns := newNamespace()
		Expect(k8s.Create(ctx, credentialsSecret(ns, "creds", map[string]string{"OPENAI_API_KEY": "k"}))).To(Succeed())
		p := provider(ns, "openai", "creds")
		Expect(k8s.Create(ctx, p)).To(Succeed())
		sb := &v1alpha1.Sandbox{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "agent"},
			Spec: v1alpha1.SandboxSpec{
				GatewayRef: v1alpha1.GatewayReference{Name: "default"}, Image: "busybox", Providers: []string{"openai"},
				UpdateStrategy: v1alpha1.UpdateStrategyRecreate, DeletionPolicy: v1alpha1.DeletionPolicyDelete,
			},
		}
		Expect(k8s.Create(ctx, sb)).To(Succeed())
		Eventually(condition(sb, func() []metav1.Condition { return sb.Status.Conditions }, v1alpha1.ConditionReady), timeout, interval).
			Should(haveStatusReason(metav1.ConditionTrue, v1alpha1.ReasonReady))
		Expect(sb.Status.Phase).To(Equal(v1alpha1.SandboxPhaseReady))
		live, err := gw.Sandboxes.Get(ctx, sb.Status.GatewayName)
		Expect(err).NotTo(HaveOccurred())
		Expect(live.GetMetadata().GetId()).To(Equal(sb.Status.SandboxID))
		Expect(live.GetSpec().GetProviders()).To(Equal([]string{controller.GatewayName(ns, "openai")}))

		Expect(k8s.Delete(ctx, sb)).To(Succeed())
		Eventually(func() bool { return apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKeyFromObject(sb), sb)) }, timeout, interval).Should(BeTrue())
		_, err = gw.Sandboxes.Get(ctx, live.GetMetadata().GetName())
		Expect(gateway.IsNotFound(err)).To(BeTrue(), "the finalizer is released only once the gateway reports the sandbox gone")
	})
})
