package controller

import (
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
)

// The tenant boundary. The operator calls every gateway with one identity, so the gateway
// cannot tell tenants apart: whether a namespace may use a GatewayConnection, and claim its
// gateway-global inference routes, is decided here, once for every kind, before the kind's
// sync makes any gateway call naming the object.

// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch

// DefaultClusterResourceNamespace is where a GatewayConnection's Secrets and global policy
// must live when Options.ClusterResourceNamespaces is empty.
const DefaultClusterResourceNamespace = "openshell-system"

// gatewayUse is what an object asks of its GatewayConnection.
type gatewayUse struct {
	// Connection is the GatewayConnection's name.
	Connection string
	// Routes: the object claims a gateway-global inference route.
	Routes bool
}

// admission decides, from the connection's rules and the namespace's labels, whether an
// object in namespace may use the connection; nil admits it. The message names the
// connection (cluster-scoped, the platform's) and the object's own namespace only.
func admission(gc *v1alpha1.GatewayConnection, namespace string, nsLabels map[string]string, use gatewayUse) *failure {
	ok, err := gc.Spec.Namespaces.Admits(nsLabels, v1alpha1.NamespacesFromAll)
	if err != nil {
		return failed(v1alpha1.ReasonNamespaceNotAllowed,
			fmt.Sprintf("GatewayConnection %q has an unusable spec.namespaces selector (%v); nothing is admitted", gc.Name, err), retryOnChange)
	}
	if !ok {
		return failed(v1alpha1.ReasonNamespaceNotAllowed,
			fmt.Sprintf("GatewayConnection %q does not admit namespace %q (spec.namespaces); a platform administrator grants it", gc.Name, namespace), retryOnChange)
	}
	if !use.Routes {
		return nil
	}
	var grant *v1alpha1.AllowedNamespaces
	if gc.Spec.InferenceRoutes != nil {
		grant = gc.Spec.InferenceRoutes.Namespaces
	}
	ok, err = grant.Admits(nsLabels, v1alpha1.NamespacesFromNone)
	if err != nil {
		return failed(v1alpha1.ReasonNamespaceNotAllowed,
			fmt.Sprintf("GatewayConnection %q has an unusable spec.inferenceRoutes.namespaces selector (%v); nothing is granted", gc.Name, err), retryOnChange)
	}
	if !ok {
		return failed(v1alpha1.ReasonNamespaceNotAllowed,
			fmt.Sprintf("GatewayConnection %q does not grant its inference routes to namespace %q (spec.inferenceRoutes.namespaces); a platform administrator grants it", gc.Name, namespace), retryOnChange)
	}
	return nil
}

// namespaceMeta is an empty Namespace as metadata only: the operator needs labels, and
// caches nothing else of namespaces.
func namespaceMeta() *metav1.PartialObjectMetadata {
	ns := &metav1.PartialObjectMetadata{}
	ns.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Namespace"))
	return ns
}

// admit reads the connection and the namespace and applies admission. A connection that does
// not exist admits (the kind reports it missing, as before); a read error retries.
func admit(ctx context.Context, c client.Reader, obj client.Object, use gatewayUse) *failure {
	gc := &v1alpha1.GatewayConnection{}
	if err := c.Get(ctx, types.NamespacedName{Name: use.Connection}, gc); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return failed(v1alpha1.ReasonProgressing, "reading the GatewayConnection: "+err.Error(), retryBackoff)
	}
	ns := namespaceMeta()
	if err := c.Get(ctx, types.NamespacedName{Name: obj.GetNamespace()}, ns); err != nil {
		return failed(v1alpha1.ReasonProgressing, "reading the namespace: "+err.Error(), retryBackoff)
	}
	return admission(gc, obj.GetNamespace(), ns.GetLabels(), use)
}

// watchAdmission re-enqueues a kind's objects when the labels of their namespace or the spec
// of any GatewayConnection change, so granting and revoking take effect without a restart.
// Namespaces are watched as metadata only.
func watchAdmission(b *builder.Builder, c client.Reader, newList func() client.ObjectList) *builder.Builder {
	return b.
		WatchesMetadata(namespaceMeta(), handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, ns client.Object) []reconcile.Request {
			return listRequests(ctx, c, newList(), nil, client.InNamespace(ns.GetName()))
		}), builder.WithPredicates(predicate.LabelChangedPredicate{})).
		Watches(&v1alpha1.GatewayConnection{}, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, _ client.Object) []reconcile.Request {
			return listRequests(ctx, c, newList(), nil)
		}), builder.WithPredicates(predicate.GenerationChangedPredicate{}))
}

// clusterReference refuses a GatewayConnection reference (what, in namespace) outside the
// cluster resource namespaces: a connection reads Secrets and a policy that govern every
// tenant of the gateway, so they must live where only the platform writes.
func clusterReference(what, namespace string, allowed []string) *failure {
	if slices.Contains(allowed, namespace) {
		return nil
	}
	return failed(v1alpha1.ReasonReferenceNotAllowed,
		fmt.Sprintf("%s: namespace %q is not a cluster resource namespace of the operator (%s); keep it there or add the namespace with --cluster-resource-namespace",
			what, namespace, strings.Join(allowed, ", ")), retryOnChange)
}
