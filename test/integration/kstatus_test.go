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

// kstatusOf computes what Flux (and `kubectl wait`-style tooling built on kstatus) sees.
func kstatusOf(obj client.Object) func(g Gomega) kstatus.Status {
	return func(g Gomega) kstatus.Status {
		g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(obj), obj)).To(Succeed())
		raw, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
		g.Expect(err).NotTo(HaveOccurred())
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
})
