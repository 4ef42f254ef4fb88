package controller

import (
	"time"

	"golang.org/x/time/rate"
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

// perObject is the per-object exponential part alone, for controllers that write a failure
// into status and requeue with its delay instead of returning an error (so that an outage
// is one condition, not one error log line per object and retry). When counts a failure and
// returns the wait before the next try; Forget resets the object after a success. In memory:
// a restarted operator starts with quick retries, which is what it should do.
func (b Backoff) perObject() workqueue.TypedRateLimiter[reconcile.Request] {
	b = b.withDefaults()
	return workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](b.Base, b.Max)
}
