package plugin

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
	"github.com/openshell-operator/openshell-operator/internal/approvals"
)

// exportedPolicy is the sandbox's effective policy as a SandboxPolicy manifest ready to
// commit: its spec policy (inline or referenced) with the approved rules merged in, as the
// gateway merged them. name is the SandboxPolicy's name; notInSpec lists the proposals whose
// rules the spec lacks.
func exportedPolicy(sb *v1alpha1.Sandbox, base *v1alpha1.SandboxPolicySpec, proposals []v1alpha1.PolicyProposal, name string) (*v1alpha1.SandboxPolicy, []string) {
	merged, notInSpec := approvals.Merge(base, approvals.Approved(proposals, sb.Name))
	if len(merged.NetworkPolicies) == 0 {
		merged.NetworkPolicies = nil
	}
	return &v1alpha1.SandboxPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "SandboxPolicy"},
		ObjectMeta: metav1.ObjectMeta{Namespace: sb.Namespace, Name: name},
		Spec:       *merged,
	}, notInSpec
}

// policyManifest is what `policy export` prints: apiVersion, kind, name, namespace and spec
// only (no status, no server fields), so it can be committed as is.
type policyManifest struct {
	APIVersion string                     `json:"apiVersion"`
	Kind       string                     `json:"kind"`
	Metadata   manifestMeta               `json:"metadata"`
	Spec       v1alpha1.SandboxPolicySpec `json:"spec"`
}

// manifestMeta is a manifest's metadata.
type manifestMeta struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
}

func (o *options) policyCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "policy", Short: "Sandbox policy commands"}
	var name string
	export := &cobra.Command{
		Use:   "export SANDBOX",
		Short: "Print a sandbox's effective policy (spec + approved rules) as a SandboxPolicy to commit",
		Long: `Prints the sandbox's policy (spec.policy, or the SandboxPolicy spec.policyRef names) with
every rule approved through a PolicyProposal merged in, as a SandboxPolicy manifest. Commit
it (as the referenced SandboxPolicy, or as the Sandbox's spec.policy) and the sandbox's
status.policy.approvedRulesNotInSpec returns to 0.`,
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
			sb := &v1alpha1.Sandbox{}
			if err := c.Get(cmd.Context(), types.NamespacedName{Namespace: ns, Name: args[0]}, sb); err != nil {
				return fmt.Errorf("get sandbox %s/%s: %w", ns, args[0], err)
			}
			base, policyName := sb.Spec.Policy, name
			if ref := sb.Spec.PolicyRef; ref != nil {
				sp := &v1alpha1.SandboxPolicy{}
				if err := c.Get(cmd.Context(), types.NamespacedName{Namespace: ns, Name: ref.Name}, sp); err != nil {
					return fmt.Errorf("get sandbox policy %s/%s: %w", ns, ref.Name, err)
				}
				base = &sp.Spec
				if policyName == "" {
					policyName = ref.Name
				}
			}
			if policyName == "" {
				policyName = sb.Name
			}
			o.allNamespaces = false
			items, err := o.listProposals(cmd, filter{sandbox: sb.Name})
			if err != nil {
				return err
			}
			p, notInSpec := exportedPolicy(sb, base, items, policyName)
			format := o.output
			if format == "" {
				format = "yaml"
			}
			m := policyManifest{APIVersion: p.APIVersion, Kind: p.Kind, Metadata: manifestMeta{Name: p.Name, Namespace: p.Namespace}, Spec: p.Spec}
			if err := printData(o.streams.Out, m, format); err != nil {
				return err
			}
			if len(notInSpec) > 0 {
				_, _ = fmt.Fprintf(o.streams.ErrOut, "%d approved rule(s) not in the spec yet (from %s)\n", len(notInSpec), strings.Join(notInSpec, ", "))
			}
			return nil
		},
	}
	export.Flags().StringVar(&name, "name", "", "Name of the SandboxPolicy (default: the referenced policy's, else the sandbox's)")
	o.addOutputFlag(export, "yaml (default) or json")
	cmd.AddCommand(export)
	return cmd
}
