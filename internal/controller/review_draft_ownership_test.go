package controller

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
)

// TestDraftDiscoveryRequiresTheSandboxsGatewaySandbox: the draft discovery reads and clears
// draft chunks only on a gateway sandbox owned by the Sandbox (namespace, name and UID),
// confirmed from the observation view when it holds the sandbox, else with GetSandbox.
// Another resource's under the same gateway name (an orphan of a previous owner of a reused
// namespace; a GatewayName collision) is neither read nor cleared: no proposal mirrors its
// chunks, those that did are deleted, the clear request waits, and no event names it.
func TestDraftDiscoveryRequiresTheSandboxsGatewaySandbox(t *testing.T) {
	sb := &v1alpha1.Sandbox{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "agent", UID: "attacker-uid",
		Annotations: map[string]string{v1alpha1.AnnotationClearProposals: "now"}},
		Status: v1alpha1.SandboxStatus{SandboxID: "forged"}}
	gwName := GatewayName("team", "agent")
	for _, oc := range ownershipCases(sb) {
		t.Run(oc.name, func(t *testing.T) {
			ctx := context.Background()
			g, fa, conns, view := oc.setup(gwName)
			own := oc.owner == sb
			// A proposal that mirrored the chunk before, labelled for the Sandbox as the
			// discovery's are.
			mirrored := &v1alpha1.PolicyProposal{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: proposalName("agent", "c1"),
				Labels: map[string]string{v1alpha1.LabelSandbox: "agent"}},
				Spec: v1alpha1.PolicyProposalSpec{SandboxRef: v1alpha1.LocalObjectReference{Name: "agent"}, ChunkID: "c1", Decision: v1alpha1.ProposalPending}}
			c := fake.NewClientBuilder().WithScheme(unitScheme(t)).
				WithObjects(sb.DeepCopy(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team"}}, mirrored).
				WithStatusSubresource(&v1alpha1.PolicyProposal{}, &v1alpha1.Sandbox{}).Build()
			ev := &eventLog{}
			d := &PolicyDraftReconciler{Client: c, Gateways: conns, Recorder: ev, View: view}
			if _, err := d.Reconcile(ctx, ctrl.Request{NamespacedName: keyOf(sb)}); err != nil {
				t.Fatal(err)
			}

			wantCalls := []string(nil)
			if own {
				wantCalls = []string{"Clear " + gwName, "GetDraft " + gwName}
			}
			wantGets := 1
			if oc.inView {
				wantGets = 0
			}
			if diff := cmp.Diff(wantCalls, fa.calls()); diff != "" {
				t.Errorf("approval calls (-want +got):\n%s", diff)
			}
			if g.calls["Sandboxes.Get"] != wantGets {
				t.Errorf("GetSandbox calls %d, want %d", g.calls["Sandboxes.Get"], wantGets)
			}
			err := c.Get(ctx, keyOf(mirrored), &v1alpha1.PolicyProposal{})
			if kept := err == nil; kept != own {
				t.Errorf("proposal of c1 kept %v, want %v (%v)", kept, own, err)
			}
			got := &v1alpha1.Sandbox{}
			if err := c.Get(ctx, keyOf(sb), got); err != nil {
				t.Fatal(err)
			}
			if _, has := got.Annotations[v1alpha1.AnnotationClearProposals]; has == own {
				t.Errorf("clear annotation present %v, want %v", has, !own)
			}
			for _, e := range ev.events {
				if leaks(e.Message) {
					t.Errorf("event names the other tenant's objects: %+v", e)
				}
			}
		})
	}
}

// TestGatewayNameCollisionDiscoversNothing: with colliding gateway names the attacker's
// Sandbox is Conflict, and the draft discovery reads nothing of the victim's gateway sandbox:
// no proposal, no event naming the victim's hosts or binaries.
func TestGatewayNameCollisionDiscoversNothing(t *testing.T) {
	c, conns, fa, ev, att := collisionAttack(t)
	d := &PolicyDraftReconciler{Client: c, Gateways: conns, Recorder: ev}
	if _, err := d.Reconcile(context.Background(), ctrl.Request{NamespacedName: keyOf(att)}); err != nil {
		t.Fatal(err)
	}
	list := &v1alpha1.PolicyProposalList{}
	if err := c.List(context.Background(), list, client.InNamespace("team")); err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 0 {
		t.Errorf("proposals mirror the victim's chunks: %d", len(list.Items))
	}
	if calls := fa.calls(); len(calls) != 0 {
		t.Errorf("draft calls on the victim's gateway sandbox: %v", calls)
	}
	for _, e := range ev.events {
		if strings.Contains(e.Message, victimHost) || strings.Contains(e.Message, victimBinary) {
			t.Errorf("event in the attacker's namespace names the victim's objects: %+v", e)
		}
	}
}
