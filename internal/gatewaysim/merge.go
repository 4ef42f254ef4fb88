package gatewaysim

import (
	"fmt"
	"net"
	"slices"
	"sort"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	sandboxv1 "github.com/openshell-operator/openshell-operator/gen/openshell/sandbox/v1"
	openshellv1 "github.com/openshell-operator/openshell-operator/gen/openshell/v1"
)

// alwaysBlockedHost reports hosts no rule may allow: loopback, link-local, unspecified,
// localhost and cloud metadata names.
func alwaysBlockedHost(host string) bool {
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	if h == "localhost" || h == "metadata.google.internal" || h == "metadata" {
		return true
	}
	if ip := net.ParseIP(h); ip != nil {
		return ip.IsLoopback() || ip.IsLinkLocalUnicast() || ip.IsUnspecified()
	}
	return false
}

// validateMergeOp applies the parse rules of merge_operations[i] (semantics §2.3).
func validateMergeOp(i int, op *openshellv1.PolicyMergeOperation) error {
	var msg string
	switch o := op.GetOperation().(type) {
	case *openshellv1.PolicyMergeOperation_AddRule:
		msg = addRuleProblem(o.AddRule)
	case *openshellv1.PolicyMergeOperation_RemoveEndpoint:
		if o.RemoveEndpoint.GetHost() == "" || o.RemoveEndpoint.GetPort() == 0 {
			msg = "remove_endpoint requires host and a non-zero port"
		}
	case *openshellv1.PolicyMergeOperation_RemoveRule:
		if o.RemoveRule.GetRuleName() == "" {
			msg = "remove_rule requires rule_name"
		}
	case *openshellv1.PolicyMergeOperation_AddDenyRules:
		if o.AddDenyRules.GetHost() == "" || o.AddDenyRules.GetPort() == 0 || len(o.AddDenyRules.GetDenyRules()) == 0 {
			msg = "add_deny_rules requires host, a non-zero port and at least one rule"
		}
	case *openshellv1.PolicyMergeOperation_AddAllowRules:
		msg = addAllowRulesProblem(o.AddAllowRules)
	case *openshellv1.PolicyMergeOperation_RemoveBinary:
		if o.RemoveBinary.GetRuleName() == "" || o.RemoveBinary.GetBinaryPath() == "" {
			msg = "remove_binary requires rule_name and binary_path"
		}
	default:
		msg = "operation is required"
	}
	if msg == "" {
		return nil
	}
	return status.Errorf(codes.InvalidArgument, "merge_operations[%d]: %s", i, msg)
}

// addRuleProblem: a rule name, at least one endpoint, and no always-blocked host or
// allowed_ips entry.
func addRuleProblem(a *openshellv1.AddNetworkRule) string {
	if strings.TrimSpace(a.GetRuleName()) == "" {
		return "add_rule requires rule_name"
	}
	if len(a.GetRule().GetEndpoints()) == 0 {
		return "add_rule requires at least one endpoint"
	}
	for _, ep := range a.GetRule().GetEndpoints() {
		if alwaysBlockedHost(ep.GetHost()) {
			return fmt.Sprintf("host %q is always blocked", ep.GetHost())
		}
		for _, ipStr := range ep.GetAllowedIps() {
			if alwaysBlockedHost(strings.Split(ipStr, "/")[0]) {
				return fmt.Sprintf("allowed_ips entry %q is always blocked", ipStr)
			}
		}
	}
	return ""
}

// addAllowRulesProblem: host, port, at least one rule each with allow, no blocked host.
func addAllowRulesProblem(a *openshellv1.AddAllowRules) string {
	if a.GetHost() == "" || a.GetPort() == 0 || len(a.GetRules()) == 0 {
		return "add_allow_rules requires host, a non-zero port and at least one rule"
	}
	for _, r := range a.GetRules() {
		if r.GetAllow() == nil {
			return "every allow rule needs allow"
		}
	}
	if alwaysBlockedHost(a.GetHost()) {
		return fmt.Sprintf("host %q is always blocked", a.GetHost())
	}
	return ""
}

func endpointMatches(ep *sandboxv1.NetworkEndpoint, host string, port uint32) bool {
	if !strings.EqualFold(ep.GetHost(), host) {
		return false
	}
	if ep.GetPort() == port {
		return true
	}
	for _, p := range ep.GetPorts() {
		if p == port {
			return true
		}
	}
	return false
}

func sortedKeys(m map[string]*sandboxv1.NetworkPolicyRule) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// findEndpoint returns the first endpoint (by sorted rule key) serving host:port.
func findEndpoint(p *sandboxv1.SandboxPolicy, host string, port uint32) *sandboxv1.NetworkEndpoint {
	for _, k := range sortedKeys(p.NetworkPolicies) {
		for _, ep := range p.NetworkPolicies[k].GetEndpoints() {
			if endpointMatches(ep, host, port) {
				return ep
			}
		}
	}
	return nil
}

func normalizePorts(ep *sandboxv1.NetworkEndpoint) {
	if ep.Port != 0 {
		found := false
		for _, p := range ep.Ports {
			found = found || p == ep.Port
		}
		if !found {
			ep.Ports = append(ep.Ports, ep.Port)
		}
		ep.Port = 0
	}
}

// applyMergeOp applies one validated merge operation to p in place.
func applyMergeOp(p *sandboxv1.SandboxPolicy, op *openshellv1.PolicyMergeOperation) error {
	if p.NetworkPolicies == nil {
		p.NetworkPolicies = map[string]*sandboxv1.NetworkPolicyRule{}
	}
	switch o := op.GetOperation().(type) {
	case *openshellv1.PolicyMergeOperation_AddRule:
		addRule(p, o.AddRule)
	case *openshellv1.PolicyMergeOperation_RemoveRule:
		return removeRule(p, o.RemoveRule)
	case *openshellv1.PolicyMergeOperation_RemoveEndpoint:
		return removeEndpoint(p, o.RemoveEndpoint)
	case *openshellv1.PolicyMergeOperation_AddAllowRules:
		return addAllowRules(p, o.AddAllowRules)
	case *openshellv1.PolicyMergeOperation_AddDenyRules:
		return addDenyRules(p, o.AddDenyRules)
	case *openshellv1.PolicyMergeOperation_RemoveBinary:
		return removeBinary(p, o.RemoveBinary)
	}
	return nil
}

// addRule merges into the rule of the same name, else into the first rule (by sorted key,
// provider rules skipped) that shares an endpoint, else inserts the rule.
func addRule(p *sandboxv1.SandboxPolicy, add *openshellv1.AddNetworkRule) {
	rule := proto.Clone(add.GetRule()).(*sandboxv1.NetworkPolicyRule)
	for _, ep := range rule.Endpoints {
		normalizePorts(ep)
	}
	target := p.NetworkPolicies[add.GetRuleName()]
	if target == nil {
		target = ruleSharingEndpoint(p, rule)
	}
	if target == nil {
		if rule.Name == "" {
			rule.Name = add.GetRuleName()
		}
		p.NetworkPolicies[add.GetRuleName()] = rule
		return
	}
	mergeInto(target, rule)
}

// ruleSharingEndpoint is the first non-provider rule, by sorted key, serving one of the
// host:port pairs of rule.
func ruleSharingEndpoint(p *sandboxv1.SandboxPolicy, rule *sandboxv1.NetworkPolicyRule) *sandboxv1.NetworkPolicyRule {
	for _, k := range sortedKeys(p.NetworkPolicies) {
		if strings.HasPrefix(k, providerRulePrefix) {
			continue
		}
		if sharesEndpoint(p.NetworkPolicies[k], rule) {
			return p.NetworkPolicies[k]
		}
	}
	return nil
}

func sharesEndpoint(have, rule *sandboxv1.NetworkPolicyRule) bool {
	for _, ep := range rule.Endpoints {
		for _, port := range ep.Ports {
			for _, h := range have.Endpoints {
				if endpointMatches(h, ep.Host, port) {
					return true
				}
			}
		}
	}
	return false
}

// mergeInto appends the endpoints and binaries of rule that target lacks.
func mergeInto(target, rule *sandboxv1.NetworkPolicyRule) {
	for _, ep := range rule.Endpoints {
		if !slices.ContainsFunc(target.Endpoints, func(h *sandboxv1.NetworkEndpoint) bool { return proto.Equal(h, ep) }) {
			target.Endpoints = append(target.Endpoints, ep)
		}
	}
	for _, b := range rule.Binaries {
		if !slices.ContainsFunc(target.Binaries, func(h *sandboxv1.NetworkBinary) bool { return h.GetPath() == b.GetPath() }) {
			target.Binaries = append(target.Binaries, b)
		}
	}
}

func removeRule(p *sandboxv1.SandboxPolicy, rm *openshellv1.RemoveNetworkRule) error {
	if _, ok := p.NetworkPolicies[rm.GetRuleName()]; !ok {
		return status.Errorf(codes.FailedPrecondition, "rule '%s' not found", rm.GetRuleName())
	}
	delete(p.NetworkPolicies, rm.GetRuleName())
	return nil
}

// removeEndpoint drops host:port from every rule (or the named one); a rule left without
// endpoints is removed.
func removeEndpoint(p *sandboxv1.SandboxPolicy, re *openshellv1.RemoveNetworkEndpoint) error {
	removed := false
	for _, k := range sortedKeys(p.NetworkPolicies) {
		if re.GetRuleName() != "" && k != re.GetRuleName() {
			continue
		}
		rule := p.NetworkPolicies[k]
		kept := slices.DeleteFunc(slices.Clone(rule.Endpoints), func(ep *sandboxv1.NetworkEndpoint) bool {
			return endpointMatches(ep, re.GetHost(), re.GetPort())
		})
		removed = removed || len(kept) != len(rule.Endpoints)
		rule.Endpoints = kept
		if len(kept) == 0 {
			delete(p.NetworkPolicies, k)
		}
	}
	if !removed {
		return status.Errorf(codes.FailedPrecondition, "endpoint %s:%d not found", re.GetHost(), re.GetPort())
	}
	return nil
}

// l7Endpoint finds the endpoint serving host:port and requires L7 inspection on it.
func l7Endpoint(p *sandboxv1.SandboxPolicy, host string, port uint32) (*sandboxv1.NetworkEndpoint, error) {
	ep := findEndpoint(p, host, port)
	if ep == nil {
		return nil, status.Errorf(codes.FailedPrecondition, "endpoint %s:%d not found", host, port)
	}
	if ep.GetProtocol() == "" {
		return nil, status.Errorf(codes.FailedPrecondition, "endpoint %s:%d has no L7 inspection", host, port)
	}
	return ep, nil
}

func addAllowRules(p *sandboxv1.SandboxPolicy, add *openshellv1.AddAllowRules) error {
	ep, err := l7Endpoint(p, add.GetHost(), add.GetPort())
	if err != nil {
		return err
	}
	ep.Rules = append(ep.Rules, add.GetRules()...)
	return nil
}

func addDenyRules(p *sandboxv1.SandboxPolicy, add *openshellv1.AddDenyRules) error {
	ep, err := l7Endpoint(p, add.GetHost(), add.GetPort())
	if err != nil {
		return err
	}
	if len(ep.Rules) == 0 && ep.GetAccess() == "" {
		return status.Errorf(codes.FailedPrecondition, "endpoint %s:%d has no allow base for deny rules", add.GetHost(), add.GetPort())
	}
	ep.DenyRules = append(ep.DenyRules, add.GetDenyRules()...)
	return nil
}

func removeBinary(p *sandboxv1.SandboxPolicy, rm *openshellv1.RemoveNetworkBinary) error {
	rule := p.NetworkPolicies[rm.GetRuleName()]
	if rule == nil {
		return status.Errorf(codes.FailedPrecondition, "rule '%s' not found", rm.GetRuleName())
	}
	rule.Binaries = slices.DeleteFunc(rule.Binaries, func(b *sandboxv1.NetworkBinary) bool { return b.GetPath() == rm.GetBinaryPath() })
	return nil
}

// mergePolicy applies merge operations to the latest revision, else spec.policy, else the
// default policy (semantics §2.3).
func (st *state) mergePolicy(r *sandboxRec, ops []*openshellv1.PolicyMergeOperation) (*openshellv1.UpdateConfigResponse, error) {
	for i, op := range ops {
		if err := validateMergeOp(i, op); err != nil {
			return nil, err
		}
	}
	if st.globalPolicyActive() {
		return nil, status.Error(codes.FailedPrecondition, "policy is managed globally; delete global policy before sandbox policy update")
	}
	base := &sandboxv1.SandboxPolicy{}
	if l := st.latest(r.sb.Metadata.Id); l != nil {
		base = proto.Clone(l.policy).(*sandboxv1.SandboxPolicy)
	} else if r.sb.Spec.Policy != nil {
		base = proto.Clone(r.sb.Spec.Policy).(*sandboxv1.SandboxPolicy)
	}
	applyIdentityDefaults(base)
	before := PolicyHash(base)
	for _, op := range ops {
		if err := applyMergeOp(base, op); err != nil {
			return nil, err
		}
	}
	if baseline := r.sb.Spec.Policy; baseline != nil {
		if err := validateStaticFieldsUnchanged(baseline, base); err != nil {
			return nil, err
		}
	}
	if err := validatePolicySafety(base); err != nil {
		return nil, err
	}
	if st.latest(r.sb.Metadata.Id) == nil && PolicyHash(base) == before {
		return &openshellv1.UpdateConfigResponse{}, nil
	}
	rev := st.insertRevision(r.sb.Metadata.Id, base, openshellv1.PolicyStatus_POLICY_STATUS_PENDING)
	st.notify(r.sb.Metadata.Id)
	return &openshellv1.UpdateConfigResponse{Version: rev.version, PolicyHash: rev.hash}, nil
}
