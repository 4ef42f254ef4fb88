package metrics

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
)

// PhasePending is the phase label of a Sandbox whose status has no phase yet (the gateway
// has not reported one).
const PhasePending = "Pending"

// sandboxPhases are the phase label values reported for every gateway, zeros included, so a
// query on one phase has a series to read even when no sandbox is in it.
var sandboxPhases = []string{
	PhasePending,
	string(v1alpha1.SandboxPhaseProvisioning),
	string(v1alpha1.SandboxPhaseReady),
	string(v1alpha1.SandboxPhaseError),
	string(v1alpha1.SandboxPhaseDeleting),
	string(v1alpha1.SandboxPhaseUnknown),
}

// collectTimeout bounds one scrape's list (it waits for the cache to sync after a restart).
const collectTimeout = 10 * time.Second

// SandboxCollector reports openshell_sandboxes{gateway, phase}: the number of Sandbox
// objects by GatewayConnection and status phase, counted at scrape time from a client.Reader
// (the manager's cache), so the value can never drift from the objects.
type SandboxCollector struct {
	reader client.Reader
	desc   *prometheus.Desc
}

// NewSandboxCollector returns a collector listing Sandboxes from reader.
func NewSandboxCollector(reader client.Reader) *SandboxCollector {
	return &SandboxCollector{
		reader: reader,
		desc: prometheus.NewDesc(SandboxesName,
			"Sandbox resources by GatewayConnection and status phase (Pending: no phase reported yet).",
			[]string{LabelGateway, LabelPhase}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *SandboxCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector. When the list fails (cache not started or not
// synced in time) nothing is reported and the error is logged: a missing series is easier
// to alert on than a wrong zero.
func (c *SandboxCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), collectTimeout)
	defer cancel()
	counts, err := c.count(ctx)
	if err != nil {
		logf.Log.WithName("metrics").Error(err, "cannot collect sandbox metrics", "metric", SandboxesName)
		return
	}
	gateways := make([]string, 0, len(counts))
	for gw := range counts {
		gateways = append(gateways, gw)
	}
	sort.Strings(gateways)
	for _, gw := range gateways {
		for _, phase := range sandboxPhases {
			ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(counts[gw][phase]), gw, phase)
		}
	}
}

// count returns the number of Sandboxes by gateway and phase.
func (c *SandboxCollector) count(ctx context.Context) (map[string]map[string]int, error) {
	list := &v1alpha1.SandboxList{}
	// Read-only: skip the deep copy of every cached object.
	if err := c.reader.List(ctx, list, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("list sandboxes: %w", err)
	}
	counts := map[string]map[string]int{}
	for i := range list.Items {
		sb := &list.Items[i]
		gw := sb.Spec.GatewayRef.Name
		if gw == "" {
			gw = v1alpha1.DefaultGatewayConnection
		}
		if counts[gw] == nil {
			counts[gw] = map[string]int{}
		}
		counts[gw][phaseLabel(sb.Status.Phase)]++
	}
	return counts, nil
}

// phaseLabel keeps the phase label within sandboxPhases.
func phaseLabel(p v1alpha1.SandboxPhase) string {
	switch p {
	case "":
		return PhasePending
	case v1alpha1.SandboxPhaseProvisioning, v1alpha1.SandboxPhaseReady, v1alpha1.SandboxPhaseError, v1alpha1.SandboxPhaseDeleting:
		return string(p)
	default:
		return string(v1alpha1.SandboxPhaseUnknown)
	}
}

var (
	sandboxCollectorMu sync.Mutex
	sandboxCollector   *SandboxCollector
)

// RegisterSandboxCollector registers a SandboxCollector reading from reader on
// controller-runtime's registry, replacing the one an earlier call registered (a process
// that builds several managers, as tests do, reports from the latest).
func RegisterSandboxCollector(reader client.Reader) error {
	sandboxCollectorMu.Lock()
	defer sandboxCollectorMu.Unlock()
	if sandboxCollector != nil {
		ctrlmetrics.Registry.Unregister(sandboxCollector)
	}
	c := NewSandboxCollector(reader)
	if err := ctrlmetrics.Registry.Register(c); err != nil {
		sandboxCollector = nil
		return fmt.Errorf("register %s collector: %w", SandboxesName, err)
	}
	sandboxCollector = c
	return nil
}
