package apivalidation

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	sigsyaml "sigs.k8s.io/yaml"
)

var counter int

// object builds an unstructured resource of kind in namespace "default" (cluster-scoped for
// GatewayConnection) from a spec written as YAML.
func object(kind, specYAML string) *unstructured.Unstructured {
	counter++
	spec := map[string]any{}
	Expect(sigsyaml.Unmarshal([]byte(specYAML), &spec)).To(Succeed())
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "openshell.dev/v1alpha1",
		"kind":       kind,
		"metadata":   map[string]any{"name": fmt.Sprintf("obj-%d", counter)},
		"spec":       spec,
	}}
	if kind != "GatewayConnection" {
		u.SetNamespace("default")
	}
	return u
}

const (
	validGateway  = "endpoint: gw:8080\ntls: {secretRef: {namespace: ns, name: tls}}"
	validProvider = "type: openai\ncredentialsSecretRef: {name: creds}"
	validRoute    = "providerRef: {name: p}\nmodel: m"
)

func sandboxWithPolicy(policyYAML string) string {
	return "policy:\n" + indent(policyYAML)
}

func indent(s string) string {
	lines := strings.Split(s, "\n")
	for i := range lines {
		lines[i] = "  " + lines[i]
	}
	return strings.Join(lines, "\n")
}

var _ = Describe("apply-time validation", func() {
	DescribeTable("rejects invalid resources with a clear message",
		func(kind, spec, wantMessage string) {
			err := k8sClient.Create(ctx, object(kind, spec))
			Expect(err).To(HaveOccurred(), "the API server accepted an invalid %s", kind)
			Expect(apierrors.IsInvalid(err)).To(BeTrue(), "want an Invalid error, got %v", err)
			Expect(err.Error()).To(ContainSubstring(wantMessage))
		},
		Entry("gateway without endpoint", "GatewayConnection", "tls: {secretRef: {namespace: ns, name: tls}}", "spec.endpoint: Required value"),
		Entry("gateway with plaintext endpoint", "GatewayConnection", "endpoint: http://gw:80\ntls: {secretRef: {namespace: ns, name: tls}}", "plaintext http endpoints are not allowed"),
		Entry("gateway without TLS secret", "GatewayConnection", "endpoint: gw:8080", "spec.tls: Required value"),
		Entry("gateway setting with two types", "GatewayConnection", validGateway+"\nsettings: {ocsf_json_enabled: {bool: true, string: x}}", "exactly one of bool, string or int must be set"),
		Entry("gateway setting with no value", "GatewayConnection", validGateway+"\nsettings: {ocsf_json_enabled: {}}", "exactly one of bool, string or int must be set"),
		Entry("provider without type", "Provider", "credentialsSecretRef: {name: creds}", "spec.type"),
		Entry("provider type too long", "Provider", "type: "+strings.Repeat("x", 65)+"\ncredentialsSecretRef: {name: creds}", "spec.type: Too long"),
		Entry("provider without secret", "Provider", "type: openai", "spec.credentialsSecretRef: Required value"),
		Entry("provider credential key not an env name", "Provider", "type: openai\ncredentialsSecretRef: {name: creds, keys: [bad-key]}", "spec.credentialsSecretRef.keys[0]"),
		Entry("provider duplicate credential keys", "Provider", "type: openai\ncredentialsSecretRef: {name: creds, keys: [A, A]}", "Duplicate value"),
		Entry("provider wrong deletion policy", "Provider", validProvider+"\ndeletionPolicy: Keep", "spec.deletionPolicy: Unsupported value"),
		Entry("sandbox with policy and policyRef", "Sandbox", "policyRef: {name: p}\npolicy: {}", "policyRef and policy are mutually exclusive"),
		Entry("sandbox wrong log level", "Sandbox", "logLevel: verbose", "spec.logLevel: Unsupported value"),
		Entry("sandbox wrong update strategy", "Sandbox", "updateStrategy: Rolling", "spec.updateStrategy: Unsupported value"),
		Entry("sandbox bad environment key", "Sandbox", "environment: {\"1BAD\": x}", "environment keys must be environment variable names"),
		Entry("sandbox provider name not DNS", "Sandbox", "providers: [Bad_Name]", "spec.providers[0]"),
		Entry("sandbox duplicate providers", "Sandbox", "providers: [a, a]", "Duplicate value"),
		Entry("sandbox too many providers", "Sandbox", "providers: ["+providerList(33)+"]", "must have at most 32 items"),
		Entry("policy relative path", "Sandbox", sandboxWithPolicy("filesystem: {readOnly: [etc]}"), "path must be absolute"),
		Entry("policy path with ..", "Sandbox", sandboxWithPolicy("filesystem: {readOnly: [/usr/../etc]}"), "path must not contain '..'"),
		Entry("policy read-write root", "Sandbox", sandboxWithPolicy("filesystem: {readWrite: [/]}"), "readWrite must not include '/'"),
		Entry("policy port 0", "SandboxPolicy", "networkPolicies: {r: {endpoints: [{host: a.example.com, ports: [0]}]}}", "should be greater than or equal to 1"),
		Entry("policy port 65536", "SandboxPolicy", "networkPolicies: {r: {endpoints: [{host: a.example.com, port: 65536}]}}", "should be less than or equal to 65535"),
		Entry("policy endpoint without port", "SandboxPolicy", "networkPolicies: {r: {endpoints: [{host: a.example.com}]}}", "port or ports is required"),
		Entry("policy TLD wildcard", "SandboxPolicy", "networkPolicies: {r: {endpoints: [{host: '*.com', port: 443}]}}", "TLD-wide wildcard hosts are not allowed"),
		Entry("policy landlock enum", "SandboxPolicy", "landlock: {compatibility: maybe}", "Unsupported value"),
		Entry("policy process user", "SandboxPolicy", "process: {runAsUser: root}", "Unsupported value"),
		Entry("policy relative binary", "SandboxPolicy", "networkPolicies: {r: {endpoints: [{host: a.example.com, port: 443}], binaries: [{path: curl}]}}", "should match '^/'"),
		Entry("policy graphql operation type", "SandboxPolicy", "networkPolicies: {r: {endpoints: [{host: a.example.com, port: 443, rules: [{allow: {operationType: delete}}]}]}}", "Unsupported value"),
		Entry("route empty model", "InferenceRoute", "providerRef: {name: p}\nmodel: ''", "spec.model"),
		Entry("route without provider", "InferenceRoute", "model: m", "spec.providerRef: Required value"),
		Entry("route unknown route", "InferenceRoute", validRoute+"\nroute: public", "spec.route: Unsupported value"),
		Entry("route negative timeout", "InferenceRoute", validRoute+"\ntimeoutSeconds: -1", "should be greater than or equal to 0"),
	)

	DescribeTable("rejects changes to immutable fields",
		func(kind, spec, patch, wantMessage string) {
			obj := object(kind, spec)
			Expect(k8sClient.Create(ctx, obj)).To(Succeed())
			changed := map[string]any{}
			Expect(sigsyaml.Unmarshal([]byte(patch), &changed)).To(Succeed())
			for k, v := range changed {
				Expect(unstructured.SetNestedField(obj.Object, v, "spec", k)).To(Succeed())
			}
			err := k8sClient.Update(ctx, obj)
			Expect(err).To(HaveOccurred())
			Expect(err.Error()).To(ContainSubstring(wantMessage))
		},
		Entry("sandbox gatewayRef", "Sandbox", "image: busybox", "gatewayRef: {name: other}", "gatewayRef is immutable"),
		Entry("provider gatewayRef", "Provider", validProvider, "gatewayRef: {name: other}", "gatewayRef is immutable"),
		Entry("provider type", "Provider", validProvider, "type: anthropic", "type is immutable"),
		Entry("route gatewayRef", "InferenceRoute", validRoute, "gatewayRef: {name: other}", "gatewayRef is immutable"),
	)

	It("defaults gatewayRef, updateStrategy and deletionPolicy", func() {
		obj := object("Sandbox", "image: busybox")
		Expect(k8sClient.Create(ctx, obj)).To(Succeed())
		Expect(obj.Object["spec"]).To(HaveKeyWithValue("gatewayRef", HaveKeyWithValue("name", "default")))
		Expect(obj.Object["spec"]).To(HaveKeyWithValue("updateStrategy", "Recreate"))
		Expect(obj.Object["spec"]).To(HaveKeyWithValue("deletionPolicy", "Delete"))
	})

	It("accepts every sample in config/samples", func() {
		files, err := filepath.Glob(filepath.Join("..", "..", "config", "samples", "*.yaml"))
		Expect(err).NotTo(HaveOccurred())
		Expect(files).NotTo(BeEmpty())
		created := 0
		for _, f := range files {
			if filepath.Base(f) == "kustomization.yaml" {
				continue
			}
			data, err := os.ReadFile(f)
			Expect(err).NotTo(HaveOccurred())
			dec := yaml.NewYAMLOrJSONDecoder(strings.NewReader(string(data)), 4096)
			for {
				u := &unstructured.Unstructured{}
				if err := dec.Decode(&u.Object); err != nil {
					break
				}
				if len(u.Object) == 0 {
					continue
				}
				err := k8sClient.Create(ctx, u)
				if apierrors.IsAlreadyExists(err) {
					continue
				}
				Expect(err).NotTo(HaveOccurred(), "sample %s (%s %s)", f, u.GetKind(), u.GetName())
				created++
			}
		}
		Expect(created).To(BeNumerically(">=", 5))
	})

	It("documents every field of every CRD (kubectl explain)", func() {
		files, err := filepath.Glob(filepath.Join("..", "..", "config", "crd", "bases", "*.yaml"))
		Expect(err).NotTo(HaveOccurred())
		Expect(files).To(HaveLen(5))
		for _, f := range files {
			data, err := os.ReadFile(f)
			Expect(err).NotTo(HaveOccurred())
			crd := &apiextensionsv1.CustomResourceDefinition{}
			Expect(sigsyaml.Unmarshal(data, crd)).To(Succeed())
			Expect(crd.Spec.Names.Categories).To(ContainElement("openshell"), f)
			Expect(crd.Spec.Names.ShortNames).NotTo(BeEmpty(), f)
			for _, v := range crd.Spec.Versions {
				var missing []string
				walk(v.Schema.OpenAPIV3Schema, "", &missing)
				Expect(missing).To(BeEmpty(), "fields without a description in %s", f)
			}
		}
	})
})

func walk(s *apiextensionsv1.JSONSchemaProps, path string, missing *[]string) {
	if s == nil {
		return
	}
	for name, p := range s.Properties {
		child := path + "." + name
		// metadata, apiVersion and kind come from Kubernetes itself.
		if path == "" && (name == "metadata" || name == "apiVersion" || name == "kind") {
			continue
		}
		if p.Description == "" {
			*missing = append(*missing, child)
		}
		walk(&p, child, missing)
	}
	if s.Items != nil && s.Items.Schema != nil {
		walk(s.Items.Schema, path+"[]", missing)
	}
	if s.AdditionalProperties != nil && s.AdditionalProperties.Schema != nil {
		walk(s.AdditionalProperties.Schema, path+"{}", missing)
	}
}

func providerList(n int) string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("p%d", i)
	}
	return strings.Join(names, ", ")
}

var _ client.Object = &unstructured.Unstructured{}
