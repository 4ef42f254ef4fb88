package controller

import (
	"context"
	"fmt"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
	datamodelv1 "github.com/openshell-operator/openshell-operator/gen/openshell/datamodel/v1"
	inferencev1 "github.com/openshell-operator/openshell-operator/gen/openshell/inference/v1"
	sandboxv1 "github.com/openshell-operator/openshell-operator/gen/openshell/sandbox/v1"
	openshellv1 "github.com/openshell-operator/openshell-operator/gen/openshell/v1"
	"github.com/openshell-operator/openshell-operator/internal/gateway"
)

// fakeGateway is an in-memory gateway behind the seam, for reconcile-branch unit tests. It
// keeps just enough state for a branch to be observed (objects by name, policy revisions,
// the route); errs injects an error per method ("Sandboxes.Create", ...); calls counts them.
type fakeGateway struct {
	mu        sync.Mutex
	sandboxes map[string]*openshellv1.Sandbox
	providers map[string]*datamodelv1.Provider
	policies  map[string][]*openshellv1.SandboxPolicyRevision
	route     *inferencev1.GetClusterInferenceResponse
	global    *openshellv1.SandboxPolicyRevision
	settings  map[string]*sandboxv1.SettingValue
	events    []*openshellv1.PlatformEvent
	errs      map[string]error
	calls     map[string]int
	nextID    int
}

func newFakeGateway() *fakeGateway {
	return &fakeGateway{sandboxes: map[string]*openshellv1.Sandbox{}, providers: map[string]*datamodelv1.Provider{},
		policies: map[string][]*openshellv1.SandboxPolicyRevision{}, settings: map[string]*sandboxv1.SettingValue{},
		errs: map[string]error{}, calls: map[string]int{}}
}

// api is the fake as the reconcilers see a gateway.
func (f *fakeGateway) api() gatewayAPI {
	return gatewayAPI{Sandboxes: fakeSandboxes{f}, Events: f, Providers: fakeProviders{f}, Policies: fakePolicies{f},
		Inference: fakeInference{f}, Config: f}
}

// call counts a call and returns its injected error.
func (f *fakeGateway) call(method string) error {
	f.calls[method]++
	return f.errs[method]
}

func notFound(what string) error { return status.Error(codes.NotFound, what+" not found") }

type fakeSandboxes struct{ f *fakeGateway }

func (s fakeSandboxes) Get(_ context.Context, name string) (*openshellv1.Sandbox, error) {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	if err := s.f.call("Sandboxes.Get"); err != nil {
		return nil, err
	}
	sb, ok := s.f.sandboxes[name]
	if !ok {
		return nil, notFound("sandbox")
	}
	return proto.Clone(sb).(*openshellv1.Sandbox), nil
}

func (s fakeSandboxes) Create(_ context.Context, name string, spec *openshellv1.SandboxSpec, labels map[string]string) (*openshellv1.Sandbox, error) {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	if err := s.f.call("Sandboxes.Create"); err != nil {
		return nil, err
	}
	if _, ok := s.f.sandboxes[name]; ok {
		return nil, status.Error(codes.AlreadyExists, "sandbox exists")
	}
	s.f.nextID++
	sb := &openshellv1.Sandbox{
		Metadata: &datamodelv1.ObjectMeta{Name: name, Id: fmt.Sprintf("id-%d", s.f.nextID), Labels: labels},
		Spec:     proto.Clone(spec).(*openshellv1.SandboxSpec),
		Status:   &openshellv1.SandboxStatus{Phase: openshellv1.SandboxPhase_SANDBOX_PHASE_PROVISIONING},
	}
	s.f.sandboxes[name] = sb
	return proto.Clone(sb).(*openshellv1.Sandbox), nil
}

func (s fakeSandboxes) Delete(_ context.Context, name string) (bool, error) {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	if err := s.f.call("Sandboxes.Delete"); err != nil {
		return false, err
	}
	sb, ok := s.f.sandboxes[name]
	if !ok {
		return false, notFound("sandbox")
	}
	sb.Status.Phase = openshellv1.SandboxPhase_SANDBOX_PHASE_DELETING
	return true, nil
}

func (s fakeSandboxes) provider(method, sandbox, provider string, attach bool) (*openshellv1.Sandbox, bool, error) {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	if err := s.f.call(method); err != nil {
		return nil, false, err
	}
	sb, ok := s.f.sandboxes[sandbox]
	if !ok {
		return nil, false, notFound("sandbox")
	}
	var out []string
	for _, p := range sb.Spec.Providers {
		if p != provider {
			out = append(out, p)
		}
	}
	if attach {
		out = append(out, provider)
	}
	sb.Spec.Providers = out
	return proto.Clone(sb).(*openshellv1.Sandbox), true, nil
}

func (s fakeSandboxes) AttachProvider(_ context.Context, sandbox, provider string, _ uint64) (*openshellv1.Sandbox, bool, error) {
	return s.provider("Sandboxes.AttachProvider", sandbox, provider, true)
}

func (s fakeSandboxes) DetachProvider(_ context.Context, sandbox, provider string, _ uint64) (*openshellv1.Sandbox, bool, error) {
	return s.provider("Sandboxes.DetachProvider", sandbox, provider, false)
}

// PlatformEvents implements platformEventReader.
func (f *fakeGateway) PlatformEvents(context.Context, string) ([]*openshellv1.PlatformEvent, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.events, f.call("Events")
}

type fakeProviders struct{ f *fakeGateway }

func (p fakeProviders) Get(_ context.Context, name string) (*datamodelv1.Provider, error) {
	p.f.mu.Lock()
	defer p.f.mu.Unlock()
	if err := p.f.call("Providers.Get"); err != nil {
		return nil, err
	}
	pr, ok := p.f.providers[name]
	if !ok {
		return nil, notFound("provider")
	}
	out := proto.Clone(pr).(*datamodelv1.Provider)
	for k := range out.Credentials {
		out.Credentials[k] = "REDACTED"
	}
	return out, nil
}

func (p fakeProviders) Create(_ context.Context, pr *datamodelv1.Provider) (*datamodelv1.Provider, error) {
	p.f.mu.Lock()
	defer p.f.mu.Unlock()
	if err := p.f.call("Providers.Create"); err != nil {
		return nil, err
	}
	p.f.nextID++
	c := proto.Clone(pr).(*datamodelv1.Provider)
	c.Metadata.Id = fmt.Sprintf("pid-%d", p.f.nextID)
	p.f.providers[pr.GetMetadata().GetName()] = c
	return proto.Clone(c).(*datamodelv1.Provider), nil
}

func (p fakeProviders) Update(_ context.Context, pr *datamodelv1.Provider) (*datamodelv1.Provider, error) {
	p.f.mu.Lock()
	defer p.f.mu.Unlock()
	if err := p.f.call("Providers.Update"); err != nil {
		return nil, err
	}
	live, ok := p.f.providers[pr.GetMetadata().GetName()]
	if !ok {
		return nil, notFound("provider")
	}
	for k, v := range pr.Credentials {
		if v == "" {
			delete(live.Credentials, k)
		} else {
			live.Credentials[k] = v
		}
	}
	for k, v := range pr.Config {
		if live.Config == nil {
			live.Config = map[string]string{}
		}
		if v == "" {
			delete(live.Config, k)
		} else {
			live.Config[k] = v
		}
	}
	return proto.Clone(live).(*datamodelv1.Provider), nil
}

func (p fakeProviders) Delete(_ context.Context, name string) (bool, error) {
	p.f.mu.Lock()
	defer p.f.mu.Unlock()
	if err := p.f.call("Providers.Delete"); err != nil {
		return false, err
	}
	_, ok := p.f.providers[name]
	delete(p.f.providers, name)
	return ok, nil
}

type fakePolicies struct{ f *fakeGateway }

func (p fakePolicies) GetStatus(_ context.Context, sandbox string, version uint32) (*openshellv1.GetSandboxPolicyStatusResponse, error) {
	p.f.mu.Lock()
	defer p.f.mu.Unlock()
	if err := p.f.call("Policies.GetStatus"); err != nil {
		return nil, err
	}
	revs := p.f.policies[sandbox]
	if len(revs) == 0 {
		return nil, notFound("policy")
	}
	active := uint32(0)
	if sb := p.f.sandboxes[sandbox]; sb != nil {
		active = sb.GetStatus().GetCurrentPolicyVersion()
	}
	rev := revs[len(revs)-1]
	if version != 0 && int(version) <= len(revs) {
		rev = revs[version-1]
	}
	return &openshellv1.GetSandboxPolicyStatusResponse{Revision: rev, ActiveVersion: active}, nil
}

func (p fakePolicies) Update(_ context.Context, sandbox string, pol *sandboxv1.SandboxPolicy) (*openshellv1.UpdateConfigResponse, error) {
	p.f.mu.Lock()
	defer p.f.mu.Unlock()
	if err := p.f.call("Policies.Update"); err != nil {
		return nil, err
	}
	v := uint32(len(p.f.policies[sandbox]) + 1)
	p.f.policies[sandbox] = append(p.f.policies[sandbox], &openshellv1.SandboxPolicyRevision{Version: v,
		Policy: pol, PolicyHash: fmt.Sprintf("hash-%d", v), Status: openshellv1.PolicyStatus_POLICY_STATUS_PENDING})
	return &openshellv1.UpdateConfigResponse{Version: v, PolicyHash: fmt.Sprintf("hash-%d", v)}, nil
}

func (p fakePolicies) GetGlobalStatus(context.Context, uint32) (*openshellv1.GetSandboxPolicyStatusResponse, error) {
	p.f.mu.Lock()
	defer p.f.mu.Unlock()
	if err := p.f.call("Policies.GetGlobalStatus"); err != nil {
		return nil, err
	}
	if p.f.global == nil {
		return nil, notFound("global policy")
	}
	return &openshellv1.GetSandboxPolicyStatusResponse{Revision: p.f.global}, nil
}

func (p fakePolicies) UpdateGlobal(_ context.Context, pol *sandboxv1.SandboxPolicy) (*openshellv1.UpdateConfigResponse, error) {
	p.f.mu.Lock()
	defer p.f.mu.Unlock()
	if err := p.f.call("Policies.UpdateGlobal"); err != nil {
		return nil, err
	}
	v := p.f.global.GetVersion() + 1
	p.f.global = &openshellv1.SandboxPolicyRevision{Version: v, Policy: pol, Status: openshellv1.PolicyStatus_POLICY_STATUS_LOADED}
	return &openshellv1.UpdateConfigResponse{Version: v}, nil
}

func (p fakePolicies) DeleteGlobal(context.Context) (*openshellv1.UpdateConfigResponse, error) {
	p.f.mu.Lock()
	defer p.f.mu.Unlock()
	p.f.global = nil
	return &openshellv1.UpdateConfigResponse{}, p.f.call("Policies.DeleteGlobal")
}

func (p fakePolicies) SetSetting(_ context.Context, _ gateway.Scope, key string, v *sandboxv1.SettingValue) (*openshellv1.UpdateConfigResponse, error) {
	p.f.mu.Lock()
	defer p.f.mu.Unlock()
	if err := p.f.call("Policies.SetSetting"); err != nil {
		return nil, err
	}
	p.f.settings[key] = v
	return &openshellv1.UpdateConfigResponse{SettingsRevision: uint64(len(p.f.settings))}, nil
}

func (p fakePolicies) DeleteSetting(_ context.Context, _ gateway.Scope, key string) (*openshellv1.UpdateConfigResponse, error) {
	p.f.mu.Lock()
	defer p.f.mu.Unlock()
	delete(p.f.settings, key)
	return &openshellv1.UpdateConfigResponse{}, p.f.call("Policies.DeleteSetting")
}

type fakeInference struct{ f *fakeGateway }

func (i fakeInference) Get(context.Context, string) (*inferencev1.GetClusterInferenceResponse, error) {
	i.f.mu.Lock()
	defer i.f.mu.Unlock()
	if err := i.f.call("Inference.Get"); err != nil {
		return nil, err
	}
	if i.f.route == nil {
		return nil, notFound("route")
	}
	return proto.Clone(i.f.route).(*inferencev1.GetClusterInferenceResponse), nil
}

func (i fakeInference) Set(_ context.Context, req *inferencev1.SetClusterInferenceRequest) (*inferencev1.SetClusterInferenceResponse, error) {
	i.f.mu.Lock()
	defer i.f.mu.Unlock()
	if err := i.f.call("Inference.Set"); err != nil {
		return nil, err
	}
	v := i.f.route.GetVersion() + 1
	i.f.route = &inferencev1.GetClusterInferenceResponse{ProviderName: req.GetProviderName(), ModelId: req.GetModelId(),
		Version: v, RouteName: req.GetRouteName(), TimeoutSecs: req.GetTimeoutSecs()}
	return &inferencev1.SetClusterInferenceResponse{ProviderName: req.GetProviderName(), ModelId: req.GetModelId(), Version: v}, nil
}

// Health implements configGateway.
func (f *fakeGateway) Health(context.Context) (*openshellv1.HealthResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("Health"); err != nil {
		return nil, err
	}
	return &openshellv1.HealthResponse{Version: "fake-1"}, nil
}

// GatewayConfig implements configGateway.
func (f *fakeGateway) GatewayConfig(context.Context) (*sandboxv1.GetGatewayConfigResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("GatewayConfig"); err != nil {
		return nil, err
	}
	return &sandboxv1.GetGatewayConfigResponse{Settings: f.settings}, nil
}

// fakeConnections is a registry with one connection per name that can be up or down.
type fakeConnections struct {
	gateways map[string]*fakeGateway
	down     map[string]bool
}

func (c *fakeConnections) Get(name string) (gatewayAPI, error) {
	g, ok := c.gateways[name]
	if !ok || c.down[name] {
		return gatewayAPI{}, fmt.Errorf("%w: GatewayConnection %q not found or not yet probed", ErrConnectionNotReady, name)
	}
	return g.api(), nil
}

// oneGateway is a registry holding one fake under the default connection name.
func oneGateway() (*fakeConnections, *fakeGateway) {
	g := newFakeGateway()
	return &fakeConnections{gateways: map[string]*fakeGateway{v1alpha1.DefaultGatewayConnection: g}, down: map[string]bool{}}, g
}
