package controller

import (
	"maps"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"
	"k8s.io/utils/ptr"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
	sandboxv1 "github.com/openshell-operator/openshell-operator/gen/openshell/sandbox/v1"
	"github.com/openshell-operator/openshell-operator/internal/gateway"
)

func TestPlanSettings(t *testing.T) {
	unset := &sandboxv1.SettingValue{}
	cases := []struct {
		name    string
		desired map[string]v1alpha1.SettingValue
		live    map[string]*sandboxv1.SettingValue
		managed []string
		set     map[string]*sandboxv1.SettingValue
		del     []string
		owned   []string
	}{
		{
			name:    "set what differs",
			desired: map[string]v1alpha1.SettingValue{"ocsf_json_enabled": {Bool: ptr.To(true)}, "proposal_approval_mode": {String: ptr.To("auto")}},
			live:    map[string]*sandboxv1.SettingValue{"ocsf_json_enabled": gateway.BoolSetting(true), "proposal_approval_mode": unset},
			set:     map[string]*sandboxv1.SettingValue{"proposal_approval_mode": gateway.StringSetting("auto")},
			owned:   []string{"ocsf_json_enabled", "proposal_approval_mode"},
		},
		{
			name:    "converged: nothing to do",
			desired: map[string]v1alpha1.SettingValue{"dummy_int": {Int: ptr.To[int64](3)}},
			live:    map[string]*sandboxv1.SettingValue{"dummy_int": gateway.IntSetting(3)},
			managed: []string{"dummy_int"},
			set:     map[string]*sandboxv1.SettingValue{},
			owned:   []string{"dummy_int"},
		},
		{
			name:    "a type change is a change",
			desired: map[string]v1alpha1.SettingValue{"x": {String: ptr.To("true")}},
			live:    map[string]*sandboxv1.SettingValue{"x": gateway.BoolSetting(true)},
			set:     map[string]*sandboxv1.SettingValue{"x": gateway.StringSetting("true")},
			owned:   []string{"x"},
		},
		{
			name:    "removed managed keys are deleted, foreign keys are left alone",
			desired: map[string]v1alpha1.SettingValue{},
			live: map[string]*sandboxv1.SettingValue{"ocsf_json_enabled": gateway.BoolSetting(true),
				"providers_v2_enabled": gateway.BoolSetting(true), "agent_policy_proposals_enabled": unset},
			managed: []string{"ocsf_json_enabled", "agent_policy_proposals_enabled"},
			set:     map[string]*sandboxv1.SettingValue{},
			del:     []string{"ocsf_json_enabled"},
			owned:   []string{},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			plan := planSettings(tc.desired, tc.live, tc.managed)
			if !maps.EqualFunc(plan.Set, tc.set, func(a, b *sandboxv1.SettingValue) bool { return proto.Equal(a, b) }) {
				t.Errorf("set = %v, want %v", plan.Set, tc.set)
			}
			if !slices.Equal(plan.Delete, tc.del) {
				t.Errorf("delete = %v, want %v", plan.Delete, tc.del)
			}
			if !slices.Equal(plan.Managed, tc.owned) {
				t.Errorf("managed = %v, want %v", plan.Managed, tc.owned)
			}
		})
	}
}
