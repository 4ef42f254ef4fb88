package controller

import (
	"fmt"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
)

// Options tunes the controllers; zero values take the defaults.
type Options struct {
	// ProbeInterval is how often a Ready GatewayConnection is probed (default 30s).
	ProbeInterval time.Duration
	// Transitional is the Sandbox requeue interval while provisioning or deleting.
	Transitional time.Duration
	// Resync is the Sandbox requeue interval once converged.
	Resync time.Duration
	// Retry is how often a resource waiting on a dependency looks again (default 30s).
	Retry time.Duration
}

// SetupAll registers every controller with the manager, sharing one connection registry.
func SetupAll(mgr ctrl.Manager, opts Options) error {
	conns := NewConnections()
	if err := setupMetrics(mgr); err != nil {
		return fmt.Errorf("set up metrics: %w", err)
	}
	// core/v1 events: what `kubectl describe` shows and Argo CD / Flux users read.
	recorder := func(name string) eventRecorder { return mgr.GetEventRecorderFor(name) } //nolint:staticcheck
	if err := (&GatewayConnectionReconciler{
		Client: mgr.GetClient(), Connections: conns, Recorder: recorder("gatewayconnection-controller"), ProbeInterval: opts.ProbeInterval,
	}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("set up GatewayConnection controller: %w", err)
	}
	if err := (&ProviderReconciler{
		Client: mgr.GetClient(), Gateways: conns, Recorder: recorder("provider-controller"), Retry: opts.Retry,
	}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("set up Provider controller: %w", err)
	}
	if err := (&SandboxReconciler{
		Client: mgr.GetClient(), Gateways: conns, Recorder: recorder("sandbox-controller"),
		Transitional: opts.Transitional, Resync: opts.Resync,
	}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("set up Sandbox controller: %w", err)
	}
	return nil
}
