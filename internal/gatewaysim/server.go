// Package gatewaysim is an in-memory OpenShell gateway for tests, the demo and e2e. It serves
// the OpenShell and Inference gRPC services over mTLS and reproduces the real gateway's
// semantics (reference: gateway-semantics.md at contract commit e98ea3ee9): validation, error
// codes, resource versions, asynchronous phases, policy revisions, redaction, inference rules.
// Fault injection and call counters let tests break it on purpose and count what callers do.
package gatewaysim

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	inferencev1 "github.com/openshell-operator/openshell-operator/gen/openshell/inference/v1"
	openshellv1 "github.com/openshell-operator/openshell-operator/gen/openshell/v1"
)

// Version is what Health reports.
const Version = "gatewaysim-0.1.0"

// DefaultImage is filled into sandboxes created without an image, like the real driver does.
const DefaultImage = "ghcr.io/nvidia/openshell-community/sandboxes/base:latest"

// Options configures the simulated driver and supervisor.
type Options struct {
	// ProvisioningDelay is how long a new sandbox stays PROVISIONING before it turns READY.
	ProvisioningDelay time.Duration
	// DeletionDelay is how long a deleted sandbox stays DELETING before it disappears.
	DeletionDelay time.Duration
	// PolicyPollInterval is the simulated supervisor's poll: every interval the newest PENDING
	// policy revision of each READY sandbox is reported LOADED (or FAILED when injected).
	// Zero means one second.
	PolicyPollInterval time.Duration
	// BearerToken, when set, is required as "authorization: Bearer <token>" on every RPC but Health.
	BearerToken string
	// DefaultImage replaces DefaultImage when set.
	DefaultImage string
	// InferenceProbe says which endpoints SetClusterInference's verification connects to;
	// the default, ProbeLoopback, never leaves the machine.
	InferenceProbe InferenceProbe
}

// Simulator is an in-memory OpenShell gateway.
type Simulator struct {
	openshellv1.UnimplementedOpenShellServer
	inferencev1.UnimplementedInferenceServer

	opts Options

	mu       sync.Mutex
	state    *state
	faults   map[string]*fault
	latency  map[string]time.Duration
	counts   map[string]int
	byTarget map[string]map[string]int
	badSSH   bool
	srv      *grpc.Server
	stopTick chan struct{}
	stopOnce sync.Once
}

type fault struct {
	code  codes.Code
	msg   string
	times int
}

// New returns a simulator with empty state. Call Start to serve it.
func New(opts Options) *Simulator {
	if opts.PolicyPollInterval <= 0 {
		opts.PolicyPollInterval = time.Second
	}
	if opts.DefaultImage == "" {
		opts.DefaultImage = DefaultImage
	}
	return &Simulator{
		opts:     opts,
		state:    newState(),
		faults:   map[string]*fault{},
		latency:  map[string]time.Duration{},
		counts:   map[string]int{},
		byTarget: map[string]map[string]int{},
		stopTick: make(chan struct{}),
	}
}

// Start serves the simulator on addr (e.g. "127.0.0.1:0") with TLS from certs; a client
// certificate signed by certs.CACert is required at the handshake, like the real gateway with
// a client CA and no OIDC. It returns the bound host:port and does not block.
func (s *Simulator) Start(addr string, certs *CertBundle) (string, error) {
	tlsCfg, err := serverTLS(certs)
	if err != nil {
		return "", err
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("listen on %s: %w", addr, err)
	}
	s.srv = grpc.NewServer(
		grpc.Creds(credentials.NewTLS(tlsCfg)),
		grpc.ChainUnaryInterceptor(s.unaryInterceptor),
		grpc.ChainStreamInterceptor(s.streamInterceptor),
	)
	openshellv1.RegisterOpenShellServer(s.srv, s)
	inferencev1.RegisterInferenceServer(s.srv, s)
	go func() { _ = s.srv.Serve(lis) }()
	go s.supervisorLoop()
	return lis.Addr().String(), nil
}

// Stop closes all connections and stops the simulated supervisor.
func (s *Simulator) Stop() {
	s.stopOnce.Do(func() {
		close(s.stopTick)
		if s.srv != nil {
			s.srv.Stop()
		}
		s.mu.Lock()
		s.state.stopTimers()
		s.mu.Unlock()
	})
}

func serverTLS(certs *CertBundle) (*tls.Config, error) {
	if certs == nil {
		return nil, fmt.Errorf("certificates are required: the simulator never serves plaintext")
	}
	pair, err := tls.X509KeyPair(certs.ServerCert, certs.ServerKey)
	if err != nil {
		return nil, fmt.Errorf("server key pair: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(certs.CACert) {
		return nil, fmt.Errorf("client CA: no certificate found in PEM")
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{pair},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		NextProtos:   []string{"h2"},
	}, nil
}

// mutating names the RPCs that change gateway state; tests use them to detect hot loops.
var mutating = map[string]bool{
	"CreateSandbox": true, "DeleteSandbox": true, "AttachSandboxProvider": true, "DetachSandboxProvider": true,
	"CreateProvider": true, "UpdateProvider": true, "DeleteProvider": true, "UpdateConfig": true,
	"SetClusterInference": true, "ApproveDraftChunk": true, "RejectDraftChunk": true,
	"ApproveAllDraftChunks": true, "EditDraftChunk": true, "UndoDraftChunk": true, "ClearDraftChunks": true,
	"CreateSshSession": true, "RevokeSshSession": true, "ExecSandbox": true,
	"ImportProviderProfiles": true, "DeleteProviderProfile": true,
}

// sandboxOnly names the supervisor methods only a sandbox principal (a gateway-minted
// sandbox JWT) may call. Every caller of the simulator is a user principal (its mTLS client
// certificate or bearer token), so the gateway's authentication refuses them (semantics
// §2.7, §5, §7.2).
var sandboxOnly = map[string]bool{
	"SubmitPolicyAnalysis": true, "ReportPolicyStatus": true, "GetSandboxProviderEnvironment": true,
	"PushSandboxLogs": true, "ConnectSupervisor": true, "RelayStream": true,
	"IssueSandboxToken": true, "RefreshSandboxToken": true, "GetInferenceBundle": true,
}

func shortMethod(full string) string {
	return full[strings.LastIndex(full, "/")+1:]
}

// admit counts the call, applies injected latency and errors, and checks the bearer token.
func (s *Simulator) admit(ctx context.Context, fullMethod string) error {
	m := shortMethod(fullMethod)
	s.mu.Lock()
	s.counts[m]++
	delay := s.latency[m] + s.latency["*"]
	var injected error
	for _, key := range []string{m, "*"} {
		if f := s.faults[key]; f != nil && f.times != 0 {
			if f.times > 0 {
				f.times--
			}
			injected = status.Error(f.code, f.msg)
			break
		}
	}
	s.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		}
	}
	if injected != nil {
		return injected
	}
	if s.opts.BearerToken != "" && m != "Health" {
		md, _ := metadata.FromIncomingContext(ctx)
		vals := md.Get("authorization")
		if len(vals) == 0 {
			return status.Error(codes.Unauthenticated, "missing authorization header")
		}
		if vals[0] != "Bearer "+s.opts.BearerToken {
			return status.Error(codes.Unauthenticated, "invalid bearer token")
		}
	}
	if sandboxOnly[m] {
		return status.Error(codes.PermissionDenied, "this method requires a sandbox principal")
	}
	return nil
}

func (s *Simulator) unaryInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	s.countTargets(shortMethod(info.FullMethod), req)
	if err := s.admit(ctx, info.FullMethod); err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

func (s *Simulator) streamInterceptor(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if err := s.admit(ss.Context(), info.FullMethod); err != nil {
		return err
	}
	return handler(srv, ss)
}

// InjectError makes the next `times` calls of method (short name such as "CreateSandbox", or
// "*" for every method) fail with code and msg; times < 0 means until ClearFaults.
func (s *Simulator) InjectError(method string, code codes.Code, msg string, times int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[method] = &fault{code: code, msg: msg, times: times}
}

// InjectLatency delays every call of method ("*" for all) by d before it is handled.
func (s *Simulator) InjectLatency(method string, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency[method] = d
}

// InjectBadSSHResponse makes CreateSshSession answer with a response that breaks the proto's
// charset contract, so clients can prove they refuse it.
func (s *Simulator) InjectBadSSHResponse(bad bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.badSSH = bad
}

// ClearFaults removes every injected error, latency and bad response.
func (s *Simulator) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = map[string]*fault{}
	s.latency = map[string]time.Duration{}
	s.badSSH = false
}

// CallCount is how many times method (short name) was called since the last ResetCounts.
func (s *Simulator) CallCount(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[method]
}

// Calls returns a copy of all call counters.
func (s *Simulator) Calls() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.counts))
	for k, v := range s.counts {
		out[k] = v
	}
	return out
}

// MutatingCallCount is the number of state-changing calls since the last ResetCounts.
func (s *Simulator) MutatingCallCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for m, c := range s.counts {
		if mutating[m] {
			n += c
		}
	}
	return n
}

// ResetCounts zeroes the call counters.
func (s *Simulator) ResetCounts() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counts = map[string]int{}
	s.byTarget = map[string]map[string]int{}
}

// Restart drops all state, like a gateway restarted on an empty database.
func (s *Simulator) Restart() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.state.stopTimers()
	s.state = newState()
}

// SetProvisioningDelay changes the delay for sandboxes created from now on.
func (s *Simulator) SetProvisioningDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opts.ProvisioningDelay = d
}

// Health reports the simulator as healthy.
func (s *Simulator) Health(context.Context, *openshellv1.HealthRequest) (*openshellv1.HealthResponse, error) {
	return &openshellv1.HealthResponse{Status: openshellv1.ServiceStatus_SERVICE_STATUS_HEALTHY, Version: Version}, nil
}
