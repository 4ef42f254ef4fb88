// Package gateway is the Go client of the OpenShell gateway: gRPC over mutual TLS with a
// pinned CA, optional bearer token, per-call default timeout and client-certificate rotation
// without re-dialing. It knows nothing of Kubernetes.
package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	inferencev1 "github.com/openshell-operator/openshell-operator/gen/openshell/inference/v1"
	sandboxv1 "github.com/openshell-operator/openshell-operator/gen/openshell/sandbox/v1"
	openshellv1 "github.com/openshell-operator/openshell-operator/gen/openshell/v1"
)

// Defaults applied when no option overrides them.
const (
	DefaultTimeout = 30 * time.Second
	// Keepalive pings detect a dead gateway on an idle connection within about 40 s without
	// tripping the server's default ping policy (minimum 5 min unless configured, hence
	// PermitWithoutStream=false: pings are only sent while an RPC or watch is open).
	DefaultKeepaliveTime    = 30 * time.Second
	DefaultKeepaliveTimeout = 10 * time.Second
)

type options struct {
	serverName string
	token      string
	timeout    time.Duration
	keepalive  keepalive.ClientParameters
	dialOpts   []grpc.DialOption
	plaintext  bool
}

// Option configures a Client.
type Option func(*options)

// WithServerName sets the name the server certificate must carry (SNI and verification),
// for gateways reached through an address that is not among their certificate's names.
func WithServerName(name string) Option { return func(o *options) { o.serverName = name } }

// WithBearerToken sends "authorization: Bearer <token>" on every call (OIDC deployments).
func WithBearerToken(token string) Option { return func(o *options) { o.token = token } }

// WithTimeout sets the default deadline of unary calls whose context has none.
func WithTimeout(d time.Duration) Option { return func(o *options) { o.timeout = d } }

// WithKeepalive overrides the keepalive parameters.
func WithKeepalive(p keepalive.ClientParameters) Option { return func(o *options) { o.keepalive = p } }

// WithDialOptions appends raw gRPC dial options (interceptors, stats handlers...).
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(o *options) { o.dialOpts = append(o.dialOpts, opts...) }
}

// WithInsecurePlaintext allows an http:// endpoint (h2c, no TLS). Plaintext is never chosen
// silently: without this option an http:// endpoint is an error.
func WithInsecurePlaintext() Option { return func(o *options) { o.plaintext = true } }

// Client talks to one OpenShell gateway. It is safe for concurrent use.
type Client struct {
	endpoint string
	conn     *grpc.ClientConn
	opts     options

	mu    sync.RWMutex
	cert  *tls.Certificate
	token string

	// Sandboxes manages sandboxes, their providers, exec, SSH sessions, logs and watches.
	Sandboxes *SandboxesAPI
	// Providers manages credential providers.
	Providers *ProvidersAPI
	// Profiles manages provider type profiles.
	Profiles *ProfilesAPI
	// Policies manages sandbox and global policies and settings.
	Policies *PoliciesAPI
	// Approvals manages draft policy chunks proposed by the in-sandbox advisor.
	Approvals *ApprovalsAPI
	// Inference manages cluster inference routes.
	Inference *InferenceAPI

	rpc   openshellv1.OpenShellClient
	infer inferencev1.InferenceClient
}

// FromCredentials builds a client from PEM bytes, as found in a Kubernetes TLS Secret
// (ca.crt, tls.crt, tls.key). certPEM and keyPEM may both be empty for server-only TLS.
func FromCredentials(endpoint string, caPEM, certPEM, keyPEM []byte, opts ...Option) (*Client, error) {
	o := options{timeout: DefaultTimeout, keepalive: keepalive.ClientParameters{Time: DefaultKeepaliveTime, Timeout: DefaultKeepaliveTimeout}}
	for _, opt := range opts {
		opt(&o)
	}
	target, scheme, err := parseEndpoint(endpoint)
	if err != nil {
		return nil, err
	}
	c := &Client{endpoint: endpoint, opts: o, token: o.token}
	var creds credentials.TransportCredentials
	if scheme == "http" {
		if !o.plaintext {
			return nil, fmt.Errorf("endpoint %q is plaintext http: refusing without WithInsecurePlaintext", endpoint)
		}
		creds = insecure.NewCredentials()
	} else {
		tlsCfg, err := c.tlsConfig(caPEM, certPEM, keyPEM)
		if err != nil {
			return nil, err
		}
		creds = credentials.NewTLS(tlsCfg)
	}
	dial := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithKeepaliveParams(o.keepalive),
		grpc.WithChainUnaryInterceptor(c.unaryInterceptor),
		grpc.WithChainStreamInterceptor(c.streamInterceptor),
	}
	conn, err := grpc.NewClient(target, append(dial, o.dialOpts...)...)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", endpoint, err)
	}
	c.conn = conn
	c.rpc = openshellv1.NewOpenShellClient(conn)
	c.infer = inferencev1.NewInferenceClient(conn)
	c.Sandboxes = &SandboxesAPI{c: c}
	c.Providers = &ProvidersAPI{c: c}
	c.Profiles = &ProfilesAPI{c: c}
	c.Policies = &PoliciesAPI{c: c}
	c.Approvals = &ApprovalsAPI{c: c}
	c.Inference = &InferenceAPI{c: c}
	return c, nil
}

func parseEndpoint(endpoint string) (target, scheme string, err error) {
	e := strings.TrimSpace(endpoint)
	if e == "" {
		return "", "", errors.New("gateway endpoint is empty")
	}
	scheme = "https"
	if s, rest, ok := strings.Cut(e, "://"); ok {
		scheme, e = strings.ToLower(s), rest
	}
	if scheme != "https" && scheme != "http" {
		return "", "", fmt.Errorf("endpoint %q: unsupported scheme %q (use https)", endpoint, scheme)
	}
	e = strings.TrimSuffix(e, "/")
	if e == "" || strings.Contains(e, "/") {
		return "", "", fmt.Errorf("endpoint %q: expected host:port", endpoint)
	}
	if !strings.Contains(e, ":") || strings.HasSuffix(e, "]") {
		e += ":443"
	}
	return "dns:///" + e, scheme, nil
}

func (c *Client) tlsConfig(caPEM, certPEM, keyPEM []byte) (*tls.Config, error) {
	pool := x509.NewCertPool()
	if len(caPEM) == 0 || !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("CA certificate: no PEM certificate found")
	}
	if (len(certPEM) == 0) != (len(keyPEM) == 0) {
		return nil, errors.New("client certificate and key must be given together")
	}
	if len(certPEM) > 0 {
		pair, err := parseKeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, err
		}
		c.cert = pair
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		RootCAs:    pool,
		ServerName: c.opts.serverName,
		// Read on every handshake, so RotateCertificate takes effect on the next connection.
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			c.mu.RLock()
			defer c.mu.RUnlock()
			if c.cert == nil {
				return &tls.Certificate{}, nil
			}
			return c.cert, nil
		},
	}, nil
}

// parseKeyPair validates a certificate/key pair; errors never quote the key material.
func parseKeyPair(certPEM, keyPEM []byte) (*tls.Certificate, error) {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("client certificate/key pair is invalid: %s", sanitizeTLSError(err))
	}
	if pair.Leaf == nil && len(pair.Certificate) > 0 {
		leaf, err := x509.ParseCertificate(pair.Certificate[0])
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		pair.Leaf = leaf
	}
	return &pair, nil
}

// sanitizeTLSError keeps crypto/tls's description but never any PEM content.
func sanitizeTLSError(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, "-----"); i >= 0 {
		msg = msg[:i]
	}
	return strings.TrimSpace(msg)
}

// RotateCertificate swaps the client certificate used by later TLS handshakes; open
// connections keep theirs. The pair is validated first and the old one kept on error.
func (c *Client) RotateCertificate(certPEM, keyPEM []byte) error {
	pair, err := parseKeyPair(certPEM, keyPEM)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cert = pair
	return nil
}

// Certificate returns the leaf of the current client certificate, or nil.
func (c *Client) Certificate() *x509.Certificate {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.cert == nil {
		return nil
	}
	return c.cert.Leaf
}

// SetBearerToken changes the bearer token sent on later calls ("" sends none).
func (c *Client) SetBearerToken(token string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.token = token
}

// Endpoint is the endpoint the client was built for.
func (c *Client) Endpoint() string { return c.endpoint }

// Close releases the connection.
func (c *Client) Close() error { return c.conn.Close() }

func (c *Client) withAuth(ctx context.Context) context.Context {
	c.mu.RLock()
	token := c.token
	c.mu.RUnlock()
	if token == "" {
		return ctx
	}
	return metadataAppend(ctx, "authorization", "Bearer "+token)
}

func (c *Client) unaryInterceptor(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	if _, ok := ctx.Deadline(); !ok && c.opts.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.opts.timeout)
		defer cancel()
	}
	err := invoker(c.withAuth(ctx), method, req, reply, cc, opts...)
	if cutByDeadline(ctx, err) {
		return status.Error(codes.DeadlineExceeded, "context deadline exceeded")
	}
	return err
}

// cutByDeadline reports a call ended by its deadline but not reported as DeadlineExceeded.
// The server enforces the deadline too and may reset the stream a moment before the
// client's timer fires ("RST_STREAM ... CANCEL", code Canceled, while ctx is not done yet),
// which would read as a terminal failure; what happened is the deadline, which is retried.
// A caller's own cancellation stays Canceled.
func cutByDeadline(ctx context.Context, err error) bool {
	if _, ok := ctx.Deadline(); err == nil || !ok || errors.Is(ctx.Err(), context.Canceled) {
		return false
	}
	code := status.Code(err)
	return code == codes.Canceled || (code != codes.DeadlineExceeded && errors.Is(ctx.Err(), context.DeadlineExceeded))
}

// streamInterceptor adds auth only: streams (watch, exec) live as long as their context.
func (c *Client) streamInterceptor(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	return streamer(c.withAuth(ctx), desc, cc, method, opts...)
}

// Health calls the unauthenticated health endpoint.
func (c *Client) Health(ctx context.Context) (*openshellv1.HealthResponse, error) {
	resp, err := c.rpc.Health(ctx, &openshellv1.HealthRequest{})
	if err != nil {
		return nil, wrap(err, "health")
	}
	return resp, nil
}

// GatewayConfig returns the gateway-wide settings and their revision.
func (c *Client) GatewayConfig(ctx context.Context) (*sandboxv1.GetGatewayConfigResponse, error) {
	resp, err := c.rpc.GetGatewayConfig(ctx, &sandboxv1.GetGatewayConfigRequest{})
	if err != nil {
		return nil, wrap(err, "get gateway config")
	}
	return resp, nil
}
