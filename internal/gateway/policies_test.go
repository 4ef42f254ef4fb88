package gateway_test

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	sandboxv1 "github.com/openshell-operator/openshell-operator/gen/openshell/sandbox/v1"
	openshellv1 "github.com/openshell-operator/openshell-operator/gen/openshell/v1"
	"github.com/openshell-operator/openshell-operator/internal/gateway"
	"github.com/openshell-operator/openshell-operator/internal/gatewaysim"
)

func basePolicy() *sandboxv1.SandboxPolicy {
	return &sandboxv1.SandboxPolicy{
		Filesystem: &sandboxv1.FilesystemPolicy{ReadOnly: []string{"/usr"}, ReadWrite: []string{"/sandbox"}},
		Landlock:   &sandboxv1.LandlockPolicy{Compatibility: "best_effort"},
		NetworkPolicies: map[string]*sandboxv1.NetworkPolicyRule{
			"openai": {Name: "openai", Endpoints: []*sandboxv1.NetworkEndpoint{{Host: "api.openai.com", Port: 443, Protocol: "rest"}}},
		},
	}
}

func withRule(p *sandboxv1.SandboxPolicy, key, host string) *sandboxv1.SandboxPolicy {
	p.NetworkPolicies[key] = &sandboxv1.NetworkPolicyRule{Name: key, Endpoints: []*sandboxv1.NetworkEndpoint{{Host: host, Port: 443}}}
	return p
}

func TestSandboxPolicyRevisions(t *testing.T) {
	e := startEnv(t, gatewaysim.Options{PolicyPollInterval: 50 * time.Millisecond})
	c := ctx(t)
	sb := must(e.client.Sandboxes.Create(c, "pol", &openshellv1.SandboxSpec{Policy: basePolicy()}, nil))
	if sb.GetSpec().GetPolicy().GetProcess().GetRunAsUser() != "sandbox" {
		t.Fatal("identity defaults are applied at create")
	}
	// Lazy v1: nothing exists until the supervisor's first config poll.
	_, err := e.client.Policies.GetStatus(c, "pol", 0)
	wantCode(t, err, codes.NotFound)
	if revs := must(e.client.Policies.ListRevisions(c, "pol", 0, 0)); len(revs) != 0 {
		t.Fatalf("no revisions before the first poll, got %d", len(revs))
	}
	cfg := must(e.client.Policies.SandboxConfig(c, sb.GetMetadata().GetId()))
	if cfg.GetVersion() != 1 || cfg.GetPolicySource() != sandboxv1.PolicySource_POLICY_SOURCE_SANDBOX {
		t.Fatalf("first config poll backfills v1: %v", cfg)
	}
	st := must(e.client.Policies.GetStatus(c, "pol", 1))
	if st.GetRevision().GetStatus() != openshellv1.PolicyStatus_POLICY_STATUS_LOADED || st.GetRevision().GetPolicyHash() != gatewaysim.PolicyHash(st.GetRevision().GetPolicy()) {
		t.Fatalf("v1 is LOADED with the canonical hash: %v", st.GetRevision())
	}
	must(e.client.Sandboxes.WaitReady(c, "pol"))

	// Network changes are accepted in place and create a PENDING v2 that supersedes v1.
	upd := must(e.client.Policies.Update(c, "pol", withRule(basePolicy(), "github", "api.github.com")))
	if upd.GetVersion() != 2 {
		t.Fatalf("new revision should be v2, got %d", upd.GetVersion())
	}
	same := must(e.client.Policies.Update(c, "pol", withRule(basePolicy(), "github", "api.github.com")))
	if same.GetVersion() != 2 || same.GetPolicyHash() != upd.GetPolicyHash() {
		t.Fatalf("same hash is idempotent: %v", same)
	}
	v1 := must(e.client.Policies.GetStatus(c, "pol", 1))
	if v1.GetRevision().GetStatus() != openshellv1.PolicyStatus_POLICY_STATUS_SUPERSEDED {
		t.Fatalf("inserting v2 supersedes v1, got %v", v1.GetRevision().GetStatus())
	}
	eventually(t, "v2 loaded", func() bool {
		s, err := e.client.Policies.GetStatus(c, "pol", 0)
		return err == nil && s.GetRevision().GetStatus() == openshellv1.PolicyStatus_POLICY_STATUS_LOADED && s.GetActiveVersion() == 2
	})
	revs := must(e.client.Policies.ListRevisions(c, "pol", 0, 0))
	if len(revs) != 2 || revs[0].GetVersion() != 2 || revs[0].GetPolicy() != nil {
		t.Fatalf("revisions newest first, without payloads: %v", revs)
	}

	// Static fields cannot change in place.
	for name, p := range map[string]*sandboxv1.SandboxPolicy{
		"landlock": func() *sandboxv1.SandboxPolicy {
			p := basePolicy()
			p.Landlock.Compatibility = "hard_requirement"
			return p
		}(),
		"process": func() *sandboxv1.SandboxPolicy {
			p := basePolicy()
			p.Process = &sandboxv1.ProcessPolicy{RunAsUser: "root"}
			return p
		}(),
		"removed path": func() *sandboxv1.SandboxPolicy { p := basePolicy(); p.Filesystem.ReadOnly = nil; return p }(),
	} {
		_, err := e.client.Policies.Update(c, "pol", p)
		wantCode(t, err, codes.InvalidArgument)
		if !strings.Contains(gateway.Message(err), "cannot") {
			t.Fatalf("%s: message should explain: %v", name, err)
		}
	}
	grown := basePolicy()
	grown.Filesystem.ReadOnly = append(grown.Filesystem.ReadOnly, "/opt")
	must(e.client.Policies.Update(c, "pol", grown))

	// A load failure is reported with its error.
	e.sim.FailPolicyLoad("pol", "landlock ruleset rejected")
	failed := must(e.client.Policies.Update(c, "pol", withRule(basePolicy(), "x", "x.example.com")))
	eventually(t, "revision failed", func() bool {
		s, err := e.client.Policies.GetStatus(c, "pol", failed.GetVersion())
		return err == nil && s.GetRevision().GetStatus() == openshellv1.PolicyStatus_POLICY_STATUS_FAILED && s.GetRevision().GetLoadError() == "landlock ruleset rejected"
	})

	_, err = e.client.Policies.Update(c, "ghost", basePolicy())
	wantCode(t, err, codes.NotFound)
	_, err = e.client.Policies.GetStatus(c, "", 0)
	wantCode(t, err, codes.InvalidArgument)
}

func TestMergeOperations(t *testing.T) {
	e := startEnv(t, gatewaysim.Options{})
	c := ctx(t)
	must(e.client.Sandboxes.Create(c, "m", &openshellv1.SandboxSpec{Policy: basePolicy()}, nil))
	addRule := &openshellv1.PolicyMergeOperation{Operation: &openshellv1.PolicyMergeOperation_AddRule{AddRule: &openshellv1.AddNetworkRule{
		RuleName: "pypi", Rule: &sandboxv1.NetworkPolicyRule{Endpoints: []*sandboxv1.NetworkEndpoint{{Host: "pypi.org", Port: 443}}},
	}}}
	resp := must(e.client.Policies.Merge(c, "m", addRule))
	if resp.GetVersion() != 1 {
		t.Fatalf("a merge before any revision creates v1: %v", resp)
	}
	st := must(e.client.Policies.GetStatus(c, "m", 0))
	if st.GetRevision().GetPolicy().GetNetworkPolicies()["pypi"] == nil || st.GetRevision().GetStatus() != openshellv1.PolicyStatus_POLICY_STATUS_PENDING {
		t.Fatalf("merged rule present and pending: %v", st.GetRevision())
	}
	allow := &openshellv1.PolicyMergeOperation{Operation: &openshellv1.PolicyMergeOperation_AddAllowRules{AddAllowRules: &openshellv1.AddAllowRules{
		Host: "api.openai.com", Port: 443, Rules: []*sandboxv1.L7Rule{{Allow: &sandboxv1.L7Allow{Method: "GET", Path: "/v1/models"}}},
	}}}
	if r := must(e.client.Policies.Merge(c, "m", allow)); r.GetVersion() != 2 {
		t.Fatalf("allow rules on an L7 endpoint create v2: %v", r)
	}
	cases := []struct {
		op   *openshellv1.PolicyMergeOperation
		code codes.Code
	}{
		{&openshellv1.PolicyMergeOperation{Operation: &openshellv1.PolicyMergeOperation_RemoveRule{RemoveRule: &openshellv1.RemoveNetworkRule{}}}, codes.InvalidArgument},
		{&openshellv1.PolicyMergeOperation{Operation: &openshellv1.PolicyMergeOperation_RemoveEndpoint{RemoveEndpoint: &openshellv1.RemoveNetworkEndpoint{Host: "nope.example", Port: 443}}}, codes.FailedPrecondition},
		{&openshellv1.PolicyMergeOperation{Operation: &openshellv1.PolicyMergeOperation_AddAllowRules{AddAllowRules: &openshellv1.AddAllowRules{Host: "pypi.org", Port: 443, Rules: []*sandboxv1.L7Rule{{Allow: &sandboxv1.L7Allow{Method: "GET"}}}}}}, codes.FailedPrecondition},
		{&openshellv1.PolicyMergeOperation{Operation: &openshellv1.PolicyMergeOperation_AddRule{AddRule: &openshellv1.AddNetworkRule{RuleName: "lo", Rule: &sandboxv1.NetworkPolicyRule{Endpoints: []*sandboxv1.NetworkEndpoint{{Host: "127.0.0.1", Port: 80}}}}}}, codes.InvalidArgument},
	}
	for _, tc := range cases {
		_, err := e.client.Policies.Merge(c, "m", tc.op)
		wantCode(t, err, tc.code)
	}
	remove := &openshellv1.PolicyMergeOperation{Operation: &openshellv1.PolicyMergeOperation_RemoveRule{RemoveRule: &openshellv1.RemoveNetworkRule{RuleName: "pypi"}}}
	if r := must(e.client.Policies.Merge(c, "m", remove)); r.GetVersion() != 3 {
		t.Fatalf("remove rule creates v3: %v", r)
	}
}

func TestGlobalPolicyAndSettings(t *testing.T) {
	e := startEnv(t, gatewaysim.Options{})
	c := ctx(t)
	must(e.client.Sandboxes.Create(c, "g", &openshellv1.SandboxSpec{Policy: basePolicy()}, nil))
	g := must(e.client.Policies.UpdateGlobal(c, basePolicy()))
	if g.GetVersion() != 1 || g.GetSettingsRevision() != 1 {
		t.Fatalf("global v1 and settings revision 1: %v", g)
	}
	gs := must(e.client.Policies.GetGlobalStatus(c, 0))
	if gs.GetRevision().GetStatus() != openshellv1.PolicyStatus_POLICY_STATUS_LOADED {
		t.Fatal("global revisions are LOADED immediately")
	}
	if revs := must(e.client.Policies.ListGlobalRevisions(c, 0, 0)); len(revs) != 1 {
		t.Fatalf("global revisions: %d", len(revs))
	}
	_, err := e.client.Policies.Update(c, "g", withRule(basePolicy(), "y", "y.example.com"))
	wantCode(t, err, codes.FailedPrecondition)
	if !strings.Contains(gateway.Message(err), "managed globally") {
		t.Fatalf("message: %v", err)
	}
	_, err = e.client.Policies.SetSetting(c, gateway.Scope{Global: true}, "policy", gateway.StringSetting("x"))
	wantCode(t, err, codes.InvalidArgument)
	del := must(e.client.Policies.DeleteGlobal(c))
	if !del.GetDeleted() {
		t.Fatal("deleting an existing global policy reports deleted")
	}
	must(e.client.Policies.Update(c, "g", withRule(basePolicy(), "y", "y.example.com")))

	set := must(e.client.Policies.SetSetting(c, gateway.Scope{Global: true}, "ocsf_json_enabled", gateway.BoolSetting(true)))
	again := must(e.client.Policies.SetSetting(c, gateway.Scope{Global: true}, "ocsf_json_enabled", gateway.BoolSetting(true)))
	if again.GetSettingsRevision() != set.GetSettingsRevision() {
		t.Fatal("settings_revision moves only on a real change")
	}
	cfg := must(e.client.GatewayConfig(c))
	if _, ok := cfg.GetSettings()["policy"]; ok || !cfg.GetSettings()["ocsf_json_enabled"].GetBoolValue() || len(cfg.GetSettings()) != len(gatewaysim.RegisteredSettingKeys()) {
		t.Fatalf("gateway config lists every registered key, never policy: %v", cfg.GetSettings())
	}
	for _, tc := range []struct {
		scope gateway.Scope
		key   string
		value *sandboxv1.SettingValue
		code  codes.Code
	}{
		{gateway.Scope{Global: true}, "no_such_key", gateway.BoolSetting(true), codes.InvalidArgument},
		{gateway.Scope{Global: true}, "ocsf_json_enabled", gateway.StringSetting("yes"), codes.InvalidArgument},
		{gateway.Scope{Global: true}, "proposal_approval_mode", gateway.StringSetting("sometimes"), codes.InvalidArgument},
		{gateway.Scope{Global: true}, "proposal_approval_mode", gateway.IntSetting(1), codes.InvalidArgument},
		{gateway.Scope{Sandbox: "g"}, "ocsf_json_enabled", gateway.BoolSetting(false), codes.FailedPrecondition},
		{gateway.Scope{Sandbox: "ghost"}, "ocsf_json_enabled", gateway.BoolSetting(false), codes.NotFound},
	} {
		_, err := e.client.Policies.SetSetting(c, tc.scope, tc.key, tc.value)
		wantCode(t, err, tc.code)
	}
	must(e.client.Policies.SetSetting(c, gateway.Scope{Sandbox: "g"}, "proposal_approval_mode", gateway.StringSetting("auto")))
	if d := must(e.client.Policies.DeleteSetting(c, gateway.Scope{Sandbox: "g"}, "proposal_approval_mode")); !d.GetDeleted() {
		t.Fatal("sandbox-scope delete is allowed and reports deleted")
	}
}

func TestApprovals(t *testing.T) {
	e := startEnv(t, gatewaysim.Options{})
	c := ctx(t)
	must(e.client.Sandboxes.Create(c, "a", &openshellv1.SandboxSpec{Policy: basePolicy()}, nil))
	rule := func(host string) *sandboxv1.NetworkPolicyRule {
		return &sandboxv1.NetworkPolicyRule{Endpoints: []*sandboxv1.NetworkEndpoint{{Host: host, Port: 443}}}
	}
	c1 := must(e.sim.AddDraftChunk("a", "pypi", rule("pypi.org"), ""))
	c2 := must(e.sim.AddDraftChunk("a", "npm", rule("registry.npmjs.org"), ""))
	c3 := must(e.sim.AddDraftChunk("a", "sketchy", rule("paste.example"), "exfiltration risk"))
	if pending := must(e.client.Approvals.GetPending(c, "a")); len(pending) != 3 {
		t.Fatalf("pending: %d", len(pending))
	}
	ap := must(e.client.Approvals.Approve(c, "a", c1))
	if ap.GetPolicyVersion() == 0 {
		t.Fatal("approval creates a revision")
	}
	_, err := e.client.Approvals.Approve(c, "a", c1)
	wantCode(t, err, codes.FailedPrecondition)
	if err := e.client.Approvals.Edit(c, "a", c2, rule("registry.yarnpkg.com")); err != nil {
		t.Fatal(err)
	}
	all := must(e.client.Approvals.ApproveAll(c, "a", false))
	if all.GetChunksApproved() != 1 || all.GetChunksSkipped() != 1 {
		t.Fatalf("approve all skips security-flagged chunks: %v", all)
	}
	undo := must(e.client.Approvals.Undo(c, "a", c1))
	if undo.GetPolicyVersion() <= ap.GetPolicyVersion() {
		t.Fatal("undo creates a newer revision")
	}
	if err := e.client.Approvals.Reject(c, "a", c3, "not needed"); err != nil {
		t.Fatal(err)
	}
	if n := must(e.client.Approvals.Clear(c, "a")); n != 1 {
		t.Fatalf("clear removes the pending chunk left (the undone one), got %d", n)
	}
	draft := must(e.client.Approvals.GetDraft(c, "a", ""))
	if len(draft.GetChunks()) != 2 {
		t.Fatalf("draft after clear: %d chunks", len(draft.GetChunks()))
	}
	if hist := must(e.client.Approvals.History(c, "a")); len(hist) < 6 {
		t.Fatalf("history has proposals and decisions, got %d", len(hist))
	}
	_, err = e.client.Approvals.Approve(c, "a", "nope")
	wantCode(t, err, codes.NotFound)
	_, err = e.client.Approvals.Approve(c, "a", "")
	wantCode(t, err, codes.InvalidArgument)
	_, err = e.client.Approvals.GetDraft(c, "ghost", "")
	wantCode(t, err, codes.NotFound)
	must(e.sim.AddDraftChunk("a", "late", rule("late.example.com"), ""))
	must(e.client.Policies.UpdateGlobal(c, basePolicy()))
	_, err = e.client.Approvals.ApproveAll(c, "a", true)
	wantCode(t, err, codes.FailedPrecondition)
	if !strings.Contains(gateway.Message(err), "managed globally") {
		t.Fatalf("approvals are refused while a global policy exists: %v", err)
	}
}
