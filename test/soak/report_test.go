//go:build soak

package soak

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// report is one seed's outcome.
type report struct {
	Seed       uint64
	Duration   time.Duration
	Steps      []Step
	Executed   map[Kind]int
	Violations []string
	History    []string
	Converge   time.Duration
	SinceFault time.Duration
	Outages    []outage
	Crashes    int
	LeaderLoss int
	Rounds     int
	LieMax     time.Duration
	WorkDir    string
}

func (h *harness) report(steps []Step) *report {
	h.mu.Lock()
	defer h.mu.Unlock()
	return &report{Seed: h.seed, Duration: h.d, Steps: steps, Executed: h.executed, Violations: slices.Clone(h.violations),
		History: slices.Clone(h.history), Converge: h.converge, SinceFault: h.sinceFault, Outages: slices.Clone(h.outages), Crashes: h.crashes,
		LeaderLoss: h.leaderLoss, Rounds: h.checkRounds, LieMax: h.lieMax, WorkDir: h.work}
}

func (r *report) kinds(faults bool) string {
	var parts []string
	var n int
	keys := make([]Kind, 0, len(r.Executed))
	for k := range r.Executed {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if k.IsFault() == faults {
			parts = append(parts, fmt.Sprintf("%s %d", k, r.Executed[k]))
			n += r.Executed[k]
		}
	}
	return fmt.Sprintf("%d (%s)", n, strings.Join(parts, ", "))
}

func (r *report) outageSummary() string {
	judged, worst := 0, 0.0
	for _, o := range r.Outages {
		if o.judged {
			judged++
			worst = max(worst, float64(o.calls)/float64(o.bound))
		}
	}
	return fmt.Sprintf("%d outages, %d judged, max calls/bound %.2f", len(r.Outages), judged, worst)
}

// Summary is the human-readable outcome.
func (r *report) Summary() string {
	return fmt.Sprintf("soak seed=%d duration=%s: actions %s; faults %s; %s; check rounds %d; longest calm Ready/gateway disagreement %s; leader losses on their own %d; crashes %d; converged %s after the quiet point (%s after the last fault ended); violations %d",
		r.Seed, r.Duration, r.kinds(false), r.kinds(true), r.outageSummary(), r.Rounds, r.LieMax.Round(time.Second), r.LeaderLoss, r.Crashes,
		r.Converge.Round(time.Second), r.SinceFault.Round(time.Second), len(r.Violations))
}

// Row is the run as a docs/reliability.md table row.
func (r *report) Row() string {
	return fmt.Sprintf("| %d | %s | %s | %s | %s | %d | %s (%s) |", r.Seed, r.Duration, r.kinds(false), r.kinds(true), r.outageSummary(),
		len(r.Violations), r.Converge.Round(time.Second), r.SinceFault.Round(time.Second))
}

// Failure is what a failed run prints: the seed, how to replay it, the violations and the
// whole history.
func (r *report) Failure() string {
	var b strings.Builder
	fmt.Fprintf(&b, "SOAK FAILED: seed %d, duration %s, %d violations\nreplay: make soak SOAK_SEED=%d SOAK_DURATION=%s\nprocess logs kept in %s\n\nviolations:\n",
		r.Seed, r.Duration, len(r.Violations), r.Seed, r.Duration, r.WorkDir)
	for _, v := range r.Violations {
		b.WriteString("  " + v + "\n")
	}
	b.WriteString("\nhistory (time since start, step or event):\n")
	for _, h := range r.History {
		b.WriteString("  " + h + "\n")
	}
	b.WriteString("\n" + r.Summary() + "\n")
	return b.String()
}
