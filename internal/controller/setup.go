package controller

import (
	"context"
	"fmt"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/manager"
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
	// RouteResync is how often a converged InferenceRoute is compared with the gateway
	// (default one minute).
	RouteResync time.Duration
	// ObservationMode is ObservationWatch (default: one list+watch loop per gateway) or
	// ObservationPoll (GetSandbox per sandbox and interval, the design of earlier
	// operators, kept for comparison in the benchmark).
	ObservationMode string
	// Observer tunes the observation loop.
	Observer ObserverOptions
	// MaxConcurrentReconciles of the Sandbox controller (default
	// DefaultMaxConcurrentReconciles).
	MaxConcurrentReconciles int
	// Backoff spaces the retries of failed reconciles of every controller (default
	// exponential from 500ms, capped at 5m).
	Backoff Backoff
	// ClusterResourceNamespaces are the only namespaces GatewayConnections may take their TLS
	// and token Secrets and global policy from (default DefaultClusterResourceNamespace):
	// cert-manager's cluster resource namespace, since those objects govern every tenant.
	ClusterResourceNamespaces []string
}

// DefaultMaxConcurrentReconciles is the Sandbox controller's default worker count, chosen
// with the benchmark (docs/performance.md): more workers stopped helping on 2 cores.
const DefaultMaxConcurrentReconciles = 8

// Observation modes.
const (
	ObservationWatch = "watch"
	ObservationPoll  = "poll"
)

// Poll-mode intervals: the anchor operator's 10 s while settling and 300 s when steady.
const (
	pollTransitional = 10 * time.Second
	pollResync       = 300 * time.Second
)

// SetupAll registers every controller with the manager, sharing one connection registry.
func SetupAll(mgr ctrl.Manager, opts Options) error {
	observers, opts, err := observation(opts)
	if err != nil {
		return err
	}
	if observers != nil {
		if err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
			<-ctx.Done()
			observers.stopAll()
			return nil
		})); err != nil {
			return fmt.Errorf("register observer shutdown: %w", err)
		}
	}
	if err := setupMetrics(mgr); err != nil {
		return fmt.Errorf("set up metrics: %w", err)
	}
	for _, c := range controllers(mgr, opts, NewConnections(), observers) {
		if err := c.SetupWithManager(mgr); err != nil {
			return fmt.Errorf("set up %s: %w", c.name, err)
		}
	}
	return nil
}

// observation applies the observation mode: watch runs one observation loop per gateway
// (the returned Observers), poll has none and requeues more often.
func observation(opts Options) (*Observers, Options, error) {
	if opts.MaxConcurrentReconciles == 0 {
		opts.MaxConcurrentReconciles = DefaultMaxConcurrentReconciles
	}
	switch opts.ObservationMode {
	case "", ObservationWatch:
		return NewObservers(opts.Observer), opts, nil
	case ObservationPoll:
		if opts.Transitional == 0 {
			opts.Transitional = pollTransitional
		}
		if opts.Resync == 0 {
			opts.Resync = pollResync
		}
		return nil, opts, nil
	default:
		return nil, opts, fmt.Errorf("unknown observation mode %q (want %q or %q)", opts.ObservationMode, ObservationWatch, ObservationPoll)
	}
}

// namedController is one controller to register, named for errors.
type namedController struct {
	name string
	setupWithManager
}

// setupWithManager is what every reconciler offers the manager.
type setupWithManager interface {
	SetupWithManager(mgr ctrl.Manager) error
}

// controllers builds every reconciler, in registration order, wired to the shared connection
// registry and (in watch mode) the observation loops.
func controllers(mgr ctrl.Manager, opts Options, conns *Connections, observers *Observers) []namedController {
	// core/v1 events: what `kubectl describe` shows and Argo CD / Flux users read.
	recorder := func(name string) eventRecorder { return mgr.GetEventRecorderFor(name) } //nolint:staticcheck // core/v1 events are what kubectl describe, Argo CD and Flux show
	gc := &GatewayConnectionReconciler{
		Client: mgr.GetClient(), Connections: conns, Recorder: recorder("gatewayconnection-controller"), ProbeInterval: opts.ProbeInterval,
		Observers: observers, Backoff: opts.Backoff,
		// Secrets are read uncached and watched as metadata only (see secretMeta).
		SecretReader: mgr.GetAPIReader(), ClusterResourceNamespaces: opts.ClusterResourceNamespaces,
	}
	pr := &ProviderReconciler{
		Client: mgr.GetClient(), Gateways: conns, Recorder: recorder("provider-controller"), Retry: opts.Retry, Backoff: opts.Backoff,
		SecretReader: mgr.GetAPIReader(),
	}
	sr := &SandboxReconciler{
		Client: mgr.GetClient(), Gateways: conns, Recorder: recorder("sandbox-controller"),
		Transitional: opts.Transitional, Resync: opts.Resync, MaxConcurrentReconciles: opts.MaxConcurrentReconciles,
		Backoff: opts.Backoff,
	}
	pokes := make(chan event.GenericEvent, 1024)
	drafts := &PolicyDraftReconciler{Client: mgr.GetClient(), Gateways: conns, Recorder: recorder("policyproposal-controller"),
		Resync: opts.Resync, ReadsPerMinute: opts.Observer.DraftReadsPerMinute, Pokes: pokes}
	proposals := &PolicyProposalReconciler{
		Client: mgr.GetClient(), Gateways: conns, Recorder: recorder("policyproposal-controller"), Backoff: opts.Backoff,
		Retry: opts.Retry, Pokes: pokes,
	}
	if observers != nil {
		// Assigned only when non-nil: a nil *Observers in an interface would not be nil.
		pr.Observed, pr.DriftEvents = observers, observers.ProviderEvents()
		sr.View, sr.ViewEvents = observers, observers.Events()
		// The draft and approval calls confirm the gateway sandbox's owner from the view.
		drafts.Drafts, drafts.View = observers.DraftEvents(), observers
		proposals.View = observers
	}
	return []namedController{
		{"GatewayConnection controller", gc},
		{"Provider controller", pr},
		{"Sandbox controller", sr},
		{"SandboxPolicy controller", &SandboxPolicyReconciler{
			Client: mgr.GetClient(), Recorder: recorder("sandboxpolicy-controller"), Backoff: opts.Backoff,
		}},
		{"PolicyProposal controller", proposals},
		{"PolicyProposal discovery", drafts},
		{"InferenceRoute controller", &InferenceRouteReconciler{
			Client: mgr.GetClient(), Gateways: conns, Recorder: recorder("inferenceroute-controller"),
			Resync: opts.RouteResync, Retry: opts.Retry, Backoff: opts.Backoff,
		}},
	}
}
