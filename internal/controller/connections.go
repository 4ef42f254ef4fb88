package controller

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/openshell-operator/openshell-operator/internal/gateway"
)

// ErrConnectionNotReady is returned by Connections.Get while a GatewayConnection is missing,
// not yet probed, or failing; dependents report DependencyNotReady and wait.
var ErrConnectionNotReady = errors.New("gateway connection is not ready")

// Connections caches one gateway client per GatewayConnection. The GatewayConnection
// controller fills it; the other controllers read from it.
type Connections struct {
	mu      sync.RWMutex
	entries map[string]*connection
	// dial builds a client; tests may replace it.
	dial func(endpoint string, ca, cert, key []byte, opts ...gateway.Option) (*gateway.Client, error)
}

type connection struct {
	client   *gateway.Client
	dialKey  string // endpoint, CA, server name and timeout: a change needs a new client
	certHash string
	token    string
	ready    bool
	reason   string
}

// NewConnections returns an empty registry.
func NewConnections() *Connections {
	return &Connections{entries: map[string]*connection{}, dial: gateway.FromCredentials}
}

// Get returns the gateway of a Ready connection.
func (c *Connections) Get(name string) (gatewayAPI, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	e := c.entries[name]
	switch {
	case e == nil:
		return gatewayAPI{}, fmt.Errorf("%w: GatewayConnection %q not found or not yet probed", ErrConnectionNotReady, name)
	case !e.ready:
		return gatewayAPI{}, fmt.Errorf("%w: GatewayConnection %q: %s", ErrConnectionNotReady, name, e.reason)
	}
	return apiOf(e.client), nil
}

// connectionConfig is everything a client is built from.
type connectionConfig struct {
	Endpoint   string
	ServerName string
	Timeout    time.Duration
	CA         []byte
	Cert       []byte
	Key        []byte
	Token      string
}

func digest(parts ...[]byte) string {
	h := sha256.New()
	for _, p := range parts {
		_, _ = fmt.Fprintf(h, "%d:", len(p))
		h.Write(p)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// ensure returns the connection's client, building it on first use or when the endpoint,
// CA, server name or timeout changed, and rotating the client certificate and token in place
// otherwise (no re-dial, open calls are not disturbed).
func (c *Connections) ensure(name string, cfg connectionConfig) (gatewayAPI, error) {
	cl, err := c.ensureClient(name, cfg)
	if err != nil {
		return gatewayAPI{}, err
	}
	return apiOf(cl), nil
}

func (c *Connections) ensureClient(name string, cfg connectionConfig) (*gateway.Client, error) {
	dialKey := digest([]byte(cfg.Endpoint), []byte(cfg.ServerName), []byte(cfg.Timeout.String()), cfg.CA)
	certHash := digest(cfg.Cert, cfg.Key)
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[name]
	if e != nil && e.dialKey == dialKey {
		if e.certHash != certHash {
			if err := e.client.RotateCertificate(cfg.Cert, cfg.Key); err != nil {
				return nil, err
			}
			e.certHash = certHash
		}
		if e.token != cfg.Token {
			e.client.SetBearerToken(cfg.Token)
			e.token = cfg.Token
		}
		return e.client, nil
	}
	opts := []gateway.Option{gateway.WithTimeout(cfg.Timeout), withRPCMetrics(name)}
	if cfg.ServerName != "" {
		opts = append(opts, gateway.WithServerName(cfg.ServerName))
	}
	if cfg.Token != "" {
		opts = append(opts, gateway.WithBearerToken(cfg.Token))
	}
	cl, err := c.dial(cfg.Endpoint, cfg.CA, cfg.Cert, cfg.Key, opts...)
	if err != nil {
		return nil, err
	}
	if e != nil {
		_ = e.client.Close()
	}
	c.entries[name] = &connection{client: cl, dialKey: dialKey, certHash: certHash, token: cfg.Token, reason: "not yet probed"}
	return cl, nil
}

// setReady records the probe outcome; reason says why when not ready.
func (c *Connections) setReady(name string, ready bool, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	setConnectionUp(name, ready)
	if e := c.entries[name]; e != nil {
		e.ready, e.reason = ready, reason
	}
}

// markNotReady makes Get fail for name without dropping its client (Secret missing, bad
// certificate...).
func (c *Connections) markNotReady(name, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	setConnectionUp(name, false)
	if e := c.entries[name]; e != nil {
		e.ready, e.reason = false, reason
	}
}

// remove closes and forgets a connection.
func (c *Connections) remove(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	forgetConnection(name)
	if e := c.entries[name]; e != nil {
		_ = e.client.Close()
		delete(c.entries, name)
	}
}
