package controller

import (
	"fmt"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/openshell-operator/openshell-operator/internal/gatewaysim"
)

// TestListsReportDraftsAtTheDraftResync: every list updates the view, but only a list
// started a DraftResync after the previous report's list hands each managed sandbox to the
// PolicyProposal discovery (one GetDraftPolicy each), so fallback lists and one-minute lists
// do not multiply draft reads. Lists a Resync apart each report: the sweep used to be timed
// from a list's end, so the next list, a Resync after the previous one's start, fell short
// and the sweep ran every other minute.
func TestListsReportDraftsAtTheDraftResync(t *testing.T) {
	_, cl, ctx := simAndClient(t, gatewaysim.Options{})
	createManaged(ctx, t, cl, numbered("sb-", "%d", 3)...)
	t0 := time.Now()
	for _, tt := range []struct {
		name string
		// at are the lists' start times, as offsets from t0.
		at   []time.Duration
		want int
	}{
		{"three lists within the draft resync: only the first reports", []time.Duration{0, time.Second, time.Minute - time.Millisecond}, 3},
		{"lists exactly a draft resync apart: each reports", []time.Duration{0, time.Minute, 2 * time.Minute}, 9},
		{"a list late by a second does not push the next one out", []time.Duration{0, time.Minute + time.Second, 2 * time.Minute}, 6},
	} {
		t.Run(tt.name, func(t *testing.T) {
			drafts := make(chan event.GenericEvent, 100)
			l := newObserver("gw", cl, ObserverOptions{Resync: time.Minute, PageSize: 100, DraftResync: time.Minute, DraftReadsPerMinute: -1}, make(chan event.GenericEvent, 100))
			l.draftEvents = drafts
			t.Cleanup(l.stop)
			for _, at := range tt.at {
				if err := l.list(t0.Add(at)); err != nil {
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
		{"unset is the default budget", ObserverOptions{DraftResync: time.Minute}, 6000, 10 * time.Minute},
	}
	for _, tt := range tests {
		if got := tt.opts.draftSweepInterval(tt.sandboxes); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestProviderListsAreTimedFromTheSandboxListsStart: the provider list runs with a full list
// at most once a Resync, timed from the list starts the loop hands it, so lists a Resync
// apart each include it (timed from its own end, it ran every other minute).
func TestProviderListsAreTimedFromTheSandboxListsStart(t *testing.T) {
	sim, cl, _ := simAndClient(t, gatewaysim.Options{})
	l := newObserver("gw", cl, ObserverOptions{Resync: time.Minute, PageSize: 100}, make(chan event.GenericEvent, 10))
	l.providerEvents = make(chan event.GenericEvent, 10)
	t.Cleanup(l.stop)
	t0 := time.Now()
	var calls []int
	for _, at := range []time.Duration{0, 30 * time.Second, time.Minute, 2 * time.Minute} {
		if err := l.listProviders(t0.Add(at)); err != nil {
			t.Fatal(err)
		}
		calls = append(calls, sim.CallCount("ListProviders"))
	}
	if want := []int{1, 1, 2, 3}; fmt.Sprint(calls) != fmt.Sprint(want) {
		t.Fatalf("ListProviders calls after each list: %v, want %v", calls, want)
	}
}
