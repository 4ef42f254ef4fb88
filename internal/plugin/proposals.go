package plugin

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/duration"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
)

// filter selects proposals.
type filter struct {
	// sandbox: only this sandbox's proposals ("" any).
	sandbox string
	// decision: only this spec decision ("" any).
	decision string
	// gatewayStatus: only this gateway status ("" any).
	gatewayStatus string
	// waiting: only proposals waiting for a decision.
	waiting bool
	// flagged: only security-flagged proposals.
	flagged bool
}

// waiting reports whether p still needs a decision: undecided in spec, pending (or not yet
// seen) on the gateway, and not superseded.
func waiting(p *v1alpha1.PolicyProposal) bool {
	return p.Spec.Decision == v1alpha1.ProposalPending && p.Status.SupersededBy == "" &&
		(p.Status.GatewayStatus == "" || p.Status.GatewayStatus == v1alpha1.ChunkPending)
}

// matches reports whether p passes f.
func (f filter) matches(p *v1alpha1.PolicyProposal) bool {
	switch {
	case f.sandbox != "" && p.Spec.SandboxRef.Name != f.sandbox:
		return false
	case f.decision != "" && !strings.EqualFold(string(p.Spec.Decision), f.decision):
		return false
	case f.gatewayStatus != "" && !strings.EqualFold(string(p.Status.GatewayStatus), f.gatewayStatus):
		return false
	case f.waiting && !waiting(p):
		return false
	case f.flagged && !p.Status.SecurityFlagged:
		return false
	}
	return true
}

// selectProposals returns the proposals f matches, sorted by namespace, sandbox, first seen
// and name.
func selectProposals(items []v1alpha1.PolicyProposal, f filter) []v1alpha1.PolicyProposal {
	var out []v1alpha1.PolicyProposal
	for i := range items {
		if f.matches(&items[i]) {
			out = append(out, items[i])
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := &out[i], &out[j]
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		if a.Spec.SandboxRef.Name != b.Spec.SandboxRef.Name {
			return a.Spec.SandboxRef.Name < b.Spec.SandboxRef.Name
		}
		if ta, tb := firstSeen(a), firstSeen(b); !ta.Equal(tb) {
			return ta.Before(tb)
		}
		return a.Name < b.Name
	})
	return out
}

// firstSeen is when a proposal was first proposed (its creation when the status lacks it).
func firstSeen(p *v1alpha1.PolicyProposal) time.Time {
	if p.Status.FirstSeen != nil {
		return p.Status.FirstSeen.Time
	}
	return p.CreationTimestamp.Time
}

// approvalsCell is "n/quorum" ("n" when the quorum is not known).
func approvalsCell(p *v1alpha1.PolicyProposal) string {
	if p.Status.RequiredApprovals > 0 {
		return fmt.Sprintf("%d/%d", len(p.Spec.Approvals), p.Status.RequiredApprovals)
	}
	return strconv.Itoa(len(p.Spec.Approvals))
}

// gatewayCell is the gateway status, "Superseded" when superseded, "-" before the operator
// reported one.
func gatewayCell(p *v1alpha1.PolicyProposal) string {
	switch {
	case p.Status.SupersededBy != "":
		return "Superseded"
	case p.Status.GatewayStatus == "":
		return "-"
	}
	return string(p.Status.GatewayStatus)
}

// dash is s, or "-" when empty.
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// printProposals writes the proposals as kubectl get does: a table (wide: more columns), or
// one name per line.
func printProposals(w io.Writer, items []v1alpha1.PolicyProposal, output string, allNamespaces bool, now time.Time) error {
	if output == "name" {
		for _, p := range items {
			if _, err := fmt.Fprintf(w, "policyproposal.openshell.dev/%s\n", p.Name); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	cols := []string{"NAME", "SANDBOX", "ENDPOINT", "BINARY", "FLAGGED", "DECISION", "GATEWAY", "APPROVALS", "AGE"}
	if output == "wide" {
		cols = append(cols, "RULE", "HITS", "CONFIDENCE", "OUTCOME")
	}
	if allNamespaces {
		cols = append([]string{"NAMESPACE"}, cols...)
	}
	if _, err := fmt.Fprintln(tw, strings.Join(cols, "\t")); err != nil {
		return err
	}
	for i := range items {
		p := &items[i]
		row := []string{p.Name, p.Spec.SandboxRef.Name, dash(p.Status.Endpoint), dash(p.Status.Binary),
			strconv.FormatBool(p.Status.SecurityFlagged), string(p.Spec.Decision), gatewayCell(p), approvalsCell(p),
			duration.HumanDuration(now.Sub(p.CreationTimestamp.Time))}
		if output == "wide" {
			row = append(row, dash(p.Status.RuleName), strconv.Itoa(int(p.Status.HitCount)),
				fmt.Sprintf("%d%%", p.Status.ConfidencePercent), outcomeCell(p))
		}
		if allNamespaces {
			row = append([]string{p.Namespace}, row...)
		}
		if _, err := fmt.Fprintln(tw, strings.Join(row, "\t")); err != nil {
			return err
		}
	}
	return tw.Flush()
}

// outcomeCell summarises the gateway's answer to the last decision.
func outcomeCell(p *v1alpha1.PolicyProposal) string {
	o := p.Status.Outcome
	switch {
	case p.Status.InFlight != nil:
		return "sending " + string(p.Status.InFlight.Decision)
	case o == nil:
		return "-"
	case o.Error != "":
		return "refused: " + o.Error
	case o.PolicyVersion > 0:
		return fmt.Sprintf("%s: policy v%d", o.Decision, o.PolicyVersion)
	}
	return string(o.Decision)
}

func (o *options) proposalsCommand() *cobra.Command {
	var f filter
	cmd := &cobra.Command{
		Use:     "proposals [SANDBOX]",
		Aliases: []string{"proposal", "pp"},
		Short:   "List policy proposals (all, or one sandbox's)",
		Example: `  kubectl openshell proposals -A --pending
  kubectl openshell proposals agent -n team-a --flagged -o wide`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				f.sandbox = args[0]
			}
			items, err := o.listProposals(cmd, f)
			if err != nil {
				return err
			}
			switch o.output {
			case "yaml", "json":
				return printList(o.streams.Out, items, o.output)
			case "", "wide", "name":
				if len(items) == 0 && o.output != "name" {
					_, err := fmt.Fprintln(o.streams.ErrOut, "No proposals found.")
					return err
				}
				return printProposals(o.streams.Out, items, o.output, o.allNamespaces, o.now())
			}
			return fmt.Errorf("unknown output format %q: want wide, yaml, json or name", o.output)
		},
	}
	o.addAllNamespacesFlag(cmd)
	o.addOutputFlag(cmd, "wide, yaml, json or name")
	cmd.Flags().StringVar(&f.decision, "decision", "", "Only proposals with this decision (Pending, Approved, Rejected)")
	cmd.Flags().StringVar(&f.gatewayStatus, "gateway-status", "", "Only proposals with this gateway status (Pending, Approved, Rejected)")
	cmd.Flags().BoolVar(&f.waiting, "pending", false, "Only proposals waiting for a decision (not decided, not superseded)")
	cmd.Flags().BoolVar(&f.flagged, "flagged", false, "Only proposals the gateway flagged with security notes")
	return cmd
}

// listProposals lists the proposals of the namespace (all with -A) that f matches.
func (o *options) listProposals(cmd *cobra.Command, f filter) ([]v1alpha1.PolicyProposal, error) {
	c, err := o.kube()
	if err != nil {
		return nil, err
	}
	var opts []client.ListOption
	if !o.allNamespaces {
		ns, err := o.namespace()
		if err != nil {
			return nil, err
		}
		opts = append(opts, client.InNamespace(ns))
	}
	list := &v1alpha1.PolicyProposalList{}
	if err := c.List(cmd.Context(), list, opts...); err != nil {
		return nil, fmt.Errorf("list policy proposals: %w", err)
	}
	return selectProposals(list.Items, f), nil
}
