package tenancy

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
	datamodelv1 "github.com/openshell-operator/openshell-operator/gen/openshell/datamodel/v1"
	openshellv1 "github.com/openshell-operator/openshell-operator/gen/openshell/v1"
	"github.com/openshell-operator/openshell-operator/internal/controller"
	"github.com/openshell-operator/openshell-operator/internal/gateway"
)

// statusObject is any of the operator's kinds.
type statusObject interface {
	client.Object
	GetCommonStatus() *v1alpha1.CommonStatus
}

// readyAsSeenBy returns the Ready condition of obj as the tenant c reads it.
func readyAsSeenBy(ctx context.Context, c client.Client, obj statusObject) func(Gomega) *metav1.Condition {
	return func(g Gomega) *metav1.Condition {
		g.Expect(c.Get(ctx, client.ObjectKeyFromObject(obj), obj)).To(Succeed())
		cond := meta.FindStatusCondition(obj.GetCommonStatus().Conditions, v1alpha1.ConditionReady)
		g.Expect(cond).NotTo(BeNil(), "no Ready condition yet")
		return cond
	}
}

// withReason matches a Ready condition with status, reason and a message containing text.
func withReason(status metav1.ConditionStatus, reason, text string) OmegaMatcher {
	return And(
		HaveField("Status", status), HaveField("Reason", reason), HaveField("Message", ContainSubstring(text)))
}

// connection is a GatewayConnection to the simulator with the client Secret in operatorNS.
func connection(name string, mutate func(*v1alpha1.GatewayConnectionSpec)) *v1alpha1.GatewayConnection {
	gc := &v1alpha1.GatewayConnection{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1alpha1.GatewayConnectionSpec{
		Endpoint: simAddr,
		TLS:      v1alpha1.GatewayTLS{SecretRef: v1alpha1.NamespacedObjectReference{Namespace: operatorNS, Name: clientTLS}},
	}}
	if mutate != nil {
		mutate(&gc.Spec)
	}
	return gc
}

func namesSelector(names ...string) *v1alpha1.AllowedNamespaces {
	return &v1alpha1.AllowedNamespaces{From: v1alpha1.NamespacesFromSelector, Selector: &metav1.LabelSelector{
		MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpIn, Values: names}}}}
}

func sandbox(ns, name, gatewayRef string, providers ...string) *v1alpha1.Sandbox {
	return &v1alpha1.Sandbox{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: v1alpha1.SandboxSpec{
		GatewayRef: v1alpha1.GatewayReference{Name: gatewayRef}, Providers: providers}}
}

func provider(ns, name, gatewayRef, secret string) *v1alpha1.Provider {
	return &v1alpha1.Provider{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: v1alpha1.ProviderSpec{
		GatewayRef: v1alpha1.GatewayReference{Name: gatewayRef}, Type: "openai",
		CredentialsSecretRef: v1alpha1.CredentialsSecretReference{Name: secret}}}
}

func credentials(ns, name string) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		StringData: map[string]string{"OPENAI_API_KEY": "sk-" + ns}}
}

func route(ns, name, gatewayRef, providerRef string) *v1alpha1.InferenceRoute {
	return &v1alpha1.InferenceRoute{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: v1alpha1.InferenceRouteSpec{
		GatewayRef: v1alpha1.GatewayReference{Name: gatewayRef}, Route: "inference.local",
		ProviderRef: v1alpha1.LocalObjectReference{Name: providerRef}, Model: "gpt-4o-mini"}}
}

// noCallsNaming asserts the gateway never heard of the gateway name.
func noCallsNaming(name string) {
	GinkgoHelper()
	Expect(sim.CallsFor(name)).To(BeEmpty(), "gateway calls naming %s", name)
}

// restrictedLabel is the namespace label the "restricted" connection selects on; the
// namespace-label guardrail protects its prefix.
const restrictedLabel = "openshell.dev/gateway-restricted"

var _ = Describe("a tenant attacking the operator", func() {
	Describe("using a gateway its namespace is not admitted to", Ordered, func() {
		const ns = "team-foreign"
		var mallory client.Client
		sb := sandbox(ns, "probe", "restricted")
		gwName := controller.GatewayName(ns, "probe")

		BeforeAll(func(ctx SpecContext) {
			namespace(ctx, ns, nil)
			mallory = tenant(ctx, "mallory-foreign", ns)
			Expect(admin.Create(ctx, connection("restricted", func(s *v1alpha1.GatewayConnectionSpec) {
				s.Namespaces = &v1alpha1.AllowedNamespaces{From: v1alpha1.NamespacesFromSelector,
					Selector: &metav1.LabelSelector{MatchLabels: map[string]string{restrictedLabel: "yes"}}}
			}))).To(Succeed())
		})

		It("is refused before any gateway call, with a message naming only its own namespace", func(ctx SpecContext) {
			Expect(mallory.Create(ctx, sb)).To(Succeed())
			Eventually(readyAsSeenBy(ctx, mallory, sb)).WithContext(ctx).WithTimeout(timeout).WithPolling(interval).Should(withReason(
				metav1.ConditionFalse, v1alpha1.ReasonNamespaceNotAllowed,
				`GatewayConnection "restricted" does not admit namespace "team-foreign" (spec.namespaces); a platform administrator grants it`))
			Expect(meta.IsStatusConditionTrue(sb.Status.Conditions, v1alpha1.ConditionStalled)).To(BeTrue())
			Expect(sb.Finalizers).To(BeEmpty(), "no finalizer: nothing on a gateway to clean up")
			noCallsNaming(gwName)
		})

		It("cannot spoof its namespace's labels into the selector", func(ctx SpecContext) {
			// A Role on every core resource of the namespace covers the Namespace object itself:
			// without the namespace-label guardrail the tenant could set the label.
			installGuardrails(ctx)
			relabel := func(key, value string, opts ...client.UpdateOption) error {
				n := &corev1.Namespace{}
				Expect(mallory.Get(ctx, client.ObjectKey{Name: ns}, n)).To(Succeed())
				n.Labels[key] = value
				return mallory.Update(ctx, n, opts...)
			}
			const refused = "metadata.labels " + restrictedLabel + ": only platform administrators (groups system:masters) may change namespace labels under openshell.dev/"
			// The policy reaches admission asynchronously: wait with dry runs, which change nothing.
			Eventually(func() string {
				if err := relabel(restrictedLabel, "yes", client.DryRunAll); err != nil {
					return err.Error()
				}
				return ""
			}).WithContext(ctx).WithTimeout(timeout).WithPolling(interval).Should(ContainSubstring(refused))
			err := relabel(restrictedLabel, "yes")
			Expect(err).To(HaveOccurred())
			Expect(err.Error()).To(ContainSubstring(refused))
			// The name label is the API server's: a rewrite does not stick.
			Expect(relabel("kubernetes.io/metadata.name", "platform-ai")).To(Succeed())
			n := &corev1.Namespace{}
			Expect(mallory.Get(ctx, client.ObjectKey{Name: ns}, n)).To(Succeed())
			Expect(n.Labels).To(HaveKeyWithValue("kubernetes.io/metadata.name", ns))
			Expect(n.Labels).NotTo(HaveKey(restrictedLabel))
			Consistently(readyAsSeenBy(ctx, mallory, sb)).WithContext(ctx).WithTimeout(time.Second).WithPolling(interval).Should(
				HaveField("Reason", v1alpha1.ReasonNamespaceNotAllowed))
		})

		It("is admitted, without a restart, once the platform labels the namespace", func(ctx SpecContext) {
			n := &corev1.Namespace{}
			Expect(admin.Get(ctx, client.ObjectKey{Name: ns}, n)).To(Succeed())
			n.Labels[restrictedLabel] = "yes"
			Expect(admin.Update(ctx, n)).To(Succeed())
			Eventually(readyAsSeenBy(ctx, mallory, sb)).WithContext(ctx).WithTimeout(timeout).WithPolling(interval).Should(
				HaveField("Status", metav1.ConditionTrue))
			_, err := gw.Sandboxes.Get(ctx, gwName)
			Expect(err).NotTo(HaveOccurred())
		})

		It("keeps its gateway sandbox when the rule narrows again, and cleans it up on delete", func(ctx SpecContext) {
			gc := &v1alpha1.GatewayConnection{}
			Expect(admin.Get(ctx, client.ObjectKey{Name: "restricted"}, gc)).To(Succeed())
			gc.Spec.Namespaces = &v1alpha1.AllowedNamespaces{From: v1alpha1.NamespacesFromNone}
			Expect(admin.Update(ctx, gc)).To(Succeed())
			Eventually(readyAsSeenBy(ctx, mallory, sb)).WithContext(ctx).WithTimeout(timeout).WithPolling(interval).Should(withReason(
				metav1.ConditionFalse, v1alpha1.ReasonNamespaceNotAllowed, `does not admit namespace "team-foreign"`))
			_, err := gw.Sandboxes.Get(ctx, gwName)
			Expect(err).NotTo(HaveOccurred(), "narrowing a rule never deletes a gateway object")

			Expect(mallory.Delete(ctx, sb)).To(Succeed())
			Eventually(func() bool { return apierrors.IsNotFound(mallory.Get(ctx, client.ObjectKeyFromObject(sb), sb)) }).
				WithContext(ctx).WithTimeout(timeout).WithPolling(interval).Should(BeTrue())
			Eventually(func() bool { _, err := gw.Sandboxes.Get(ctx, gwName); return gateway.IsNotFound(err) }).
				WithContext(ctx).WithTimeout(timeout).WithPolling(interval).Should(BeTrue())
		})
	})

	Describe("taking over the gateway-global inference route", Ordered, func() {
		const platform, teamA, teamB = "platform-ai", "team-routes-a", "team-routes-b"
		var alice, bob client.Client
		platformRoute := route(platform, "default", "routes", "openai")
		aliceRoute := route(teamA, "default", "routes", "openai")
		bobRoute := route(teamB, "default", "routes", "openai")
		liveProvider := func(ctx context.Context) func() string {
			return func() string {
				r, err := gw.Inference.Get(ctx, "inference.local")
				if err != nil {
					return ""
				}
				return r.GetProviderName()
			}
		}
		setGrant := func(ctx context.Context, names ...string) {
			GinkgoHelper()
			gc := &v1alpha1.GatewayConnection{}
			Expect(admin.Get(ctx, client.ObjectKey{Name: "routes"}, gc)).To(Succeed())
			gc.Spec.InferenceRoutes = &v1alpha1.InferenceRouteGrant{Namespaces: namesSelector(names...)}
			Expect(admin.Update(ctx, gc)).To(Succeed())
		}

		BeforeAll(func(ctx SpecContext) {
			Expect(admin.Create(ctx, connection("routes", func(s *v1alpha1.GatewayConnectionSpec) {
				s.InferenceRoutes = &v1alpha1.InferenceRouteGrant{Namespaces: namesSelector(platform)}
			}))).To(Succeed())
			for _, ns := range []string{platform, teamA, teamB} {
				namespace(ctx, ns, nil)
				Expect(admin.Create(ctx, credentials(ns, "openai"))).To(Succeed())
				Expect(admin.Create(ctx, provider(ns, "openai", "routes", "openai"))).To(Succeed())
			}
			alice, bob = tenant(ctx, "alice-routes", teamA), tenant(ctx, "bob-routes", teamB)
			Expect(admin.Create(ctx, platformRoute)).To(Succeed())
			Eventually(readyAsSeenBy(ctx, admin, platformRoute)).WithContext(ctx).WithTimeout(timeout).WithPolling(interval).Should(
				HaveField("Status", metav1.ConditionTrue))
			Expect(liveProvider(ctx)()).To(Equal(controller.GatewayName(platform, "openai")))
		})

		It("is refused from a namespace the connection does not grant routes to", func(ctx SpecContext) {
			Expect(bob.Create(ctx, bobRoute)).To(Succeed())
			Eventually(readyAsSeenBy(ctx, bob, bobRoute)).WithContext(ctx).WithTimeout(timeout).WithPolling(interval).Should(withReason(
				metav1.ConditionFalse, v1alpha1.ReasonNamespaceNotAllowed,
				`GatewayConnection "routes" does not grant its inference routes to namespace "team-routes-b" (spec.inferenceRoutes.namespaces)`))
			Expect(liveProvider(ctx)()).To(Equal(controller.GatewayName(platform, "openai")))
		})

		It("waits behind the owner when granted, with a Conflict naming no other namespace", func(ctx SpecContext) {
			setGrant(ctx, platform, teamA)
			Expect(alice.Create(ctx, aliceRoute)).To(Succeed())
			Eventually(readyAsSeenBy(ctx, alice, aliceRoute)).WithContext(ctx).WithTimeout(timeout).WithPolling(interval).Should(withReason(
				metav1.ConditionFalse, v1alpha1.ReasonConflict,
				"route inference.local of GatewayConnection routes is claimed by an older InferenceRoute; a route is never handed over automatically"))
			Expect(aliceRoute.Status.Conditions).NotTo(ContainElement(HaveField("Message", ContainSubstring(platform))))
		})

		It("is not handed over when the owner is deleted", func(ctx SpecContext) {
			Expect(admin.Delete(ctx, platformRoute)).To(Succeed())
			Eventually(readyAsSeenBy(ctx, alice, aliceRoute)).WithContext(ctx).WithTimeout(timeout).WithPolling(interval).Should(withReason(
				metav1.ConditionFalse, v1alpha1.ReasonConflict,
				"route inference.local of GatewayConnection routes is set for another namespace and is never handed over automatically"))
			Expect(aliceRoute.Status.Conditions).NotTo(ContainElement(HaveField("Message", ContainSubstring(platform))))
			Expect(liveProvider(ctx)()).To(Equal(controller.GatewayName(platform, "openai")))
		})

		It("changes hands when the platform revokes the holder's grant", func(ctx SpecContext) {
			setGrant(ctx, teamA)
			Eventually(readyAsSeenBy(ctx, alice, aliceRoute)).WithContext(ctx).WithTimeout(timeout).WithPolling(interval).Should(
				HaveField("Status", metav1.ConditionTrue))
			Expect(liveProvider(ctx)()).To(Equal(controller.GatewayName(teamA, "openai")))
		})
	})

	Describe("forging status", Ordered, func() {
		const victimNS, ns = "team-victim", "team-forger"
		var mallory client.Client
		thief := sandbox(ns, "thief", "default", "openai")

		BeforeAll(func(ctx SpecContext) {
			if err := admin.Create(ctx, connection("default", nil)); err != nil && !apierrors.IsAlreadyExists(err) {
				Expect(err).NotTo(HaveOccurred())
			}
			namespace(ctx, victimNS, nil)
			namespace(ctx, ns, nil)
			mallory = tenant(ctx, "mallory-forger", ns)
			Expect(admin.Create(ctx, credentials(victimNS, "openai"))).To(Succeed())
			victim := provider(victimNS, "openai", "default", "openai")
			Expect(admin.Create(ctx, victim)).To(Succeed())
			Eventually(readyAsSeenBy(ctx, admin, victim)).WithContext(ctx).WithTimeout(timeout).WithPolling(interval).Should(
				HaveField("Status", metav1.ConditionTrue))
		})

		It("never attaches another namespace's provider named in a forged Provider status", func(ctx SpecContext) {
			// Mallory's Provider has no credentials Secret: it stalls and never reaches the
			// gateway. She writes the victim's (derivable) gateway name and a Ready condition
			// for the current generation into its status.
			fake := provider(ns, "openai", "default", "missing")
			Expect(mallory.Create(ctx, fake)).To(Succeed())
			Eventually(readyAsSeenBy(ctx, mallory, fake)).WithContext(ctx).WithTimeout(timeout).WithPolling(interval).Should(
				HaveField("Reason", v1alpha1.ReasonSecretNotFound))
			orig := fake.DeepCopy()
			fake.Status.GatewayName = controller.GatewayName(victimNS, "openai")
			fake.Status.ObservedGeneration = fake.Generation
			meta.SetStatusCondition(&fake.Status.Conditions, metav1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue,
				Reason: v1alpha1.ReasonReady, Message: "forged", ObservedGeneration: fake.Generation})
			Expect(mallory.Status().Patch(ctx, fake, client.MergeFrom(orig))).To(Succeed())

			Expect(mallory.Create(ctx, thief)).To(Succeed())
			Eventually(readyAsSeenBy(ctx, mallory, thief)).WithContext(ctx).WithTimeout(timeout).WithPolling(interval).Should(withReason(
				metav1.ConditionFalse, v1alpha1.ReasonDependencyNotReady, "providers not ready on the gateway: openai"))
			// The sandbox is never created with the victim's provider (nor at all).
			Consistently(func() error {
				_, err := gw.Sandboxes.Get(ctx, controller.GatewayName(ns, "thief"))
				return err
			}).WithContext(ctx).WithTimeout(2 * time.Second).WithPolling(interval).Should(Satisfy(gateway.IsNotFound))
		})
	})

	Describe("naming Secrets and policies outside the cluster resource namespace", Ordered, func() {
		const ns = "team-refs"
		var mallory client.Client

		BeforeAll(func(ctx SpecContext) {
			namespace(ctx, ns, nil)
			mallory = tenant(ctx, "mallory-refs", ns)
			// A tenant writes a working client certificate and a policy in its own namespace...
			Expect(mallory.Create(ctx, tlsSecret(ns, "my-tls"))).To(Succeed())
			Expect(mallory.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "my-token"},
				StringData: map[string]string{"token": "abc"}})).To(Succeed())
			Expect(mallory.Create(ctx, &v1alpha1.SandboxPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "open"}})).To(Succeed())
		})

		It("cannot create a GatewayConnection", func(ctx SpecContext) {
			err := mallory.Create(ctx, connection("mine", nil))
			Expect(apierrors.IsForbidden(err)).To(BeTrue(), "got %v", err)
		})

		DescribeTable("a connection referencing a tenant's namespace is Stalled before reading it",
			func(ctx SpecContext, name string, mutate func(*v1alpha1.GatewayConnectionSpec), want string) {
				gc := connection(name, mutate)
				Expect(admin.Create(ctx, gc)).To(Succeed())
				DeferCleanup(func(ctx SpecContext) { Expect(admin.Delete(ctx, gc)).To(Succeed()) })
				Eventually(readyAsSeenBy(ctx, admin, gc)).WithContext(ctx).WithTimeout(timeout).WithPolling(interval).Should(withReason(
					metav1.ConditionFalse, v1alpha1.ReasonReferenceNotAllowed, want))
				Expect(meta.IsStatusConditionTrue(gc.Status.Conditions, v1alpha1.ConditionStalled)).To(BeTrue())
			},
			Entry("TLS Secret", "tenant-tls", func(s *v1alpha1.GatewayConnectionSpec) {
				s.TLS.SecretRef = v1alpha1.NamespacedObjectReference{Namespace: ns, Name: "my-tls"}
			}, `spec.tls.secretRef: namespace "team-refs" is not a cluster resource namespace of the operator (openshell-system)`),
			Entry("token Secret", "tenant-token", func(s *v1alpha1.GatewayConnectionSpec) {
				s.Auth = &v1alpha1.GatewayAuth{TokenSecretRef: v1alpha1.SecretKeyReference{Namespace: ns, Name: "my-token", Key: "token"}}
			}, `spec.auth.tokenSecretRef: namespace "team-refs" is not a cluster resource namespace`),
			Entry("global policy", "tenant-policy", func(s *v1alpha1.GatewayConnectionSpec) {
				s.GlobalPolicyRef = &v1alpha1.NamespacedObjectReference{Namespace: ns, Name: "open"}
			}, `spec.globalPolicyRef: namespace "team-refs" is not a cluster resource namespace`),
		)
	})

	Describe("spoofing ownership labels and squatting names", Ordered, func() {
		const ns = "team-spoof"
		var mallory client.Client

		BeforeAll(func(ctx SpecContext) {
			if err := admin.Create(ctx, connection("default", nil)); err != nil && !apierrors.IsAlreadyExists(err) {
				Expect(err).NotTo(HaveOccurred())
			}
			namespace(ctx, ns, nil)
			mallory = tenant(ctx, "mallory-spoof", ns)
		})

		It("pod labels claiming another owner do not change whose gateway sandbox it is", func(ctx SpecContext) {
			sb := sandbox(ns, "spoof", "default")
			sb.Spec.PodLabels = map[string]v1alpha1.LabelValue{
				v1alpha1.LabelNamespace: "team-victim", v1alpha1.LabelName: "agent", v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue}
			Expect(mallory.Create(ctx, sb)).To(Succeed())
			Eventually(readyAsSeenBy(ctx, mallory, sb)).WithContext(ctx).WithTimeout(timeout).WithPolling(interval).Should(
				HaveField("Status", metav1.ConditionTrue))
			got, err := gw.Sandboxes.Get(ctx, controller.GatewayName(ns, "spoof"))
			Expect(err).NotTo(HaveOccurred())
			labels := got.GetMetadata().GetLabels()
			for k, v := range controller.OwnershipLabels(sb) {
				Expect(labels).To(HaveKeyWithValue(k, v), "the operator's ownership labels, not the tenant's pod labels")
			}
			Expect(controller.OwnedBy(labels, sb)).To(BeTrue())
		})

		It("a gateway sandbox squatting a tenant's name is reported, never adopted or deleted", func(ctx SpecContext) {
			name := controller.GatewayName(ns, "agent")
			_, err := gw.Sandboxes.Create(ctx, name, &openshellv1.SandboxSpec{}, nil)
			Expect(err).NotTo(HaveOccurred())
			sb := sandbox(ns, "agent", "default")
			Expect(mallory.Create(ctx, sb)).To(Succeed())
			Eventually(readyAsSeenBy(ctx, mallory, sb)).WithContext(ctx).WithTimeout(timeout).WithPolling(interval).Should(withReason(
				metav1.ConditionFalse, v1alpha1.ReasonConflict, "is not owned by this resource; it is left untouched"))
			Expect(mallory.Delete(ctx, sb)).To(Succeed())
			Eventually(func() bool { return apierrors.IsNotFound(mallory.Get(ctx, client.ObjectKeyFromObject(sb), sb)) }).
				WithContext(ctx).WithTimeout(timeout).WithPolling(interval).Should(BeTrue())
			_, err = gw.Sandboxes.Get(ctx, name)
			Expect(err).NotTo(HaveOccurred(), "the squatter's sandbox is not deleted")
		})

		It("a squatted gateway provider is never attached, even under a forged Ready status", func(ctx SpecContext) {
			name := controller.GatewayName(ns, "squat")
			_, err := gw.Providers.Create(ctx, &datamodelv1.Provider{Metadata: &datamodelv1.ObjectMeta{Name: name}, Type: "openai",
				Credentials: map[string]string{"OPENAI_API_KEY": "squatter"}})
			Expect(err).NotTo(HaveOccurred())
			Expect(mallory.Create(ctx, credentials(ns, "squat"))).To(Succeed())
			p := provider(ns, "squat", "default", "squat")
			Expect(mallory.Create(ctx, p)).To(Succeed())
			Eventually(readyAsSeenBy(ctx, mallory, p)).WithContext(ctx).WithTimeout(timeout).WithPolling(interval).Should(
				HaveField("Reason", v1alpha1.ReasonConflict))
			orig := p.DeepCopy()
			p.Status.ObservedGeneration = p.Generation
			meta.SetStatusCondition(&p.Status.Conditions, metav1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue,
				Reason: v1alpha1.ReasonReady, Message: "forged", ObservedGeneration: p.Generation})
			Expect(mallory.Status().Patch(ctx, p, client.MergeFrom(orig))).To(Succeed())
			sb := sandbox(ns, "uses-squat", "default", "squat")
			Expect(mallory.Create(ctx, sb)).To(Succeed())
			Eventually(readyAsSeenBy(ctx, mallory, sb)).WithContext(ctx).WithTimeout(timeout).WithPolling(interval).Should(withReason(
				metav1.ConditionFalse, v1alpha1.ReasonDependencyNotReady, "providers not ready on the gateway: squat"))
			stored, _ := sim.ProviderCredentials(name)
			Expect(stored).To(Equal(map[string]string{"OPENAI_API_KEY": "squatter"}))
		})
	})
})
