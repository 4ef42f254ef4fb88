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
	"sigs.k8s.io/controller-runtime/pkg/handler"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
	inferencev1 "github.com/openshell-operator/openshell-operator/gen/openshell/inference/v1"
	"github.com/openshell-operator/openshell-operator/internal/gateway"
)

// defaultRouteResync is how often a converged route is compared with the gateway.
const defaultRouteResync = time.Minute

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

// sync reads the live route and calls SetClusterInference only when it differs. Only
// claimants from namespaces the connection grants routes to count (the kernel has already
// refused this one if its namespace is not granted); the oldest of them owns the route, and a
// route set for another granted namespace is never taken over.
func (r *InferenceRouteReconciler) sync(ctx context.Context, ir *v1alpha1.InferenceRoute) step {
	gc, p, f := r.claim(ctx, ir)
	if f != nil {
		return fail(f)
	}
	return r.converge(ctx, ir, gc, p)
}

// claim resolves what a route needs before any gateway call: its GatewayConnection (nil when
// missing), that no older InferenceRoute holds the route, and a usable Provider.
func (r *InferenceRouteReconciler) claim(ctx context.Context, ir *v1alpha1.InferenceRoute) (*v1alpha1.GatewayConnection, *v1alpha1.Provider, *failure) {
	all := &v1alpha1.InferenceRouteList{}
	if err := r.List(ctx, all); err != nil {
		return nil, nil, failed(v1alpha1.ReasonProgressing, "listing inference routes: "+err.Error(), retryBackoff)
	}
	gwName := gatewayRefName(ir.Spec.GatewayRef)
	gc := &v1alpha1.GatewayConnection{}
	if err := r.Get(ctx, types.NamespacedName{Name: gwName}, gc); err != nil {
		if !apierrors.IsNotFound(err) {
			return nil, nil, failed(v1alpha1.ReasonProgressing, "reading the GatewayConnection: "+err.Error(), retryBackoff)
		}
		gc = nil
	}
	claimants, f := r.grantedClaimants(ctx, gc, all.Items)
	if f != nil {
		return nil, nil, f
	}
	if owner := routeOwner(ir, claimants); owner != nil && owner.UID != ir.UID {
		// Names no other claimant: it may be another tenant's.
		return nil, nil, failed(v1alpha1.ReasonConflict,
			fmt.Sprintf("route %s of GatewayConnection %s is claimed by an older InferenceRoute; a route is never handed over automatically", inferenceRouteName(ir), gwName),
			retryOnChange)
	}
	p := &v1alpha1.Provider{}
	if err := r.Get(ctx, types.NamespacedName{Namespace: ir.Namespace, Name: ir.Spec.ProviderRef.Name}, p); err != nil {
		if !apierrors.IsNotFound(err) {
			return nil, nil, failed(v1alpha1.ReasonProgressing, "reading the Provider: "+err.Error(), retryBackoff)
		}
		p = nil
	}
	if bad := inferenceProviderCheck(ir, p, gwName); bad != nil {
		return nil, nil, fromOutcome(bad)
	}
	return gc, p, nil
}

// converge sets the gateway's route to the wanted provider and model unless it already is.
func (r *InferenceRouteReconciler) converge(ctx context.Context, ir *v1alpha1.InferenceRoute, gc *v1alpha1.GatewayConnection, p *v1alpha1.Provider) step {
	route := inferenceRouteName(ir)
	gwName := gatewayRefName(ir.Spec.GatewayRef)
	gw, err := r.Gateways.Get(gwName)
	if err != nil {
		return fail(connectionFailure(err))
	}
	providerName, why, err := attachProvider(ctx, gw.Providers, nil, p, gwName)
	if err != nil {
		return failCall("get provider", err)
	}
	if why != "" {
		return fail(failed(v1alpha1.ReasonDependencyNotReady, why, retryDependency))
	}
	want := inferenceRequest(ir, providerName)
	live, err := gw.Inference.Get(ctx, route)
	switch {
	case gateway.IsNotFound(err) || gateway.IsFailedPrecondition(err):
		// Not configured, or a stored row without provider or model: set it.
		live = nil
	case err != nil:
		return failCall("get inference route", err)
	}
	if inferenceRouteInSync(live, want) {
		ir.Status.RouteVersion = live.GetVersion()
		return r.ready(route, want)
	}
	// ownLive: the live route points at a provider of this route's own namespace, so what it
	// served may be named; a former holder's provider and model are another tenant's.
	ownLive := live != nil && live.GetProviderName() == want.GetProviderName()
	if live != nil && !ownLive {
		holder, f := r.heldElsewhere(ctx, gw, gc, ir, live.GetProviderName())
		if f != nil {
			return fail(f)
		}
		ownLive = holder == ir.Namespace
	}
	resp, err := gw.Inference.Set(ctx, want)
	if err != nil {
		return failCall("set inference route", err)
	}
	switch {
	case live != nil && ir.Status.RouteVersion != 0 && ownLive:
		record(r.Recorder, ir, corev1.EventTypeWarning, eventHealed, "route %s was changed on the gateway (provider %s, model %s); set it back (version %d)",
			route, live.GetProviderName(), live.GetModelId(), resp.GetVersion())
	case live != nil && ir.Status.RouteVersion != 0:
		// status.routeVersion is the tenant's to write: the event must not tell it what a
		// provider outside its namespace served.
		record(r.Recorder, ir, corev1.EventTypeWarning, eventHealed, "route %s was changed on the gateway; set it back (version %d)",
			route, resp.GetVersion())
	default:
		record(r.Recorder, ir, corev1.EventTypeNormal, eventRouteSet, "set route %s to provider %s, model %s (version %d)",
			route, want.GetProviderName(), want.GetModelId(), resp.GetVersion())
	}
	ir.Status.RouteVersion = resp.GetVersion()
	ir.Status.Verified = resp.GetValidationPerformed()
	ir.Status.ValidatedEndpoints = validatedEndpoints(resp.GetValidatedEndpoints())
	return r.ready(route, want)
}

// ready is the converged step of a route.
func (r *InferenceRouteReconciler) ready(route string, want *inferencev1.SetClusterInferenceRequest) step {
	return step{outcome: readyOutcome(fmt.Sprintf("route %s serves model %s through provider %s", route, want.GetModelId(), want.GetProviderName())),
		RequeueAfter: r.resync()}
}

// grantedClaimants keeps the routes whose namespace the connection grants inference routes
// to; without a connection (not found) the kind fails later on Gateways.Get anyway.
func (r *InferenceRouteReconciler) grantedClaimants(ctx context.Context, gc *v1alpha1.GatewayConnection, all []v1alpha1.InferenceRoute) ([]v1alpha1.InferenceRoute, *failure) {
	if gc == nil {
		return all, nil
	}
	granted := map[string]bool{}
	out := make([]v1alpha1.InferenceRoute, 0, len(all))
	for _, c := range all {
		ok, seen := granted[c.Namespace]
		if !seen {
			g, f := r.routesGranted(ctx, gc, c.Namespace)
			if f != nil {
				return nil, f
			}
			ok, granted[c.Namespace] = g, g
		}
		if ok {
			out = append(out, c)
		}
	}
	return out, nil
}

// routesGranted reports whether gc grants its inference routes to namespace; a namespace
// that no longer exists is not granted.
func (r *InferenceRouteReconciler) routesGranted(ctx context.Context, gc *v1alpha1.GatewayConnection, namespace string) (bool, *failure) {
	ns := namespaceMeta()
	if err := r.Get(ctx, types.NamespacedName{Name: namespace}, ns); err != nil {
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return false, failed(v1alpha1.ReasonProgressing, "reading a namespace: "+err.Error(), retryBackoff)
	}
	return admission(gc, namespace, ns.GetLabels(), gatewayUse{Connection: gc.Name, Routes: true}) == nil, nil
}

// heldElsewhere refuses to overwrite a live route that points at a provider of another
// namespace still granted the routes, or at a provider the operator does not manage: a route
// changes hands only when an administrator revokes the holder's grant. A route whose provider
// is gone from the gateway serves nothing and may be set. holder is the namespace of the
// operator-managed provider the route points at, from the ownership labels the operator
// stamped on it ("" when the provider is gone).
func (r *InferenceRouteReconciler) heldElsewhere(ctx context.Context, gw gatewayAPI, gc *v1alpha1.GatewayConnection, ir *v1alpha1.InferenceRoute, providerName string) (holder string, _ *failure) {
	route, gwName := inferenceRouteName(ir), gatewayRefName(ir.Spec.GatewayRef)
	gp, err := gw.Providers.Get(ctx, providerName)
	switch {
	case gateway.IsNotFound(err):
		return "", nil
	case err != nil:
		return "", gatewayFailure("get the route's provider", err)
	}
	labels := gp.GetMetadata().GetLabels()
	if labels[v1alpha1.LabelManagedBy] != v1alpha1.ManagedByValue {
		return "", failed(v1alpha1.ReasonConflict,
			fmt.Sprintf("route %s of GatewayConnection %s points at a provider the operator does not manage; it is left untouched", route, gwName), retryOnChange)
	}
	holder = labels[v1alpha1.LabelNamespace]
	if holder == ir.Namespace || gc == nil {
		return holder, nil
	}
	granted, f := r.routesGranted(ctx, gc, holder)
	if f != nil {
		return "", f
	}
	if granted {
		return "", failed(v1alpha1.ReasonConflict,
			fmt.Sprintf("route %s of GatewayConnection %s is set for another namespace and is never handed over automatically; a platform administrator releases it by revoking that namespace's grant (spec.inferenceRoutes.namespaces)", route, gwName),
			retryOnChange)
	}
	return holder, nil
}

// finalize releases the finalizer. The gateway has no delete RPC, so the route stays
// configured; the event says so. It is not handed to another claimant, which is not named:
// it may be another tenant's.
func (r *InferenceRouteReconciler) finalize(_ context.Context, ir *v1alpha1.InferenceRoute) step {
	if ir.Status.RouteVersion != 0 && readyReason(ir.Status.Conditions) != v1alpha1.ReasonConflict {
		route, gwName := inferenceRouteName(ir), gatewayRefName(ir.Spec.GatewayRef)
		record(r.Recorder, ir, corev1.EventTypeWarning, eventRouteLeft,
			"the gateway has no delete RPC: route %s of GatewayConnection %s stays configured (model %s, version %d); point it elsewhere with another InferenceRoute",
			route, gwName, ir.Spec.Model, ir.Status.RouteVersion)
	}
	return step{Release: true}
}

func (r *InferenceRouteReconciler) resync() time.Duration {
	if r.Resync > 0 {
		return r.Resync
	}
	return defaultRouteResync
}

// SetupWithManager watches InferenceRoutes (every claimant of a route is re-enqueued when
// one changes, so a deletion hands the route over), their Providers and connections.
func (r *InferenceRouteReconciler) SetupWithManager(mgr ctrl.Manager) error {
	k := newKernel(r.Client, kindInferenceRoute, func() *v1alpha1.InferenceRoute { return &v1alpha1.InferenceRoute{} },
		kindSteps[*v1alpha1.InferenceRoute](r), r.Recorder, true, r.Backoff, r.Retry)
	k.Uses = func(_ context.Context, ir *v1alpha1.InferenceRoute) (gatewayUse, bool) {
		return gatewayUse{Connection: gatewayRefName(ir.Spec.GatewayRef), Routes: true}, true
	}
	b := ctrl.NewControllerManagedBy(mgr).
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
		WithOptions(controllerOptions(r.Backoff, 0))
	return watchAdmission(b, r.Client, func() client.ObjectList { return &v1alpha1.InferenceRouteList{} }).Complete(k)
}

// routesMatching maps an object to the InferenceRoutes for which match holds.
func (r *InferenceRouteReconciler) routesMatching(match func(*v1alpha1.InferenceRoute, client.Object) bool) handler.MapFunc {
	return requestsWhere(r.Client, func() client.ObjectList { return &v1alpha1.InferenceRouteList{} }, match)
}
