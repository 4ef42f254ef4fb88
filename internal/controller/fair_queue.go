package controller

import (
	"context"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// Work order: every controller's queue is fair between namespaces, and a change the gateway
// reported goes ahead of other work.
//
// A workqueue is FIFO: one tenant creating a thousand Sandboxes at once would put every other
// namespace's reconciles behind its thousand, and the reconcile that only has to write Ready
// (the gateway already did the work) behind the first reconciles of all of them. The queue
// below is controller-runtime's priority queue with a namespace's backlog folded into each
// item's priority: an item added is a namespace's k-th waiting item (counted like start-time
// fair queuing: from the later of the namespace's newest item and the last item handed to a
// worker), and within one caller priority it goes ahead of every namespace's (k+1)-th, for k
// below fairLevels; deeper items share the last level, in FIFO order. So a namespace with a
// few items never waits behind another's burst, however large, and a burst's own items keep
// their order.
//
// The levels are few on purpose: the priority queue labels its depth metric by priority and
// falls back to one placeholder label past 25 distinct priorities, which would leave the
// workqueue_depth series wrong. Three caller priorities (low, normal, observed) × fairLevels
// stay within that.
//
// The limit of static levels: an item's level is fixed when it is added, so a burst's deep
// items go after any namespace's first fairLevels−1 items added later, for as long as such
// items keep coming (an operator that is overloaded by many namespaces at once); with no
// backlog elsewhere they are served in FIFO order as before.

// observedPriority is the priority of a reconcile the observation loop asked for because the
// gateway reported a change (a sandbox became READY, failed, vanished). Finishing what the
// gateway has done costs one status write and is what a user is waiting to see, so it goes
// ahead of first reconciles; it cannot starve them, because the gateway changes a sandbox only
// when it was asked to (or once when it fails).
const observedPriority = 1

// fairLevels is how many backlog depths a namespace's items are told apart by (see above).
const fairLevels = 6

// controllerOptions are every controller's options: the retry backoff, a namespace-fair queue,
// and the worker count (0: controller-runtime's default of one).
func controllerOptions(b Backoff, workers int) controller.Options {
	return controller.Options{MaxConcurrentReconciles: workers, RateLimiter: b.rateLimiter(), NewQueue: newFairQueue}
}

// newFairQueue is controller.Options.NewQueue for a namespace-fair priority queue.
func newFairQueue(name string, rl workqueue.TypedRateLimiter[reconcile.Request]) workqueue.TypedRateLimitingInterface[reconcile.Request] {
	inner := priorityqueue.New(name, func(o *priorityqueue.Opts[reconcile.Request]) {
		o.RateLimiter = rl
		o.Log = logr.Discard()
	})
	return &fairQueue{PriorityQueue: inner, newest: map[string]uint64{}, queued: map[reconcile.Request]uint64{}}
}

// fairQueue is a priority queue that orders the items of one priority by their namespace's
// backlog (see the top of this file).
// Everything but adding and getting is the underlying queue's (rate limiting, dedup, delays,
// the processing/dirty bookkeeping).
type fairQueue struct {
	priorityqueue.PriorityQueue[reconcile.Request]

	mu sync.Mutex
	// served is the tag of the newest item handed to a worker: the fair queue's clock.
	served uint64
	// newest is, per namespace, the tag of its newest queued item; a namespace whose newest
	// tag has been served is dropped (it starts at the clock again).
	newest map[string]uint64
	// queued holds the tag of each item in the queue, so that adding a queued item again keeps
	// its place and does not count against its namespace.
	queued map[reconcile.Request]uint64
}

// Add implements workqueue.Interface.
func (q *fairQueue) Add(item reconcile.Request) { q.AddWithOpts(priorityqueue.AddOpts{}, item) }

// AddAfter implements workqueue.DelayingInterface.
func (q *fairQueue) AddAfter(item reconcile.Request, after time.Duration) {
	q.AddWithOpts(priorityqueue.AddOpts{After: after}, item)
}

// AddRateLimited implements workqueue.RateLimitingInterface.
func (q *fairQueue) AddRateLimited(item reconcile.Request) {
	q.AddWithOpts(priorityqueue.AddOpts{RateLimited: true}, item)
}

// AddWithOpts implements priorityqueue.PriorityQueue: each item goes in at its namespace's
// backlog level within the caller's priority.
func (q *fairQueue) AddWithOpts(o priorityqueue.AddOpts, items ...reconcile.Request) {
	priority := ptr.Deref(o.Priority, 0)
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, item := range items {
		level := min(q.tag(item)-q.served-1, fairLevels-1)
		composed := priority*fairLevels + (fairLevels - 1 - int(level))
		o.Priority = &composed
		// Under q.mu, so a Get cannot take the item between its tag and its add.
		q.PriorityQueue.AddWithOpts(o, item)
	}
}

// tag is item's fair tag, counted from the clock: a queued item keeps its own; q.mu is held.
func (q *fairQueue) tag(item reconcile.Request) uint64 {
	if t, ok := q.queued[item]; ok {
		return max(t, q.served+1)
	}
	t := max(q.served, q.newest[item.Namespace]) + 1
	q.newest[item.Namespace] = t
	q.queued[item] = t
	return t
}

// Get implements workqueue.Interface.
func (q *fairQueue) Get() (reconcile.Request, bool) {
	item, _, shutdown := q.GetWithPriority()
	return item, shutdown
}

// GetWithPriority implements priorityqueue.PriorityQueue. It returns the caller's priority,
// not the composed one, so that a requeue is levelled afresh; an observed change's priority
// lasts for that one reconcile only (its requeues are ordinary work).
func (q *fairQueue) GetWithPriority() (reconcile.Request, int, bool) {
	item, composed, shutdown := q.PriorityQueue.GetWithPriority()
	if shutdown {
		return item, 0, true
	}
	priority, _ := floorDiv(composed, fairLevels)
	q.mu.Lock()
	defer q.mu.Unlock()
	// An item re-added while a worker held it is handed out again without a tag: it does not
	// move the clock.
	if t, ok := q.queued[item]; ok {
		delete(q.queued, item)
		q.served = max(q.served, t)
	}
	if q.newest[item.Namespace] <= q.served {
		delete(q.newest, item.Namespace)
	}
	return item, min(priority, 0), false
}

// floorDiv is a / b rounded down, and the remainder in [0, b).
func floorDiv(a, b int) (quotient, remainder int) {
	quotient, remainder = a/b, a%b
	if remainder < 0 {
		quotient, remainder = quotient-1, remainder+b
	}
	return quotient, remainder
}

// enqueueObserved enqueues the Sandbox of an observed gateway change at observedPriority.
var enqueueObserved = handler.Funcs{
	GenericFunc: func(_ context.Context, e event.GenericEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
		if e.Object == nil {
			return
		}
		req := reconcile.Request{NamespacedName: client.ObjectKeyFromObject(e.Object)}
		if pq, ok := q.(priorityqueue.PriorityQueue[reconcile.Request]); ok {
			pq.AddWithOpts(priorityqueue.AddOpts{Priority: ptr.To(observedPriority)}, req)
			return
		}
		q.Add(req)
	},
}
