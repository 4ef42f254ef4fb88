package controller

import (
	"context"
	"sync"
	"testing"

	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
)

// TestReconcileOnACacheOlderThanItsOwnWritesDoesNothing: a reconcile that reads the object as
// it was before the kernel's last writes (the cache has not seen them yet) writes nothing: no
// second status write with a later lastTransitionTime, no finalizer update meeting a conflict.
// Once the cache holds the writes, reconciles run as before.
func TestReconcileOnACacheOlderThanItsOwnWritesDoesNothing(t *testing.T) {
	sb := unitSandbox(func(sb *v1alpha1.Sandbox) { sb.Finalizers = nil })
	var mu sync.Mutex
	var stale client.Object
	writes := 0
	api := interceptor.NewClient(fakeAPI(t, sb).(client.WithWatch), interceptor.Funcs{
		Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			mu.Lock()
			defer mu.Unlock()
			if stale != nil {
				stale.(*v1alpha1.Sandbox).DeepCopyInto(obj.(*v1alpha1.Sandbox))
				return nil
			}
			return c.Get(ctx, key, obj, opts...)
		},
		Update: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
			writes++
			return c.Update(ctx, obj, opts...)
		},
		SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, p client.Patch, opts ...client.SubResourcePatchOption) error {
			writes++
			return c.SubResource(sub).Patch(ctx, obj, p, opts...)
		},
	})
	conns, _ := oneGateway()
	k, _ := sandboxKernel(api, conns, &eventLog{})
	before := &v1alpha1.Sandbox{}
	if err := api.Get(context.Background(), keyOf(sb), before); err != nil {
		t.Fatal(err)
	}

	reconcileOnce(t, k, keyOf(sb))
	if writes != 2 {
		t.Fatalf("first reconcile: %d writes, want 2 (finalizer, status)", writes)
	}

	mu.Lock()
	stale = before
	mu.Unlock()
	res, err := k.Reconcile(context.Background(), ctrl.Request{NamespacedName: keyOf(sb)})
	if err != nil || res != (ctrl.Result{}) || writes != 2 {
		t.Fatalf("reconcile on the stale cache: result %+v, error %v, %d writes; want nothing done", res, err, writes)
	}

	mu.Lock()
	stale = nil
	mu.Unlock()
	if _, err := k.Reconcile(context.Background(), ctrl.Request{NamespacedName: keyOf(sb)}); err != nil {
		t.Fatalf("reconcile once the cache caught up: %v", err)
	}
	if got := k.own.replaced[keyOf(sb)]; got != nil {
		t.Fatalf("versions %v still remembered once the cache caught up", got)
	}
}

// TestOwnWrites: only writes that changed the version are remembered (a write that changed
// nothing has no watch event to wait for), and a version the writes did not replace forgets
// the object.
func TestOwnWrites(t *testing.T) {
	key := types.NamespacedName{Namespace: "team", Name: "agent"}
	var w ownWrites
	w.wrote(key, "7", "7")
	w.wrote(key, "", "8")
	if w.stale(key, "7") {
		t.Fatal("a write that kept the version made the object stale")
	}
	w.wrote(key, "7", "8")
	w.wrote(key, "8", "9")
	for _, rv := range []string{"7", "8"} {
		if !w.stale(key, rv) {
			t.Fatalf("version %s, replaced by the kernel's writes, is not stale", rv)
		}
	}
	if w.stale(key, "9") || w.stale(key, "7") {
		t.Fatal("the cache caught up, but the object is still skipped")
	}
}
