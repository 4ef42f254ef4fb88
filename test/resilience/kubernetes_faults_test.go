package resilience

import (
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
)

var _ = Describe("Kubernetes faults", func() {
	It("adopts the sandbox an operator created just before it died, without a duplicate", func() {
		f := newGateway(true)
		ns := newNamespace()
		sb := sandbox(ns, "orphaned-write", f.name)
		Expect(k8s.Create(ctx, sb)).To(Succeed())
		first := startOperator(nil)
		Eventually(sandboxReady(sb), timeout, interval).Should(haveReason(metav1.ConditionTrue, v1alpha1.ReasonReady))
		first.stop()
		id := sb.Status.SandboxID
		// The state a crash between the gateway create and the status write leaves behind:
		// the owned gateway sandbox exists, the resource's status knows nothing of it.
		sb.Status = v1alpha1.SandboxStatus{}
		Expect(k8s.Status().Update(ctx, sb)).To(Succeed())
		f.sim.ResetCounts()

		second := startOperator(nil)
		defer second.stop()
		Eventually(sandboxReady(sb), timeout, interval).Should(haveReason(metav1.ConditionTrue, v1alpha1.ReasonReady))
		Expect(sb.Status.SandboxID).To(Equal(id))
		Expect(f.sandboxCount()).To(Equal(1))
		Expect(f.sim.CallCount("CreateSandbox")).To(BeZero())
		Expect(f.sim.CallCount("DeleteSandbox")).To(BeZero())
	})

	It("runs one leader among two replicas and fails over to the other", func() {
		f := newGateway(true)
		ns := newNamespace()
		election := func(o *ctrl.Options) {
			o.LeaderElection = true
			o.LeaderElectionID = "resilience-" + ns
			o.LeaderElectionNamespace = systemNS
			o.LeaderElectionReleaseOnCancel = true
			o.LeaseDuration = ptr.To(2 * time.Second)
			o.RenewDeadline = ptr.To(1500 * time.Millisecond)
			o.RetryPeriod = ptr.To(200 * time.Millisecond)
		}
		first := startOperator(election)
		Eventually(first.mgr.Elected(), timeout).Should(BeClosed())
		second := startOperator(election)
		defer second.stop()
		Consistently(second.mgr.Elected(), 3*time.Second, interval).ShouldNot(BeClosed())

		a := sandbox(ns, "before-failover", f.name)
		Expect(k8s.Create(ctx, a)).To(Succeed())
		Eventually(sandboxReady(a), timeout, interval).Should(haveReason(metav1.ConditionTrue, v1alpha1.ReasonReady))

		first.stop()
		Eventually(second.mgr.Elected(), timeout).Should(BeClosed())
		b := sandbox(ns, "after-failover", f.name)
		Expect(k8s.Create(ctx, b)).To(Succeed())
		Eventually(sandboxReady(b), timeout, interval).Should(haveReason(metav1.ConditionTrue, v1alpha1.ReasonReady))
		Expect(f.sandboxCount()).To(Equal(2))
		Expect(f.sim.CallCount("CreateSandbox")).To(Equal(2), "each sandbox created once across both replicas")
	})

	It("never surfaces API conflicts in conditions while users edit objects under it", func() {
		f := newGateway(true)
		op := startOperator(nil)
		defer op.stop()
		ns := newNamespace()
		wc, err := client.NewWithWatch(cfg, client.Options{Scheme: scheme})
		Expect(err).NotTo(HaveOccurred())
		w, err := wc.Watch(ctx, &v1alpha1.SandboxList{}, client.InNamespace(ns))
		Expect(err).NotTo(HaveOccurred())
		defer w.Stop()
		var mu sync.Mutex
		var messages []string
		go func() {
			for ev := range w.ResultChan() {
				if sb, ok := ev.Object.(*v1alpha1.Sandbox); ok && ev.Type != watch.Deleted {
					mu.Lock()
					for _, c := range sb.Status.Conditions {
						messages = append(messages, c.Reason+": "+c.Message)
					}
					mu.Unlock()
				}
			}
		}()

		var sbs []*v1alpha1.Sandbox
		for i := range 5 {
			sb := sandbox(ns, "busy-"+string(rune('a'+i)), f.name)
			Expect(k8s.Create(ctx, sb)).To(Succeed())
			sbs = append(sbs, sb)
		}
		// Label edits race every status write and finalizer update of the operator.
		stop := time.Now().Add(4 * time.Second)
		for n := 0; time.Now().Before(stop); n++ {
			for _, sb := range sbs {
				latest := &v1alpha1.Sandbox{}
				if k8s.Get(ctx, client.ObjectKeyFromObject(sb), latest) != nil {
					continue
				}
				latest.Labels = map[string]string{"touch": strings.Repeat("x", n%5+1)}
				_ = k8s.Update(ctx, latest)
			}
		}
		for _, sb := range sbs {
			Eventually(sandboxReady(sb), timeout, interval).Should(haveReason(metav1.ConditionTrue, v1alpha1.ReasonReady))
		}
		mu.Lock()
		defer mu.Unlock()
		Expect(messages).NotTo(BeEmpty())
		for _, m := range messages {
			Expect(m).NotTo(Or(ContainSubstring("the object has been modified"), ContainSubstring("Operation cannot be fulfilled")))
		}
		Expect(f.sim.CallCount("CreateSandbox")).To(Equal(len(sbs)))
	})
})
