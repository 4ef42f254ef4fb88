package metrics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/grpc/codes"

	openshellv1 "github.com/openshell-operator/openshell-operator/gen/openshell/v1"
	"github.com/openshell-operator/openshell-operator/internal/gateway"
	"github.com/openshell-operator/openshell-operator/internal/gatewaysim"
)

// rpcCount is the number of observations of one duration series.
func rpcCount(t *testing.T, gw, method, code string) uint64 {
	t.Helper()
	m := &dto.Metric{}
	if err := rpcDuration.WithLabelValues(gw, method, code).(prometheus.Histogram).Write(m); err != nil {
		t.Fatalf("read histogram: %v", err)
	}
	return m.GetHistogram().GetSampleCount()
}

func rpcErrorCount(gw, method, code string) float64 {
	return testutil.ToFloat64(rpcErrors.WithLabelValues(gw, method, code))
}

// eventually polls cond until it holds or 10 s pass (a cancelled stream is recorded
// asynchronously).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// TestInterceptors calls a real simulator over mutual TLS through a client instrumented with
// DialOptions and checks what each call records.
func TestInterceptors(t *testing.T) {
	certs, err := gatewaysim.GenerateCertBundle()
	if err != nil {
		t.Fatalf("certs: %v", err)
	}
	sim := gatewaysim.New(gatewaysim.Options{ProvisioningDelay: 10 * time.Millisecond})
	addr, err := sim.Start("127.0.0.1:0", certs)
	if err != nil {
		t.Fatalf("start simulator: %v", err)
	}
	t.Cleanup(sim.Stop)
	newClient := func(opts ...gateway.Option) *gateway.Client {
		c, err := gateway.FromCredentials(addr, certs.CACert, certs.ClientCert, certs.ClientKey, opts...)
		if err != nil {
			t.Fatalf("client: %v", err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	// The setup client is not instrumented: only the call under test is recorded.
	setup := newClient()
	bg, cancelAll := context.WithTimeout(context.Background(), time.Minute)
	defer cancelAll()
	ready, err := setup.Sandboxes.Create(bg, "watched", &openshellv1.SandboxSpec{}, nil)
	if err != nil {
		t.Fatalf("create sandbox: %v", err)
	}
	if _, err := setup.Sandboxes.WaitReady(bg, "watched"); err != nil {
		t.Fatalf("wait ready: %v", err)
	}
	readyID := ready.GetMetadata().GetId()

	tests := []struct {
		name   string
		inject func()
		call   func(ctx context.Context, c *gateway.Client) error
		method string
		code   codes.Code
		// wantError: the call counts in openshell_gateway_rpc_errors_total.
		wantError bool
		// async: recorded after the call returns (a stream ended by cancellation).
		async bool
	}{
		{
			name:   "unary OK",
			call:   func(ctx context.Context, c *gateway.Client) error { _, err := c.Health(ctx); return err },
			method: "Health", code: codes.OK,
		},
		{
			name: "unary NotFound from the gateway",
			call: func(ctx context.Context, c *gateway.Client) error {
				_, err := c.Sandboxes.Get(ctx, "missing")
				return err
			},
			method: "GetSandbox", code: codes.NotFound, wantError: true,
		},
		{
			name:   "unary injected Unavailable",
			inject: func() { sim.InjectError("CreateSandbox", codes.Unavailable, "down", 1) },
			call: func(ctx context.Context, c *gateway.Client) error {
				_, err := c.Sandboxes.Create(ctx, "never", &openshellv1.SandboxSpec{}, nil)
				return err
			},
			method: "CreateSandbox", code: codes.Unavailable, wantError: true,
		},
		{
			name:   "unary deadline exceeded",
			inject: func() { sim.InjectLatency("ListProviders", time.Second) },
			call: func(ctx context.Context, c *gateway.Client) error {
				ctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
				defer cancel()
				_, err := c.Providers.List(ctx, 0, 0)
				return err
			},
			method: "ListProviders", code: codes.DeadlineExceeded, wantError: true,
		},
		{
			name: "unary cancelled by the caller is not an error",
			call: func(ctx context.Context, c *gateway.Client) error {
				ctx, cancel := context.WithCancel(ctx)
				cancel()
				_, err := c.Health(ctx)
				return err
			},
			method: "Health", code: codes.Canceled,
		},
		{
			name: "server stream read to its end",
			call: func(ctx context.Context, c *gateway.Client) error {
				w, err := c.Sandboxes.Watch(ctx, readyID, gateway.WatchOptions{StopOnTerminal: true})
				if err != nil {
					return err
				}
				defer w.Close()
				for {
					if _, err := w.Recv(); err != nil {
						if errors.Is(err, io.EOF) {
							return nil
						}
						return err
					}
				}
			},
			method: "WatchSandbox", code: codes.OK,
		},
		{
			name:   "server stream failing",
			inject: func() { sim.InjectError("WatchSandbox", codes.PermissionDenied, "no", 1) },
			call: func(ctx context.Context, c *gateway.Client) error {
				w, err := c.Sandboxes.Watch(ctx, readyID, gateway.WatchOptions{})
				if err != nil {
					return err
				}
				defer w.Close()
				_, err = w.Recv()
				return err
			},
			method: "WatchSandbox", code: codes.PermissionDenied, wantError: true,
		},
		{
			name: "server stream closed by the caller",
			call: func(ctx context.Context, c *gateway.Client) error {
				w, err := c.Sandboxes.Watch(ctx, readyID, gateway.WatchOptions{})
				if err != nil {
					return err
				}
				_, err = w.Recv() // the snapshot
				w.Close()
				return err
			},
			method: "WatchSandbox", code: codes.Canceled, async: true,
		},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sim.ClearFaults()
			t.Cleanup(sim.ClearFaults)
			if tc.inject != nil {
				tc.inject()
			}
			gw := fmt.Sprintf("gw-%d", i)
			c := newClient(gateway.WithDialOptions(DialOptions(gw)...))
			err := tc.call(bg, c)
			if got := gateway.Code(err); got != tc.code && (!tc.async || err != nil) {
				t.Fatalf("call returned %v (%v), want %v", got, err, tc.code)
			}
			code := tc.code.String()
			if tc.async {
				eventually(t, "the stream to be recorded", func() bool { return rpcCount(t, gw, tc.method, code) == 1 })
			}
			if n := rpcCount(t, gw, tc.method, code); n != 1 {
				t.Fatalf("duration{gateway=%s,method=%s,code=%s} count = %d, want 1", gw, tc.method, code, n)
			}
			wantErrors := 0.0
			if tc.wantError {
				wantErrors = 1
			}
			if n := rpcErrorCount(gw, tc.method, code); n != wantErrors {
				t.Fatalf("errors{gateway=%s,method=%s,code=%s} = %v, want %v", gw, tc.method, code, n, wantErrors)
			}
			// Exactly one observation for this client in all: no double counting, no stray series.
			if n := testutil.CollectAndCount(rpcDuration); n == 0 {
				t.Fatal("no duration series at all")
			}
			var total uint64
			for _, cd := range []codes.Code{codes.OK, codes.Canceled, codes.NotFound, codes.Unavailable, codes.DeadlineExceeded, codes.PermissionDenied} {
				total += rpcCount(t, gw, tc.method, cd.String())
			}
			if total != 1 {
				t.Fatalf("%d observations for %s, want 1", total, tc.method)
			}
		})
	}
}

func TestMethodLabel(t *testing.T) {
	for full, want := range map[string]string{
		"/openshell.v1.OpenShell/CreateSandbox":                 "CreateSandbox",
		"/openshell.v1.OpenShell/WatchSandbox":                  "WatchSandbox",
		"/openshell.inference.v1.Inference/GetClusterInference": "GetClusterInference",
		"/openshell.v1.OpenShell/NoSuchMethod":                  OtherMethod,
		"/grpc.health.v1.Health/Check":                          OtherMethod,
		"":                                                      OtherMethod,
	} {
		if got := MethodLabel(full); got != want {
			t.Errorf("MethodLabel(%q) = %q, want %q", full, got, want)
		}
	}
}

func TestConnectionUpAndForget(t *testing.T) {
	SetConnectionUp("conn-a", true)
	SetConnectionUp("conn-b", false)
	rpcErrors.WithLabelValues("conn-a", "Health", "Unavailable").Inc()
	if v := testutil.ToFloat64(connectionUp.WithLabelValues("conn-a")); v != 1 {
		t.Fatalf("conn-a up = %v, want 1", v)
	}
	if v := testutil.ToFloat64(connectionUp.WithLabelValues("conn-b")); v != 0 {
		t.Fatalf("conn-b up = %v, want 0", v)
	}
	SetConnectionUp("conn-a", false)
	if v := testutil.ToFloat64(connectionUp.WithLabelValues("conn-a")); v != 0 {
		t.Fatalf("conn-a up after failure = %v, want 0", v)
	}
	ForgetConnection("conn-a")
	if connectionUp.DeleteLabelValues("conn-a") {
		t.Fatal("ForgetConnection left the connection_up series")
	}
	if rpcErrors.DeleteLabelValues("conn-a", "Health", "Unavailable") {
		t.Fatal("ForgetConnection left an rpc_errors series")
	}
	if !connectionUp.DeleteLabelValues("conn-b") {
		t.Fatal("ForgetConnection removed another connection's series")
	}
}

func TestRecordReconcile(t *testing.T) {
	before := testutil.ToFloat64(reconcileOutcomes.WithLabelValues("Provider", "stalled", "GatewayRejected"))
	RecordReconcile("Provider", OutcomeStalled, "GatewayRejected")
	RecordReconcile("Provider", OutcomeStalled, "GatewayRejected")
	if got := testutil.ToFloat64(reconcileOutcomes.WithLabelValues("Provider", "stalled", "GatewayRejected")); got != before+2 {
		t.Fatalf("outcomes = %v, want %v", got, before+2)
	}
}

// TestLint runs Prometheus' metric linter (naming, units, help) over every metric here.
func TestLint(t *testing.T) {
	RecordReconcile("Sandbox", OutcomeReady, "Ready")
	SetConnectionUp("lint", true)
	rpcDuration.WithLabelValues("lint", "Health", "OK").Observe(0.01)
	rpcErrors.WithLabelValues("lint", "Health", "Unavailable").Inc()
	for _, c := range []prometheus.Collector{rpcDuration, rpcErrors, connectionUp, reconcileOutcomes} {
		problems, err := testutil.CollectAndLint(c)
		if err != nil {
			t.Fatalf("lint: %v", err)
		}
		for _, p := range problems {
			t.Errorf("%s: %s", p.Metric, p.Text)
		}
	}
}
