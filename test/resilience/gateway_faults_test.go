package resilience

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"google.golang.org/grpc/codes"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
	"github.com/openshell-operator/openshell-operator/internal/controller"
)

var _ = Describe("Gateway faults", func() {
	var op *operator
	BeforeEach(func() { op = startOperator(nil) })
	AfterEach(func() { op.stop() })

	It("starts without a gateway, says so, and converges once it appears: no crash loop", func() {
		f := newGateway(false)
		ns := newNamespace()
		sb := sandbox(ns, "early", f.name)
		Expect(k8s.Create(ctx, sb)).To(Succeed())
		gc := &v1alpha1.GatewayConnection{ObjectMeta: metav1.ObjectMeta{Name: f.name}}
		Eventually(connectionReady(gc), timeout, interval).Should(haveReason(metav1.ConditionFalse, v1alpha1.ReasonGatewayUnavailable))
		Expect(meta(gc.Status.Conditions).Message).To(ContainSubstring(f.addr))
		Eventually(sandboxReady(sb), timeout, interval).Should(haveReason(metav1.ConditionFalse, v1alpha1.ReasonDependencyNotReady))
		Consistently(op.running, 2*time.Second, interval).Should(BeTrue())

		f.start()
		Eventually(connectionReady(gc), timeout, interval).Should(haveReason(metav1.ConditionTrue, v1alpha1.ReasonReady))
		Eventually(sandboxReady(sb), timeout, interval).Should(haveReason(metav1.ConditionTrue, v1alpha1.ReasonReady))
		Expect(f.sim.CallCount("CreateSandbox")).To(Equal(1))
	})

	It("rides out an outage: reports it, backs off, deletes nothing, and converges with the same sandboxes", func() {
		f := newGateway(true)
		ns := newNamespace()
		names := []string{"a", "b", "c"}
		ids := map[string]string{}
		for _, n := range names {
			sb := sandbox(ns, n, f.name)
			Expect(k8s.Create(ctx, sb)).To(Succeed())
			Eventually(sandboxReady(sb), timeout, interval).Should(haveReason(metav1.ConditionTrue, v1alpha1.ReasonReady))
			ids[n] = sb.Status.SandboxID
		}

		f.sim.InjectError("*", codes.Unavailable, "gateway restarting", -1)
		gc := &v1alpha1.GatewayConnection{ObjectMeta: metav1.ObjectMeta{Name: f.name}}
		Eventually(connectionReady(gc), timeout, interval).Should(haveReason(metav1.ConditionFalse, v1alpha1.ReasonGatewayUnavailable))
		Expect(meta(gc.Status.Conditions).Message).To(ContainSubstring("gateway restarting"))
		// Over a fixed window the calls stay few: with retries every 100ms and no backoff,
		// three sandboxes, a connection and an observer would make well over a hundred.
		f.sim.ResetCounts()
		time.Sleep(4 * time.Second)
		Expect(total(f.sim.Calls())).To(BeNumerically("<", 60), "calls during the outage: %v", f.sim.Calls())

		f.sim.ClearFaults()
		Eventually(connectionReady(gc), timeout, interval).Should(haveReason(metav1.ConditionTrue, v1alpha1.ReasonReady))
		for _, n := range names {
			sb := &v1alpha1.Sandbox{}
			sb.Namespace, sb.Name = ns, n
			Eventually(sandboxReady(sb), timeout, interval).Should(haveReason(metav1.ConditionTrue, v1alpha1.ReasonReady))
			Expect(sb.Status.SandboxID).To(Equal(ids[n]), "the same gateway sandbox, not a new one")
		}
		Expect(f.sim.CallCount("DeleteSandbox")).To(BeZero())
		Expect(f.sim.CallCount("CreateSandbox")).To(BeZero())
	})

	It("gives up on a call slower than the timeout without creating a duplicate", func() {
		f := newGateway(true)
		gc := &v1alpha1.GatewayConnection{ObjectMeta: metav1.ObjectMeta{Name: f.name}}
		Eventually(connectionReady(gc), timeout, interval).Should(haveReason(metav1.ConditionTrue, v1alpha1.ReasonReady))
		// The gateway still performs the slow create after the operator gave up on it.
		f.sim.InjectLatency("CreateSandbox", 1500*time.Millisecond)
		ns := newNamespace()
		sb := sandbox(ns, "slow", f.name)
		Expect(k8s.Create(ctx, sb)).To(Succeed())
		Eventually(sandboxReady(sb), timeout, interval).Should(haveReason(metav1.ConditionFalse, v1alpha1.ReasonGatewayUnavailable))
		// The message is written by the error table from the code, never taken from gRPC, whose
		// text for a deadline depends on which side reset the stream first.
		Expect(meta(sb.Status.Conditions).Message).To(HaveSuffix("(DeadlineExceeded)"))
		f.sim.ClearFaults()
		Eventually(sandboxReady(sb), timeout, interval).Should(haveReason(metav1.ConditionTrue, v1alpha1.ReasonReady))
		Expect(f.sandboxCount()).To(Equal(1))
		live, err := f.client.Sandboxes.Get(ctx, controller.GatewayName(ns, "slow"))
		Expect(err).NotTo(HaveOccurred())
		Expect(sb.Status.SandboxID).To(Equal(live.GetMetadata().GetId()))
	})

	DescribeTable("retries transient gateway errors until they pass, never reporting them as Stalled",
		func(method string, code codes.Code) {
			f := newGateway(true)
			f.sim.InjectError(method, code, "transient "+code.String(), 3)
			ns := newNamespace()
			sb := sandbox(ns, "retry", f.name)
			Expect(k8s.Create(ctx, sb)).To(Succeed())
			var seenStalled bool
			Eventually(func() *metav1.Condition {
				c := sandboxReady(sb)()
				for _, s := range sb.Status.Conditions {
					if s.Type == v1alpha1.ConditionStalled && s.Status == metav1.ConditionTrue {
						seenStalled = true
					}
				}
				return c
			}, timeout, interval).Should(haveReason(metav1.ConditionTrue, v1alpha1.ReasonReady))
			Expect(seenStalled).To(BeFalse())
			Expect(f.sandboxCount()).To(Equal(1))
		},
		Entry("Aborted on a resource-version race", "CreateSandbox", codes.Aborted),
		Entry("Internal", "CreateSandbox", codes.Internal),
		Entry("Unavailable", "CreateSandbox", codes.Unavailable),
		Entry("ResourceExhausted", "CreateSandbox", codes.ResourceExhausted),
	)

	It("recreates sandboxes and providers after a gateway restart with total state loss, owned and without duplicates", func() {
		f := newGateway(true)
		ns := newNamespace()
		Expect(k8s.Create(ctx, credentials(ns, "creds", "sk-restart"))).To(Succeed())
		p := provider(ns, "openai", "creds", f.name)
		Expect(k8s.Create(ctx, p)).To(Succeed())
		var before []string
		for _, n := range []string{"x", "y"} {
			sb := sandbox(ns, n, f.name)
			sb.Spec.Providers = []string{"openai"}
			Expect(k8s.Create(ctx, sb)).To(Succeed())
			Eventually(sandboxReady(sb), timeout, interval).Should(haveReason(metav1.ConditionTrue, v1alpha1.ReasonReady))
			before = append(before, sb.Status.SandboxID)
		}

		f.sim.Restart()
		for i, n := range []string{"x", "y"} {
			sb := &v1alpha1.Sandbox{}
			sb.Namespace, sb.Name = ns, n
			Eventually(func() string {
				_ = k8s.Get(ctx, client.ObjectKeyFromObject(sb), sb)
				if c := meta(sb.Status.Conditions); c == nil || c.Status != metav1.ConditionTrue {
					return ""
				}
				return sb.Status.SandboxID
			}, timeout, interval).ShouldNot(Or(BeEmpty(), Equal(before[i])))
			live, err := f.client.Sandboxes.Get(ctx, controller.GatewayName(ns, n))
			Expect(err).NotTo(HaveOccurred())
			Expect(controller.OwnedBy(live.GetMetadata().GetLabels(), sb)).To(BeTrue())
			Expect(live.GetSpec().GetProviders()).To(ConsistOf(controller.GatewayName(ns, "openai")))
		}
		Expect(f.sandboxCount()).To(Equal(2))
		creds, ok := f.sim.ProviderCredentials(controller.GatewayName(ns, "openai"))
		Expect(ok).To(BeTrue(), "the provider is recreated before the sandboxes that need it")
		Expect(creds).To(HaveKeyWithValue("OPENAI_API_KEY", "sk-restart"))
	})
})

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// meta returns the Ready condition of a list, or nil.
func meta(conds []metav1.Condition) *metav1.Condition {
	for i := range conds {
		if conds[i].Type == v1alpha1.ConditionReady {
			return &conds[i]
		}
	}
	return nil
}
