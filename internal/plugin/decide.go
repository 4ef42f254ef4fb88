package plugin

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
)

// errNoChange is returned by a decision that is already in place; it is not a failure.
var errNoChange = errors.New("no change")

// editable refuses a rule replacement the gateway could not apply: it edits pending chunks
// only.
func editable(p *v1alpha1.PolicyProposal) error {
	switch {
	case p.Spec.Decision == v1alpha1.ProposalApproved:
		return fmt.Errorf("%s is approved: undo it before changing its rule", p.Name)
	case p.Spec.Decision == v1alpha1.ProposalRejected ||
		(p.Status.GatewayStatus != "" && p.Status.GatewayStatus != v1alpha1.ChunkPending):
		return fmt.Errorf("%s is not pending on the gateway (%s), which edits pending chunks only", p.Name, gatewayCell(p))
	}
	return nil
}

// notSuperseded refuses deciding a superseded proposal: the gateway rejected it in favour of
// a newer chunk, which is the one to decide.
func notSuperseded(p *v1alpha1.PolicyProposal) error {
	if p.Status.SupersededBy != "" {
		return fmt.Errorf("%s is superseded by chunk %s: decide the newer proposal", p.Name, p.Status.SupersededBy)
	}
	return nil
}

// applyApprove sets the decision Approved and records user's approval (once); rule, when
// set, replaces the proposed rule first (the operator edits the chunk, then approves it).
func applyApprove(p *v1alpha1.PolicyProposal, user string, at time.Time, rule *v1alpha1.NetworkPolicyRule) error {
	if err := notSuperseded(p); err != nil {
		return err
	}
	if rule != nil {
		if err := editable(p); err != nil {
			return err
		}
		p.Spec.Rule = rule.DeepCopy()
	}
	mine := false
	for _, a := range p.Spec.Approvals {
		mine = mine || a.User == user
	}
	if p.Spec.Decision == v1alpha1.ProposalApproved && mine && rule == nil {
		return errNoChange
	}
	if p.Spec.Decision != v1alpha1.ProposalApproved {
		p.Spec.Approvals = nil
	}
	p.Spec.Decision, p.Spec.Reason = v1alpha1.ProposalApproved, ""
	if !mine {
		p.Spec.Approvals = append(p.Spec.Approvals, v1alpha1.ProposalApproval{User: user, Time: metav1.NewTime(at.UTC().Truncate(time.Second))})
	}
	return nil
}

// applyReject sets the decision Rejected with reason; approvals are dropped (they approved
// something no longer decided).
func applyReject(p *v1alpha1.PolicyProposal, reason string) error {
	if reason == "" {
		return errors.New("--reason is required: the gateway passes it to the sandbox's agent")
	}
	if err := notSuperseded(p); err != nil {
		return err
	}
	if p.Spec.Decision == v1alpha1.ProposalRejected && p.Spec.Reason == reason {
		return errNoChange
	}
	p.Spec.Decision, p.Spec.Reason, p.Spec.Approvals = v1alpha1.ProposalRejected, reason, nil
	return nil
}

// applyUndo returns an approved proposal to Pending (the gateway removes its rule).
func applyUndo(p *v1alpha1.PolicyProposal) error {
	switch p.Spec.Decision {
	case v1alpha1.ProposalRejected:
		return fmt.Errorf("%s is rejected: the gateway cannot return a rejected chunk to pending; approve it instead", p.Name)
	case v1alpha1.ProposalPending:
		return errNoChange
	}
	p.Spec.Decision, p.Spec.Approvals, p.Spec.Reason = v1alpha1.ProposalPending, nil, ""
	return nil
}

// applyEdit replaces the proposed rule of a pending proposal.
func applyEdit(p *v1alpha1.PolicyProposal, rule *v1alpha1.NetworkPolicyRule) error {
	if err := notSuperseded(p); err != nil {
		return err
	}
	if err := editable(p); err != nil {
		return err
	}
	p.Spec.Rule = rule.DeepCopy()
	return nil
}

// readRule reads a NetworkPolicyRule (YAML or JSON, the SandboxPolicy shape) from path.
func readRule(path string) (*v1alpha1.NetworkPolicyRule, error) {
	if path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("rule file: %w", err)
	}
	r := &v1alpha1.NetworkPolicyRule{}
	if err := yaml.UnmarshalStrict(data, r); err != nil {
		return nil, fmt.Errorf("rule file %s: %w", path, err)
	}
	if len(r.Endpoints) == 0 {
		return nil, fmt.Errorf("rule file %s: the rule has no endpoints", path)
	}
	return r, nil
}

// change applies mutate to the named proposal in namespace and stores it, retrying on
// conflicts; errNoChange means there was nothing to store.
func change(ctx context.Context, c client.Client, namespace, name string, mutate func(*v1alpha1.PolicyProposal) error) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		p := &v1alpha1.PolicyProposal{}
		if err := c.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, p); err != nil {
			return fmt.Errorf("get policy proposal %s/%s: %w", namespace, name, err)
		}
		if err := mutate(p); err != nil {
			return err
		}
		if err := c.Update(ctx, p); err != nil {
			return fmt.Errorf("update policy proposal %s/%s: %w", namespace, name, err)
		}
		return nil
	})
}

// decideEach applies mutate to every named proposal, reporting each; it fails when any did.
func (o *options) decideEach(cmd *cobra.Command, names []string, verb string, mutate func(user string) func(*v1alpha1.PolicyProposal) error) error {
	c, err := o.kube()
	if err != nil {
		return err
	}
	ns, err := o.namespace()
	if err != nil {
		return err
	}
	user := ""
	if verb == "approved" {
		if user, err = o.whoami(cmd.Context(), c); err != nil {
			return err
		}
	}
	failed := 0
	for _, name := range names {
		err := change(cmd.Context(), c, ns, name, mutate(user))
		switch {
		case errors.Is(err, errNoChange):
			_, _ = fmt.Fprintf(o.streams.Out, "policyproposal.openshell.dev/%s unchanged\n", name)
		case err != nil:
			failed++
			_, _ = fmt.Fprintf(o.streams.ErrOut, "error: %v\n", err)
		default:
			_, _ = fmt.Fprintf(o.streams.Out, "policyproposal.openshell.dev/%s %s\n", name, verb)
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d proposals failed", failed, len(names))
	}
	return nil
}

func (o *options) approveCommand() *cobra.Command {
	var ruleFile string
	cmd := &cobra.Command{
		Use:   "approve PROPOSAL...",
		Short: "Approve proposals, recording you as an approver",
		Long: `Sets spec.decision to Approved and adds your approval (your user name, as the API
server authenticates you; an admission policy refuses any other). With a namespace quorum
of N, the operator approves on the gateway once N distinct users approved.`,
		Example: `  kubectl openshell approve agent-3f2a9c1e -n team-a
  kubectl openshell approve agent-3f2a9c1e --rule-file narrower.yaml   # edit, then approve`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rule, err := readRule(ruleFile)
			if err != nil {
				return err
			}
			now := o.now()
			return o.decideEach(cmd, args, "approved", func(user string) func(*v1alpha1.PolicyProposal) error {
				return func(p *v1alpha1.PolicyProposal) error { return applyApprove(p, user, now, rule) }
			})
		},
	}
	cmd.Flags().StringVar(&ruleFile, "rule-file", "", "Replace the proposed rule with this NetworkPolicyRule (YAML) before approving")
	return cmd
}

func (o *options) rejectCommand() *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:     "reject PROPOSAL... --reason REASON",
		Short:   "Reject proposals (an approved one's rule is removed)",
		Example: `  kubectl openshell reject agent-3f2a9c1e --reason "use the internal mirror"`,
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if reason == "" {
				return errors.New("--reason is required: the gateway passes it to the sandbox's agent")
			}
			return o.decideEach(cmd, args, "rejected", func(string) func(*v1alpha1.PolicyProposal) error {
				return func(p *v1alpha1.PolicyProposal) error { return applyReject(p, reason) }
			})
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "Why (required; the sandbox's agent sees it)")
	return cmd
}

func (o *options) undoCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "undo PROPOSAL...",
		Short: "Undo approvals: back to Pending (the gateway removes the rule in a new policy version)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.decideEach(cmd, args, "undone", func(string) func(*v1alpha1.PolicyProposal) error {
				return applyUndo
			})
		},
	}
}

func (o *options) editCommand() *cobra.Command {
	var ruleFile string
	cmd := &cobra.Command{
		Use:   "edit PROPOSAL --rule-file FILE",
		Short: "Replace the rule of a pending proposal (decide it afterwards)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if ruleFile == "" {
				return errors.New("--rule-file is required")
			}
			rule, err := readRule(ruleFile)
			if err != nil {
				return err
			}
			return o.decideEach(cmd, args, "edited", func(string) func(*v1alpha1.PolicyProposal) error {
				return func(p *v1alpha1.PolicyProposal) error { return applyEdit(p, rule) }
			})
		},
	}
	cmd.Flags().StringVar(&ruleFile, "rule-file", "", "The replacement NetworkPolicyRule (YAML)")
	return cmd
}

// approveAllSelection splits sandbox's proposals waiting for a decision into those to approve
// and the security-flagged ones skipped (unless includeFlagged), as the gateway's
// ApproveAll does.
func approveAllSelection(items []v1alpha1.PolicyProposal, sandbox string, includeFlagged bool) (approve, skipped []string) {
	for _, p := range selectProposals(items, filter{sandbox: sandbox, waiting: true}) {
		if p.Status.SecurityFlagged && !includeFlagged {
			skipped = append(skipped, p.Name)
			continue
		}
		approve = append(approve, p.Name)
	}
	return approve, skipped
}

func (o *options) approveAllCommand() *cobra.Command {
	var includeFlagged bool
	cmd := &cobra.Command{
		Use:   "approve-all SANDBOX",
		Short: "Approve every proposal of a sandbox waiting for a decision",
		Long: `Approves, one by one and in your name, every proposal of SANDBOX that waits for a
decision. Security-flagged proposals are skipped unless --include-security-flagged, as the
gateway's ApproveAll does.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.allNamespaces = false
			items, err := o.listProposals(cmd, filter{sandbox: args[0]})
			if err != nil {
				return err
			}
			approve, skipped := approveAllSelection(items, args[0], includeFlagged)
			if len(approve) == 0 {
				if len(skipped) > 0 {
					return fmt.Errorf("sandbox %s: %d security-flagged proposals wait; review them or pass --include-security-flagged", args[0], len(skipped))
				}
				return fmt.Errorf("sandbox %s has no proposals waiting for a decision", args[0])
			}
			now := o.now()
			err = o.decideEach(cmd, approve, "approved", func(user string) func(*v1alpha1.PolicyProposal) error {
				return func(p *v1alpha1.PolicyProposal) error { return applyApprove(p, user, now, nil) }
			})
			_, _ = fmt.Fprintf(o.streams.Out, "approved %d, skipped %d security-flagged\n", len(approve), len(skipped))
			return err
		},
	}
	cmd.Flags().BoolVar(&includeFlagged, "include-security-flagged", false, "Also approve proposals with security notes")
	return cmd
}

func (o *options) clearCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "clear SANDBOX",
		Short: "Ask the operator to clear a sandbox's pending proposals on the gateway",
		Long: `Annotates the Sandbox with ` + v1alpha1.AnnotationClearProposals + `=<now>. The operator
calls the gateway's ClearDraftChunks (which deletes pending chunks only), deletes the
PolicyProposals of the cleared chunks and removes the annotation. Needs patch on the
Sandbox (an owner's right, not a reviewer's).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.kube()
			if err != nil {
				return err
			}
			ns, err := o.namespace()
			if err != nil {
				return err
			}
			sb := &v1alpha1.Sandbox{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: args[0]}}
			patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, v1alpha1.AnnotationClearProposals, o.now().UTC().Format(time.RFC3339))
			if err := c.Patch(cmd.Context(), sb, client.RawPatch(types.MergePatchType, []byte(patch))); err != nil {
				return fmt.Errorf("annotate sandbox %s/%s: %w", ns, args[0], err)
			}
			_, err = fmt.Fprintf(o.streams.Out, "sandbox.openshell.dev/%s clear requested\n", args[0])
			return err
		},
	}
}
