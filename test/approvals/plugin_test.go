package approvals

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
	"github.com/openshell-operator/openshell-operator/internal/plugin"
)

// kubeconfig provisions a certificate-authenticated user and writes its kubeconfig.
func kubeconfig(user string, groups ...string) string {
	u, err := testEnv.AddUser(envtest.User{Name: user, Groups: groups}, nil)
	Expect(err).NotTo(HaveOccurred())
	data, err := u.KubeConfig()
	Expect(err).NotTo(HaveOccurred())
	path := filepath.Join(GinkgoT().TempDir(), user+".kubeconfig")
	Expect(os.WriteFile(path, data, 0o600)).To(Succeed())
	return path
}

// kubectlOpenshell runs the plugin's command in-process with a kubeconfig, as `kubectl
// openshell --kubeconfig <kc> args...` would.
func kubectlOpenshell(kc string, args ...string) (stdout, stderr string, err error) {
	var out, errOut bytes.Buffer
	cmd := plugin.NewCommand(genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
	cmd.SetArgs(append([]string{"--kubeconfig", kc}, args...))
	err = cmd.ExecuteContext(ctx)
	return out.String(), errOut.String(), err
}

// mirror writes the status the operator would mirror from the gateway's chunk.
func mirror(p *v1alpha1.PolicyProposal, endpoint string, mutate func(*v1alpha1.PolicyProposalStatus)) {
	host, _, _ := strings.Cut(endpoint, ":")
	p.Status = v1alpha1.PolicyProposalStatus{RuleName: "allow_" + strings.ReplaceAll(host, ".", "_"), Endpoint: endpoint, Host: host, Port: 443,
		Binary: "/usr/bin/curl", GatewayStatus: v1alpha1.ChunkPending, ProposedRule: &v1alpha1.NetworkPolicyRule{
			Endpoints: []v1alpha1.NetworkEndpoint{{Host: host, Port: 443}}, Binaries: []v1alpha1.NetworkBinary{{Path: "/usr/bin/curl"}}}}
	if mutate != nil {
		mutate(&p.Status)
	}
	Expect(admin.Status().Update(ctx, p)).To(Succeed())
}

func getProposal(name string) *v1alpha1.PolicyProposal {
	p := &v1alpha1.PolicyProposal{}
	Expect(admin.Get(ctx, client.ObjectKey{Namespace: "team-c", Name: name}, p)).To(Succeed())
	return p
}

var _ = Describe("kubectl openshell against the API server", Ordered, func() {
	var aliceKC, bobKC, ownerKC string
	var github, pypi, flaggedOne, npm *v1alpha1.PolicyProposal

	BeforeAll(func() {
		Expect(admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-c"}})).To(Succeed())
		reviewers("team-c", "alice", "bob")
		aliceKC, bobKC = kubeconfig("alice"), kubeconfig("bob")
		ownerKC = kubeconfig("owner", "system:masters")

		Expect(admin.Create(ctx, &v1alpha1.SandboxPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "team-c", Name: "web"},
			Spec: v1alpha1.SandboxPolicySpec{NetworkPolicies: map[string]v1alpha1.NetworkPolicyRule{
				"pypi": {Name: "pypi", Endpoints: []v1alpha1.NetworkEndpoint{{Host: "pypi.org", Port: 443}}}}}})).To(Succeed())
		Expect(admin.Create(ctx, &v1alpha1.Sandbox{ObjectMeta: metav1.ObjectMeta{Namespace: "team-c", Name: "agent"},
			Spec: v1alpha1.SandboxSpec{PolicyRef: &v1alpha1.LocalObjectReference{Name: "web"}}})).To(Succeed())
		github, pypi, flaggedOne, npm = newProposal("team-c"), newProposal("team-c"), newProposal("team-c"), newProposal("team-c")
		mirror(github, "api.github.com:443", nil)
		mirror(pypi, "files.pythonhosted.org:443", nil)
		mirror(flaggedOne, "paste.example.com:443", func(s *v1alpha1.PolicyProposalStatus) {
			s.SecurityFlagged, s.SecurityNotes = true, "uploads to a paste site"
		})
		mirror(npm, "registry.npmjs.org:443", nil)

		// The admission policy is in place (the other suite's BeforeAll waited for it only
		// when it ran first).
		Eventually(func() error {
			cur := getProposal(npm.Name)
			cur.Spec.Decision = v1alpha1.ProposalApproved
			cur.Spec.Approvals = []v1alpha1.ProposalApproval{{User: "bob", Time: metav1.Now()}}
			return as("alice").Update(ctx, cur, client.DryRunAll)
		}, timeout, interval).Should(MatchError(ContainSubstring(forgedMessage)))
	})

	It("prints its version", func() {
		out, _, err := kubectlOpenshell(aliceKC, "--version")
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(HavePrefix("kubectl-openshell "))
	})

	It("lists a namespace's proposals for a reviewer, and refuses all namespaces", func() {
		out, _, err := kubectlOpenshell(aliceKC, "proposals", "-n", "team-c")
		Expect(err).NotTo(HaveOccurred())
		lines := strings.Split(strings.TrimSpace(out), "\n")
		Expect(lines).To(HaveLen(5))
		Expect(lines[0]).To(MatchRegexp(`^NAME\s+SANDBOX\s+ENDPOINT\s+BINARY\s+FLAGGED\s+DECISION\s+GATEWAY\s+APPROVALS\s+AGE$`))
		Expect(out).To(ContainSubstring("api.github.com:443"))

		out, _, err = kubectlOpenshell(aliceKC, "proposals", "agent", "-n", "team-c", "--flagged", "-o", "name")
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(Equal("policyproposal.openshell.dev/" + flaggedOne.Name + "\n"))

		_, _, err = kubectlOpenshell(aliceKC, "proposals", "-A")
		Expect(apierrors.IsForbidden(err)).To(BeTrue(), "error %v", err)
	})

	It("approves in the reviewer's verified name, and a second reviewer joins", func() {
		out, _, err := kubectlOpenshell(aliceKC, "approve", github.Name, "-n", "team-c")
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(Equal("policyproposal.openshell.dev/" + github.Name + " approved\n"))
		out, _, err = kubectlOpenshell(aliceKC, "approve", github.Name, "-n", "team-c")
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(ContainSubstring("unchanged"))
		_, _, err = kubectlOpenshell(bobKC, "approve", github.Name, "-n", "team-c")
		Expect(err).NotTo(HaveOccurred())
		p := getProposal(github.Name)
		Expect(p.Spec.Decision).To(Equal(v1alpha1.ProposalApproved))
		users := []string{}
		for _, a := range p.Spec.Approvals {
			users = append(users, a.User)
		}
		Expect(users).To(Equal([]string{"alice", "bob"}))
	})

	It("edits then approves with a rule file", func() {
		rule := filepath.Join(GinkgoT().TempDir(), "rule.yaml")
		Expect(os.WriteFile(rule, []byte("endpoints: [{host: files.pythonhosted.org, port: 443, access: read-only, protocol: rest}]\n"), 0o600)).To(Succeed())
		_, _, err := kubectlOpenshell(aliceKC, "approve", pypi.Name, "-n", "team-c", "--rule-file", rule)
		Expect(err).NotTo(HaveOccurred())
		p := getProposal(pypi.Name)
		Expect(p.Spec.Rule).NotTo(BeNil())
		Expect(p.Spec.Rule.Endpoints[0].Access).To(Equal("read-only"))
		Expect(p.Spec.Decision).To(Equal(v1alpha1.ProposalApproved))
	})

	It("undoes an approval and refuses to undo a rejection", func() {
		_, _, err := kubectlOpenshell(aliceKC, "undo", pypi.Name, "-n", "team-c")
		Expect(err).NotTo(HaveOccurred())
		p := getProposal(pypi.Name)
		Expect(p.Spec.Decision).To(Equal(v1alpha1.ProposalPending))
		Expect(p.Spec.Approvals).To(BeEmpty())

		_, _, err = kubectlOpenshell(aliceKC, "reject", pypi.Name, "-n", "team-c")
		Expect(err).To(MatchError(ContainSubstring("--reason is required")))
		_, _, err = kubectlOpenshell(aliceKC, "reject", pypi.Name, "-n", "team-c", "--reason", "use the internal mirror")
		Expect(err).NotTo(HaveOccurred())
		Expect(getProposal(pypi.Name).Spec.Reason).To(Equal("use the internal mirror"))
		_, stderr, err := kubectlOpenshell(aliceKC, "undo", pypi.Name, "-n", "team-c")
		Expect(err).To(HaveOccurred())
		Expect(stderr).To(ContainSubstring("the gateway cannot return a rejected chunk to pending"))
	})

	It("approves all waiting proposals but the security-flagged one", func() {
		out, _, err := kubectlOpenshell(bobKC, "approve-all", "agent", "-n", "team-c")
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(ContainSubstring("approved 1, skipped 1 security-flagged"))
		Expect(getProposal(npm.Name).Spec.Decision).To(Equal(v1alpha1.ProposalApproved))
		Expect(getProposal(flaggedOne.Name).Spec.Decision).To(Equal(v1alpha1.ProposalPending))
		_, _, err = kubectlOpenshell(bobKC, "approve-all", "agent", "-n", "team-c")
		Expect(err).To(MatchError(ContainSubstring("1 security-flagged proposals wait")))
	})

	It("exports the effective policy as a SandboxPolicy the API server accepts", func() {
		// The operator mirrors the gateway's approval of the github chunk.
		p := getProposal(github.Name)
		p.Status.GatewayStatus = v1alpha1.ChunkApproved
		Expect(admin.Status().Update(ctx, p)).To(Succeed())

		out, stderr, err := kubectlOpenshell(aliceKC, "policy", "export", "agent", "-n", "team-c")
		Expect(err).NotTo(HaveOccurred())
		Expect(stderr).To(ContainSubstring("1 approved rule(s) not in the spec yet (from " + github.Name + ")"))
		exported := &v1alpha1.SandboxPolicy{}
		Expect(yaml.UnmarshalStrict([]byte(out), exported)).To(Succeed())
		Expect(exported.Name).To(Equal("web"))
		Expect(exported.Spec.NetworkPolicies).To(HaveKey("pypi"))
		Expect(exported.Spec.NetworkPolicies).To(HaveKey("allow_api_github_com"))

		// Committing it: the owner applies the export; nothing is left to add.
		current := &v1alpha1.SandboxPolicy{}
		Expect(admin.Get(ctx, client.ObjectKey{Namespace: "team-c", Name: "web"}, current)).To(Succeed())
		current.Spec = exported.Spec
		Expect(admin.Update(ctx, current, client.FieldValidation(metav1.FieldValidationStrict))).To(Succeed())
		out2, stderr, err := kubectlOpenshell(aliceKC, "policy", "export", "agent", "-n", "team-c")
		Expect(err).NotTo(HaveOccurred())
		Expect(stderr).To(BeEmpty())
		Expect(out2).To(Equal(out))
	})

	It("shows the sandbox tree without what the reviewer may not read", func() {
		Expect(admin.Create(ctx, &corev1.Event{
			ObjectMeta:     metav1.ObjectMeta{Namespace: "team-c", Name: "agent.1"},
			InvolvedObject: corev1.ObjectReference{Kind: "Sandbox", Namespace: "team-c", Name: "agent", APIVersion: v1alpha1.GroupVersion.String()},
			Type:           corev1.EventTypeNormal, Reason: "PolicyLoaded", Message: "policy version 2 loaded",
			LastTimestamp: metav1.Now(), Source: corev1.EventSource{Component: "openshell-operator"},
		})).To(Succeed())
		out, _, err := kubectlOpenshell(aliceKC, "status", "agent", "-n", "team-c")
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(HavePrefix("Sandbox team-c/agent: no status yet"))
		Expect(out).To(ContainSubstring("├─ GatewayConnection default: GatewayConnection default not readable with your permissions\n"))
		Expect(out).To(ContainSubstring("├─ Policy (SandboxPolicy web): not reported yet\n"))
		Expect(out).To(ContainSubstring("Proposals: 1 waiting"))
		Expect(out).To(ContainSubstring(flaggedOne.Name + ": paste.example.com:443 /usr/bin/curl [security-flagged]"))
		Expect(out).To(MatchRegexp(`└─ .* ago Normal PolicyLoaded: policy version 2 loaded\n$`))
	})

	It("prints the history in time order", func() {
		out, _, err := kubectlOpenshell(aliceKC, "history", "agent", "-n", "team-c")
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(ContainSubstring("approval   " + github.Name + "   by alice"))
		Expect(strings.Count(out, "proposed")).To(Equal(4))
	})

	It("asks for a clear through the Sandbox, which needs more than a reviewer's role", func() {
		_, _, err := kubectlOpenshell(aliceKC, "clear", "agent", "-n", "team-c")
		Expect(apierrors.IsForbidden(err)).To(BeTrue(), "error %v", err)
		out, _, err := kubectlOpenshell(ownerKC, "clear", "agent", "-n", "team-c")
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(Equal("sandbox.openshell.dev/agent clear requested\n"))
		sb := &v1alpha1.Sandbox{}
		Expect(admin.Get(ctx, client.ObjectKey{Namespace: "team-c", Name: "agent"}, sb)).To(Succeed())
		Expect(sb.Annotations).To(HaveKey(v1alpha1.AnnotationClearProposals))
	})
})
