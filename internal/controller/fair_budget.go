package controller

import (
	"context"
	"sync"

	"golang.org/x/time/rate"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/flowcontrol"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// The write budget is fair between namespaces, as the work queue is (fair_queue.go).
//
// client-go's token bucket serves waiting calls in arrival order. While one namespace's burst
// keeps every worker writing (finalizers, status), each worker has a call waiting for a token,
// so a write for another namespace waited behind all of them: at the default 200 QPS and 8
// workers up to 40 ms, twice on a single sandbox's way to Ready (its finalizer, its Ready
// status). The API server's priority and fairness cannot help: it sees the operator as one
// client. The budget below hands the same tokens to the namespaces with waiting calls in turn,
// so such a write waits for at most one token per other busy namespace. The total rate is
// unchanged.

// tenantKey carries the namespace a reconcile works for, for the write budget.
type tenantKey struct{}

// withTenant marks ctx as working for namespace ns: the reconcile request's namespace, never
// anything read from an object.
func withTenant(ctx context.Context, ns string) context.Context {
	return context.WithValue(ctx, tenantKey{}, ns)
}

// tenantOf is the namespace ctx works for; "" (cluster-scoped objects, calls outside a
// reconcile) shares the budget as one more namespace.
func tenantOf(ctx context.Context) string {
	ns, _ := ctx.Value(tenantKey{}).(string)
	return ns
}

// NamespaceFairClient is the manager's NewClient: its API calls share one token bucket of qps
// and burst (client-go's defaults, 5 and 10, when zero; no limit when qps is negative, as in
// client-go), handed out between the namespaces with waiting calls in turn. Without it, each
// resource's REST client had a bucket of its own; now the budget holds for the client as a
// whole, as the --kube-api-qps flag says.
func NamespaceFairClient(qps float32, burst int) client.NewClientFunc {
	return func(cfg *rest.Config, opts client.Options) (client.Client, error) {
		if l := fairBudget(qps, burst); l != nil {
			cfg = rest.CopyConfig(cfg)
			cfg.RateLimiter = l
		}
		return client.New(cfg, opts)
	}
}

// fairBudget is the fair limiter for qps and burst, with client-go's defaults and its "no
// limit" for a negative qps (nil).
func fairBudget(qps float32, burst int) *fairLimiter {
	if qps < 0 {
		return nil
	}
	if qps == 0 {
		qps = rest.DefaultQPS
	}
	if burst <= 0 {
		burst = rest.DefaultBurst
	}
	return newFairLimiter(rate.NewLimiter(rate.Limit(qps), burst), qps)
}

// tokenBucket is the part of rate.Limiter the fair limiter uses (a fake in tests).
type tokenBucket interface {
	Allow() bool
	Wait(ctx context.Context) error
}

// fairLimiter is a flowcontrol.RateLimiter that grants a token bucket's tokens to waiting
// calls one namespace at a time, round robin, in arrival order within a namespace. A call
// with nobody waiting takes a token at once.
type fairLimiter struct {
	bucket tokenBucket
	qps    float32

	mu sync.Mutex
	// queues are the waiting calls per namespace; ring the namespaces with waiting calls,
	// in turn order.
	queues     map[string][]*fairWaiter
	ring       []string
	dispatcher bool
	// spare is a token taken for calls that all gave up meanwhile: the next call gets it.
	spare bool
}

type fairWaiter struct {
	granted chan struct{}
	gone    bool
}

var _ flowcontrol.RateLimiter = (*fairLimiter)(nil)

func newFairLimiter(bucket tokenBucket, qps float32) *fairLimiter {
	return &fairLimiter{bucket: bucket, qps: qps, queues: map[string][]*fairWaiter{}}
}

// Wait implements flowcontrol.RateLimiter.
func (f *fairLimiter) Wait(ctx context.Context) error {
	ns := tenantOf(ctx)
	f.mu.Lock()
	if len(f.ring) == 0 && (f.spare || f.bucket.Allow()) {
		f.spare = false
		f.mu.Unlock()
		return nil
	}
	w := &fairWaiter{granted: make(chan struct{})}
	if len(f.queues[ns]) == 0 {
		f.ring = append(f.ring, ns)
	}
	f.queues[ns] = append(f.queues[ns], w)
	if !f.dispatcher {
		f.dispatcher = true
		go f.dispatch()
	}
	f.mu.Unlock()
	select {
	case <-w.granted:
		return nil
	case <-ctx.Done():
		f.mu.Lock()
		defer f.mu.Unlock()
		select {
		case <-w.granted:
			return nil
		default:
			w.gone = true
			return ctx.Err()
		}
	}
}

// dispatch grants tokens while calls wait, then ends (Wait starts it again).
func (f *fairLimiter) dispatch() {
	for {
		f.mu.Lock()
		if len(f.ring) == 0 {
			f.dispatcher = false
			f.mu.Unlock()
			return
		}
		if !f.spare {
			f.mu.Unlock()
			// The token is taken before the call is chosen, so a namespace that starts
			// waiting meanwhile has its turn for this very token.
			_ = f.bucket.Wait(context.Background())
			f.mu.Lock()
		}
		f.spare = false
		if w := f.nextLocked(); w != nil {
			close(w.granted)
		} else {
			f.spare = true
		}
		f.mu.Unlock()
	}
}

// nextLocked takes the next waiting call: the first of the namespace whose turn it is,
// skipping calls that gave up. Nil when nobody waits.
func (f *fairLimiter) nextLocked() *fairWaiter {
	for len(f.ring) > 0 {
		ns := f.ring[0]
		q := f.queues[ns]
		w := q[0]
		q = q[1:]
		f.ring = f.ring[1:]
		if len(q) == 0 {
			delete(f.queues, ns)
		} else {
			f.queues[ns] = q
			f.ring = append(f.ring, ns)
		}
		if !w.gone {
			return w
		}
	}
	return nil
}

// TryAccept implements flowcontrol.RateLimiter: a token now, if nobody waits for one.
func (f *fairLimiter) TryAccept() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.ring) > 0 {
		return false
	}
	if f.spare {
		f.spare = false
		return true
	}
	return f.bucket.Allow()
}

// Accept implements flowcontrol.RateLimiter.
func (f *fairLimiter) Accept() { _ = f.Wait(context.Background()) }

// Stop implements flowcontrol.RateLimiter.
func (f *fairLimiter) Stop() {}

// QPS implements flowcontrol.RateLimiter.
func (f *fairLimiter) QPS() float32 { return f.qps }
