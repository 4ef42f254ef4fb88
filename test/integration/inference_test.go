package integration

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"google.golang.org/grpc/codes"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
	inferencev1 "github.com/openshell-operator/openshell-operator/gen/openshell/inference/v1"
)

func inferenceRoute(ns, name, route, providerName, model string) *v1alpha1.InferenceRoute {
	return &v1alpha1.InferenceRoute{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.InferenceRouteSpec{GatewayRef: v1alpha1.GatewayReference{Name: "default"}, Route: route,
			ProviderRef: v1alpha1.LocalObjectReference{Name: providerName}, Model: model},
	}
}

func routeReadyOf(ir *v1alpha1.InferenceRoute) func(g Gomega) *metav1.Condition {
	return condition(ir, func() []metav1.Condition { return ir.Status.Conditions }, v1alpha1.ConditionReady)
}

func eventsOf(ns, name string) func() []string {
	return func() []string {
		evs := &corev1.EventList{}
		Expect(k8s.List(ctx, evs, client.InNamespace(ns))).To(Succeed())
		var reasons []string
		for _, e := range evs.Items {
			if e.InvolvedObject.Name == name {
				reasons = append(reasons, e.Reason)
			}
		}
		return reasons
	}
}

// readyProvider creates an openai Provider and waits until it is on the gateway.
func readyProvider(ns, name, typ string) *v1alpha1.Provider {
	Expect(k8s.Create(ctx, credentialsSecret(ns, name+"-creds", map[string]string{"OPENAI_API_KEY": "sk-test"}))).To(Succeed())
	p := provider(ns, name, name+"-creds")
	p.Spec.Type = typ
	Expect(k8s.Create(ctx, p)).To(Succeed())
	Eventually(condition(p, func() []metav1.Condition { return p.Status.Conditions }, v1alpha1.ConditionReady), timeout, interval).
		Should(haveStatusReason(metav1.ConditionTrue, v1alpha1.ReasonReady))
	return p
}

// grantRoutesTo grants the suite connection's inference routes to namespace only, until the
// spec ends.
func grantRoutesTo(namespace string) {
	patchConnection(func(gc *v1alpha1.GatewayConnection) {
		gc.Spec.InferenceRoutes = &v1alpha1.InferenceRouteGrant{Namespaces: &v1alpha1.AllowedNamespaces{From: v1alpha1.NamespacesFromSelector,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": namespace}}}}
	})
	DeferCleanup(func() {
		patchConnection(func(gc *v1alpha1.GatewayConnection) {
			gc.Spec.InferenceRoutes = &v1alpha1.InferenceRouteGrant{Namespaces: &v1alpha1.AllowedNamespaces{From: v1alpha1.NamespacesFromAll}}
		})
	})
}

var _ = Describe("InferenceRoute", Ordered, func() {
	// The gateway has one route of each name: these specs share the sandbox-system route and
	// run in order.
	const route = "sandbox-system"

	It("converges with exactly one Set call and keeps the version across resyncs", func() {
		ns := newNamespace()
		p := readyProvider(ns, "openai", "openai")
		sets := sim.CallCount("SetClusterInference")
		ir := inferenceRoute(ns, "system", route, "openai", "gpt-4o-mini")
		ir.Spec.TimeoutSeconds = 45
		Expect(k8s.Create(ctx, ir)).To(Succeed())
		Eventually(routeReadyOf(ir), timeout, interval).Should(haveStatusReason(metav1.ConditionTrue, v1alpha1.ReasonReady))
		Expect(ir.Status.Verified).To(BeTrue(), "verify defaults to true, so no_verify is not sent")
		Expect(ir.Status.ValidatedEndpoints).NotTo(BeEmpty())
		version := ir.Status.RouteVersion
		Expect(version).NotTo(BeZero())

		live, err := gw.Inference.Get(ctx, route)
		Expect(err).NotTo(HaveOccurred())
		Expect(live.GetProviderName()).To(Equal(p.Status.GatewayName))
		Expect(live.GetModelId()).To(Equal("gpt-4o-mini"))
		Expect(live.GetTimeoutSecs()).To(Equal(uint64(45)))
		Expect(live.GetVersion()).To(Equal(version))

		// RouteResync is 500ms in this suite: 3 s covers six resyncs.
		gets := sim.CallCount("GetClusterInference")
		Consistently(func(g Gomega) {
			g.Expect(sim.CallCount("SetClusterInference") - sets).To(Equal(1))
			cur, err := gw.Inference.Get(ctx, route)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(cur.GetVersion()).To(Equal(version))
		}, 3*time.Second, 250*time.Millisecond).Should(Succeed())
		Expect(sim.CallCount("GetClusterInference")-gets).To(BeNumerically(">=", 4), "resyncs read the live route")

		By("verify: false maps to no_verify")
		Expect(edit(ir, func() {
			ir.Spec.Verify = ptr.To(false)
			ir.Spec.Model = "gpt-4o"
		})).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(routeReadyOf(ir)(g)).To(haveStatusReason(metav1.ConditionTrue, v1alpha1.ReasonReady))
			g.Expect(ir.Status.RouteVersion).To(Equal(version + 1))
			g.Expect(ir.Status.Verified).To(BeFalse())
			g.Expect(ir.Status.ValidatedEndpoints).To(BeEmpty())
		}, timeout, interval).Should(Succeed())
		version = ir.Status.RouteVersion

		By("a route changed behind its back is set back, with a Healed event")
		other := readyProvider(ns, "other", "nvidia")
		_, err = gw.Inference.Set(ctx, &inferencev1.SetClusterInferenceRequest{RouteName: route, ProviderName: other.Status.GatewayName, ModelId: "llama", NoVerify: true})
		Expect(err).NotTo(HaveOccurred())
		Eventually(func(g Gomega) {
			cur, err := gw.Inference.Get(ctx, route)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(cur.GetModelId()).To(Equal("gpt-4o"))
			g.Expect(cur.GetProviderName()).To(Equal(p.Status.GatewayName))
		}, timeout, interval).Should(Succeed())
		Eventually(eventsOf(ns, "system"), timeout, interval).Should(ContainElement("Healed"))
		Eventually(func(g Gomega) {
			g.Expect(routeReadyOf(ir)(g)).To(haveStatusReason(metav1.ConditionTrue, v1alpha1.ReasonReady))
			g.Expect(ir.Status.RouteVersion).To(Equal(version + 2))
		}, timeout, interval).Should(Succeed())
	})

	It("lets the oldest claimant win, reports Conflict on the other without naming it, and never hands over on its own", func() {
		ns := newNamespace()
		readyProvider(ns, "openai", "openai")
		list := &v1alpha1.InferenceRouteList{}
		Expect(k8s.List(ctx, list)).To(Succeed())
		var owner v1alpha1.InferenceRoute
		for _, ir := range list.Items {
			if ir.Spec.Route == route && meta.IsStatusConditionTrue(ir.Status.Conditions, v1alpha1.ConditionReady) {
				owner = ir
			}
		}
		Expect(owner.Name).NotTo(BeEmpty(), "the previous spec's route still claims %s", route)

		second := inferenceRoute(ns, "second", route, "openai", "o3-mini")
		Expect(k8s.Create(ctx, second)).To(Succeed())
		Eventually(routeReadyOf(second), timeout, interval).Should(haveStatusReason(metav1.ConditionFalse, v1alpha1.ReasonConflict))
		msg := meta.FindStatusCondition(second.Status.Conditions, v1alpha1.ConditionReady).Message
		Expect(msg).To(ContainSubstring("is claimed by an older InferenceRoute; a route is never handed over automatically"))
		Expect(msg).NotTo(ContainSubstring(owner.Namespace), "the owner may be another tenant's")
		Expect(meta.IsStatusConditionTrue(second.Status.Conditions, v1alpha1.ConditionStalled)).To(BeTrue())
		cur, err := gw.Inference.Get(ctx, route)
		Expect(err).NotTo(HaveOccurred())
		Expect(cur.GetModelId()).To(Equal("gpt-4o"), "the loser never touches the route")

		Expect(k8s.Delete(ctx, &owner)).To(Succeed())
		Eventually(eventsOf(owner.Namespace, owner.Name), timeout, interval).Should(ContainElement("RouteLeftConfigured"))
		Eventually(func(g Gomega) {
			g.Expect(routeReadyOf(second)(g)).To(haveStatusReason(metav1.ConditionFalse, v1alpha1.ReasonConflict))
			g.Expect(meta.FindStatusCondition(second.Status.Conditions, v1alpha1.ConditionReady).Message).To(
				ContainSubstring("is set for another namespace and is never handed over automatically"))
		}, timeout, interval).Should(Succeed())
		cur, err = gw.Inference.Get(ctx, route)
		Expect(err).NotTo(HaveOccurred())
		Expect(cur.GetModelId()).To(Equal("gpt-4o"), "still the old owner's route")

		By("revoking the old owner's namespace releases the route")
		patchConnection(func(gc *v1alpha1.GatewayConnection) {
			gc.Spec.InferenceRoutes = &v1alpha1.InferenceRouteGrant{Namespaces: &v1alpha1.AllowedNamespaces{From: v1alpha1.NamespacesFromSelector,
				Selector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
					Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpNotIn, Values: []string{owner.Namespace}}}}}}
		})
		DeferCleanup(func() {
			patchConnection(func(gc *v1alpha1.GatewayConnection) {
				gc.Spec.InferenceRoutes = &v1alpha1.InferenceRouteGrant{Namespaces: &v1alpha1.AllowedNamespaces{From: v1alpha1.NamespacesFromAll}}
			})
		})
		Eventually(routeReadyOf(second), timeout, interval).Should(haveStatusReason(metav1.ConditionTrue, v1alpha1.ReasonReady))
		cur, err = gw.Inference.Get(ctx, route)
		Expect(err).NotTo(HaveOccurred())
		Expect(cur.GetModelId()).To(Equal("o3-mini"))

		By("deleting the last claimant leaves the route configured and says so")
		Expect(k8s.Delete(ctx, second)).To(Succeed())
		Eventually(func() bool { return apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKeyFromObject(second), second)) }, timeout, interval).Should(BeTrue())
		Expect(eventsOf(ns, "second")()).To(ContainElement("RouteLeftConfigured"))
		cur, err = gw.Inference.Get(ctx, route)
		Expect(err).NotTo(HaveOccurred())
		Expect(cur.GetModelId()).To(Equal("o3-mini"), "no delete RPC exists")
	})

	It("reports an unsupported provider type before calling the gateway, and the gateway's FailedPrecondition and InvalidArgument clearly", func() {
		ns := newNamespace()
		// The route is still set for the previous spec's namespace, and is never handed over
		// while that namespace is granted: grant this one only.
		grantRoutesTo(ns)
		readyProvider(ns, "github", "github")
		readyProvider(ns, "openai", "openai")
		sets := sim.CallCount("SetClusterInference")
		ir := inferenceRoute(ns, "r", route, "github", "m")
		Expect(k8s.Create(ctx, ir)).To(Succeed())
		Eventually(routeReadyOf(ir), timeout, interval).Should(haveStatusReason(metav1.ConditionFalse, v1alpha1.ReasonUnsupportedProvider))
		Expect(meta.FindStatusCondition(ir.Status.Conditions, v1alpha1.ConditionReady).Message).To(ContainSubstring(`type "github"`))
		Expect(sim.CallCount("SetClusterInference")).To(Equal(sets), "no gateway call for a provider it cannot route to")

		sim.InjectError("SetClusterInference", codes.FailedPrecondition, "failed to verify inference endpoint for provider 'x': connection refused; retry with '--no-verify'", -1)
		DeferCleanup(sim.ClearFaults)
		Expect(edit(ir, func() {
			ir.Spec.ProviderRef.Name = "openai"
		})).To(Succeed())
		Eventually(routeReadyOf(ir), timeout, interval).Should(haveStatusReason(metav1.ConditionFalse, v1alpha1.ReasonGatewayRejected))
		c := meta.FindStatusCondition(ir.Status.Conditions, v1alpha1.ConditionReady)
		Expect(c.Message).To(ContainSubstring("failed to verify inference endpoint"))
		Expect(c.Message).To(ContainSubstring("FailedPrecondition"))
		Expect(meta.IsStatusConditionTrue(ir.Status.Conditions, v1alpha1.ConditionStalled)).To(BeFalse(), "verification can pass later: retried")

		sim.InjectError("SetClusterInference", codes.InvalidArgument, "provider 'x' has no non-empty credential", -1)
		Eventually(func(g Gomega) {
			c := routeReadyOf(ir)(g)
			g.Expect(c.Message).To(ContainSubstring("has no non-empty credential"))
			g.Expect(meta.IsStatusConditionTrue(ir.Status.Conditions, v1alpha1.ConditionStalled)).To(BeTrue())
		}, timeout, interval).Should(Succeed())

		sim.ClearFaults()
		Expect(edit(ir, func() {
			ir.Spec.Model = "gpt-4.1"
		})).To(Succeed())
		Eventually(routeReadyOf(ir), timeout, interval).Should(haveStatusReason(metav1.ConditionTrue, v1alpha1.ReasonReady))
	})
})
