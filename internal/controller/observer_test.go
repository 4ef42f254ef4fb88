package controller

import (
	"slices"
	"testing"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
	datamodelv1 "github.com/openshell-operator/openshell-operator/gen/openshell/datamodel/v1"
	openshellv1 "github.com/openshell-operator/openshell-operator/gen/openshell/v1"
)

func observed(name string, rv uint64) *openshellv1.Sandbox {
	return &openshellv1.Sandbox{Metadata: &datamodelv1.ObjectMeta{Name: name, ResourceVersion: rv}}
}

func TestDiffSandboxViews(t *testing.T) {
	view := func(sbs ...*openshellv1.Sandbox) map[string]*openshellv1.Sandbox {
		m := map[string]*openshellv1.Sandbox{}
		for _, sb := range sbs {
			m[sb.GetMetadata().GetName()] = sb
		}
		return m
	}
	cases := []struct {
		name     string
		old, cur map[string]*openshellv1.Sandbox
		want     []string
	}{
		{"unchanged emits nothing", view(observed("a", 3), observed("b", 1)), view(observed("a", 3), observed("b", 1)), nil},
		{"new sandbox", view(), view(observed("a", 1)), []string{"a@1"}},
		{"resource version moved", view(observed("a", 1)), view(observed("a", 2)), []string{"a@2"}},
		{"disappeared: the last known object", view(observed("a", 4)), view(), []string{"a@4"}},
		{"mixed", view(observed("a", 1), observed("b", 1), observed("c", 1)), view(observed("a", 1), observed("b", 2), observed("d", 1)), []string{"b@2", "c@1", "d@1"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, sb := range diffSandboxViews(tc.old, tc.cur) {
				got = append(got, sb.GetMetadata().GetName()+"@"+string(rune('0'+sb.GetMetadata().GetResourceVersion())))
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("changed = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestObserverRecordKeepsTheNewest(t *testing.T) {
	l := newObserver("gw", nil, ObserverOptions{MaxStreams: 1}, nil)
	l.synced = true
	l.record(observed("a", 5))
	l.record(observed("a", 3))
	if sb, _ := l.lookup("a"); sb.GetMetadata().GetResourceVersion() != 5 {
		t.Fatalf("an older write replaced a newer one: %v", sb)
	}
	l.record(observed("a", 6))
	if sb, _ := l.lookup("a"); sb.GetMetadata().GetResourceVersion() != 6 {
		t.Fatalf("a newer write was dropped: %v", sb)
	}
	if sb, synced := l.lookup("missing"); sb != nil || !synced {
		t.Fatalf("a synced view answers absent names: %v %v", sb, synced)
	}
	l.synced = false
	if sb, synced := l.lookup("a"); sb != nil || synced {
		t.Fatal("an unsynced view answers nothing")
	}
}

func TestPolicyConverged(t *testing.T) {
	cases := []struct {
		name   string
		st     *v1alpha1PolicyState
		active uint32
		want   bool
	}{
		{"nothing recorded", nil, 0, false},
		{"baseline, active unchanged", &v1alpha1PolicyState{SourceHash: "h", ActiveVersion: 1}, 1, true},
		{"baseline, a revision was loaded since", &v1alpha1PolicyState{SourceHash: "h", ActiveVersion: 1}, 2, false},
		{"pushed and loaded", &v1alpha1PolicyState{SourceHash: "h", Version: 3, ActiveVersion: 3, Status: "Loaded"}, 3, true},
		{"pushed, still pending", &v1alpha1PolicyState{SourceHash: "h", Version: 3, ActiveVersion: 2, Status: "Pending"}, 2, false},
		{"desired policy changed", &v1alpha1PolicyState{SourceHash: "old", Version: 3, ActiveVersion: 3, Status: "Loaded"}, 3, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := policyConverged(tc.st.toAPI(), "h", tc.active); got != tc.want {
				t.Fatalf("converged = %v, want %v", got, tc.want)
			}
		})
	}
}

// v1alpha1PolicyState keeps the table above short.
type v1alpha1PolicyState struct {
	SourceHash             string
	Version, ActiveVersion uint32
	Status                 string
}

func (s *v1alpha1PolicyState) toAPI() *v1alpha1.SandboxPolicyState {
	if s == nil {
		return nil
	}
	return &v1alpha1.SandboxPolicyState{SourceHash: s.SourceHash, Version: s.Version, ActiveVersion: s.ActiveVersion, Status: v1alpha1.PolicyLoadStatus(s.Status)}
}
