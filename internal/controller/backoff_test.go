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
			if got := tc.b.delay(tc.failures); got != tc.want {
				t.Errorf("delay(%d) = %s, want %s", tc.failures, got, tc.want)
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

func TestFailureCounts(t *testing.T) {
	var f failureCounts
	a := types.NamespacedName{Namespace: "ns", Name: "a"}
	b := types.NamespacedName{Namespace: "ns", Name: "b"}
	if n := f.failed(a); n != 1 {
		t.Fatalf("first failure = %d", n)
	}
	if n := f.failed(a); n != 2 {
		t.Fatalf("second failure = %d", n)
	}
	if n := f.failed(b); n != 1 {
		t.Fatalf("objects are counted apart: %d", n)
	}
	f.succeeded(a)
	if n := f.failed(a); n != 1 {
		t.Fatalf("a success resets: %d", n)
	}
}
