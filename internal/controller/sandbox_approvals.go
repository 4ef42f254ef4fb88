package controller

import (
	"context"
	"fmt"
	"sort"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
	sandboxv1 "github.com/openshell-operator/openshell-operator/gen/openshell/sandbox/v1"
	"github.com/openshell-operator/openshell-operator/internal/approvals"
)

// chunkApproved is the gateway's status string of an approved draft chunk.
const chunkApproved = "approved"

// listProposals records whether the sandbox has PolicyProposals. The list is only a hint of
// whether to read the gateway's approved chunks at all (withApprovedRules): a proposal's
// status is tenant-writable, so nothing in it ever becomes a rule that is pushed.
func (r *SandboxReconciler) listProposals(ctx context.Context, sb *v1alpha1.Sandbox, obs *sandboxObservation) *failure {
	list := &v1alpha1.PolicyProposalList{}
	if err := r.List(ctx, list, client.InNamespace(sb.Namespace), client.MatchingLabels{v1alpha1.LabelSandbox: sb.Name}); err != nil {
		return failed(v1alpha1.ReasonProgressing, fmt.Sprintf("listing policy proposals: %v", err), retryBackoff)
	}
	obs.HasProposals = len(list.Items) > 0
	if !obs.HasProposals {
		var none int32
		obs.ApprovedRulesNotInSpec = &none
	}
	return nil
}

// withApprovedRules returns the policy to push: desired (the spec's policy, spec in the
// CRD's shape) with the rules the gateway approved for this sandbox merged in, as the
// gateway merged them, so a resync never pushes a policy without an approval (GitOps-safe:
// removing one is a reject or an undo, never a side effect of the spec). It also counts the
// approvals the spec does not contain yet. A sandbox without a spec policy and without
// approvals keeps nil (the gateway's default policy).
//
// The rules come from the gateway's approved draft chunks of refs.Name, read only after the
// sync checked that this Sandbox owns that gateway sandbox; never from PolicyProposal status.
// Why not status.inFlight either: it let a resync racing an approval call push the rule
// before the gateway had it. Without it, a resync that reads the chunks just before the
// approval lands may push the policy without the rule; the approval's status change on the
// proposal enqueues this sandbox again, whose read finds the chunk approved and pushes it
// back. The rule may thus be missing until that reconcile, never for good.
//
// A failed read fails the reconcile and nothing is pushed: pushing the spec alone would
// remove the approved rules from the sandbox.
func (r *SandboxReconciler) withApprovedRules(ctx context.Context, gw approvalsGateway, sb *v1alpha1.Sandbox, refs sandboxRefs,
	spec *v1alpha1.SandboxPolicySpec, desired *sandboxv1.SandboxPolicy, obs *sandboxObservation) (*sandboxv1.SandboxPolicy, *failure) {
	if !obs.HasProposals {
		return desired, nil
	}
	if gw == nil {
		return nil, failed(v1alpha1.ReasonProgressing, "reading approved draft chunks: the gateway connection has no approvals client", retryBackoff)
	}
	draft, err := gw.GetDraft(ctx, refs.Name, chunkApproved)
	if err != nil {
		return nil, gatewayFailure("get approved draft chunks", err)
	}
	var rules []approvals.Rule
	for _, c := range draft.GetChunks() {
		// The filter is the gateway's; a chunk of another status never counts all the same.
		if c.GetStatus() != chunkApproved || c.GetRuleName() == "" || c.GetProposedRule() == nil {
			continue
		}
		rule, err := ruleFromGateway(c.GetProposedRule())
		if err != nil {
			return nil, failed(v1alpha1.ReasonProgressing, fmt.Sprintf("approved draft chunk %s: %v", c.GetId(), err), retryBackoff)
		}
		rules = append(rules, approvals.Rule{Name: c.GetRuleName(), Rule: *rule, Proposal: proposalName(sb.Name, c.GetId())})
	}
	// Sorted by proposal name, so the merge does not depend on the gateway's order.
	sort.Slice(rules, func(i, j int) bool { return rules[i].Proposal < rules[j].Proposal })
	var n int32
	obs.ApprovedRulesNotInSpec = &n
	if len(rules) == 0 {
		return desired, nil
	}
	merged, notInSpec := approvals.Merge(spec, rules)
	n = int32(len(notInSpec))
	policy, err := sandboxPolicyToGateway(merged)
	if err != nil {
		return nil, failed(v1alpha1.ReasonInvalidSpec, "desired spec: "+err.Error(), retryOnChange)
	}
	return policy, nil
}

// proposalSandbox maps a PolicyProposal to its Sandbox.
func proposalSandbox(_ context.Context, o client.Object) []reconcile.Request {
	p, ok := o.(*v1alpha1.PolicyProposal)
	if !ok {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: p.Namespace, Name: p.Spec.SandboxRef.Name}}}
}
