package controller

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
	"github.com/openshell-operator/openshell-operator/internal/gateway"
)

// eventRecorder is the part of an event recorder the controllers use.
type eventRecorder interface {
	Eventf(object runtime.Object, eventtype, reason, messageFmt string, args ...any)
}

// GatewayConnectionReconciler builds, probes and caches the gateway client of each
// GatewayConnection, and rotates its certificate or token when the Secrets change.
type GatewayConnectionReconciler struct {
	client.Client
	Connections *Connections
	Recorder    eventRecorder
	// Backoff spaces the retries of failed reconciles.
	Backoff Backoff
	// ProbeInterval is how often a Ready connection is probed again.
	ProbeInterval time.Duration
	// Now is the clock used to judge certificate validity.
	Now func() time.Time
	// Observers runs the observation loop of each Ready connection (nil: none).
	Observers *Observers
}

// +kubebuilder:rbac:groups=openshell.dev,resources=gatewayconnections,verbs=get;list;watch
// +kubebuilder:rbac:groups=openshell.dev,resources=gatewayconnections/status,verbs=get;update;patch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=openshell.dev,resources=sandboxpolicies,verbs=get;list;watch

// Reconcile observes the connection's Secrets and the gateway's Health, then applies the
// gateway-wide settings and global policy.
func (r *GatewayConnectionReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	log := logf.FromContext(ctx)
	gc := &v1alpha1.GatewayConnection{}
	if err := r.Get(ctx, req.NamespacedName, gc); err != nil {
		if apierrors.IsNotFound(err) {
			r.forget(req.Name)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	if !gc.DeletionTimestamp.IsZero() {
		r.forget(gc.Name)
		return ctrl.Result{}, nil
	}
	orig := gc.DeepCopy()
	o, result, probeErr := r.observe(ctx, gc)
	if !o.Ready {
		r.Connections.markNotReady(gc.Name, o.Message)
	} else if cl, err := r.Connections.Get(gc.Name); err == nil {
		// A rejected setting or global policy leaves the connection usable by other
		// controllers; only this resource's conditions report it.
		co, err := r.syncGatewayConfig(ctx, cl, gc)
		if err != nil && co == nil {
			co = &outcome{Reason: v1alpha1.ReasonProgressing, Message: err.Error()}
		}
		if co != nil {
			o, probeErr = *co, err
		}
	}
	applyConditions(&gc.Status.Conditions, gc.Generation, o)
	recordOutcome(kindGatewayConnection, o, probeErr)
	gc.Status.ObservedGeneration = gc.Generation
	if err := patchStatusIfChanged(ctx, r.Client, orig, gc, orig.Status, gc.Status); err != nil {
		return ctrl.Result{}, err
	}
	if readyChanged(orig.Status.Conditions, gc.Status.Conditions) {
		r.Recorder.Eventf(gc, eventType(o), o.Reason, "%s", o.Message)
	}
	if probeErr != nil {
		log.V(1).Info("gateway probe failed", "connection", gc.Name, "reason", o.Reason)
		// Returning the error applies controller-runtime's capped exponential backoff.
		return ctrl.Result{}, probeErr
	}
	return result, nil
}

func (r *GatewayConnectionReconciler) observe(ctx context.Context, gc *v1alpha1.GatewayConnection) (outcome, ctrl.Result, error) {
	ref := gc.Spec.TLS.SecretRef
	secret, err := r.secret(ctx, ref.Namespace, ref.Name)
	if err != nil {
		return outcome{Reason: v1alpha1.ReasonProgressing, Message: "reading TLS Secret: " + err.Error()}, ctrl.Result{}, err
	}
	ca, cert, key, notAfter, fail := tlsMaterial(ref, secret, r.now())
	if !notAfter.IsZero() {
		t := metav1.NewTime(notAfter)
		gc.Status.CertificateNotAfter = &t
	}
	if fail != nil {
		return *fail, ctrl.Result{}, nil
	}
	var token string
	if gc.Spec.Auth != nil {
		tref := gc.Spec.Auth.TokenSecretRef
		ts, err := r.secret(ctx, tref.Namespace, tref.Name)
		if err != nil {
			return outcome{Reason: v1alpha1.ReasonProgressing, Message: "reading token Secret: " + err.Error()}, ctrl.Result{}, err
		}
		var fail *outcome
		if token, fail = bearerToken(tref, ts); fail != nil {
			return *fail, ctrl.Result{}, nil
		}
	}
	timeout := gateway.DefaultTimeout
	if gc.Spec.Timeout != nil && gc.Spec.Timeout.Duration > 0 {
		timeout = gc.Spec.Timeout.Duration
	}
	cl, err := r.Connections.ensure(gc.Name, connectionConfig{
		Endpoint: gc.Spec.Endpoint, ServerName: gc.Spec.TLS.ServerName, Timeout: timeout, CA: ca, Cert: cert, Key: key, Token: token,
	})
	if err != nil {
		return outcome{Stalled: true, Reason: v1alpha1.ReasonCertificateInvalid, Message: err.Error()}, ctrl.Result{}, nil
	}
	health, err := cl.Health(ctx)
	if err != nil {
		r.Connections.setReady(gc.Name, false, "gateway unreachable")
		if o := handshakeFailure(gc.Spec.Endpoint, err); o != nil {
			return *o, ctrl.Result{}, err
		}
		return outcome{Reason: v1alpha1.ReasonGatewayUnavailable, Message: fmt.Sprintf("gateway %s is unreachable: %s (%s)", gc.Spec.Endpoint, gateway.Message(err), gateway.Code(err))}, ctrl.Result{}, err
	}
	r.Connections.setReady(gc.Name, true, "")
	if r.Observers != nil {
		r.Observers.ensure(gc.Name, cl)
	}
	gc.Status.GatewayVersion = health.GetVersion()
	return outcome{Ready: true, Reason: v1alpha1.ReasonReady, Message: fmt.Sprintf("connected to %s over mTLS", gc.Spec.Endpoint)}, ctrl.Result{RequeueAfter: r.probeInterval()}, nil
}

// forget drops the client and the observation loop of a deleted connection.
func (r *GatewayConnectionReconciler) forget(name string) {
	r.Connections.remove(name)
	if r.Observers != nil {
		r.Observers.stop(name)
	}
}

func (r *GatewayConnectionReconciler) secret(ctx context.Context, ns, name string) (*corev1.Secret, error) {
	s := &corev1.Secret{}
	if err := r.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, s); err != nil {
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
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.GatewayConnection{}).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.connectionsForSecret)).
		Watches(&v1alpha1.SandboxPolicy{}, handler.EnqueueRequestsFromMapFunc(r.connectionsForGlobalPolicy)).
		Named("gatewayconnection").
		WithOptions(controller.Options{RateLimiter: r.Backoff.rateLimiter()}).
		Complete(r)
}

// connectionsForSecret maps a Secret to the connections referencing it. Connections are
// cluster-scoped and few, so a list beats maintaining an index.
func (r *GatewayConnectionReconciler) connectionsForSecret(ctx context.Context, obj client.Object) []reconcile.Request {
	list := &v1alpha1.GatewayConnectionList{}
	if err := r.List(ctx, list); err != nil {
		return nil
	}
	var out []reconcile.Request
	for _, gc := range list.Items {
		uses := gc.Spec.TLS.SecretRef.Namespace == obj.GetNamespace() && gc.Spec.TLS.SecretRef.Name == obj.GetName()
		if a := gc.Spec.Auth; a != nil && a.TokenSecretRef.Namespace == obj.GetNamespace() && a.TokenSecretRef.Name == obj.GetName() {
			uses = true
		}
		if uses {
			out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Name: gc.Name}})
		}
	}
	return out
}

// connectionsForGlobalPolicy maps a SandboxPolicy to the connections applying it globally.
func (r *GatewayConnectionReconciler) connectionsForGlobalPolicy(ctx context.Context, obj client.Object) []reconcile.Request {
	list := &v1alpha1.GatewayConnectionList{}
	if err := r.List(ctx, list); err != nil {
		return nil
	}
	var out []reconcile.Request
	for _, gc := range list.Items {
		if ref := gc.Spec.GlobalPolicyRef; ref != nil && ref.Namespace == obj.GetNamespace() && ref.Name == obj.GetName() {
			out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Name: gc.Name}})
		}
	}
	return out
}

// patchStatusIfChanged writes status once, and only when it differs from what was read.
func patchStatusIfChanged(ctx context.Context, c client.Client, orig, obj client.Object, before, after any) error {
	if equality.Semantic.DeepEqual(before, after) {
		return nil
	}
	if err := c.Status().Patch(ctx, obj, client.MergeFrom(orig)); err != nil {
		return fmt.Errorf("patch status: %w", err)
	}
	return nil
}

// readyChanged reports a change of the Ready condition's status or reason, which is when an
// event is worth emitting.
func readyChanged(before, after []metav1.Condition) bool {
	find := func(cs []metav1.Condition) (metav1.ConditionStatus, string) {
		for _, c := range cs {
			if c.Type == v1alpha1.ConditionReady {
				return c.Status, c.Reason
			}
		}
		return "", ""
	}
	s1, r1 := find(before)
	s2, r2 := find(after)
	return s1 != s2 || r1 != r2
}

func eventType(o outcome) string {
	if o.Ready || (!o.Stalled && o.Reason == v1alpha1.ReasonProgressing) {
		return corev1.EventTypeNormal
	}
	return corev1.EventTypeWarning
}
