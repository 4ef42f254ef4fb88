package controller

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
	datamodelv1 "github.com/openshell-operator/openshell-operator/gen/openshell/datamodel/v1"
	"github.com/openshell-operator/openshell-operator/internal/gateway"
)

// gatewayRefName is the GatewayConnection a resource uses ("default" when unset).
func gatewayRefName(ref v1alpha1.GatewayReference) string {
	if ref.Name == "" {
		return v1alpha1.DefaultGatewayConnection
	}
	return ref.Name
}

// neverReachedGateway reports whether a resource being deleted has nothing to clean up on any
// gateway: it never got a gateway id (id is empty) and its GatewayConnection does not exist.
// Waiting for such a connection would keep the finalizer forever, since gatewayRef is
// immutable (a typo in it could never be fixed). A connection that exists but is not ready
// still holds the finalizer: an outage never releases one.
func neverReachedGateway(ctx context.Context, c client.Reader, ref v1alpha1.GatewayReference, id string) bool {
	if id != "" {
		return false
	}
	err := c.Get(ctx, types.NamespacedName{Name: gatewayRefName(ref)}, &v1alpha1.GatewayConnection{})
	return apierrors.IsNotFound(err)
}

// connectionFailure is the failure of a resource whose GatewayConnection is not usable.
func connectionFailure(err error) *failure {
	return failed(v1alpha1.ReasonDependencyNotReady, err.Error(), retryDependency)
}

// requestsOf turns objects into reconcile requests.
func requestsOf[T any, P interface {
	*T
	client.Object
}](items []T) []reconcile.Request {
	out := make([]reconcile.Request, 0, len(items))
	for i := range items {
		o := P(&items[i])
		out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: o.GetName()}})
	}
	return out
}

// providerNotAttachable says why Provider p cannot be attached by a consumer on connection,
// from the API object alone: it must be on the same GatewayConnection and Ready for its
// current generation. "" when it may be (the gateway check in attachProvider follows).
func providerNotAttachable(p *v1alpha1.Provider, connection string) string {
	if gatewayRefName(p.Spec.GatewayRef) != connection {
		return fmt.Sprintf("Provider %q is on another GatewayConnection", p.Name)
	}
	ready := meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionReady)
	if ready == nil || ready.Status != metav1.ConditionTrue || ready.ObservedGeneration != p.Generation || p.Status.ObservedGeneration != p.Generation {
		return fmt.Sprintf("Provider %q is not Ready for its current generation", p.Name)
	}
	return ""
}

// providerLookup is the observation loop's view of a gateway's managed providers.
type providerLookup interface {
	ProviderMeta(gateway, name string) (*datamodelv1.ObjectMeta, bool)
}

// attachProvider returns the gateway name a consumer on connection attaches for Provider p:
// derived from p's namespace and name, never read from status (a tenant may write its own
// status), and only when p is attachable and the gateway's provider object carries p's
// ownership labels (UID included), so a squatted or foreign object of that name is never
// attached. A "" name comes with why; err is a failed gateway call.
//
// seen, when non-nil, is the observation loop's list of managed gateway providers: a provider
// it saw with p's ownership labels is attached without a call (steady-state resyncs make
// none); anything else is asked of the gateway, so a stale list can only cost a call.
func attachProvider(ctx context.Context, providers providerGateway, seen providerLookup, p *v1alpha1.Provider, connection string) (name, why string, err error) {
	if why := providerNotAttachable(p, connection); why != "" {
		return "", why, nil
	}
	name = GatewayName(p.Namespace, p.Name)
	if seen != nil {
		if md, ok := seen.ProviderMeta(connection, name); ok && OwnedBy(md.GetLabels(), p) {
			return name, "", nil
		}
	}
	gp, err := providers.Get(ctx, name)
	switch {
	case gateway.IsNotFound(err):
		return "", fmt.Sprintf("Provider %q is not on the gateway", p.Name), nil
	case err != nil:
		return "", "", err
	case !OwnedBy(gp.GetMetadata().GetLabels(), p):
		return "", fmt.Sprintf("the gateway provider of Provider %q is not owned by it", p.Name), nil
	}
	return name, "", nil
}

// secretMeta is an empty Secret as metadata only: Secrets are watched this way to re-enqueue
// their dependents, and read uncached, so no Secret value is held in an informer and memory
// does not grow with Secrets the operator never uses.
func secretMeta() *metav1.PartialObjectMetadata {
	s := &metav1.PartialObjectMetadata{}
	s.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	return s
}

// requestsWhere is a watch's map function: the objects of one kind (listed from the cache into
// newList) for which match holds against the event's object. For kinds that are few per
// cluster (connections, routes), a list beats an index.
func requestsWhere[T client.Object](c client.Reader, newList func() client.ObjectList, match func(T, client.Object) bool) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		return listRequests(ctx, c, newList(), func(obj client.Object) bool {
			t, ok := obj.(T)
			return ok && match(t, o)
		})
	}
}

// listRequests lists into list with opts and returns a request for each item keep accepts
// (nil: every item). Every watch that maps an event to a list of objects goes through it.
func listRequests(ctx context.Context, c client.Reader, list client.ObjectList, keep func(client.Object) bool, opts ...client.ListOption) []reconcile.Request {
	if err := c.List(ctx, list, opts...); err != nil {
		logf.FromContext(ctx).Error(err, "list for a watch", "of", fmt.Sprintf("%T", list))
		return nil
	}
	items, err := meta.ExtractList(list)
	if err != nil {
		return nil
	}
	out := make([]reconcile.Request, 0, len(items))
	for _, it := range items {
		if obj, ok := it.(client.Object); ok && (keep == nil || keep(obj)) {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(obj)})
		}
	}
	return out
}
