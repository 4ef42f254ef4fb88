package controller

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
)

// The kernel refuses, before any gateway call and without a finalizer, every kind whose
// namespace the connection does not admit; a PolicyProposal through its Sandbox's connection.
func TestKernelAdmission(t *testing.T) {
	closed := &v1alpha1.GatewayConnection{ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.DefaultGatewayConnection},
		Spec: v1alpha1.GatewayConnectionSpec{Namespaces: &v1alpha1.AllowedNamespaces{From: v1alpha1.NamespacesFromNone}}}
	const msg = `GatewayConnection "default" does not admit namespace "team" (spec.namespaces); a platform administrator grants it`
	want := []string{"Ready=False/NamespaceNotAllowed: " + msg, "Stalled=True/NamespaceNotAllowed: " + msg}

	t.Run("PolicyProposal", func(t *testing.T) {
		conns, g := oneGateway()
		sb := &v1alpha1.Sandbox{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "agent"}}
		pp := &v1alpha1.PolicyProposal{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "chunk-1", Generation: 1},
			Spec: v1alpha1.PolicyProposalSpec{SandboxRef: v1alpha1.LocalObjectReference{Name: "agent"}, ChunkID: "c1"}}
		c := fake.NewClientBuilder().WithScheme(unitScheme(t)).WithObjects(closed, namespaceObj("team"), sb, pp).
			WithStatusSubresource(&v1alpha1.PolicyProposal{}).Build()
		r := &PolicyProposalReconciler{Client: c, Gateways: conns}
		k := newKernel(c, kindPolicyProposal, func() *v1alpha1.PolicyProposal { return &v1alpha1.PolicyProposal{} },
			kindSteps[*v1alpha1.PolicyProposal](r), nil, false, Backoff{}, 0)
		k.Uses = r.gatewayUse
		got, _ := reconcileOnce(t, k, keyOf(pp))
		if diff := cmp.Diff(want, conditionsOf(got.Status.Conditions)); diff != "" {
			t.Errorf("conditions (-want +got):\n%s", diff)
		}
		if len(g.calls) != 0 {
			t.Errorf("gateway calls %v, want none", g.calls)
		}
	})

	t.Run("Sandbox", func(t *testing.T) {
		conns, g := oneGateway()
		sb := &v1alpha1.Sandbox{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "agent", Generation: 1}}
		c := fakeAPI(t, closed, namespaceObj("team"), sb)
		r := &SandboxReconciler{Client: c, Gateways: conns, View: pollView{}}
		k := newKernel(c, kindSandbox, func() *v1alpha1.Sandbox { return &v1alpha1.Sandbox{} }, kindSteps[*v1alpha1.Sandbox](r), nil, true, Backoff{}, 0)
		k.Uses = func(_ context.Context, sb *v1alpha1.Sandbox) (gatewayUse, bool) {
			return gatewayUse{Connection: gatewayRefName(sb.Spec.GatewayRef)}, true
		}
		got, _ := reconcileOnce(t, k, keyOf(sb))
		if diff := cmp.Diff(want, conditionsOf(got.Status.Conditions)); diff != "" {
			t.Errorf("conditions (-want +got):\n%s", diff)
		}
		if len(got.Finalizers) != 0 || len(g.calls) != 0 {
			t.Errorf("finalizers %v, gateway calls %v: want none", got.Finalizers, g.calls)
		}
	})
}
