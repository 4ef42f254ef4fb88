package controller

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
	"github.com/openshell-operator/openshell-operator/internal/approvals"
)

// withApprovedRules adds to a sandbox's spec policy the rules approved through its
// PolicyProposals, merged as the gateway merged them, so a resync never pushes a policy
// without an approval (GitOps-safe: removing one is a reject or an undo, never a side effect
// of the spec). It also counts the approvals the spec does not contain yet. A sandbox without
// a spec policy and without approvals keeps nil (the gateway's default policy).
func (r *SandboxReconciler) withApprovedRules(ctx context.Context, sb *v1alpha1.Sandbox, spec *v1alpha1.SandboxPolicySpec, obs *sandboxObservation) (*v1alpha1.SandboxPolicySpec, *failure) {
	list := &v1alpha1.PolicyProposalList{}
	if err := r.List(ctx, list, client.InNamespace(sb.Namespace), client.MatchingLabels{v1alpha1.LabelSandbox: sb.Name}); err != nil {
		return nil, failed(v1alpha1.ReasonProgressing, fmt.Sprintf("listing policy proposals: %v", err), retryBackoff)
	}
	var none int32
	obs.ApprovedRulesNotInSpec, obs.HasProposals = &none, len(list.Items) > 0
	rules := approvals.Approved(list.Items, sb.Name)
	if len(rules) == 0 {
		return spec, nil
	}
	merged, notInSpec := approvals.Merge(spec, rules)
	n := int32(len(notInSpec))
	obs.ApprovedRulesNotInSpec = &n
	return merged, nil
}

// proposalSandbox maps a PolicyProposal to its Sandbox.
func proposalSandbox(_ context.Context, o client.Object) []reconcile.Request {
	p, ok := o.(*v1alpha1.PolicyProposal)
	if !ok {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: p.Namespace, Name: p.Spec.SandboxRef.Name}}}
}
