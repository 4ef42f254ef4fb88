package gatewaysim

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	openshellv1 "github.com/openshell-operator/openshell-operator/gen/openshell/v1"
)

func (s *Simulator) readySandboxByID(id string) (*sandboxRec, error) {
	if id == "" {
		return nil, status.Error(codes.InvalidArgument, "sandbox_id is required")
	}
	r := s.state.sandboxByID(id)
	if r == nil {
		return nil, status.Error(codes.NotFound, "sandbox not found")
	}
	if r.sb.Status.Phase != openshellv1.SandboxPhase_SANDBOX_PHASE_READY {
		return nil, status.Errorf(codes.FailedPrecondition, "sandbox '%s' is not ready", r.sb.Metadata.Name)
	}
	return r, nil
}

// ExecSandbox simulates a command in a READY sandbox: `echo ARGS...` writes ARGS to stdout,
// `false` exits 1, `fail MESSAGE...` writes MESSAGE to stderr and exits 2, `true` and anything
// else exit 0 with no output.
func (s *Simulator) ExecSandbox(req *openshellv1.ExecSandboxRequest, stream openshellv1.OpenShell_ExecSandboxServer) error {
	s.mu.Lock()
	_, err := s.readySandboxByID(req.GetSandboxId())
	s.mu.Unlock()
	if err != nil {
		return err
	}
	if len(req.GetCommand()) == 0 {
		return status.Error(codes.InvalidArgument, "command is required")
	}
	send := func(ev *openshellv1.ExecSandboxEvent) error { return stream.Send(ev) }
	args := req.GetCommand()[1:]
	var exit int32
	switch req.GetCommand()[0] {
	case "echo":
		if err := send(&openshellv1.ExecSandboxEvent{Payload: &openshellv1.ExecSandboxEvent_Stdout{Stdout: &openshellv1.ExecSandboxStdout{Data: []byte(strings.Join(args, " ") + "\n")}}}); err != nil {
			return err
		}
	case "false":
		exit = 1
	case "fail":
		if err := send(&openshellv1.ExecSandboxEvent{Payload: &openshellv1.ExecSandboxEvent_Stderr{Stderr: &openshellv1.ExecSandboxStderr{Data: []byte(strings.Join(args, " ") + "\n")}}}); err != nil {
			return err
		}
		exit = 2
	}
	return send(&openshellv1.ExecSandboxEvent{Payload: &openshellv1.ExecSandboxEvent_Exit{Exit: &openshellv1.ExecSandboxExit{ExitCode: exit}}})
}

// CreateSshSession issues a session token for a READY sandbox. With InjectBadSSHResponse the
// response breaks the proto's charset contract on purpose.
func (s *Simulator) CreateSshSession(_ context.Context, req *openshellv1.CreateSshSessionRequest) (*openshellv1.CreateSshSessionResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.readySandboxByID(req.GetSandboxId())
	if err != nil {
		return nil, err
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	token := base64.RawURLEncoding.EncodeToString(b)
	s.state.sessions[token] = r.sb.Metadata.Id
	resp := &openshellv1.CreateSshSessionResponse{
		SandboxId: r.sb.Metadata.Id, Token: token, GatewayHost: "127.0.0.1", GatewayPort: 2222,
		GatewayScheme: "https", HostKeyFingerprint: "SHA256:c2ltdWxhdGVkLWhvc3Qta2V5", ExpiresAtMs: time.Now().Add(time.Hour).UnixMilli(),
	}
	if s.badSSH {
		resp.GatewayHost = "evil.example; rm -rf /"
		resp.Token = "token with spaces`"
	}
	return resp, nil
}

// RevokeSshSession revokes a session token; unknown tokens give revoked=false.
func (s *Simulator) RevokeSshSession(_ context.Context, req *openshellv1.RevokeSshSessionRequest) (*openshellv1.RevokeSshSessionResponse, error) {
	if req.GetToken() == "" {
		return nil, status.Error(codes.InvalidArgument, "token is required")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.state.sessions[req.GetToken()]
	delete(s.state.sessions, req.GetToken())
	return &openshellv1.RevokeSshSessionResponse{Revoked: ok}, nil
}
