package integration

import (
	"time"

	kstatus "github.com/fluxcd/cli-utils/pkg/kstatus/status"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
)

// notReconciled is what kstatusOf returns for an object the operator has not written a status
// for yet. kstatus reads an object without conditions or observedGeneration as Current, so a
// spec that waited for Current on a new object could go on before the operator had seen it
// (and edit it before its first reconcile).
const notReconciled kstatus.Status = "NotReconciledYet"

// kstatusOf computes what Flux (and `kubectl wait`-style tooling built on kstatus) sees, once
// the operator has written the object's status.
func kstatusOf(obj client.Object) func(g Gomega) kstatus.Status {
	return func(g Gomega) kstatus.Status {
		g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(obj), obj)).To(Succeed())
		raw, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
		g.Expect(err).NotTo(HaveOccurred())
		if conds, _, _ := unstructured.NestedSlice(raw, "status", "conditions"); len(conds) == 0 {
			return notReconciled
		}
		res, err := kstatus.Compute(&unstructured.Unstructured{Object: raw})
		g.Expect(err).NotTo(HaveOccurred())
		return res.Status
	}
}

var _ = Describe("kstatus (Flux) reads the truth", func() {
	It("is Current when Ready, InProgress while waiting, Failed when stalled", func() {
		ns := newNamespace()
		Expect(k8s.Create(ctx, credentialsSecret(ns, "creds", map[string]string{"OPENAI_API_KEY": "k"}))).To(Succeed())

		ready := provider(ns, "ready", "creds")
		Expect(k8s.Create(ctx, ready)).To(Succeed())
		Eventually(kstatusOf(ready), timeout, interval).Should(Equal(kstatus.CurrentStatus))

		waiting := provider(ns, "waiting", "creds")
		waiting.Spec.GatewayRef.Name = "not-yet"
		Expect(k8s.Create(ctx, waiting)).To(Succeed())
		Eventually(kstatusOf(waiting), timeout, interval).Should(Equal(kstatus.InProgressStatus))
		Consistently(kstatusOf(waiting), time.Second, 200*time.Millisecond).Should(Equal(kstatus.InProgressStatus))

		stalled := provider(ns, "stalled", "creds", "MISSING_KEY")
		Expect(k8s.Create(ctx, stalled)).To(Succeed())
		Eventually(kstatusOf(stalled), timeout, interval).Should(Equal(kstatus.FailedStatus))

		gc := &v1alpha1.GatewayConnection{ObjectMeta: metav1.ObjectMeta{Name: "default"}}
		Eventually(kstatusOf(gc), timeout, interval).Should(Equal(kstatus.CurrentStatus))
		broken := connection("kstatus-broken", "does-not-exist")
		Expect(k8s.Create(ctx, broken)).To(Succeed())
		Eventually(kstatusOf(broken), timeout, interval).Should(Equal(kstatus.FailedStatus))
	})

	It("holds for Sandbox, SandboxPolicy and InferenceRoute too", func() {
		ns := newNamespace()
		Expect(k8s.Create(ctx, credentialsSecret(ns, "creds", map[string]string{"OPENAI_API_KEY": "k"}))).To(Succeed())
		Expect(k8s.Create(ctx, provider(ns, "openai", "creds"))).To(Succeed())
		github := provider(ns, "github", "creds")
		github.Spec.Type = "github"
		Expect(k8s.Create(ctx, github)).To(Succeed())

		sp := &v1alpha1.SandboxPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "p"}, Spec: basePolicy()}
		Expect(k8s.Create(ctx, sp)).To(Succeed())
		sb := sandboxUsing(ns, "ready", "p")
		Expect(k8s.Create(ctx, sb)).To(Succeed())
		Eventually(kstatusOf(sb), timeout, interval).Should(Equal(kstatus.CurrentStatus))
		Eventually(kstatusOf(sp), timeout, interval).Should(Equal(kstatus.CurrentStatus))

		waiting := sandboxUsing(ns, "waiting", "not-yet")
		Expect(k8s.Create(ctx, waiting)).To(Succeed())
		Eventually(kstatusOf(waiting), timeout, interval).Should(Equal(kstatus.InProgressStatus))
		Consistently(kstatusOf(waiting), time.Second, 200*time.Millisecond).Should(Equal(kstatus.InProgressStatus))

		loading := &v1alpha1.SandboxPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "loading"}, Spec: basePolicy()}
		Expect(k8s.Create(ctx, loading)).To(Succeed())
		user := sandboxUsing(ns, "user", "loading")
		user.Spec.GatewayRef.Name = "not-yet"
		Expect(k8s.Create(ctx, user)).To(Succeed())
		Eventually(kstatusOf(loading), timeout, interval).Should(Equal(kstatus.InProgressStatus))

		stalled := sandboxUsing(ns, "stalled", "p")
		stalled.Spec.UpdateStrategy = v1alpha1.UpdateStrategyOnDelete
		Expect(k8s.Create(ctx, stalled)).To(Succeed())
		Eventually(kstatusOf(stalled), timeout, interval).Should(Equal(kstatus.CurrentStatus))
		Eventually(func() error {
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(stalled), stalled); err != nil {
				return err
			}
			stalled.Spec.Image = "alpine"
			return k8s.Update(ctx, stalled)
		}, timeout, interval).Should(Succeed())
		Eventually(kstatusOf(stalled), timeout, interval).Should(Equal(kstatus.FailedStatus), "OnDelete with a pending recreate needs the user")

		route := inferenceRoute(ns, "unsupported", "inference.local", "github", "m")
		Expect(k8s.Create(ctx, route)).To(Succeed())
		Eventually(kstatusOf(route), timeout, interval).Should(Equal(kstatus.FailedStatus))
		pending := inferenceRoute(ns, "pending", "inference.local", "missing", "m")
		// Another gateway's route: on "default" the younger claimant would be a Conflict.
		pending.Spec.GatewayRef.Name = "elsewhere"
		Expect(k8s.Create(ctx, pending)).To(Succeed())
		Eventually(kstatusOf(pending), timeout, interval).Should(Equal(kstatus.InProgressStatus))
		// The Ready case of InferenceRoute is asserted without touching the shared
		// inference.local route: sandbox-system is owned by the InferenceRoute specs.
		Expect(k8s.Delete(ctx, route)).To(Succeed())
		Expect(k8s.Delete(ctx, pending)).To(Succeed())
	})
})
