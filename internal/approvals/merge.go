// Package approvals holds the pure rules of policy approvals shared by the operator and the
// kubectl plugin: which proposals count as approved for display, how an approved rule joins
// a sandbox's policy (as the gateway merges an approved draft chunk), the namespace quorum,
// and the gateway's superseded marker.
package approvals

import (
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
)

// Rule is a network rule approved on the gateway (a draft chunk; Proposal names its
// PolicyProposal).
type Rule struct {
	// Name is the network policy key the rule was proposed under.
	Name string
	// Rule is the approved rule (the edited one after an edit).
	Rule v1alpha1.NetworkPolicyRule
	// Proposal is the PolicyProposal's name.
	Proposal string
}

// Approved returns the rules of sandbox's proposals whose status says the gateway approved
// them, sorted by proposal name so the result does not depend on list order. It is for
// display only (the kubectl plugin's namespace-local view and export): it reads
// PolicyProposal status, which tenants can write, so it must never feed a policy pushed to a
// gateway; the operator merges the gateway's approved draft chunks instead. A proposal
// counts when its gateway status is Approved, or while the operator is sending its approval
// (status.inFlight, with spec.rule when set); its spec decision does not matter otherwise
// (an approval made outside Kubernetes is effective all the same, and an undo removes the
// rule on the gateway first).
func Approved(proposals []v1alpha1.PolicyProposal, sandbox string) []Rule {
	var out []Rule
	for i := range proposals {
		p := &proposals[i]
		sending := p.Status.InFlight != nil && p.Status.InFlight.Decision == v1alpha1.ProposalApproved
		if p.Spec.SandboxRef.Name != sandbox || p.Status.RuleName == "" || p.DeletionTimestamp != nil ||
			(p.Status.GatewayStatus != v1alpha1.ChunkApproved && !sending) {
			continue
		}
		rule := p.Status.ProposedRule
		if sending && p.Spec.Rule != nil {
			rule = p.Spec.Rule
		}
		if rule == nil {
			continue
		}
		out = append(out, Rule{Name: p.Status.RuleName, Rule: *rule.DeepCopy(), Proposal: p.Name})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Proposal < out[j].Proposal })
	return out
}

// Merge returns a copy of spec with rules merged in as the gateway merges an approved chunk
// (AddRule): into the rule of the same name, else into the first rule (by sorted key,
// skipping _provider_ rules) that shares an endpoint, else as a new rule; endpoints and
// binaries already present are not added twice. notInSpec lists the proposals whose rule
// changed the policy, that is, the approvals spec does not contain yet. spec may be nil.
func Merge(spec *v1alpha1.SandboxPolicySpec, rules []Rule) (merged *v1alpha1.SandboxPolicySpec, notInSpec []string) {
	merged = &v1alpha1.SandboxPolicySpec{}
	if spec != nil {
		merged = spec.DeepCopy()
	}
	for _, r := range rules {
		if mergeRule(merged, r.Name, r.Rule) {
			notInSpec = append(notInSpec, r.Proposal)
		}
	}
	return merged, notInSpec
}

// mergeRule merges rule into p under name and reports whether p changed.
func mergeRule(p *v1alpha1.SandboxPolicySpec, name string, rule v1alpha1.NetworkPolicyRule) bool {
	if p.NetworkPolicies == nil {
		p.NetworkPolicies = map[string]v1alpha1.NetworkPolicyRule{}
	}
	key, ok := name, false
	if _, ok = p.NetworkPolicies[name]; !ok {
		key, ok = sharedEndpointRule(p, rule)
	}
	if !ok {
		r := *rule.DeepCopy()
		if r.Name == "" {
			r.Name = name
		}
		for i := range r.Endpoints {
			r.Endpoints[i] = normalized(r.Endpoints[i])
		}
		p.NetworkPolicies[name] = r
		return true
	}
	target := p.NetworkPolicies[key]
	changed := false
	for _, ep := range rule.Endpoints {
		if !slices.ContainsFunc(target.Endpoints, func(have v1alpha1.NetworkEndpoint) bool { return sameEndpoint(have, ep) }) {
			target.Endpoints = append(target.Endpoints, normalized(ep))
			changed = true
		}
	}
	for _, b := range rule.Binaries {
		if !slices.ContainsFunc(target.Binaries, func(have v1alpha1.NetworkBinary) bool { return have.Path == b.Path }) {
			target.Binaries = append(target.Binaries, b)
			changed = true
		}
	}
	p.NetworkPolicies[key] = target
	return changed
}

// sharedEndpointRule is the first rule key, sorted, not a _provider_ rule, with an endpoint
// matching one of rule's host and port pairs.
func sharedEndpointRule(p *v1alpha1.SandboxPolicySpec, rule v1alpha1.NetworkPolicyRule) (string, bool) {
	keys := make([]string, 0, len(p.NetworkPolicies))
	for k := range p.NetworkPolicies {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if strings.HasPrefix(k, "_provider_") {
			continue
		}
		for _, have := range p.NetworkPolicies[k].Endpoints {
			for _, ep := range rule.Endpoints {
				for _, port := range ports(ep) {
					if have.Host == ep.Host && slices.Contains(ports(have), port) {
						return k, true
					}
				}
			}
		}
	}
	return "", false
}

// ports is an endpoint's port and ports, sorted and unique.
func ports(ep v1alpha1.NetworkEndpoint) []v1alpha1.Port {
	out := slices.Clone(ep.Ports)
	if ep.Port != 0 {
		out = append(out, ep.Port)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// normalized is ep with port folded into ports, as the gateway stores a merged rule (so the
// merged policy compares equal to the gateway's revision).
func normalized(ep v1alpha1.NetworkEndpoint) v1alpha1.NetworkEndpoint {
	out := *ep.DeepCopy()
	if out.Port != 0 {
		out.Ports = ports(ep)
		out.Port = 0
	}
	return out
}

// sameEndpoint compares endpoints with port and ports normalized (the gateway stores port
// as ports).
func sameEndpoint(a, b v1alpha1.NetworkEndpoint) bool {
	na, nb := a.DeepCopy(), b.DeepCopy()
	na.Ports, nb.Ports = ports(a), ports(b)
	na.Port, nb.Port = 0, 0
	if len(na.Ports) == 0 {
		na.Ports = nil
	}
	if len(nb.Ports) == 0 {
		nb.Ports = nil
	}
	return reflect.DeepEqual(na, nb)
}

// Quorum is the number of distinct approvers a namespace requires, from its annotations:
// 1 when unset.
func Quorum(namespaceAnnotations map[string]string) (int, error) {
	v, ok := namespaceAnnotations[v1alpha1.AnnotationApprovalQuorum]
	if !ok {
		return 1, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 1 || n > v1alpha1.MaxApprovalQuorum {
		return 0, fmt.Errorf("namespace annotation %s=%q: want a number from 1 to %d", v1alpha1.AnnotationApprovalQuorum, v, v1alpha1.MaxApprovalQuorum)
	}
	return n, nil
}

// QuorumMet reports whether p's approvals reach quorum. With a quorum of 1 the decision
// alone suffices (an approval set by GitOps or kubectl patch records no approver).
func QuorumMet(p *v1alpha1.PolicyProposal, quorum int) bool {
	if p.Spec.Decision != v1alpha1.ProposalApproved {
		return false
	}
	return quorum <= 1 || len(p.Spec.Approvals) >= quorum
}

// supersededPrefix starts the reason the gateway stores on a chunk it auto-rejected because
// a newer submission for the same host, port and binary replaced it.
const supersededPrefix = "superseded by chunk "

// SupersededBy returns the chunk id a rejection reason names as the replacement, or "".
func SupersededBy(rejectionReason string) string {
	id, ok := strings.CutPrefix(rejectionReason, supersededPrefix)
	if !ok {
		return ""
	}
	return strings.TrimSpace(id)
}
