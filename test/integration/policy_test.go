package integration

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"google.golang.org/grpc/codes"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
	openshellv1 "github.com/openshell-operator/openshell-operator/gen/openshell/v1"
	"github.com/openshell-operator/openshell-operator/internal/gateway"
)

func basePolicy() v1alpha1.SandboxPolicySpec {
	return v1alpha1.SandboxPolicySpec{
		Filesystem: &v1alpha1.FilesystemPolicy{ReadOnly: []v1alpha1.AbsolutePath{"/usr"}, ReadWrite: []v1alpha1.AbsolutePath{"/sandbox"}},
		Process:    &v1alpha1.ProcessPolicy{RunAsUser: "sandbox", RunAsGroup: "sandbox"},
	}
}

func sandboxUsing(ns, name, policy string) *v1alpha1.Sandbox {
	return &v1alpha1.Sandbox{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.SandboxSpec{
			GatewayRef: v1alpha1.GatewayReference{Name: "default"}, Image: "busybox",
			PolicyRef:      &v1alpha1.LocalObjectReference{Name: policy},
			UpdateStrategy: v1alpha1.UpdateStrategyRecreate, DeletionPolicy: v1alpha1.DeletionPolicyDelete,
		},
	}
}

func readyOf(sb *v1alpha1.Sandbox) func(g Gomega) *metav1.Condition {
	return condition(sb, func() []metav1.Condition { return sb.Status.Conditions }, v1alpha1.ConditionReady)
}

func policyReadyOf(sp *v1alpha1.SandboxPolicy) func(g Gomega) *metav1.Condition {
	return condition(sp, func() []metav1.Condition { return sp.Status.Conditions }, v1alpha1.ConditionReady)
}

// policyStatuses records every status.policy.status a sandbox passes through, in order.
func policyStatuses(sb *v1alpha1.Sandbox) (seen func() []v1alpha1.PolicyLoadStatus, stop func()) {
	wc, err := client.NewWithWatch(testEnv.Config, client.Options{Scheme: k8s.Scheme()})
	Expect(err).NotTo(HaveOccurred())
	w, err := wc.Watch(ctx, &v1alpha1.SandboxList{}, client.InNamespace(sb.Namespace))
	Expect(err).NotTo(HaveOccurred())
	out := make(chan v1alpha1.PolicyLoadStatus, 256)
	go func() {
		for ev := range w.ResultChan() {
			s, ok := ev.Object.(*v1alpha1.Sandbox)
			if ev.Type != watch.Modified || !ok || s.Name != sb.Name || s.Status.Policy == nil {
				continue
			}
			out <- s.Status.Policy.Status
		}
		close(out)
	}()
	var got []v1alpha1.PolicyLoadStatus
	return func() []v1alpha1.PolicyLoadStatus {
		for {
			select {
			case s, ok := <-out:
				if !ok {
					return got
				}
				if len(got) == 0 || got[len(got)-1] != s {
					got = append(got, s)
				}
			default:
				return got
			}
		}
	}, w.Stop
}

// globalPolicyDeleted: no global revision, or the newest one superseded (what a delete
// leaves behind, semantics §2.4).
func globalPolicyDeleted() bool {
	st, err := gw.Policies.GetGlobalStatus(ctx, 0)
	if gateway.IsNotFound(err) {
		return true
	}
	Expect(err).NotTo(HaveOccurred())
	return st.GetRevision().GetStatus() == openshellv1.PolicyStatus_POLICY_STATUS_SUPERSEDED
}

func networkRule(host string) map[string]v1alpha1.NetworkPolicyRule {
	return map[string]v1alpha1.NetworkPolicyRule{"api": {Name: "api",
		Endpoints: []v1alpha1.NetworkEndpoint{{Host: host, Ports: []v1alpha1.Port{443}}}}}
}

var _ = Describe("SandboxPolicy", func() {
	It("converges every sandbox that uses it: Loaded with the new version (Pending on the way when the operator is first), same sandbox id", func() {
		ns := newNamespace()
		sp := &v1alpha1.SandboxPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shared"}, Spec: basePolicy()}
		Expect(k8s.Create(ctx, sp)).To(Succeed())
		a, b := sandboxUsing(ns, "a", "shared"), sandboxUsing(ns, "b", "shared")
		Expect(k8s.Create(ctx, a)).To(Succeed())
		Expect(k8s.Create(ctx, b)).To(Succeed())
		for _, sb := range []*v1alpha1.Sandbox{a, b} {
			Eventually(readyOf(sb), timeout, interval).Should(haveStatusReason(metav1.ConditionTrue, v1alpha1.ReasonReady))
		}
		Eventually(func(g Gomega) {
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(sp), sp)).To(Succeed())
			g.Expect(meta.IsStatusConditionTrue(sp.Status.Conditions, v1alpha1.ConditionReady)).To(BeTrue())
			g.Expect(sp.Status.Sandboxes).To(Equal(v1alpha1.PolicyLoadCounts{Total: 2, Loaded: 2}))
			g.Expect(sp.Status.ObservedGeneration).To(Equal(sp.Generation))
		}, timeout, interval).Should(Succeed())
		oldHash := sp.Status.Hash
		Expect(oldHash).NotTo(BeEmpty())
		idA := a.Status.SandboxID
		// Version 0: the create-time baseline, acknowledged lazily; a push made before the
		// first supervisor poll becomes v1 (semantics §2.9), any later one v2 or more.
		versions := map[string]uint32{}
		for _, sb := range []*v1alpha1.Sandbox{a, b} {
			versions[sb.Name] = sb.Status.Policy.Version
		}

		seen, stop := policyStatuses(a)
		defer stop()
		Expect(edit(sp, func() { sp.Spec.NetworkPolicies = networkRule("api.github.com") })).To(Succeed())

		for _, sb := range []*v1alpha1.Sandbox{a, b} {
			Eventually(func(g Gomega) {
				g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(sb), sb)).To(Succeed())
				g.Expect(sb.Status.Policy).NotTo(BeNil())
				g.Expect(sb.Status.Policy.Status).To(Equal(v1alpha1.PolicyLoadLoaded))
				g.Expect(sb.Status.Policy.Version).To(BeNumerically(">", versions[sb.Name]))
				g.Expect(sb.Status.Policy.ActiveVersion).To(Equal(sb.Status.Policy.Version))
				g.Expect(meta.IsStatusConditionTrue(sb.Status.Conditions, v1alpha1.ConditionReady)).To(BeTrue())
			}, timeout, interval).Should(Succeed())
		}
		Expect(a.Status.SandboxID).To(Equal(idA), "a network policy change is applied in place")
		// Pending is shown only when the operator writes before the supervisor's next poll
		// (200 ms here): a status that goes straight to Loaded is as true, so the walk is
		// checked for order and for never failing, not for its intermediate state.
		Eventually(seen, timeout, interval).Should(ContainElement(v1alpha1.PolicyLoadLoaded))
		statuses := seen()
		Expect(statuses).NotTo(ContainElement(v1alpha1.PolicyLoadFailed), "walked %v", statuses)
		Expect(statuses[len(statuses)-1]).To(Equal(v1alpha1.PolicyLoadLoaded), "walked %v", statuses)

		live, err := gw.Policies.GetStatus(ctx, a.Status.GatewayName, 0)
		Expect(err).NotTo(HaveOccurred())
		Expect(live.GetRevision().GetVersion()).To(Equal(a.Status.Policy.Version))
		Expect(live.GetRevision().GetPolicy().GetNetworkPolicies()).To(HaveKey("api"))
		Eventually(func(g Gomega) {
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(sp), sp)).To(Succeed())
			g.Expect(sp.Status.Hash).NotTo(Equal(oldHash))
			g.Expect(sp.Status.Sandboxes).To(Equal(v1alpha1.PolicyLoadCounts{Total: 2, Loaded: 2}))
			g.Expect(a.Status.Policy.SourceHash).To(Equal(sp.Status.Hash))
		}, timeout, interval).Should(Succeed())
	})

	It("surfaces a load failure with the sandbox's error, then recreates on a landlock change", func() {
		ns := newNamespace()
		sp := &v1alpha1.SandboxPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "p"}, Spec: basePolicy()}
		Expect(k8s.Create(ctx, sp)).To(Succeed())
		sb := sandboxUsing(ns, "agent", "p")
		Expect(k8s.Create(ctx, sb)).To(Succeed())
		Eventually(readyOf(sb), timeout, interval).Should(haveStatusReason(metav1.ConditionTrue, v1alpha1.ReasonReady))
		oldID := sb.Status.SandboxID

		sim.FailPolicyLoad(sb.Status.GatewayName, "landlock: unsupported kernel feature")
		DeferCleanup(sim.FailPolicyLoad, sb.Status.GatewayName, "")
		Expect(edit(sp, func() {
			sp.Spec.NetworkPolicies = networkRule("pypi.org")
		})).To(Succeed())
		Eventually(readyOf(sb), timeout, interval).Should(haveStatusReason(metav1.ConditionFalse, v1alpha1.ReasonPolicyFailed))
		Expect(sb.Status.Policy.Status).To(Equal(v1alpha1.PolicyLoadFailed))
		Expect(sb.Status.Policy.LoadError).To(Equal("landlock: unsupported kernel feature"))
		Expect(meta.FindStatusCondition(sb.Status.Conditions, v1alpha1.ConditionReady).Message).To(ContainSubstring("landlock: unsupported kernel feature"))
		Eventually(policyReadyOf(sp), timeout, interval).Should(haveStatusReason(metav1.ConditionFalse, v1alpha1.ReasonPolicyFailed))
		Expect(sp.Status.Sandboxes.Failed).To(Equal(int32(1)))
		Expect(meta.IsStatusConditionTrue(sp.Status.Conditions, v1alpha1.ConditionStalled)).To(BeTrue())
		Expect(sb.Status.SandboxID).To(Equal(oldID), "a failed load never tears the sandbox down")

		sim.FailPolicyLoad(sb.Status.GatewayName, "")
		Expect(edit(sp, func() {
			sp.Spec.Landlock = &v1alpha1.LandlockPolicy{Compatibility: "hard_requirement"}
		})).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(readyOf(sb)(g)).To(haveStatusReason(metav1.ConditionTrue, v1alpha1.ReasonReady))
			g.Expect(sb.Status.SandboxID).NotTo(Equal(oldID), "landlock cannot change in place: updateStrategy Recreate")
		}, timeout, interval).Should(Succeed())
		live, err := gw.Sandboxes.Get(ctx, sb.Status.GatewayName)
		Expect(err).NotTo(HaveOccurred())
		Expect(live.GetSpec().GetPolicy().GetLandlock().GetCompatibility()).To(Equal("hard_requirement"))
		Eventually(policyReadyOf(sp), timeout, interval).Should(haveStatusReason(metav1.ConditionTrue, v1alpha1.ReasonReady))
	})

	It("reports what only the gateway can reject as Stalled with its message, leaving running sandboxes alone", func() {
		ns := newNamespace()
		sp := &v1alpha1.SandboxPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "p"}, Spec: basePolicy()}
		Expect(k8s.Create(ctx, sp)).To(Succeed())
		sb := sandboxUsing(ns, "agent", "p")
		Expect(k8s.Create(ctx, sb)).To(Succeed())
		Eventually(readyOf(sb), timeout, interval).Should(haveStatusReason(metav1.ConditionTrue, v1alpha1.ReasonReady))
		id := sb.Status.SandboxID

		// Every rule the simulator knows is also in the CRD schema, so the gateway-only rule
		// (a newer gateway's safety check, say) is injected as the gateway's own answer.
		const verdict = "policy contains unsafe content: network policy \"api\" allows a denied destination"
		sim.InjectError("UpdateConfig", codes.InvalidArgument, verdict, -1)
		DeferCleanup(sim.ClearFaults)
		Expect(edit(sp, func() {
			sp.Spec.NetworkPolicies = networkRule("internal.example.com")
		})).To(Succeed())
		Eventually(readyOf(sb), timeout, interval).Should(haveStatusReason(metav1.ConditionFalse, v1alpha1.ReasonPolicyRejected))
		Expect(meta.FindStatusCondition(sb.Status.Conditions, v1alpha1.ConditionReady).Message).To(ContainSubstring(verdict))
		Expect(meta.IsStatusConditionTrue(sb.Status.Conditions, v1alpha1.ConditionStalled)).To(BeTrue())
		Eventually(policyReadyOf(sp), timeout, interval).Should(haveStatusReason(metav1.ConditionFalse, v1alpha1.ReasonPolicyRejected))
		Expect(meta.FindStatusCondition(sp.Status.Conditions, v1alpha1.ConditionReady).Message).To(ContainSubstring(verdict))

		live, err := gw.Sandboxes.Get(ctx, sb.Status.GatewayName)
		Expect(err).NotTo(HaveOccurred())
		Expect(live.GetMetadata().GetId()).To(Equal(id))
		Expect(sb.Status.Phase).To(Equal(v1alpha1.SandboxPhaseReady))
		deletes := sim.CallCount("DeleteSandbox")
		Consistently(func() int { return sim.CallCount("DeleteSandbox") }, 2*time.Second, 200*time.Millisecond).Should(Equal(deletes))

		By("deleting the policy: the sandbox keeps running and says why")
		Expect(k8s.Delete(ctx, sp)).To(Succeed())
		Eventually(readyOf(sb), timeout, interval).Should(haveStatusReason(metav1.ConditionFalse, v1alpha1.ReasonDependencyNotReady))
		Expect(meta.FindStatusCondition(sb.Status.Conditions, v1alpha1.ConditionReady).Message).To(ContainSubstring("keeps its last policy"))
		live, err = gw.Sandboxes.Get(ctx, sb.Status.GatewayName)
		Expect(err).NotTo(HaveOccurred())
		Expect(live.GetMetadata().GetId()).To(Equal(id))
	})
})

var _ = Describe("GatewayConnection settings and global policy", func() {
	connectionStatus := func(g Gomega) *v1alpha1.GatewayConnection {
		gc := &v1alpha1.GatewayConnection{}
		g.Expect(k8s.Get(ctx, client.ObjectKey{Name: "default"}, gc)).To(Succeed())
		return gc
	}

	It("applies a global policy, reports sandboxes blocked by it, and deletes it when the reference goes", func() {
		ns := newNamespace()
		sp := &v1alpha1.SandboxPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "own"}, Spec: basePolicy()}
		Expect(k8s.Create(ctx, sp)).To(Succeed())
		// A global policy governs every tenant of the gateway: it lives in the operator's
		// cluster resource namespace.
		global := &v1alpha1.SandboxPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: systemNS, Name: "global-" + ns}, Spec: basePolicy()}
		global.Spec.NetworkPolicies = networkRule("registry.npmjs.org")
		Expect(k8s.Create(ctx, global)).To(Succeed())
		sb := sandboxUsing(ns, "agent", "own")
		Expect(k8s.Create(ctx, sb)).To(Succeed())
		Eventually(readyOf(sb), timeout, interval).Should(haveStatusReason(metav1.ConditionTrue, v1alpha1.ReasonReady))

		patchConnection(func(gc *v1alpha1.GatewayConnection) {
			gc.Spec.GlobalPolicyRef = &v1alpha1.NamespacedObjectReference{Namespace: systemNS, Name: global.Name}
		})
		DeferCleanup(func() {
			patchConnection(func(gc *v1alpha1.GatewayConnection) { gc.Spec.GlobalPolicyRef = nil })
			Eventually(globalPolicyDeleted, timeout, interval).Should(BeTrue())
		})
		var version uint32
		Eventually(func(g Gomega) {
			gc := connectionStatus(g)
			g.Expect(gc.Status.GlobalPolicyVersion).NotTo(BeZero())
			g.Expect(meta.IsStatusConditionTrue(gc.Status.Conditions, v1alpha1.ConditionReady)).To(BeTrue())
			version = gc.Status.GlobalPolicyVersion
		}, timeout, interval).Should(Succeed())
		st, err := gw.Policies.GetGlobalStatus(ctx, 0)
		Expect(err).NotTo(HaveOccurred())
		Expect(st.GetRevision().GetVersion()).To(Equal(version))
		Expect(st.GetRevision().GetPolicy().GetNetworkPolicies()).To(HaveKey("api"))
		Eventually(func(g Gomega) {
			g.Expect(readyOf(sb)(g).Message).To(ContainSubstring(fmt.Sprintf("gateway-wide policy (version %d)", version)))
			g.Expect(sb.Status.Policy.GlobalPolicyVersion).To(Equal(version))
		}, timeout, interval).Should(Succeed())

		By("a sandbox policy edit is refused by the gateway while the global policy exists")
		Expect(edit(sp, func() {
			sp.Spec.NetworkPolicies = networkRule("api.github.com")
		})).To(Succeed())
		Eventually(readyOf(sb), timeout, interval).Should(haveStatusReason(metav1.ConditionFalse, v1alpha1.ReasonGlobalPolicyActive))
		Expect(meta.FindStatusCondition(sb.Status.Conditions, v1alpha1.ConditionReady).Message).To(ContainSubstring("policy is managed globally"))
		Expect(meta.IsStatusConditionTrue(sb.Status.Conditions, v1alpha1.ConditionStalled)).To(BeFalse(), "it clears by itself once the global policy goes")

		By("editing the global SandboxPolicy updates the global policy")
		Expect(edit(global, func() {
			global.Spec.NetworkPolicies = networkRule("files.pythonhosted.org")
		})).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(connectionStatus(g).Status.GlobalPolicyVersion).To(BeNumerically(">", version))
		}, timeout, interval).Should(Succeed())

		By("removing the reference deletes the global policy, and the sandbox's own policy is pushed")
		patchConnection(func(gc *v1alpha1.GatewayConnection) { gc.Spec.GlobalPolicyRef = nil })
		Eventually(func(g Gomega) {
			g.Expect(connectionStatus(g).Status.GlobalPolicyVersion).To(BeZero())
		}, timeout, interval).Should(Succeed())
		Expect(globalPolicyDeleted()).To(BeTrue(), "the gateway supersedes every global revision on delete")
		Eventually(func(g Gomega) {
			g.Expect(readyOf(sb)(g)).To(haveStatusReason(metav1.ConditionTrue, v1alpha1.ReasonReady))
			g.Expect(sb.Status.Policy.Status).To(Equal(v1alpha1.PolicyLoadLoaded))
			g.Expect(sb.Status.Policy.GlobalPolicyVersion).To(BeZero())
		}, timeout, interval).Should(Succeed())
		live, err := gw.Policies.GetStatus(ctx, sb.Status.GatewayName, 0)
		Expect(err).NotTo(HaveOccurred())
		Expect(live.GetRevision().GetPolicy().GetNetworkPolicies()["api"].GetEndpoints()[0].GetHost()).To(Equal("api.github.com"))
	})

	It("manages typed settings: sets, reports the revision, rejects unknown keys with the gateway's message, deletes removed ones", func() {
		patchConnection(func(gc *v1alpha1.GatewayConnection) {
			gc.Spec.Settings = map[string]v1alpha1.SettingValue{
				"ocsf_json_enabled":      {Bool: ptr.To(true)},
				"proposal_approval_mode": {String: ptr.To("manual")},
			}
		})
		DeferCleanup(func() { patchConnection(func(gc *v1alpha1.GatewayConnection) { gc.Spec.Settings = nil }) })
		var revision uint64
		Eventually(func(g Gomega) {
			gc := connectionStatus(g)
			g.Expect(gc.Status.ManagedSettings).To(Equal([]string{"ocsf_json_enabled", "proposal_approval_mode"}))
			g.Expect(meta.IsStatusConditionTrue(gc.Status.Conditions, v1alpha1.ConditionReady)).To(BeTrue())
			revision = gc.Status.SettingsRevision
		}, timeout, interval).Should(Succeed())
		cfg, err := gw.GatewayConfig(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(cfg.GetSettings()["ocsf_json_enabled"].GetBoolValue()).To(BeTrue())
		Expect(cfg.GetSettings()["proposal_approval_mode"].GetStringValue()).To(Equal("manual"))
		Expect(cfg.GetSettingsRevision()).To(Equal(revision))

		By("converged: probes write nothing to the gateway")
		sets := sim.CallCount("UpdateConfig")
		Consistently(func() int { return sim.CallCount("UpdateConfig") }, 5*time.Second, 250*time.Millisecond).Should(Equal(sets))

		By("an unknown key stalls with the gateway's message; the connection stays usable")
		patchConnection(func(gc *v1alpha1.GatewayConnection) {
			gc.Spec.Settings["no_such_setting"] = v1alpha1.SettingValue{Bool: ptr.To(true)}
		})
		Eventually(func(g Gomega) {
			gc := connectionStatus(g)
			c := meta.FindStatusCondition(gc.Status.Conditions, v1alpha1.ConditionReady)
			g.Expect(c).To(haveStatusReason(metav1.ConditionFalse, v1alpha1.ReasonGatewayRejected))
			g.Expect(c.Message).To(ContainSubstring("unknown setting key 'no_such_setting'"))
			g.Expect(meta.IsStatusConditionTrue(gc.Status.Conditions, v1alpha1.ConditionStalled)).To(BeTrue())
		}, timeout, interval).Should(Succeed())
		_, err = gw.Health(ctx)
		Expect(err).NotTo(HaveOccurred())

		By("removing the settings deletes the ones this resource set")
		patchConnection(func(gc *v1alpha1.GatewayConnection) { gc.Spec.Settings = nil })
		Eventually(func(g Gomega) {
			gc := connectionStatus(g)
			g.Expect(gc.Status.ManagedSettings).To(BeEmpty())
			g.Expect(meta.IsStatusConditionTrue(gc.Status.Conditions, v1alpha1.ConditionReady)).To(BeTrue())
		}, timeout, interval).Should(Succeed())
		cfg, err = gw.GatewayConfig(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(cfg.GetSettings()["ocsf_json_enabled"].GetValue()).To(BeNil())
		Expect(cfg.GetSettingsRevision()).To(BeNumerically(">", revision))
		Eventually(func() []string {
			evs := &corev1.EventList{}
			Expect(k8s.List(ctx, evs)).To(Succeed())
			var reasons []string
			for _, e := range evs.Items {
				if e.InvolvedObject.Kind == "GatewayConnection" {
					reasons = append(reasons, e.Reason)
				}
			}
			return reasons
		}, timeout, interval).Should(ContainElements("SettingApplied", "SettingDeleted", v1alpha1.ReasonGatewayRejected))
	})
})
