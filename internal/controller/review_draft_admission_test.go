package controller

import (
	"context"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
	datamodelv1 "github.com/openshell-operator/openshell-operator/gen/openshell/datamodel/v1"
	sandboxv1 "github.com/openshell-operator/openshell-operator/gen/openshell/sandbox/v1"
	openshellv1 "github.com/openshell-operator/openshell-operator/gen/openshell/v1"
)

// recordingApprovals is fakeApprovals recording every call with the gateway sandbox it names.
type recordingApprovals struct {
	fakeApprovals
	nmu   sync.Mutex
	named []string
}

func (f *recordingApprovals) record(call, sandbox string) {
	f.nmu.Lock()
	defer f.nmu.Unlock()
	f.named = append(f.named, call+" "+sandbox)
}

func (f *recordingApprovals) GetDraft(ctx context.Context, sb, filter string) (*openshellv1.GetDraftPolicyResponse, error) {
	f.record("GetDraft", sb)
	return f.fakeApprovals.GetDraft(ctx, sb, filter)
}

func (f *recordingApprovals) Approve(ctx context.Context, sb, id string) (*openshellv1.ApproveDraftChunkResponse, error) {
	f.record("Approve", sb)
	return f.fakeApprovals.Approve(ctx, sb, id)
}

func (f *recordingApprovals) Reject(ctx context.Context, sb, id, reason string) error {
	f.record("Reject", sb)
	return f.fakeApprovals.Reject(ctx, sb, id, reason)
}

func (f *recordingApprovals) Edit(ctx context.Context, sb, id string, r *sandboxv1.NetworkPolicyRule) error {
	f.record("Edit", sb)
	return f.fakeApprovals.Edit(ctx, sb, id, r)
}

func (f *recordingApprovals) Undo(ctx context.Context, sb, id string) (*openshellv1.UndoDraftChunkResponse, error) {
	f.record("Undo", sb)
	return f.fakeApprovals.Undo(ctx, sb, id)
}

func (f *recordingApprovals) Clear(_ context.Context, sb string) (uint32, error) {
	f.record("Clear", sb)
	return 0, nil
}

func (f *recordingApprovals) calls() []string {
	f.nmu.Lock()
	defer f.nmu.Unlock()
	return append([]string(nil), f.named...)
}

// reviewConnections is one gateway: the fake's sandboxes with the given approvals (recorded
// ones, or drafts).
type reviewConnections struct {
	g *fakeGateway
	a approvalsGateway
}

func (c reviewConnections) Get(string) (gatewayAPI, error) {
	api := c.g.api()
	api.Approvals = c.a
	return api, nil
}

// putOwnedGatewaySandbox puts on g the gateway sandbox of sb, owned by it.
func putOwnedGatewaySandbox(g *fakeGateway, sb *v1alpha1.Sandbox) {
	name := GatewayName(sb.Namespace, sb.Name)
	g.sandboxes[name] = &openshellv1.Sandbox{Metadata: &datamodelv1.ObjectMeta{Name: name, Id: "id-" + sb.Name, Labels: OwnershipLabels(sb)},
		Spec:   &openshellv1.SandboxSpec{Template: &openshellv1.SandboxTemplate{Image: "example.com/agent:1"}},
		Status: &openshellv1.SandboxStatus{Phase: openshellv1.SandboxPhase_SANDBOX_PHASE_READY}}
}

// TestDraftDiscoveryAdmitsTheNamespace: the draft discovery is not built on the kernel, yet it
// applies the kernel's namespace admission before any gateway call. A Sandbox in a namespace
// the GatewayConnection refuses, with a forged status.sandboxID (tenant-writable) and the clear
// annotation, gets neither ClearDraftChunks nor GetDraftPolicy, and keeps its annotation; the
// same Sandbox in an admitted namespace gets both.
func TestDraftDiscoveryAdmitsTheNamespace(t *testing.T) {
	tests := []struct {
		name       string
		from       v1alpha1.NamespacesFrom
		wantCalls  []string
		annotation bool
	}{
		{name: "refused namespace: no gateway call", from: v1alpha1.NamespacesFromNone, annotation: true},
		{name: "admitted namespace: cleared and read", from: v1alpha1.NamespacesFromAll,
			wantCalls: []string{"Clear " + GatewayName("outsider", "x"), "GetDraft " + GatewayName("outsider", "x")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gc := &v1alpha1.GatewayConnection{ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.DefaultGatewayConnection},
				Spec: v1alpha1.GatewayConnectionSpec{Namespaces: &v1alpha1.AllowedNamespaces{From: tt.from}}}
			sb := &v1alpha1.Sandbox{ObjectMeta: metav1.ObjectMeta{Namespace: "outsider", Name: "x", UID: "u",
				Annotations: map[string]string{v1alpha1.AnnotationClearProposals: "now"}},
				Status: v1alpha1.SandboxStatus{SandboxID: "forged"}}
			ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "outsider"}}
			c := fake.NewClientBuilder().WithScheme(unitScheme(t)).WithObjects(gc, sb, ns).
				WithStatusSubresource(&v1alpha1.PolicyProposal{}, &v1alpha1.Sandbox{}).Build()
			g := newFakeGateway()
			putOwnedGatewaySandbox(g, sb)
			fa := &recordingApprovals{fakeApprovals: fakeApprovals{chunks: map[string]*openshellv1.PolicyChunk{}}}
			d := &PolicyDraftReconciler{Client: c, Gateways: reviewConnections{g: g, a: fa}}
			if _, err := d.Reconcile(context.Background(), ctrl.Request{NamespacedName: keyOf(sb)}); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.wantCalls, fa.calls()); diff != "" {
				t.Errorf("approval calls (-want +got):\n%s", diff)
			}
			if tt.annotation {
				if g.calls["Sandboxes.Get"] != 0 {
					t.Errorf("GetSandbox called %d times for a refused namespace", g.calls["Sandboxes.Get"])
				}
			}
			got := &v1alpha1.Sandbox{}
			if err := c.Get(context.Background(), client.ObjectKeyFromObject(sb), got); err != nil {
				t.Fatal(err)
			}
			if _, has := got.Annotations[v1alpha1.AnnotationClearProposals]; has != tt.annotation {
				t.Errorf("clear annotation present %v, want %v", has, tt.annotation)
			}
		})
	}
}
