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
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
	datamodelv1 "github.com/openshell-operator/openshell-operator/gen/openshell/datamodel/v1"
	"github.com/openshell-operator/openshell-operator/internal/gateway"
)

// Field indexes on Provider used to re-enqueue dependents.
const (
	providerSecretIndex  = "spec.credentialsSecretRef.name"
	providerGatewayIndex = "spec.gatewayRef.name"
)

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
	// SecretReader reads the credentials Secret; SetupAll passes the manager's uncached API
	// reader. Nil: the Client.
	SecretReader client.Reader
}

// +kubebuilder:rbac:groups=openshell.dev,resources=providers,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=openshell.dev,resources=providers/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=openshell.dev,resources=providers/finalizers,verbs=update
// +kubebuilder:rbac:groups=openshell.dev,resources=sandboxes,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch

// providerRecorder is the part of the observation loop the Provider controller feeds.
type providerRecorder interface {
	RecordProvider(gateway string, p *datamodelv1.Provider)
}

// sync reads the credentials Secret, then creates or updates the gateway provider.
func (r *ProviderReconciler) sync(ctx context.Context, p *v1alpha1.Provider) step {
	reader := r.SecretReader
	if reader == nil {
		reader = r.Client
	}
	secret := &corev1.Secret{}
	err := reader.Get(ctx, types.NamespacedName{Namespace: p.Namespace, Name: p.Spec.CredentialsSecretRef.Name}, secret)
	if apierrors.IsNotFound(err) {
		secret = nil
	} else if err != nil {
		return fail(failed(v1alpha1.ReasonProgressing, "reading credentials Secret: "+err.Error(), retryBackoff))
	}
	creds, bad := providerCredentials(p, secret)
	if bad != nil {
		return fail(fromOutcome(bad))
	}
	gw, err := r.Gateways.Get(gatewayRefName(p.Spec.GatewayRef))
	if err != nil {
		return fail(connectionFailure(err))
	}
	name := GatewayName(p.Namespace, p.Name)
	hash := credentialsHash(creds)
	live, st := r.converge(ctx, gw.Providers, p, name, creds, hash)
	if st != nil {
		return *st
	}
	if r.Observed != nil {
		r.Observed.RecordProvider(gatewayRefName(p.Spec.GatewayRef), live)
	}
	p.Status.GatewayName = name
	p.Status.ProviderID = live.GetMetadata().GetId()
	p.Status.CredentialsHash = hash
	p.Status.CredentialKeys = slices.Sorted(maps.Keys(creds))
	return step{outcome: readyOutcome(fmt.Sprintf("gateway provider %s is in sync", name))}
}

// converge creates the gateway provider or updates what drifted; a non-nil step ends the
// reconcile there.
func (r *ProviderReconciler) converge(ctx context.Context, gw providerGateway, p *v1alpha1.Provider, name string, creds map[string]string, hash string) (*datamodelv1.Provider, *step) {
	desiredConfig := maps.Clone(p.Spec.Config)
	if desiredConfig == nil {
		desiredConfig = map[string]string{}
	}
	desiredConfig[credentialsHashKey] = hash
	live, err := gw.Get(ctx, name)
	switch {
	case gateway.IsNotFound(err):
		return r.create(ctx, gw, p, name, creds, desiredConfig)
	case err != nil:
		st := failCall("get provider", err)
		return nil, &st
	case !OwnedBy(live.GetMetadata().GetLabels(), p):
		st := fail(failed(v1alpha1.ReasonConflict,
			fmt.Sprintf("gateway provider %s exists and is not owned by this resource; it is left untouched", name), retryOnChange))
		return nil, &st
	}
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
	if len(update.Credentials) == 0 && len(update.Config) == 0 {
		return live, nil
	}
	updated, err := gw.Update(ctx, update)
	if err != nil {
		st := failCall("update provider", err)
		return nil, &st
	}
	record(r.Recorder, p, corev1.EventTypeNormal, eventUpdated, "updated gateway provider %s", name)
	return updated, nil
}

func (r *ProviderReconciler) create(ctx context.Context, gw providerGateway, p *v1alpha1.Provider, name string, creds, config map[string]string) (*datamodelv1.Provider, *step) {
	switch current, err := confirmCurrent(ctx, p); {
	case err != nil:
		st := fail(failed(v1alpha1.ReasonProgressing, fmt.Sprintf("confirm the resource is current before creating its gateway provider: %v", err), retryBackoff))
		return nil, &st
	case !current:
		return nil, &step{Stale: true}
	}
	created, err := gw.Create(ctx, &datamodelv1.Provider{
		Metadata: &datamodelv1.ObjectMeta{Name: name, Labels: OwnershipLabels(p)},
		Type:     p.Spec.Type, Credentials: creds, Config: config,
	})
	if gateway.IsAlreadyExists(err) {
		// Created concurrently (or a crash after create): observe again.
		return nil, &step{outcome: progressing(v1alpha1.ReasonProgressing, "provider appeared while creating it"), RequeueAfter: time.Second}
	}
	if err != nil {
		st := failCall("create provider", err)
		return nil, &st
	}
	if p.Status.ProviderID != "" {
		record(r.Recorder, p, corev1.EventTypeNormal, eventRecreated, "gateway provider %s was missing and has been recreated", name)
	} else {
		record(r.Recorder, p, corev1.EventTypeNormal, eventCreated, "created gateway provider %s", name)
	}
	return created, nil
}

// finalize deletes the gateway provider (unless Orphan) once no Sandbox uses it.
func (r *ProviderReconciler) finalize(ctx context.Context, p *v1alpha1.Provider) step {
	if p.Spec.DeletionPolicy == v1alpha1.DeletionPolicyOrphan {
		return step{Release: true}
	}
	users, err := r.sandboxesUsing(ctx, p)
	if err != nil {
		return fail(failed(v1alpha1.ReasonProgressing, "listing sandboxes: "+err.Error(), retryBackoff))
	}
	if len(users) > 0 {
		return step{outcome: progressing(v1alpha1.ReasonInUse, "deletion waits: used by Sandbox(es) "+strings.Join(users, ", "))}
	}
	gw, err := r.Gateways.Get(gatewayRefName(p.Spec.GatewayRef))
	if err != nil {
		if neverReachedGateway(ctx, r.Client, p.Spec.GatewayRef, p.Status.ProviderID) {
			return step{Release: true}
		}
		return fail(failed(v1alpha1.ReasonDependencyNotReady, "deletion waits for the gateway connection: "+err.Error(), retryDependency))
	}
	name := GatewayName(p.Namespace, p.Name)
	live, err := gw.Providers.Get(ctx, name)
	switch {
	case gateway.IsNotFound(err):
		return step{Release: true}
	case err != nil:
		return failCall("deletion waits: get provider", err)
	case !OwnedBy(live.GetMetadata().GetLabels(), p):
		// Never delete what we do not own.
		return step{Release: true}
	}
	if _, err := gw.Providers.Delete(ctx, name); err != nil {
		if gateway.IsFailedPrecondition(err) {
			// A gateway sandbox this namespace cannot see still uses it.
			err = withReason(err, v1alpha1.ReasonInUse, retryDependency)
		}
		return failCall("deletion waits: delete provider", err)
	}
	record(r.Recorder, p, corev1.EventTypeNormal, eventDeleted, "deleted gateway provider %s", name)
	return step{Release: true}
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
		return fmt.Errorf("index provider secrets: %w", err)
	}
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &v1alpha1.Provider{}, providerGatewayIndex, func(o client.Object) []string {
		return []string{gatewayRefName(o.(*v1alpha1.Provider).Spec.GatewayRef)}
	}); err != nil {
		return fmt.Errorf("index provider gatewayRef: %w", err)
	}
	k := newKernel(r.Client, kindProvider, func() *v1alpha1.Provider { return &v1alpha1.Provider{} }, kindSteps[*v1alpha1.Provider](r),
		r.Recorder, true, r.Backoff, r.Retry)
	k.Reader = mgr.GetAPIReader()
	k.Uses = func(_ context.Context, p *v1alpha1.Provider) (gatewayUse, bool) {
		return gatewayUse{Connection: gatewayRefName(p.Spec.GatewayRef)}, true
	}
	b := ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.Provider{}).
		WatchesMetadata(secretMeta(), handler.EnqueueRequestsFromMapFunc(r.providersForSecret)).
		Watches(&v1alpha1.GatewayConnection{}, handler.EnqueueRequestsFromMapFunc(r.providersForConnection)).
		Watches(&v1alpha1.Sandbox{}, handler.EnqueueRequestsFromMapFunc(providersOfSandbox), builder.WithPredicates(sandboxProvidersChanged)).
		Named("provider").
		WithOptions(controllerOptions(r.Backoff, 0))
	if r.DriftEvents != nil {
		b = b.WatchesRawSource(source.Channel(r.DriftEvents, &handler.EnqueueRequestForObject{}))
	}
	b = watchAdmission(b, r.Client, func() client.ObjectList { return &v1alpha1.ProviderList{} })
	return b.Complete(k)
}

func (r *ProviderReconciler) providersForSecret(ctx context.Context, obj client.Object) []reconcile.Request {
	list := &v1alpha1.ProviderList{}
	if err := r.List(ctx, list, client.InNamespace(obj.GetNamespace()), client.MatchingFields{providerSecretIndex: obj.GetName()}); err != nil {
		return nil
	}
	return requestsOf(list.Items)
}

func (r *ProviderReconciler) providersForConnection(ctx context.Context, obj client.Object) []reconcile.Request {
	list := &v1alpha1.ProviderList{}
	if err := r.List(ctx, list, client.MatchingFields{providerGatewayIndex: obj.GetName()}); err != nil {
		return nil
	}
	return requestsOf(list.Items)
}

// sandboxProvidersChanged passes the Sandbox events that can change whether a Provider is in
// use: creation, deletion (and its start), and a change of spec.providers; not status writes
// or label edits, which would re-read every referenced gateway provider for nothing.
var sandboxProvidersChanged = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		o, ok1 := e.ObjectOld.(*v1alpha1.Sandbox)
		n, ok2 := e.ObjectNew.(*v1alpha1.Sandbox)
		if !ok1 || !ok2 {
			return true
		}
		return !slices.Equal(o.Spec.Providers, n.Spec.Providers) || o.DeletionTimestamp.IsZero() != n.DeletionTimestamp.IsZero() ||
			len(o.Finalizers) != len(n.Finalizers)
	},
}

func providersOfSandbox(_ context.Context, obj client.Object) []reconcile.Request {
	sb := obj.(*v1alpha1.Sandbox)
	out := make([]reconcile.Request, 0, len(sb.Spec.Providers))
	for _, name := range sb.Spec.Providers {
		out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: sb.Namespace, Name: name}})
	}
	return out
}
