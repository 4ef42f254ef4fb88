package plugin

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
)

// historyEntry is one event in a sandbox's approval history.
type historyEntry struct {
	// Time of the event.
	Time metav1.Time `json:"time"`
	// Event: proposed, approval, approved, rejected, undone, refused, superseded.
	Event string `json:"event"`
	// Proposal is the PolicyProposal's name.
	Proposal string `json:"proposal"`
	// Detail says what happened.
	Detail string `json:"detail"`
}

// outcomeEvents name an outcome by the decision sent.
var outcomeEvents = map[v1alpha1.ProposalDecision]string{
	v1alpha1.ProposalApproved: "approved", v1alpha1.ProposalRejected: "rejected", v1alpha1.ProposalPending: "undone",
}

// history builds the approval history of proposals, in time order: each proposal, each
// recorded approval, the gateway's answer to the last decision sent, and supersession.
func history(items []v1alpha1.PolicyProposal) []historyEntry {
	var out []historyEntry
	add := func(t time.Time, event, proposal, detail string) {
		out = append(out, historyEntry{Time: metav1.NewTime(t), Event: event, Proposal: proposal, Detail: detail})
	}
	for i := range items {
		p := &items[i]
		what := fmt.Sprintf("rule %s for %s", dash(p.Status.RuleName), dash(p.Status.Endpoint))
		if p.Status.Binary != "" {
			what += " by " + p.Status.Binary
		}
		if p.Status.SecurityFlagged {
			what += " (security notes: " + p.Status.SecurityNotes + ")"
		}
		add(firstSeen(p), "proposed", p.Name, what)
		for _, a := range p.Spec.Approvals {
			add(a.Time.Time, "approval", p.Name, "by "+a.User)
		}
		if o := p.Status.Outcome; o != nil && o.Time != nil {
			switch {
			case o.Error != "":
				add(o.Time.Time, "refused", p.Name, fmt.Sprintf("%s refused by the gateway: %s", o.Decision, o.Error))
			case o.PolicyVersion > 0:
				add(o.Time.Time, outcomeEvents[o.Decision], p.Name, fmt.Sprintf("policy version %d", o.PolicyVersion))
			default:
				add(o.Time.Time, outcomeEvents[o.Decision], p.Name, "on the gateway")
			}
		}
		if p.Status.SupersededBy != "" {
			t := firstSeen(p)
			if p.Status.DecidedAt != nil {
				t = p.Status.DecidedAt.Time
			}
			add(t, "superseded", p.Name, "by chunk "+p.Status.SupersededBy)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Time.Equal(&out[j].Time) {
			return out[i].Time.Before(&out[j].Time)
		}
		return out[i].Proposal < out[j].Proposal
	})
	return out
}

// printHistory writes entries as a table.
func printHistory(w io.Writer, entries []historyEntry) error {
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	if _, err := fmt.Fprintln(tw, strings.Join([]string{"TIME", "EVENT", "PROPOSAL", "DETAIL"}, "\t")); err != nil {
		return err
	}
	for _, e := range entries {
		if _, err := fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", e.Time.UTC().Format(time.RFC3339), e.Event, e.Proposal, e.Detail); err != nil {
			return err
		}
	}
	return tw.Flush()
}

func (o *options) historyCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "history SANDBOX",
		Short: "Show a sandbox's proposals and decisions in time order",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.allNamespaces = false
			items, err := o.listProposals(cmd, filter{sandbox: args[0]})
			if err != nil {
				return err
			}
			entries := history(items)
			if o.output != "" {
				return printData(o.streams.Out, entries, o.output)
			}
			if len(entries) == 0 {
				_, err := fmt.Fprintf(o.streams.ErrOut, "No proposals for sandbox %s.\n", args[0])
				return err
			}
			return printHistory(o.streams.Out, entries)
		},
	}
	o.addOutputFlag(cmd, "yaml or json")
	return cmd
}
