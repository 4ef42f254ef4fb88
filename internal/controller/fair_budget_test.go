package controller

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/time/rate"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
)

// handBucket is a token bucket that holds a token only when the test hands one over.
type handBucket struct{ tokens chan struct{} }

func (b *handBucket) Allow() bool {
	select {
	case <-b.tokens:
		return true
	default:
		return false
	}
}

func (b *handBucket) Wait(ctx context.Context) error {
	select {
	case <-b.tokens:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// queued waits (on the limiter's state, not on time) until n calls wait.
func queued(t *testing.T, f *fairLimiter, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		f.mu.Lock()
		got := 0
		for _, q := range f.queues {
			got += len(q)
		}
		f.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d calls wait, want %d", got, n)
		}
	}
}

// TestFairLimiterTakesNamespacesInTurn: four writes of a burst's namespace wait for tokens,
// then one of another namespace; it gets the second token, not the fifth.
func TestFairLimiterTakesNamespacesInTurn(t *testing.T) {
	bucket := &handBucket{tokens: make(chan struct{}, 1)}
	f := newFairLimiter(bucket, 1)
	granted := make(chan string, 10)
	call := func(ns, name string, n int) {
		go func() {
			if err := f.Wait(withTenant(context.Background(), ns)); err != nil {
				t.Error(err)
			}
			granted <- name
		}()
		queued(t, f, n)
	}
	for i := range 4 {
		call("bulk", fmt.Sprintf("bulk-%d", i), i+1)
	}
	call("other", "single", 5)

	var order []string
	for range 5 {
		bucket.tokens <- struct{}{}
		order = append(order, <-granted)
	}
	if diff := cmp.Diff([]string{"bulk-0", "single", "bulk-1", "bulk-2", "bulk-3"}, order); diff != "" {
		t.Fatalf("grant order (-want +got):\n%s", diff)
	}
}

// TestFairLimiterPassesOnTheTokenOfACallThatGaveUp: a waiting call whose context ends
// returns its error, and the token taken for it goes to the next caller.
func TestFairLimiterPassesOnTheTokenOfACallThatGaveUp(t *testing.T) {
	bucket := &handBucket{tokens: make(chan struct{}, 1)}
	f := newFairLimiter(bucket, 1)
	ctx, cancel := context.WithCancel(withTenant(context.Background(), "a"))
	gaveUp := make(chan error, 1)
	go func() { gaveUp <- f.Wait(ctx) }()
	queued(t, f, 1)
	cancel()
	if err := <-gaveUp; !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait = %v, want context.Canceled", err)
	}
	bucket.tokens <- struct{}{}
	// The dispatcher took the token for the call that gave up and keeps it as spare.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		f.mu.Lock()
		spare := f.spare
		f.mu.Unlock()
		if spare {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the token was not kept for the next call")
		}
	}
	if !f.TryAccept() {
		t.Fatal("the next call did not get the spare token")
	}
	if f.TryAccept() {
		t.Fatal("a token was granted twice")
	}
}

// TestReconcileWritesAreMadeForTheRequestsNamespace: the finalizer and status writes of a
// Sandbox reconcile reach the client marked with the request's namespace, which is what the
// write budget shares out (without the kernel's withTenant they would all be "").
func TestReconcileWritesAreMadeForTheRequestsNamespace(t *testing.T) {
	var mu sync.Mutex
	var tenants []string
	seen := func(ctx context.Context) {
		mu.Lock()
		defer mu.Unlock()
		tenants = append(tenants, tenantOf(ctx))
	}
	sb := unitSandbox(func(sb *v1alpha1.Sandbox) { sb.Finalizers = nil })
	api := interceptor.NewClient(fakeAPI(t, sb).(client.WithWatch), interceptor.Funcs{
		Update: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
			seen(ctx)
			return c.Update(ctx, obj, opts...)
		},
		SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, p client.Patch, opts ...client.SubResourcePatchOption) error {
			seen(ctx)
			return c.SubResource(sub).Patch(ctx, obj, p, opts...)
		},
	})
	conns, _ := oneGateway()
	k, _ := sandboxKernel(api, conns, &eventLog{})
	reconcileOnce(t, k, keyOf(sb))
	if diff := cmp.Diff([]string{sb.Namespace, sb.Namespace}, tenants); diff != "" {
		t.Fatalf("tenants of the finalizer and status writes (-want +got):\n%s", diff)
	}
}

// TestFairBudgetLimitsAsClientGoDoes: a negative QPS leaves the client unlimited, as in
// client-go; zero takes client-go's defaults.
func TestFairBudgetLimitsAsClientGoDoes(t *testing.T) {
	for _, tt := range []struct {
		qps   float32
		burst int
		want  string
	}{{-1, 0, "none"}, {0, 0, "5 qps, burst 10"}, {200, 400, "200 qps, burst 400"}} {
		got := "none"
		if l := fairBudget(tt.qps, tt.burst); l != nil {
			b := l.bucket.(*rate.Limiter)
			got = fmt.Sprintf("%v qps, burst %d", l.QPS(), b.Burst())
		}
		if got != tt.want {
			t.Errorf("fairBudget(%v, %d) = %s, want %s", tt.qps, tt.burst, got, tt.want)
		}
	}
}
