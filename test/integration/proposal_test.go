package integration

import (
	"fmt"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
	sandboxv1 "github.com/openshell-operator/openshell-operator/gen/openshell/sandbox/v1"
	openshellv1 "github.com/openshell-operator/openshell-operator/gen/openshell/v1"
	"github.com/openshell-operator/openshell-operator/internal/controller"
	"github.com/openshell-operator/openshell-operator/internal/metrics"
)

// proposalSandbox is a Ready sandbox using SandboxPolicy "own" (pypi.org allowed) in a new
// namespace, with its gateway name.
func proposalSandbox() (*v1alpha1.Sandbox, string) {
	ns := newNamespace()
	sp := &v1alpha1.SandboxPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "own"}, Spec: basePolicy()}
	sp.Spec.NetworkPolicies = networkRule("pypi.org")
	Expect(k8s.Create(ctx, sp)).To(Succeed())
	sb := sandboxUsing(ns, "agent", "own")
	Expect(k8s.Create(ctx, sb)).To(Succeed())
	Eventually(readyOf(sb), timeout, interval).Should(haveStatusReason(metav1.ConditionTrue, v1alpha1.ReasonReady))
	return sb, controller.GatewayName(ns, "agent")
}

// githubChunk is what the policy advisor proposes after a denied connection.
func githubChunk(host string) *sandboxv1.NetworkPolicyRule {
	return &sandboxv1.NetworkPolicyRule{Name: "allow_" + host,
		Endpoints: []*sandboxv1.NetworkEndpoint{{Host: host, Port: 443}},
		Binaries:  []*sandboxv1.NetworkBinary{{Path: "/usr/bin/curl"}}}
}

// propose adds a chunk on the gateway and waits for its PolicyProposal, mirrored.
func propose(sb *v1alpha1.Sandbox, gwName, host, securityNotes string) (*v1alpha1.PolicyProposal, string) {
	id, err := sim.AddDraftChunk(gwName, "allow_"+host, githubChunk(host), securityNotes)
	Expect(err).NotTo(HaveOccurred())
	p := &v1alpha1.PolicyProposal{}
	Eventually(func(g Gomega) {
		list := &v1alpha1.PolicyProposalList{}
		g.Expect(k8s.List(ctx, list, client.InNamespace(sb.Namespace), client.MatchingLabels{v1alpha1.LabelSandbox: sb.Name})).To(Succeed())
		found := false
		for i := range list.Items {
			if list.Items[i].Spec.ChunkID == id {
				*p, found = list.Items[i], true
			}
		}
		g.Expect(found).To(BeTrue(), "no proposal for chunk %s", id)
		g.Expect(p.Status.GatewayStatus).To(Equal(v1alpha1.ChunkPending))
		g.Expect(meta.IsStatusConditionTrue(p.Status.Conditions, v1alpha1.ConditionReady)).To(BeTrue())
	}, timeout, interval).Should(Succeed())
	return p, id
}

// pendingProposals reads openshell_policy_proposals_pending for a namespace from the
// manager's registry (the manager runs in this process).
func pendingProposals(g Gomega, namespace string) float64 {
	families, err := ctrlmetrics.Registry.Gather()
	g.Expect(err).NotTo(HaveOccurred())
	for _, f := range families {
		if f.GetName() != metrics.PendingProposalsName {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == metrics.LabelNamespace && l.GetValue() == namespace {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	return -1
}

// decide sets a proposal's decision (and more) as a reviewer would.
func decide(p *v1alpha1.PolicyProposal, mutate func(*v1alpha1.PolicyProposalSpec)) {
	Expect(edit(p, func() { mutate(&p.Spec) })).To(Succeed())
}

// gatewayRules are the network rule names of the gateway's latest revision for a sandbox.
func gatewayRules(gwName string) func(g Gomega) []string {
	return func(g Gomega) []string {
		st, err := gw.Policies.GetStatus(ctx, gwName, 0)
		g.Expect(err).NotTo(HaveOccurred())
		var out []string
		for k := range st.GetRevision().GetPolicy().GetNetworkPolicies() {
			out = append(out, k)
		}
		return out
	}
}

// chunkOn is the gateway's chunk.
func chunkOn(gwName, id string) func(g Gomega) *openshellv1.PolicyChunk {
	return func(g Gomega) *openshellv1.PolicyChunk {
		resp, err := gw.Approvals.GetDraft(ctx, gwName, "")
		g.Expect(err).NotTo(HaveOccurred())
		for _, c := range resp.GetChunks() {
			if c.GetId() == id {
				return c
			}
		}
		return nil
	}
}

func chunkStatus(gwName, id string) func(g Gomega) string {
	return func(g Gomega) string {
		c := chunkOn(gwName, id)(g)
		g.Expect(c).NotTo(BeNil())
		return c.GetStatus()
	}
}

// approvedHistory counts the gateway's approvals of a chunk.
func approvedHistory(gwName, id string) int {
	entries, err := gw.Approvals.History(ctx, gwName)
	Expect(err).NotTo(HaveOccurred())
	n := 0
	for _, e := range entries {
		if e.GetChunkId() == id && e.GetEventType() == "approved" {
			n++
		}
	}
	return n
}

func proposalReady(p *v1alpha1.PolicyProposal) func(g Gomega) *metav1.Condition {
	return condition(p, func() []metav1.Condition { return p.Status.Conditions }, v1alpha1.ConditionReady)
}

func readyMessage(p *v1alpha1.PolicyProposal) func(g Gomega) string {
	return func(g Gomega) string {
		c := proposalReady(p)(g)
		g.Expect(c).NotTo(BeNil())
		return string(c.Status) + "/" + c.Message
	}
}

var _ = Describe("PolicyProposal", func() {
	It("appears for a new draft chunk, mirrored and owned by the Sandbox, with an event", func() {
		sb, gwName := proposalSandbox()
		p, id := propose(sb, gwName, "api.github.com", "")
		Expect(p.Spec.Decision).To(Equal(v1alpha1.ProposalPending))
		Expect(p.Status.RuleName).To(Equal("allow_api.github.com"))
		Expect(p.Status.Endpoint).To(Equal("api.github.com:443"))
		Expect(p.Status.Binary).To(Equal("/usr/bin/curl"))
		Expect(p.Status.Rationale).To(Equal("observed denied connection"))
		Expect(p.Status.ConfidencePercent).To(Equal(int32(90)))
		Expect(p.Status.SecurityFlagged).To(BeFalse())
		Expect(p.Status.RequiredApprovals).To(Equal(int32(1)))
		Expect(p.Status.ProposedRule).NotTo(BeNil())
		Expect(p.Status.ProposedRule.Endpoints[0].Host).To(Equal("api.github.com"))
		Expect(meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionReady).Message).To(Equal("chunk " + id + " is pending on the gateway"))
		Expect(p.OwnerReferences).To(HaveLen(1))
		Expect(p.OwnerReferences[0].Kind).To(Equal("Sandbox"))
		Expect(p.OwnerReferences[0].UID).To(Equal(sb.UID))
		Expect(*p.OwnerReferences[0].Controller).To(BeTrue())
		Eventually(eventsOf(sb.Namespace, sb.Name), timeout, interval).Should(ContainElement(ContainSubstring("Proposed")))

		flagged, _ := propose(sb, gwName, "paste.example.com", "uploads to a paste site")
		Expect(flagged.Status.SecurityFlagged).To(BeTrue())
		Expect(flagged.Status.SecurityNotes).To(Equal("uploads to a paste site"))
		Eventually(func(g Gomega) float64 { return pendingProposals(g, sb.Namespace) }, timeout, interval).Should(Equal(2.0))
	})

	It("approves on the gateway: a new policy version is loaded and later resyncs never revert it", func() {
		sb, gwName := proposalSandbox()
		p, id := propose(sb, gwName, "api.github.com", "")
		decide(p, func(s *v1alpha1.PolicyProposalSpec) { s.Decision = v1alpha1.ProposalApproved })
		Eventually(chunkStatus(gwName, id), timeout, interval).Should(Equal("approved"))
		Eventually(func(g Gomega) {
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(p), p)).To(Succeed())
			g.Expect(p.Status.Outcome).NotTo(BeNil())
			g.Expect(p.Status.Outcome.Error).To(BeEmpty())
			g.Expect(p.Status.Outcome.PolicyVersion).NotTo(BeZero())
			g.Expect(p.Status.GatewayStatus).To(Equal(v1alpha1.ChunkApproved))
			g.Expect(meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionReady).Message).To(
				Equal(fmt.Sprintf("approved on the gateway: policy version %d", p.Status.Outcome.PolicyVersion)))
		}, timeout, interval).Should(Succeed())
		approvedAt := p.Status.Outcome.PolicyVersion
		Eventually(func(g Gomega) {
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(sb), sb)).To(Succeed())
			g.Expect(sb.Status.Policy).NotTo(BeNil())
			g.Expect(sb.Status.Policy.Status).To(Equal(v1alpha1.PolicyLoadLoaded))
			g.Expect(sb.Status.Policy.ActiveVersion).To(BeNumerically(">=", approvedAt))
			g.Expect(sb.Status.Policy.ApprovedRulesNotInSpec).To(Equal(int32(1)))
		}, timeout, interval).Should(Succeed())
		Expect(gatewayRules(gwName)(Default)).To(ContainElements("api", "allow_api.github.com"))
		Eventually(eventsOf(p.Namespace, p.Name), timeout, interval).Should(ContainElement(ContainSubstring("ProposalApproved")))

		By("resyncs (the observer lists every second here) keep the approved rule")
		Consistently(gatewayRules(gwName), "3s", interval).Should(ContainElement("allow_api.github.com"))
		Expect(approvedHistory(gwName, id)).To(Equal(1))

		By("a spec change pushes the spec with the approval, never without it")
		sp := &v1alpha1.SandboxPolicy{}
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: sb.Namespace, Name: "own"}, sp)).To(Succeed())
		Expect(edit(sp, func() {
			sp.Spec.NetworkPolicies["npm"] = v1alpha1.NetworkPolicyRule{Name: "npm",
				Endpoints: []v1alpha1.NetworkEndpoint{{Host: "registry.npmjs.org", Ports: []v1alpha1.Port{443}}}}
		})).To(Succeed())
		Eventually(gatewayRules(gwName), timeout, interval).Should(ContainElements("api", "npm", "allow_api.github.com"))

		By("committing the approved rule to the spec brings approvedRulesNotInSpec to 0")
		Expect(edit(sp, func() {
			sp.Spec.NetworkPolicies["allow_api.github.com"] = *p.Status.ProposedRule
		})).To(Succeed())
		Eventually(func(g Gomega) int32 {
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(sb), sb)).To(Succeed())
			return sb.Status.Policy.ApprovedRulesNotInSpec
		}, timeout, interval).Should(BeZero())
		Consistently(gatewayRules(gwName), "2s", interval).Should(ContainElement("allow_api.github.com"))
	})

	It("rejects with the reason, and undoes an approval (the gateway removes the rule)", func() {
		sb, gwName := proposalSandbox()
		rejected, rid := propose(sb, gwName, "paste.example.com", "")
		decide(rejected, func(s *v1alpha1.PolicyProposalSpec) {
			s.Decision, s.Reason = v1alpha1.ProposalRejected, "use the internal mirror"
		})
		Eventually(chunkStatus(gwName, rid), timeout, interval).Should(Equal("rejected"))
		Eventually(func(g Gomega) {
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(rejected), rejected)).To(Succeed())
			g.Expect(rejected.Status.GatewayStatus).To(Equal(v1alpha1.ChunkRejected))
			g.Expect(rejected.Status.Outcome).NotTo(BeNil())
			g.Expect(rejected.Status.Outcome.Decision).To(Equal(v1alpha1.ProposalRejected))
		}, timeout, interval).Should(Succeed())
		Eventually(eventsOf(rejected.Namespace, rejected.Name), timeout, interval).Should(ContainElement(ContainSubstring("ProposalRejected")))

		p, id := propose(sb, gwName, "api.github.com", "")
		decide(p, func(s *v1alpha1.PolicyProposalSpec) { s.Decision = v1alpha1.ProposalApproved })
		Eventually(gatewayRules(gwName), timeout, interval).Should(ContainElement("allow_api.github.com"))
		Eventually(func(g Gomega) v1alpha1.ChunkStatus {
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(p), p)).To(Succeed())
			return p.Status.GatewayStatus
		}, timeout, interval).Should(Equal(v1alpha1.ChunkApproved))
		decide(p, func(s *v1alpha1.PolicyProposalSpec) { s.Decision, s.Approvals = v1alpha1.ProposalPending, nil })
		Eventually(chunkStatus(gwName, id), timeout, interval).Should(Equal("pending"))
		Eventually(gatewayRules(gwName), timeout, interval).ShouldNot(ContainElement("allow_api.github.com"))
		Eventually(func(g Gomega) {
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(p), p)).To(Succeed())
			g.Expect(p.Status.GatewayStatus).To(Equal(v1alpha1.ChunkPending))
			g.Expect(p.Status.Outcome.Decision).To(Equal(v1alpha1.ProposalPending))
			g.Expect(p.Status.Outcome.PolicyVersion).NotTo(BeZero())
		}, timeout, interval).Should(Succeed())
		Consistently(gatewayRules(gwName), "2s", interval).ShouldNot(ContainElement("allow_api.github.com"))
	})

	It("edits the chunk, then approves the edited rule", func() {
		sb, gwName := proposalSandbox()
		p, id := propose(sb, gwName, "api.github.com", "")
		narrower := &v1alpha1.NetworkPolicyRule{Name: "allow_api.github.com",
			Endpoints: []v1alpha1.NetworkEndpoint{{Host: "api.github.com", Ports: []v1alpha1.Port{443}, Protocol: "rest", Access: "read-only"}},
			Binaries:  []v1alpha1.NetworkBinary{{Path: "/usr/bin/gh"}}}
		decide(p, func(s *v1alpha1.PolicyProposalSpec) { s.Decision, s.Rule = v1alpha1.ProposalApproved, narrower })
		Eventually(chunkStatus(gwName, id), timeout, interval).Should(Equal("approved"))
		c := chunkOn(gwName, id)(Default)
		Expect(c.GetProposedRule().GetBinaries()[0].GetPath()).To(Equal("/usr/bin/gh"))
		Expect(c.GetProposedRule().GetEndpoints()[0].GetAccess()).To(Equal("read-only"))
		Eventually(func(g Gomega) string {
			st, err := gw.Policies.GetStatus(ctx, gwName, 0)
			g.Expect(err).NotTo(HaveOccurred())
			r := st.GetRevision().GetPolicy().GetNetworkPolicies()["allow_api.github.com"]
			g.Expect(r).NotTo(BeNil())
			return r.GetBinaries()[0].GetPath()
		}, timeout, interval).Should(Equal("/usr/bin/gh"))
		Eventually(eventsOf(p.Namespace, p.Name), timeout, interval).Should(ContainElement(ContainSubstring("ProposalEdited")))
		Eventually(func(g Gomega) {
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(p), p)).To(Succeed())
			g.Expect(p.Status.ProposedRule.Binaries[0].Path).To(Equal(v1alpha1.BinaryPath("/usr/bin/gh")))
		}, timeout, interval).Should(Succeed())
	})

	It("shows a chunk superseded by a newer one for the same host, port and binary, and never decides it", func() {
		sb, gwName := proposalSandbox()
		old, oldID := propose(sb, gwName, "api.github.com", "")
		newer, newID := propose(sb, gwName, "api.github.com", "")
		Expect(newID).NotTo(Equal(oldID))
		Eventually(func(g Gomega) {
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(old), old)).To(Succeed())
			g.Expect(old.Status.SupersededBy).To(Equal(newID))
			g.Expect(old.Status.GatewayStatus).To(Equal(v1alpha1.ChunkRejected))
			g.Expect(meta.FindStatusCondition(old.Status.Conditions, v1alpha1.ConditionReady).Message).To(Equal("superseded by chunk " + newID))
		}, timeout, interval).Should(Succeed())
		decide(old, func(s *v1alpha1.PolicyProposalSpec) { s.Decision = v1alpha1.ProposalApproved })
		Consistently(chunkStatus(gwName, oldID), "2s", interval).Should(Equal("rejected"))
		Expect(approvedHistory(gwName, oldID)).To(BeZero())
		Expect(newer.Status.SupersededBy).To(BeEmpty())
	})

	It("waits for the namespace's quorum, and never approves twice after a restart between decision and call", func() {
		sb, gwName := proposalSandbox()
		ns := &corev1.Namespace{}
		Expect(k8s.Get(ctx, client.ObjectKey{Name: sb.Namespace}, ns)).To(Succeed())
		Expect(edit(ns, func() { ns.Annotations = map[string]string{v1alpha1.AnnotationApprovalQuorum: "2"} })).To(Succeed())
		p, id := propose(sb, gwName, "api.github.com", "")
		Eventually(func(g Gomega) int32 {
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(p), p)).To(Succeed())
			return p.Status.RequiredApprovals
		}, timeout, interval).Should(Equal(int32(2)))
		decide(p, func(s *v1alpha1.PolicyProposalSpec) {
			s.Decision = v1alpha1.ProposalApproved
			s.Approvals = []v1alpha1.ProposalApproval{{User: "alice", Time: metav1.Now()}}
		})
		Eventually(readyMessage(p), timeout, interval).Should(Equal("True/1 of 2 approvals"))
		Consistently(chunkStatus(gwName, id), "2s", interval).Should(Equal("pending"))

		By("an operator that recorded its intent and called the gateway, then crashed before recording the outcome")
		Expect(edit(p, func() {})).To(Succeed())
		p.Status.InFlight = &v1alpha1.ProposalOutcome{Decision: v1alpha1.ProposalApproved, Generation: p.Generation}
		Expect(k8s.Status().Update(ctx, p)).To(Succeed())
		_, err := gw.Approvals.Approve(ctx, gwName, id)
		Expect(err).NotTo(HaveOccurred())

		By("the second approval meets the quorum: the operator reads the gateway and does not approve again")
		decide(p, func(s *v1alpha1.PolicyProposalSpec) {
			s.Approvals = append(s.Approvals, v1alpha1.ProposalApproval{User: "bob", Time: metav1.Now()})
		})
		Eventually(func(g Gomega) {
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(p), p)).To(Succeed())
			g.Expect(p.Status.InFlight).To(BeNil())
			g.Expect(p.Status.Outcome).NotTo(BeNil())
			g.Expect(p.Status.Outcome.Generation).To(Equal(p.Generation))
			g.Expect(p.Status.Outcome.Error).To(BeEmpty())
			g.Expect(meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionReady).Status).To(Equal(metav1.ConditionTrue))
		}, timeout, interval).Should(Succeed())
		Expect(approvedHistory(gwName, id)).To(Equal(1))
	})

	It("acts on a quorum lowered on the namespace", func() {
		sb, gwName := proposalSandbox()
		ns := &corev1.Namespace{}
		Expect(k8s.Get(ctx, client.ObjectKey{Name: sb.Namespace}, ns)).To(Succeed())
		Expect(edit(ns, func() { ns.Annotations = map[string]string{v1alpha1.AnnotationApprovalQuorum: "3"} })).To(Succeed())
		p, id := propose(sb, gwName, "api.github.com", "")
		decide(p, func(s *v1alpha1.PolicyProposalSpec) {
			s.Decision = v1alpha1.ProposalApproved
			s.Approvals = []v1alpha1.ProposalApproval{{User: "alice", Time: metav1.Now()}}
		})
		Eventually(readyMessage(p), timeout, interval).Should(Equal("True/1 of 3 approvals"))
		Expect(edit(ns, func() { ns.Annotations[v1alpha1.AnnotationApprovalQuorum] = "1" })).To(Succeed())
		Eventually(chunkStatus(gwName, id), timeout, interval).Should(Equal("approved"))
	})

	It("is refused while a global policy is active, says so, and approves once it is gone", func() {
		sb, gwName := proposalSandbox()
		p, id := propose(sb, gwName, "api.github.com", "")
		// A global policy lives in the operator's cluster resource namespace.
		global := &v1alpha1.SandboxPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: systemNS, Name: "global-" + sb.Namespace}, Spec: basePolicy()}
		Expect(k8s.Create(ctx, global)).To(Succeed())
		setGlobal := func(ref *v1alpha1.NamespacedObjectReference) {
			gc := &v1alpha1.GatewayConnection{ObjectMeta: metav1.ObjectMeta{Name: "default"}}
			Expect(edit(gc, func() { gc.Spec.GlobalPolicyRef = ref })).To(Succeed())
		}
		setGlobal(&v1alpha1.NamespacedObjectReference{Namespace: systemNS, Name: global.Name})
		DeferCleanup(func() {
			setGlobal(nil)
			Eventually(globalPolicyDeleted, timeout, interval).Should(BeTrue())
		})
		Eventually(globalPolicyDeleted, timeout, interval).Should(BeFalse())

		decide(p, func(s *v1alpha1.PolicyProposalSpec) { s.Decision = v1alpha1.ProposalApproved })
		Eventually(proposalReady(p), timeout, interval).Should(haveStatusReason(metav1.ConditionFalse, v1alpha1.ReasonGlobalPolicyActive))
		Expect(meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionReady).Message).To(ContainSubstring("policy is managed globally"))
		Expect(meta.IsStatusConditionTrue(p.Status.Conditions, v1alpha1.ConditionStalled)).To(BeFalse())
		Expect(p.Status.Outcome).NotTo(BeNil())
		Expect(p.Status.Outcome.Error).To(ContainSubstring("policy is managed globally"))
		Expect(chunkStatus(gwName, id)(Default)).To(Equal("pending"))

		setGlobal(nil)
		Eventually(globalPolicyDeleted, timeout, interval).Should(BeTrue())
		Eventually(chunkStatus(gwName, id), timeout, interval).Should(Equal("approved"))
	})

	It("clears pending chunks on request and deletes their proposals; a deleted sandbox takes its proposals", func() {
		sb, gwName := proposalSandbox()
		pending, _ := propose(sb, gwName, "paste.example.com", "")
		kept, keptID := propose(sb, gwName, "api.github.com", "")
		decide(kept, func(s *v1alpha1.PolicyProposalSpec) { s.Decision = v1alpha1.ProposalApproved })
		Eventually(chunkStatus(gwName, keptID), timeout, interval).Should(Equal("approved"))

		Expect(edit(sb, func() {
			sb.Annotations = map[string]string{v1alpha1.AnnotationClearProposals: "2026-05-04T09:00:00Z"}
		})).To(Succeed())
		Eventually(func() bool {
			return k8s.Get(ctx, client.ObjectKeyFromObject(pending), &v1alpha1.PolicyProposal{}) != nil
		}, timeout, interval).Should(BeTrue(), "the cleared chunk's proposal is deleted")
		Eventually(func(g Gomega) map[string]string {
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(sb), sb)).To(Succeed())
			return sb.Annotations
		}, timeout, interval).ShouldNot(HaveKey(v1alpha1.AnnotationClearProposals))
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(kept), kept)).To(Succeed(), "an approved chunk is not cleared")
		Eventually(eventsOf(sb.Namespace, sb.Name), timeout, interval).Should(ContainElement(ContainSubstring("ProposalsCleared")))

		Expect(k8s.Delete(ctx, sb)).To(Succeed())
		Eventually(func(g Gomega) []v1alpha1.PolicyProposal {
			list := &v1alpha1.PolicyProposalList{}
			g.Expect(k8s.List(ctx, list, client.InNamespace(sb.Namespace))).To(Succeed())
			return list.Items
		}, timeout, interval).Should(BeEmpty())
	})
})
