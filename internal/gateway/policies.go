package gateway

import (
	"context"

	sandboxv1 "github.com/openshell-operator/openshell-operator/gen/openshell/sandbox/v1"
	openshellv1 "github.com/openshell-operator/openshell-operator/gen/openshell/v1"
)

// PoliciesAPI manages sandbox-scoped and gateway-wide policies and settings.
type PoliciesAPI struct{ c *Client }

// Scope selects where a setting lives: the gateway (Global) or one sandbox (Sandbox name).
type Scope struct {
	Global  bool
	Sandbox string
}

func (a *PoliciesAPI) update(ctx context.Context, what string, req *openshellv1.UpdateConfigRequest) (*openshellv1.UpdateConfigResponse, error) {
	resp, err := a.c.rpc.UpdateConfig(ctx, req)
	if err != nil {
		return nil, wrap(err, "%s", what)
	}
	return resp, nil
}

// Update pushes a full policy to a sandbox. A new hash creates a PENDING revision; the same
// hash as the latest returns the latest version.
func (a *PoliciesAPI) Update(ctx context.Context, sandbox string, p *sandboxv1.SandboxPolicy) (*openshellv1.UpdateConfigResponse, error) {
	return a.update(ctx, "update policy of sandbox \""+sandbox+"\"", &openshellv1.UpdateConfigRequest{Name: sandbox, Policy: p})
}

// UpdateGlobal sets the gateway-wide policy, which overrides every sandbox's.
func (a *PoliciesAPI) UpdateGlobal(ctx context.Context, p *sandboxv1.SandboxPolicy) (*openshellv1.UpdateConfigResponse, error) {
	return a.update(ctx, "update global policy", &openshellv1.UpdateConfigRequest{Global: true, Policy: p})
}

// DeleteGlobal removes the gateway-wide policy; Deleted reports whether one existed.
func (a *PoliciesAPI) DeleteGlobal(ctx context.Context) (*openshellv1.UpdateConfigResponse, error) {
	return a.update(ctx, "delete global policy", &openshellv1.UpdateConfigRequest{Global: true, SettingKey: "policy", DeleteSetting: true})
}

// Merge applies incremental operations to a sandbox's latest policy.
func (a *PoliciesAPI) Merge(ctx context.Context, sandbox string, ops ...*openshellv1.PolicyMergeOperation) (*openshellv1.UpdateConfigResponse, error) {
	return a.update(ctx, "merge policy of sandbox \""+sandbox+"\"", &openshellv1.UpdateConfigRequest{Name: sandbox, MergeOperations: ops})
}

// SetSetting sets a typed setting in scope.
func (a *PoliciesAPI) SetSetting(ctx context.Context, scope Scope, key string, value *sandboxv1.SettingValue) (*openshellv1.UpdateConfigResponse, error) {
	return a.update(ctx, "set setting \""+key+"\"", &openshellv1.UpdateConfigRequest{Global: scope.Global, Name: scope.Sandbox, SettingKey: key, SettingValue: value})
}

// DeleteSetting removes a setting from scope.
func (a *PoliciesAPI) DeleteSetting(ctx context.Context, scope Scope, key string) (*openshellv1.UpdateConfigResponse, error) {
	return a.update(ctx, "delete setting \""+key+"\"", &openshellv1.UpdateConfigRequest{Global: scope.Global, Name: scope.Sandbox, SettingKey: key, DeleteSetting: true})
}

// BoolSetting builds a bool setting value.
func BoolSetting(v bool) *sandboxv1.SettingValue {
	return &sandboxv1.SettingValue{Value: &sandboxv1.SettingValue_BoolValue{BoolValue: v}}
}

// StringSetting builds a string setting value.
func StringSetting(v string) *sandboxv1.SettingValue {
	return &sandboxv1.SettingValue{Value: &sandboxv1.SettingValue_StringValue{StringValue: v}}
}

// IntSetting builds an integer setting value.
func IntSetting(v int64) *sandboxv1.SettingValue {
	return &sandboxv1.SettingValue{Value: &sandboxv1.SettingValue_IntValue{IntValue: v}}
}

// GetStatus returns a sandbox's policy revision (version 0: the newest) and the version the
// sandbox reported loaded (ActiveVersion).
func (a *PoliciesAPI) GetStatus(ctx context.Context, sandbox string, version uint32) (*openshellv1.GetSandboxPolicyStatusResponse, error) {
	resp, err := a.c.rpc.GetSandboxPolicyStatus(ctx, &openshellv1.GetSandboxPolicyStatusRequest{Name: sandbox, Version: version})
	if err != nil {
		return nil, wrap(err, "get policy status of sandbox %q", sandbox)
	}
	return resp, nil
}

// GetGlobalStatus returns a global policy revision (version 0: the newest).
func (a *PoliciesAPI) GetGlobalStatus(ctx context.Context, version uint32) (*openshellv1.GetSandboxPolicyStatusResponse, error) {
	resp, err := a.c.rpc.GetSandboxPolicyStatus(ctx, &openshellv1.GetSandboxPolicyStatusRequest{Global: true, Version: version})
	if err != nil {
		return nil, wrap(err, "get global policy status")
	}
	return resp, nil
}

// ListRevisions lists a sandbox's policy revisions newest first, without their payloads.
func (a *PoliciesAPI) ListRevisions(ctx context.Context, sandbox string, limit, offset uint32) ([]*openshellv1.SandboxPolicyRevision, error) {
	resp, err := a.c.rpc.ListSandboxPolicies(ctx, &openshellv1.ListSandboxPoliciesRequest{Name: sandbox, Limit: limit, Offset: offset})
	if err != nil {
		return nil, wrap(err, "list policy revisions of sandbox %q", sandbox)
	}
	return resp.GetRevisions(), nil
}

// ListGlobalRevisions lists the gateway-wide policy revisions newest first.
func (a *PoliciesAPI) ListGlobalRevisions(ctx context.Context, limit, offset uint32) ([]*openshellv1.SandboxPolicyRevision, error) {
	resp, err := a.c.rpc.ListSandboxPolicies(ctx, &openshellv1.ListSandboxPoliciesRequest{Global: true, Limit: limit, Offset: offset})
	if err != nil {
		return nil, wrap(err, "list global policy revisions")
	}
	return resp.GetRevisions(), nil
}

// SandboxConfig returns the effective policy and settings of a sandbox (by id), as its
// supervisor sees them.
func (a *PoliciesAPI) SandboxConfig(ctx context.Context, sandboxID string) (*sandboxv1.GetSandboxConfigResponse, error) {
	resp, err := a.c.rpc.GetSandboxConfig(ctx, &sandboxv1.GetSandboxConfigRequest{SandboxId: sandboxID})
	if err != nil {
		return nil, wrap(err, "get config of sandbox %q", sandboxID)
	}
	return resp, nil
}
