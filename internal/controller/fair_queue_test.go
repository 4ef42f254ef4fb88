package controller

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
)

// req is "ns/name" as a reconcile.Request.
func req(key string) reconcile.Request {
	ns, name, _ := strings.Cut(key, "/")
	return reconcile.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: name}}
}

// fairAdd is one add to the queue: a key and the caller's priority (nil: none).
type fairAdd struct {
	key      string
	priority *int
}

func adds(keys ...string) []fairAdd {
	out := make([]fairAdd, 0, len(keys))
	for _, k := range keys {
		out = append(out, fairAdd{key: k})
	}
	return out
}

// drain gets n items and returns "key@priority" for each, in order.
func drain(q *fairQueue, n int) []string {
	out := make([]string, 0, n)
	for range n {
		item, priority, shutdown := q.GetWithPriority()
		if shutdown {
			break
		}
		out = append(out, fmt.Sprintf("%s@%d", item.String(), priority))
		q.Done(item)
	}
	return out
}

func TestFairQueueOrder(t *testing.T) {
	burst := make([]string, 0, 100)
	for i := range 100 {
		burst = append(burst, fmt.Sprintf("bulk/sb-%03d", i))
	}
	tests := []struct {
		name string
		adds []fairAdd
		// get is how many items to take; want is what comes out, in order.
		get  int
		want []string
	}{
		{
			name: "a single in another namespace does not wait behind a burst",
			adds: append(adds(burst...), fairAdd{key: "other/single"}),
			get:  3,
			want: []string{"bulk/sb-000@0", "other/single@0", "bulk/sb-001@0"},
		},
		{
			name: "namespaces take turns, each in its own order",
			adds: adds("a/1", "a/2", "a/3", "b/1", "b/2", "b/3", "c/1", "c/2", "c/3"),
			get:  9,
			want: []string{"a/1@0", "b/1@0", "c/1@0", "a/2@0", "b/2@0", "c/2@0", "a/3@0", "b/3@0", "c/3@0"},
		},
		{
			name: "adding a queued item again keeps its place and does not count against its namespace",
			adds: adds("a/1", "a/1", "a/1", "a/2", "b/1", "b/2", "b/3"),
			get:  5,
			want: []string{"a/1@0", "b/1@0", "a/2@0", "b/2@0", "b/3@0"},
		},
		{
			name: "an observed change goes first, and its requeue is ordinary work",
			adds: append(adds("a/1", "a/2", "a/3"), fairAdd{key: "a/3", priority: ptr.To(observedPriority)}),
			get:  3,
			want: []string{"a/3@0", "a/1@0", "a/2@0"},
		},
		{
			name: "observed changes are fair between namespaces too",
			adds: []fairAdd{
				{key: "a/1", priority: ptr.To(observedPriority)}, {key: "a/2", priority: ptr.To(observedPriority)},
				{key: "a/3", priority: ptr.To(observedPriority)}, {key: "b/1"}, {key: "b/2", priority: ptr.To(observedPriority)},
			},
			get:  5,
			want: []string{"a/1@0", "a/2@0", "b/2@0", "a/3@0", "b/1@0"},
		},
		{
			name: "low priority (an unchanged initial list) stays behind and keeps its priority",
			adds: []fairAdd{{key: "a/1", priority: ptr.To(handler.LowPriority)}, {key: "b/1", priority: ptr.To(handler.LowPriority)}, {key: "c/1"}},
			get:  3,
			want: []string{"c/1@0", "a/1@-100", "b/1@-100"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := newFairQueue("test", Backoff{}.rateLimiter()).(*fairQueue)
			defer q.ShutDown()
			for _, a := range tt.adds {
				q.AddWithOpts(priorityqueue.AddOpts{Priority: a.priority}, req(a.key))
			}
			if diff := cmp.Diff(tt.want, drain(q, tt.get)); diff != "" {
				t.Errorf("order (-want +got):\n%s", diff)
			}
		})
	}
}

// A namespace that has been idle starts at the queue's clock: it is not owed the turns it did
// not use, and its first items go ahead of another's deeper backlog (levels are fixed when an
// item is added, so a/4 and a/5 keep the depth they were added at).
func TestFairQueueIdleNamespaceStartsAtTheClock(t *testing.T) {
	q := newFairQueue("test", Backoff{}.rateLimiter()).(*fairQueue)
	defer q.ShutDown()
	for _, k := range []string{"a/1", "a/2", "a/3", "a/4", "a/5"} {
		q.Add(req(k))
	}
	if diff := cmp.Diff([]string{"a/1@0", "a/2@0", "a/3@0"}, drain(q, 3)); diff != "" {
		t.Fatalf("first three (-want +got):\n%s", diff)
	}
	for _, k := range []string{"b/1", "b/2", "b/3"} {
		q.Add(req(k))
	}
	if diff := cmp.Diff([]string{"b/1@0", "b/2@0", "b/3@0", "a/4@0", "a/5@0"}, drain(q, 5)); diff != "" {
		t.Errorf("after b arrives (-want +got):\n%s", diff)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.queued) != 0 || len(q.newest) != 0 {
		t.Errorf("bookkeeping left after the queue emptied: queued %v, newest %v", q.queued, q.newest)
	}
}

// However deep a burst, the priorities handed to the priority queue stay few: its depth metric
// is labelled by priority and turns to a placeholder past 25 of them.
func TestFairQueueUsesFewPriorities(t *testing.T) {
	q := newFairQueue("test", Backoff{}.rateLimiter()).(*fairQueue)
	defer q.ShutDown()
	seen := map[int]bool{}
	spy := &priorityRecorder{PriorityQueue: q.PriorityQueue, seen: seen}
	q.PriorityQueue = spy
	for _, p := range []*int{ptr.To(handler.LowPriority), nil, ptr.To(observedPriority)} {
		for ns := range 20 {
			for i := range 50 {
				q.AddWithOpts(priorityqueue.AddOpts{Priority: p}, req(fmt.Sprintf("ns-%d/%d-%d", ns, ptr.Deref(p, 0), i)))
			}
		}
		drain(q, 300)
	}
	if len(seen) != 3*fairLevels || len(seen) > 25 {
		t.Errorf("%d distinct priorities used, want %d (at most 25): %v", len(seen), 3*fairLevels, seen)
	}
}

type priorityRecorder struct {
	priorityqueue.PriorityQueue[reconcile.Request]
	seen map[int]bool
}

func (p *priorityRecorder) AddWithOpts(o priorityqueue.AddOpts, items ...reconcile.Request) {
	p.seen[ptr.Deref(o.Priority, 0)] = true
	p.PriorityQueue.AddWithOpts(o, items...)
}

// An item added again while a worker holds it is handed out once more after Done, with a fresh
// tag: the queue's processing/dirty rule is the underlying queue's.
func TestFairQueueItemAddedWhileProcessing(t *testing.T) {
	q := newFairQueue("test", Backoff{}.rateLimiter()).(*fairQueue)
	defer q.ShutDown()
	q.Add(req("a/1"))
	item, _, _ := q.GetWithPriority()
	q.Add(req("a/1"))
	q.Add(req("b/1"))
	q.Done(item)
	if diff := cmp.Diff([]string{"a/1@0", "b/1@0"}, drain(q, 2)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestEnqueueObservedUsesObservedPriority(t *testing.T) {
	q := newFairQueue("test", Backoff{}.rateLimiter()).(*fairQueue)
	defer q.ShutDown()
	q.Add(req("a/1"))
	q.Add(req("a/2"))
	enqueueObserved.Generic(t.Context(), event.GenericEvent{}, q) // no object: nothing
	sb := &v1alpha1.Sandbox{}
	sb.Namespace, sb.Name = "a", "2"
	enqueueObserved.Generic(t.Context(), event.GenericEvent{Object: sb}, q)
	if q.Len() != 2 {
		t.Fatalf("queue length %d, want 2", q.Len())
	}
	if diff := cmp.Diff([]string{"a/2@0", "a/1@0"}, drain(q, 2)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestFloorDiv(t *testing.T) {
	tests := []struct{ a, b, q, r int }{
		{7, 3, 2, 1}, {-7, 3, -3, 2}, {-6, 3, -2, 0}, {0, 3, 0, 0},
		{-100*fairLevels + fairLevels - 1, fairLevels, -100, fairLevels - 1},
		{observedPriority*fairLevels + 5, fairLevels, observedPriority, 5},
	}
	for _, tt := range tests {
		q, r := floorDiv(tt.a, tt.b)
		if q != tt.q || r != tt.r {
			t.Errorf("floorDiv(%d, %d) = %d, %d; want %d, %d", tt.a, tt.b, q, r, tt.q, tt.r)
		}
	}
}
