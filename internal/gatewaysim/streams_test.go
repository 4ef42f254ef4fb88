package gatewaysim_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	openshellv1 "github.com/openshell-operator/openshell-operator/gen/openshell/v1"
	"github.com/openshell-operator/openshell-operator/internal/gateway"
	"github.com/openshell-operator/openshell-operator/internal/gatewaysim"
)

// TestCutStreamsEndsWatchesAndKeepsState cuts a live WatchSandbox stream through the admin API:
// the stream ends with UNAVAILABLE, the sandbox (same id) is still there and can be watched again.
func TestCutStreamsEndsWatchesAndKeepsState(t *testing.T) {
	certs, err := gatewaysim.GenerateCertBundle()
	if err != nil {
		t.Fatal(err)
	}
	sim := gatewaysim.New(gatewaysim.Options{ProvisioningDelay: time.Hour})
	addr, err := sim.Start("127.0.0.1:0", certs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Stop)
	c, err := gateway.FromCredentials(addr, certs.CACert, certs.ClientCert, certs.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sb, err := c.Sandboxes.Create(ctx, "cut", &openshellv1.SandboxSpec{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	id := sb.GetMetadata().GetId()
	w, err := c.Sandboxes.Watch(ctx, id, gateway.WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Recv(); err != nil { // the initial snapshot: the stream is registered
		t.Fatalf("first event: %v", err)
	}

	admin := httptest.NewServer(sim.AdminHandler())
	defer admin.Close()
	resp, err := http.Post(admin.URL+"/streams/cut", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]int
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if got["cut"] != 1 {
		t.Fatalf("cut = %v, want 1 stream", got)
	}
	_, err = w.Recv()
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("Recv after the cut: %v, want UNAVAILABLE", err)
	}
	again, err := c.Sandboxes.Get(ctx, "cut")
	if err != nil {
		t.Fatal(err)
	}
	if again.GetMetadata().GetId() != id {
		t.Fatalf("id after the cut = %s, want %s (state kept)", again.GetMetadata().GetId(), id)
	}
	w2, err := c.Sandboxes.Watch(ctx, id, gateway.WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Close()
	if _, err := w2.Recv(); err != nil {
		t.Fatalf("watch after the cut: %v", err)
	}
	if n := sim.CutStreams(); n != 1 {
		t.Fatalf("second cut = %d, want 1 (the new stream)", n)
	}
}
