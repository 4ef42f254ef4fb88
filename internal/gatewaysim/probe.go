package gatewaysim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// InferenceProbe says which endpoints SetClusterInference's verification connects to.
type InferenceProbe int

const (
	// ProbeLoopback (the default) probes endpoints whose host is a loopback address or
	// "localhost", and takes every other endpoint as verified without connecting: tests and
	// the demo run a fake endpoint on 127.0.0.1 (FakeInferenceHandler) and never reach out
	// of the machine. The dialer refuses non-loopback addresses too, so a redirect cannot
	// lead out either.
	ProbeLoopback InferenceProbe = iota
	// ProbeAll probes every endpoint, like the real gateway (for experiments only).
	ProbeAll
	// ProbeNone never connects and takes every endpoint as verified.
	ProbeNone
)

// ParseInferenceProbe parses "loopback", "all" or "none".
func ParseInferenceProbe(s string) (InferenceProbe, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "loopback":
		return ProbeLoopback, nil
	case "all":
		return ProbeAll, nil
	case "none":
		return ProbeNone, nil
	}
	return 0, fmt.Errorf("unknown inference probe mode %q (loopback, all, none)", s)
}

// probeTimeout is the real gateway's verification timeout.
const probeTimeout = 30 * time.Second

func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// loopbackOnlyDial refuses to connect anywhere but a loopback address.
func loopbackOnlyDial(ctx context.Context, network, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if !isLoopbackHost(host) {
		return nil, fmt.Errorf("refusing to dial %s: the simulator only probes loopback endpoints", addr)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	if ra, ok := conn.RemoteAddr().(*net.TCPAddr); ok && !ra.IP.IsLoopback() {
		_ = conn.Close()
		return nil, fmt.Errorf("refusing %s: it resolved to a non-loopback address", addr)
	}
	return conn, nil
}

// verifyInference is the gateway's live probe: a one-token request to the endpoint that
// must answer 2xx within 30 s.
func (s *Simulator) verifyInference(ctx context.Context, r *resolvedRoute, model string) error {
	u, err := url.Parse(r.endpoint.GetUrl())
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return fmt.Errorf("invalid endpoint URL %q", r.endpoint.GetUrl())
	}
	transport := &http.Transport{Proxy: nil}
	switch s.opts.InferenceProbe {
	case ProbeNone:
		return nil
	case ProbeLoopback:
		if !isLoopbackHost(u.Hostname()) {
			return nil
		}
		transport.DialContext = loopbackOnlyDial
	}
	defer transport.CloseIdleConnections()
	body := map[string]any{"model": model, "max_tokens": 1, "messages": []map[string]string{{"role": "user", "content": "ping"}}}
	b, _ := json.Marshal(body)
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if r.typ == "anthropic" {
		req.Header.Set("x-api-key", r.key)
		req.Header.Set("anthropic-version", "2023-06-01")
	} else {
		req.Header.Set("Authorization", "Bearer "+r.key)
	}
	resp, err := (&http.Client{Transport: transport}).Do(req)
	if err != nil {
		return fmt.Errorf("request failed: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("endpoint answered %s", resp.Status)
	}
	return nil
}

// FakeInferenceHandler is a minimal inference endpoint for tests and the demo, to be served
// on loopback: POST .../chat/completions (OpenAI and NVIDIA, "Authorization: Bearer KEY")
// and POST .../messages (Anthropic, "x-api-key: KEY") answer 200 to a request with a key and
// a model, 401 without a key and 400 without a model; GET .../models lists one model.
func FakeInferenceHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		write := func(code int, v any) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(code)
			_ = json.NewEncoder(w).Encode(v)
		}
		switch {
		case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/models"):
			write(http.StatusOK, map[string]any{"object": "list", "data": []map[string]string{{"id": "fake-model", "object": "model"}}})
			return
		case r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/chat/completions") && !strings.HasSuffix(r.URL.Path, "/messages"):
			write(http.StatusNotFound, map[string]string{"error": "not found"})
			return
		}
		key := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		if strings.HasSuffix(r.URL.Path, "/messages") {
			key = r.Header.Get("x-api-key")
		}
		if strings.TrimSpace(key) == "" {
			write(http.StatusUnauthorized, map[string]string{"error": "missing API key"})
			return
		}
		var req struct {
			Model string `json:"model"`
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil || req.Model == "" {
			write(http.StatusBadRequest, map[string]string{"error": "model is required"})
			return
		}
		if strings.HasSuffix(r.URL.Path, "/messages") {
			write(http.StatusOK, map[string]any{"type": "message", "role": "assistant", "model": req.Model, "content": []map[string]string{{"type": "text", "text": "pong"}}})
			return
		}
		write(http.StatusOK, map[string]any{"object": "chat.completion", "model": req.Model, "choices": []map[string]any{{"index": 0, "message": map[string]string{"role": "assistant", "content": "pong"}}}})
	})
}
