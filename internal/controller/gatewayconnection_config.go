package controller

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"google.golang.org/protobuf/proto"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
	sandboxv1 "github.com/openshell-operator/openshell-operator/gen/openshell/sandbox/v1"
	openshellv1 "github.com/openshell-operator/openshell-operator/gen/openshell/v1"
	"github.com/openshell-operator/openshell-operator/internal/gateway"
)

// settingsPlan is what must change on the gateway to match spec.settings.
type settingsPlan struct {
	// Set are keys whose live value differs from the desired one.
	Set map[string]*sandboxv1.SettingValue
	// Delete are keys this resource set earlier and no longer wants (sorted).
	Delete []string
	// Managed are the keys the resource owns after the plan is applied (sorted).
	Managed []string
}

// settingValueToGateway maps a typed setting; exactly one field is set (CEL enforces it).
func settingValueToGateway(v v1alpha1.SettingValue) *sandboxv1.SettingValue {
	switch {
	case v.Bool != nil:
		return gateway.BoolSetting(*v.Bool)
	case v.String != nil:
		return gateway.StringSetting(*v.String)
	case v.Int != nil:
		return gateway.IntSetting(*v.Int)
	}
	return &sandboxv1.SettingValue{}
}

// planSettings compares desired settings with the gateway's global settings. Keys that were
// never set by this resource are left alone when removed from the spec: they may belong to
// the CLI or another tool.
func planSettings(desired map[string]v1alpha1.SettingValue, live map[string]*sandboxv1.SettingValue, managed []string) settingsPlan {
	plan := settingsPlan{Set: map[string]*sandboxv1.SettingValue{}, Managed: slices.Sorted(maps.Keys(desired))}
	for k, v := range desired {
		want := settingValueToGateway(v)
		if !proto.Equal(want, live[k]) {
			plan.Set[k] = want
		}
	}
	for _, k := range managed {
		if _, ok := desired[k]; ok {
			continue
		}
		if l := live[k]; l != nil && l.GetValue() != nil {
			plan.Delete = append(plan.Delete, k)
		}
	}
	slices.Sort(plan.Delete)
	return plan
}

// syncGatewayConfig applies spec.settings and spec.globalPolicyRef. It returns nil when the
// configuration converged, or the outcome to show instead of Ready; retryable gateway errors
// come back as err so the controller backs off.
func (r *GatewayConnectionReconciler) syncGatewayConfig(ctx context.Context, cl *gateway.Client, gc *v1alpha1.GatewayConnection) (*outcome, error) {
	if o, err := r.syncSettings(ctx, cl, gc); o != nil || err != nil {
		return o, err
	}
	return r.syncGlobalPolicy(ctx, cl, gc)
}

func (r *GatewayConnectionReconciler) syncSettings(ctx context.Context, cl *gateway.Client, gc *v1alpha1.GatewayConnection) (*outcome, error) {
	if len(gc.Spec.Settings) == 0 && len(gc.Status.ManagedSettings) == 0 {
		return nil, nil
	}
	cfg, err := cl.GatewayConfig(ctx)
	if err != nil {
		return configFailure("read gateway settings", err)
	}
	plan := planSettings(gc.Spec.Settings, cfg.GetSettings(), gc.Status.ManagedSettings)
	revision := cfg.GetSettingsRevision()
	global := gateway.Scope{Global: true}
	for _, k := range slices.Sorted(maps.Keys(plan.Set)) {
		resp, err := cl.Policies.SetSetting(ctx, global, k, plan.Set[k])
		if err != nil {
			return configFailure(fmt.Sprintf("setting %q", k), err)
		}
		revision = resp.GetSettingsRevision()
		r.Recorder.Eventf(gc, "Normal", "SettingApplied", "set gateway setting %q (settings revision %d)", k, revision)
	}
	for _, k := range plan.Delete {
		resp, err := cl.Policies.DeleteSetting(ctx, global, k)
		if err != nil && !gateway.IsNotFound(err) {
			return configFailure(fmt.Sprintf("delete setting %q", k), err)
		}
		revision = max(revision, resp.GetSettingsRevision())
		r.Recorder.Eventf(gc, "Normal", "SettingDeleted", "deleted gateway setting %q", k)
	}
	gc.Status.ManagedSettings = plan.Managed
	gc.Status.SettingsRevision = revision
	return nil, nil
}

func (r *GatewayConnectionReconciler) syncGlobalPolicy(ctx context.Context, cl *gateway.Client, gc *v1alpha1.GatewayConnection) (*outcome, error) {
	ref := gc.Spec.GlobalPolicyRef
	if ref == nil {
		if gc.Status.GlobalPolicyVersion == 0 {
			return nil, nil
		}
		// Only a global policy this resource applied is removed (version recorded in status).
		if _, err := cl.Policies.DeleteGlobal(ctx); err != nil && !gateway.IsNotFound(err) {
			return configFailure("delete global policy", err)
		}
		r.Recorder.Eventf(gc, "Normal", "GlobalPolicyDeleted", "deleted the global policy (version %d)", gc.Status.GlobalPolicyVersion)
		gc.Status.GlobalPolicyVersion, gc.Status.GlobalPolicyHash = 0, ""
		return nil, nil
	}
	sp := &v1alpha1.SandboxPolicy{}
	if err := r.Get(ctx, types.NamespacedName{Namespace: ref.Namespace, Name: ref.Name}, sp); err != nil {
		if apierrors.IsNotFound(err) {
			// The gateway keeps what it has: a missing object must not lift a global policy.
			return &outcome{Reason: v1alpha1.ReasonDependencyNotReady,
				Message: fmt.Sprintf("global SandboxPolicy %s/%s not found; the gateway keeps its current global policy", ref.Namespace, ref.Name)}, nil
		}
		return nil, fmt.Errorf("get global sandbox policy: %w", err)
	}
	desired, err := sandboxPolicyToGateway(&sp.Spec)
	if err != nil {
		return &outcome{Stalled: true, Reason: v1alpha1.ReasonInvalidSpec, Message: fmt.Sprintf("global SandboxPolicy %s/%s: %v", ref.Namespace, ref.Name, err)}, nil
	}
	hash := sandboxPolicyHash(desired)
	live, err := cl.Policies.GetGlobalStatus(ctx, 0)
	if err != nil && !gateway.IsNotFound(err) {
		return configFailure("read global policy", err)
	}
	rev := live.GetRevision()
	if rev != nil && rev.GetStatus() == openshellv1.PolicyStatus_POLICY_STATUS_LOADED &&
		proto.Equal(normalizeSandboxPolicy(rev.GetPolicy()), normalizeSandboxPolicy(desired)) {
		gc.Status.GlobalPolicyVersion, gc.Status.GlobalPolicyHash = rev.GetVersion(), hash
		return nil, nil
	}
	resp, err := cl.Policies.UpdateGlobal(ctx, desired)
	if err != nil {
		return configFailure(fmt.Sprintf("global policy from SandboxPolicy %s/%s", ref.Namespace, ref.Name), err)
	}
	r.Recorder.Eventf(gc, "Normal", "GlobalPolicyApplied", "applied SandboxPolicy %s/%s as the global policy (version %d)", ref.Namespace, ref.Name, resp.GetVersion())
	gc.Status.GlobalPolicyVersion, gc.Status.GlobalPolicyHash = resp.GetVersion(), hash
	return nil, nil
}

// configFailure classifies a settings or global policy error: retryable errors back off,
// anything else is the user's to fix and stalls with the gateway's message.
func configFailure(what string, err error) (*outcome, error) {
	o, rerr := gatewayFailure(what, err)
	return &o, rerr
}
