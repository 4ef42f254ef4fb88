package controller

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
	datamodelv1 "github.com/openshell-operator/openshell-operator/gen/openshell/datamodel/v1"
	"github.com/openshell-operator/openshell-operator/internal/gateway"
)

const providerSecretIndex = "spec.credentialsSecretRef.name"

// ProviderReconciler reconciles Provider resources into gateway providers.
type ProviderReconciler struct {
	client.Client
	Gateways gatewayClients
	Recorder eventRecorder
	// Backoff spaces the retries of failed reconciles.
	Backoff Backoff
	// Retry is the requeue interval while waiting on a dependency.
	Retry time.Duration
	// Observed learns of the gateway providers this controller converged, so the
	// observation loop notices when one vanishes even between two of its lists.
	Observed providerRecorder
	// DriftEvents delivers Providers whose gateway provider changed or vanished (from the
	// observation loop's provider list); nil without one.
	DriftEvents <-chan event.GenericEvent
}

// +kubebuilder:rbac:groups=openshell.dev,resources=providers,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=openshell.dev,resources=providers/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=openshell.dev,resources=providers/finalizers,verbs=update
// +kubebuilder:rbac:groups=openshell.dev,resources=sandboxes,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch

// Reconcile observes the gateway provider, then creates, updates or deletes it, then writes
// status once.
func (r *ProviderReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	p := &v1alpha1.Provider{}
	if err := r.Get(ctx, req.NamespacedName, p); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !p.DeletionTimestamp.IsZero() {
		return r.finalize(ctx, p)
	}
	if controllerutil.AddFinalizer(p, v1alpha1.Finalizer) {
		if err := r.Update(ctx, p); err != nil {
			return ctrl.Result{}, client.IgnoreNotFound(err)
		}
	}
	orig := p.DeepCopy()
	o, res, err := r.sync(ctx, p)
	return r.finish(ctx, orig, p, o, res, err)
}

func (r *ProviderReconciler) finish(ctx context.Context, orig, p *v1alpha1.Provider, o outcome, res ctrl.Result, syncErr error) (ctrl.Result, error) {
	applyConditions(&p.Status.Conditions, p.Generation, o)
	recordOutcome(kindProvider, o, syncErr)
	// A generation is fully processed when it converged or stalled on a terminal error (kstatus
	// then reports Current or Failed); while still reconciling, the old generation stays.
	if o.Ready || o.Stalled {
		p.Status.ObservedGeneration = p.Generation
	}
	if err := patchStatusIfChanged(ctx, r.Client, orig, p, orig.Status, p.Status); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if readyChanged(orig.Status.Conditions, p.Status.Conditions) && !o.Ready {
		r.Recorder.Eventf(p, eventType(o), o.Reason, "%s", o.Message)
	}
	return res, syncErr
}

func (r *ProviderReconciler) retry() time.Duration {
	if r.Retry > 0 {
		return r.Retry
	}
	return 30 * time.Second
}

// gatewayFailure turns a gateway error into an outcome: retryable errors keep reconciling
// with backoff, the rest stall with the gateway's message.
func gatewayFailure(what string, err error) (outcome, error) {
	msg := fmt.Sprintf("%s: %s (%s)", what, gateway.Message(err), gateway.Code(err))
	if gateway.IsRetryable(err) {
		return outcome{Reason: v1alpha1.ReasonGatewayUnavailable, Message: msg}, err
	}
	return outcome{Stalled: true, Reason: v1alpha1.ReasonGatewayRejected, Message: msg}, nil
}

func (r *ProviderReconciler) sync(ctx context.Context, p *v1alpha1.Provider) (outcome, ctrl.Result, error) {
	secret := &corev1.Secret{}
	err := r.Get(ctx, types.NamespacedName{Namespace: p.Namespace, Name: p.Spec.CredentialsSecretRef.Name}, secret)
	if apierrors.IsNotFound(err) {
		secret = nil
	} else if err != nil {
		return outcome{Reason: v1alpha1.ReasonProgressing, Message: "reading credentials Secret"}, ctrl.Result{}, err
	}
	creds, fail := providerCredentials(p, secret)
	if fail != nil {
		return *fail, ctrl.Result{}, nil
	}
	gw, err := r.Gateways.Get(gatewayRefName(p.Spec.GatewayRef))
	if err != nil {
		return outcome{Reason: v1alpha1.ReasonDependencyNotReady, Message: err.Error()}, ctrl.Result{RequeueAfter: r.retry()}, nil
	}
	name := GatewayName(p.Namespace, p.Name)
	hash := credentialsHash(creds)
	desiredConfig := maps.Clone(p.Spec.Config)
	if desiredConfig == nil {
		desiredConfig = map[string]string{}
	}
	desiredConfig[credentialsHashKey] = hash

	live, err := gw.Providers.Get(ctx, name)
	switch {
	case gateway.IsNotFound(err):
		created, err := gw.Providers.Create(ctx, &datamodelv1.Provider{
			Metadata: &datamodelv1.ObjectMeta{Name: name, Labels: OwnershipLabels(p)},
			Type:     p.Spec.Type, Credentials: creds, Config: desiredConfig,
		})
		if gateway.IsAlreadyExists(err) {
			// Created concurrently (or a crash after create): observe again.
			return outcome{Reason: v1alpha1.ReasonProgressing, Message: "provider appeared while creating it"}, ctrl.Result{RequeueAfter: time.Second}, nil
		}
		if err != nil {
			o, rerr := gatewayFailure("create provider", err)
			return o, ctrl.Result{}, rerr
		}
		if p.Status.ProviderID != "" {
			r.Recorder.Eventf(p, corev1.EventTypeNormal, "Recreated", "gateway provider %s was missing and has been recreated", name)
		} else {
			r.Recorder.Eventf(p, corev1.EventTypeNormal, "Created", "created gateway provider %s", name)
		}
		live = created
	case err != nil:
		o, rerr := gatewayFailure("get provider", err)
		return o, ctrl.Result{}, rerr
	case !OwnedBy(live.GetMetadata().GetLabels(), p):
		return outcome{Stalled: true, Reason: v1alpha1.ReasonConflict,
			Message: fmt.Sprintf("gateway provider %s exists and is not owned by this resource; it is left untouched", name)}, ctrl.Result{}, nil
	default:
		update := &datamodelv1.Provider{Metadata: &datamodelv1.ObjectMeta{Name: name}}
		liveKeys := slices.Sorted(maps.Keys(live.GetCredentials()))
		if live.GetConfig()[credentialsHashKey] != hash || !slices.Equal(liveKeys, slices.Sorted(maps.Keys(creds))) {
			// Values come back REDACTED: send every desired value, and "" for removed keys.
			update.Credentials = maps.Clone(creds)
			for _, k := range liveKeys {
				if _, ok := creds[k]; !ok {
					update.Credentials[k] = ""
				}
			}
		}
		update.Config = mapDelta(live.GetConfig(), desiredConfig)
		if len(update.Credentials) > 0 || len(update.Config) > 0 {
			updated, err := gw.Providers.Update(ctx, update)
			if err != nil {
				o, rerr := gatewayFailure("update provider", err)
				return o, ctrl.Result{}, rerr
			}
			r.Recorder.Eventf(p, corev1.EventTypeNormal, "Updated", "updated gateway provider %s", name)
			live = updated
		}
	}
	if r.Observed != nil {
		r.Observed.RecordProvider(gatewayRefName(p.Spec.GatewayRef), live)
	}
	p.Status.GatewayName = name
	p.Status.ProviderID = live.GetMetadata().GetId()
	p.Status.CredentialsHash = hash
	p.Status.CredentialKeys = slices.Sorted(maps.Keys(creds))
	return outcome{Ready: true, Reason: v1alpha1.ReasonReady, Message: fmt.Sprintf("gateway provider %s is in sync", name)}, ctrl.Result{}, nil
}

// providerRecorder is the part of the observation loop the Provider controller feeds.
type providerRecorder interface {
	RecordProvider(gateway string, p *datamodelv1.Provider)
}

// finalize deletes the gateway provider (unless Orphan) once no Sandbox uses it.
func (r *ProviderReconciler) finalize(ctx context.Context, p *v1alpha1.Provider) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(p, v1alpha1.Finalizer) {
		return ctrl.Result{}, nil
	}
	orig := p.DeepCopy()
	release := func() (ctrl.Result, error) {
		controllerutil.RemoveFinalizer(p, v1alpha1.Finalizer)
		return ctrl.Result{}, client.IgnoreNotFound(r.Update(ctx, p))
	}
	if p.Spec.DeletionPolicy == v1alpha1.DeletionPolicyOrphan {
		return release()
	}
	users, err := r.sandboxesUsing(ctx, p)
	if err != nil {
		return ctrl.Result{}, err
	}
	if len(users) > 0 {
		o := outcome{Reason: v1alpha1.ReasonInUse, Message: "deletion waits: used by Sandbox(es) " + strings.Join(users, ", ")}
		return r.finish(ctx, orig, p, o, ctrl.Result{}, nil)
	}
	gw, err := r.Gateways.Get(gatewayRefName(p.Spec.GatewayRef))
	if err != nil {
		if neverReachedGateway(ctx, r.Client, p.Spec.GatewayRef, p.Status.ProviderID) {
			return release()
		}
		o := outcome{Reason: v1alpha1.ReasonDependencyNotReady, Message: "deletion waits for the gateway connection: " + err.Error()}
		return r.finish(ctx, orig, p, o, ctrl.Result{RequeueAfter: r.retry()}, nil)
	}
	name := GatewayName(p.Namespace, p.Name)
	live, err := gw.Providers.Get(ctx, name)
	switch {
	case gateway.IsNotFound(err):
		return release()
	case err != nil:
		o, rerr := gatewayFailure("deletion waits: get provider", err)
		return r.finish(ctx, orig, p, o, ctrl.Result{}, rerr)
	case !OwnedBy(live.GetMetadata().GetLabels(), p):
		// Never delete what we do not own.
		return release()
	}
	if _, err := gw.Providers.Delete(ctx, name); err != nil {
		if gateway.IsFailedPrecondition(err) {
			o := outcome{Reason: v1alpha1.ReasonInUse, Message: "deletion waits: " + gateway.Message(err)}
			return r.finish(ctx, orig, p, o, ctrl.Result{RequeueAfter: r.retry()}, nil)
		}
		o, rerr := gatewayFailure("deletion waits: delete provider", err)
		return r.finish(ctx, orig, p, o, ctrl.Result{}, rerr)
	}
	r.Recorder.Eventf(p, corev1.EventTypeNormal, "Deleted", "deleted gateway provider %s", name)
	return release()
}

func (r *ProviderReconciler) sandboxesUsing(ctx context.Context, p *v1alpha1.Provider) ([]string, error) {
	list := &v1alpha1.SandboxList{}
	if err := r.List(ctx, list, client.InNamespace(p.Namespace)); err != nil {
		return nil, err
	}
	var users []string
	for _, sb := range list.Items {
		if slices.Contains(sb.Spec.Providers, p.Name) {
			users = append(users, sb.Name)
		}
	}
	slices.Sort(users)
	return users, nil
}

// SetupWithManager watches Providers, their Secrets (by index), the GatewayConnections they
// use and the Sandboxes that reference them (a deleted Sandbox may release a deletion).
func (r *ProviderReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &v1alpha1.Provider{}, providerSecretIndex, func(o client.Object) []string {
		return []string{o.(*v1alpha1.Provider).Spec.CredentialsSecretRef.Name}
	}); err != nil {
		return err
	}
	b := ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.Provider{}).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.providersForSecret)).
		Watches(&v1alpha1.GatewayConnection{}, handler.EnqueueRequestsFromMapFunc(r.providersForConnection)).
		Watches(&v1alpha1.Sandbox{}, handler.EnqueueRequestsFromMapFunc(providersOfSandbox)).
		Named("provider").
		WithOptions(controller.Options{RateLimiter: r.Backoff.rateLimiter()})
	if r.DriftEvents != nil {
		b = b.WatchesRawSource(source.Channel(r.DriftEvents, &handler.EnqueueRequestForObject{}))
	}
	return b.Complete(r)
}

func (r *ProviderReconciler) providersForSecret(ctx context.Context, obj client.Object) []reconcile.Request {
	list := &v1alpha1.ProviderList{}
	if err := r.List(ctx, list, client.InNamespace(obj.GetNamespace()), client.MatchingFields{providerSecretIndex: obj.GetName()}); err != nil {
		return nil
	}
	return requestsFor(list.Items)
}

func (r *ProviderReconciler) providersForConnection(ctx context.Context, obj client.Object) []reconcile.Request {
	list := &v1alpha1.ProviderList{}
	if err := r.List(ctx, list); err != nil {
		return nil
	}
	var matching []v1alpha1.Provider
	for _, p := range list.Items {
		if gatewayRefName(p.Spec.GatewayRef) == obj.GetName() {
			matching = append(matching, p)
		}
	}
	return requestsFor(matching)
}

func providersOfSandbox(_ context.Context, obj client.Object) []reconcile.Request {
	sb := obj.(*v1alpha1.Sandbox)
	out := make([]reconcile.Request, 0, len(sb.Spec.Providers))
	for _, name := range sb.Spec.Providers {
		out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: sb.Namespace, Name: name}})
	}
	return out
}

func requestsFor(items []v1alpha1.Provider) []reconcile.Request {
	out := make([]reconcile.Request, 0, len(items))
	for _, p := range items {
		out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: p.Namespace, Name: p.Name}})
	}
	return out
}
