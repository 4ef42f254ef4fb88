package controller

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

func TestBackoffDelay(t *testing.T) {
	custom := Backoff{Base: time.Second, Max: 10 * time.Second}
	for _, tc := range []struct {
		name     string
		b        Backoff
		failures int
		want     time.Duration
	}{
		{"defaults: first retry", Backoff{}, 1, 500 * time.Millisecond},
		{"defaults: doubles", Backoff{}, 2, time.Second},
		{"defaults: tenth", Backoff{}, 10, 256 * time.Second},
		{"defaults: capped at five minutes", Backoff{}, 11, 5 * time.Minute},
		{"defaults: stays capped", Backoff{}, 1000, 5 * time.Minute},
		{"custom: first", custom, 1, time.Second},
		{"custom: fourth", custom, 4, 8 * time.Second},
		{"custom: capped", custom, 5, 10 * time.Second},
		{"zero failures is the first retry", custom, 0, time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := nthRetry(tc.b, tc.failures); got != tc.want {
				t.Errorf("delay after %d failures = %s, want %s", tc.failures, got, tc.want)
			}
		})
	}
}

func TestBackoffRateLimiterIsExponentialAndCapped(t *testing.T) {
	rl := Backoff{Base: time.Second, Max: 4 * time.Second}.rateLimiter()
	req := reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "ns", Name: "a"}}
	var got []time.Duration
	for range 5 {
		got = append(got, rl.When(req))
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second, 4 * time.Second}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("delays = %v, want %v", got, want)
		}
	}
	rl.Forget(req)
	if d := rl.When(req); d != time.Second {
		t.Errorf("after Forget: %s, want the base again", d)
	}
}

// nthRetry is the per-object delay after n consecutive failures of one object (the first
// retry for n <= 1).
func nthRetry(b Backoff, n int) time.Duration {
	rl := b.perObject()
	req := reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "ns", Name: "a"}}
	var d time.Duration
	for range max(n, 1) {
		d = rl.When(req)
	}
	return d
}

func TestPerObjectRetriesAreCountedApartAndReset(t *testing.T) {
	rl := Backoff{Base: time.Second, Max: time.Minute}.perObject()
	a := reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "ns", Name: "a"}}
	b := reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "ns", Name: "b"}}
	if d := rl.When(a); d != time.Second {
		t.Fatalf("first failure = %s", d)
	}
	if d := rl.When(a); d != 2*time.Second {
		t.Fatalf("second failure = %s", d)
	}
	if d := rl.When(b); d != time.Second {
		t.Fatalf("objects are counted apart: %s", d)
	}
	rl.Forget(a)
	if d := rl.When(a); d != time.Second {
		t.Fatalf("a success resets: %s", d)
	}
}
