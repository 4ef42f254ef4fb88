package integration

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
	openshellv1 "github.com/openshell-operator/openshell-operator/gen/openshell/v1"
)

// The suite's observer lists every second with pages of 5.
const (
	observerResync   = time.Second
	observerPageSize = 5
)

var _ = Describe("Gateway observation loop", func() {
	It("keeps converged sandboxes at zero per-object gateway calls and zero status writes; lists grow with pages, not sandboxes", func() {
		ns := newNamespace()
		sp := &v1alpha1.SandboxPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "p"}, Spec: basePolicy()}
		Expect(k8s.Create(ctx, sp)).To(Succeed())
		const n = 12
		var sbs []*v1alpha1.Sandbox
		for i := range n {
			sb := sandboxUsing(ns, fmt.Sprintf("s%d", i), "p")
			Expect(k8s.Create(ctx, sb)).To(Succeed())
			sbs = append(sbs, sb)
		}
		for _, sb := range sbs {
			Eventually(readyOf(sb), timeout, interval).Should(haveStatusReason(metav1.ConditionTrue, v1alpha1.ReasonReady))
		}
		// Let the last policy acknowledgements and event mirroring settle.
		Eventually(func(g Gomega) {
			before := sim.Calls()
			time.Sleep(1500 * time.Millisecond)
			after := sim.Calls()
			g.Expect(after["GetSandboxPolicyStatus"]).To(Equal(before["GetSandboxPolicyStatus"]))
			g.Expect(after["WatchSandbox"]).To(Equal(before["WatchSandbox"]))
		}, timeout, 10*time.Millisecond).Should(Succeed())

		versions := map[string]string{}
		for _, sb := range sbs {
			Expect(k8s.Get(ctx, client.ObjectKeyFromObject(sb), sb)).To(Succeed())
			versions[sb.Name] = sb.ResourceVersion
		}
		all, err := gw.Sandboxes.ListAll(ctx, "", 1000)
		Expect(err).NotTo(HaveOccurred())
		pages := len(all)/observerPageSize + 1
		// Every Ready GatewayConnection runs a loop; the suite points several at the simulator.
		conns := &v1alpha1.GatewayConnectionList{}
		Expect(k8s.List(ctx, conns)).To(Succeed())
		loops := 0
		for _, c := range conns.Items {
			if meta.IsStatusConditionTrue(c.Status.Conditions, v1alpha1.ConditionReady) {
				loops++
			}
		}
		before := sim.Calls()
		const window = 5 * time.Second
		time.Sleep(window)
		after := sim.Calls()
		delta := func(m string) int { return after[m] - before[m] }

		Expect(delta("GetSandbox")).To(BeZero(), "converged sandboxes are read from the view")
		Expect(delta("GetSandboxPolicyStatus")).To(BeZero(), "a loaded policy is not read again")
		for _, m := range []string{"CreateSandbox", "DeleteSandbox", "UpdateConfig", "AttachSandboxProvider", "DetachSandboxProvider"} {
			Expect(delta(m)).To(BeZero(), "mutating call %s in steady state", m)
		}
		lists := delta("ListSandboxes")
		maxLists := (int(window/observerResync) + 2) * pages * loops
		Expect(lists).To(BeNumerically(">", 0))
		Expect(lists).To(BeNumerically("<=", maxLists), "%d sandboxes on the gateway, %d pages per list, %d loops", len(all), pages, loops)
		for _, sb := range sbs {
			Expect(k8s.Get(ctx, client.ObjectKeyFromObject(sb), sb)).To(Succeed())
			Expect(sb.ResourceVersion).To(Equal(versions[sb.Name]), "no status write for %s", sb.Name)
		}
		GinkgoWriter.Printf("steady state over %s: %d ListSandboxes for %d gateway sandboxes (page size %d), 0 GetSandbox\n", window, lists, len(all), observerPageSize)
	})

	It("sees a sandbox forced to ERROR and back through the list, without GetSandbox", func() {
		ns := newNamespace()
		sp := &v1alpha1.SandboxPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "p"}, Spec: basePolicy()}
		Expect(k8s.Create(ctx, sp)).To(Succeed())
		sb := sandboxUsing(ns, "agent", "p")
		Expect(k8s.Create(ctx, sb)).To(Succeed())
		Eventually(readyOf(sb), timeout, interval).Should(haveStatusReason(metav1.ConditionTrue, v1alpha1.ReasonReady))
		id := sb.Status.SandboxID
		gets := sim.CallCount("GetSandbox")

		Expect(sim.ForcePhase(sb.Status.GatewayName, openshellv1.SandboxPhase_SANDBOX_PHASE_ERROR)).To(BeTrue())
		Eventually(readyOf(sb), timeout, interval).Should(haveStatusReason(metav1.ConditionFalse, v1alpha1.ReasonSandboxError))
		Expect(sb.Status.Phase).To(Equal(v1alpha1.SandboxPhaseError))
		Expect(meta.IsStatusConditionTrue(sb.Status.Conditions, v1alpha1.ConditionStalled)).To(BeFalse())

		Expect(sim.ForcePhase(sb.Status.GatewayName, openshellv1.SandboxPhase_SANDBOX_PHASE_READY)).To(BeTrue())
		Eventually(readyOf(sb), timeout, interval).Should(haveStatusReason(metav1.ConditionTrue, v1alpha1.ReasonReady))
		Expect(sb.Status.SandboxID).To(Equal(id))
		Expect(sim.CallCount("GetSandbox")).To(Equal(gets), "the observation loop carried both changes")
	})

	It("heals a sandbox deleted behind its back: the view's absence is confirmed with one GetSandbox", func() {
		ns := newNamespace()
		sb := sandboxUsing(ns, "agent", "p")
		sp := &v1alpha1.SandboxPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "p"}, Spec: basePolicy()}
		Expect(k8s.Create(ctx, sp)).To(Succeed())
		Expect(k8s.Create(ctx, sb)).To(Succeed())
		Eventually(readyOf(sb), timeout, interval).Should(haveStatusReason(metav1.ConditionTrue, v1alpha1.ReasonReady))
		id := sb.Status.SandboxID

		_, err := gw.Sandboxes.Delete(ctx, sb.Status.GatewayName)
		Expect(err).NotTo(HaveOccurred())
		Eventually(func(g Gomega) {
			g.Expect(readyOf(sb)(g)).To(haveStatusReason(metav1.ConditionTrue, v1alpha1.ReasonReady))
			g.Expect(sb.Status.SandboxID).NotTo(Equal(id))
		}, timeout, interval).Should(Succeed())
		Eventually(eventsOf(ns, "agent"), timeout, interval).Should(ContainElement("Healed"))
		live, err := gw.Sandboxes.ListAll(ctx, "openshell.dev/namespace="+ns, 100)
		Expect(err).NotTo(HaveOccurred())
		Expect(live).To(HaveLen(1), "exactly one gateway sandbox after the heal")
	})
})
