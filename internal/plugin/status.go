package plugin

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/duration"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
)

// maxEvents is how many recent events `status` shows.
const maxEvents = 5

// statusReport is everything `status` shows about one sandbox; -o yaml|json prints it.
type statusReport struct {
	// Sandbox is the Sandbox.
	Sandbox *v1alpha1.Sandbox `json:"sandbox"`
	// Connection is its GatewayConnection; ConnectionError says why it is missing.
	Connection      *v1alpha1.GatewayConnection `json:"connection,omitempty"`
	ConnectionError string                      `json:"connectionError,omitempty"`
	// Providers are the attached Providers; MissingProviders those that could not be read.
	Providers        []v1alpha1.Provider `json:"providers,omitempty"`
	MissingProviders []string            `json:"missingProviders,omitempty"`
	// Proposals are the sandbox's PolicyProposals.
	Proposals []v1alpha1.PolicyProposal `json:"proposals,omitempty"`
	// Events are the sandbox's most recent events, newest first.
	Events []corev1.Event `json:"events,omitempty"`
}

// node is one line of a tree and the lines under it.
type node struct {
	text     string
	children []node
}

// render writes the tree with box-drawing branches, as kubectl tree plugins do.
func render(w io.Writer, n node) error {
	if _, err := fmt.Fprintln(w, n.text); err != nil {
		return err
	}
	return renderChildren(w, n.children, "")
}

func renderChildren(w io.Writer, children []node, prefix string) error {
	for i, c := range children {
		branch, next := "├─ ", "│  "
		if i == len(children)-1 {
			branch, next = "└─ ", "   "
		}
		if _, err := fmt.Fprintln(w, prefix+branch+c.text); err != nil {
			return err
		}
		if err := renderChildren(w, c.children, prefix+next); err != nil {
			return err
		}
	}
	return nil
}

// readiness summarises the Ready condition: "Ready", or "not ready (Reason): message".
func readiness(conds []metav1.Condition) string {
	for _, c := range conds {
		if c.Type != v1alpha1.ConditionReady {
			continue
		}
		if c.Status == metav1.ConditionTrue {
			return "Ready"
		}
		s := "not ready (" + c.Reason + ")"
		if c.Message != "" {
			s += ": " + c.Message
		}
		return s
	}
	return "no status yet"
}

// policyNode describes the sandbox's policy: source, versions, load state, approvals not in
// spec, a global policy overriding it.
func policyNode(sb *v1alpha1.Sandbox) node {
	source := "gateway default"
	switch {
	case sb.Spec.PolicyRef != nil:
		source = "SandboxPolicy " + sb.Spec.PolicyRef.Name
	case sb.Spec.Policy != nil:
		source = "inline"
	}
	st := sb.Status.Policy
	if st == nil {
		return node{text: "Policy (" + source + "): not reported yet"}
	}
	n := node{text: fmt.Sprintf("Policy (%s): version %d, active %d, %s", source, st.Version, st.ActiveVersion, dash(string(st.Status)))}
	if st.LoadError != "" {
		n.children = append(n.children, node{text: "load error: " + st.LoadError})
	}
	if st.GlobalPolicyVersion > 0 {
		n.children = append(n.children, node{text: fmt.Sprintf("overridden by global policy version %d", st.GlobalPolicyVersion)})
	}
	if st.ApprovedRulesNotInSpec > 0 {
		n.children = append(n.children, node{text: fmt.Sprintf("%d approved rule(s) not in spec: run kubectl openshell policy export %s", st.ApprovedRulesNotInSpec, sb.Name)})
	}
	return n
}

// proposalsNode counts the proposals (waiting for a decision, then the others by gateway
// status) and lists those waiting.
func proposalsNode(items []v1alpha1.PolicyProposal) node {
	counts := map[string]int{}
	var pending []node
	for _, p := range selectProposals(items, filter{}) {
		if !waiting(&p) {
			counts[gatewayCell(&p)]++
			continue
		}
		text := fmt.Sprintf("%s: %s %s", p.Name, dash(p.Status.Endpoint), dash(p.Status.Binary))
		if p.Status.SecurityFlagged {
			text += " [security-flagged]"
		}
		pending = append(pending, node{text: text})
	}
	text := fmt.Sprintf("Proposals: %d waiting", len(pending))
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		text += fmt.Sprintf(", %d %s", counts[k], strings.ToLower(k))
	}
	return node{text: text, children: pending}
}

// eventTime is when an event last happened.
func eventTime(e *corev1.Event) time.Time {
	switch {
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	}
	return e.CreationTimestamp.Time
}

// recentEvents sorts events newest first and keeps at most maxEvents.
func recentEvents(events []corev1.Event) []corev1.Event {
	out := append([]corev1.Event(nil), events...)
	sort.SliceStable(out, func(i, j int) bool { return eventTime(&out[i]).After(eventTime(&out[j])) })
	if len(out) > maxEvents {
		out = out[:maxEvents]
	}
	return out
}

// statusTree is the tree `status` prints.
func statusTree(r *statusReport, now time.Time) node {
	sb := r.Sandbox
	root := node{text: fmt.Sprintf("Sandbox %s/%s: %s (phase %s)", sb.Namespace, sb.Name, readiness(sb.Status.Conditions), dash(string(sb.Status.Phase)))}
	conn := "GatewayConnection " + sb.Spec.GatewayRef.Name + ": "
	if r.Connection != nil {
		conn += readiness(r.Connection.Status.Conditions)
	} else {
		conn += r.ConnectionError
	}
	root.children = append(root.children, node{text: conn})
	prov := node{text: fmt.Sprintf("Providers (%d)", len(sb.Spec.Providers))}
	for _, p := range r.Providers {
		prov.children = append(prov.children, node{text: p.Name + ": " + readiness(p.Status.Conditions)})
	}
	for _, m := range r.MissingProviders {
		prov.children = append(prov.children, node{text: m})
	}
	root.children = append(root.children, prov, policyNode(sb), proposalsNode(r.Proposals))
	ev := node{text: fmt.Sprintf("Events (last %d)", maxEvents)}
	for _, e := range r.Events {
		ev.children = append(ev.children, node{text: fmt.Sprintf("%s ago %s %s: %s",
			duration.HumanDuration(now.Sub(eventTime(&e))), e.Type, e.Reason, e.Message)})
	}
	if len(ev.children) == 0 {
		ev.text = "Events: none"
	}
	root.children = append(root.children, ev)
	return root
}

// unreadable describes why an object could not be read, without more than the user sent.
func unreadable(kind, name string, err error) string {
	switch {
	case apierrors.IsNotFound(err):
		return kind + " " + name + " not found"
	case apierrors.IsForbidden(err):
		return kind + " " + name + " not readable with your permissions"
	}
	return fmt.Sprintf("%s %s: %v", kind, name, err)
}

// gatherStatus reads the sandbox and what hangs off it.
func (o *options) gatherStatus(cmd *cobra.Command, name string) (*statusReport, error) {
	c, err := o.kube()
	if err != nil {
		return nil, err
	}
	ns, err := o.namespace()
	if err != nil {
		return nil, err
	}
	ctx := cmd.Context()
	r := &statusReport{Sandbox: &v1alpha1.Sandbox{}}
	if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, r.Sandbox); err != nil {
		return nil, fmt.Errorf("get sandbox %s/%s: %w", ns, name, err)
	}
	gwc := &v1alpha1.GatewayConnection{}
	if err := c.Get(ctx, types.NamespacedName{Name: r.Sandbox.Spec.GatewayRef.Name}, gwc); err != nil {
		r.ConnectionError = unreadable("GatewayConnection", r.Sandbox.Spec.GatewayRef.Name, err)
	} else {
		r.Connection = gwc
	}
	for _, p := range r.Sandbox.Spec.Providers {
		prov := &v1alpha1.Provider{}
		if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: p}, prov); err != nil {
			r.MissingProviders = append(r.MissingProviders, unreadable("Provider", p, err))
			continue
		}
		r.Providers = append(r.Providers, *prov)
	}
	o.allNamespaces = false
	if r.Proposals, err = o.listProposals(cmd, filter{sandbox: name}); err != nil {
		return nil, err
	}
	events := &corev1.EventList{}
	if err := c.List(ctx, events, client.InNamespace(ns), client.MatchingFields{
		"involvedObject.kind": "Sandbox", "involvedObject.name": name}); err != nil {
		return nil, fmt.Errorf("list events of sandbox %s/%s: %w", ns, name, err)
	}
	r.Events = recentEvents(events.Items)
	return r, nil
}

func (o *options) statusCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "status SANDBOX",
		Short: "Show a sandbox as a tree: connection, providers, policy, proposals, recent events",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := o.gatherStatus(cmd, args[0])
			if err != nil {
				return err
			}
			if o.output != "" {
				return printData(o.streams.Out, r, o.output)
			}
			return render(o.streams.Out, statusTree(r, o.now()))
		},
	}
	o.addOutputFlag(cmd, "yaml or json")
	return cmd
}
