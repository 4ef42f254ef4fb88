package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"time"

	datamodelv1 "github.com/openshell-operator/openshell-operator/gen/openshell/datamodel/v1"
	openshellv1 "github.com/openshell-operator/openshell-operator/gen/openshell/v1"
)

// SandboxesAPI manages sandboxes.
type SandboxesAPI struct{ c *Client }

// ListOptions selects one page of a list.
type ListOptions struct {
	// LabelSelector is "k=v,k2=v2" (equality only).
	LabelSelector string
	// Limit is the page size; 0 means the gateway default (100), at most 1000.
	Limit uint32
	// Offset skips that many items.
	Offset uint32
}

// Create creates a sandbox; name "" lets the gateway pick one.
func (a *SandboxesAPI) Create(ctx context.Context, name string, spec *openshellv1.SandboxSpec, labels map[string]string) (*openshellv1.Sandbox, error) {
	if spec == nil {
		spec = &openshellv1.SandboxSpec{}
	}
	resp, err := a.c.rpc.CreateSandbox(ctx, &openshellv1.CreateSandboxRequest{Name: name, Spec: spec, Labels: labels})
	if err != nil {
		return nil, wrap(err, "create sandbox %q", name)
	}
	return resp.GetSandbox(), nil
}

// Get returns a sandbox by name.
func (a *SandboxesAPI) Get(ctx context.Context, name string) (*openshellv1.Sandbox, error) {
	resp, err := a.c.rpc.GetSandbox(ctx, &openshellv1.GetSandboxRequest{Name: name})
	if err != nil {
		return nil, wrap(err, "get sandbox %q", name)
	}
	return resp.GetSandbox(), nil
}

// List returns one page of sandboxes, oldest first.
func (a *SandboxesAPI) List(ctx context.Context, opts ListOptions) ([]*openshellv1.Sandbox, error) {
	resp, err := a.c.rpc.ListSandboxes(ctx, &openshellv1.ListSandboxesRequest{Limit: opts.Limit, Offset: opts.Offset, LabelSelector: opts.LabelSelector})
	if err != nil {
		return nil, wrap(err, "list sandboxes")
	}
	return resp.GetSandboxes(), nil
}

// ListAll pages through every sandbox matching labelSelector, pageSize at a time (0: 100).
func (a *SandboxesAPI) ListAll(ctx context.Context, labelSelector string, pageSize uint32) ([]*openshellv1.Sandbox, error) {
	return a.ListFrom(ctx, labelSelector, pageSize, 0)
}

// ListFrom pages through the sandboxes matching labelSelector from position offset of the
// gateway's order (creation time, then name) to the end, pageSize at a time (0: 100).
func (a *SandboxesAPI) ListFrom(ctx context.Context, labelSelector string, pageSize, offset uint32) ([]*openshellv1.Sandbox, error) {
	if pageSize == 0 {
		pageSize = 100
	}
	var all []*openshellv1.Sandbox
	for ; ; offset += pageSize {
		page, err := a.List(ctx, ListOptions{LabelSelector: labelSelector, Limit: pageSize, Offset: offset})
		if err != nil {
			return nil, err
		}
		all = append(all, page...)
		if uint32(len(page)) < pageSize {
			return all, nil
		}
	}
}

// Delete starts deleting a sandbox. The gateway deletes asynchronously: the sandbox stays
// visible as DELETING until the backend removed it (see WaitDeleted).
func (a *SandboxesAPI) Delete(ctx context.Context, name string) (bool, error) {
	resp, err := a.c.rpc.DeleteSandbox(ctx, &openshellv1.DeleteSandboxRequest{Name: name})
	if err != nil {
		return false, wrap(err, "delete sandbox %q", name)
	}
	return resp.GetDeleted(), nil
}

// ErrSandboxFailed is returned by WaitReady when the sandbox reached the ERROR phase.
var ErrSandboxFailed = errors.New("sandbox entered the ERROR phase")

// WaitReady blocks until the sandbox is READY, following WatchSandbox (and polling Get if the
// stream breaks). ERROR returns ErrSandboxFailed with the gateway's condition message.
func (a *SandboxesAPI) WaitReady(ctx context.Context, name string) (*openshellv1.Sandbox, error) {
	for {
		sb, err := a.Get(ctx, name)
		if err != nil {
			return nil, err
		}
		if done, err := readyOrFailed(sb); done {
			return sb, err
		}
		w, err := a.Watch(ctx, sb.GetMetadata().GetId(), WatchOptions{})
		if err == nil {
			for {
				ev, err := w.Recv()
				if err != nil {
					break
				}
				if s := ev.GetSandbox(); s != nil {
					if done, err := readyOrFailed(s); done {
						w.Close()
						return s, err
					}
				}
			}
			w.Close()
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for sandbox %q to be ready: %w", name, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func readyOrFailed(sb *openshellv1.Sandbox) (bool, error) {
	switch sb.GetStatus().GetPhase() {
	case openshellv1.SandboxPhase_SANDBOX_PHASE_READY:
		return true, nil
	case openshellv1.SandboxPhase_SANDBOX_PHASE_ERROR:
		msg := ""
		for _, c := range sb.GetStatus().GetConditions() {
			if c.GetType() == "Ready" {
				msg = c.GetMessage()
			}
		}
		return true, fmt.Errorf("sandbox %q: %w: %s", sb.GetMetadata().GetName(), ErrSandboxFailed, msg)
	}
	return false, nil
}

// WaitDeleted polls until the gateway no longer knows the sandbox.
func (a *SandboxesAPI) WaitDeleted(ctx context.Context, name string) error {
	for {
		_, err := a.Get(ctx, name)
		if IsNotFound(err) {
			return nil
		}
		if err != nil && !IsRetryable(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for sandbox %q to be deleted: %w", name, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// AttachProvider attaches a provider; expectedRV 0 skips the concurrency check. It reports
// whether the provider was newly attached.
func (a *SandboxesAPI) AttachProvider(ctx context.Context, sandbox, provider string, expectedRV uint64) (*openshellv1.Sandbox, bool, error) {
	resp, err := a.c.rpc.AttachSandboxProvider(ctx, &openshellv1.AttachSandboxProviderRequest{SandboxName: sandbox, ProviderName: provider, ExpectedResourceVersion: expectedRV})
	if err != nil {
		return nil, false, wrap(err, "attach provider %q to sandbox %q", provider, sandbox)
	}
	return resp.GetSandbox(), resp.GetAttached(), nil
}

// DetachProvider detaches a provider; it reports whether anything was removed.
func (a *SandboxesAPI) DetachProvider(ctx context.Context, sandbox, provider string, expectedRV uint64) (*openshellv1.Sandbox, bool, error) {
	resp, err := a.c.rpc.DetachSandboxProvider(ctx, &openshellv1.DetachSandboxProviderRequest{SandboxName: sandbox, ProviderName: provider, ExpectedResourceVersion: expectedRV})
	if err != nil {
		return nil, false, wrap(err, "detach provider %q from sandbox %q", provider, sandbox)
	}
	return resp.GetSandbox(), resp.GetDetached(), nil
}

// ListProviders returns the providers attached to a sandbox (credentials REDACTED).
func (a *SandboxesAPI) ListProviders(ctx context.Context, sandbox string) ([]*datamodelv1.Provider, error) {
	resp, err := a.c.rpc.ListSandboxProviders(ctx, &openshellv1.ListSandboxProvidersRequest{SandboxName: sandbox})
	if err != nil {
		return nil, wrap(err, "list providers of sandbox %q", sandbox)
	}
	return resp.GetProviders(), nil
}

// WatchOptions selects what a watch follows; the sandbox snapshot is always sent first.
type WatchOptions struct {
	FollowStatus   bool
	FollowLogs     bool
	FollowEvents   bool
	StopOnTerminal bool
	LogTailLines   uint32
	EventTail      uint32
	// LogSince keeps streamed and replayed log lines at or after this time; zero: all.
	LogSince time.Time
}

// SandboxWatch is an open WatchSandbox stream.
type SandboxWatch struct {
	stream openshellv1.OpenShell_WatchSandboxClient
	cancel context.CancelFunc
}

// Recv returns the next event: a sandbox snapshot, log line, platform event, warning or
// draft-policy update. io.EOF means the gateway closed the stream.
func (w *SandboxWatch) Recv() (*openshellv1.SandboxStreamEvent, error) {
	ev, err := w.stream.Recv()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, io.EOF
		}
		return nil, wrap(err, "watch sandbox")
	}
	return ev, nil
}

// Close ends the watch.
func (w *SandboxWatch) Close() { w.cancel() }

// Watch opens a WatchSandbox stream for a sandbox id (not its name).
func (a *SandboxesAPI) Watch(ctx context.Context, sandboxID string, opts WatchOptions) (*SandboxWatch, error) {
	ctx, cancel := context.WithCancel(ctx)
	stream, err := a.c.rpc.WatchSandbox(ctx, &openshellv1.WatchSandboxRequest{
		Id: sandboxID, FollowStatus: opts.FollowStatus || !opts.FollowLogs && !opts.FollowEvents, FollowLogs: opts.FollowLogs,
		FollowEvents: opts.FollowEvents, StopOnTerminal: opts.StopOnTerminal, LogTailLines: opts.LogTailLines, EventTail: opts.EventTail,
		LogSinceMs: unixMilliOrZero(opts.LogSince),
	})
	if err != nil {
		cancel()
		return nil, wrap(err, "watch sandbox %q", sandboxID)
	}
	return &SandboxWatch{stream: stream, cancel: cancel}, nil
}

func unixMilliOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// ExecOptions describes a command to run in a sandbox.
type ExecOptions struct {
	SandboxID      string
	Command        []string
	Workdir        string
	Environment    map[string]string
	TimeoutSeconds uint32
	Stdin          []byte
}

// ExecResult collects a finished command's output.
type ExecResult struct {
	Stdout   []byte
	Stderr   []byte
	ExitCode int32
}

// Exec runs a command in a READY sandbox and collects its output and exit code.
func (a *SandboxesAPI) Exec(ctx context.Context, opts ExecOptions) (*ExecResult, error) {
	stream, err := a.c.rpc.ExecSandbox(ctx, &openshellv1.ExecSandboxRequest{
		SandboxId: opts.SandboxID, Command: opts.Command, Workdir: opts.Workdir, Environment: opts.Environment,
		TimeoutSeconds: opts.TimeoutSeconds, Stdin: opts.Stdin,
	})
	if err != nil {
		return nil, wrap(err, "exec in sandbox %q", opts.SandboxID)
	}
	res := &ExecResult{}
	for {
		ev, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("exec in sandbox %q: stream ended without an exit code", opts.SandboxID)
		}
		if err != nil {
			return nil, wrap(err, "exec in sandbox %q", opts.SandboxID)
		}
		switch p := ev.GetPayload().(type) {
		case *openshellv1.ExecSandboxEvent_Stdout:
			res.Stdout = append(res.Stdout, p.Stdout.GetData()...)
		case *openshellv1.ExecSandboxEvent_Stderr:
			res.Stderr = append(res.Stderr, p.Stderr.GetData()...)
		case *openshellv1.ExecSandboxEvent_Exit:
			res.ExitCode = p.Exit.GetExitCode()
			return res, nil
		}
	}
}

// ErrInvalidSSHSession is returned when a CreateSshSession response breaks the charset
// contract of the proto; such a response is never handed to a caller (it may end up in an
// ssh command line).
var ErrInvalidSSHSession = errors.New("gateway returned an SSH session that breaks the proto contract")

var (
	sshSandboxIDRE   = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)
	sshTokenRE       = regexp.MustCompile(`^[A-Za-z0-9._~+/=-]+$`)
	sshHostRE        = regexp.MustCompile(`^[A-Za-z0-9.\-:\[\]]+$`)
	sshFingerprintRE = regexp.MustCompile(`^[A-Za-z0-9:+/=-]*$`)
)

// ValidateSSHSession checks a CreateSshSession response against the proto's contract.
func ValidateSSHSession(r *openshellv1.CreateSshSessionResponse) error {
	bad := func(field string) error { return fmt.Errorf("%w: field %s", ErrInvalidSSHSession, field) }
	switch {
	case !sshSandboxIDRE.MatchString(r.GetSandboxId()):
		return bad("sandbox_id")
	case len(r.GetToken()) > 4096 || !sshTokenRE.MatchString(r.GetToken()):
		return bad("token")
	case len(r.GetGatewayHost()) > 253 || !sshHostRE.MatchString(r.GetGatewayHost()):
		return bad("gateway_host")
	case r.GetGatewayPort() < 1 || r.GetGatewayPort() > 65535:
		return bad("gateway_port")
	case r.GetGatewayScheme() != "http" && r.GetGatewayScheme() != "https":
		return bad("gateway_scheme")
	case !sshFingerprintRE.MatchString(r.GetHostKeyFingerprint()):
		return bad("host_key_fingerprint")
	}
	return nil
}

// CreateSSHSession opens an SSH session to a sandbox (by id) and validates the response.
func (a *SandboxesAPI) CreateSSHSession(ctx context.Context, sandboxID string) (*openshellv1.CreateSshSessionResponse, error) {
	resp, err := a.c.rpc.CreateSshSession(ctx, &openshellv1.CreateSshSessionRequest{SandboxId: sandboxID})
	if err != nil {
		return nil, wrap(err, "create ssh session for sandbox %q", sandboxID)
	}
	if err := ValidateSSHSession(resp); err != nil {
		return nil, err
	}
	return resp, nil
}

// RevokeSSHSession revokes a session token; it reports whether a session was revoked.
func (a *SandboxesAPI) RevokeSSHSession(ctx context.Context, token string) (bool, error) {
	resp, err := a.c.rpc.RevokeSshSession(ctx, &openshellv1.RevokeSshSessionRequest{Token: token})
	if err != nil {
		return false, wrap(err, "revoke ssh session")
	}
	return resp.GetRevoked(), nil
}

// LogOptions filters GetSandboxLogs.
type LogOptions struct {
	// Lines is the maximum number of (newest) lines; 0 means the gateway default (2000).
	Lines uint32
	// Since keeps lines at or after this time; zero means no time filter.
	Since time.Time
	// Sources keeps lines from these sources ("gateway", "sandbox"); empty means all.
	Sources []string
	// MinLevel keeps lines at this level or above ("INFO", "WARN", "ERROR"); empty means all.
	MinLevel string
}

// Logs returns the recent log lines of a sandbox (by id) that pass opts, oldest first.
func (a *SandboxesAPI) Logs(ctx context.Context, sandboxID string, opts LogOptions) ([]*openshellv1.SandboxLogLine, error) {
	req := &openshellv1.GetSandboxLogsRequest{SandboxId: sandboxID, Lines: opts.Lines, Sources: opts.Sources, MinLevel: opts.MinLevel}
	req.SinceMs = unixMilliOrZero(opts.Since)
	resp, err := a.c.rpc.GetSandboxLogs(ctx, req)
	if err != nil {
		return nil, wrap(err, "get logs of sandbox %q", sandboxID)
	}
	return resp.GetLogs(), nil
}
