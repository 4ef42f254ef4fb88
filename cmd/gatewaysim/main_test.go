package main_test

import (
	"bufio"
	"context"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	datamodelv1 "github.com/openshell-operator/openshell-operator/gen/openshell/datamodel/v1"
	inferencev1 "github.com/openshell-operator/openshell-operator/gen/openshell/inference/v1"
	"github.com/openshell-operator/openshell-operator/internal/gateway"
)

// TestBinaryServesMTLSAndAdmin builds the simulator, runs it as a real process with fresh
// certificates, talks to it over mTLS, injects a fault through the admin API and stops it.
func TestBinaryServesMTLSAndAdmin(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "gatewaysim")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	certDir := filepath.Join(dir, "certs")
	cmd := exec.Command(bin, "--listen", "127.0.0.1:0", "--generate-certs", certDir, "--provisioning-delay", "100ms", "--fake-inference-listen", "127.0.0.1:0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()

	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("read banner: %v", err)
	}
	m := regexp.MustCompile(`^gatewaysim listening grpc=(\S+) admin=(\S+) inference=(http://127\.0\.0\.1:\d+)\n$`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("unexpected banner %q", line)
	}
	grpcAddr, adminAddr, inferenceURL := m[1], m[2], m[3]

	c, err := gateway.FromFiles(grpcAddr, filepath.Join(certDir, "ca.crt"), filepath.Join(certDir, "tls.crt"), filepath.Join(certDir, "tls.key"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := c.Health(ctx); err != nil {
		t.Fatalf("health over mTLS: %v", err)
	}

	post := func(path, body string) int {
		resp, err := http.Post("http://"+adminAddr+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	if code := post("/faults/error", `{"method":"ListSandboxes","code":"UNAVAILABLE","message":"maintenance","times":1}`); code != http.StatusNoContent {
		t.Fatalf("inject error: HTTP %d", code)
	}
	_, err = c.Sandboxes.List(ctx, gateway.ListOptions{})
	if gateway.Code(err) != codes.Unavailable || gateway.Message(err) != "maintenance" {
		t.Fatalf("injected fault not observed: %v", err)
	}
	if _, err := c.Sandboxes.List(ctx, gateway.ListOptions{}); err != nil {
		t.Fatalf("fault should have been used up: %v", err)
	}
	if _, err := c.Sandboxes.Create(ctx, "bin", nil, nil); err != nil {
		t.Fatal(err)
	}
	if code := post("/sandboxes/bin/phase", `{"phase":"error"}`); code != http.StatusNoContent {
		t.Fatalf("force phase: HTTP %d", code)
	}
	sb, err := c.Sandboxes.Get(ctx, "bin")
	if err != nil || sb.GetStatus().GetPhase().String() != "SANDBOX_PHASE_ERROR" {
		t.Fatalf("forced phase not observed: %v %v", sb.GetStatus().GetPhase(), err)
	}
	if code := post("/faults/error", `{"code":"NoSuchCode"}`); code != http.StatusBadRequest {
		t.Fatalf("bad code should be a 400, got %d", code)
	}
	if code := post("/sandboxes/bin/draft-chunks", `{"ruleName":"pypi","rule":{"endpoints":[{"host":"pypi.org","port":443}]}}`); code != http.StatusCreated {
		t.Fatalf("draft chunk: HTTP %d", code)
	}
	if chunks, err := c.Approvals.GetPending(ctx, "bin"); err != nil || len(chunks) != 1 {
		t.Fatalf("injected draft chunk not listed: %v %v", chunks, err)
	}

	// The fake inference endpoint on loopback verifies a route.
	if _, err := c.Providers.Create(ctx, &datamodelv1.Provider{Metadata: &datamodelv1.ObjectMeta{Name: "oai"}, Type: "openai",
		Credentials: map[string]string{"OPENAI_API_KEY": "sk"}, Config: map[string]string{"OPENAI_BASE_URL": inferenceURL + "/v1"}}); err != nil {
		t.Fatal(err)
	}
	set, err := c.Inference.Set(ctx, &inferencev1.SetClusterInferenceRequest{ProviderName: "oai", ModelId: "m"})
	if err != nil || !set.GetValidationPerformed() || set.GetValidatedEndpoints()[0].GetUrl() != inferenceURL+"/v1/chat/completions" {
		t.Fatalf("verify against the fake endpoint: %v %v", set, err)
	}

	resp, err := http.Get("http://" + adminAddr + "/calls")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("calls: %v", err)
	}
	_ = resp.Body.Close()

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("simulator should exit cleanly on SIGTERM: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("simulator did not stop on SIGTERM")
	}
}
