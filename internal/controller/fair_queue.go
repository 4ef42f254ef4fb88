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

// Work order: every controller's queue is fair between namespaces, and within a namespace a
// change the gateway reported goes ahead of other work.
//
// A workqueue is FIFO: one tenant creating a thousand Sandboxes at once would put every other
// namespace's reconciles behind its thousand, and the reconcile that only has to write Ready
// (the gateway already did the work) behind the first reconciles of all of them. The queue
// below is controller-runtime's priority queue with each item's place folded into its
// priority. Each namespace has a line per tier of caller priority (an unchanged initial
// list's low priority, ordinary work, observed changes); an item added is its line's k-th
// waiting item (counted like start-time fair queuing: from the later of the line's newest item
// and the last item handed to a worker), and it goes ahead of every line's (k+1)-th, for k
// below fairLevels; deeper items share the last level, in FIFO order. At one level an observed
// change goes first; low items stay behind all others. So a namespace with a few items never
// waits behind another's burst, however large, and a burst's own items keep their order.
//
// Observed changes are levelled in their own line, not ahead of every level: during a burst the
// burst's own READY reports are many, and when they outranked every level a single sandbox's
// first reconcile in another namespace waited behind all of them (68-92 ms in the fairness
// bench's trace, more than its whole lag on an idle operator).
//
// The levels are few on purpose: the priority queue labels its depth metric by priority and
// falls back to one placeholder label past 25 distinct priorities, which would leave the
// workqueue_depth series wrong. Three tiers × fairLevels stay within that.
//
// The limit of static levels: an item's level is fixed when it is added, so a burst's deep
// items go after any namespace's first fairLevels−1 items added later, for as long as such
// items keep coming (an operator that is overloaded by many namespaces at once); with no
// backlog elsewhere they are served in FIFO order as before.

// observedPriority is the priority of a reconcile the observation loop asked for because the
// gateway reported a change (a sandbox became READY, failed, vanished). Finishing what the
// gateway has done costs one status write and is what a user is waiting to see, so it goes
// ahead of its namespace's first reconciles at the same level.
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
	return &fairQueue{PriorityQueue: inner, newest: map[fairFlow]uint64{}, queued: map[reconcile.Request]fairTag{}}
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
	newest map[fairFlow]uint64
	// queued holds the tag of each item in the queue, so that adding a queued item again keeps
	// its place and does not count against its namespace.
	queued map[reconcile.Request]fairTag
}

// fairFlow is one namespace's line of items of one tier.
type fairFlow struct {
	namespace string
	tier      int
}

// fairTag is a queued item's tag and the tier it was tagged in.
type fairTag struct {
	tag  uint64
	tier int
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

// AddWithOpts implements priorityqueue.PriorityQueue: each item goes in at its place in its
// namespace's line for the caller's priority (see the top of this file).
func (q *fairQueue) AddWithOpts(o priorityqueue.AddOpts, items ...reconcile.Request) {
	tier := tierOf(ptr.Deref(o.Priority, 0))
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, item := range items {
		composed := q.place(item, tier)
		o.Priority = &composed
		// Under q.mu, so a Get cannot take the item between its place and its add.
		q.PriorityQueue.AddWithOpts(o, item)
	}
}

// place is item's composed priority in tier; q.mu is held. A queued item keeps its tag (and
// so its place) unless the new tier puts it ahead of where it is: the priority queue only
// ever raises a queued item's priority, so the tag kept is the one it is served at.
func (q *fairQueue) place(item reconcile.Request, tier int) int {
	f := fairFlow{namespace: item.Namespace, tier: tier}
	if cur, ok := q.queued[item]; ok {
		at := compose(cur.tier, q.level(cur.tag))
		if cur.tier == tier || compose(tier, q.level(max(q.served, q.newest[f])+1)) <= at {
			return at
		}
	}
	t := max(q.served, q.newest[f]) + 1
	q.newest[f] = t
	q.queued[item] = fairTag{tag: t, tier: tier}
	return compose(tier, q.level(t))
}

// level is how deep in its line an item of tag t waits: 0 for the next turn, capped at the
// last of fairLevels.
func (q *fairQueue) level(t uint64) int {
	return int(min(max(t, q.served+1)-q.served-1, fairLevels-1))
}

// Get implements workqueue.Interface.
func (q *fairQueue) Get() (reconcile.Request, bool) {
	item, _, shutdown := q.GetWithPriority()
	return item, shutdown
}

// GetWithPriority implements priorityqueue.PriorityQueue. It returns the caller's priority,
// not the composed one, so that a requeue is placed afresh; an observed change's priority
// lasts for that one reconcile only (its requeues are ordinary work).
func (q *fairQueue) GetWithPriority() (reconcile.Request, int, bool) {
	item, composed, shutdown := q.PriorityQueue.GetWithPriority()
	if shutdown {
		return item, 0, true
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	// An item re-added while a worker held it is handed out again without a tag: it does not
	// move the clock.
	if t, ok := q.queued[item]; ok {
		delete(q.queued, item)
		q.served = max(q.served, t.tag)
	}
	for tier := range fairTiers {
		if f := (fairFlow{namespace: item.Namespace, tier: tier}); q.newest[f] <= q.served {
			delete(q.newest, f)
		}
	}
	if composed < 0 {
		return item, handler.LowPriority, false
	}
	return item, 0, false
}

// The caller's priorities, as tiers: an unchanged initial list's (handler.LowPriority), ordinary
// work, and a change the gateway reported (observedPriority).
const (
	tierLow = iota
	tierNormal
	tierObserved
	fairTiers
)

func tierOf(priority int) int {
	switch {
	case priority < 0:
		return tierLow
	case priority > 0:
		return tierObserved
	default:
		return tierNormal
	}
}

// compose is the priority handed to the priority queue for an item of tier at level: low
// items below all others (-fairLevels..-1); ordinary and observed ones by level first, and at
// one level an observed change first (0..2*fairLevels-1).
func compose(tier, level int) int {
	turn := fairLevels - 1 - level
	switch tier {
	case tierLow:
		return turn - fairLevels
	case tierObserved:
		return 2*turn + 1
	default:
		return 2 * turn
	}
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
