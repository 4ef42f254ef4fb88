//go:build e2e

package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"sigs.k8s.io/yaml"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
	"github.com/openshell-operator/openshell-operator/internal/devenv"
)

// approvalsNamespace holds this file's objects.
const approvalsNamespace = "e2e-approvals"

const approvalsManifest = `apiVersion: v1
kind: Namespace
metadata: {name: e2e-approvals}
---
apiVersion: openshell.dev/v1alpha1
kind: SandboxPolicy
metadata: {name: web, namespace: e2e-approvals}
spec:
  process: {runAsUser: sandbox, runAsGroup: sandbox}
  networkPolicies:
    pypi:
      name: pypi
      endpoints: [{host: pypi.org, ports: [443]}]
---
apiVersion: openshell.dev/v1alpha1
kind: Sandbox
metadata: {name: agent, namespace: e2e-approvals}
spec:
  image: ghcr.io/nvidia/openshell-community/sandboxes/base:latest
  policyRef: {name: web}
`

var _ = Describe("kubectl openshell (the plugin binary)", Ordered, func() {
	var plugin, pluginDir, gwName, chunkID, proposal string

	// openshell runs the plugin binary with the environment's admin kubeconfig.
	openshell := func(ctx context.Context, args ...string) (string, string, error) {
		cmd := exec.CommandContext(ctx, plugin, append([]string{"--kubeconfig", env.Kubeconfig}, args...)...)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		return stdout.String(), stderr.String(), err
	}

	BeforeAll(func(ctx SpecContext) {
		root, err := filepath.Abs("../..")
		Expect(err).NotTo(HaveOccurred())
		pluginDir = GinkgoT().TempDir()
		plugin, err = devenv.BuildPlugin(ctx, root, pluginDir, GinkgoWriter)
		Expect(err).NotTo(HaveOccurred())
		Expect(env.ApplySamples(ctx)).To(Succeed())
		kubectl("apply", "-k", filepath.Join(root, "config", "approvals"))
		f := filepath.Join(GinkgoT().TempDir(), "approvals.yaml")
		Expect(os.WriteFile(f, []byte(approvalsManifest), 0o600)).To(Succeed())
		kubectl("apply", "-f", f)
		kubectl("wait", "--for=condition=Ready", "--timeout=120s", "-n", approvalsNamespace, "sandbox/agent")
		gwName = strings.TrimSpace(kubectl("get", "-n", approvalsNamespace, "sandbox/agent", "-o", "jsonpath={.status.gatewayName}"))
		Expect(gwName).NotTo(BeEmpty())
	}, NodeTimeout(5*time.Minute))

	It("is found by kubectl as `kubectl openshell`", func(ctx SpecContext) {
		cmd := exec.CommandContext(ctx, env.KubectlPath(), "openshell", "--version")
		cmd.Env = append(os.Environ(), "PATH="+pluginDir+string(os.PathListSeparator)+os.Getenv("PATH"))
		out, err := cmd.CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), string(out))
		Expect(string(out)).To(HavePrefix("kubectl-openshell "))
	}, SpecTimeout(time.Minute))

	It("lists the proposal the policy advisor submitted", func(ctx SpecContext) {
		var err error
		chunkID, err = env.ProposeDraftChunk(ctx, gwName, "allow_api_github_com",
			`{"name":"allow_api_github_com","endpoints":[{"host":"api.github.com","port":443}],"binaries":[{"path":"/usr/bin/curl"}]}`, "")
		Expect(err).NotTo(HaveOccurred())
		Eventually(func(g Gomega) {
			out, stderr, err := openshell(ctx, "proposals", "agent", "-n", approvalsNamespace, "--pending", "-o", "name")
			g.Expect(err).NotTo(HaveOccurred(), stderr)
			g.Expect(strings.Fields(out)).To(HaveLen(1))
			proposal = strings.TrimPrefix(strings.TrimSpace(out), "policyproposal.openshell.dev/")
		}, 90*time.Second, time.Second).Should(Succeed())
		// Listed at once, mirrored once the operator has read the chunk.
		Eventually(func(g Gomega) string {
			out, _, err := openshell(ctx, "proposals", "-n", approvalsNamespace)
			g.Expect(err).NotTo(HaveOccurred())
			return out
		}, 90*time.Second, time.Second).Should(MatchRegexp(proposal + `\s+agent\s+api.github.com:443\s+/usr/bin/curl\s+false\s+Pending\s+Pending`))
	}, SpecTimeout(2*time.Minute))

	It("approves it in the caller's verified name; the gateway merges the rule", func(ctx SpecContext) {
		out, stderr, err := openshell(ctx, "approve", proposal, "-n", approvalsNamespace)
		Expect(err).NotTo(HaveOccurred(), stderr)
		Expect(out).To(Equal("policyproposal.openshell.dev/" + proposal + " approved\n"))
		Eventually(func(g Gomega) string {
			resp, err := gw.Approvals.GetDraft(ctx, gwName, "")
			g.Expect(err).NotTo(HaveOccurred())
			for _, c := range resp.GetChunks() {
				if c.GetId() == chunkID {
					return c.GetStatus()
				}
			}
			return ""
		}, 90*time.Second, time.Second).Should(Equal("approved"))
		Eventually(func() string {
			return kubectl("get", "-n", approvalsNamespace, "sandbox/agent", "-o", "jsonpath={.status.policy.approvedRulesNotInSpec}")
		}, 90*time.Second, time.Second).Should(Equal("1"))
		user := kubectl("get", "-n", approvalsNamespace, "policyproposal/"+proposal, "-o", "jsonpath={.spec.approvals[0].user}")
		Expect(user).NotTo(BeEmpty())
	}, SpecTimeout(4*time.Minute))

	It("exports the effective policy, which applies and leaves nothing to commit", func(ctx SpecContext) {
		out, stderr, err := openshell(ctx, "policy", "export", "agent", "-n", approvalsNamespace)
		Expect(err).NotTo(HaveOccurred(), stderr)
		Expect(stderr).To(ContainSubstring("1 approved rule(s) not in the spec yet"))
		exported := &v1alpha1.SandboxPolicy{}
		Expect(yaml.UnmarshalStrict([]byte(out), exported)).To(Succeed())
		Expect(exported.Name).To(Equal("web"))
		Expect(exported.Spec.NetworkPolicies).To(HaveKey("pypi"))
		Expect(exported.Spec.NetworkPolicies).To(HaveKey("allow_api_github_com"))
		f := filepath.Join(GinkgoT().TempDir(), "web.yaml")
		Expect(os.WriteFile(f, []byte(out), 0o600)).To(Succeed())
		kubectl("apply", "--server-side", "--force-conflicts", "-f", f)
		Eventually(func() string {
			return kubectl("get", "-n", approvalsNamespace, "sandbox/agent", "-o", "jsonpath={.status.policy.approvedRulesNotInSpec}")
		}, 90*time.Second, time.Second).Should(Or(Equal("0"), Equal("")))
		_, stderr, err = openshell(ctx, "policy", "export", "agent", "-n", approvalsNamespace)
		Expect(err).NotTo(HaveOccurred())
		Expect(stderr).To(BeEmpty())
		st, err := gw.Policies.GetStatus(ctx, gwName, 0)
		Expect(err).NotTo(HaveOccurred())
		Expect(st.GetRevision().GetPolicy().GetNetworkPolicies()).To(HaveKey("allow_api_github_com"))
	}, SpecTimeout(3*time.Minute))
})
