package controller

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// Retry backoff defaults: the first retry is quick (a lost race or a blip), an outage is
// retried ever more rarely, and never less often than every five minutes.
const (
	defaultBackoffBase = 500 * time.Millisecond
	defaultBackoffMax  = 5 * time.Minute
)

// Backoff spaces the retries of failed reconciles of one object: exponential from Base,
// capped at Max. Zero values take the defaults (500ms, 5m).
type Backoff struct {
	Base, Max time.Duration
}

func (b Backoff) withDefaults() Backoff {
	if b.Base <= 0 {
		b.Base = defaultBackoffBase
	}
	if b.Max <= 0 {
		b.Max = defaultBackoffMax
	}
	return b
}

// delay is the wait before the retry that follows the given number of consecutive failures
// (1 for the first).
func (b Backoff) delay(failures int) time.Duration {
	b = b.withDefaults()
	d := b.Base
	for i := 1; i < failures && d < b.Max; i++ {
		d *= 2
	}
	return min(d, b.Max)
}

// rateLimiter is the workqueue rate limiter of controllers that return their errors:
// per-object exponential backoff, and an overall bucket so that an outage affecting every
// object does not retry them all at once.
func (b Backoff) rateLimiter() workqueue.TypedRateLimiter[reconcile.Request] {
	b = b.withDefaults()
	return workqueue.NewTypedMaxOfRateLimiter(
		workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](b.Base, b.Max),
		&workqueue.TypedBucketRateLimiter[reconcile.Request]{Limiter: rate.NewLimiter(rate.Limit(10), 100)},
	)
}

// failureCounts counts consecutive failed reconciles per object for controllers that write
// a failure into status and requeue instead of returning an error (so that an outage is
// one condition, not one error log line per object and retry). In memory: a restarted
// operator starts with quick retries, which is what it should do.
type failureCounts struct {
	mu sync.Mutex
	n  map[types.NamespacedName]int
}

// failed records one more failure and returns how many in a row there have been.
func (f *failureCounts) failed(key types.NamespacedName) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n == nil {
		f.n = map[types.NamespacedName]int{}
	}
	f.n[key]++
	return f.n[key]
}

// succeeded forgets the object's failures.
func (f *failureCounts) succeeded(key types.NamespacedName) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.n, key)
}
