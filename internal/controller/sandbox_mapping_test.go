package controller

import (
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"

	sandboxv1 "github.com/openshell-operator/openshell-operator/gen/openshell/sandbox/v1"
	openshellv1 "github.com/openshell-operator/openshell-operator/gen/openshell/v1"
)

func TestSandboxResourcesStruct(t *testing.T) {
	tests := []struct {
		name             string
		limits, requests map[string]string
		want             map[string]any
	}{
		{name: "empty", want: nil},
		{name: "limits only", limits: map[string]string{"cpu": "2"},
			want: map[string]any{"limits": map[string]any{"cpu": "2"}}},
		{name: "both", limits: map[string]string{"memory": "1Gi"}, requests: map[string]string{"cpu": "500m"},
			want: map[string]any{"limits": map[string]any{"memory": "1Gi"}, "requests": map[string]any{"cpu": "500m"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := sandboxResourcesStruct(tt.limits, tt.requests)
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if tt.want == nil {
				if got != nil {
					t.Fatalf("want nil, got %v", got)
				}
				return
			}
			want, _ := structpb.NewStruct(tt.want)
			if got.String() != want.String() {
				t.Fatalf("got %v, want %v", got, want)
			}
		})
	}
}

func TestSandboxPolicyHash(t *testing.T) {
	a := &sandboxv1.SandboxPolicy{Filesystem: &sandboxv1.FilesystemPolicy{ReadWrite: []string{"/sandbox"}}}
	explicit := &sandboxv1.SandboxPolicy{
		Filesystem: &sandboxv1.FilesystemPolicy{ReadWrite: []string{"/sandbox"}},
		Process:    &sandboxv1.ProcessPolicy{RunAsUser: "sandbox", RunAsGroup: "sandbox"},
	}
	other := &sandboxv1.SandboxPolicy{Filesystem: &sandboxv1.FilesystemPolicy{ReadWrite: []string{"/tmp"}}}
	if sandboxPolicyHash(nil) != "" {
		t.Fatal("nil policy must hash to empty")
	}
	if sandboxPolicyHash(a) != sandboxPolicyHash(explicit) {
		t.Fatal("gateway process defaults must not change the hash")
	}
	if sandboxPolicyHash(a) == sandboxPolicyHash(other) {
		t.Fatal("different policies must hash differently")
	}
	if a.Process != nil {
		t.Fatal("hashing must not mutate the input")
	}
}

func TestSandboxPolicyStaticChanges(t *testing.T) {
	base := &sandboxv1.SandboxPolicy{
		Filesystem: &sandboxv1.FilesystemPolicy{ReadOnly: []string{"/usr"}, ReadWrite: []string{"/sandbox"}},
		Landlock:   &sandboxv1.LandlockPolicy{Compatibility: "best_effort"},
	}
	with := func(mut func(p *sandboxv1.SandboxPolicy)) *sandboxv1.SandboxPolicy {
		p := normalizeSandboxPolicy(base)
		mut(p)
		return p
	}
	tests := []struct {
		name     string
		baseline *sandboxv1.SandboxPolicy
		desired  *sandboxv1.SandboxPolicy
		want     []string
	}{
		{name: "no baseline backfills in place", baseline: nil, desired: base},
		{name: "equal", baseline: base, desired: base},
		{name: "network change in place", baseline: base, desired: with(func(p *sandboxv1.SandboxPolicy) {
			p.NetworkPolicies = map[string]*sandboxv1.NetworkPolicyRule{"gh": {Name: "gh"}}
		})},
		{name: "added path in place", baseline: base, desired: with(func(p *sandboxv1.SandboxPolicy) {
			p.Filesystem.ReadWrite = append(p.Filesystem.ReadWrite, "/tmp")
		})},
		{name: "removed path", baseline: base, desired: with(func(p *sandboxv1.SandboxPolicy) {
			p.Filesystem.ReadOnly = nil
		}), want: []string{"policy filesystem readOnly path removed"}},
		{name: "landlock", baseline: base, desired: with(func(p *sandboxv1.SandboxPolicy) {
			p.Landlock.Compatibility = "hard_requirement"
		}), want: []string{"policy landlock changed"}},
		{name: "process", baseline: base, desired: with(func(p *sandboxv1.SandboxPolicy) {
			p.Process.RunAsUser = "root"
		}), want: []string{"policy process changed"}},
		{name: "filesystem removed", baseline: base, desired: with(func(p *sandboxv1.SandboxPolicy) {
			p.Filesystem = nil
		}), want: []string{"policy filesystem removed"}},
		{name: "policy removed is left to the gateway", baseline: base, desired: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := sandboxPolicyStaticChanges(tt.baseline, tt.desired)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestDiffSandboxSpec(t *testing.T) {
	res, _ := sandboxResourcesStruct(map[string]string{"cpu": "1"}, nil)
	res2, _ := sandboxResourcesStruct(map[string]string{"cpu": "2"}, nil)
	spec := func(mut func(s *openshellv1.SandboxSpec)) *openshellv1.SandboxSpec {
		s := &openshellv1.SandboxSpec{
			LogLevel:    "info",
			Environment: map[string]string{"A": "1"},
			Providers:   []string{"p1", "p2"},
			Template:    &openshellv1.SandboxTemplate{Image: "img:1", Resources: res},
		}
		if mut != nil {
			mut(s)
		}
		return s
	}
	tests := []struct {
		name              string
		desired, observed *openshellv1.SandboxSpec
		attach, detach    []string
		recreate          []string
	}{
		{name: "in sync", desired: spec(nil), observed: spec(nil)},
		{name: "default image filled by gateway is not drift",
			desired:  spec(func(s *openshellv1.SandboxSpec) { s.Template.Image = "" }),
			observed: spec(func(s *openshellv1.SandboxSpec) { s.Template.Image = "ghcr.io/default:latest" })},
		{name: "provider attach and detach in place",
			desired:  spec(func(s *openshellv1.SandboxSpec) { s.Providers = []string{"p3", "p1"} }),
			observed: spec(nil), attach: []string{"p3"}, detach: []string{"p2"}},
		{name: "provider order is not drift",
			desired:  spec(func(s *openshellv1.SandboxSpec) { s.Providers = []string{"p2", "p1"} }),
			observed: spec(nil)},
		{name: "image", desired: spec(func(s *openshellv1.SandboxSpec) { s.Template.Image = "img:2" }),
			observed: spec(nil), recreate: []string{"image"}},
		{name: "environment and resources",
			desired: spec(func(s *openshellv1.SandboxSpec) {
				s.Environment = map[string]string{"A": "2"}
				s.Template.Resources = res2
			}),
			observed: spec(nil), recreate: []string{"environment", "resources"}},
		{name: "gpu", desired: spec(func(s *openshellv1.SandboxSpec) { s.Gpu = true }),
			observed: spec(nil), recreate: []string{"gpu"}},
		{name: "pod labels", desired: spec(func(s *openshellv1.SandboxSpec) { s.Template.Labels = map[string]string{"a": "b"} }),
			observed: spec(nil), recreate: []string{"podLabels"}},
		{name: "policy baseline process change",
			desired: spec(func(s *openshellv1.SandboxSpec) {
				s.Policy = &sandboxv1.SandboxPolicy{Process: &sandboxv1.ProcessPolicy{RunAsUser: "x"}}
			}),
			observed: spec(func(s *openshellv1.SandboxSpec) { s.Policy = &sandboxv1.SandboxPolicy{} }),
			recreate: []string{"policy process changed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := diffSandboxSpec(tt.desired, tt.observed)
			if !slices.Equal(got.Attach, tt.attach) || !slices.Equal(got.Detach, tt.detach) {
				t.Fatalf("attach %q detach %q, want %q %q", got.Attach, got.Detach, tt.attach, tt.detach)
			}
			if !slices.Equal(got.Recreate, tt.recreate) {
				t.Fatalf("recreate %q, want %q", got.Recreate, tt.recreate)
			}
			if got.NeedsRecreate() != (len(tt.recreate) > 0) || got.InPlace() != (len(tt.attach)+len(tt.detach) > 0) {
				t.Fatal("NeedsRecreate/InPlace disagree with the lists")
			}
		})
	}
}

func TestSandboxPolicyToGateway(t *testing.T) {
	spec := &v1alpha1.SandboxPolicySpec{
		Filesystem: &v1alpha1.FilesystemPolicy{IncludeWorkdir: true, ReadOnly: []v1alpha1.AbsolutePath{"/usr"}, ReadWrite: []v1alpha1.AbsolutePath{"/sandbox"}},
		Landlock:   &v1alpha1.LandlockPolicy{Compatibility: "best_effort"},
		Process:    &v1alpha1.ProcessPolicy{RunAsUser: "sandbox", RunAsGroup: "sandbox"},
		NetworkPolicies: map[string]v1alpha1.NetworkPolicyRule{
			"github": {
				Name: "github",
				Endpoints: []v1alpha1.NetworkEndpoint{{
					Host: "api.github.com", Port: 443, Ports: []v1alpha1.Port{443, 8443}, Protocol: "rest", TLS: "terminate",
					Enforcement: "enforce", Access: "read-only", AllowedIPs: []string{"10.0.0.0/8"},
					Rules:                   []v1alpha1.L7Rule{{Allow: v1alpha1.L7Allow{Method: "GET", Path: "/repos/**", Query: map[string]v1alpha1.L7QueryMatcher{"q": {Glob: "a*"}}}}},
					DenyRules:               []v1alpha1.L7DenyRule{{Method: "DELETE", Path: "/**"}},
					GraphqlPersistedQueries: map[string]v1alpha1.GraphqlOperation{"h": {OperationType: "query", OperationName: "Q", Fields: []string{"a"}}},
					GraphqlMaxBodyBytes:     1024, Path: "/graphql", AllowEncodedSlash: true,
				}},
				Binaries: []v1alpha1.NetworkBinary{{Path: "/usr/bin/git"}},
			},
		},
	}
	got, err := sandboxPolicyToGateway(spec)
	if err != nil {
		t.Fatalf("convert: %v", err)
	}
	ep := got.GetNetworkPolicies()["github"].GetEndpoints()[0]
	switch {
	case !got.GetFilesystem().GetIncludeWorkdir() || got.GetFilesystem().GetReadOnly()[0] != "/usr" || got.GetFilesystem().GetReadWrite()[0] != "/sandbox":
		t.Fatalf("filesystem: %v", got.GetFilesystem())
	case got.GetLandlock().GetCompatibility() != "best_effort" || got.GetProcess().GetRunAsUser() != "sandbox":
		t.Fatalf("landlock/process: %v %v", got.GetLandlock(), got.GetProcess())
	case ep.GetHost() != "api.github.com" || ep.GetPort() != 443 || !slices.Equal(ep.GetPorts(), []uint32{443, 8443}) || ep.GetTls() != "terminate":
		t.Fatalf("endpoint: %v", ep)
	case ep.GetAllowedIps()[0] != "10.0.0.0/8" || ep.GetRules()[0].GetAllow().GetQuery()["q"].GetGlob() != "a*" || ep.GetDenyRules()[0].GetMethod() != "DELETE":
		t.Fatalf("endpoint rules: %v", ep)
	case ep.GetGraphqlPersistedQueries()["h"].GetOperationName() != "Q" || ep.GetGraphqlMaxBodyBytes() != 1024 || !ep.GetAllowEncodedSlash():
		t.Fatalf("endpoint graphql: %v", ep)
	case got.GetNetworkPolicies()["github"].GetBinaries()[0].GetPath() != "/usr/bin/git":
		t.Fatalf("binaries: %v", got.GetNetworkPolicies()["github"])
	}
	if p, err := sandboxPolicyToGateway(nil); p != nil || err != nil {
		t.Fatalf("nil policy: %v %v", p, err)
	}
}

func TestSandboxDesiredSpec(t *testing.T) {
	sb := &v1alpha1.Sandbox{Spec: v1alpha1.SandboxSpec{
		Image: "img:1", Environment: map[string]string{"A": "1"}, LogLevel: "debug", GPU: true, GPUDevice: "0",
		RuntimeClassName: "kata", PodLabels: map[string]v1alpha1.LabelValue{"l": "v"}, PodAnnotations: map[string]string{"a": "v"},
		Resources: &corev1.ResourceRequirements{
			Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2")},
			Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")},
		},
	}}
	pol := &sandboxv1.SandboxPolicy{Landlock: &sandboxv1.LandlockPolicy{Compatibility: "best_effort"}}
	got, err := sandboxDesiredSpec(sb, []string{"gw-p"}, pol)
	if err != nil {
		t.Fatalf("map: %v", err)
	}
	wantRes, _ := sandboxResourcesStruct(map[string]string{"cpu": "2"}, map[string]string{"memory": "1Gi"})
	want := &openshellv1.SandboxSpec{
		LogLevel: "debug", Environment: map[string]string{"A": "1"}, Providers: []string{"gw-p"}, Gpu: true, GpuDevice: "0", Policy: pol,
		Template: &openshellv1.SandboxTemplate{Image: "img:1", RuntimeClassName: "kata",
			Labels: map[string]string{"l": "v"}, Annotations: map[string]string{"a": "v"}, Resources: wantRes},
	}
	if !proto.Equal(got, want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
	if d := diffSandboxSpec(got, want); d.NeedsRecreate() || d.InPlace() {
		t.Fatalf("mapped spec must diff clean against itself: %+v", d)
	}
}
