// Package metrics defines the operator's own Prometheus metrics, registered on
// controller-runtime's registry (sigs.k8s.io/controller-runtime/pkg/metrics.Registry) and so
// served on the manager's /metrics endpoint next to controller-runtime's metrics:
//
//   - openshell_gateway_rpc_duration_seconds and openshell_gateway_rpc_errors_total, recorded by
//     gRPC client interceptors (DialOptions) on every call to a gateway;
//   - openshell_gateway_connection_up, set by the GatewayConnection registry;
//   - openshell_sandboxes, computed at scrape time from the manager's cache (SandboxCollector);
//   - openshell_reconcile_outcomes_total, counted by the controllers (RecordReconcile).
//
// Every label has a bounded set of values: gateway is a GatewayConnection name, method an RPC
// of the fixed gateway services, code a gRPC code, kind a CRD kind, reason a condition reason.
// See docs/metrics.md.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Metric names.
const (
	RPCDurationName       = "openshell_gateway_rpc_duration_seconds"
	RPCErrorsName         = "openshell_gateway_rpc_errors_total"
	ConnectionUpName      = "openshell_gateway_connection_up"
	SandboxesName         = "openshell_sandboxes"
	ReconcileOutcomesName = "openshell_reconcile_outcomes_total"
)

// Label names.
const (
	LabelGateway = "gateway"
	LabelMethod  = "method"
	LabelCode    = "code"
	LabelPhase   = "phase"
	LabelKind    = "kind"
	LabelOutcome = "outcome"
	LabelReason  = "reason"
)

// Outcome is how one reconcile ended, as its conditions show it.
type Outcome string

// Reconcile outcomes.
const (
	// OutcomeReady: Ready=True, the object converged.
	OutcomeReady Outcome = "ready"
	// OutcomeProgressing: Reconciling=True, work in progress or waiting on a dependency.
	OutcomeProgressing Outcome = "progressing"
	// OutcomeStalled: Stalled=True, only a change of the object (or its Secrets) can fix it.
	OutcomeStalled Outcome = "stalled"
	// OutcomeError: Reconciling=True after a failed API or gateway call; retried with backoff.
	OutcomeError Outcome = "error"
)

// rpcBuckets span a fast in-cluster call (5 ms) to the client's default 30 s deadline.
var rpcBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

var (
	rpcDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    RPCDurationName,
		Help:    "Duration of gRPC calls from the operator to OpenShell gateways (streams: until they end), by gateway, method and gRPC status code.",
		Buckets: rpcBuckets,
	}, []string{LabelGateway, LabelMethod, LabelCode})

	rpcErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: RPCErrorsName,
		Help: "gRPC calls from the operator to OpenShell gateways that ended with a non-OK status code (cancellations by the operator itself excluded).",
	}, []string{LabelGateway, LabelMethod, LabelCode})

	connectionUp = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: ConnectionUpName,
		Help: "Whether the operator's connection to a gateway is Ready (1) or not (0), by GatewayConnection.",
	}, []string{LabelGateway})

	reconcileOutcomes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: ReconcileOutcomesName,
		Help: "Reconciles by kind, outcome (ready, progressing, stalled, error) and Ready condition reason.",
	}, []string{LabelKind, LabelOutcome, LabelReason})
)

func init() {
	ctrlmetrics.Registry.MustRegister(rpcDuration, rpcErrors, connectionUp, reconcileOutcomes)
}

// SetConnectionUp records whether the connection to a gateway is Ready.
func SetConnectionUp(gateway string, up bool) {
	v := 0.0
	if up {
		v = 1
	}
	connectionUp.WithLabelValues(gateway).Set(v)
}

// ForgetConnection deletes every series of a gateway (its GatewayConnection was deleted), so
// removed connections neither linger as connection_up 0 nor accumulate label values.
func ForgetConnection(gateway string) {
	connectionUp.DeleteLabelValues(gateway)
	rpcDuration.DeletePartialMatch(prometheus.Labels{LabelGateway: gateway})
	rpcErrors.DeletePartialMatch(prometheus.Labels{LabelGateway: gateway})
}

// RecordReconcile counts one reconcile of kind that ended with outcome and the Ready
// condition's reason.
func RecordReconcile(kind string, outcome Outcome, reason string) {
	reconcileOutcomes.WithLabelValues(kind, string(outcome), reason).Inc()
}

// PendingProposalsName is the gauge of PolicyProposals waiting for a decision.
const PendingProposalsName = "openshell_policy_proposals_pending"

// LabelNamespace is a namespace's name.
const LabelNamespace = "namespace"

var pendingProposals = prometheus.NewGaugeVec(prometheus.GaugeOpts{
	Name: PendingProposalsName,
	Help: "PolicyProposals waiting for a reviewer's decision, by namespace.",
}, []string{LabelNamespace})

func init() { ctrlmetrics.Registry.MustRegister(pendingProposals) }

// SetPendingProposals sets the number of proposals waiting for a decision in a namespace.
func SetPendingProposals(namespace string, n int) {
	pendingProposals.WithLabelValues(namespace).Set(float64(n))
}
