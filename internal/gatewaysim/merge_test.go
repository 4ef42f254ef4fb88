package gatewaysim

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	sandboxv1 "github.com/openshell-operator/openshell-operator/gen/openshell/sandbox/v1"
	openshellv1 "github.com/openshell-operator/openshell-operator/gen/openshell/v1"
)

func ep(host string, ports ...uint32) *sandboxv1.NetworkEndpoint {
	return &sandboxv1.NetworkEndpoint{Host: host, Ports: ports}
}

func bins(paths ...string) []*sandboxv1.NetworkBinary { return binaries(paths...) }

// mergeBase is the policy every case starts from.
func mergeBase() *sandboxv1.SandboxPolicy {
	return &sandboxv1.SandboxPolicy{NetworkPolicies: map[string]*sandboxv1.NetworkPolicyRule{
		"api": {Name: "api", Endpoints: []*sandboxv1.NetworkEndpoint{
			{Host: "api.example.com", Ports: []uint32{443}, Protocol: "rest", Access: "read-only"},
			{Host: "raw.example.com", Ports: []uint32{443}},
		}, Binaries: bins("/usr/bin/curl")},
		"_provider_gh": {Name: "_provider_gh", Endpoints: []*sandboxv1.NetworkEndpoint{ep("github.com", 443)}},
		"git":          {Name: "git", Endpoints: []*sandboxv1.NetworkEndpoint{ep("github.com", 443), ep("gitlab.com", 22)}},
	}}
}

func addRuleOp(name string, rule *sandboxv1.NetworkPolicyRule) *openshellv1.PolicyMergeOperation {
	return &openshellv1.PolicyMergeOperation{Operation: &openshellv1.PolicyMergeOperation_AddRule{AddRule: &openshellv1.AddNetworkRule{RuleName: name, Rule: rule}}}
}

// TestApplyMergeOp pins the behaviour of every merge operation on one policy (the result
// policy, or the error code).
func TestApplyMergeOp(t *testing.T) {
	allow := []*sandboxv1.L7Rule{{Allow: &sandboxv1.L7Allow{Method: "GET", Path: "/v1/**"}}}
	deny := []*sandboxv1.L7DenyRule{{Method: "POST", Path: "/admin"}}
	cases := []struct {
		name string
		op   *openshellv1.PolicyMergeOperation
		want func(p *sandboxv1.SandboxPolicy) // edits mergeBase() into the expected result
		code codes.Code
	}{
		{"add new rule, port normalized into ports, name filled", addRuleOp("pypi", &sandboxv1.NetworkPolicyRule{Endpoints: []*sandboxv1.NetworkEndpoint{{Host: "pypi.org", Port: 443}}}),
			func(p *sandboxv1.SandboxPolicy) {
				p.NetworkPolicies["pypi"] = &sandboxv1.NetworkPolicyRule{Name: "pypi", Endpoints: []*sandboxv1.NetworkEndpoint{ep("pypi.org", 443)}}
			}, codes.OK},
		{"add into the rule of the same name, duplicates skipped", addRuleOp("api", &sandboxv1.NetworkPolicyRule{Endpoints: []*sandboxv1.NetworkEndpoint{{Host: "raw.example.com", Port: 443}, ep("cdn.example.com", 443)}, Binaries: bins("/usr/bin/curl", "/usr/bin/wget")}),
			func(p *sandboxv1.SandboxPolicy) {
				p.NetworkPolicies["api"].Endpoints = append(p.NetworkPolicies["api"].Endpoints, ep("cdn.example.com", 443))
				p.NetworkPolicies["api"].Binaries = bins("/usr/bin/curl", "/usr/bin/wget")
			}, codes.OK},
		{"add into the first rule sharing an endpoint, provider rules skipped", addRuleOp("new", &sandboxv1.NetworkPolicyRule{Endpoints: []*sandboxv1.NetworkEndpoint{ep("GitHub.com", 443)}, Binaries: bins("/usr/bin/git")}),
			func(p *sandboxv1.SandboxPolicy) {
				p.NetworkPolicies["git"].Endpoints = append(p.NetworkPolicies["git"].Endpoints, ep("GitHub.com", 443))
				p.NetworkPolicies["git"].Binaries = bins("/usr/bin/git")
			}, codes.OK},
		{"remove rule", &openshellv1.PolicyMergeOperation{Operation: &openshellv1.PolicyMergeOperation_RemoveRule{RemoveRule: &openshellv1.RemoveNetworkRule{RuleName: "git"}}},
			func(p *sandboxv1.SandboxPolicy) { delete(p.NetworkPolicies, "git") }, codes.OK},
		{"remove missing rule", &openshellv1.PolicyMergeOperation{Operation: &openshellv1.PolicyMergeOperation_RemoveRule{RemoveRule: &openshellv1.RemoveNetworkRule{RuleName: "nope"}}}, nil, codes.FailedPrecondition},
		{"remove endpoint everywhere, emptied rules dropped", &openshellv1.PolicyMergeOperation{Operation: &openshellv1.PolicyMergeOperation_RemoveEndpoint{RemoveEndpoint: &openshellv1.RemoveNetworkEndpoint{Host: "github.com", Port: 443}}},
			func(p *sandboxv1.SandboxPolicy) {
				delete(p.NetworkPolicies, "_provider_gh")
				p.NetworkPolicies["git"].Endpoints = []*sandboxv1.NetworkEndpoint{ep("gitlab.com", 22)}
			}, codes.OK},
		{"remove endpoint of one rule", &openshellv1.PolicyMergeOperation{Operation: &openshellv1.PolicyMergeOperation_RemoveEndpoint{RemoveEndpoint: &openshellv1.RemoveNetworkEndpoint{RuleName: "git", Host: "github.com", Port: 443}}},
			func(p *sandboxv1.SandboxPolicy) {
				p.NetworkPolicies["git"].Endpoints = []*sandboxv1.NetworkEndpoint{ep("gitlab.com", 22)}
			}, codes.OK},
		{"remove missing endpoint", &openshellv1.PolicyMergeOperation{Operation: &openshellv1.PolicyMergeOperation_RemoveEndpoint{RemoveEndpoint: &openshellv1.RemoveNetworkEndpoint{Host: "nope", Port: 1}}}, nil, codes.FailedPrecondition},
		{"add allow rules", &openshellv1.PolicyMergeOperation{Operation: &openshellv1.PolicyMergeOperation_AddAllowRules{AddAllowRules: &openshellv1.AddAllowRules{Host: "api.example.com", Port: 443, Rules: allow}}},
			func(p *sandboxv1.SandboxPolicy) { p.NetworkPolicies["api"].Endpoints[0].Rules = allow }, codes.OK},
		{"allow rules without L7", &openshellv1.PolicyMergeOperation{Operation: &openshellv1.PolicyMergeOperation_AddAllowRules{AddAllowRules: &openshellv1.AddAllowRules{Host: "raw.example.com", Port: 443, Rules: allow}}}, nil, codes.FailedPrecondition},
		{"allow rules on a missing endpoint", &openshellv1.PolicyMergeOperation{Operation: &openshellv1.PolicyMergeOperation_AddAllowRules{AddAllowRules: &openshellv1.AddAllowRules{Host: "x", Port: 443, Rules: allow}}}, nil, codes.FailedPrecondition},
		{"add deny rules on an access preset", &openshellv1.PolicyMergeOperation{Operation: &openshellv1.PolicyMergeOperation_AddDenyRules{AddDenyRules: &openshellv1.AddDenyRules{Host: "api.example.com", Port: 443, DenyRules: deny}}},
			func(p *sandboxv1.SandboxPolicy) { p.NetworkPolicies["api"].Endpoints[0].DenyRules = deny }, codes.OK},
		{"deny rules without L7", &openshellv1.PolicyMergeOperation{Operation: &openshellv1.PolicyMergeOperation_AddDenyRules{AddDenyRules: &openshellv1.AddDenyRules{Host: "raw.example.com", Port: 443, DenyRules: deny}}}, nil, codes.FailedPrecondition},
		{"remove binary", &openshellv1.PolicyMergeOperation{Operation: &openshellv1.PolicyMergeOperation_RemoveBinary{RemoveBinary: &openshellv1.RemoveNetworkBinary{RuleName: "api", BinaryPath: "/usr/bin/curl"}}},
			func(p *sandboxv1.SandboxPolicy) { p.NetworkPolicies["api"].Binaries = nil }, codes.OK},
		{"remove binary of a missing rule", &openshellv1.PolicyMergeOperation{Operation: &openshellv1.PolicyMergeOperation_RemoveBinary{RemoveBinary: &openshellv1.RemoveNetworkBinary{RuleName: "nope", BinaryPath: "/x"}}}, nil, codes.FailedPrecondition},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := mergeBase()
			err := applyMergeOp(got, tc.op)
			if status.Code(err) != tc.code {
				t.Fatalf("code %v (%v), want %v", status.Code(err), err, tc.code)
			}
			if tc.want == nil {
				return
			}
			want := mergeBase()
			tc.want(want)
			if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
				t.Fatalf("merged policy (-want +got):\n%s", diff)
			}
		})
	}
	// The operation's own rule is never aliased into the policy.
	rule := &sandboxv1.NetworkPolicyRule{Endpoints: []*sandboxv1.NetworkEndpoint{ep("solo.example.com", 443)}}
	p := mergeBase()
	if err := applyMergeOp(p, addRuleOp("solo", rule)); err != nil {
		t.Fatal(err)
	}
	p.NetworkPolicies["solo"].Endpoints[0].Host = "changed"
	if rule.Endpoints[0].Host != "solo.example.com" || !proto.Equal(rule.Endpoints[0], ep("solo.example.com", 443)) {
		t.Fatal("applyMergeOp must clone the added rule")
	}
}

// TestValidateMergeOp: each parse rule of semantics §2.3 is INVALID_ARGUMENT naming the index.
func TestValidateMergeOp(t *testing.T) {
	rule := func(host string, ips ...string) *sandboxv1.NetworkPolicyRule {
		return &sandboxv1.NetworkPolicyRule{Endpoints: []*sandboxv1.NetworkEndpoint{{Host: host, Port: 443, AllowedIps: ips}}}
	}
	allow := []*sandboxv1.L7Rule{{Allow: &sandboxv1.L7Allow{Method: "GET"}}}
	cases := []struct {
		name string
		op   *openshellv1.PolicyMergeOperation
		want string // "" means valid
	}{
		{"add rule", addRuleOp("x", rule("x.example.com", "10.0.0.0/8")), ""},
		{"add rule without name", addRuleOp(" ", rule("x.example.com")), "merge_operations[3]: add_rule requires rule_name"},
		{"add rule without endpoints", addRuleOp("x", &sandboxv1.NetworkPolicyRule{}), "merge_operations[3]: add_rule requires at least one endpoint"},
		{"add rule to localhost", addRuleOp("x", rule("LOCALHOST")), `merge_operations[3]: host "LOCALHOST" is always blocked`},
		{"add rule with loopback allowed_ips", addRuleOp("x", rule("x.example.com", "127.0.0.0/8")), `merge_operations[3]: allowed_ips entry "127.0.0.0/8" is always blocked`},
		{"remove endpoint without port", &openshellv1.PolicyMergeOperation{Operation: &openshellv1.PolicyMergeOperation_RemoveEndpoint{RemoveEndpoint: &openshellv1.RemoveNetworkEndpoint{Host: "x"}}}, "merge_operations[3]: remove_endpoint requires host and a non-zero port"},
		{"remove rule without name", &openshellv1.PolicyMergeOperation{Operation: &openshellv1.PolicyMergeOperation_RemoveRule{RemoveRule: &openshellv1.RemoveNetworkRule{}}}, "merge_operations[3]: remove_rule requires rule_name"},
		{"deny rules without rules", &openshellv1.PolicyMergeOperation{Operation: &openshellv1.PolicyMergeOperation_AddDenyRules{AddDenyRules: &openshellv1.AddDenyRules{Host: "x", Port: 1}}}, "merge_operations[3]: add_deny_rules requires host, a non-zero port and at least one rule"},
		{"allow rules", &openshellv1.PolicyMergeOperation{Operation: &openshellv1.PolicyMergeOperation_AddAllowRules{AddAllowRules: &openshellv1.AddAllowRules{Host: "x", Port: 1, Rules: allow}}}, ""},
		{"allow rule without allow", &openshellv1.PolicyMergeOperation{Operation: &openshellv1.PolicyMergeOperation_AddAllowRules{AddAllowRules: &openshellv1.AddAllowRules{Host: "x", Port: 1, Rules: []*sandboxv1.L7Rule{{}}}}}, "merge_operations[3]: every allow rule needs allow"},
		{"allow rules to a link-local host", &openshellv1.PolicyMergeOperation{Operation: &openshellv1.PolicyMergeOperation_AddAllowRules{AddAllowRules: &openshellv1.AddAllowRules{Host: "169.254.169.254", Port: 80, Rules: allow}}}, `merge_operations[3]: host "169.254.169.254" is always blocked`},
		{"remove binary without path", &openshellv1.PolicyMergeOperation{Operation: &openshellv1.PolicyMergeOperation_RemoveBinary{RemoveBinary: &openshellv1.RemoveNetworkBinary{RuleName: "x"}}}, "merge_operations[3]: remove_binary requires rule_name and binary_path"},
		{"no operation", &openshellv1.PolicyMergeOperation{}, "merge_operations[3]: operation is required"},
	}
	for _, tc := range cases {
		err := validateMergeOp(3, tc.op)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: unexpected %v", tc.name, err)
		case tc.want != "" && (status.Code(err) != codes.InvalidArgument || status.Convert(err).Message() != tc.want):
			t.Errorf("%s: got %v, want INVALID_ARGUMENT %q", tc.name, err, tc.want)
		}
	}
}
