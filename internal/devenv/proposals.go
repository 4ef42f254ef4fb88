package devenv

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"time"
)

// BuildPlugin compiles the kubectl plugin (cmd/kubectl-openshell) into dir and returns its
// path; kubectl finds it as `kubectl openshell` when dir is on PATH.
func BuildPlugin(ctx context.Context, root, dir string, log io.Writer) (string, error) {
	out := filepath.Join(dir, "kubectl-openshell")
	return out, build(ctx, root, out, "./cmd/kubectl-openshell", log)
}

// ProposeDraftChunk submits a draft chunk for a gateway sandbox through the simulator's admin
// API, as the sandbox's policy advisor would, and returns the chunk id. rule is the
// NetworkPolicyRule in protobuf JSON.
func (e *Env) ProposeDraftChunk(ctx context.Context, gatewaySandbox, ruleName, rule, securityNotes string) (string, error) {
	body, err := json.Marshal(map[string]any{"ruleName": ruleName, "rule": json.RawMessage(rule), "securityNotes": securityNotes})
	if err != nil {
		return "", fmt.Errorf("encode draft chunk: %w", err)
	}
	u := "http://" + e.AdminAddr + "/sandboxes/" + url.PathEscape(gatewaySandbox) + "/draft-chunks"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("propose draft chunk: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("propose draft chunk: %s: %s", resp.Status, bytes.TrimSpace(b))
	}
	var out struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(b, &out); err != nil || out.ID == "" {
		return "", fmt.Errorf("propose draft chunk: unexpected answer %q", b)
	}
	return out.ID, nil
}

// KubectlPath is the kubectl binary the environment runs.
func (e *Env) KubectlPath() string { return e.opts.Kubectl }

// demoRule is the rule the demo's policy advisor proposes for demo/agent.
const demoRule = `{"name":"allow_api_github_com","endpoints":[{"host":"api.github.com","port":443}],"binaries":[{"path":"/usr/bin/curl"}]}`

// ProposeDemoChunk has the policy advisor of the sample sandbox demo/agent propose one rule
// and waits until its PolicyProposal is listed (the observation loop picks it up within its
// resync), returning `kubectl get policyproposals -n demo`.
func (e *Env) ProposeDemoChunk(ctx context.Context) (string, error) {
	name, err := e.Kubectl(ctx, "get", "-n", "demo", "sandbox/agent", "-o", "jsonpath={.status.gatewayName}")
	if err != nil {
		return "", err
	}
	if _, err := e.ProposeDraftChunk(ctx, strings.TrimSpace(name), "allow_api_github_com", demoRule, ""); err != nil {
		return "", err
	}
	for {
		out, err := e.Kubectl(ctx, "get", "policyproposals", "-n", "demo")
		if err == nil && strings.Contains(out, "api.github.com:443") {
			return out, nil
		}
		select {
		case <-ctx.Done():
			return out, fmt.Errorf("no PolicyProposal for the demo chunk: %w", ctx.Err())
		case <-time.After(time.Second):
		}
	}
}
