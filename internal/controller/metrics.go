package controller

import (
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/openshell-operator/openshell-operator/internal/gateway"
	"github.com/openshell-operator/openshell-operator/internal/metrics"
)

// Kinds as the kind label of openshell_reconcile_outcomes_total.
const (
	kindGatewayConnection = "GatewayConnection"
	kindProvider          = "Provider"
	kindSandbox           = "Sandbox"
	kindSandboxPolicy     = "SandboxPolicy"
	kindInferenceRoute    = "InferenceRoute"
	kindPolicyProposal    = "PolicyProposal"
)

// setupMetrics registers the scrape-time collectors that read from the manager's cache (the
// other metrics register themselves when internal/metrics is loaded).
func setupMetrics(mgr ctrl.Manager) error {
	return metrics.RegisterSandboxCollector(mgr.GetCache())
}

// withRPCMetrics instruments a gateway client: every call is recorded under the
// GatewayConnection's name.
func withRPCMetrics(connection string) gateway.Option {
	return gateway.WithDialOptions(metrics.DialOptions(connection)...)
}

// setConnectionUp records a connection's readiness (openshell_gateway_connection_up).
func setConnectionUp(connection string, up bool) { metrics.SetConnectionUp(connection, up) }

// forgetConnection drops a deleted connection's series.
func forgetConnection(connection string) { metrics.ForgetConnection(connection) }

// outcomeOf classifies a reconcile from its conditions: Ready, Stalled, or not ready after a
// failed call (failed, retried with backoff) or still progressing.
func outcomeOf(ready, stalled, failed bool) metrics.Outcome {
	switch {
	case ready:
		return metrics.OutcomeReady
	case stalled:
		return metrics.OutcomeStalled
	case failed:
		return metrics.OutcomeError
	default:
		return metrics.OutcomeProgressing
	}
}
