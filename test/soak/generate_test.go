package soak

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestGenerateIsDeterministic(t *testing.T) {
	a, b := Generate(7, 10*time.Minute), Generate(7, 10*time.Minute)
	if diff := cmp.Diff(a, b); diff != "" {
		t.Fatalf("same seed, different schedules (-first +second):\n%s", diff)
	}
	if cmp.Equal(a, Generate(8, 10*time.Minute)) {
		t.Fatal("seeds 7 and 8 gave the same schedule")
	}
}

// TestGenerateCoversEveryKind: a long run exercises every action and fault, in time order,
// and never targets a sandbox it already deleted.
func TestGenerateCoversEveryKind(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		steps := Generate(seed, 20*time.Minute)
		counts := CountKinds(steps)
		for _, k := range []Kind{ActCreate, ActEditInPlace, ActEditRecreate, ActApplyOnDelete, ActDelete, ActPolicyEdit,
			ActProviderEdit, ActSecretRotate, ActConflicts, FaultError, FaultLatency, FaultOutage, FaultStreamCut,
			FaultRestart, FaultManagerKill, FaultLeaderPause} {
			if counts[k] == 0 {
				t.Errorf("seed %d: no %s in 20 minutes (%v)", seed, k, counts)
			}
		}
		deleted := map[string]bool{}
		created := map[string]bool{}
		var last time.Duration
		for _, s := range steps {
			if s.At < last {
				t.Fatalf("seed %d: %v before %v", seed, s.At, last)
			}
			last = s.At
			key := s.NS + "/" + s.Name
			switch s.Kind {
			case ActCreate:
				if created[key] {
					t.Errorf("seed %d: %s created twice (names are never reused: an orphan keeps its gateway name)", seed, key)
				}
				created[key] = true
			case ActDelete, ActEditInPlace, ActEditRecreate, ActApplyOnDelete:
				if !created[key] || deleted[key] {
					t.Errorf("seed %d: %s targets %s, which does not exist", seed, s.Kind, key)
				}
				if s.Kind == ActDelete {
					deleted[key] = true
				}
			}
		}
	}
}
