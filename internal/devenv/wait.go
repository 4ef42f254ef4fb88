package devenv

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// WaitedKinds are the sample kinds the demo and e2e wait for, in dependency order.
var WaitedKinds = []string{
	"gatewayconnections.openshell.dev", "providers.openshell.dev", "sandboxes.openshell.dev",
	"sandboxpolicies.openshell.dev", "inferenceroutes.openshell.dev",
}

// WaitSamplesReady waits until every object of WaitedKinds is Ready, polling kubectl wait until
// ctx ends (kubectl wait fails at once while an object has no status yet).
func (e *Env) WaitSamplesReady(ctx context.Context) error {
	for _, kind := range WaitedKinds {
		if err := e.WaitReady(ctx, kind, "--all", "-A"); err != nil {
			return err
		}
		e.logf("%s Ready", kind)
	}
	return nil
}

// WaitReady runs `kubectl wait --for=condition=Ready` on the given objects until it succeeds or
// ctx ends.
func (e *Env) WaitReady(ctx context.Context, kind string, args ...string) error {
	var last error
	for {
		wargs := append([]string{"wait", "--for=condition=Ready", "--timeout=10s", kind}, args...)
		if _, err := e.Kubectl(ctx, wargs...); err == nil {
			return nil
		} else {
			last = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not Ready: %s", kind, strings.TrimSpace(last.Error()))
		case <-time.After(time.Second):
		}
	}
}
