package approvals

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
)

// forgedMessage is the admission policy's message, up to the user names.
const forgedMessage = "spec.approvals: an approval can only be added in your own name"

var proposalCount int

// newProposal creates a pending proposal in namespace as the operator would (as the admin).
func newProposal(namespace string) *v1alpha1.PolicyProposal {
	proposalCount++
	p := &v1alpha1.PolicyProposal{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: fmt.Sprintf("agent-chunk-%d", proposalCount),
			Labels: map[string]string{v1alpha1.LabelSandbox: "agent"}},
		Spec: v1alpha1.PolicyProposalSpec{SandboxRef: v1alpha1.LocalObjectReference{Name: "agent"},
			ChunkID: fmt.Sprintf("chunk-%d", proposalCount)},
	}
	Expect(admin.Create(ctx, p)).To(Succeed())
	return p
}

// reviewers binds the reviewer ClusterRole to users in namespace, as a platform admin would.
func reviewers(namespace string, users ...string) {
	rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "proposal-reviewers"},
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "openshell-proposal-reviewer"}}
	for _, u := range users {
		rb.Subjects = append(rb.Subjects, rbacv1.Subject{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: u})
	}
	Expect(admin.Create(ctx, rb)).To(Succeed())
	// The API server's RBAC authorizer learns of new bindings through an informer: wait until
	// it does, so no reviewer's first request is judged before its binding is in effect.
	for _, u := range users {
		Eventually(func(g Gomega) {
			sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{User: u,
				ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: namespace, Verb: "update",
					Group: v1alpha1.GroupVersion.Group, Resource: "policyproposals"}}}
			g.Expect(admin.Create(ctx, sar)).To(Succeed())
			g.Expect(sar.Status.Allowed).To(BeTrue(), "the reviewer binding of %s is not in effect yet", u)
		}).WithTimeout(30 * time.Second).WithPolling(50 * time.Millisecond).Should(Succeed())
	}
}

// approve has user add approval entries (user names as given) and set the decision Approved.
func approve(c client.Client, p *v1alpha1.PolicyProposal, names ...string) error {
	cur := &v1alpha1.PolicyProposal{}
	if err := c.Get(ctx, client.ObjectKeyFromObject(p), cur); err != nil {
		return err
	}
	cur.Spec.Decision = v1alpha1.ProposalApproved
	for _, n := range names {
		cur.Spec.Approvals = append(cur.Spec.Approvals, v1alpha1.ProposalApproval{User: n, Time: metav1.Now()})
	}
	return c.Update(ctx, cur)
}

var _ = Describe("approvals verified at admission", Ordered, func() {
	var alice, bob, carol, mallory client.Client

	BeforeAll(func() {
		for _, ns := range []string{"team-a", "team-b"} {
			Expect(admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
		}
		reviewers("team-a", "alice", "bob")
		reviewers("team-b", "mallory")
		alice, bob, carol, mallory = as("alice"), as("bob"), as("carol"), as("mallory")

		// The API server compiles a new admission policy asynchronously: wait until a forged
		// approval (dry run, nothing stored) is refused.
		probe := newProposal("team-a")
		Eventually(func() error {
			cur := &v1alpha1.PolicyProposal{}
			if err := alice.Get(ctx, client.ObjectKeyFromObject(probe), cur); err != nil {
				return err
			}
			cur.Spec.Decision = v1alpha1.ProposalApproved
			cur.Spec.Approvals = []v1alpha1.ProposalApproval{{User: "bob", Time: metav1.Now()}}
			return alice.Update(ctx, cur, client.DryRunAll)
		}, timeout, interval).Should(MatchError(ContainSubstring(forgedMessage)))
	})

	It("accepts an approval in the requester's own name", func() {
		p := newProposal("team-a")
		Expect(approve(alice, p, "alice")).To(Succeed())
		got := &v1alpha1.PolicyProposal{}
		Expect(admin.Get(ctx, client.ObjectKeyFromObject(p), got)).To(Succeed())
		Expect(got.Spec.Approvals).To(HaveLen(1))
		Expect(got.Spec.Approvals[0].User).To(Equal("alice"))
	})

	It("refuses an approval in someone else's name, naming both users", func() {
		p := newProposal("team-a")
		err := approve(alice, p, "bob")
		Expect(apierrors.IsForbidden(err)).To(BeTrue(), "error %v", err)
		Expect(err).To(MatchError(ContainSubstring(forgedMessage + ": the entry for bob was added by alice")))
		got := &v1alpha1.PolicyProposal{}
		Expect(admin.Get(ctx, client.ObjectKeyFromObject(p), got)).To(Succeed())
		Expect(got.Spec.Approvals).To(BeEmpty())
		Expect(got.Spec.Decision).To(Equal(v1alpha1.ProposalPending))
	})

	It("refuses one forged entry among an own one", func() {
		p := newProposal("team-a")
		Expect(approve(alice, p, "alice", "carol")).To(MatchError(ContainSubstring("the entry for carol was added by alice")))
	})

	It("lets a second approver add their own entry next to the first's (a quorum of two)", func() {
		p := newProposal("team-a")
		Expect(approve(alice, p, "alice")).To(Succeed())
		Expect(approve(bob, p, "bob")).To(Succeed())
		got := &v1alpha1.PolicyProposal{}
		Expect(admin.Get(ctx, client.ObjectKeyFromObject(p), got)).To(Succeed())
		users := []string{}
		for _, a := range got.Spec.Approvals {
			users = append(users, a.User)
		}
		Expect(users).To(ConsistOf("alice", "bob"))
	})

	It("refuses rewriting another approver's entry (a new time is a new approval)", func() {
		p := newProposal("team-a")
		Expect(approve(alice, p, "alice")).To(Succeed())
		cur := &v1alpha1.PolicyProposal{}
		Expect(bob.Get(ctx, client.ObjectKeyFromObject(p), cur)).To(Succeed())
		cur.Spec.Approvals[0].Time = metav1.NewTime(cur.Spec.Approvals[0].Time.Add(time.Hour))
		Expect(bob.Update(ctx, cur)).To(MatchError(ContainSubstring("the entry for alice was added by bob")))
	})

	It("lets a reviewer undo: back to Pending with the approvals removed", func() {
		p := newProposal("team-a")
		Expect(approve(alice, p, "alice")).To(Succeed())
		cur := &v1alpha1.PolicyProposal{}
		Expect(bob.Get(ctx, client.ObjectKeyFromObject(p), cur)).To(Succeed())
		cur.Spec.Decision, cur.Spec.Approvals = v1alpha1.ProposalPending, nil
		Expect(bob.Update(ctx, cur)).To(Succeed())
	})

	It("refuses a proposal created with someone's approval", func() {
		p := &v1alpha1.PolicyProposal{
			ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "forged-at-create"},
			Spec: v1alpha1.PolicyProposalSpec{SandboxRef: v1alpha1.LocalObjectReference{Name: "agent"}, ChunkID: "c",
				Decision: v1alpha1.ProposalApproved, Approvals: []v1alpha1.ProposalApproval{{User: "alice", Time: metav1.Now()}}},
		}
		Expect(admin.Create(ctx, p)).To(MatchError(ContainSubstring(forgedMessage + ": the entry for alice was added by")))
	})

	It("leaves deciding to RBAC: no role, or a role in another namespace, is forbidden", func() {
		p := newProposal("team-a")
		err := approve(carol, p, "carol")
		Expect(apierrors.IsForbidden(err)).To(BeTrue(), "error %v", err)
		Expect(err.Error()).NotTo(ContainSubstring(forgedMessage))
		err = approve(mallory, p, "mallory")
		Expect(apierrors.IsForbidden(err)).To(BeTrue(), "error %v", err)
		Expect(mallory.List(ctx, &v1alpha1.PolicyProposalList{}, client.InNamespace("team-a"))).To(Satisfy(apierrors.IsForbidden))

		own := newProposal("team-b")
		Expect(approve(mallory, own, "mallory")).To(Succeed())
	})

	It("lets reviewers read sandboxes but not change them", func() {
		sb := &v1alpha1.Sandbox{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "agent"}}
		Expect(admin.Create(ctx, sb)).To(Succeed())
		Expect(alice.Get(ctx, client.ObjectKeyFromObject(sb), sb)).To(Succeed())
		sb.Spec.Image = "busybox"
		Expect(alice.Update(ctx, sb)).To(Satisfy(apierrors.IsForbidden))
		Expect(alice.Delete(ctx, newProposal("team-a"))).To(Satisfy(apierrors.IsForbidden))
	})
})
