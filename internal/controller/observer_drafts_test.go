package controller

import (
	"fmt"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/event"

	openshellv1 "github.com/openshell-operator/openshell-operator/gen/openshell/v1"
	"github.com/openshell-operator/openshell-operator/internal/gatewaysim"
)

// TestListsReportDraftsAtTheDraftResync: every list updates the view, but only a list a
// DraftResync after the previous report hands each managed sandbox to the PolicyProposal
// discovery (one GetDraftPolicy each), so fallback lists and one-minute lists do not multiply
// draft reads.
func TestListsReportDraftsAtTheDraftResync(t *testing.T) {
	_, cl, ctx := simAndClient(t, gatewaysim.Options{})
	for i := range 3 {
		name := fmt.Sprintf("sb-%d", i)
		if _, err := cl.Sandboxes.Create(ctx, name, &openshellv1.SandboxSpec{}, map[string]string{"app.kubernetes.io/managed-by": "openshell-operator",
			"openshell.dev/namespace": "ns", "openshell.dev/name": name}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		name        string
		draftResync time.Duration
		want        int
	}{
		{"an hour: only the first of three lists reports", time.Hour, 3},
		{"a nanosecond: every list reports", time.Nanosecond, 9},
	} {
		t.Run(tt.name, func(t *testing.T) {
			drafts := make(chan event.GenericEvent, 100)
			l := newObserver("gw", cl, ObserverOptions{Resync: time.Hour, PageSize: 100, DraftResync: tt.draftResync, DraftReadsPerMinute: -1}, make(chan event.GenericEvent, 100))
			l.draftEvents = drafts
			t.Cleanup(l.stop)
			for range 3 {
				if tt.draftResync == time.Nanosecond {
					time.Sleep(time.Millisecond) // the clock must move past a nanosecond
				}
				if err := l.list(); err != nil {
					t.Fatal(err)
				}
			}
			if got := len(drafts); got != tt.want {
				t.Errorf("%d draft events, want %d", got, tt.want)
			}
		})
	}
}

func TestDraftSweepIntervalKeepsToTheReadBudget(t *testing.T) {
	tests := []struct {
		name      string
		opts      ObserverOptions
		sandboxes int
		want      time.Duration
	}{
		{"a fleet within the budget is swept at the resync", ObserverOptions{DraftResync: time.Minute, DraftReadsPerMinute: 600}, 600, time.Minute},
		{"a larger fleet is swept more slowly", ObserverOptions{DraftResync: time.Minute, DraftReadsPerMinute: 600}, 5000, 5000 * time.Minute / 600},
		{"a longer resync than the budget needs stays", ObserverOptions{DraftResync: 10 * time.Minute, DraftReadsPerMinute: 600}, 1000, 10 * time.Minute},
		{"no budget", ObserverOptions{DraftResync: time.Minute, DraftReadsPerMinute: -1}, 100000, time.Minute},
	}
	for _, tt := range tests {
		if got := tt.opts.draftSweepInterval(tt.sandboxes); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}
