//go:build envtest

package controller

import (
	"context"
	"fmt"
	"time"

	clientretry "k8s.io/client-go/util/retry"

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
	openshellv1 "github.com/openshell-operator/openshell-operator/gen/openshell/v1"
	"github.com/openshell-operator/openshell-operator/internal/gateway"
)

const (
	sbTimeout = 30 * time.Second
	sbPoll    = 100 * time.Millisecond
)

var sbNSCounter int

func sbNamespace(ctx context.Context) string {
	sbNSCounter++
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("sb-%d-%d", GinkgoParallelProcess(), sbNSCounter)}}
	Expect(sbClient.Create(ctx, ns)).To(Succeed())
	return ns.Name
}

func newSandbox(ns, name string, mut ...func(*v1alpha1.Sandbox)) *v1alpha1.Sandbox {
	sb := &v1alpha1.Sandbox{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.SandboxSpec{Image: "example.com/agent:1"}}
	for _, m := range mut {
		m(sb)
	}
	return sb
}

func getSB(ctx context.Context, ns, name string) func(g Gomega) *v1alpha1.Sandbox {
	return func(g Gomega) *v1alpha1.Sandbox {
		sb := &v1alpha1.Sandbox{}
		g.Expect(sbClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, sb)).To(Succeed())
		return sb
	}
}

func readyCond(sb *v1alpha1.Sandbox) metav1.Condition {
	if c := meta.FindStatusCondition(sb.Status.Conditions, v1alpha1.ConditionReady); c != nil {
		return *c
	}
	return metav1.Condition{}
}

// waitReady waits for Ready=True for the current generation and returns the sandbox.
func waitReady(ctx context.Context, ns, name string) *v1alpha1.Sandbox {
	var out *v1alpha1.Sandbox
	Eventually(func(g Gomega) {
		sb := getSB(ctx, ns, name)(g)
		c := readyCond(sb)
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue), "reason %s: %s", c.Reason, c.Message)
		g.Expect(sb.Status.ObservedGeneration).To(Equal(sb.Generation))
		out = sb
	}, sbTimeout, sbPoll).Should(Succeed())
	return out
}

func waitReason(ctx context.Context, ns, name, reason string) *v1alpha1.Sandbox {
	var out *v1alpha1.Sandbox
	Eventually(func(g Gomega) {
		sb := getSB(ctx, ns, name)(g)
		g.Expect(readyCond(sb).Reason).To(Equal(reason), readyCond(sb).Message)
		out = sb
	}, sbTimeout, sbPoll).Should(Succeed())
	return out
}

func eventReasons(ctx context.Context, ns, name string) func(g Gomega) []string {
	return func(g Gomega) []string {
		list := &corev1.EventList{}
		g.Expect(sbClient.List(ctx, list, client.InNamespace(ns))).To(Succeed())
		var out []string
		for _, e := range list.Items {
			if e.InvolvedObject.Name == name {
				out = append(out, e.Reason)
			}
		}
		return out
	}
}

func gwName(ns, name string) string { return GatewayName(ns, name) }

var _ = Describe("Sandbox controller", func() {
	ctx := context.Background()

	It("creates the gateway sandbox, fills status and reports Ready only once READY", func() {
		ns := sbNamespace(ctx)
		sbSim.SetProvisioningDelay(time.Hour)
		DeferCleanup(func() { sbSim.SetProvisioningDelay(300 * time.Millisecond) })
		Expect(sbClient.Create(ctx, newSandbox(ns, "agent"))).To(Succeed())

		sb := waitReason(ctx, ns, "agent", v1alpha1.ReasonProvisioning)
		Expect(readyCond(sb).Status).To(Equal(metav1.ConditionFalse))
		Expect(sb.Status.Phase).To(Equal(v1alpha1.SandboxPhaseProvisioning))
		Expect(meta.IsStatusConditionTrue(sb.Status.Conditions, v1alpha1.ConditionReconciling)).To(BeTrue())
		Expect(sb.Finalizers).To(ContainElement(v1alpha1.Finalizer))

		Expect(sbSim.ForcePhase(gwName(ns, "agent"), openshellv1.SandboxPhase_SANDBOX_PHASE_READY)).To(BeTrue())
		sb = waitReady(ctx, ns, "agent")
		Expect(sb.Status.Phase).To(Equal(v1alpha1.SandboxPhaseReady))
		Expect(sb.Status.GatewayName).To(Equal(gwName(ns, "agent")))
		gw, err := sbGW.Sandboxes.Get(ctx, gwName(ns, "agent"))
		Expect(err).NotTo(HaveOccurred())
		Expect(sb.Status.SandboxID).To(Equal(gw.GetMetadata().GetId()))
		Expect(gw.GetSpec().GetTemplate().GetImage()).To(Equal("example.com/agent:1"))
		Expect(gw.GetMetadata().GetLabels()).To(HaveKeyWithValue(v1alpha1.LabelUID, string(sb.UID)))
		Eventually(eventReasons(ctx, ns, "agent"), sbTimeout, sbPoll).Should(ContainElement(eventCreated))

		By("ERROR at the gateway: Ready False with the gateway's message, not Stalled")
		Expect(sbSim.ForcePhase(gwName(ns, "agent"), openshellv1.SandboxPhase_SANDBOX_PHASE_ERROR)).To(BeTrue())
		sb = waitReason(ctx, ns, "agent", v1alpha1.ReasonSandboxError)
		Expect(readyCond(sb).Status).To(Equal(metav1.ConditionFalse))
		Expect(readyCond(sb).Message).NotTo(BeEmpty())
		Expect(meta.IsStatusConditionTrue(sb.Status.Conditions, v1alpha1.ConditionStalled)).To(BeFalse())
		Expect(sbSim.ForcePhase(gwName(ns, "agent"), openshellv1.SandboxPhase_SANDBOX_PHASE_READY)).To(BeTrue())
		waitReady(ctx, ns, "agent")
	})

	It("keeps the same name in two namespaces apart", func() {
		ns1, ns2 := sbNamespace(ctx), sbNamespace(ctx)
		Expect(sbClient.Create(ctx, newSandbox(ns1, "same"))).To(Succeed())
		Expect(sbClient.Create(ctx, newSandbox(ns2, "same"))).To(Succeed())
		a, b := waitReady(ctx, ns1, "same"), waitReady(ctx, ns2, "same")
		// The gateway's platform events are mirrored as Kubernetes Events.
		Eventually(eventReasons(ctx, ns1, "same"), sbTimeout, sbPoll).Should(ContainElement("Started"))
		Expect(a.Status.GatewayName).NotTo(Equal(b.Status.GatewayName))
		Expect(a.Status.SandboxID).NotTo(Equal(b.Status.SandboxID))
	})

	It("reports Conflict for a foreign gateway sandbox and leaves it untouched", func() {
		ns := sbNamespace(ctx)
		foreign, err := sbGW.Sandboxes.Create(ctx, gwName(ns, "taken"), &openshellv1.SandboxSpec{
			Template: &openshellv1.SandboxTemplate{Image: "foreign:1"}}, map[string]string{"owner": "someone-else"})
		Expect(err).NotTo(HaveOccurred())
		Expect(sbClient.Create(ctx, newSandbox(ns, "taken"))).To(Succeed())
		sb := waitReason(ctx, ns, "taken", v1alpha1.ReasonConflict)
		Expect(meta.IsStatusConditionTrue(sb.Status.Conditions, v1alpha1.ConditionStalled)).To(BeTrue())

		Expect(sbClient.Delete(ctx, sb)).To(Succeed())
		Eventually(func() bool {
			return apierrors.IsNotFound(sbClient.Get(ctx, client.ObjectKeyFromObject(sb), &v1alpha1.Sandbox{}))
		}, sbTimeout, sbPoll).Should(BeTrue())
		got, err := sbGW.Sandboxes.Get(ctx, gwName(ns, "taken"))
		Expect(err).NotTo(HaveOccurred())
		Expect(got.GetMetadata().GetId()).To(Equal(foreign.GetMetadata().GetId()))
		Expect(got.GetSpec().GetTemplate().GetImage()).To(Equal("foreign:1"))
	})

	It("attaches and detaches providers in place", func() {
		ns := sbNamespace(ctx)
		// No Provider controller runs here: the test plays it, creating the gateway provider
		// under the derived name with the Provider's ownership labels and marking it Ready
		// for its generation (what the Sandbox kind requires before attaching it).
		prov := &v1alpha1.Provider{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "gh"},
			Spec: v1alpha1.ProviderSpec{Type: "github", CredentialsSecretRef: v1alpha1.CredentialsSecretReference{Name: "gh"}}}
		Expect(sbClient.Create(ctx, prov)).To(Succeed())
		provGW := GatewayName(ns, "gh")
		_, err := sbGW.Providers.Create(ctx, &datamodelv1.Provider{Metadata: &datamodelv1.ObjectMeta{Name: provGW, Labels: OwnershipLabels(prov)},
			Type: "github", Credentials: map[string]string{"GITHUB_TOKEN": "x"}})
		Expect(err).NotTo(HaveOccurred())
		prov.Status.GatewayName = provGW
		prov.Status.ObservedGeneration = prov.Generation
		applyConditions(&prov.Status.Conditions, prov.Generation, readyOutcome("in sync"))
		Expect(sbClient.Status().Update(ctx, prov)).To(Succeed())

		Expect(sbClient.Create(ctx, newSandbox(ns, "withprov"))).To(Succeed())
		id := waitReady(ctx, ns, "withprov").Status.SandboxID

		editSB(ctx, ns, "withprov", func(sb *v1alpha1.Sandbox) {
			sb.Spec.Providers = []string{"gh"}
		})
		Eventually(func(g Gomega) {
			s := waitReady(ctx, ns, "withprov")
			g.Expect(s.Status.Providers).To(Equal([]string{provGW}))
			g.Expect(s.Status.SandboxID).To(Equal(id))
		}, sbTimeout, sbPoll).Should(Succeed())

		editSB(ctx, ns, "withprov", func(sb *v1alpha1.Sandbox) {
			sb.Spec.Providers = nil
		})
		Eventually(func(g Gomega) {
			gw, err := sbGW.Sandboxes.Get(ctx, gwName(ns, "withprov"))
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(gw.GetSpec().GetProviders()).To(BeEmpty())
			g.Expect(gw.GetMetadata().GetId()).To(Equal(id))
		}, sbTimeout, sbPoll).Should(Succeed())
		waitReady(ctx, ns, "withprov")
	})

	It("recreates on an image change under Recreate, and waits under OnDelete", func() {
		ns := sbNamespace(ctx)
		Expect(sbClient.Create(ctx, newSandbox(ns, "rc"))).To(Succeed())
		Expect(sbClient.Create(ctx, newSandbox(ns, "od", func(s *v1alpha1.Sandbox) {
			s.Spec.UpdateStrategy = v1alpha1.UpdateStrategyOnDelete
		}))).To(Succeed())
		rcID := waitReady(ctx, ns, "rc").Status.SandboxID
		odID := waitReady(ctx, ns, "od").Status.SandboxID

		for _, n := range []string{"rc", "od"} {
			editSB(ctx, ns, n, func(sb *v1alpha1.Sandbox) {
				sb.Spec.Image = "example.com/agent:2"
			})
		}
		Eventually(func(g Gomega) {
			s := waitReady(ctx, ns, "rc")
			g.Expect(s.Status.SandboxID).NotTo(Equal(rcID))
		}, sbTimeout, sbPoll).Should(Succeed())
		gw, err := sbGW.Sandboxes.Get(ctx, gwName(ns, "rc"))
		Expect(err).NotTo(HaveOccurred())
		Expect(gw.GetSpec().GetTemplate().GetImage()).To(Equal("example.com/agent:2"))
		Eventually(eventReasons(ctx, ns, "rc"), sbTimeout, sbPoll).Should(ContainElement(eventRecreated))

		od := waitReason(ctx, ns, "od", v1alpha1.ReasonRecreatePending)
		Expect(readyCond(od).Message).To(ContainSubstring("image"))
		Consistently(func(g Gomega) {
			gw, err := sbGW.Sandboxes.Get(ctx, gwName(ns, "od"))
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(gw.GetMetadata().GetId()).To(Equal(odID))
			g.Expect(gw.GetSpec().GetTemplate().GetImage()).To(Equal("example.com/agent:1"))
		}, 2*time.Second, 200*time.Millisecond).Should(Succeed())
	})

	It("pushes a network policy change in place and reports it loaded", func() {
		ns := sbNamespace(ctx)
		pol := &v1alpha1.SandboxPolicySpec{
			Filesystem: &v1alpha1.FilesystemPolicy{ReadOnly: []v1alpha1.AbsolutePath{"/usr"}, ReadWrite: []v1alpha1.AbsolutePath{"/sandbox"}},
			Process:    &v1alpha1.ProcessPolicy{RunAsUser: "sandbox", RunAsGroup: "sandbox"},
		}
		Expect(sbClient.Create(ctx, newSandbox(ns, "pol", func(s *v1alpha1.Sandbox) { s.Spec.Policy = pol }))).To(Succeed())
		id := waitReady(ctx, ns, "pol").Status.SandboxID

		editSB(ctx, ns, "pol", func(sb *v1alpha1.Sandbox) {
			sb.Spec.Policy.NetworkPolicies = map[string]v1alpha1.NetworkPolicyRule{"gh": {Name: "gh",
				Endpoints: []v1alpha1.NetworkEndpoint{{Host: "api.github.com", Port: 443}},
				Binaries:  []v1alpha1.NetworkBinary{{Path: "/usr/bin/git"}}}}
		})
		Eventually(func(g Gomega) {
			s := waitReady(ctx, ns, "pol")
			g.Expect(s.Status.Policy).NotTo(BeNil())
			g.Expect(s.Status.Policy.Status).To(Equal(v1alpha1.PolicyLoadLoaded))
			g.Expect(s.Status.Policy.ActiveVersion).To(Equal(s.Status.Policy.Version))
			g.Expect(s.Status.SandboxID).To(Equal(id))
		}, sbTimeout, sbPoll).Should(Succeed())
		Eventually(eventReasons(ctx, ns, "pol"), sbTimeout, sbPoll).Should(ContainElement(eventPolicyUpdated))

		By("a landlock change needs a new sandbox")
		editSB(ctx, ns, "pol", func(sb *v1alpha1.Sandbox) {
			sb.Spec.Policy.Landlock = &v1alpha1.LandlockPolicy{Compatibility: "hard_requirement"}
		})
		Eventually(func(g Gomega) {
			s := waitReady(ctx, ns, "pol")
			g.Expect(s.Status.SandboxID).NotTo(Equal(id))
		}, sbTimeout, sbPoll).Should(Succeed())
	})

	It("heals an out-of-band gateway delete", func() {
		ns := sbNamespace(ctx)
		Expect(sbClient.Create(ctx, newSandbox(ns, "heal"))).To(Succeed())
		id := waitReady(ctx, ns, "heal").Status.SandboxID
		_, err := sbGW.Sandboxes.Delete(ctx, gwName(ns, "heal"))
		Expect(err).NotTo(HaveOccurred())
		Eventually(func(g Gomega) {
			s := waitReady(ctx, ns, "heal")
			g.Expect(s.Status.SandboxID).NotTo(Equal(id))
		}, sbTimeout, sbPoll).Should(Succeed())
		Eventually(eventReasons(ctx, ns, "heal"), sbTimeout, sbPoll).Should(ContainElement(eventHealed))
	})

	It("deletes on the gateway and releases the finalizer only once it is gone", func() {
		ns := sbNamespace(ctx)
		Expect(sbClient.Create(ctx, newSandbox(ns, "del"))).To(Succeed())
		sb := waitReady(ctx, ns, "del")
		Expect(sbClient.Delete(ctx, sb)).To(Succeed())
		Eventually(func(g Gomega) {
			gw, err := sbGW.Sandboxes.Get(ctx, gwName(ns, "del"))
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(gw.GetStatus().GetPhase()).To(Equal(openshellv1.SandboxPhase_SANDBOX_PHASE_DELETING))
			// The CR must still exist while the gateway is DELETING.
			g.Expect(sbClient.Get(ctx, client.ObjectKeyFromObject(sb), &v1alpha1.Sandbox{})).To(Succeed())
		}, sbTimeout, 50*time.Millisecond).Should(Succeed())
		Eventually(func() bool {
			return apierrors.IsNotFound(sbClient.Get(ctx, client.ObjectKeyFromObject(sb), &v1alpha1.Sandbox{}))
		}, sbTimeout, sbPoll).Should(BeTrue())
		_, err := sbGW.Sandboxes.Get(ctx, gwName(ns, "del"))
		Expect(gateway.IsNotFound(err)).To(BeTrue(), "gateway sandbox must be gone: %v", err)
	})

	It("leaves the gateway sandbox with deletionPolicy Orphan", func() {
		ns := sbNamespace(ctx)
		Expect(sbClient.Create(ctx, newSandbox(ns, "orphan", func(s *v1alpha1.Sandbox) {
			s.Spec.DeletionPolicy = v1alpha1.DeletionPolicyOrphan
		}))).To(Succeed())
		sb := waitReady(ctx, ns, "orphan")
		Expect(sbClient.Delete(ctx, sb)).To(Succeed())
		Eventually(func() bool {
			return apierrors.IsNotFound(sbClient.Get(ctx, client.ObjectKeyFromObject(sb), &v1alpha1.Sandbox{}))
		}, sbTimeout, sbPoll).Should(BeTrue())
		gw, err := sbGW.Sandboxes.Get(ctx, gwName(ns, "orphan"))
		Expect(err).NotTo(HaveOccurred())
		Expect(gw.GetMetadata().GetId()).To(Equal(sb.Status.SandboxID))
		Expect(gw.GetStatus().GetPhase()).NotTo(Equal(openshellv1.SandboxPhase_SANDBOX_PHASE_DELETING))
	})

	It("reports an unavailable gateway, deletes nothing and recovers by itself", func() {
		ns := sbNamespace(ctx)
		Expect(sbClient.Create(ctx, newSandbox(ns, "outage"))).To(Succeed())
		id := waitReady(ctx, ns, "outage").Status.SandboxID
		deletes := sbSim.CallCount("DeleteSandbox")
		sbSim.InjectError("GetSandbox", codes.Unavailable, "gateway down", -1)
		DeferCleanup(sbSim.ClearFaults)
		// Touch the spec so a reconcile runs now rather than at the resync.
		editSB(ctx, ns, "outage", func(sb *v1alpha1.Sandbox) { sb.Spec.Environment = map[string]string{"X": "1"} })
		sb := waitReason(ctx, ns, "outage", v1alpha1.ReasonGatewayUnavailable)
		Expect(readyCond(sb).Status).To(Equal(metav1.ConditionFalse))
		Expect(meta.IsStatusConditionTrue(sb.Status.Conditions, v1alpha1.ConditionReconciling)).To(BeTrue())
		Consistently(func() int { return sbSim.CallCount("DeleteSandbox") }, time.Second, 100*time.Millisecond).Should(Equal(deletes))
		gw, err := sbGW.Sandboxes.Get(ctx, gwName(ns, "outage"))
		Expect(err).To(HaveOccurred()) // the fault also hits the test's own Get
		Expect(gw).To(BeNil())
		sbSim.ClearFaults()
		Eventually(func(g Gomega) {
			s := waitReady(ctx, ns, "outage")
			g.Expect(s.Status.SandboxID).NotTo(Equal(id)) // environment change recreated it after recovery
		}, sbTimeout, sbPoll).Should(Succeed())
	})

	It("keeps the finalizer while the gateway is down, and reports a missing connection", func() {
		ns := sbNamespace(ctx)
		Expect(sbClient.Create(ctx, newSandbox(ns, "down"))).To(Succeed())
		sb := waitReady(ctx, ns, "down")
		sbSim.InjectError("GetSandbox", codes.Unavailable, "gateway down", -1)
		DeferCleanup(sbSim.ClearFaults)
		Expect(sbClient.Delete(ctx, sb)).To(Succeed())
		waitReason(ctx, ns, "down", v1alpha1.ReasonGatewayUnavailable)
		Consistently(func(g Gomega) {
			g.Expect(getSB(ctx, ns, "down")(g).Finalizers).To(ContainElement(v1alpha1.Finalizer))
		}, time.Second, 200*time.Millisecond).Should(Succeed())
		sbSim.ClearFaults()
		Eventually(func() bool {
			return apierrors.IsNotFound(sbClient.Get(ctx, client.ObjectKeyFromObject(sb), &v1alpha1.Sandbox{}))
		}, sbTimeout, sbPoll).Should(BeTrue())

		By("a connection that is not ready is a DependencyNotReady")
		sbReg.mu.Lock()
		sbReg.down = true
		sbReg.mu.Unlock()
		DeferCleanup(func() {
			sbReg.mu.Lock()
			sbReg.down = false
			sbReg.mu.Unlock()
		})
		Expect(sbClient.Create(ctx, newSandbox(ns, "noconn"))).To(Succeed())
		s := waitReason(ctx, ns, "noconn", v1alpha1.ReasonDependencyNotReady)
		Expect(meta.IsStatusConditionTrue(s.Status.Conditions, v1alpha1.ConditionReconciling)).To(BeTrue())
		sbReg.mu.Lock()
		sbReg.down = false
		sbReg.mu.Unlock()
		waitReady(ctx, ns, "noconn")
	})

	It("does not hot-loop once converged", func() {
		ns := sbNamespace(ctx)
		Expect(sbClient.Create(ctx, newSandbox(ns, "quiet"))).To(Succeed())
		sb := waitReady(ctx, ns, "quiet")
		// Let trailing reconciles (status-write echoes) settle.
		time.Sleep(time.Second)
		rv := getSB(ctx, ns, "quiet")(Default).ResourceVersion
		sbSim.ResetCounts()
		Consistently(func(g Gomega) {
			g.Expect(sbSim.MutatingCallCount()).To(BeZero())
			g.Expect(getSB(ctx, ns, "quiet")(g).ResourceVersion).To(Equal(rv))
		}, 4*time.Second, 250*time.Millisecond).Should(Succeed())
		Expect(sb.Status.SandboxID).NotTo(BeEmpty())
	})
})

// editSB changes a Sandbox's spec, retrying when the operator's own writes got there first.
func editSB(ctx context.Context, ns, name string, edit func(*v1alpha1.Sandbox)) {
	GinkgoHelper()
	Expect(clientretry.RetryOnConflict(clientretry.DefaultRetry, func() error {
		sb := getSB(ctx, ns, name)(Default)
		edit(sb)
		return sbClient.Update(ctx, sb)
	})).To(Succeed())
}
