package controller

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
	datamodelv1 "github.com/openshell-operator/openshell-operator/gen/openshell/datamodel/v1"
)

func unitProvider(mut ...func(*v1alpha1.Provider)) *v1alpha1.Provider {
	p := &v1alpha1.Provider{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "openai", UID: "uid-p", Generation: 1, Finalizers: []string{v1alpha1.Finalizer}},
		Spec: v1alpha1.ProviderSpec{Type: "openai",
			CredentialsSecretRef: v1alpha1.CredentialsSecretReference{Name: "creds"}},
	}
	for _, m := range mut {
		m(p)
	}
	return p
}

func providerKernel(c client.Client, conns gatewayClients, ev *eventLog) *kernel[*v1alpha1.Provider] {
	r := &ProviderReconciler{Client: c, Gateways: conns, Recorder: ev}
	return newKernel(c, kindProvider, func() *v1alpha1.Provider { return &v1alpha1.Provider{} }, kindSteps[*v1alpha1.Provider](r), ev, true, Backoff{}, 0)
}

// TestProviderBranches runs one reconcile per branch and compares the whole resulting
// status, the requeue and the events.
func TestProviderBranches(t *testing.T) {
	name := GatewayName("team", "openai")
	creds := secretOf("team", "creds", map[string]string{"OPENAI_API_KEY": "sk-1"})
	type want struct {
		Conditions []string
		Status     v1alpha1.ProviderStatus
		Requeue    time.Duration
		Events     []string
		Calls      map[string]int
	}
	hash := credentialsHash(map[string]string{"OPENAI_API_KEY": "sk-1"})
	inSync := v1alpha1.ProviderStatus{GatewayName: name, ProviderID: "pid-1", CredentialsHash: hash, CredentialKeys: []string{"OPENAI_API_KEY"}}
	inSync.ObservedGeneration = 1
	tests := []struct {
		name    string
		objs    []client.Object
		prepare func(*fakeConnections, *fakeGateway)
		want    want
	}{
		{name: "creates the gateway provider and is Ready",
			objs: []client.Object{unitProvider(), creds},
			want: want{Conditions: []string{"Ready=True/Ready: gateway provider " + name + " is in sync"}, Status: inSync,
				Events: []string{"Normal/Created"}, Calls: map[string]int{"Providers.Get": 1, "Providers.Create": 1}}},
		{name: "a missing Secret stalls before any gateway call",
			objs: []client.Object{unitProvider()},
			want: want{Conditions: []string{"Ready=False/SecretNotFound: Secret team/creds not found", "Stalled=True/SecretNotFound: Secret team/creds not found"},
				Status: v1alpha1.ProviderStatus{CommonStatus: v1alpha1.CommonStatus{ObservedGeneration: 1}},
				Events: []string{"Warning/SecretNotFound"}, Calls: map[string]int{}}},
		{name: "a connection that is not ready waits on the dependency interval",
			objs:    []client.Object{unitProvider(), creds},
			prepare: func(c *fakeConnections, _ *fakeGateway) { c.down[v1alpha1.DefaultGatewayConnection] = true },
			want: want{Conditions: []string{
				`Ready=False/DependencyNotReady: gateway connection is not ready: GatewayConnection "default" not found or not yet probed`,
				`Reconciling=True/DependencyNotReady: gateway connection is not ready: GatewayConnection "default" not found or not yet probed`},
				Requeue: defaultDependencyInterval, Events: []string{"Normal/DependencyNotReady"}, Calls: map[string]int{}}},
		{name: "an unavailable gateway backs off and is not Stalled",
			objs: []client.Object{unitProvider(), creds},
			prepare: func(_ *fakeConnections, g *fakeGateway) {
				g.errs["Providers.Get"] = status.Error(codes.Unavailable, "connection refused")
			},
			want: want{Conditions: []string{"Ready=False/GatewayUnavailable: get provider: connection refused (Unavailable)",
				"Reconciling=True/GatewayUnavailable: get provider: connection refused (Unavailable)"},
				Requeue: defaultBackoffBase, Events: []string{"Warning/GatewayUnavailable"}, Calls: map[string]int{"Providers.Get": 1}}},
		{name: "a provider someone else owns is a Conflict, left untouched",
			objs: []client.Object{unitProvider(), creds},
			prepare: func(_ *fakeConnections, g *fakeGateway) {
				g.providers[name] = &datamodelv1.Provider{Metadata: &datamodelv1.ObjectMeta{Name: name, Labels: map[string]string{"app": "other"}}}
			},
			want: want{Conditions: []string{"Ready=False/Conflict: gateway provider " + name + " exists and is not owned by this resource; it is left untouched",
				"Stalled=True/Conflict: gateway provider " + name + " exists and is not owned by this resource; it is left untouched"},
				Status: v1alpha1.ProviderStatus{CommonStatus: v1alpha1.CommonStatus{ObservedGeneration: 1}},
				Events: []string{"Warning/Conflict"}, Calls: map[string]int{"Providers.Get": 1}}},
		{name: "an invalid argument stalls with the gateway's message",
			objs: []client.Object{unitProvider(), creds},
			prepare: func(_ *fakeConnections, g *fakeGateway) {
				g.errs["Providers.Create"] = status.Error(codes.InvalidArgument, "unknown type")
			},
			want: want{Conditions: []string{"Ready=False/GatewayRejected: create provider: unknown type (InvalidArgument)",
				"Stalled=True/GatewayRejected: create provider: unknown type (InvalidArgument)"},
				Status: v1alpha1.ProviderStatus{CommonStatus: v1alpha1.CommonStatus{ObservedGeneration: 1}},
				Events: []string{"Warning/GatewayRejected"}, Calls: map[string]int{"Providers.Get": 1, "Providers.Create": 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conns, g := oneGateway()
			if tt.prepare != nil {
				tt.prepare(conns, g)
			}
			ev := &eventLog{}
			k := providerKernel(fakeAPI(t, tt.objs...), conns, ev)
			p, res := reconcileOnce(t, k, keyOf(unitProvider()))
			st := p.Status
			got := want{Conditions: conditionsOf(st.Conditions), Requeue: res.RequeueAfter, Events: ev.reasons(), Calls: g.calls}
			st.Conditions = nil
			got.Status = st
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Fatalf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestProviderSecondReconcileWritesNothing: a converged Provider makes no gateway write and
// no status write (resourceVersion unchanged) on the next reconcile.
func TestProviderSecondReconcileWritesNothing(t *testing.T) {
	conns, g := oneGateway()
	c := fakeAPI(t, unitProvider(), secretOf("team", "creds", map[string]string{"OPENAI_API_KEY": "sk-1"}))
	k := providerKernel(c, conns, &eventLog{})
	first, _ := reconcileOnce(t, k, keyOf(unitProvider()))
	second, _ := reconcileOnce(t, k, keyOf(unitProvider()))
	if first.ResourceVersion != second.ResourceVersion {
		t.Fatalf("second reconcile wrote status: %s -> %s", first.ResourceVersion, second.ResourceVersion)
	}
	if g.calls["Providers.Create"] != 1 || g.calls["Providers.Update"] != 0 {
		t.Fatalf("gateway writes: %v", g.calls)
	}
}

// TestProviderFinalize covers deletion: in use waits, Orphan releases without a call,
// Delete removes the gateway provider, a FAILED_PRECONDITION reads InUse.
func TestProviderFinalize(t *testing.T) {
	name := GatewayName("team", "openai")
	deleting := func(p *v1alpha1.Provider) { now := metav1.Now(); p.DeletionTimestamp = &now }
	owned := func(g *fakeGateway) {
		g.providers[name] = &datamodelv1.Provider{Metadata: &datamodelv1.ObjectMeta{Name: name, Labels: OwnershipLabels(unitProvider())}}
	}
	user := &v1alpha1.Sandbox{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "agent"}, Spec: v1alpha1.SandboxSpec{Image: "x", Providers: []string{"openai"}}}
	tests := []struct {
		name       string
		provider   *v1alpha1.Provider
		objs       []client.Object
		prepare    func(*fakeGateway)
		gone       bool
		conditions []string
		calls      map[string]int
	}{
		{name: "used by a sandbox: waits, InUse", provider: unitProvider(deleting), objs: []client.Object{user}, prepare: owned,
			conditions: []string{"Ready=False/InUse: deletion waits: used by Sandbox(es) agent", "Reconciling=True/InUse: deletion waits: used by Sandbox(es) agent"},
			calls:      map[string]int{}},
		{name: "Orphan releases without a gateway call", provider: unitProvider(deleting, func(p *v1alpha1.Provider) { p.Spec.DeletionPolicy = v1alpha1.DeletionPolicyOrphan }),
			prepare: owned, gone: true, calls: map[string]int{}},
		{name: "deletes the gateway provider, then releases", provider: unitProvider(deleting), prepare: owned, gone: true,
			calls: map[string]int{"Providers.Get": 1, "Providers.Delete": 1}},
		{name: "refused as in use on the gateway: InUse, retried", provider: unitProvider(deleting),
			prepare: func(g *fakeGateway) {
				owned(g)
				g.errs["Providers.Delete"] = status.Error(codes.FailedPrecondition, "provider is attached to 1 sandbox")
			},
			conditions: []string{"Ready=False/InUse: deletion waits: delete provider: provider is attached to 1 sandbox (FailedPrecondition)",
				"Reconciling=True/InUse: deletion waits: delete provider: provider is attached to 1 sandbox (FailedPrecondition)"},
			calls: map[string]int{"Providers.Get": 1, "Providers.Delete": 1}},
		{name: "never deletes what it does not own", provider: unitProvider(deleting),
			prepare: func(g *fakeGateway) {
				g.providers[name] = &datamodelv1.Provider{Metadata: &datamodelv1.ObjectMeta{Name: name}}
			},
			gone: true, calls: map[string]int{"Providers.Get": 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conns, g := oneGateway()
			tt.prepare(g)
			k := providerKernel(fakeAPI(t, append(tt.objs, tt.provider)...), conns, &eventLog{})
			p, _ := reconcileOnce(t, k, keyOf(tt.provider))
			if gone := p == nil; gone != tt.gone {
				t.Fatalf("released=%v, want %v", gone, tt.gone)
			}
			var conds []string
			if p != nil {
				conds = conditionsOf(p.Status.Conditions)
			}
			if diff := cmp.Diff(tt.conditions, conds); diff != "" {
				t.Fatalf("conditions (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.calls, g.calls); diff != "" {
				t.Fatalf("calls (-want +got):\n%s", diff)
			}
		})
	}
}

// TestBackoffHoldsAgainstEvents is the regression of the soak's second finding: events that
// are no spec change (a status write, a label edit, a Sandbox event mapped to its Providers)
// must not call a failing gateway again before the backoff has run out; a new generation is
// tried at once.
func TestBackoffHoldsAgainstEvents(t *testing.T) {
	conns, g := oneGateway()
	g.errs["Providers.Get"] = status.Error(codes.Unavailable, "connection refused")
	c := fakeAPI(t, unitProvider(), secretOf("team", "creds", map[string]string{"OPENAI_API_KEY": "sk-1"}))
	k := providerKernel(c, conns, &eventLog{})
	reconcileOnce(t, k, keyOf(unitProvider()))
	for range 5 { // five unrelated events inside the backoff
		if _, res := reconcileOnce(t, k, keyOf(unitProvider())); res.RequeueAfter <= 0 {
			t.Fatalf("a held reconcile must requeue for the rest of the backoff, got %s", res.RequeueAfter)
		}
	}
	if n := g.calls["Providers.Get"]; n != 1 {
		t.Fatalf("%d gateway calls during one backoff, want 1", n)
	}
	p := &v1alpha1.Provider{}
	if err := c.Get(context.Background(), keyOf(unitProvider()), p); err != nil {
		t.Fatal(err)
	}
	p.Spec.Config = map[string]string{"k": "v"}
	p.Generation++ // the fake client does not bump generations
	if err := c.Update(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	reconcileOnce(t, k, keyOf(unitProvider()))
	if n := g.calls["Providers.Get"]; n != 2 {
		t.Fatalf("a spec change must be tried at once: %d calls, want 2", n)
	}
}

func TestSandboxProvidersChanged(t *testing.T) {
	base := unitSandbox(func(sb *v1alpha1.Sandbox) { sb.Spec.Providers = []string{"a"} })
	relabeled := base.DeepCopy()
	relabeled.Labels = map[string]string{"x": "y"}
	restatused := base.DeepCopy()
	restatused.Status.Phase = v1alpha1.SandboxPhaseReady
	moved := base.DeepCopy()
	moved.Spec.Providers = []string{"b"}
	deleting := base.DeepCopy()
	now := metav1.Now()
	deleting.DeletionTimestamp = &now
	for _, tt := range []struct {
		name string
		new  *v1alpha1.Sandbox
		want bool
	}{{"label edit", relabeled, false}, {"status write", restatused, false}, {"providers changed", moved, true}, {"deletion starts", deleting, true}} {
		if got := sandboxProvidersChanged.Update(event.UpdateEvent{ObjectOld: base, ObjectNew: tt.new}); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestProviderStaleLeaderDoesNotRecreateADeletedProvider: as for Sandboxes (seed 38), a former
// leader whose cache does not show the Provider's deletion yet creates no gateway provider
// for it and writes nothing.
func TestProviderStaleLeaderDoesNotRecreateADeletedProvider(t *testing.T) {
	conns, g := oneGateway()
	live := unitProvider(func(p *v1alpha1.Provider) { p.Status.ProviderID = "pid-1" })
	api := fakeAPI(t, live, secretOf("team", "creds", map[string]string{"OPENAI_API_KEY": "sk-1"}))
	if err := api.Delete(context.Background(), live); err != nil { // held by the finalizer
		t.Fatal(err)
	}
	stale := unitProvider(func(p *v1alpha1.Provider) { p.Status.ProviderID = "pid-1"; p.ResourceVersion = "1" })
	cache := staleCache(api, stale)
	k := providerKernel(cache, conns, &eventLog{})
	k.Reader = api
	res, err := k.Reconcile(context.Background(), ctrl.Request{NamespacedName: keyOf(live)})
	if err != nil {
		t.Fatal(err)
	}
	if g.calls["Providers.Create"] != 0 || res.RequeueAfter != staleRequeue {
		t.Fatalf("calls %v, result %+v; want no create and a quiet look again soon", g.calls, res)
	}
}
