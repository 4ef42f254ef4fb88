package controller

import (
	"context"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
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
