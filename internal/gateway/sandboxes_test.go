package gateway_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	datamodelv1 "github.com/openshell-operator/openshell-operator/gen/openshell/datamodel/v1"
	sandboxv1 "github.com/openshell-operator/openshell-operator/gen/openshell/sandbox/v1"
	openshellv1 "github.com/openshell-operator/openshell-operator/gen/openshell/v1"
	"github.com/openshell-operator/openshell-operator/internal/gateway"
	"github.com/openshell-operator/openshell-operator/internal/gatewaysim"
)

func provider(name, typ string, creds map[string]string) *datamodelv1.Provider {
	return &datamodelv1.Provider{Metadata: &datamodelv1.ObjectMeta{Name: name}, Type: typ, Credentials: creds}
}

func TestHealth(t *testing.T) {
	e := startEnv(t, gatewaysim.Options{})
	h := must(e.client.Health(ctx(t)))
	if h.GetStatus() != openshellv1.ServiceStatus_SERVICE_STATUS_HEALTHY || h.GetVersion() != gatewaysim.Version {
		t.Fatalf("unexpected health %v", h)
	}
}

func TestSandboxLifecycle(t *testing.T) {
	e := startEnv(t, gatewaysim.Options{ProvisioningDelay: 200 * time.Millisecond, DeletionDelay: 300 * time.Millisecond})
	c := ctx(t)
	sb := must(e.client.Sandboxes.Create(c, "alpha", &openshellv1.SandboxSpec{}, map[string]string{"team": "a"}))
	if sb.GetStatus().GetPhase() != openshellv1.SandboxPhase_SANDBOX_PHASE_PROVISIONING || sb.GetMetadata().GetResourceVersion() != 1 {
		t.Fatalf("new sandbox should be PROVISIONING at rv 1: %v", sb)
	}
	if sb.GetSpec().GetTemplate().GetImage() != gatewaysim.DefaultImage {
		t.Fatalf("empty image should be filled with the default, got %q", sb.GetSpec().GetTemplate().GetImage())
	}
	_, err := e.client.Sandboxes.Create(c, "alpha", &openshellv1.SandboxSpec{}, nil)
	wantCode(t, err, codes.AlreadyExists)
	if !gateway.IsAlreadyExists(err) || !strings.Contains(err.Error(), `create sandbox "alpha"`) {
		t.Fatalf("error should be typed and name the operation: %v", err)
	}

	ready := must(e.client.Sandboxes.WaitReady(c, "alpha"))
	if ready.GetStatus().GetPhase() != openshellv1.SandboxPhase_SANDBOX_PHASE_READY || ready.GetMetadata().GetResourceVersion() < 2 {
		t.Fatalf("expected READY with a bumped rv: %v", ready)
	}

	deleted := must(e.client.Sandboxes.Delete(c, "alpha"))
	if !deleted {
		t.Fatal("delete should report deleted=true")
	}
	got := must(e.client.Sandboxes.Get(c, "alpha"))
	if got.GetStatus().GetPhase() != openshellv1.SandboxPhase_SANDBOX_PHASE_DELETING {
		t.Fatalf("deletion is asynchronous: expected DELETING, got %v", got.GetStatus().GetPhase())
	}
	if err := e.client.Sandboxes.WaitDeleted(c, "alpha"); err != nil {
		t.Fatal(err)
	}
	_, err = e.client.Sandboxes.Get(c, "alpha")
	wantCode(t, err, codes.NotFound)
	_, err = e.client.Sandboxes.Delete(c, "alpha")
	wantCode(t, err, codes.NotFound)
}

func TestSandboxValidation(t *testing.T) {
	e := startEnv(t, gatewaysim.Options{})
	c := ctx(t)
	bigEnv := map[string]string{}
	for i := 0; i < 129; i++ {
		bigEnv[fmt.Sprintf("K%d", i)] = "v"
	}
	cases := []struct {
		name   string
		sbName string
		spec   *openshellv1.SandboxSpec
		labels map[string]string
		code   codes.Code
		msg    string
	}{
		{"too many env entries", "a", &openshellv1.SandboxSpec{Environment: bigEnv}, nil, codes.InvalidArgument, "environment exceeds 128"},
		{"bad label key", "b", &openshellv1.SandboxSpec{}, map[string]string{"-bad": "x"}, codes.InvalidArgument, "invalid label key"},
		{"missing provider", "c", &openshellv1.SandboxSpec{Providers: []string{"nope"}}, nil, codes.FailedPrecondition, "provider 'nope' not found"},
		{"unsafe relative path", "d", &openshellv1.SandboxSpec{Policy: &sandboxv1.SandboxPolicy{Filesystem: &sandboxv1.FilesystemPolicy{ReadOnly: []string{"etc"}}}}, nil, codes.InvalidArgument, "policy contains unsafe content"},
		{"unsafe TLD wildcard", "e", &openshellv1.SandboxSpec{Policy: &sandboxv1.SandboxPolicy{NetworkPolicies: map[string]*sandboxv1.NetworkPolicyRule{"all": {Endpoints: []*sandboxv1.NetworkEndpoint{{Host: "*.com", Port: 443}}}}}}, nil, codes.InvalidArgument, "TLD-wide wildcard"},
		{"invalid DNS name reaches the driver", "Bad_Name", &openshellv1.SandboxSpec{}, nil, codes.Internal, "RFC 1123"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.client.Sandboxes.Create(c, tc.sbName, tc.spec, tc.labels)
			wantCode(t, err, tc.code)
			if !strings.Contains(gateway.Message(err), tc.msg) {
				t.Fatalf("message %q should contain %q", gateway.Message(err), tc.msg)
			}
		})
	}
	_, err := e.client.Sandboxes.Get(c, "")
	wantCode(t, err, codes.InvalidArgument)

	generated := must(e.client.Sandboxes.Create(c, "", &openshellv1.SandboxSpec{}, nil))
	if generated.GetMetadata().GetName() == "" {
		t.Fatal("an empty name should be generated")
	}
}

func TestSandboxListPaginationAndSelectors(t *testing.T) {
	e := startEnv(t, gatewaysim.Options{ProvisioningDelay: time.Hour})
	c := ctx(t)
	for i := 0; i < 7; i++ {
		team := "a"
		if i%2 == 1 {
			team = "b"
		}
		must(e.client.Sandboxes.Create(c, fmt.Sprintf("sb-%d", i), &openshellv1.SandboxSpec{}, map[string]string{"team": team}))
	}
	page := must(e.client.Sandboxes.List(c, gateway.ListOptions{Limit: 3, Offset: 3}))
	if len(page) != 3 || page[0].GetMetadata().GetName() != "sb-3" {
		t.Fatalf("unexpected page: %d items, first %q", len(page), page[0].GetMetadata().GetName())
	}
	e.sim.ResetCounts()
	all := must(e.client.Sandboxes.ListAll(c, "", 2))
	if len(all) != 7 || e.sim.CallCount("ListSandboxes") != 4 {
		t.Fatalf("ListAll: %d items in %d calls, want 7 in 4", len(all), e.sim.CallCount("ListSandboxes"))
	}
	teamB := must(e.client.Sandboxes.ListAll(c, "team=b", 100))
	if len(teamB) != 3 {
		t.Fatalf("selector team=b: got %d, want 3", len(teamB))
	}
	_, err := e.client.Sandboxes.List(c, gateway.ListOptions{LabelSelector: "team"})
	wantCode(t, err, codes.InvalidArgument)
}

func TestAttachDetachProviders(t *testing.T) {
	e := startEnv(t, gatewaysim.Options{})
	c := ctx(t)
	must(e.client.Providers.Create(c, provider("p1", "openai", map[string]string{"OPENAI_API_KEY": "k1"})))
	must(e.client.Providers.Create(c, provider("p2", "github", map[string]string{"OPENAI_API_KEY": "k2"})))
	must(e.client.Providers.Create(c, provider("p3", "github", map[string]string{"GITHUB_TOKEN": "t"})))
	must(e.client.Sandboxes.Create(c, "sb", &openshellv1.SandboxSpec{Providers: []string{"p1"}}, nil))
	// Provisioning finishes asynchronously and bumps the resource version: wait for it, so
	// the resource versions compared below move only with the calls under test.
	sb := must(e.client.Sandboxes.WaitReady(c, "sb"))
	rv := sb.GetMetadata().GetResourceVersion()

	_, _, err := e.client.Sandboxes.AttachProvider(c, "sb", "p3", rv+100)
	wantCode(t, err, codes.Aborted)
	if !gateway.IsConflict(err) || !gateway.IsRetryable(err) {
		t.Fatalf("ABORTED should be a retryable conflict: %v", err)
	}
	cur := must(e.client.Sandboxes.Get(c, "sb"))
	after, attached, err := e.client.Sandboxes.AttachProvider(c, "sb", "p3", cur.GetMetadata().GetResourceVersion())
	if err != nil || !attached || len(after.GetSpec().GetProviders()) != 2 || after.GetMetadata().GetId() != sb.GetMetadata().GetId() {
		t.Fatalf("attach in place: attached=%v err=%v %v", attached, err, after)
	}
	again, attached, err := e.client.Sandboxes.AttachProvider(c, "sb", "p3", 0)
	if err != nil || attached || again.GetMetadata().GetResourceVersion() != after.GetMetadata().GetResourceVersion()+1 {
		t.Fatalf("a no-op attach still bumps the rv and reports attached=false: %v %v", err, again)
	}
	_, _, err = e.client.Sandboxes.AttachProvider(c, "sb", "p2", 0)
	wantCode(t, err, codes.FailedPrecondition)
	_, _, err = e.client.Sandboxes.AttachProvider(c, "sb", "missing", 0)
	wantCode(t, err, codes.FailedPrecondition)
	_, _, err = e.client.Sandboxes.AttachProvider(c, "nosuch", "p3", 0)
	wantCode(t, err, codes.NotFound)
	_, _, err = e.client.Sandboxes.AttachProvider(c, "sb", "", 0)
	wantCode(t, err, codes.InvalidArgument)

	list := must(e.client.Sandboxes.ListProviders(c, "sb"))
	if len(list) != 2 || list[0].GetCredentials()["OPENAI_API_KEY"] != gatewaysim.Redacted {
		t.Fatalf("attached providers should be listed in order with REDACTED credentials: %v", list)
	}
	_, detached, err := e.client.Sandboxes.DetachProvider(c, "sb", "p1", 0)
	if err != nil || !detached {
		t.Fatalf("detach: %v %v", detached, err)
	}
	_, detached, err = e.client.Sandboxes.DetachProvider(c, "sb", "p1", 0)
	if err != nil || detached {
		t.Fatalf("second detach should report false: %v %v", detached, err)
	}
	_, _, err = e.client.Sandboxes.DetachProvider(c, "nosuch", "p1", 0)
	wantCode(t, err, codes.NotFound)
	_, err = e.client.Sandboxes.ListProviders(c, "nosuch")
	wantCode(t, err, codes.NotFound)
}

func TestWatchExecSSHLogs(t *testing.T) {
	e := startEnv(t, gatewaysim.Options{ProvisioningDelay: 100 * time.Millisecond})
	c := ctx(t)
	sb := must(e.client.Sandboxes.Create(c, "w", &openshellv1.SandboxSpec{}, nil))
	id := sb.GetMetadata().GetId()

	w := must(e.client.Sandboxes.Watch(c, id, gateway.WatchOptions{FollowStatus: true, FollowEvents: true, StopOnTerminal: true}))
	var phases []openshellv1.SandboxPhase
	events := 0
	for {
		ev, err := w.Recv()
		if err != nil {
			break
		}
		if s := ev.GetSandbox(); s != nil {
			phases = append(phases, s.GetStatus().GetPhase())
		}
		if ev.GetEvent() != nil {
			events++
		}
	}
	if len(phases) < 2 || phases[0] != openshellv1.SandboxPhase_SANDBOX_PHASE_PROVISIONING || phases[len(phases)-1] != openshellv1.SandboxPhase_SANDBOX_PHASE_READY || events == 0 {
		t.Fatalf("watch should send the snapshot first, then READY, with platform events: %v events=%d", phases, events)
	}
	_, err := e.client.Sandboxes.Watch(c, "", gateway.WatchOptions{})
	if err == nil {
		// gRPC server streams report errors on the first Recv.
		w2 := must(e.client.Sandboxes.Watch(c, "", gateway.WatchOptions{}))
		_, err = w2.Recv()
	}
	wantCode(t, err, codes.InvalidArgument)

	out := must(e.client.Sandboxes.Exec(c, gateway.ExecOptions{SandboxID: id, Command: []string{"echo", "hello", "world"}}))
	if string(out.Stdout) != "hello world\n" || out.ExitCode != 0 {
		t.Fatalf("exec echo: %q %d", out.Stdout, out.ExitCode)
	}
	out = must(e.client.Sandboxes.Exec(c, gateway.ExecOptions{SandboxID: id, Command: []string{"fail", "boom"}}))
	if string(out.Stderr) != "boom\n" || out.ExitCode != 2 {
		t.Fatalf("exec fail: %q %d", out.Stderr, out.ExitCode)
	}
	_, err = e.client.Sandboxes.Exec(c, gateway.ExecOptions{SandboxID: "nope", Command: []string{"true"}})
	wantCode(t, err, codes.NotFound)

	sess := must(e.client.Sandboxes.CreateSSHSession(c, id))
	if sess.GetSandboxId() != id || sess.GetToken() == "" {
		t.Fatalf("ssh session: %v", sess)
	}
	if revoked := must(e.client.Sandboxes.RevokeSSHSession(c, sess.GetToken())); !revoked {
		t.Fatal("revoke should report true for a live session")
	}
	if revoked := must(e.client.Sandboxes.RevokeSSHSession(c, sess.GetToken())); revoked {
		t.Fatal("revoking twice should report false")
	}
	_, err = e.client.Sandboxes.CreateSSHSession(c, "missing")
	wantCode(t, err, codes.NotFound)

	e.sim.InjectBadSSHResponse(true)
	_, err = e.client.Sandboxes.CreateSSHSession(c, id)
	if !errors.Is(err, gateway.ErrInvalidSSHSession) {
		t.Fatalf("a response breaking the charset contract must be refused, got %v", err)
	}

	logs := must(e.client.Sandboxes.Logs(c, id, gateway.LogOptions{Lines: 1}))
	if len(logs) != 1 {
		t.Fatalf("logs with lines=1: got %d", len(logs))
	}
	_, err = e.client.Sandboxes.Logs(c, "missing", gateway.LogOptions{})
	wantCode(t, err, codes.NotFound)
}

func TestWaitReadyReportsError(t *testing.T) {
	e := startEnv(t, gatewaysim.Options{ProvisioningDelay: time.Hour})
	c := ctx(t)
	must(e.client.Sandboxes.Create(c, "bad", &openshellv1.SandboxSpec{}, nil))
	go func() {
		time.Sleep(100 * time.Millisecond)
		e.sim.ForcePhase("bad", openshellv1.SandboxPhase_SANDBOX_PHASE_ERROR)
	}()
	_, err := e.client.Sandboxes.WaitReady(c, "bad")
	if !errors.Is(err, gateway.ErrSandboxFailed) || !strings.Contains(err.Error(), "insufficient resources") {
		t.Fatalf("WaitReady should fail with the gateway's message, got %v", err)
	}
	// ERROR is not sticky: a later ready event recovers the sandbox.
	e.sim.ForcePhase("bad", openshellv1.SandboxPhase_SANDBOX_PHASE_READY)
	if _, err := e.client.Sandboxes.WaitReady(c, "bad"); err != nil {
		t.Fatal(err)
	}
}

func TestValidateSSHSessionTable(t *testing.T) {
	good := func() *openshellv1.CreateSshSessionResponse {
		return &openshellv1.CreateSshSessionResponse{SandboxId: "abc-1", Token: "tok.en~+/=", GatewayHost: "[::1]", GatewayPort: 22, GatewayScheme: "https", HostKeyFingerprint: "SHA256:abc+/="}
	}
	cases := []struct {
		name  string
		mut   func(*openshellv1.CreateSshSessionResponse)
		field string
	}{
		{"valid", func(*openshellv1.CreateSshSessionResponse) {}, ""},
		{"id with slash", func(r *openshellv1.CreateSshSessionResponse) { r.SandboxId = "a/b" }, "sandbox_id"},
		{"empty id", func(r *openshellv1.CreateSshSessionResponse) { r.SandboxId = "" }, "sandbox_id"},
		{"token with space", func(r *openshellv1.CreateSshSessionResponse) { r.Token = "a b" }, "token"},
		{"token with backtick", func(r *openshellv1.CreateSshSessionResponse) { r.Token = "a`b" }, "token"},
		{"token too long", func(r *openshellv1.CreateSshSessionResponse) { r.Token = strings.Repeat("a", 4097) }, "token"},
		{"host with semicolon", func(r *openshellv1.CreateSshSessionResponse) { r.GatewayHost = "a;b" }, "gateway_host"},
		{"port zero", func(r *openshellv1.CreateSshSessionResponse) { r.GatewayPort = 0 }, "gateway_port"},
		{"port too large", func(r *openshellv1.CreateSshSessionResponse) { r.GatewayPort = 70000 }, "gateway_port"},
		{"scheme ftp", func(r *openshellv1.CreateSshSessionResponse) { r.GatewayScheme = "ftp" }, "gateway_scheme"},
		{"fingerprint with space", func(r *openshellv1.CreateSshSessionResponse) { r.HostKeyFingerprint = "a b" }, "host_key_fingerprint"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := good()
			tc.mut(r)
			err := gateway.ValidateSSHSession(r)
			if tc.field == "" {
				if err != nil {
					t.Fatalf("valid response refused: %v", err)
				}
				return
			}
			if !errors.Is(err, gateway.ErrInvalidSSHSession) || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("want refusal naming %s, got %v", tc.field, err)
			}
		})
	}
}

// TestLogFilters: the client's Logs sends lines, since, sources and min_level, and Watch
// streams new lines with FollowLogs (over mTLS against the simulator).
func TestLogFilters(t *testing.T) {
	e := startEnv(t, gatewaysim.Options{ProvisioningDelay: time.Hour})
	c := ctx(t)
	sb := must(e.client.Sandboxes.Create(c, "logs", &openshellv1.SandboxSpec{}, nil))
	id := sb.GetMetadata().GetId()
	e.sim.AppendLog("logs", gatewaysim.LogLine{Level: "WARN", Message: "careful"})
	e.sim.AppendLog("logs", gatewaysim.LogLine{Level: "ERROR", Message: "boom"})
	msgs := func(opts gateway.LogOptions) []string {
		t.Helper()
		var out []string
		for _, l := range must(e.client.Sandboxes.Logs(c, id, opts)) {
			out = append(out, l.GetMessage())
		}
		return out
	}
	for _, tc := range []struct {
		name string
		opts gateway.LogOptions
		want []string
	}{
		{"min level", gateway.LogOptions{MinLevel: "ERROR"}, []string{"boom"}},
		{"sources", gateway.LogOptions{Sources: []string{"sandbox"}}, []string{"careful", "boom"}},
		{"unknown source", gateway.LogOptions{Sources: []string{"nowhere"}}, nil},
		{"since", gateway.LogOptions{Since: time.Now().Add(time.Hour)}, nil},
		{"lines", gateway.LogOptions{Lines: 1, Sources: []string{"sandbox"}}, []string{"boom"}},
	} {
		if got := msgs(tc.opts); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}

	w := must(e.client.Sandboxes.Watch(c, id, gateway.WatchOptions{FollowStatus: true, FollowLogs: true, LogTailLines: 10, LogSince: time.Now().Add(time.Hour)}))
	defer w.Close()
	if ev := must(w.Recv()); ev.GetSandbox() == nil {
		t.Fatalf("no line is replayed (all are before LogSince): the first event is the snapshot, got %v", ev)
	}
	w2 := must(e.client.Sandboxes.Watch(c, id, gateway.WatchOptions{FollowLogs: true}))
	defer w2.Close()
	must(w2.Recv()) // snapshot
	e.sim.AppendLog("logs", gatewaysim.LogLine{Message: "live"})
	for {
		ev := must(w2.Recv())
		if l := ev.GetLog(); l != nil {
			if l.GetMessage() != "live" {
				t.Fatalf("streamed %q, want the new line", l.GetMessage())
			}
			break
		}
	}
}
