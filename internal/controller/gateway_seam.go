package controller

import (
	"context"
	"time"

	datamodelv1 "github.com/openshell-operator/openshell-operator/gen/openshell/datamodel/v1"
	inferencev1 "github.com/openshell-operator/openshell-operator/gen/openshell/inference/v1"
	sandboxv1 "github.com/openshell-operator/openshell-operator/gen/openshell/sandbox/v1"
	openshellv1 "github.com/openshell-operator/openshell-operator/gen/openshell/v1"
	"github.com/openshell-operator/openshell-operator/internal/gateway"
)

// The consumer-side view of a gateway: exactly the calls the reconcilers make, so a reconcile
// branch can be tested with an in-memory fake (fake_gateway_test.go). *gateway.Client's
// sub-APIs implement them; apiOf bundles them per connection.

// sandboxGateway is what the Sandbox kind calls.
type sandboxGateway interface {
	Get(ctx context.Context, name string) (*openshellv1.Sandbox, error)
	Create(ctx context.Context, name string, spec *openshellv1.SandboxSpec, labels map[string]string) (*openshellv1.Sandbox, error)
	Delete(ctx context.Context, name string) (bool, error)
	AttachProvider(ctx context.Context, sandbox, provider string, expectedRV uint64) (*openshellv1.Sandbox, bool, error)
	DetachProvider(ctx context.Context, sandbox, provider string, expectedRV uint64) (*openshellv1.Sandbox, bool, error)
}

// platformEventReader reads a sandbox's platform events (mirrored as Kubernetes Events).
type platformEventReader interface {
	PlatformEvents(ctx context.Context, sandboxID string) ([]*openshellv1.PlatformEvent, error)
}

// providerGateway is what the Provider kind calls.
type providerGateway interface {
	Get(ctx context.Context, name string) (*datamodelv1.Provider, error)
	Create(ctx context.Context, p *datamodelv1.Provider) (*datamodelv1.Provider, error)
	Update(ctx context.Context, p *datamodelv1.Provider) (*datamodelv1.Provider, error)
	Delete(ctx context.Context, name string) (bool, error)
}

// policyGateway is what the Sandbox (per-sandbox policy) and GatewayConnection (global
// policy, settings) kinds call.
type policyGateway interface {
	GetStatus(ctx context.Context, sandbox string, version uint32) (*openshellv1.GetSandboxPolicyStatusResponse, error)
	Update(ctx context.Context, sandbox string, p *sandboxv1.SandboxPolicy) (*openshellv1.UpdateConfigResponse, error)
	GetGlobalStatus(ctx context.Context, version uint32) (*openshellv1.GetSandboxPolicyStatusResponse, error)
	UpdateGlobal(ctx context.Context, p *sandboxv1.SandboxPolicy) (*openshellv1.UpdateConfigResponse, error)
	DeleteGlobal(ctx context.Context) (*openshellv1.UpdateConfigResponse, error)
	SetSetting(ctx context.Context, scope gateway.Scope, key string, value *sandboxv1.SettingValue) (*openshellv1.UpdateConfigResponse, error)
	DeleteSetting(ctx context.Context, scope gateway.Scope, key string) (*openshellv1.UpdateConfigResponse, error)
}

// inferenceGateway is what the InferenceRoute kind calls.
type inferenceGateway interface {
	Get(ctx context.Context, route string) (*inferencev1.GetClusterInferenceResponse, error)
	Set(ctx context.Context, req *inferencev1.SetClusterInferenceRequest) (*inferencev1.SetClusterInferenceResponse, error)
}

// configGateway is what the GatewayConnection kind calls besides policies.
type configGateway interface {
	Health(ctx context.Context) (*openshellv1.HealthResponse, error)
	GatewayConfig(ctx context.Context) (*sandboxv1.GetGatewayConfigResponse, error)
}

// approvalsGateway is what the PolicyProposal kind calls (draft policy chunks).
type approvalsGateway interface {
	GetDraft(ctx context.Context, sandbox, statusFilter string) (*openshellv1.GetDraftPolicyResponse, error)
	Approve(ctx context.Context, sandbox, chunkID string) (*openshellv1.ApproveDraftChunkResponse, error)
	Reject(ctx context.Context, sandbox, chunkID, reason string) error
	Edit(ctx context.Context, sandbox, chunkID string, rule *sandboxv1.NetworkPolicyRule) error
	Undo(ctx context.Context, sandbox, chunkID string) (*openshellv1.UndoDraftChunkResponse, error)
	Clear(ctx context.Context, sandbox string) (uint32, error)
}

// gatewayAPI is one gateway as the reconcilers see it.
type gatewayAPI struct {
	Approvals approvalsGateway
	Sandboxes sandboxGateway
	Events    platformEventReader
	Providers providerGateway
	Policies  policyGateway
	Inference inferenceGateway
	Config    configGateway
	// client is the real client behind it, for the observation loop's streams; nil in
	// unit tests (no loop is started then).
	client *gateway.Client
}

// apiOf is the gatewayAPI of a real client.
func apiOf(cl *gateway.Client) gatewayAPI {
	return gatewayAPI{
		Approvals: cl.Approvals, Sandboxes: cl.Sandboxes, Events: clientEvents{cl}, Providers: cl.Providers,
		Policies: cl.Policies, Inference: cl.Inference, Config: cl, client: cl,
	}
}

// gatewayClients yields the gateway of a GatewayConnection; *Connections is the production
// implementation.
type gatewayClients interface {
	Get(name string) (gatewayAPI, error)
}

// clientEvents reads platform events with a short-lived WatchSandbox: the gateway sends the
// events so far, then a snapshot, where it stops.
type clientEvents struct{ c *gateway.Client }

// PlatformEvents implements platformEventReader.
func (e clientEvents) PlatformEvents(ctx context.Context, id string) ([]*openshellv1.PlatformEvent, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	w, err := e.c.Sandboxes.Watch(ctx, id, gateway.WatchOptions{FollowEvents: true, EventTail: maxStreamedEvents})
	if err != nil {
		return nil, err
	}
	defer w.Close()
	var out []*openshellv1.PlatformEvent
	for {
		ev, err := w.Recv()
		if err != nil {
			return out, err
		}
		if e := ev.GetEvent(); e != nil {
			out = append(out, e)
		}
		if ev.GetSandbox() != nil {
			return out, nil
		}
	}
}
