package controller

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
	"github.com/openshell-operator/openshell-operator/internal/gateway"
)

// Event reasons of the InferenceRoute controller (failures use the condition reason).
const (
	routeEventSet        = "RouteSet"
	routeEventHealed     = "Healed"
	routeEventLeft       = "RouteLeftConfigured"
	routeEventHandedOver = "RouteHandedOver"
	defaultRouteResync   = time.Minute
)

// InferenceRouteReconciler keeps a gateway inference route pointing at a Provider and model.
type InferenceRouteReconciler struct {
	client.Client
	Gateways gatewayClients
	Recorder eventRecorder
	// Backoff spaces the retries of failed reconciles.
	Backoff Backoff
	// Resync is how often a converged route is compared with the gateway (healing
	// out-of-band changes). Default one minute.
	Resync time.Duration
	// Retry is the requeue interval while waiting on a dependency (default 30s).
	Retry time.Duration
}

// +kubebuilder:rbac:groups=openshell.dev,resources=inferenceroutes,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=openshell.dev,resources=inferenceroutes/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=openshell.dev,resources=inferenceroutes/finalizers,verbs=update
// +kubebuilder:rbac:groups=openshell.dev,resources=providers,verbs=get;list;watch

// Reconcile reads the live route and calls SetClusterInference only when it differs.
func (r *InferenceRouteReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	ir := &v1alpha1.InferenceRoute{}
	if err := r.Get(ctx, req.NamespacedName, ir); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	all := &v1alpha1.InferenceRouteList{}
	if err := r.List(ctx, all); err != nil {
		return ctrl.Result{}, fmt.Errorf("list inference routes: %w", err)
	}
	if !ir.DeletionTimestamp.IsZero() {
		return r.finalize(ctx, ir, all.Items)
	}
	if controllerutil.AddFinalizer(ir, v1alpha1.Finalizer) {
		if err := r.Update(ctx, ir); err != nil {
			return ctrl.Result{}, client.IgnoreNotFound(err)
		}
	}
	orig := ir.DeepCopy()
	o, res, err := r.sync(ctx, ir, all.Items)
	applyConditions(&ir.Status.Conditions, ir.Generation, o)
	recordOutcome(kindInferenceRoute, o, err)
	if o.Ready || o.Stalled {
		ir.Status.ObservedGeneration = ir.Generation
	}
	if perr := patchStatusIfChanged(ctx, r.Client, orig, ir, orig.Status, ir.Status); perr != nil {
		return ctrl.Result{}, client.IgnoreNotFound(perr)
	}
	if readyChanged(orig.Status.Conditions, ir.Status.Conditions) && !o.Ready {
		r.Recorder.Eventf(ir, eventType(o), o.Reason, "%s", o.Message)
	}
	return res, err
}

func (r *InferenceRouteReconciler) sync(ctx context.Context, ir *v1alpha1.InferenceRoute, all []v1alpha1.InferenceRoute) (outcome, ctrl.Result, error) {
	route := inferenceRouteName(ir)
	gwName := gatewayRefName(ir.Spec.GatewayRef)
	if owner := routeOwner(ir, all); owner != nil && owner.UID != ir.UID {
		return outcome{Stalled: true, Reason: v1alpha1.ReasonConflict,
			Message: fmt.Sprintf("route %s of GatewayConnection %s is managed by the older InferenceRoute %s/%s; this one takes over when that one is deleted",
				route, gwName, owner.Namespace, owner.Name)}, ctrl.Result{}, nil
	}
	p := &v1alpha1.Provider{}
	if err := r.Get(ctx, types.NamespacedName{Namespace: ir.Namespace, Name: ir.Spec.ProviderRef.Name}, p); err != nil {
		if !apierrors.IsNotFound(err) {
			return outcome{Reason: v1alpha1.ReasonProgressing, Message: "reading the Provider"}, ctrl.Result{}, fmt.Errorf("get provider: %w", err)
		}
		p = nil
	}
	if fail := inferenceProviderCheck(ir, p); fail != nil {
		return *fail, ctrl.Result{}, nil
	}
	gw, err := r.Gateways.Get(gwName)
	if err != nil {
		return outcome{Reason: v1alpha1.ReasonDependencyNotReady, Message: err.Error()}, ctrl.Result{RequeueAfter: r.retry()}, nil
	}
	want := inferenceRequest(ir, p.Status.GatewayName)
	live, err := gw.Inference.Get(ctx, route)
	switch {
	case gateway.IsNotFound(err) || gateway.IsFailedPrecondition(err):
		// Not configured, or a stored row without provider or model: set it.
		live = nil
	case err != nil:
		o, rerr := gatewayFailure("get inference route", err)
		return o, ctrl.Result{}, rerr
	}
	if !inferenceRouteInSync(live, want) {
		resp, err := gw.Inference.Set(ctx, want)
		if err != nil {
			return r.setFailure(err)
		}
		if live != nil && ir.Status.RouteVersion != 0 {
			r.Recorder.Eventf(ir, corev1.EventTypeWarning, routeEventHealed, "route %s was changed on the gateway (provider %s, model %s); set it back (version %d)",
				route, live.GetProviderName(), live.GetModelId(), resp.GetVersion())
		} else {
			r.Recorder.Eventf(ir, corev1.EventTypeNormal, routeEventSet, "set route %s to provider %s, model %s (version %d)",
				route, want.GetProviderName(), want.GetModelId(), resp.GetVersion())
		}
		ir.Status.RouteVersion = resp.GetVersion()
		ir.Status.Verified = resp.GetValidationPerformed()
		ir.Status.ValidatedEndpoints = validatedEndpoints(resp.GetValidatedEndpoints())
	} else {
		ir.Status.RouteVersion = live.GetVersion()
	}
	return outcome{Ready: true, Reason: v1alpha1.ReasonReady,
			Message: fmt.Sprintf("route %s serves model %s through provider %s", route, want.GetModelId(), want.GetProviderName())},
		ctrl.Result{RequeueAfter: r.resync()}, nil
}

// setFailure classifies a SetClusterInference error. FAILED_PRECONDITION (provider missing
// on the gateway, endpoint verification failed) can clear by itself, so it is retried on the
// dependency interval rather than stalled; INVALID_ARGUMENT needs a spec change.
func (r *InferenceRouteReconciler) setFailure(err error) (outcome, ctrl.Result, error) {
	msg := fmt.Sprintf("set inference route: %s (%s)", gateway.Message(err), gateway.Code(err))
	switch {
	case gateway.IsFailedPrecondition(err):
		return outcome{Reason: v1alpha1.ReasonGatewayRejected, Message: msg}, ctrl.Result{RequeueAfter: r.retry()}, nil
	case gateway.IsRetryable(err) || gateway.IsConflict(err):
		return outcome{Reason: v1alpha1.ReasonGatewayUnavailable, Message: msg}, ctrl.Result{}, err
	}
	return outcome{Stalled: true, Reason: v1alpha1.ReasonGatewayRejected, Message: msg}, ctrl.Result{}, nil
}

// finalize releases the finalizer. The gateway has no delete RPC, so the route stays
// configured: the event says so, or names the claimant that takes over.
func (r *InferenceRouteReconciler) finalize(ctx context.Context, ir *v1alpha1.InferenceRoute, all []v1alpha1.InferenceRoute) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(ir, v1alpha1.Finalizer) {
		return ctrl.Result{}, nil
	}
	if ir.Status.RouteVersion != 0 && inferenceRouteReason(ir) != v1alpha1.ReasonConflict {
		route, gwName := inferenceRouteName(ir), gatewayRefName(ir.Spec.GatewayRef)
		if next := routeOwner(ir, all); next != nil {
			r.Recorder.Eventf(ir, corev1.EventTypeNormal, routeEventHandedOver, "route %s of GatewayConnection %s is now managed by InferenceRoute %s/%s",
				route, gwName, next.Namespace, next.Name)
		} else {
			r.Recorder.Eventf(ir, corev1.EventTypeWarning, routeEventLeft,
				"the gateway has no delete RPC: route %s of GatewayConnection %s stays configured (model %s, version %d); point it elsewhere with another InferenceRoute",
				route, gwName, ir.Spec.Model, ir.Status.RouteVersion)
		}
	}
	controllerutil.RemoveFinalizer(ir, v1alpha1.Finalizer)
	return ctrl.Result{}, client.IgnoreNotFound(r.Update(ctx, ir))
}

func inferenceRouteReason(ir *v1alpha1.InferenceRoute) string {
	for _, c := range ir.Status.Conditions {
		if c.Type == v1alpha1.ConditionReady {
			return c.Reason
		}
	}
	return ""
}

func (r *InferenceRouteReconciler) resync() time.Duration {
	if r.Resync > 0 {
		return r.Resync
	}
	return defaultRouteResync
}

func (r *InferenceRouteReconciler) retry() time.Duration {
	if r.Retry > 0 {
		return r.Retry
	}
	return 30 * time.Second
}

// SetupWithManager watches InferenceRoutes (every claimant of a route is re-enqueued when
// one changes, so a deletion hands the route over), their Providers and connections.
func (r *InferenceRouteReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.InferenceRoute{}).
		Watches(&v1alpha1.InferenceRoute{}, handler.EnqueueRequestsFromMapFunc(r.routesMatching(func(ir *v1alpha1.InferenceRoute, o client.Object) bool {
			other := o.(*v1alpha1.InferenceRoute)
			return ir.UID != other.UID && routeClaimKey(ir) == routeClaimKey(other)
		}))).
		Watches(&v1alpha1.Provider{}, handler.EnqueueRequestsFromMapFunc(r.routesMatching(func(ir *v1alpha1.InferenceRoute, o client.Object) bool {
			return ir.Namespace == o.GetNamespace() && ir.Spec.ProviderRef.Name == o.GetName()
		}))).
		Watches(&v1alpha1.GatewayConnection{}, handler.EnqueueRequestsFromMapFunc(r.routesMatching(func(ir *v1alpha1.InferenceRoute, o client.Object) bool {
			return gatewayRefName(ir.Spec.GatewayRef) == o.GetName()
		})), builder.WithPredicates(connectionReadinessChanged)).
		Named("inferenceroute").
		WithOptions(controller.Options{RateLimiter: r.Backoff.rateLimiter()}).
		Complete(r)
}

// routesMatching maps an object to the InferenceRoutes for which match holds. Routes are
// few per cluster, so a list beats maintaining indexes.
func (r *InferenceRouteReconciler) routesMatching(match func(*v1alpha1.InferenceRoute, client.Object) bool) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		list := &v1alpha1.InferenceRouteList{}
		if err := r.List(ctx, list); err != nil {
			return nil
		}
		var out []reconcile.Request
		for i := range list.Items {
			if ir := &list.Items[i]; match(ir, o) {
				out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: ir.Namespace, Name: ir.Name}})
			}
		}
		return out
	}
}
