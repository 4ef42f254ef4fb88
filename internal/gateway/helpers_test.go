package gateway_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/openshell-operator/openshell-operator/internal/gateway"
	"github.com/openshell-operator/openshell-operator/internal/gatewaysim"
)

type env struct {
	sim    *gatewaysim.Simulator
	certs  *gatewaysim.CertBundle
	addr   string
	client *gateway.Client
}

func startEnv(t *testing.T, opts gatewaysim.Options, clientOpts ...gateway.Option) *env {
	t.Helper()
	current = t
	certs, err := gatewaysim.GenerateCertBundle()
	if err != nil {
		t.Fatalf("certs: %v", err)
	}
	sim := gatewaysim.New(opts)
	addr, err := sim.Start("127.0.0.1:0", certs)
	if err != nil {
		t.Fatalf("start simulator: %v", err)
	}
	t.Cleanup(sim.Stop)
	c, err := gateway.FromCredentials(addr, certs.CACert, certs.ClientCert, certs.ClientKey, clientOpts...)
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &env{sim: sim, certs: certs, addr: addr, client: c}
}

func ctx(t *testing.T) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

// current is the running test; the tests in this package are not parallel, which lets
// must take a call's two results directly.
var current *testing.T

func must[T any](v T, err error) T {
	current.Helper()
	if err != nil {
		current.Fatalf("unexpected error: %v", err)
	}
	return v
}

// wantCode fails unless err carries code (seen through the client's wrapping).
func wantCode(t *testing.T, err error, code codes.Code) {
	t.Helper()
	if err == nil {
		t.Fatalf("expected %v, got success", code)
	}
	if got := gateway.Code(err); got != code {
		t.Fatalf("expected %v, got %v: %v", code, got, err)
	}
}

// eventually polls cond every 20ms until it holds or 10s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

func gatewaysimTimeout(d time.Duration) []gateway.Option {
	return []gateway.Option{gateway.WithTimeout(d)}
}

func isRetryable(err error) bool { return gateway.IsRetryable(err) }
