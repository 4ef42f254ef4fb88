package controller

import (
	"context"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
)

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
