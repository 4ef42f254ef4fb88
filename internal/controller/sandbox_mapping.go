package controller

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	corev1 "k8s.io/api/core/v1"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"

	sandboxv1 "github.com/openshell-operator/openshell-operator/gen/openshell/sandbox/v1"
	openshellv1 "github.com/openshell-operator/openshell-operator/gen/openshell/v1"
)

// sandboxProcessIdentity is what the gateway fills into an empty policy process identity
// (gateway-semantics §1.1 step 6); we apply it before comparing so it is not seen as drift.
const sandboxProcessIdentity = "sandbox"

// sandboxResourcesStruct renders limits and requests in the shape a pod's `resources` has,
// which is what the gateway's Kubernetes driver copies into the agent container.
func sandboxResourcesStruct(limits, requests map[string]string) (*structpb.Struct, error) {
	if len(limits) == 0 && len(requests) == 0 {
		return nil, nil
	}
	m := map[string]any{}
	if len(limits) > 0 {
		m["limits"] = stringMapToAny(limits)
	}
	if len(requests) > 0 {
		m["requests"] = stringMapToAny(requests)
	}
	s, err := structpb.NewStruct(m)
	if err != nil {
		return nil, fmt.Errorf("encode sandbox resources: %w", err)
	}
	return s, nil
}

func stringMapToAny(in map[string]string) map[string]any {
	out := make(map[string]any, len(in))
	for k, v := range in {
		out[k] = v
	}
	return out
}

// normalizeSandboxPolicy returns a copy with the gateway's defaults applied, so that the
// policy we send and the one the gateway stores compare equal.
func normalizeSandboxPolicy(p *sandboxv1.SandboxPolicy) *sandboxv1.SandboxPolicy {
	if p == nil {
		return nil
	}
	out := proto.Clone(p).(*sandboxv1.SandboxPolicy)
	if out.Process == nil {
		out.Process = &sandboxv1.ProcessPolicy{}
	}
	if out.Process.RunAsUser == "" {
		out.Process.RunAsUser = sandboxProcessIdentity
	}
	if out.Process.RunAsGroup == "" {
		out.Process.RunAsGroup = sandboxProcessIdentity
	}
	return out
}

// sandboxPolicyHash is a deterministic hash of the normalized policy. It is our own hash
// (recorded in status), not the gateway's, so it is only compared with itself.
func sandboxPolicyHash(p *sandboxv1.SandboxPolicy) string {
	if p == nil {
		return ""
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(normalizeSandboxPolicy(p))
	if err != nil {
		// A policy message always marshals; an empty hash only forces a re-push.
		return ""
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// sandboxPolicyStaticChanges lists why desired cannot be applied over the gateway's
// baseline with UpdateConfig (gateway-semantics §2.2): filesystem paths may only be added,
// include_workdir, landlock and process must be equal. An empty result means in place.
func sandboxPolicyStaticChanges(baseline, desired *sandboxv1.SandboxPolicy) []string {
	if baseline == nil || desired == nil {
		// No baseline: the first UpdateConfig backfills it. No desired policy: the
		// gateway (or its supervisor) owns it; removing ours never tears a sandbox down.
		return nil
	}
	b, d := normalizeSandboxPolicy(baseline), normalizeSandboxPolicy(desired)
	var out []string
	switch {
	case b.Filesystem != nil && d.Filesystem == nil:
		out = append(out, "policy filesystem removed")
	case b.Filesystem != nil:
		if b.Filesystem.IncludeWorkdir != d.Filesystem.IncludeWorkdir {
			out = append(out, "policy filesystem includeWorkdir changed")
		}
		if !isSubset(b.Filesystem.ReadOnly, d.Filesystem.ReadOnly) {
			out = append(out, "policy filesystem readOnly path removed")
		}
		if !isSubset(b.Filesystem.ReadWrite, d.Filesystem.ReadWrite) {
			out = append(out, "policy filesystem readWrite path removed")
		}
	}
	if !proto.Equal(b.Landlock, d.Landlock) {
		out = append(out, "policy landlock changed")
	}
	if !proto.Equal(b.Process, d.Process) {
		out = append(out, "policy process changed")
	}
	return out
}

func isSubset(sub, set []string) bool {
	for _, s := range sub {
		if !slices.Contains(set, s) {
			return false
		}
	}
	return true
}

// sandboxSpecDiff is what separates the gateway's sandbox from the desired one.
type sandboxSpecDiff struct {
	// Attach and Detach are provider names to change in place (sorted).
	Attach, Detach []string
	// Recreate lists, in a stable order, the differences only a new sandbox can apply.
	Recreate []string
}

// InPlace reports whether provider changes are pending.
func (d sandboxSpecDiff) InPlace() bool { return len(d.Attach) > 0 || len(d.Detach) > 0 }

// NeedsRecreate reports whether a new sandbox is needed.
func (d sandboxSpecDiff) NeedsRecreate() bool { return len(d.Recreate) > 0 }

// diffSandboxSpec compares the desired spec with the gateway's stored spec. The gateway's
// spec.policy is the create-time baseline forever, so the policy is only checked for
// static (non-updatable) changes here; live policy drift is compared by hash elsewhere.
func diffSandboxSpec(desired, observed *openshellv1.SandboxSpec) sandboxSpecDiff {
	var d sandboxSpecDiff
	if desired == nil {
		desired = &openshellv1.SandboxSpec{}
	}
	if observed == nil {
		observed = &openshellv1.SandboxSpec{}
	}
	want, have := stringSet(desired.Providers), stringSet(observed.Providers)
	for p := range want {
		if _, ok := have[p]; !ok {
			d.Attach = append(d.Attach, p)
		}
	}
	for p := range have {
		if _, ok := want[p]; !ok {
			d.Detach = append(d.Detach, p)
		}
	}
	sort.Strings(d.Attach)
	sort.Strings(d.Detach)

	if desired.LogLevel != observed.LogLevel {
		d.Recreate = append(d.Recreate, "logLevel")
	}
	if !maps.Equal(desired.Environment, observed.Environment) {
		d.Recreate = append(d.Recreate, "environment")
	}
	if desired.Gpu != observed.Gpu {
		d.Recreate = append(d.Recreate, "gpu")
	}
	if desired.GpuDevice != observed.GpuDevice {
		d.Recreate = append(d.Recreate, "gpuDevice")
	}
	d.Recreate = append(d.Recreate, diffSandboxTemplate(desired.Template, observed.Template)...)
	d.Recreate = append(d.Recreate, sandboxPolicyStaticChanges(observed.Policy, desired.Policy)...)
	return d
}

func diffSandboxTemplate(desired, observed *openshellv1.SandboxTemplate) []string {
	if desired == nil {
		desired = &openshellv1.SandboxTemplate{}
	}
	if observed == nil {
		observed = &openshellv1.SandboxTemplate{}
	}
	var out []string
	// An empty image means "the gateway's default", which the gateway fills in at create.
	if desired.Image != "" && desired.Image != observed.Image {
		out = append(out, "image")
	}
	if desired.RuntimeClassName != observed.RuntimeClassName {
		out = append(out, "runtimeClassName")
	}
	if desired.AgentSocket != observed.AgentSocket {
		out = append(out, "agentSocket")
	}
	if !maps.Equal(desired.Labels, observed.Labels) {
		out = append(out, "podLabels")
	}
	if !maps.Equal(desired.Annotations, observed.Annotations) {
		out = append(out, "podAnnotations")
	}
	if !maps.Equal(desired.Environment, observed.Environment) {
		out = append(out, "template environment")
	}
	if !proto.Equal(desired.Resources, observed.Resources) {
		out = append(out, "resources")
	}
	if !proto.Equal(desired.VolumeClaimTemplates, observed.VolumeClaimTemplates) {
		out = append(out, "volumeClaimTemplates")
	}
	if desired.GetUserNamespaces() != observed.GetUserNamespaces() || (desired.UserNamespaces == nil) != (observed.UserNamespaces == nil) {
		out = append(out, "userNamespaces")
	}
	return out
}

func stringSet(in []string) map[string]struct{} {
	out := make(map[string]struct{}, len(in))
	for _, s := range in {
		out[s] = struct{}{}
	}
	return out
}

// sandboxPolicyToGateway converts the CRD policy to the wire type. The CRD's JSON names are
// the proto's JSON names, so protojson does the field-by-field work; unknown fields fail.
func sandboxPolicyToGateway(spec *v1alpha1.SandboxPolicySpec) (*sandboxv1.SandboxPolicy, error) {
	if spec == nil {
		return nil, nil
	}
	b, err := json.Marshal(spec)
	if err != nil {
		return nil, fmt.Errorf("encode policy: %w", err)
	}
	out := &sandboxv1.SandboxPolicy{}
	if err := protojson.Unmarshal(b, out); err != nil {
		return nil, fmt.Errorf("convert policy: %w", err)
	}
	return out, nil
}

// sandboxDesiredSpec maps the CR to the gateway spec. providerNames are resolved gateway
// names; policy is the resolved policy (inline or referenced), nil for none.
func sandboxDesiredSpec(sb *v1alpha1.Sandbox, providerNames []string, policy *sandboxv1.SandboxPolicy) (*openshellv1.SandboxSpec, error) {
	s := sb.Spec
	tmpl := &openshellv1.SandboxTemplate{
		Image:            s.Image,
		RuntimeClassName: s.RuntimeClassName,
		Labels:           labelValues(s.PodLabels),
		Annotations:      maps.Clone(s.PodAnnotations),
	}
	if s.Resources != nil {
		res, err := sandboxResourcesStruct(quantities(s.Resources.Limits), quantities(s.Resources.Requests))
		if err != nil {
			return nil, err
		}
		tmpl.Resources = res
	}
	return &openshellv1.SandboxSpec{
		LogLevel:    s.LogLevel,
		Environment: maps.Clone(s.Environment),
		Template:    tmpl,
		Policy:      policy,
		Providers:   slices.Clone(providerNames),
		Gpu:         s.GPU,
		GpuDevice:   s.GPUDevice,
	}, nil
}

// labelValues is the plain map the gateway takes for pod labels.
func labelValues(in map[string]v1alpha1.LabelValue) map[string]string {
	if in == nil {
		return nil
	}
	out := make(map[string]string, len(in))
	for k, v := range in {
		out[k] = string(v)
	}
	return out
}

func quantities(rl corev1.ResourceList) map[string]string {
	if len(rl) == 0 {
		return nil
	}
	out := make(map[string]string, len(rl))
	for k, q := range rl {
		out[string(k)] = q.String()
	}
	return out
}
