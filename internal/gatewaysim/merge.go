package gatewaysim

import (
	"fmt"
	"net"
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

func validateMergeOp(i int, op *openshellv1.PolicyMergeOperation) error {
	bad := func(format string, args ...any) error {
		return status.Errorf(codes.InvalidArgument, "merge_operations[%d]: %s", i, fmt.Sprintf(format, args...))
	}
	switch o := op.GetOperation().(type) {
	case *openshellv1.PolicyMergeOperation_AddRule:
		if strings.TrimSpace(o.AddRule.GetRuleName()) == "" {
			return bad("add_rule requires rule_name")
		}
		if len(o.AddRule.GetRule().GetEndpoints()) == 0 {
			return bad("add_rule requires at least one endpoint")
		}
		for _, ep := range o.AddRule.GetRule().GetEndpoints() {
			if alwaysBlockedHost(ep.GetHost()) {
				return bad("host %q is always blocked", ep.GetHost())
			}
			for _, ipStr := range ep.GetAllowedIps() {
				if alwaysBlockedHost(strings.Split(ipStr, "/")[0]) {
					return bad("allowed_ips entry %q is always blocked", ipStr)
				}
			}
		}
	case *openshellv1.PolicyMergeOperation_RemoveEndpoint:
		if o.RemoveEndpoint.GetHost() == "" || o.RemoveEndpoint.GetPort() == 0 {
			return bad("remove_endpoint requires host and a non-zero port")
		}
	case *openshellv1.PolicyMergeOperation_RemoveRule:
		if o.RemoveRule.GetRuleName() == "" {
			return bad("remove_rule requires rule_name")
		}
	case *openshellv1.PolicyMergeOperation_AddDenyRules:
		if o.AddDenyRules.GetHost() == "" || o.AddDenyRules.GetPort() == 0 || len(o.AddDenyRules.GetDenyRules()) == 0 {
			return bad("add_deny_rules requires host, a non-zero port and at least one rule")
		}
	case *openshellv1.PolicyMergeOperation_AddAllowRules:
		a := o.AddAllowRules
		if a.GetHost() == "" || a.GetPort() == 0 || len(a.GetRules()) == 0 {
			return bad("add_allow_rules requires host, a non-zero port and at least one rule")
		}
		for _, r := range a.GetRules() {
			if r.GetAllow() == nil {
				return bad("every allow rule needs allow")
			}
		}
		if alwaysBlockedHost(a.GetHost()) {
			return bad("host %q is always blocked", a.GetHost())
		}
	case *openshellv1.PolicyMergeOperation_RemoveBinary:
		if o.RemoveBinary.GetRuleName() == "" || o.RemoveBinary.GetBinaryPath() == "" {
			return bad("remove_binary requires rule_name and binary_path")
		}
	default:
		return bad("operation is required")
	}
	return nil
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

func applyMergeOp(p *sandboxv1.SandboxPolicy, op *openshellv1.PolicyMergeOperation) error {
	if p.NetworkPolicies == nil {
		p.NetworkPolicies = map[string]*sandboxv1.NetworkPolicyRule{}
	}
	switch o := op.GetOperation().(type) {
	case *openshellv1.PolicyMergeOperation_AddRule:
		rule := proto.Clone(o.AddRule.GetRule()).(*sandboxv1.NetworkPolicyRule)
		for _, ep := range rule.Endpoints {
			normalizePorts(ep)
		}
		target := p.NetworkPolicies[o.AddRule.GetRuleName()]
		if target == nil {
			for _, k := range sortedKeys(p.NetworkPolicies) {
				if strings.HasPrefix(k, "_provider_") {
					continue
				}
				for _, ep := range rule.Endpoints {
					for _, port := range ep.Ports {
						for _, have := range p.NetworkPolicies[k].Endpoints {
							if target == nil && endpointMatches(have, ep.Host, port) {
								target = p.NetworkPolicies[k]
							}
						}
					}
				}
			}
		}
		if target == nil {
			if rule.Name == "" {
				rule.Name = o.AddRule.GetRuleName()
			}
			p.NetworkPolicies[o.AddRule.GetRuleName()] = rule
			return nil
		}
		for _, ep := range rule.Endpoints {
			dup := false
			for _, have := range target.Endpoints {
				dup = dup || proto.Equal(have, ep)
			}
			if !dup {
				target.Endpoints = append(target.Endpoints, ep)
			}
		}
		for _, b := range rule.Binaries {
			dup := false
			for _, have := range target.Binaries {
				dup = dup || have.GetPath() == b.GetPath()
			}
			if !dup {
				target.Binaries = append(target.Binaries, b)
			}
		}
	case *openshellv1.PolicyMergeOperation_RemoveRule:
		if _, ok := p.NetworkPolicies[o.RemoveRule.GetRuleName()]; !ok {
			return status.Errorf(codes.FailedPrecondition, "rule '%s' not found", o.RemoveRule.GetRuleName())
		}
		delete(p.NetworkPolicies, o.RemoveRule.GetRuleName())
	case *openshellv1.PolicyMergeOperation_RemoveEndpoint:
		re := o.RemoveEndpoint
		removed := false
		for _, k := range sortedKeys(p.NetworkPolicies) {
			if re.GetRuleName() != "" && k != re.GetRuleName() {
				continue
			}
			rule := p.NetworkPolicies[k]
			var kept []*sandboxv1.NetworkEndpoint
			for _, ep := range rule.Endpoints {
				if endpointMatches(ep, re.GetHost(), re.GetPort()) {
					removed = true
					continue
				}
				kept = append(kept, ep)
			}
			rule.Endpoints = kept
			if len(kept) == 0 {
				delete(p.NetworkPolicies, k)
			}
		}
		if !removed {
			return status.Errorf(codes.FailedPrecondition, "endpoint %s:%d not found", re.GetHost(), re.GetPort())
		}
	case *openshellv1.PolicyMergeOperation_AddAllowRules:
		ep := findEndpoint(p, o.AddAllowRules.GetHost(), o.AddAllowRules.GetPort())
		if ep == nil {
			return status.Errorf(codes.FailedPrecondition, "endpoint %s:%d not found", o.AddAllowRules.GetHost(), o.AddAllowRules.GetPort())
		}
		if ep.GetProtocol() == "" {
			return status.Errorf(codes.FailedPrecondition, "endpoint %s:%d has no L7 inspection", o.AddAllowRules.GetHost(), o.AddAllowRules.GetPort())
		}
		ep.Rules = append(ep.Rules, o.AddAllowRules.GetRules()...)
	case *openshellv1.PolicyMergeOperation_AddDenyRules:
		ep := findEndpoint(p, o.AddDenyRules.GetHost(), o.AddDenyRules.GetPort())
		if ep == nil {
			return status.Errorf(codes.FailedPrecondition, "endpoint %s:%d not found", o.AddDenyRules.GetHost(), o.AddDenyRules.GetPort())
		}
		if ep.GetProtocol() == "" {
			return status.Errorf(codes.FailedPrecondition, "endpoint %s:%d has no L7 inspection", o.AddDenyRules.GetHost(), o.AddDenyRules.GetPort())
		}
		if len(ep.Rules) == 0 && ep.GetAccess() == "" {
			return status.Errorf(codes.FailedPrecondition, "endpoint %s:%d has no allow base for deny rules", o.AddDenyRules.GetHost(), o.AddDenyRules.GetPort())
		}
		ep.DenyRules = append(ep.DenyRules, o.AddDenyRules.GetDenyRules()...)
	case *openshellv1.PolicyMergeOperation_RemoveBinary:
		rule := p.NetworkPolicies[o.RemoveBinary.GetRuleName()]
		if rule == nil {
			return status.Errorf(codes.FailedPrecondition, "rule '%s' not found", o.RemoveBinary.GetRuleName())
		}
		var kept []*sandboxv1.NetworkBinary
		for _, b := range rule.Binaries {
			if b.GetPath() != o.RemoveBinary.GetBinaryPath() {
				kept = append(kept, b)
			}
		}
		rule.Binaries = kept
	}
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
