package tenancy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
)

// readKustomization decodes the resources a kustomization (or component) in dir lists.
func readKustomization(dir string) []*unstructured.Unstructured {
	GinkgoHelper()
	var kust struct {
		Resources []string `json:"resources"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	Expect(err).NotTo(HaveOccurred())
	Expect(yaml.Unmarshal(b, &kust)).To(Succeed())
	var out []*unstructured.Unstructured
	for _, res := range kust.Resources {
		b, err := os.ReadFile(filepath.Join(dir, res))
		Expect(err).NotTo(HaveOccurred())
		dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(b), 4096)
		for {
			o := &unstructured.Unstructured{}
			err := dec.Decode(&o.Object)
			if errors.Is(err, io.EOF) {
				break
			}
			Expect(err).NotTo(HaveOccurred(), res)
			if len(o.Object) > 0 {
				out = append(out, o)
			}
		}
	}
	return out
}

// manifest builds an openshell.dev object of kind named name in namespace ns from a spec in YAML.
func manifest(kind, ns, name, specYAML string) *unstructured.Unstructured {
	GinkgoHelper()
	spec := map[string]any{}
	Expect(yaml.Unmarshal([]byte(specYAML), &spec)).To(Succeed())
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "openshell.dev/v1alpha1", "kind": kind,
		"metadata": map[string]any{"namespace": ns, "name": name},
		"spec":     spec,
	}}
}

// compliantSandbox passes every guardrail of the parameters below.
const compliantSandbox = `gatewayRef: {name: guardrails-none}
runtimeClassName: gvisor
image: ghcr.io/nvidia/openshell-community/sandboxes/base:latest
resources: {limits: {cpu: "2", memory: 4Gi}, requests: {cpu: 500m, memory: 1Gi}}
podLabels: {team: a, example.com/cost-center: "42"}
podAnnotations: {example.com/owner: alice}
policy:
  networkPolicies:
    openai:
      endpoints: [{host: api.openai.com, port: 443, allowedIps: [52.0.0.0/8]}]`

// proposalSpec is a PolicyProposal as the operator creates it (no Sandbox of that name
// exists, so the operator only reports it missing).
const proposalSpec = `sandboxRef: {name: agent}
chunkID: chunk-1`

// guardrailParams are the limits the specs apply on top of the component's defaults.
var guardrailParams = map[string]string{
	"allowedRuntimeClasses":  "gvisor",
	"allowedImageRegistries": "ghcr.io/nvidia",
	"maxCPU":                 "2",
	"maxMemory":              "4Gi",
	"allowGPU":               "false",
	// The defaults plus a cluster Service CIDR.
	"forbiddenCIDRs": "169.254.0.0/16,fe80::/10,fd00:ec2::254/128,100.100.100.200/32,10.96.0.0/12",
}

// guardedNamespaces are the namespaces the guardrails apply to in this suite, as a platform
// scopes them to tenant namespaces; the other specs' objects are not subject to the limits.
// The second gets only the namespace-label protection.
var guardedNamespaces = []string{"guarded", "team-foreign"}

var installGuardrailsOnce sync.Once

// installGuardrails applies config/components/guardrails once, its bindings scoped to
// guardedNamespaces (by name: a label a tenant could remove would let it escape).
func installGuardrails(ctx context.Context) {
	GinkgoHelper()
	installGuardrailsOnce.Do(func() {
		for _, o := range readKustomization(filepath.Join(root, "config", "components", "guardrails")) {
			if o.GetKind() == "ValidatingAdmissionPolicyBinding" {
				// The Sandbox limits apply to "guarded" only; the namespace labels are protected
				// in both namespaces.
				values := []any{guardedNamespaces[0]}
				if strings.HasSuffix(o.GetName(), "namespace-labels") {
					values = append(values, guardedNamespaces[1])
				}
				Expect(unstructured.SetNestedField(o.Object, map[string]any{"matchExpressions": []any{map[string]any{
					"key": "kubernetes.io/metadata.name", "operator": "In", "values": values}}},
					"spec", "matchResources", "namespaceSelector")).To(Succeed())
			}
			Expect(admin.Create(ctx, o)).To(Succeed(), "%s %s", o.GetKind(), o.GetName())
		}
	})
}

var _ = Describe("platform guardrails (config/components/guardrails)", Ordered, func() {
	const ns = "guarded"
	var mallory client.Client

	// setParams merges data into the guardrails' ConfigMap.
	setParams := func(ctx context.Context, data map[string]string) {
		GinkgoHelper()
		cm := &corev1.ConfigMap{}
		Expect(admin.Get(ctx, client.ObjectKey{Namespace: operatorNS, Name: "openshell-guardrails"}, cm)).To(Succeed())
		for k, v := range data {
			cm.Data[k] = v
		}
		Expect(admin.Update(ctx, cm)).To(Succeed())
	}

	// refusal dry-runs obj as mallory and returns the API server's message ("" if admitted).
	refusal := func(ctx context.Context, obj *unstructured.Unstructured) string {
		GinkgoHelper()
		err := mallory.Create(ctx, obj.DeepCopy(), client.DryRunAll)
		if err == nil {
			return ""
		}
		Expect(apierrors.IsForbidden(err) || apierrors.IsInvalid(err)).To(BeTrue(), "unexpected error %v", err)
		return err.Error()
	}

	BeforeAll(func(ctx SpecContext) {
		installGuardrails(ctx)
		setParams(ctx, guardrailParams)
		namespace(ctx, ns, nil)
		mallory = tenant(ctx, "mallory", ns)
		// Policies, bindings and parameters reach the API server's admission informers
		// asynchronously: wait until a refusal is seen and a compliant object admitted.
		Eventually(func(g Gomega) {
			g.Expect(refusal(ctx, manifest("Sandbox", ns, "probe", "runtimeClassName: kata"))).To(ContainSubstring("is not allowed by the platform"))
			g.Expect(refusal(ctx, manifest("Sandbox", ns, "probe", compliantSandbox))).To(BeEmpty())
		}).WithContext(ctx).WithTimeout(timeout).WithPolling(interval).Should(Succeed())
	})

	DescribeTable("refuse a tenant's manifest with a message naming the field",
		func(ctx SpecContext, kind, specYAML, want string) {
			Expect(refusal(ctx, manifest(kind, ns, "attempt", specYAML))).To(ContainSubstring(want))
		},
		Entry("a runtime class outside the list", "Sandbox", "runtimeClassName: kata",
			`spec.runtimeClassName "kata" is not allowed by the platform; allowed: gvisor`),
		Entry("no runtime class when one is required", "Sandbox", "image: ghcr.io/nvidia/x:1",
			`spec.runtimeClassName (unset) is not allowed by the platform; allowed: gvisor`),
		Entry("an image from another registry", "Sandbox", "runtimeClassName: gvisor\nimage: docker.io/evil/miner:latest",
			`spec.image "docker.io/evil/miner:latest" is not from a registry the platform allows: ghcr.io/nvidia/`),
		Entry("an image from a look-alike repository", "Sandbox", "runtimeClassName: gvisor\nimage: ghcr.io/nvidia-evil/x:1",
			`spec.image "ghcr.io/nvidia-evil/x:1" is not from a registry the platform allows`),
		Entry("a pod label the operator owns", "Sandbox", "runtimeClassName: gvisor\npodLabels: {openshell.dev/namespace: victim}",
			`spec.podLabels openshell.dev/namespace use a prefix the platform reserves: kubernetes.io/, k8s.io/, openshell.dev/`),
		Entry("a pod annotation under a kubernetes.io subdomain", "Sandbox", "runtimeClassName: gvisor\npodAnnotations: {seccomp.security.alpha.kubernetes.io/pod: unconfined}",
			`spec.podAnnotations seccomp.security.alpha.kubernetes.io/pod use a prefix the platform reserves`),
		Entry("a CPU limit above the ceiling", "Sandbox", "runtimeClassName: gvisor\nresources: {limits: {cpu: \"4\"}}",
			`spec.resources cpu 4 exceeds the platform ceiling of 2`),
		Entry("a memory request above the ceiling", "Sandbox", "runtimeClassName: gvisor\nresources: {requests: {memory: 8Gi}}",
			`spec.resources memory 8Gi exceeds the platform ceiling of 4Gi`),
		Entry("a GPU", "Sandbox", "runtimeClassName: gvisor\ngpu: true",
			`spec.gpu: the platform does not allow GPU sandboxes`),
		Entry("the metadata address in an inline policy", "Sandbox", "runtimeClassName: gvisor\npolicy: {networkPolicies: {imds: {endpoints: [{host: 169.254.169.254, port: 80}]}}}",
			`spec.policy.networkPolicies imds allow a destination the platform forbids`),
		Entry("the AWS IPv6 metadata address", "Sandbox", "runtimeClassName: gvisor\npolicy: {networkPolicies: {imds6: {endpoints: [{host: 'fd00:ec2::254', port: 80}]}}}",
			`spec.policy.networkPolicies imds6 allow a destination the platform forbids`),
		Entry("a metadata host name in a SandboxPolicy", "SandboxPolicy", "networkPolicies: {gcp: {endpoints: [{host: metadata.google.internal, port: 80}]}}",
			`spec.networkPolicies gcp allow a destination the platform forbids (forbidden CIDRs 169.254.0.0/16`),
		Entry("a glob covering a metadata host name", "SandboxPolicy", "networkPolicies: {wide: {endpoints: [{host: '*.google.internal', port: 80}]}}",
			`spec.networkPolicies wide allow a destination the platform forbids`),
		Entry("allowedIps covering every address", "SandboxPolicy", "networkPolicies: {any: {endpoints: [{host: api.example.com, port: 443, allowedIps: [0.0.0.0/0]}]}}",
			`spec.networkPolicies any allow a destination the platform forbids`),
		Entry("allowedIps inside a configured cluster CIDR", "SandboxPolicy", "networkPolicies: {svc: {endpoints: [{host: api.example.com, port: 443, allowedIps: [10.100.0.1]}]}}",
			`spec.networkPolicies svc allow a destination the platform forbids`),
		Entry("the metadata address as a proposal's edited rule", "PolicyProposal", proposalSpec+"\nrule: {endpoints: [{host: 169.254.169.254, port: 80}]}",
			`spec.rule allows a destination the platform forbids (forbidden CIDRs 169.254.0.0/16`),
		Entry("a proposal's edited rule with allowedIps in a configured cluster CIDR", "PolicyProposal",
			proposalSpec+"\ndecision: Approved\nrule: {endpoints: [{host: api.example.com, port: 443, allowedIps: [10.96.0.10]}]}",
			`spec.rule allows a destination the platform forbids`),
	)

	It("admit compliant manifests", func(ctx SpecContext) {
		Expect(refusal(ctx, manifest("Sandbox", ns, "ok", compliantSandbox))).To(BeEmpty())
		Expect(refusal(ctx, manifest("SandboxPolicy", ns, "ok",
			"networkPolicies: {github: {endpoints: [{host: '*.github.com', port: 443, allowedIps: ['140.82.112.0/20', '2606:50c0::/32']}]}}"))).To(BeEmpty())
		Expect(refusal(ctx, manifest("PolicyProposal", ns, "ok", proposalSpec))).To(BeEmpty())
		Expect(refusal(ctx, manifest("PolicyProposal", ns, "ok",
			proposalSpec+"\ndecision: Approved\nrule: {endpoints: [{host: api.example.com, port: 443, allowedIps: [52.0.0.0/8]}]}"))).To(BeEmpty())
	})

	It("check a proposal's rule on every spec change, and the advisor's rule when it is approved unedited", func(ctx SpecContext) {
		// The operator creates the proposal and mirrors the advisor's rule (here, to the
		// metadata address a denied connection tried) into status.
		p := manifest("PolicyProposal", ns, "imds", proposalSpec)
		Expect(admin.Create(ctx, p)).To(Succeed())
		DeferCleanup(func(ctx SpecContext) { Expect(client.IgnoreNotFound(admin.Delete(ctx, p))).To(Succeed()) })
		Expect(admin.Status().Patch(ctx, p, client.RawPatch(types.MergePatchType, []byte(
			`{"status":{"ruleName":"imds","proposedRule":{"endpoints":[{"host":"169.254.169.254","port":80}]}}}`)))).To(Succeed())
		// review dry-runs a reviewer's merge patch of spec and returns the refusal ("" if admitted).
		review := func(spec string) string {
			GinkgoHelper()
			err := mallory.Patch(ctx, p.DeepCopy(), client.RawPatch(types.MergePatchType, []byte(`{"spec":`+spec+`}`)), client.DryRunAll)
			if err == nil {
				return ""
			}
			Expect(apierrors.IsForbidden(err) || apierrors.IsInvalid(err)).To(BeTrue(), "unexpected error %v", err)
			return err.Error()
		}
		Expect(review(`{"rule":{"endpoints":[{"host":"metadata.google.internal","port":80}]}}`)).To(
			ContainSubstring(`spec.rule allows a destination the platform forbids`))
		Expect(review(`{"decision":"Approved","rule":{"endpoints":[{"host":"api.example.com","port":443,"allowedIps":["0.0.0.0/0"]}]}}`)).To(
			ContainSubstring(`spec.rule allows a destination the platform forbids`))
		Expect(review(`{"decision":"Approved"}`)).To(
			ContainSubstring(`status.proposedRule (approved without spec.rule) allows a destination the platform forbids`))
		// An allowed edit, approved, and a rejection of the advisor's rule go through.
		Expect(review(`{"decision":"Approved","rule":{"endpoints":[{"host":"api.example.com","port":443}]}}`)).To(BeEmpty())
		Expect(review(`{"decision":"Rejected","reason":"metadata service"}`)).To(BeEmpty())
	})

	It("refuse a tenant's change of its namespace's approval quorum, and let the platform change it", func(ctx SpecContext) {
		// annotate sets (value != "") or removes the quorum annotation of ns as c.
		annotate := func(ctx context.Context, c client.Client, value string, opts ...client.UpdateOption) error {
			GinkgoHelper()
			n := &corev1.Namespace{}
			Expect(c.Get(ctx, client.ObjectKey{Name: ns}, n)).To(Succeed())
			if n.Annotations == nil {
				n.Annotations = map[string]string{}
			}
			if value == "" {
				delete(n.Annotations, v1alpha1.AnnotationApprovalQuorum)
			} else {
				n.Annotations[v1alpha1.AnnotationApprovalQuorum] = value
			}
			return c.Update(ctx, n, opts...)
		}
		const refused = "metadata.annotations openshell.dev/approval-quorum: only platform administrators (groups system:masters) may change the namespace approval quorum"
		// Adding one (a quorum of 1 where none was set) is refused (dry runs, which change
		// nothing, until the policy is in effect)...
		Eventually(func() string {
			if err := annotate(ctx, mallory, "1", client.DryRunAll); err != nil {
				return err.Error()
			}
			return ""
		}).WithContext(ctx).WithTimeout(timeout).WithPolling(interval).Should(ContainSubstring(refused))
		// ...the platform sets it...
		Expect(annotate(ctx, admin, "2")).To(Succeed())
		DeferCleanup(func(ctx SpecContext) { Expect(annotate(ctx, admin, "")).To(Succeed()) })
		// ...and the tenant can neither lower nor remove it.
		for _, value := range []string{"1", ""} {
			err := annotate(ctx, mallory, value)
			Expect(err).To(HaveOccurred(), "quorum %q", value)
			Expect(err.Error()).To(ContainSubstring(refused))
		}
		// Its other changes to the Namespace object still go through, and keep the quorum.
		n := &corev1.Namespace{}
		Expect(mallory.Get(ctx, client.ObjectKey{Name: ns}, n)).To(Succeed())
		n.Annotations["example.com/owner"] = "mallory"
		Expect(mallory.Update(ctx, n)).To(Succeed())
		Expect(admin.Get(ctx, client.ObjectKey{Name: ns}, n)).To(Succeed())
		Expect(n.Annotations).To(HaveKeyWithValue(v1alpha1.AnnotationApprovalQuorum, "2"))
		Expect(annotate(ctx, admin, "3")).To(Succeed())
	})

	It("re-check a spec change but never the operator's metadata and status writes", func(ctx SpecContext) {
		sb := manifest("Sandbox", ns, "existing", compliantSandbox)
		Expect(mallory.Create(ctx, sb)).To(Succeed())
		// The platform narrows the runtime classes after the Sandbox exists.
		setParams(ctx, map[string]string{"allowedRuntimeClasses": "kata"})
		DeferCleanup(func(ctx SpecContext) { setParams(ctx, guardrailParams) })
		Eventually(func() string {
			return refusal(ctx, manifest("Sandbox", ns, "probe", compliantSandbox))
		}).WithContext(ctx).WithTimeout(timeout).WithPolling(interval).Should(ContainSubstring(`spec.runtimeClassName "gvisor" is not allowed`))

		// A finalizer (what the operator adds and removes) still goes through... (merge
		// patches: the operator writes this object's status concurrently.)
		Expect(admin.Get(ctx, client.ObjectKeyFromObject(sb), sb)).To(Succeed())
		orig := sb.DeepCopy()
		sb.SetFinalizers(append(sb.GetFinalizers(), "example.com/hold"))
		Expect(admin.Patch(ctx, sb, client.MergeFrom(orig))).To(Succeed())
		// ...and so does status, a subresource the policies do not match.
		orig = sb.DeepCopy()
		Expect(unstructured.SetNestedField(sb.Object, "example", "status", "gatewayName")).To(Succeed())
		Expect(admin.Status().Patch(ctx, sb, client.MergeFrom(orig))).To(Succeed())
		// A spec change is checked against the new limits.
		orig = sb.DeepCopy()
		Expect(unstructured.SetNestedField(sb.Object, "ghcr.io/nvidia/other:1", "spec", "image")).To(Succeed())
		err := mallory.Patch(ctx, sb, client.MergeFrom(orig))
		Expect(err).To(HaveOccurred())
		Expect(err.Error()).To(ContainSubstring(`spec.runtimeClassName "gvisor" is not allowed by the platform; allowed: kata`))
		// Deleting it is never blocked.
		Expect(admin.Get(ctx, client.ObjectKeyFromObject(sb), sb)).To(Succeed())
		orig = sb.DeepCopy()
		sb.SetFinalizers(slices.DeleteFunc(sb.GetFinalizers(), func(f string) bool { return f == "example.com/hold" }))
		Expect(admin.Patch(ctx, sb, client.MergeFrom(orig))).To(Succeed())
		Expect(mallory.Delete(ctx, sb)).To(Succeed())
	})
})
