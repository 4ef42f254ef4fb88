package plugin

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
)

var (
	t0  = time.Date(2026, time.May, 4, 9, 0, 0, 0, time.UTC)
	now = t0.Add(90 * time.Minute)
)

func at(min int) *metav1.Time {
	t := metav1.NewTime(t0.Add(time.Duration(min) * time.Minute))
	return &t
}

func githubRule() *v1alpha1.NetworkPolicyRule {
	return &v1alpha1.NetworkPolicyRule{Name: "github", Endpoints: []v1alpha1.NetworkEndpoint{{Host: "api.github.com", Port: 443}},
		Binaries: []v1alpha1.NetworkBinary{{Path: "/usr/bin/curl"}}}
}

// pp is a proposal of sandbox in namespace ns, first seen at minute min.
func pp(ns, name, sandbox string, min int, mutate ...func(*v1alpha1.PolicyProposal)) v1alpha1.PolicyProposal {
	p := v1alpha1.PolicyProposal{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, CreationTimestamp: *at(min)},
		Spec:       v1alpha1.PolicyProposalSpec{SandboxRef: v1alpha1.LocalObjectReference{Name: sandbox}, ChunkID: "c-" + name, Decision: v1alpha1.ProposalPending},
		Status: v1alpha1.PolicyProposalStatus{RuleName: "github", ProposedRule: githubRule(), Host: "api.github.com", Port: 443,
			Endpoint: "api.github.com:443", Binary: "/usr/bin/curl", GatewayStatus: v1alpha1.ChunkPending, FirstSeen: at(min)},
	}
	for _, m := range mutate {
		m(&p)
	}
	return p
}

func flagged(p *v1alpha1.PolicyProposal) {
	p.Status.SecurityFlagged, p.Status.SecurityNotes = true, "wildcard host"
}
func superseded(p *v1alpha1.PolicyProposal) {
	p.Status.GatewayStatus, p.Status.SupersededBy = v1alpha1.ChunkRejected, "c-new"
}
func approvedBy(users ...string) func(*v1alpha1.PolicyProposal) {
	return func(p *v1alpha1.PolicyProposal) {
		p.Spec.Decision = v1alpha1.ProposalApproved
		for _, u := range users {
			p.Spec.Approvals = append(p.Spec.Approvals, v1alpha1.ProposalApproval{User: u, Time: *at(10)})
		}
	}
}
func onGateway(s v1alpha1.ChunkStatus) func(*v1alpha1.PolicyProposal) {
	return func(p *v1alpha1.PolicyProposal) { p.Status.GatewayStatus = s }
}

func names(items []v1alpha1.PolicyProposal) []string {
	out := []string{}
	for _, p := range items {
		out = append(out, p.Namespace+"/"+p.Name)
	}
	return out
}

func TestSelectProposals(t *testing.T) {
	items := []v1alpha1.PolicyProposal{
		pp("b", "late", "agent", 5),
		pp("a", "flag", "agent", 3, flagged),
		pp("a", "old", "agent", 1, superseded),
		pp("a", "other", "bot", 0),
		pp("a", "ok", "agent", 2, approvedBy("alice"), onGateway(v1alpha1.ChunkApproved)),
		pp("a", "early", "agent", 0),
	}
	tests := []struct {
		name string
		f    filter
		want []string
	}{
		{"all, sorted by namespace, sandbox, first seen", filter{}, []string{"a/early", "a/old", "a/ok", "a/flag", "a/other", "b/late"}},
		{"one sandbox", filter{sandbox: "bot"}, []string{"a/other"}},
		{"waiting: not decided, not superseded", filter{sandbox: "agent", waiting: true}, []string{"a/early", "a/flag", "b/late"}},
		{"flagged", filter{flagged: true}, []string{"a/flag"}},
		{"decision, any case", filter{decision: "approved"}, []string{"a/ok"}},
		{"gateway status", filter{gatewayStatus: "Rejected"}, []string{"a/old"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d := cmp.Diff(tt.want, names(selectProposals(items, tt.f))); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

func TestPrintProposals(t *testing.T) {
	items := []v1alpha1.PolicyProposal{
		pp("a", "agent-1", "agent", 0, flagged),
		pp("a", "agent-2", "agent", 30, approvedBy("alice"), func(p *v1alpha1.PolicyProposal) {
			p.Status.RequiredApprovals = 2
			p.Status.Outcome = &v1alpha1.ProposalOutcome{Decision: v1alpha1.ProposalApproved, PolicyVersion: 4}
		}),
		pp("a", "agent-3", "agent", 60, superseded),
	}
	tests := []struct {
		output string
		all    bool
		want   string
	}{
		{output: "", want: `NAME      SANDBOX   ENDPOINT             BINARY          FLAGGED   DECISION   GATEWAY      APPROVALS   AGE
agent-1   agent     api.github.com:443   /usr/bin/curl   true      Pending    Pending      0           90m
agent-2   agent     api.github.com:443   /usr/bin/curl   false     Approved   Pending      1/2         60m
agent-3   agent     api.github.com:443   /usr/bin/curl   false     Pending    Superseded   0           30m
`},
		{output: "wide", all: true, want: `NAMESPACE   NAME      SANDBOX   ENDPOINT             BINARY          FLAGGED   DECISION   GATEWAY      APPROVALS   AGE   RULE     HITS   CONFIDENCE   OUTCOME
a           agent-1   agent     api.github.com:443   /usr/bin/curl   true      Pending    Pending      0           90m   github   0      0%           -
a           agent-2   agent     api.github.com:443   /usr/bin/curl   false     Approved   Pending      1/2         60m   github   0      0%           Approved: policy v4
a           agent-3   agent     api.github.com:443   /usr/bin/curl   false     Pending    Superseded   0           30m   github   0      0%           -
`},
		{output: "name", want: "policyproposal.openshell.dev/agent-1\npolicyproposal.openshell.dev/agent-2\npolicyproposal.openshell.dev/agent-3\n"},
	}
	for _, tt := range tests {
		t.Run(tt.output, func(t *testing.T) {
			var b bytes.Buffer
			if err := printProposals(&b, items, tt.output, tt.all, now); err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.want, b.String()); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

func TestDecisions(t *testing.T) {
	edited := &v1alpha1.NetworkPolicyRule{Endpoints: []v1alpha1.NetworkEndpoint{{Host: "api.github.com", Port: 443}}}
	approvalAt := metav1.NewTime(now)
	tests := []struct {
		name    string
		in      v1alpha1.PolicyProposal
		apply   func(*v1alpha1.PolicyProposal) error
		want    v1alpha1.PolicyProposalSpec
		wantErr string
	}{
		{name: "approve records the approver",
			in:    pp("a", "p", "agent", 0),
			apply: func(p *v1alpha1.PolicyProposal) error { return applyApprove(p, "alice", now, nil) },
			want: v1alpha1.PolicyProposalSpec{Decision: v1alpha1.ProposalApproved,
				Approvals: []v1alpha1.ProposalApproval{{User: "alice", Time: approvalAt}}}},
		{name: "a second approver joins the first",
			in:    pp("a", "p", "agent", 0, approvedBy("alice")),
			apply: func(p *v1alpha1.PolicyProposal) error { return applyApprove(p, "bob", now, nil) },
			want: v1alpha1.PolicyProposalSpec{Decision: v1alpha1.ProposalApproved,
				Approvals: []v1alpha1.ProposalApproval{{User: "alice", Time: *at(10)}, {User: "bob", Time: approvalAt}}}},
		{name: "approving twice changes nothing",
			in:      pp("a", "p", "agent", 0, approvedBy("alice")),
			apply:   func(p *v1alpha1.PolicyProposal) error { return applyApprove(p, "alice", now, nil) },
			wantErr: errNoChange.Error()},
		{name: "approve a rejected one drops the reason",
			in: pp("a", "p", "agent", 0, func(p *v1alpha1.PolicyProposal) {
				p.Spec.Decision, p.Spec.Reason = v1alpha1.ProposalRejected, "no"
			}),
			apply: func(p *v1alpha1.PolicyProposal) error { return applyApprove(p, "alice", now, nil) },
			want: v1alpha1.PolicyProposalSpec{Decision: v1alpha1.ProposalApproved,
				Approvals: []v1alpha1.ProposalApproval{{User: "alice", Time: approvalAt}}}},
		{name: "edit then approve",
			in:    pp("a", "p", "agent", 0),
			apply: func(p *v1alpha1.PolicyProposal) error { return applyApprove(p, "alice", now, edited) },
			want: v1alpha1.PolicyProposalSpec{Decision: v1alpha1.ProposalApproved, Rule: edited,
				Approvals: []v1alpha1.ProposalApproval{{User: "alice", Time: approvalAt}}}},
		{name: "no edit of an approved proposal",
			in:      pp("a", "p", "agent", 0, approvedBy("alice")),
			apply:   func(p *v1alpha1.PolicyProposal) error { return applyApprove(p, "bob", now, edited) },
			wantErr: "p is approved: undo it before changing its rule"},
		{name: "no edit of a chunk no longer pending on the gateway",
			in:      pp("a", "p", "agent", 0, onGateway(v1alpha1.ChunkRejected)),
			apply:   func(p *v1alpha1.PolicyProposal) error { return applyEdit(p, edited) },
			wantErr: "p is not pending on the gateway (Rejected), which edits pending chunks only"},
		{name: "edit a pending one",
			in:    pp("a", "p", "agent", 0),
			apply: func(p *v1alpha1.PolicyProposal) error { return applyEdit(p, edited) },
			want:  v1alpha1.PolicyProposalSpec{Decision: v1alpha1.ProposalPending, Rule: edited}},
		{name: "no approval of a superseded proposal",
			in:      pp("a", "p", "agent", 0, superseded),
			apply:   func(p *v1alpha1.PolicyProposal) error { return applyApprove(p, "alice", now, nil) },
			wantErr: "p is superseded by chunk c-new: decide the newer proposal"},
		{name: "reject drops approvals",
			in:    pp("a", "p", "agent", 0, approvedBy("alice")),
			apply: func(p *v1alpha1.PolicyProposal) error { return applyReject(p, "use the mirror") },
			want:  v1alpha1.PolicyProposalSpec{Decision: v1alpha1.ProposalRejected, Reason: "use the mirror"}},
		{name: "reject needs a reason",
			in:      pp("a", "p", "agent", 0),
			apply:   func(p *v1alpha1.PolicyProposal) error { return applyReject(p, "") },
			wantErr: "--reason is required"},
		{name: "undo an approval",
			in:    pp("a", "p", "agent", 0, approvedBy("alice", "bob")),
			apply: applyUndo,
			want:  v1alpha1.PolicyProposalSpec{Decision: v1alpha1.ProposalPending}},
		{name: "undo of a pending one changes nothing",
			in: pp("a", "p", "agent", 0), apply: applyUndo, wantErr: errNoChange.Error()},
		{name: "no undo of a rejection",
			in: pp("a", "p", "agent", 0, func(p *v1alpha1.PolicyProposal) {
				p.Spec.Decision, p.Spec.Reason = v1alpha1.ProposalRejected, "no"
			}),
			apply: applyUndo, wantErr: "the gateway cannot return a rejected chunk to pending"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.in.DeepCopy()
			err := tt.apply(p)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.want.SandboxRef, tt.want.ChunkID = tt.in.Spec.SandboxRef, tt.in.Spec.ChunkID
			if d := cmp.Diff(tt.want, p.Spec); d != "" {
				t.Errorf("spec (-want +got):\n%s", d)
			}
		})
	}
}

func TestApproveAllSelection(t *testing.T) {
	items := []v1alpha1.PolicyProposal{
		pp("a", "one", "agent", 0), pp("a", "two", "agent", 1, flagged), pp("a", "three", "agent", 2, superseded),
		pp("a", "four", "agent", 3, approvedBy("bob")), pp("a", "five", "bot", 4),
	}
	approve, skipped := approveAllSelection(items, "agent", false)
	if d := cmp.Diff([]string{"one"}, approve); d != "" {
		t.Errorf("approve (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"two"}, skipped); d != "" {
		t.Errorf("skipped (-want +got):\n%s", d)
	}
	approve, skipped = approveAllSelection(items, "agent", true)
	if d := cmp.Diff([]string{"one", "two"}, approve); d != "" || skipped != nil {
		t.Errorf("with flagged: approve (-want +got):\n%s, skipped %v", d, skipped)
	}
}

func TestHistory(t *testing.T) {
	items := []v1alpha1.PolicyProposal{
		pp("a", "p2", "agent", 5, superseded, func(p *v1alpha1.PolicyProposal) { p.Status.DecidedAt = at(20) }),
		pp("a", "p1", "agent", 0, approvedBy("alice"), func(p *v1alpha1.PolicyProposal) {
			p.Status.Outcome = &v1alpha1.ProposalOutcome{Decision: v1alpha1.ProposalApproved, PolicyVersion: 3, Time: at(11)}
		}),
		pp("a", "p3", "agent", 30, flagged, approvedBy("bob"), func(p *v1alpha1.PolicyProposal) {
			p.Spec.Approvals[0].Time = *at(31)
			p.Status.Outcome = &v1alpha1.ProposalOutcome{Decision: v1alpha1.ProposalApproved, Time: at(32),
				Error: "policy is managed globally; delete global policy before sandbox policy update"}
		}),
	}
	var got []string
	for _, e := range history(items) {
		got = append(got, e.Time.UTC().Format("15:04")+" "+e.Event+" "+e.Proposal+" "+e.Detail)
	}
	want := []string{
		"09:00 proposed p1 rule github for api.github.com:443 by /usr/bin/curl",
		"09:05 proposed p2 rule github for api.github.com:443 by /usr/bin/curl",
		"09:10 approval p1 by alice",
		"09:11 approved p1 policy version 3",
		"09:20 superseded p2 by chunk c-new",
		"09:30 proposed p3 rule github for api.github.com:443 by /usr/bin/curl (security notes: wildcard host)",
		"09:31 approval p3 by bob",
		"09:32 refused p3 Approved refused by the gateway: policy is managed globally; delete global policy before sandbox policy update",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

func TestExportedPolicy(t *testing.T) {
	sb := &v1alpha1.Sandbox{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "agent"}}
	base := &v1alpha1.SandboxPolicySpec{NetworkPolicies: map[string]v1alpha1.NetworkPolicyRule{
		"pypi": {Name: "pypi", Endpoints: []v1alpha1.NetworkEndpoint{{Host: "pypi.org", Port: 443}}}}}
	items := []v1alpha1.PolicyProposal{
		pp("a", "approved", "agent", 0, approvedBy("alice"), onGateway(v1alpha1.ChunkApproved)),
		pp("a", "waiting", "agent", 1, func(p *v1alpha1.PolicyProposal) { p.Status.RuleName = "other" }),
		pp("a", "elsewhere", "bot", 1, onGateway(v1alpha1.ChunkApproved), func(p *v1alpha1.PolicyProposal) { p.Status.RuleName = "bot" }),
	}
	got, notInSpec := exportedPolicy(sb, base, items, "web")
	merged := *githubRule()
	merged.Endpoints = []v1alpha1.NetworkEndpoint{{Host: "api.github.com", Ports: []v1alpha1.Port{443}}}
	want := &v1alpha1.SandboxPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: "openshell.dev/v1alpha1", Kind: "SandboxPolicy"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "web"},
		Spec: v1alpha1.SandboxPolicySpec{NetworkPolicies: map[string]v1alpha1.NetworkPolicyRule{
			"pypi": base.NetworkPolicies["pypi"], "github": merged}},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"approved"}, notInSpec); d != "" {
		t.Errorf("notInSpec (-want +got):\n%s", d)
	}
	if _, notInSpec := exportedPolicy(sb, &got.Spec, items, "web"); len(notInSpec) != 0 {
		t.Errorf("the exported policy committed still lacks %v", notInSpec)
	}
}

func TestStatusTree(t *testing.T) {
	sb := &v1alpha1.Sandbox{
		ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "agent"},
		Spec: v1alpha1.SandboxSpec{GatewayRef: v1alpha1.GatewayReference{Name: "default"}, Providers: []string{"openai", "gone"},
			PolicyRef: &v1alpha1.LocalObjectReference{Name: "web"}},
		Status: v1alpha1.SandboxStatus{Phase: v1alpha1.SandboxPhaseReady,
			CommonStatus: v1alpha1.CommonStatus{Conditions: []metav1.Condition{{Type: "Ready", Status: "True", Reason: "Ready"}}},
			Policy:       &v1alpha1.SandboxPolicyState{Version: 4, ActiveVersion: 4, Status: v1alpha1.PolicyLoadLoaded, ApprovedRulesNotInSpec: 1}},
	}
	r := &statusReport{
		Sandbox:         sb,
		ConnectionError: "GatewayConnection default not readable with your permissions",
		Providers: []v1alpha1.Provider{{ObjectMeta: metav1.ObjectMeta{Name: "openai"}, Status: v1alpha1.ProviderStatus{
			CommonStatus: v1alpha1.CommonStatus{Conditions: []metav1.Condition{{Type: "Ready", Status: "False", Reason: "SecretNotFound", Message: "Secret a/creds not found"}}}}}},
		MissingProviders: []string{"Provider gone not found"},
		Proposals: []v1alpha1.PolicyProposal{pp("a", "agent-1", "agent", 0, flagged), pp("a", "agent-2", "agent", 1, superseded),
			pp("a", "agent-3", "agent", 2, approvedBy("alice"), onGateway(v1alpha1.ChunkApproved))},
		Events: recentEvents([]corev1.Event{
			{Type: "Normal", Reason: "PolicyLoaded", Message: "policy version 4 loaded", LastTimestamp: *at(80)},
			{Type: "Normal", Reason: "ProposalApproved", Message: "agent-3 approved", LastTimestamp: *at(85)},
		}),
	}
	var b bytes.Buffer
	if err := render(&b, statusTree(r, now)); err != nil {
		t.Fatal(err)
	}
	want := `Sandbox a/agent: Ready (phase Ready)
├─ GatewayConnection default: GatewayConnection default not readable with your permissions
├─ Providers (2)
│  ├─ openai: not ready (SecretNotFound): Secret a/creds not found
│  └─ Provider gone not found
├─ Policy (SandboxPolicy web): version 4, active 4, Loaded
│  └─ 1 approved rule(s) not in spec: run kubectl openshell policy export agent
├─ Proposals: 1 waiting, 1 approved, 1 superseded
│  └─ agent-1: api.github.com:443 /usr/bin/curl [security-flagged]
└─ Events (last 5)
   ├─ 5m ago Normal ProposalApproved: agent-3 approved
   └─ 10m ago Normal PolicyLoaded: policy version 4 loaded
`
	if d := cmp.Diff(want, b.String()); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

func TestRecentEventsKeepsTheNewest(t *testing.T) {
	var in []corev1.Event
	for i := range 8 {
		in = append(in, corev1.Event{Reason: string(rune('a' + i)), LastTimestamp: *at(i)})
	}
	var got string
	for _, e := range recentEvents(in) {
		got += e.Reason
	}
	if got != "hgfed" {
		t.Errorf("recent events %q, want hgfed", got)
	}
}

func TestReadRule(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	r, err := readRule(write("ok.yaml", "endpoints: [{host: api.github.com, port: 443}]\nbinaries: [{path: /usr/bin/git}]\n"))
	if err != nil || len(r.Endpoints) != 1 || r.Binaries[0].Path != "/usr/bin/git" {
		t.Fatalf("readRule = %+v, %v", r, err)
	}
	for name, body := range map[string]string{
		"unknown.yaml": "endpoint: [{host: a, port: 1}]\n",
		"empty.yaml":   "binaries: [{path: /usr/bin/git}]\n",
		"notyaml.yaml": "{{{",
	} {
		if _, err := readRule(write(name, body)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := readRule(filepath.Join(dir, "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	if r, err := readRule(""); r != nil || err != nil {
		t.Errorf("no file: %v, %v", r, err)
	}
}
