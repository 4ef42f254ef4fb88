package gateway_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/openshell-operator/openshell-operator/internal/gateway"
	"github.com/openshell-operator/openshell-operator/internal/gatewaysim"
)

// quick calls Health with a short deadline; TLS refusals surface as Unavailable.
func quick(c *gateway.Client) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, err := c.Health(ctx)
	return err
}

func TestTLSRefusals(t *testing.T) {
	e := startEnv(t, gatewaysim.Options{})
	other, err := gatewaysim.GenerateCertBundle()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name      string
		ca        []byte
		cert, key []byte
		opts      []gateway.Option
		ok        bool
	}{
		{"matching client certificate", e.certs.CACert, e.certs.ClientCert, e.certs.ClientKey, nil, true},
		{"no client certificate", e.certs.CACert, nil, nil, nil, false},
		{"client certificate from another CA", e.certs.CACert, other.ClientCert, other.ClientKey, nil, false},
		{"server certificate from an unpinned CA", other.CACert, e.certs.ClientCert, e.certs.ClientKey, nil, false},
		{"server name not in the certificate", e.certs.CACert, e.certs.ClientCert, e.certs.ClientKey, []gateway.Option{gateway.WithServerName("gateway.example.com")}, false},
		{"server name override matching a SAN", e.certs.CACert, e.certs.ClientCert, e.certs.ClientKey, []gateway.Option{gateway.WithServerName("localhost")}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := gateway.FromCredentials(e.addr, tc.ca, tc.cert, tc.key, tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = c.Close() }()
			err = quick(c)
			if tc.ok && err != nil {
				t.Fatalf("expected success: %v", err)
			}
			if !tc.ok && gateway.Code(err) != codes.Unavailable {
				t.Fatalf("expected the handshake to be refused (Unavailable), got %v", err)
			}
		})
	}
}

func TestConstructorErrorsNeverLeakKeys(t *testing.T) {
	certs, err := gatewaysim.GenerateCertBundle()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		endpoint string
		ca       []byte
		cert     []byte
		key      []byte
		opts     []gateway.Option
		want     string
	}{
		{"empty endpoint", "", certs.CACert, nil, nil, nil, "endpoint is empty"},
		{"plaintext refused", "http://127.0.0.1:1", certs.CACert, nil, nil, nil, "refusing without WithInsecurePlaintext"},
		{"bad scheme", "ftp://h:1", certs.CACert, nil, nil, nil, "unsupported scheme"},
		{"path in endpoint", "https://h:1/x", certs.CACert, nil, nil, nil, "expected host:port"},
		{"no CA", "h:1", nil, nil, nil, nil, "CA certificate"},
		{"cert without key", "h:1", certs.CACert, certs.ClientCert, nil, nil, "given together"},
		{"mismatched key", "h:1", certs.CACert, certs.ClientCert, certs.ServerKey, nil, "pair is invalid"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := gateway.FromCredentials(tc.endpoint, tc.ca, tc.cert, tc.key, tc.opts...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want error containing %q, got %v", tc.want, err)
			}
			if strings.Contains(err.Error(), "PRIVATE KEY") || strings.Contains(err.Error(), string(certs.ServerKey[40:80])) {
				t.Fatal("error leaks key material")
			}
		})
	}
	if _, err := gateway.FromCredentials("http://127.0.0.1:1", nil, nil, nil, gateway.WithInsecurePlaintext()); err != nil {
		t.Fatalf("explicit plaintext is allowed: %v", err)
	}
}

func TestRotateCertificate(t *testing.T) {
	certs, err := gatewaysim.GenerateCertBundle()
	if err != nil {
		t.Fatal(err)
	}
	other, err := gatewaysim.GenerateCertBundle()
	if err != nil {
		t.Fatal(err)
	}
	sim := gatewaysim.New(gatewaysim.Options{})
	addr, err := sim.Start("127.0.0.1:0", certs)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { sim.Stop() }()

	// Start with a certificate from another CA: refused.
	c, err := gateway.FromCredentials(addr, certs.CACert, other.ClientCert, other.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	if err := quick(c); gateway.Code(err) != codes.Unavailable {
		t.Fatalf("foreign certificate should be refused: %v", err)
	}
	// Rotate to a fresh certificate from the right CA: the next handshake uses it, no re-dial.
	cert2, key2, err := certs.IssueClient("rotated-client", time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.RotateCertificate(cert2, key2); err != nil {
		t.Fatal(err)
	}
	if c.Certificate().Subject.CommonName != "rotated-client" {
		t.Fatal("Certificate() should report the rotated leaf")
	}
	eventually(t, "rotated certificate accepted", func() bool { return quick(c) == nil })

	// A bad pair is refused and the current certificate kept.
	if err := c.RotateCertificate(cert2, other.ClientKey); err == nil {
		t.Fatal("mismatched pair must be refused")
	}
	if c.Certificate().Subject.CommonName != "rotated-client" {
		t.Fatal("a refused rotation keeps the previous certificate")
	}

	// Rotating back to the foreign certificate takes effect at the next handshake: restart the
	// gateway on the same address to force one.
	if err := c.RotateCertificate(other.ClientCert, other.ClientKey); err != nil {
		t.Fatal(err)
	}
	sim.Stop()
	sim = gatewaysim.New(gatewaysim.Options{})
	if _, err := sim.Start(addr, certs); err != nil {
		t.Fatal(err)
	}
	eventually(t, "foreign certificate refused after reconnect", func() bool { return gateway.Code(quick(c)) == codes.Unavailable })
}

func TestExpiredClientCertificateRefused(t *testing.T) {
	e := startEnv(t, gatewaysim.Options{})
	cert, key, err := e.certs.IssueClient("expired", time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	c, err := gateway.FromCredentials(e.addr, e.certs.CACert, cert, key)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	if err := quick(c); gateway.Code(err) != codes.Unavailable {
		t.Fatalf("expired certificate should be refused: %v", err)
	}
}

func TestBearerToken(t *testing.T) {
	e := startEnv(t, gatewaysim.Options{BearerToken: "t0ken"})
	c := ctx(t)
	must(e.client.Health(c)) // Health is unauthenticated.
	_, err := e.client.Sandboxes.List(c, gateway.ListOptions{})
	wantCode(t, err, codes.Unauthenticated)
	if !gateway.IsUnauthenticated(err) || strings.Contains(err.Error(), "t0ken") {
		t.Fatalf("typed, and never echoing the token: %v", err)
	}
	e.client.SetBearerToken("wrong")
	_, err = e.client.Sandboxes.List(c, gateway.ListOptions{})
	wantCode(t, err, codes.Unauthenticated)
	e.client.SetBearerToken("t0ken")
	must(e.client.Sandboxes.List(c, gateway.ListOptions{}))

	withOpt, err := gateway.FromCredentials(e.addr, e.certs.CACert, e.certs.ClientCert, e.certs.ClientKey, gateway.WithBearerToken("t0ken"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = withOpt.Close() }()
	must(withOpt.Sandboxes.List(c, gateway.ListOptions{}))
}

func TestFromFilesAndActiveCluster(t *testing.T) {
	e := startEnv(t, gatewaysim.Options{})
	dir := t.TempDir()
	if err := e.certs.WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	fc, err := gateway.FromFiles(e.addr, filepath.Join(dir, "ca.crt"), filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = fc.Close() }()
	must(fc.Health(ctx(t)))
	if _, err := gateway.FromFiles(e.addr, filepath.Join(dir, "missing.crt"), "", ""); err == nil {
		t.Fatal("missing CA file must fail")
	}

	// The OpenShell CLI layout; the name needs sanitizing for the mtls directory.
	xdg := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", xdg)
	t.Setenv("OPENSHELL_GATEWAY", "")
	name := "lab gw"
	base := filepath.Join(xdg, "openshell")
	mustWrite := func(path string, data []byte) {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	md, _ := json.Marshal(map[string]any{"name": name, "gateway_endpoint": "https://" + e.addr, "is_remote": false})
	mustWrite(filepath.Join(base, "active_gateway"), []byte(name+"\n"))
	mustWrite(filepath.Join(base, "gateways", name, "metadata.json"), md)
	mustWrite(filepath.Join(base, "gateways", "lab_gw", "mtls", "ca.crt"), e.certs.CACert)
	mustWrite(filepath.Join(base, "gateways", "lab_gw", "mtls", "tls.crt"), e.certs.ClientCert)
	mustWrite(filepath.Join(base, "gateways", "lab_gw", "mtls", "tls.key"), e.certs.ClientKey)
	ac, err := gateway.FromActiveCluster()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ac.Close() }()
	must(ac.Health(ctx(t)))
	if ac.Endpoint() != "https://"+e.addr {
		t.Fatalf("endpoint from metadata: %s", ac.Endpoint())
	}
	t.Setenv("OPENSHELL_GATEWAY", "other")
	if _, err := gateway.FromActiveCluster(); err == nil || !strings.Contains(err.Error(), `gateway "other"`) {
		t.Fatalf("OPENSHELL_GATEWAY overrides active_gateway: %v", err)
	}
}
