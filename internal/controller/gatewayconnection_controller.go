package controller

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
	"github.com/openshell-operator/openshell-operator/internal/gateway"
)

// connectionRegistry is the part of *Connections the GatewayConnection kind drives.
type connectionRegistry interface {
	ensure(name string, cfg connectionConfig) (gatewayAPI, error)
	setReady(name string, ready bool, reason string)
	markNotReady(name, reason string)
	remove(name string)
}

// GatewayConnectionReconciler builds, probes and caches the gateway client of each
// GatewayConnection, and rotates its certificate or token when the Secrets change.
type GatewayConnectionReconciler struct {
	client.Client
	Connections connectionRegistry
	Recorder    eventRecorder
	// Backoff spaces the retries of failed reconciles.
	Backoff Backoff
	// ProbeInterval is how often a Ready connection is probed again.
	ProbeInterval time.Duration
	// Now is the clock used to judge certificate validity.
	Now func() time.Time
	// Observers runs the observation loop of each Ready connection (nil: none).
	Observers *Observers
	// SecretReader reads the TLS and token Secrets; SetupAll passes the manager's uncached
	// API reader, so no Secret value sits in an informer. Nil: the Client.
	SecretReader client.Reader
	// ClusterResourceNamespaces are the only namespaces the connection's Secrets and global
	// policy may be in (default DefaultClusterResourceNamespace).
	ClusterResourceNamespaces []string
}

// +kubebuilder:rbac:groups=openshell.dev,resources=gatewayconnections,verbs=get;list;watch
// +kubebuilder:rbac:groups=openshell.dev,resources=gatewayconnections/status,verbs=get;update;patch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=openshell.dev,resources=sandboxpolicies,verbs=get;list;watch

// sync checks the connection's Secrets, builds or rotates its client and probes Health,
// then applies the gateway-wide settings and global policy.
func (r *GatewayConnectionReconciler) sync(ctx context.Context, gc *v1alpha1.GatewayConnection) step {
	gw, st := r.connect(ctx, gc)
	if st.Failure != nil {
		r.Connections.markNotReady(gc.Name, st.Failure.Message)
		return st
	}
	// A rejected setting or global policy leaves the connection usable by other
	// controllers; only this resource's conditions report it.
	if f := r.syncGatewayConfig(ctx, gw, gc); f != nil {
		return fail(f)
	}
	return st
}

// connect reads the TLS and token Secrets, ensures the client and probes the gateway.
func (r *GatewayConnectionReconciler) connect(ctx context.Context, gc *v1alpha1.GatewayConnection) (gatewayAPI, step) {
	ref := gc.Spec.TLS.SecretRef
	if f := clusterReference("spec.tls.secretRef", ref.Namespace, r.clusterResourceNamespaces()); f != nil {
		return gatewayAPI{}, fail(f)
	}
	if a := gc.Spec.Auth; a != nil {
		if f := clusterReference("spec.auth.tokenSecretRef", a.TokenSecretRef.Namespace, r.clusterResourceNamespaces()); f != nil {
			return gatewayAPI{}, fail(f)
		}
	}
	secret, err := r.secret(ctx, ref.Namespace, ref.Name)
	if err != nil {
		return gatewayAPI{}, fail(failed(v1alpha1.ReasonProgressing, "reading TLS Secret: "+err.Error(), retryBackoff))
	}
	ca, cert, key, notAfter, bad := tlsMaterial(ref, secret, r.now())
	if !notAfter.IsZero() {
		t := metav1.NewTime(notAfter)
		gc.Status.CertificateNotAfter = &t
	}
	if bad != nil {
		return gatewayAPI{}, fail(fromOutcome(bad))
	}
	var token string
	if gc.Spec.Auth != nil {
		tref := gc.Spec.Auth.TokenSecretRef
		ts, err := r.secret(ctx, tref.Namespace, tref.Name)
		if err != nil {
			return gatewayAPI{}, fail(failed(v1alpha1.ReasonProgressing, "reading token Secret: "+err.Error(), retryBackoff))
		}
		if token, bad = bearerToken(tref, ts); bad != nil {
			return gatewayAPI{}, fail(fromOutcome(bad))
		}
	}
	timeout := gateway.DefaultTimeout
	if gc.Spec.Timeout != nil && gc.Spec.Timeout.Duration > 0 {
		timeout = gc.Spec.Timeout.Duration
	}
	gw, err := r.Connections.ensure(gc.Name, connectionConfig{
		Endpoint: gc.Spec.Endpoint, ServerName: gc.Spec.TLS.ServerName, Timeout: timeout, CA: ca, Cert: cert, Key: key, Token: token,
	})
	if err != nil {
		return gatewayAPI{}, fail(failed(v1alpha1.ReasonCertificateInvalid, err.Error(), retryOnChange))
	}
	health, err := gw.Config.Health(ctx)
	if err != nil {
		r.Connections.setReady(gc.Name, false, "gateway unreachable")
		logf.FromContext(ctx).V(1).Info("gateway probe failed", "connection", gc.Name, "code", gateway.Code(err).String())
		if f := handshakeFailure(gc.Spec.Endpoint, err); f != nil {
			return gatewayAPI{}, fail(f)
		}
		return gatewayAPI{}, failCall(fmt.Sprintf("gateway %s is unreachable", gc.Spec.Endpoint), err)
	}
	r.Connections.setReady(gc.Name, true, "")
	if r.Observers != nil && gw.client != nil {
		r.Observers.ensure(gc.Name, gw.client)
	}
	gc.Status.GatewayVersion = health.GetVersion()
	return gw, step{outcome: readyOutcome(fmt.Sprintf("connected to %s over mTLS", gc.Spec.Endpoint)), RequeueAfter: r.probeInterval()}
}

// finalize is never called: GatewayConnections hold no finalizer.
func (r *GatewayConnectionReconciler) finalize(context.Context, *v1alpha1.GatewayConnection) step {
	return step{Release: true}
}

// forget drops the client and the observation loop of a deleted connection.
func (r *GatewayConnectionReconciler) forget(key types.NamespacedName) {
	r.Connections.remove(key.Name)
	if r.Observers != nil {
		r.Observers.stop(key.Name)
	}
}

func (r *GatewayConnectionReconciler) clusterResourceNamespaces() []string {
	if len(r.ClusterResourceNamespaces) > 0 {
		return r.ClusterResourceNamespaces
	}
	return []string{DefaultClusterResourceNamespace}
}

func (r *GatewayConnectionReconciler) secret(ctx context.Context, ns, name string) (*corev1.Secret, error) {
	reader := r.SecretReader
	if reader == nil {
		reader = r.Client
	}
	s := &corev1.Secret{}
	if err := reader.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, s); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, err
	}
	return s, nil
}

func (r *GatewayConnectionReconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *GatewayConnectionReconciler) probeInterval() time.Duration {
	if r.ProbeInterval > 0 {
		return r.ProbeInterval
	}
	return 30 * time.Second
}

// SetupWithManager watches GatewayConnections and the Secrets they reference.
func (r *GatewayConnectionReconciler) SetupWithManager(mgr ctrl.Manager) error {
	k := newKernel(r.Client, kindGatewayConnection, func() *v1alpha1.GatewayConnection { return &v1alpha1.GatewayConnection{} },
		kindSteps[*v1alpha1.GatewayConnection](r), r.Recorder, false, r.Backoff, 0)
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.GatewayConnection{}).
		WatchesMetadata(secretMeta(), handler.EnqueueRequestsFromMapFunc(r.connectionsWhere(usesSecret))).
		Watches(&v1alpha1.SandboxPolicy{}, handler.EnqueueRequestsFromMapFunc(r.connectionsWhere(usesGlobalPolicy))).
		Named("gatewayconnection").
		WithOptions(controllerOptions(r.Backoff, 0)).
		Complete(k)
}

// connectionsWhere maps an object to the connections for which uses holds.
func (r *GatewayConnectionReconciler) connectionsWhere(uses func(gc *v1alpha1.GatewayConnection, ns, name string) bool) handler.MapFunc {
	return requestsWhere(r.Client, func() client.ObjectList { return &v1alpha1.GatewayConnectionList{} },
		func(gc *v1alpha1.GatewayConnection, o client.Object) bool {
			return uses(gc, o.GetNamespace(), o.GetName())
		})
}

// usesSecret: the connection's TLS or token Secret is ns/name.
func usesSecret(gc *v1alpha1.GatewayConnection, ns, name string) bool {
	if ref := gc.Spec.TLS.SecretRef; ref.Namespace == ns && ref.Name == name {
		return true
	}
	a := gc.Spec.Auth
	return a != nil && a.TokenSecretRef.Namespace == ns && a.TokenSecretRef.Name == name
}

// usesGlobalPolicy: the connection applies SandboxPolicy ns/name gateway-wide.
func usesGlobalPolicy(gc *v1alpha1.GatewayConnection, ns, name string) bool {
	ref := gc.Spec.GlobalPolicyRef
	return ref != nil && ref.Namespace == ns && ref.Name == name
}
