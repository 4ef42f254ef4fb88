package controller

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
	"github.com/openshell-operator/openshell-operator/internal/metrics"
)

// object is what the kernel reconciles: any of the operator's kinds.
type object interface {
	client.Object
	GetCommonStatus() *v1alpha1.CommonStatus
}

// kindSteps is all a kind supplies to the kernel.
type kindSteps[T object] interface {
	// sync observes the gateway and acts (create, update in place, recreate or nothing),
	// records what it learned in obj's status fields, and reports the step. It never
	// writes to the API server's status itself: the kernel does, once.
	sync(ctx context.Context, obj T) step
	// finalize runs while obj is being deleted and holds the finalizer: it cleans up on
	// the gateway and sets step.Release once the finalizer may go.
	finalize(ctx context.Context, obj T) step
}

// forgetter is implemented by kinds that hold per-object state outside Kubernetes (the
// GatewayConnection's client and observation loop), dropped when the object is gone.
type forgetter interface {
	forget(key types.NamespacedName)
}

// step is what a kind's sync or finalize reports.
type step struct {
	// outcome is shown in the conditions unless Failure is set.
	outcome
	// Failure, when set, is shown instead of outcome and decides the retry.
	Failure *failure
	// RequeueAfter is the next look (0: none; the kernel picks the retry of a Failure).
	RequeueAfter time.Duration
	// GenerationApplied: the generation is fully applied although the object is not Ready
	// (a sandbox still provisioning its current spec). Ready and Stalled count as applied.
	GenerationApplied bool
	// Release (finalize only): remove the finalizer; nothing else is written.
	Release bool
	// Stale: the resource changed since the cache read it (confirmCurrent, fence.go);
	// nothing is written, and the change's watch event brings the object back.
	Stale bool
}

// fail is a step showing a failure.
func fail(f *failure) step { return step{Failure: f} }

// failCall is a step for a failed gateway call, classified by the error table.
func failCall(what string, err error) step { return fail(gatewayFailure(what, err)) }

// shown is the outcome the conditions show.
func (s step) shown() outcome {
	if s.Failure != nil {
		return s.Failure.outcome
	}
	return s.outcome
}

// kernel is the one reconcile skeleton of every kind: get → deletion and finalizer →
// the kind's sync → one status write (conditions, observedGeneration, event, outcome
// metric) → requeue by one rule.
type kernel[T object] struct {
	client.Client
	// Kind is the kind's name (metric label, logs).
	Kind string
	// New returns an empty object of the kind.
	New func() T
	// Steps is the kind's observe-and-act.
	Steps kindSteps[T]
	// Recorder records core/v1 Events; nil records none.
	Recorder eventRecorder
	// Finalizer: the kind owns gateway objects and holds openshell.dev/finalizer.
	Finalizer bool
	// DependencyInterval is how soon a failure waiting on something else looks again.
	DependencyInterval time.Duration
	// Uses, for kinds whose objects reach a gateway, says through which GatewayConnection and
	// whether the object claims a gateway-global route (ok false: nothing to admit yet, the
	// kind's sync reports why); the kernel admits the object's namespace (admission.go)
	// before the finalizer and sync. Nil: the kind uses no gateway.
	Uses func(ctx context.Context, obj T) (use gatewayUse, ok bool)
	// retries is the per-object exponential backoff of failed calls.
	retries workqueue.TypedRateLimiter[reconcile.Request]
	// Reader reads from the API server, not the cache, for confirmCurrent (nil: the client,
	// as in unit tests, whose fake client has no cache).
	Reader client.Reader
	// holds keeps events from cutting a backoff short.
	holds backoffHolds
	// own keeps a reconcile from acting on a cache older than the kernel's own writes.
	own ownWrites
}

// ownWrites remembers, per object, the resource versions the kernel's own writes replaced.
// The cache learns of a write only through the watch, so a reconcile that starts before then
// (another event came in meanwhile) reads the object as it was before the write: it would
// write the same status again, its lastTransitionTime later, or add the finalizer again and
// meet a conflict. Such a reconcile has nothing to do. The write's own watch event enqueues
// the object again once the cache holds it (no kind filters its For watch).
type ownWrites struct {
	mu       sync.Mutex
	replaced map[types.NamespacedName][]string
}

// stale says whether rv is a version of key that one of the kernel's writes replaced; when
// it is not, the cache has caught up (or moved past), and key is forgotten.
func (w *ownWrites) stale(key types.NamespacedName, rv string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if slices.Contains(w.replaced[key], rv) {
		return true
	}
	delete(w.replaced, key)
	return false
}

// wrote records that a write of key turned version from into version to. A write the API
// server found to change nothing keeps the version and has no watch event: it is not
// recorded, or the object would be skipped until something else changed it.
func (w *ownWrites) wrote(key types.NamespacedName, from, to string) {
	if from == "" || from == to {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.replaced == nil {
		w.replaced = map[types.NamespacedName][]string{}
	}
	w.replaced[key] = append(w.replaced[key], from)
}

func (w *ownWrites) forget(key types.NamespacedName) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.replaced, key)
}

// backoffHolds remembers, per object, until when the backoff of its last failed gateway call
// runs and for which generation. A workqueue event Adds the object at once even while it waits
// out a rate-limited retry, so without this a stream of unrelated events (status writes,
// label edits) would call a failing gateway on every one. A new generation is not held: a
// spec change is tried at once.
type backoffHolds struct {
	mu    sync.Mutex
	until map[types.NamespacedName]heldUntil
}

type heldUntil struct {
	at         time.Time
	generation int64
}

func (h *backoffHolds) hold(key types.NamespacedName, generation int64, at time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.until == nil {
		h.until = map[types.NamespacedName]heldUntil{}
	}
	h.until[key] = heldUntil{at: at, generation: generation}
}

func (h *backoffHolds) release(key types.NamespacedName) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.until, key)
}

// remaining is how long key of this generation is still held (0: not held).
func (h *backoffHolds) remaining(key types.NamespacedName, generation int64, now time.Time) time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	u, ok := h.until[key]
	if !ok || u.generation != generation || !now.Before(u.at) {
		return 0
	}
	return u.at.Sub(now)
}

// newKernel wires a kind into the kernel.
func newKernel[T object](c client.Client, kind string, newObj func() T, steps kindSteps[T], rec eventRecorder, finalizer bool, backoff Backoff, dependency time.Duration) *kernel[T] {
	if dependency <= 0 {
		dependency = defaultDependencyInterval
	}
	return &kernel[T]{Client: c, Kind: kind, New: newObj, Steps: steps, Recorder: rec, Finalizer: finalizer,
		DependencyInterval: dependency, retries: backoff.perObject()}
}

// defaultDependencyInterval is how often a resource waiting on a dependency looks again.
const defaultDependencyInterval = 30 * time.Second

// Reconcile implements reconcile.Reconciler for every kind.
func (k *kernel[T]) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	ctx = withTenant(ctx, req.Namespace)
	ctx = withCurrentCheck(ctx, cmp.Or[client.Reader](k.Reader, k.Client))
	obj := k.New()
	if err := k.Get(ctx, req.NamespacedName, obj); err != nil {
		if client.IgnoreNotFound(err) == nil {
			k.holds.release(req.NamespacedName)
			k.own.forget(req.NamespacedName)
			k.forget(req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if k.own.stale(req.NamespacedName, obj.GetResourceVersion()) {
		return ctrl.Result{}, nil
	}
	// An event that is no spec change (a status write, a label edit, a dependent's event) must
	// not call a failing gateway again before the failure's backoff has run out.
	if d := k.holds.remaining(req.NamespacedName, obj.GetGeneration(), time.Now()); d > 0 {
		return ctrl.Result{RequeueAfter: d}, nil
	}
	if !obj.GetDeletionTimestamp().IsZero() {
		if !controllerutil.ContainsFinalizer(obj, v1alpha1.Finalizer) {
			k.forget(req.NamespacedName)
			return ctrl.Result{}, nil
		}
		orig := obj.DeepCopyObject().(T)
		st := k.Steps.finalize(ctx, obj)
		if st.Release {
			return ctrl.Result{}, k.release(ctx, obj)
		}
		return k.finish(ctx, req, orig, obj, st)
	}
	// Not admitted: no finalizer, no sync, so no gateway call names the object. One already
	// admitted keeps its finalizer and gateway objects (narrowing a rule loses nothing), and
	// its deletion still runs finalize above.
	if k.Uses != nil {
		if use, ok := k.Uses(ctx, obj); ok {
			if f := admit(ctx, k.Client, obj, use); f != nil {
				return k.finish(ctx, req, obj.DeepCopyObject().(T), obj, fail(f))
			}
		}
	}
	if k.Finalizer && controllerutil.AddFinalizer(obj, v1alpha1.Finalizer) {
		from := obj.GetResourceVersion()
		if err := k.Update(ctx, obj); err != nil {
			return ctrl.Result{}, client.IgnoreNotFound(err)
		}
		k.own.wrote(req.NamespacedName, from, obj.GetResourceVersion())
		verifiedCurrent(ctx, obj)
	}
	orig := obj.DeepCopyObject().(T)
	return k.finish(ctx, req, orig, obj, k.Steps.sync(ctx, obj))
}

func (k *kernel[T]) forget(key types.NamespacedName) {
	if f, ok := k.Steps.(forgetter); ok {
		f.forget(key)
	}
}

// release removes the finalizer.
func (k *kernel[T]) release(ctx context.Context, obj T) error {
	controllerutil.RemoveFinalizer(obj, v1alpha1.Finalizer)
	from := obj.GetResourceVersion()
	if err := k.Update(ctx, obj); err != nil {
		if client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("remove finalizer: %w", err)
		}
		return nil
	}
	k.own.wrote(client.ObjectKeyFromObject(obj), from, obj.GetResourceVersion())
	return nil
}

// finish writes status once with the rules every kind shares, then picks the requeue.
func (k *kernel[T]) finish(ctx context.Context, req ctrl.Request, orig, obj T, st step) (ctrl.Result, error) {
	if st.Stale {
		logf.FromContext(ctx).V(1).Info("the resource changed since the cache read it; waiting for the cache", "kind", k.Kind)
		return ctrl.Result{RequeueAfter: staleRequeue}, nil
	}
	o := st.shown()
	cs := obj.GetCommonStatus()
	applyConditions(&cs.Conditions, obj.GetGeneration(), o)
	// A generation is processed once applied, converged or stalled on a terminal error
	// (kstatus then reports Current or Failed); while still reconciling, the old one stays.
	if o.Ready || o.Stalled || st.GenerationApplied {
		cs.ObservedGeneration = obj.GetGeneration()
	}
	callFailed := st.Failure != nil && st.Failure.Retry == retryBackoff
	metrics.RecordReconcile(k.Kind, outcomeOf(o.Ready, o.Stalled, callFailed), o.Reason)
	// sync and finalize change only status, so comparing the whole objects compares status.
	if !equality.Semantic.DeepEqual(orig, obj) {
		from := obj.GetResourceVersion()
		if err := k.Status().Patch(ctx, obj, client.MergeFrom(orig)); err != nil {
			return ctrl.Result{}, client.IgnoreNotFound(err)
		}
		k.own.wrote(req.NamespacedName, from, obj.GetResourceVersion())
	}
	if readyChanged(orig.GetCommonStatus().Conditions, cs.Conditions) && k.Recorder != nil {
		if typ, emit := conditionEvent(readyReason(orig.GetCommonStatus().Conditions), o); emit {
			k.Recorder.Eventf(obj, typ, o.Reason, "%s", o.Message)
		}
	}
	res := k.requeue(req, obj.GetGeneration(), st)
	logf.FromContext(ctx).V(1).Info("reconciled", "kind", k.Kind, "reason", o.Reason, "requeueAfter", res.RequeueAfter)
	return res, nil
}

// requeue: a failed call backs off per object; a wait on a dependency looks again after
// the dependency interval; a stalled object waits for a change; success resets the backoff.
func (k *kernel[T]) requeue(req ctrl.Request, generation int64, st step) ctrl.Result {
	if st.Failure == nil || st.Failure.Retry != retryBackoff {
		k.holds.release(req.NamespacedName)
	}
	if st.Failure == nil {
		k.retries.Forget(req)
		return ctrl.Result{RequeueAfter: st.RequeueAfter}
	}
	switch st.Failure.Retry {
	case retryBackoff:
		if st.RequeueAfter == 0 {
			d := k.retries.When(req)
			k.holds.hold(req.NamespacedName, generation, time.Now().Add(d))
			return ctrl.Result{RequeueAfter: d}
		}
	case retryDependency:
		if st.RequeueAfter == 0 {
			return ctrl.Result{RequeueAfter: k.DependencyInterval}
		}
	}
	return ctrl.Result{RequeueAfter: st.RequeueAfter}
}
