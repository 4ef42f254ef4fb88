package controller

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"google.golang.org/protobuf/proto"
	corev1 "k8s.io/api/core/v1"
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
// configuration converged, or the failure to show instead of Ready.
func (r *GatewayConnectionReconciler) syncGatewayConfig(ctx context.Context, gw gatewayAPI, gc *v1alpha1.GatewayConnection) *failure {
	if f := r.syncSettings(ctx, gw, gc); f != nil {
		return f
	}
	return r.syncGlobalPolicy(ctx, gw, gc)
}

func (r *GatewayConnectionReconciler) syncSettings(ctx context.Context, gw gatewayAPI, gc *v1alpha1.GatewayConnection) *failure {
	if len(gc.Spec.Settings) == 0 && len(gc.Status.ManagedSettings) == 0 {
		return nil
	}
	cfg, err := gw.Config.GatewayConfig(ctx)
	if err != nil {
		return gatewayFailure("read gateway settings", err)
	}
	plan := planSettings(gc.Spec.Settings, cfg.GetSettings(), gc.Status.ManagedSettings)
	revision := cfg.GetSettingsRevision()
	global := gateway.Scope{Global: true}
	for _, k := range slices.Sorted(maps.Keys(plan.Set)) {
		resp, err := gw.Policies.SetSetting(ctx, global, k, plan.Set[k])
		if err != nil {
			return gatewayFailure(fmt.Sprintf("setting %q", k), err)
		}
		revision = resp.GetSettingsRevision()
		record(r.Recorder, gc, corev1.EventTypeNormal, eventSettingApplied, "set gateway setting %q (settings revision %d)", k, revision)
	}
	for _, k := range plan.Delete {
		resp, err := gw.Policies.DeleteSetting(ctx, global, k)
		if err != nil && !gateway.IsNotFound(err) {
			return gatewayFailure(fmt.Sprintf("delete setting %q", k), err)
		}
		revision = max(revision, resp.GetSettingsRevision())
		record(r.Recorder, gc, corev1.EventTypeNormal, eventSettingDeleted, "deleted gateway setting %q", k)
	}
	gc.Status.ManagedSettings = plan.Managed
	gc.Status.SettingsRevision = revision
	return nil
}

func (r *GatewayConnectionReconciler) syncGlobalPolicy(ctx context.Context, gw gatewayAPI, gc *v1alpha1.GatewayConnection) *failure {
	ref := gc.Spec.GlobalPolicyRef
	if ref == nil {
		if gc.Status.GlobalPolicyVersion == 0 {
			return nil
		}
		// Only a global policy this resource applied is removed (version recorded in status).
		if _, err := gw.Policies.DeleteGlobal(ctx); err != nil && !gateway.IsNotFound(err) {
			return gatewayFailure("delete global policy", err)
		}
		record(r.Recorder, gc, corev1.EventTypeNormal, eventGlobalPolicyDeleted, "deleted the global policy (version %d)", gc.Status.GlobalPolicyVersion)
		gc.Status.GlobalPolicyVersion, gc.Status.GlobalPolicyHash = 0, ""
		return nil
	}
	// A tenant-editable policy would govern every sandbox of the gateway.
	if f := clusterReference("spec.globalPolicyRef", ref.Namespace, r.clusterResourceNamespaces()); f != nil {
		return f
	}
	sp := &v1alpha1.SandboxPolicy{}
	if err := r.Get(ctx, types.NamespacedName{Namespace: ref.Namespace, Name: ref.Name}, sp); err != nil {
		if apierrors.IsNotFound(err) {
			// The gateway keeps what it has: a missing object must not lift a global policy.
			return failed(v1alpha1.ReasonDependencyNotReady,
				fmt.Sprintf("global SandboxPolicy %s/%s not found; the gateway keeps its current global policy", ref.Namespace, ref.Name), retryDependency)
		}
		return failed(v1alpha1.ReasonProgressing, "reading the global SandboxPolicy: "+err.Error(), retryBackoff)
	}
	desired, err := sandboxPolicyToGateway(&sp.Spec)
	if err != nil {
		return failed(v1alpha1.ReasonInvalidSpec, fmt.Sprintf("global SandboxPolicy %s/%s: %v", ref.Namespace, ref.Name, err), retryOnChange)
	}
	hash := sandboxPolicyHash(desired)
	live, err := gw.Policies.GetGlobalStatus(ctx, 0)
	if err != nil && !gateway.IsNotFound(err) {
		return gatewayFailure("read global policy", err)
	}
	rev := live.GetRevision()
	if rev != nil && rev.GetStatus() == openshellv1.PolicyStatus_POLICY_STATUS_LOADED &&
		proto.Equal(normalizeSandboxPolicy(rev.GetPolicy()), normalizeSandboxPolicy(desired)) {
		gc.Status.GlobalPolicyVersion, gc.Status.GlobalPolicyHash = rev.GetVersion(), hash
		return nil
	}
	resp, err := gw.Policies.UpdateGlobal(ctx, desired)
	if err != nil {
		return gatewayFailure(fmt.Sprintf("global policy from SandboxPolicy %s/%s", ref.Namespace, ref.Name), err)
	}
	record(r.Recorder, gc, corev1.EventTypeNormal, eventGlobalPolicyApplied, "applied SandboxPolicy %s/%s as the global policy (version %d)", ref.Namespace, ref.Name, resp.GetVersion())
	gc.Status.GlobalPolicyVersion, gc.Status.GlobalPolicyHash = resp.GetVersion(), hash
	return nil
}
