package approvals

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
)

func ep(host string, port v1alpha1.Port) v1alpha1.NetworkEndpoint {
	return v1alpha1.NetworkEndpoint{Host: host, Port: port}
}

// nep is an endpoint as the gateway stores a merged one (port folded into ports).
func nep(host string, port v1alpha1.Port) v1alpha1.NetworkEndpoint {
	return v1alpha1.NetworkEndpoint{Host: host, Ports: []v1alpha1.Port{port}}
}

func bin(paths ...string) []v1alpha1.NetworkBinary {
	out := make([]v1alpha1.NetworkBinary, len(paths))
	for i, p := range paths {
		out[i] = v1alpha1.NetworkBinary{Path: v1alpha1.BinaryPath(p)}
	}
	return out
}

func rule(name string, eps []v1alpha1.NetworkEndpoint, bins ...string) v1alpha1.NetworkPolicyRule {
	return v1alpha1.NetworkPolicyRule{Name: name, Endpoints: eps, Binaries: bin(bins...)}
}

func policy(rules map[string]v1alpha1.NetworkPolicyRule) *v1alpha1.SandboxPolicySpec {
	return &v1alpha1.SandboxPolicySpec{NetworkPolicies: rules}
}

func TestMerge(t *testing.T) {
	github := []v1alpha1.NetworkEndpoint{ep("api.github.com", 443)}
	tests := []struct {
		name          string
		spec          *v1alpha1.SandboxPolicySpec
		rules         []Rule
		want          *v1alpha1.SandboxPolicySpec
		wantNotInSpec []string
	}{
		{name: "nothing approved keeps the spec", spec: policy(map[string]v1alpha1.NetworkPolicyRule{"a": rule("a", github)}),
			want: policy(map[string]v1alpha1.NetworkPolicyRule{"a": rule("a", github)})},
		{name: "no spec policy: the rule is inserted and named",
			rules:         []Rule{{Name: "github", Rule: rule("", github, "/usr/bin/curl"), Proposal: "p1"}},
			want:          policy(map[string]v1alpha1.NetworkPolicyRule{"github": rule("github", []v1alpha1.NetworkEndpoint{nep("api.github.com", 443)}, "/usr/bin/curl")}),
			wantNotInSpec: []string{"p1"}},
		{name: "already in spec (port written as ports) counts as committed",
			spec: policy(map[string]v1alpha1.NetworkPolicyRule{"github": rule("github",
				[]v1alpha1.NetworkEndpoint{{Host: "api.github.com", Ports: []v1alpha1.Port{443}}}, "/usr/bin/curl")}),
			rules: []Rule{{Name: "github", Rule: rule("github", github, "/usr/bin/curl"), Proposal: "p1"}},
			want: policy(map[string]v1alpha1.NetworkPolicyRule{"github": rule("github",
				[]v1alpha1.NetworkEndpoint{{Host: "api.github.com", Ports: []v1alpha1.Port{443}}}, "/usr/bin/curl")})},
		{name: "same name: a new binary joins the rule",
			spec:          policy(map[string]v1alpha1.NetworkPolicyRule{"github": rule("github", github, "/usr/bin/curl")}),
			rules:         []Rule{{Name: "github", Rule: rule("github", github, "/usr/bin/git"), Proposal: "p1"}},
			want:          policy(map[string]v1alpha1.NetworkPolicyRule{"github": rule("github", github, "/usr/bin/curl", "/usr/bin/git")}),
			wantNotInSpec: []string{"p1"}},
		{name: "same name: a new endpoint joins the rule",
			spec:  policy(map[string]v1alpha1.NetworkPolicyRule{"github": rule("github", github)}),
			rules: []Rule{{Name: "github", Rule: rule("github", []v1alpha1.NetworkEndpoint{ep("uploads.github.com", 443)}), Proposal: "p1"}},
			want: policy(map[string]v1alpha1.NetworkPolicyRule{"github": rule("github",
				[]v1alpha1.NetworkEndpoint{ep("api.github.com", 443), nep("uploads.github.com", 443)})}),
			wantNotInSpec: []string{"p1"}},
		{name: "another name sharing an endpoint merges into the first such rule, skipping provider rules",
			spec: policy(map[string]v1alpha1.NetworkPolicyRule{
				"_provider_github": rule("_provider_github", github),
				"b":                rule("b", github),
				"c":                rule("c", github)}),
			rules: []Rule{{Name: "allow_api_github_com", Rule: rule("", github, "/usr/bin/gh"), Proposal: "p1"}},
			want: policy(map[string]v1alpha1.NetworkPolicyRule{
				"_provider_github": rule("_provider_github", github),
				"b":                rule("b", github, "/usr/bin/gh"),
				"c":                rule("c", github)}),
			wantNotInSpec: []string{"p1"}},
		{name: "a different port is not a shared endpoint",
			spec:  policy(map[string]v1alpha1.NetworkPolicyRule{"a": rule("a", github)}),
			rules: []Rule{{Name: "alt", Rule: rule("", []v1alpha1.NetworkEndpoint{ep("api.github.com", 8443)}), Proposal: "p1"}},
			want: policy(map[string]v1alpha1.NetworkPolicyRule{"a": rule("a", github),
				"alt": rule("alt", []v1alpha1.NetworkEndpoint{nep("api.github.com", 8443)})}),
			wantNotInSpec: []string{"p1"}},
		{name: "two approvals of one rule: the second adds nothing",
			rules: []Rule{{Name: "g", Rule: rule("g", github), Proposal: "p1"}, {Name: "g", Rule: rule("g", github), Proposal: "p2"}},
			want:  policy(map[string]v1alpha1.NetworkPolicyRule{"g": rule("g", []v1alpha1.NetworkEndpoint{nep("api.github.com", 443)})}), wantNotInSpec: []string{"p1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before *v1alpha1.SandboxPolicySpec
			if tt.spec != nil {
				before = tt.spec.DeepCopy()
			}
			got, notInSpec := Merge(tt.spec, tt.rules)
			if tt.want.NetworkPolicies == nil {
				tt.want.NetworkPolicies = map[string]v1alpha1.NetworkPolicyRule{}
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("merged policy (-want +got):\n%s", d)
			}
			if d := cmp.Diff(tt.wantNotInSpec, notInSpec); d != "" {
				t.Errorf("notInSpec (-want +got):\n%s", d)
			}
			if d := cmp.Diff(before, tt.spec); d != "" {
				t.Errorf("input changed (-before +after):\n%s", d)
			}
		})
	}
}

func proposal(name, sandbox string, gw v1alpha1.ChunkStatus, ruleName string) v1alpha1.PolicyProposal {
	r := rule(ruleName, []v1alpha1.NetworkEndpoint{ep(name+".example.com", 443)})
	return v1alpha1.PolicyProposal{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:   v1alpha1.PolicyProposalSpec{SandboxRef: v1alpha1.LocalObjectReference{Name: sandbox}},
		Status: v1alpha1.PolicyProposalStatus{GatewayStatus: gw, RuleName: ruleName, ProposedRule: &r}}
}

func TestApproved(t *testing.T) {
	deleted := proposal("d", "agent", v1alpha1.ChunkApproved, "d")
	now := metav1.Now()
	deleted.DeletionTimestamp = &now
	noRule := proposal("e", "agent", v1alpha1.ChunkApproved, "e")
	noRule.Status.ProposedRule = nil
	in := []v1alpha1.PolicyProposal{
		proposal("z", "agent", v1alpha1.ChunkApproved, "z"),
		proposal("a", "agent", v1alpha1.ChunkApproved, "a"),
		proposal("p", "agent", v1alpha1.ChunkPending, "p"),
		proposal("r", "agent", v1alpha1.ChunkRejected, "r"),
		proposal("o", "other", v1alpha1.ChunkApproved, "o"),
		deleted, noRule,
		func() v1alpha1.PolicyProposal {
			p := proposal("s", "agent", v1alpha1.ChunkPending, "s")
			p.Status.InFlight = &v1alpha1.ProposalOutcome{Decision: v1alpha1.ProposalApproved}
			return p
		}(),
		func() v1alpha1.PolicyProposal {
			p := proposal("u", "agent", v1alpha1.ChunkApproved, "u")
			p.Status.InFlight = &v1alpha1.ProposalOutcome{Decision: v1alpha1.ProposalPending}
			return p
		}(),
	}
	var got []string
	for _, r := range Approved(in, "agent") {
		got = append(got, r.Proposal+"/"+r.Name)
	}
	if d := cmp.Diff([]string{"a/a", "s/s", "u/u", "z/z"}, got); d != "" {
		t.Errorf("approved (-want +got):\n%s", d)
	}
}

func TestQuorum(t *testing.T) {
	tests := []struct {
		annotations map[string]string
		want        int
		wantErr     bool
	}{
		{annotations: nil, want: 1},
		{annotations: map[string]string{"other": "3"}, want: 1},
		{annotations: map[string]string{v1alpha1.AnnotationApprovalQuorum: "2"}, want: 2},
		{annotations: map[string]string{v1alpha1.AnnotationApprovalQuorum: " 16 "}, want: 16},
		{annotations: map[string]string{v1alpha1.AnnotationApprovalQuorum: "0"}, wantErr: true},
		{annotations: map[string]string{v1alpha1.AnnotationApprovalQuorum: "17"}, wantErr: true},
		{annotations: map[string]string{v1alpha1.AnnotationApprovalQuorum: "two"}, wantErr: true},
		{annotations: map[string]string{v1alpha1.AnnotationApprovalQuorum: ""}, wantErr: true},
	}
	for _, tt := range tests {
		got, err := Quorum(tt.annotations)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("Quorum(%v) = %d, %v; want %d, error %v", tt.annotations, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestQuorumMet(t *testing.T) {
	approvals := func(n int) []v1alpha1.ProposalApproval {
		out := make([]v1alpha1.ProposalApproval, n)
		for i := range out {
			out[i].User = string(rune('a' + i))
		}
		return out
	}
	tests := []struct {
		decision  v1alpha1.ProposalDecision
		approvals int
		quorum    int
		want      bool
	}{
		{v1alpha1.ProposalApproved, 0, 1, true},
		{v1alpha1.ProposalApproved, 1, 2, false},
		{v1alpha1.ProposalApproved, 2, 2, true},
		{v1alpha1.ProposalApproved, 3, 2, true},
		{v1alpha1.ProposalPending, 0, 1, false},
		{v1alpha1.ProposalRejected, 0, 1, false},
	}
	for _, tt := range tests {
		p := &v1alpha1.PolicyProposal{Spec: v1alpha1.PolicyProposalSpec{Decision: tt.decision, Approvals: approvals(tt.approvals)}}
		if got := QuorumMet(p, tt.quorum); got != tt.want {
			t.Errorf("%s with %d approvals, quorum %d: %v, want %v", tt.decision, tt.approvals, tt.quorum, got, tt.want)
		}
	}
}

func TestSupersededBy(t *testing.T) {
	for reason, want := range map[string]string{
		"superseded by chunk 4f1c-22": "4f1c-22",
		"not needed":                  "",
		"":                            "",
		"Superseded by chunk x":       "",
	} {
		if got := SupersededBy(reason); got != want {
			t.Errorf("SupersededBy(%q) = %q, want %q", reason, got, want)
		}
	}
}
