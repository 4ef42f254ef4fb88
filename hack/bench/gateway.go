package main

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
	"github.com/openshell-operator/openshell-operator/internal/devenv"
)

// gatewayReady reads, through the gateway's own API over mTLS, when the gateway made each
// sandbox of namespace ns READY: its creation time plus the simulator's provisioning delay
// (the simulator turns a sandbox READY by a timer of exactly that delay). Keyed by the
// Sandbox resource's name, from the ownership labels.
func gatewayReady(ctx context.Context, env *devenv.Env, ns string, delay time.Duration) (map[string]time.Time, error) {
	gc, err := env.GatewayClient()
	if err != nil {
		return nil, fmt.Errorf("gateway client: %w", err)
	}
	defer func() { _ = gc.Close() }()
	all, err := gc.Sandboxes.ListAll(ctx, v1alpha1.LabelNamespace+"="+ns, 500)
	if err != nil {
		return nil, err
	}
	out := make(map[string]time.Time, len(all))
	for _, sb := range all {
		md := sb.GetMetadata()
		out[md.GetLabels()[v1alpha1.LabelName]] = time.UnixMilli(md.GetCreatedAtMs()).Add(delay)
	}
	return out, nil
}

// readyAfterGateway is, for each sandbox the gateway made READY at or after since, how long
// after that its resource showed Ready=True (p50, p99, max). since is when the last resource
// of the burst had been written: from then on the write budget no longer queues creates.
func (t *tracker) readyAfterGateway(gw map[string]time.Time, since time.Time) (p50, p99, worst time.Duration, n int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var ls []time.Duration
	for name, r := range t.ready {
		g, ok := gw[name]
		if !ok || g.Before(since) {
			continue
		}
		ls = append(ls, max(r.Sub(g), 0))
	}
	if len(ls) == 0 {
		return 0, 0, 0, 0
	}
	slices.Sort(ls)
	pick := func(q float64) time.Duration { return ls[min(len(ls)-1, int(q*float64(len(ls))))] }
	return pick(0.50), pick(0.99), ls[len(ls)-1], len(ls)
}
