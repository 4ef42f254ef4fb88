package controller

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
)

// SandboxPolicyReconciler validates SandboxPolicies and summarises how their sandboxes stand.
// It makes no gateway call: the Sandbox controller pushes policies, because revisions,
// versions and load status are per sandbox on the gateway.
type SandboxPolicyReconciler struct {
	client.Client
	Recorder eventRecorder
	// Backoff spaces the retries of failed reconciles.
	Backoff Backoff
}

// +kubebuilder:rbac:groups=openshell.dev,resources=sandboxpolicies,verbs=get;list;watch
// +kubebuilder:rbac:groups=openshell.dev,resources=sandboxpolicies/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=openshell.dev,resources=sandboxes,verbs=get;list;watch

// sync computes the canonical hash and the load counts of the sandboxes using the policy.
func (r *SandboxPolicyReconciler) sync(ctx context.Context, sp *v1alpha1.SandboxPolicy) step {
	policy, convErr := sandboxPolicyToGateway(&sp.Spec)
	hash := sandboxPolicyHash(policy)
	list := &v1alpha1.SandboxList{}
	if err := r.List(ctx, list, client.InNamespace(sp.Namespace)); err != nil {
		return fail(failed(v1alpha1.ReasonProgressing, fmt.Sprintf("listing sandboxes: %v", err), retryBackoff))
	}
	var uses []policyUse
	for i := range list.Items {
		sb := &list.Items[i]
		if sb.Spec.PolicyRef != nil && sb.Spec.PolicyRef.Name == sp.Name && sb.DeletionTimestamp.IsZero() {
			uses = append(uses, classifyPolicyUse(sb, hash))
		}
	}
	counts, o := deriveSandboxPolicyStatus(convErr, uses)
	sp.Status.Hash = hash
	sp.Status.Sandboxes = counts
	return step{outcome: o}
}

// finalize is never called: SandboxPolicies hold no finalizer (nothing on a gateway is theirs).
func (r *SandboxPolicyReconciler) finalize(context.Context, *v1alpha1.SandboxPolicy) step {
	return step{Release: true}
}

// SetupWithManager watches SandboxPolicies and the Sandboxes that reference them.
func (r *SandboxPolicyReconciler) SetupWithManager(mgr ctrl.Manager) error {
	k := newKernel(r.Client, kindSandboxPolicy, func() *v1alpha1.SandboxPolicy { return &v1alpha1.SandboxPolicy{} },
		kindSteps[*v1alpha1.SandboxPolicy](r), r.Recorder, false, r.Backoff, 0)
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.SandboxPolicy{}).
		// Update events map both the old and the new object, so a changed policyRef
		// refreshes the policy it left too.
		Watches(&v1alpha1.Sandbox{}, handler.EnqueueRequestsFromMapFunc(policyOfSandbox)).
		Named("sandboxpolicy").
		WithOptions(controllerOptions(r.Backoff, 0)).
		Complete(k)
}

func policyOfSandbox(_ context.Context, obj client.Object) []reconcile.Request {
	sb, ok := obj.(*v1alpha1.Sandbox)
	if !ok || sb.Spec.PolicyRef == nil {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: sb.Namespace, Name: sb.Spec.PolicyRef.Name}}}
}
