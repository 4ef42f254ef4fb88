// Package plugin is `kubectl openshell`: review PolicyProposals, export a sandbox's effective
// policy and show a sandbox's state. It talks only to the Kubernetes API, with the user's
// kubeconfig and kubectl's usual flags; it never holds gateway credentials, so every action
// is a Kubernetes object change the operator carries out.
package plugin

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	authenticationv1 "k8s.io/api/authentication/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
	"github.com/openshell-operator/openshell-operator/internal/version"
)

// Name is the plugin's binary name; kubectl runs it as `kubectl openshell`.
const Name = "kubectl-openshell"

// options are the flags and connections every command shares.
type options struct {
	flags   *genericclioptions.ConfigFlags
	streams genericiooptions.IOStreams
	// allNamespaces is -A.
	allNamespaces bool
	// output is -o: "" (a table), wide, yaml, json or name.
	output string
	// now is the clock (tests fix it).
	now func() time.Time

	client client.Client
}

// NewCommand returns the root command writing to streams.
func NewCommand(streams genericiooptions.IOStreams) *cobra.Command {
	o := &options{flags: genericclioptions.NewConfigFlags(true), streams: streams, now: time.Now}
	cmd := &cobra.Command{
		Use: "openshell",
		// kubectl runs plugins as "kubectl <name>"; help and usage say so.
		Annotations: map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl openshell"},
		Short:       "Review OpenShell sandbox policy proposals and inspect sandboxes",
		Long: `kubectl openshell reviews the network rules the OpenShell policy advisor proposes
(PolicyProposals), exports a sandbox's effective policy for Git, and shows a sandbox's state.
It uses only the Kubernetes API with your kubeconfig: deciding needs RBAC on policyproposals
in the sandbox's namespace, nothing else.`,
		Version:       version.String(Name),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	cmd.SetVersionTemplate("{{.Version}}\n")
	cmd.SetOut(streams.Out)
	cmd.SetErr(streams.ErrOut)
	o.flags.AddFlags(cmd.PersistentFlags())
	cmd.AddCommand(
		o.proposalsCommand(),
		o.approveCommand(), o.rejectCommand(), o.undoCommand(), o.editCommand(),
		o.approveAllCommand(), o.clearCommand(),
		o.historyCommand(), o.policyCommand(), o.statusCommand(),
	)
	return cmd
}

// addOutputFlag adds -o with the formats a command supports.
func (o *options) addOutputFlag(cmd *cobra.Command, formats string) {
	cmd.Flags().StringVarP(&o.output, "output", "o", "", "Output format: "+formats)
}

// addAllNamespacesFlag adds -A.
func (o *options) addAllNamespacesFlag(cmd *cobra.Command) {
	cmd.Flags().BoolVarP(&o.allNamespaces, "all-namespaces", "A", false, "List across all namespaces")
}

// scheme knows the openshell.dev kinds and the built-in ones the plugin reads.
func scheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		return nil, err
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		return nil, err
	}
	return s, nil
}

// kube returns the Kubernetes client for the kubeconfig and flags.
func (o *options) kube() (client.Client, error) {
	if o.client != nil {
		return o.client, nil
	}
	cfg, err := o.flags.ToRESTConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	s, err := scheme()
	if err != nil {
		return nil, err
	}
	c, err := client.New(cfg, client.Options{Scheme: s})
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	o.client = c
	return c, nil
}

// namespace is -n, else the kubeconfig context's namespace, else "default".
func (o *options) namespace() (string, error) {
	ns, _, err := o.flags.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return "", fmt.Errorf("namespace: %w", err)
	}
	return ns, nil
}

// whoami is the user name the API server authenticates this kubeconfig as (what the
// admission policy compares an approval with), from a SelfSubjectReview.
func (o *options) whoami(ctx context.Context, c client.Client) (string, error) {
	r := &authenticationv1.SelfSubjectReview{}
	if err := c.Create(ctx, r); err != nil {
		return "", fmt.Errorf("who am I (SelfSubjectReview): %w", err)
	}
	if r.Status.UserInfo.Username == "" {
		return "", fmt.Errorf("who am I (SelfSubjectReview): the API server returned no user name")
	}
	return r.Status.UserInfo.Username, nil
}
