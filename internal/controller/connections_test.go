package controller

import (
	"errors"
	"testing"
	"time"

	"github.com/openshell-operator/openshell-operator/internal/gatewaysim"
)

func TestConnectionsRotateInPlaceAndRedialOnEndpointChange(t *testing.T) {
	certs, err := gatewaysim.GenerateCertBundle()
	if err != nil {
		t.Fatal(err)
	}
	cert2, key2, err := certs.IssueClient("rotated", time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	conns := NewConnections()
	if _, err := conns.Get("default"); !errors.Is(err, ErrConnectionNotReady) {
		t.Fatalf("unknown connection: want ErrConnectionNotReady, got %v", err)
	}
	cfg := connectionConfig{Endpoint: "127.0.0.1:1", Timeout: time.Second, CA: certs.CACert, Cert: certs.ClientCert, Key: certs.ClientKey}
	first, err := conns.ensureClient("default", cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conns.Get("default"); !errors.Is(err, ErrConnectionNotReady) {
		t.Fatal("a connection is not ready before its first successful probe")
	}
	conns.setReady("default", true, "")
	if got, err := conns.Get("default"); err != nil || got.client != first {
		t.Fatalf("ready connection: %v", err)
	}

	// New client certificate and token: same client, rotated in place.
	cfg.Cert, cfg.Key, cfg.Token = cert2, key2, "t"
	rotated, err := conns.ensureClient("default", cfg)
	if err != nil || rotated != first {
		t.Fatalf("rotation must not re-dial: same=%v err=%v", rotated == first, err)
	}
	if cn := rotated.Certificate().Subject.CommonName; cn != "rotated" {
		t.Fatalf("client certificate not rotated: %s", cn)
	}
	// A broken pair is refused and the old certificate kept.
	cfg.Key = certs.ServerKey
	if _, err := conns.ensure("default", cfg); err == nil {
		t.Fatal("a mismatched pair must be refused")
	}
	cfg.Key = key2

	// A new endpoint needs a new client.
	cfg.Endpoint = "127.0.0.1:2"
	redialed, err := conns.ensureClient("default", cfg)
	if err != nil || redialed == first {
		t.Fatalf("endpoint change must re-dial: same=%v err=%v", redialed == first, err)
	}
	conns.markNotReady("default", "probe failed")
	if _, err := conns.Get("default"); !errors.Is(err, ErrConnectionNotReady) {
		t.Fatal("markNotReady must make Get fail")
	}
	conns.remove("default")
	if _, err := conns.Get("default"); !errors.Is(err, ErrConnectionNotReady) {
		t.Fatal("removed connection")
	}
}
