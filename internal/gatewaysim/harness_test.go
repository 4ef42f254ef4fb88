package gatewaysim

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	datamodelv1 "github.com/openshell-operator/openshell-operator/gen/openshell/datamodel/v1"
	inferencev1 "github.com/openshell-operator/openshell-operator/gen/openshell/inference/v1"
	openshellv1 "github.com/openshell-operator/openshell-operator/gen/openshell/v1"
)

// harness is a simulator served over real mTLS with raw gRPC stubs and its admin API.
type harness struct {
	sim   *Simulator
	rpc   openshellv1.OpenShellClient
	infer inferencev1.InferenceClient
	admin *httptest.Server
}

func start(t *testing.T, opts Options) *harness {
	t.Helper()
	certs, err := GenerateCertBundle()
	if err != nil {
		t.Fatalf("certs: %v", err)
	}
	sim := New(opts)
	addr, err := sim.Start("127.0.0.1:0", certs)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(sim.Stop)
	pair, err := tls.X509KeyPair(certs.ClientCert, certs.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certs.CACert)
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
		MinVersion: tls.VersionTLS12, RootCAs: pool, Certificates: []tls.Certificate{pair}, ServerName: "localhost",
	})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	admin := httptest.NewServer(sim.AdminHandler())
	t.Cleanup(admin.Close)
	return &harness{sim: sim, rpc: openshellv1.NewOpenShellClient(conn), infer: inferencev1.NewInferenceClient(conn), admin: admin}
}

func tctx(t *testing.T) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

// post sends a JSON body to the admin API and returns the status code and body.
func (h *harness) post(t *testing.T, path, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(h.admin.URL+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("POST %s: read body: %v", path, err)
	}
	return resp.StatusCode, string(b)
}

func (h *harness) sandbox(t *testing.T, name string, spec *openshellv1.SandboxSpec) *openshellv1.Sandbox {
	t.Helper()
	if spec == nil {
		spec = &openshellv1.SandboxSpec{}
	}
	resp, err := h.rpc.CreateSandbox(tctx(t), &openshellv1.CreateSandboxRequest{Name: name, Spec: spec})
	if err != nil {
		t.Fatalf("create sandbox %s: %v", name, err)
	}
	return resp.GetSandbox()
}

func (h *harness) provider(t *testing.T, name, typ string, creds, config map[string]string) {
	t.Helper()
	_, err := h.rpc.CreateProvider(tctx(t), &openshellv1.CreateProviderRequest{Provider: &datamodelv1.Provider{
		Metadata: &datamodelv1.ObjectMeta{Name: name}, Type: typ, Credentials: creds, Config: config,
	}})
	if err != nil {
		t.Fatalf("create provider %s: %v", name, err)
	}
}

// wantCode fails unless err has code.
func wantCode(t *testing.T, err error, code codes.Code) {
	t.Helper()
	if got := status.Code(err); got != code {
		t.Fatalf("want %v, got %v (%v)", code, got, err)
	}
}

// eventually polls cond every 10ms for up to 10s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}
