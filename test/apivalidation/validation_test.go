package apivalidation

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	kstatus "github.com/fluxcd/cli-utils/pkg/kstatus/status"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
	validProposal = "sandboxRef: {name: agent}\nchunkID: c1"
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
	// Every row is one invalid manifest and the exact place the API server refuses it: the
	// field path it names and a fragment of its message. Requests use strict field
	// validation, kubectl's default, so an unknown field (a namespace on a reference that
	// must stay local) is refused instead of silently dropped.
	DescribeTable("rejects invalid resources at the field that is wrong",
		func(kind, spec, field, wantMessage string) {
			err := k8sClient.Create(ctx, object(kind, spec), client.FieldValidation(metav1.FieldValidationStrict))
			expectRefusal(err, kind, field, wantMessage)
		},
		// GatewayConnection
		Entry("gateway without endpoint", "GatewayConnection", "tls: {secretRef: {namespace: ns, name: tls}}", "spec.endpoint", "Required value"),
		Entry("gateway with plaintext endpoint", "GatewayConnection", "endpoint: http://gw:80\ntls: {secretRef: {namespace: ns, name: tls}}", "spec", "plaintext http endpoints are not allowed"),
		Entry("gateway endpoint with a path", "GatewayConnection", "endpoint: https://gw:8080/api\ntls: {secretRef: {namespace: ns, name: tls}}", "spec.endpoint", "endpoint must be host, host:port or https://host:port, without a path"),
		Entry("gateway endpoint with another scheme", "GatewayConnection", "endpoint: grpc://gw:8080\ntls: {secretRef: {namespace: ns, name: tls}}", "spec.endpoint", "endpoint must be host, host:port or https://host:port"),
		Entry("gateway endpoint with a space", "GatewayConnection", "endpoint: 'gw :8080'\ntls: {secretRef: {namespace: ns, name: tls}}", "spec.endpoint", "endpoint must be host, host:port or https://host:port"),
		Entry("gateway without TLS secret", "GatewayConnection", "endpoint: gw:8080", "spec.tls", "Required value"),
		Entry("gateway TLS secret namespace not a DNS label", "GatewayConnection", "endpoint: gw:8080\ntls: {secretRef: {namespace: Openshell_System, name: tls}}", "spec.tls.secretRef.namespace", "should match"),
		Entry("gateway TLS secret name not a DNS subdomain", "GatewayConnection", "endpoint: gw:8080\ntls: {secretRef: {namespace: ns, name: 'client tls'}}", "spec.tls.secretRef.name", "should match"),
		Entry("gateway TLS secret namespace too long", "GatewayConnection", "endpoint: gw:8080\ntls: {secretRef: {namespace: "+strings.Repeat("n", 64)+", name: tls}}", "spec.tls.secretRef.namespace", "Too long"),
		Entry("gateway token secret key not a Secret key", "GatewayConnection", validGateway+"\nauth: {tokenSecretRef: {namespace: ns, name: tok, key: 'my token'}}", "spec.auth.tokenSecretRef.key", "should match"),
		Entry("gateway token secret without namespace", "GatewayConnection", validGateway+"\nauth: {tokenSecretRef: {name: tok}}", "spec.auth.tokenSecretRef.namespace", "Required value"),
		Entry("gateway timeout not a duration", "GatewayConnection", validGateway+"\ntimeout: soon", "spec.timeout", "timeout must be a duration"),
		Entry("gateway timeout of zero", "GatewayConnection", validGateway+"\ntimeout: 0s", "spec.timeout", "timeout must be more than 0 and at most 10m"),
		Entry("gateway timeout of an hour", "GatewayConnection", validGateway+"\ntimeout: 1h", "spec.timeout", "timeout must be more than 0 and at most 10m"),
		Entry("gateway setting with two types", "GatewayConnection", validGateway+"\nsettings: {ocsf_json_enabled: {bool: true, string: x}}", "spec.settings[ocsf_json_enabled]", "exactly one of bool, string or int must be set"),
		Entry("gateway setting with no value", "GatewayConnection", validGateway+"\nsettings: {ocsf_json_enabled: {}}", "spec.settings[ocsf_json_enabled]", "exactly one of bool, string or int must be set"),
		Entry("gateway reserved policy setting", "GatewayConnection", validGateway+"\nsettings: {policy: {string: x}}", "spec.settings", "the policy setting is reserved: use spec.globalPolicyRef"),
		Entry("gateway bool setting given a string", "GatewayConnection", validGateway+"\nsettings: {providers_v2_enabled: {string: 'true'}}", "spec.settings", "providers_v2_enabled, ocsf_json_enabled and agent_policy_proposals_enabled take a bool"),
		Entry("gateway approval mode outside manual/auto", "GatewayConnection", validGateway+"\nsettings: {proposal_approval_mode: {string: sometimes}}", "spec.settings", "proposal_approval_mode takes the string manual or auto"),
		Entry("gateway namespaces from an unknown value", "GatewayConnection", validGateway+"\nnamespaces: {from: Same}", "spec.namespaces.from", "Unsupported value"),
		Entry("gateway namespaces without from", "GatewayConnection", validGateway+"\nnamespaces: {}", "spec.namespaces.from", "Required value"),
		Entry("gateway namespaces Selector without selector", "GatewayConnection", validGateway+"\nnamespaces: {from: Selector}", "spec.namespaces", "selector is required with from: Selector and not allowed otherwise"),
		Entry("gateway namespaces All with a selector", "GatewayConnection", validGateway+"\nnamespaces: {from: All, selector: {matchLabels: {team: a}}}", "spec.namespaces", "selector is required with from: Selector and not allowed otherwise"),
		Entry("gateway namespaces selector with an unknown operator", "GatewayConnection", validGateway+"\nnamespaces: {from: Selector, selector: {matchExpressions: [{key: team, operator: Near, values: [a]}]}}", "spec.namespaces.selector", "matchExpressions: In and NotIn need values"),
		Entry("gateway namespaces selector In without values", "GatewayConnection", validGateway+"\nnamespaces: {from: Selector, selector: {matchExpressions: [{key: team, operator: In}]}}", "spec.namespaces.selector", "In and NotIn need values"),
		Entry("gateway namespaces selector Exists with values", "GatewayConnection", validGateway+"\nnamespaces: {from: Selector, selector: {matchExpressions: [{key: team, operator: Exists, values: [a]}]}}", "spec.namespaces.selector", "Exists and DoesNotExist take none"),
		Entry("gateway route grant from an unknown value", "GatewayConnection", validGateway+"\ninferenceRoutes: {namespaces: {from: Everyone}}", "spec.inferenceRoutes.namespaces.from", "Unsupported value"),
		Entry("gateway route grant None with a selector", "GatewayConnection", validGateway+"\ninferenceRoutes: {namespaces: {from: None, selector: {}}}", "spec.inferenceRoutes.namespaces", "selector is required with from: Selector and not allowed otherwise"),
		Entry("gateway global policy in a namespace that cannot exist", "GatewayConnection", validGateway+"\nglobalPolicyRef: {namespace: 'team a', name: p}", "spec.globalPolicyRef.namespace", "should match"),
		// Provider
		Entry("provider without type", "Provider", "credentialsSecretRef: {name: creds}", "spec.type", "Required value"),
		Entry("provider type too long", "Provider", "type: "+strings.Repeat("x", 65)+"\ncredentialsSecretRef: {name: creds}", "spec.type", "Too long"),
		Entry("provider without secret", "Provider", "type: openai", "spec.credentialsSecretRef", "Required value"),
		Entry("provider secret name not a DNS subdomain", "Provider", "type: openai\ncredentialsSecretRef: {name: Creds_1}", "spec.credentialsSecretRef.name", "should match"),
		Entry("provider secret in another namespace", "Provider", "type: openai\ncredentialsSecretRef: {name: creds, namespace: other}", "spec.credentialsSecretRef.namespace", "unknown field"),
		Entry("provider credential key not an env name", "Provider", "type: openai\ncredentialsSecretRef: {name: creds, keys: [bad-key]}", "spec.credentialsSecretRef.keys[0]", "should match"),
		Entry("provider duplicate credential keys", "Provider", "type: openai\ncredentialsSecretRef: {name: creds, keys: [A, A]}", "spec.credentialsSecretRef.keys[1]", "Duplicate value"),
		Entry("provider more than 32 credential keys", "Provider", "type: openai\ncredentialsSecretRef: {name: creds, keys: ["+nameList("K", 33)+"]}", "spec.credentialsSecretRef.keys", "must have at most 32 items"),
		Entry("provider wrong deletion policy", "Provider", validProvider+"\ndeletionPolicy: Keep", "spec.deletionPolicy", "Unsupported value"),
		Entry("provider config key the operator owns", "Provider", validProvider+"\nconfig: {openshell.dev/credentials-sha256: abc}", "spec.config", "config key openshell.dev/credentials-sha256 is reserved for the operator"),
		Entry("provider config empty value", "Provider", validProvider+"\nconfig: {base_url: ''}", "spec.config", "config keys must be 1-256 bytes and values 1-8192 bytes"),
		Entry("provider config value too large", "Provider", validProvider+"\nconfig: {ca: "+strings.Repeat("x", 8193)+"}", "spec.config", "config keys must be 1-256 bytes and values 1-8192 bytes"),
		Entry("provider on a connection that cannot exist", "Provider", validProvider+"\ngatewayRef: {name: Default}", "spec.gatewayRef.name", "should match"),
		// Sandbox
		Entry("sandbox with policy and policyRef", "Sandbox", "policyRef: {name: p}\npolicy: {}", "spec", "policyRef and policy are mutually exclusive"),
		Entry("sandbox policyRef in another namespace", "Sandbox", "policyRef: {name: p, namespace: other}", "spec.policyRef.namespace", "unknown field"),
		Entry("sandbox policyRef not a DNS subdomain", "Sandbox", "policyRef: {name: My_Policy}", "spec.policyRef.name", "should match"),
		Entry("sandbox policyRef name too long", "Sandbox", "policyRef: {name: "+strings.Repeat("p", 254)+"}", "spec.policyRef.name", "Too long"),
		Entry("sandbox policyRef without name", "Sandbox", "policyRef: {}", "spec.policyRef.name", "Required value"),
		Entry("sandbox wrong log level", "Sandbox", "logLevel: verbose", "spec.logLevel", "Unsupported value"),
		Entry("sandbox wrong update strategy", "Sandbox", "updateStrategy: Rolling", "spec.updateStrategy", "Unsupported value"),
		Entry("sandbox wrong deletion policy", "Sandbox", "deletionPolicy: Retain", "spec.deletionPolicy", "Unsupported value"),
		Entry("sandbox bad environment key", "Sandbox", "environment: {\"1BAD\": x}", "spec.environment", "environment keys must be environment variable names"),
		Entry("sandbox environment key too long", "Sandbox", "environment: {"+strings.Repeat("K", 257)+": x}", "spec.environment", "environment keys must be environment variable names of at most 256 characters"),
		Entry("sandbox environment value too large", "Sandbox", "environment: {BIG: "+strings.Repeat("v", 8193)+"}", "spec.environment", "environment values must be at most 8192 bytes"),
		Entry("sandbox more than 128 environment variables", "Sandbox", "environment: {"+envMap(129)+"}", "spec.environment", "must have at most 128 items"),
		Entry("sandbox environment overriding a gateway variable", "Sandbox", "environment: {OPENSHELL_ENDPOINT: https://evil:8080}", "spec.environment", "environment must not set variables the gateway sets itself"),
		Entry("sandbox provider name not DNS", "Sandbox", "providers: [Bad_Name]", "spec.providers[0]", "should match"),
		Entry("sandbox provider in another namespace", "Sandbox", "providers: [other/openai]", "spec.providers[0]", "should match"),
		Entry("sandbox duplicate providers", "Sandbox", "providers: [a, a]", "spec.providers[1]", "Duplicate value"),
		Entry("sandbox too many providers", "Sandbox", "providers: ["+nameList("p", 33)+"]", "spec.providers", "must have at most 32 items"),
		Entry("sandbox pod label key with a space", "Sandbox", "podLabels: {'team name': a}", "spec.podLabels", "podLabels keys must be label keys"),
		Entry("sandbox pod label key with an uppercase prefix", "Sandbox", "podLabels: {Example.com/team: a}", "spec.podLabels", "podLabels keys must be label keys"),
		Entry("sandbox pod label value too long", "Sandbox", "podLabels: {team: "+strings.Repeat("a", 64)+"}", "spec.podLabels.team", "Too long"),
		Entry("sandbox pod label value with a slash", "Sandbox", "podLabels: {team: a/b}", "spec.podLabels.team", "should match"),
		Entry("sandbox pod annotation key with a colon", "Sandbox", "podAnnotations: {'note:x': a}", "spec.podAnnotations", "podAnnotations keys must be annotation keys"),
		Entry("sandbox gpuDevice without gpu", "Sandbox", "gpuDevice: '0'", "spec", "gpuDevice requires gpu: true"),
		Entry("sandbox gpuDevice neither index nor PCI address", "Sandbox", "gpu: true\ngpuDevice: first", "spec.gpuDevice", "should match"),
		Entry("sandbox image with whitespace", "Sandbox", "image: 'busybox latest'", "spec.image", imageMessage),
		Entry("sandbox image that is not a reference", "Sandbox", "image: 'GHCR.IO//Example/Agent:::v1@sha256:not-a-digest'", "spec.image", imageMessage),
		Entry("sandbox image with an uppercase path", "Sandbox", "image: ghcr.io/Example/agent:1", "spec.image", imageMessage),
		Entry("sandbox image with an empty path component", "Sandbox", "image: ghcr.io//agent", "spec.image", imageMessage),
		Entry("sandbox image with a port that is not a number", "Sandbox", "image: localhost:http/agent", "spec.image", imageMessage),
		Entry("sandbox image tag starting with a dash", "Sandbox", "image: busybox:-1", "spec.image", imageMessage),
		Entry("sandbox image tag of 129 characters", "Sandbox", "image: busybox:"+strings.Repeat("t", 129), "spec.image", imageMessage),
		Entry("sandbox image digest too short", "Sandbox", "image: busybox@sha256:abc", "spec.image", imageMessage),
		Entry("sandbox image digest in uppercase hex", "Sandbox", "image: busybox@sha256:"+strings.Repeat("A", 64), "spec.image", imageMessage),
		Entry("sandbox image sha512 digest of sha256 length", "Sandbox", "image: busybox@sha512:"+strings.Repeat("a", 64), "spec.image", imageMessage),
		Entry("sandbox image digest of an unknown algorithm", "Sandbox", "image: busybox@md5:"+strings.Repeat("a", 32), "spec.image", imageMessage),
		Entry("sandbox image that is an image ID", "Sandbox", "image: "+strings.Repeat("a", 64), "spec.image", "image must be a reference, not a 64-character image ID"),
		Entry("sandbox image path of 256 characters", "Sandbox", "image: example.com/"+strings.Repeat("a", 256), "spec.image", "image repository path"),
		Entry("sandbox image on Docker Hub whose library/ path is 256 characters", "Sandbox", "image: "+strings.Repeat("a", 248), "spec.image", "image repository path"),
		Entry("sandbox runtime class not a DNS subdomain", "Sandbox", "runtimeClassName: Kata_QEMU", "spec.runtimeClassName", "should match"),
		Entry("sandbox resource quantity not a quantity", "Sandbox", "resources: {limits: {cpu: two}}", "spec.resources.limits.cpu", "Invalid value"),
		Entry("sandbox on a connection that cannot exist", "Sandbox", "gatewayRef: {name: 'my gateway'}", "spec.gatewayRef.name", "should match"),
		// Policies (inline on a Sandbox, or a SandboxPolicy)
		Entry("policy relative path", "Sandbox", sandboxWithPolicy("filesystem: {readOnly: [etc]}"), "spec.policy.filesystem.readOnly[0]", "path must be absolute"),
		Entry("policy path with ..", "Sandbox", sandboxWithPolicy("filesystem: {readOnly: [/usr/../etc]}"), "spec.policy.filesystem.readOnly[0]", "path must not contain '..'"),
		Entry("policy path ending in ..", "SandboxPolicy", "filesystem: {readWrite: [/tmp/..]}", "spec.filesystem.readWrite[0]", "path must not contain '..'"),
		Entry("policy read-write root", "Sandbox", sandboxWithPolicy("filesystem: {readWrite: [/]}"), "spec.policy.filesystem.readWrite", "readWrite must not include '/'"),
		Entry("policy duplicate read-only path", "SandboxPolicy", "filesystem: {readOnly: [/usr, /usr]}", "spec.filesystem.readOnly[1]", "Duplicate value"),
		Entry("policy more than 256 paths", "SandboxPolicy", "filesystem: {readOnly: ["+pathList("/ro", 200)+"], readWrite: ["+pathList("/rw", 57)+"]}", "spec.filesystem", "at most 256 paths in total"),
		Entry("policy port 0", "SandboxPolicy", "networkPolicies: {r: {endpoints: [{host: a.example.com, ports: [0]}]}}", "spec.networkPolicies.r.endpoints[0].ports[0]", "should be greater than or equal to 1"),
		Entry("policy port 65536", "SandboxPolicy", "networkPolicies: {r: {endpoints: [{host: a.example.com, port: 65536}]}}", "spec.networkPolicies.r.endpoints[0].port", "should be less than or equal to 65535"),
		Entry("policy duplicate ports", "SandboxPolicy", "networkPolicies: {r: {endpoints: [{host: a.example.com, ports: [443, 443]}]}}", "spec.networkPolicies[r].endpoints[0].ports[1]", "Duplicate value"),
		Entry("policy endpoint without port", "SandboxPolicy", "networkPolicies: {r: {endpoints: [{host: a.example.com}]}}", "spec.networkPolicies[r].endpoints[0]", "port or ports is required"),
		Entry("policy TLD wildcard", "SandboxPolicy", "networkPolicies: {r: {endpoints: [{host: '*.com', port: 443}]}}", "spec.networkPolicies[r].endpoints[0].host", "TLD-wide wildcard hosts are not allowed"),
		Entry("policy TLD wildcard with a trailing dot", "Sandbox", sandboxWithPolicy("networkPolicies: {r: {endpoints: [{host: '*.io.', port: 443}]}}"), "spec.policy.networkPolicies[r].endpoints[0].host", "TLD-wide wildcard hosts are not allowed"),
		Entry("policy landlock enum", "SandboxPolicy", "landlock: {compatibility: maybe}", "spec.landlock.compatibility", "Unsupported value"),
		Entry("policy process user", "SandboxPolicy", "process: {runAsUser: root}", "spec.process.runAsUser", "Unsupported value"),
		Entry("policy process group", "Sandbox", sandboxWithPolicy("process: {runAsGroup: wheel}"), "spec.policy.process.runAsGroup", "Unsupported value"),
		Entry("policy relative binary", "SandboxPolicy", "networkPolicies: {r: {endpoints: [{host: a.example.com, port: 443}], binaries: [{path: curl}]}}", "spec.networkPolicies.r.binaries[0].path", "should match '^/'"),
		Entry("policy binary path with ..", "SandboxPolicy", "networkPolicies: {r: {endpoints: [{host: a.example.com, port: 443}], binaries: [{path: /usr/bin/../../tmp/x}]}}", "spec.networkPolicies[r].binaries[0].path", "path must not contain '..'"),
		Entry("policy duplicate binary", "SandboxPolicy", "networkPolicies: {r: {endpoints: [{host: a.example.com, port: 443}], binaries: [{path: /usr/bin/curl}, {path: /usr/bin/curl}]}}", "spec.networkPolicies[r].binaries[1]", "Duplicate value"),
		Entry("policy graphql operation type", "SandboxPolicy", "networkPolicies: {r: {endpoints: [{host: a.example.com, port: 443, rules: [{allow: {operationType: delete}}]}]}}", "spec.networkPolicies.r.endpoints[0].rules[0].allow.operationType", "Unsupported value"),
		Entry("policy allowed IP with a prefix above 32", "SandboxPolicy", allowedIPs("10.0.0.0/33"), allowedIPsField+"[0]", allowedIPsMessage),
		Entry("policy allowed IP that is a word", "SandboxPolicy", allowedIPs("10.0.0.0/8", "not-an-ip"), allowedIPsField+"[1]", allowedIPsMessage),
		Entry("policy allowed IP with an empty prefix", "SandboxPolicy", allowedIPs("1.2.3.4/"), allowedIPsField+"[0]", allowedIPsMessage),
		Entry("policy allowed IPv6 with a prefix above 128", "SandboxPolicy", allowedIPs("::1/129"), allowedIPsField+"[0]", allowedIPsMessage),
		Entry("policy allowed IP with leading zeros", "SandboxPolicy", allowedIPs("010.0.0.0/8"), allowedIPsField+"[0]", allowedIPsMessage),
		Entry("policy allowed IP that is IPv4-mapped IPv6", "SandboxPolicy", allowedIPs("::ffff:10.0.0.1"), allowedIPsField+"[0]", allowedIPsMessage),
		Entry("policy allowed IP with a zone", "SandboxPolicy", allowedIPs("fe80::1%eth0"), allowedIPsField+"[0]", allowedIPsMessage),
		Entry("policy allowed IP too long", "SandboxPolicy", allowedIPs(strings.Repeat("1", 65)), "spec.networkPolicies.r.endpoints[0].allowedIps[0]", "Too long"),
		Entry("inline policy allowed IP with a prefix above 32", "Sandbox", sandboxWithPolicy(allowedIPs("10.0.0.0/33")), "spec.policy."+strings.TrimPrefix(allowedIPsField, "spec.")+"[0]", allowedIPsMessage),
		Entry("inline policy allowed IP that is a word", "Sandbox", sandboxWithPolicy(allowedIPs("not-an-ip")), "spec.policy."+strings.TrimPrefix(allowedIPsField, "spec.")+"[0]", allowedIPsMessage),
		Entry("policy graphql body cap above 32 bits", "SandboxPolicy", "networkPolicies: {r: {endpoints: [{host: a.example.com, port: 443, graphqlMaxBodyBytes: 4294967296}]}}", "spec.networkPolicies.r.endpoints[0].graphqlMaxBodyBytes", "should be less than or equal to 4294967295"),
		// InferenceRoute
		Entry("route empty model", "InferenceRoute", "providerRef: {name: p}\nmodel: ''", "spec.model", "should be at least 1 chars long"),
		Entry("route model too long", "InferenceRoute", "providerRef: {name: p}\nmodel: "+strings.Repeat("m", 257), "spec.model", "Too long"),
		Entry("route without provider", "InferenceRoute", "model: m", "spec.providerRef", "Required value"),
		Entry("route provider in another namespace", "InferenceRoute", "providerRef: {name: p, namespace: other}\nmodel: m", "spec.providerRef.namespace", "unknown field"),
		Entry("route provider not a DNS subdomain", "InferenceRoute", "providerRef: {name: Open_AI}\nmodel: m", "spec.providerRef.name", "should match"),
		Entry("route unknown route", "InferenceRoute", validRoute+"\nroute: public", "spec.route", "Unsupported value"),
		Entry("route negative timeout", "InferenceRoute", validRoute+"\ntimeoutSeconds: -1", "spec.timeoutSeconds", "should be greater than or equal to 0"),
		// PolicyProposal
		Entry("proposal without sandbox", "PolicyProposal", "chunkID: c1", "spec.sandboxRef", "Required value"),
		Entry("proposal sandbox in another namespace", "PolicyProposal", "sandboxRef: {name: agent, namespace: other}\nchunkID: c1", "spec.sandboxRef.namespace", "unknown field"),
		Entry("proposal without chunk id", "PolicyProposal", "sandboxRef: {name: agent}", "spec.chunkID", "Required value"),
		Entry("proposal unknown decision", "PolicyProposal", validProposal+"\ndecision: Maybe", "spec.decision", "Unsupported value"),
		Entry("proposal rejected without a reason", "PolicyProposal", validProposal+"\ndecision: Rejected", "spec", "reason is required when the decision is Rejected"),
		Entry("proposal rejected with an empty reason", "PolicyProposal", validProposal+"\ndecision: Rejected\nreason: ''", "spec", "reason is required when the decision is Rejected"),
		Entry("proposal reason too long", "PolicyProposal", validProposal+"\ndecision: Rejected\nreason: "+strings.Repeat("r", 1025), "spec.reason", "Too long"),
		Entry("proposal approvals while pending", "PolicyProposal", validProposal+"\napprovals: [{user: alice, time: '2026-05-04T09:00:00Z'}]", "spec", "approvals can only be recorded with the decision Approved"),
		Entry("proposal two approvals by one user", "PolicyProposal", validProposal+"\ndecision: Approved\napprovals: [{user: alice, time: '2026-05-04T09:00:00Z'}, {user: alice, time: '2026-05-04T09:01:00Z'}]", "spec.approvals[1]", "Duplicate value"),
		Entry("proposal approval without a time", "PolicyProposal", validProposal+"\ndecision: Approved\napprovals: [{user: alice}]", "spec.approvals[0].time", "Required value"),
		Entry("proposal approval without a user", "PolicyProposal", validProposal+"\ndecision: Approved\napprovals: [{time: '2026-05-04T09:00:00Z'}]", "spec.approvals[0].user", "Required value"),
		Entry("proposal more than 16 approvals", "PolicyProposal", validProposal+"\ndecision: Approved\napprovals: ["+approvalList(17)+"]", "spec.approvals", "must have at most 16 items"),
		Entry("proposal replacement rule with a TLD wildcard", "PolicyProposal", validProposal+"\nrule: {endpoints: [{host: '*.com', port: 443}]}", "spec.rule.endpoints[0].host", "TLD-wide wildcard hosts are not allowed"),
		Entry("proposal replacement rule without port", "PolicyProposal", validProposal+"\nrule: {endpoints: [{host: api.example.com}]}", "spec.rule.endpoints[0]", "port or ports is required"),
	)

	// The rules that refuse malformed values must not refuse well-formed ones.
	DescribeTable("accepts well-formed values",
		func(kind, spec string) {
			Expect(k8sClient.Create(ctx, object(kind, spec), client.FieldValidation(metav1.FieldValidationStrict))).To(Succeed())
		},
		Entry("a Docker Hub image", "Sandbox", "image: busybox"),
		Entry("a Docker Hub image with a tag", "Sandbox", "image: busybox:1.36"),
		Entry("the gateway's default image", "Sandbox", "image: ghcr.io/nvidia/openshell-community/sandboxes/base:latest"),
		Entry("an image on a registry with a port", "Sandbox", "image: localhost:5000/team/agent:dev"),
		Entry("an image on an IPv6 registry", "Sandbox", "image: '[2001:db8::1]:5000/agent'"),
		Entry("an image on an uppercase registry", "Sandbox", "image: GHCR.IO/example/agent:v1"),
		Entry("an image with a tag and a digest", "Sandbox", "image: ghcr.io/example/agent:1.2@sha256:"+strings.Repeat("0a", 32)),
		Entry("an image with a sha512 digest", "Sandbox", "image: ghcr.io/example/agent@sha512:"+strings.Repeat("f", 128)),
		Entry("an image with every separator", "Sandbox", "image: example.com/a__b/c-d.e/f--g_h:1_2.3-4"),
		Entry("an image with a 128-character tag", "Sandbox", "image: busybox:"+strings.Repeat("t", 128)),
		Entry("an image path of 255 characters", "Sandbox", "image: example.com/"+strings.Repeat("a", 255)),
		Entry("a Docker Hub image whose library/ path is 255 characters", "Sandbox", "image: "+strings.Repeat("a", 247)),
		Entry("allowed IPs and CIDRs", "SandboxPolicy", allowedIPs("10.0.0.0/8", "192.168.1.1", "2001:db8::/32", "2001:db8::1", "203.0.113.0/24")),
		Entry("an allowed CIDR with host bits set, as the gateway allows", "SandboxPolicy", allowedIPs("10.0.0.1/8")),
		Entry("allowed IPs inline", "Sandbox", sandboxWithPolicy(allowedIPs("172.16.0.0/12", "fd00::/8"))),
	)

	// Object names and the Secrets the resources reference are refused in the same way.
	DescribeTable("rejects invalid names and Secrets",
		func(manifest, field, wantMessage string) {
			u := &unstructured.Unstructured{}
			Expect(sigsyaml.Unmarshal([]byte(manifest), &u.Object)).To(Succeed())
			err := k8sClient.Create(ctx, u, client.FieldValidation(metav1.FieldValidationStrict))
			expectRefusal(err, u.GetKind(), field, wantMessage)
		},
		Entry("sandbox name too long to be a gateway label value", named("Sandbox", strings.Repeat("a", 64), "image: busybox"), "metadata", "metadata.name must be at most 63 characters"),
		Entry("provider name too long to be a gateway label value", named("Provider", strings.Repeat("p", 64), validProvider), "metadata", "metadata.name must be at most 63 characters"),
		Entry("sandbox name not a DNS subdomain", named("Sandbox", "Agent_1", "image: busybox"), "metadata.name", "a lowercase RFC 1123 subdomain"),
		Entry("secret key that is not a Secret key", secretYAML("type: Opaque\nstringData: {'OPENAI API KEY': sk-x}"), "data[OPENAI API KEY]", "a valid config key"),
		Entry("secret larger than 1 MiB", secretYAML("type: Opaque\nstringData: {BIG: "+strings.Repeat("x", 1<<20+1)+"}"), "data", "Too long"),
		Entry("TLS secret without tls.key", secretYAML("type: kubernetes.io/tls\nstringData: {tls.crt: 'cert', ca.crt: 'ca'}"), "data[tls.key]", "Required value"),
	)

	DescribeTable("rejects changes to immutable fields",
		func(kind, spec, patch, field, wantMessage string) {
			obj := object(kind, spec)
			Expect(k8sClient.Create(ctx, obj)).To(Succeed())
			changed := map[string]any{}
			Expect(sigsyaml.Unmarshal([]byte(patch), &changed)).To(Succeed())
			for k, v := range changed {
				Expect(unstructured.SetNestedField(obj.Object, v, "spec", k)).To(Succeed())
			}
			expectRefusal(k8sClient.Update(ctx, obj), kind, field, wantMessage)
		},
		Entry("sandbox gatewayRef", "Sandbox", "image: busybox", "gatewayRef: {name: other}", "spec.gatewayRef", "gatewayRef is immutable"),
		Entry("provider gatewayRef", "Provider", validProvider, "gatewayRef: {name: other}", "spec.gatewayRef", "gatewayRef is immutable"),
		Entry("provider type", "Provider", validProvider, "type: anthropic", "spec.type", "type is immutable"),
		Entry("route gatewayRef", "InferenceRoute", validRoute, "gatewayRef: {name: other}", "spec.gatewayRef", "gatewayRef is immutable"),
		Entry("proposal sandboxRef", "PolicyProposal", validProposal, "sandboxRef: {name: other}", "spec.sandboxRef", "sandboxRef is immutable"),
		Entry("proposal chunkID", "PolicyProposal", validProposal, "chunkID: c2", "spec.chunkID", "chunkID is immutable"),
		Entry("proposal rejected back to pending", "PolicyProposal", validProposal+"\ndecision: Rejected\nreason: unwanted", "decision: Pending", "spec", "a rejected proposal cannot go back to Pending"),
		Entry("proposal rule of an approved proposal", "PolicyProposal", validProposal+"\ndecision: Approved\nrule: {endpoints: [{host: api.example.com, port: 443}]}", "rule: {endpoints: [{host: api.example.com, port: 8443}]}", "spec", "the rule of an approved proposal cannot change"),
		Entry("proposal rule added to an approved proposal", "PolicyProposal", validProposal+"\ndecision: Approved", "rule: {endpoints: [{host: api.example.com, port: 443}]}", "spec", "the rule of an approved proposal cannot change"),
	)

	// No operator runs in this suite: what kstatus (Flux) and a GET read of an object nobody has
	// reconciled yet. Without the status default kstatus would read each as Current.
	DescribeTable("reads a new object as not yet observed",
		func(kind, spec string) {
			obj := object(kind, spec)
			Expect(k8sClient.Create(ctx, obj)).To(Succeed())
			got := &unstructured.Unstructured{}
			got.SetGroupVersionKind(obj.GroupVersionKind())
			Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(obj), got)).To(Succeed())
			Expect(got.Object).To(HaveKeyWithValue("status", map[string]any{"observedGeneration": int64(0)}))
			res, err := kstatus.Compute(got)
			Expect(err).NotTo(HaveOccurred())
			Expect(res.Status).To(Equal(kstatus.InProgressStatus), res.Message)
		},
		Entry("Sandbox", "Sandbox", "image: busybox"),
		Entry("SandboxPolicy", "SandboxPolicy", "{}"),
		Entry("Provider", "Provider", validProvider),
		Entry("InferenceRoute", "InferenceRoute", validRoute),
		Entry("PolicyProposal", "PolicyProposal", validProposal),
		Entry("GatewayConnection", "GatewayConnection", validGateway),
	)

	It("defaults gatewayRef, updateStrategy and deletionPolicy", func() {
		obj := object("Sandbox", "image: busybox")
		Expect(k8sClient.Create(ctx, obj)).To(Succeed())
		Expect(obj.Object["spec"]).To(HaveKeyWithValue("gatewayRef", HaveKeyWithValue("name", "default")))
		Expect(obj.Object["spec"]).To(HaveKeyWithValue("updateStrategy", "Recreate"))
		Expect(obj.Object["spec"]).To(HaveKeyWithValue("deletionPolicy", "Delete"))
	})

	It("accepts a reviewer's transitions on a proposal and defaults its decision to Pending", func() {
		obj := object("PolicyProposal", validProposal)
		Expect(k8sClient.Create(ctx, obj)).To(Succeed())
		Expect(obj.Object["spec"]).To(HaveKeyWithValue("decision", "Pending"))
		steps := []string{
			"{decision: Pending, rule: {endpoints: [{host: api.example.com, port: 443}]}}",                                              // edit
			"{decision: Approved, approvals: [{user: alice, time: '2026-05-04T09:00:00Z'}]}",                                            // approve
			"{decision: Approved, approvals: [{user: alice, time: '2026-05-04T09:00:00Z'}, {user: bob, time: '2026-05-04T09:01:00Z'}]}", // second approver
			"{decision: Pending, approvals: null, rule: {endpoints: [{host: api.example.com, port: 8443}]}}",                            // undo and edit again
			"{decision: Rejected, reason: not needed}",                                                                                  // reject
			"{decision: Approved, reason: null}",                                                                                        // approve a rejected one
		}
		for _, step := range steps {
			patch := map[string]any{}
			Expect(sigsyaml.Unmarshal([]byte(step), &patch)).To(Succeed())
			for k, v := range patch {
				if v == nil {
					unstructured.RemoveNestedField(obj.Object, "spec", k)
					continue
				}
				Expect(unstructured.SetNestedField(obj.Object, v, "spec", k)).To(Succeed())
			}
			Expect(k8sClient.Update(ctx, obj)).To(Succeed(), "step %s", step)
		}
	})

	It("defaults a connection to every namespace for use and none for inference routes", func() {
		obj := object("GatewayConnection", validGateway)
		Expect(k8sClient.Create(ctx, obj)).To(Succeed())
		Expect(obj.Object["spec"]).To(HaveKeyWithValue("namespaces", map[string]any{"from": "All"}))
		Expect(obj.Object["spec"]).To(HaveKeyWithValue("inferenceRoutes", map[string]any{"namespaces": map[string]any{"from": "None"}}))
		obj = object("GatewayConnection", validGateway+"\ninferenceRoutes: {}")
		Expect(k8sClient.Create(ctx, obj)).To(Succeed())
		Expect(obj.Object["spec"]).To(HaveKeyWithValue("inferenceRoutes", map[string]any{"namespaces": map[string]any{"from": "None"}}))
		obj = object("GatewayConnection", validGateway+"\nnamespaces: {from: Selector, selector: {matchExpressions: [{key: team, operator: In, values: [a]}, {key: frozen, operator: DoesNotExist}]}}")
		Expect(k8sClient.Create(ctx, obj)).To(Succeed())
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
		Expect(files).To(HaveLen(6))
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

const (
	imageMessage      = "image must be an OCI image reference: [registry[:port]/]path[:tag][@digest] with a lowercase path"
	allowedIPsField   = "spec.networkPolicies[r].endpoints[0].allowedIps"
	allowedIPsMessage = "allowedIps entries must be IP addresses or CIDRs"
)

// allowedIPs is a policy with one endpoint restricted to the given addresses.
func allowedIPs(entries ...string) string {
	return fmt.Sprintf("networkPolicies: {r: {endpoints: [{host: db.example.com, port: 5432, allowedIps: ['%s']}]}}", strings.Join(entries, "', '"))
}

// approvalList is n approvals by distinct users, as flow-style YAML items.
func approvalList(n int) string {
	items := make([]string, n)
	for i := range items {
		items[i] = fmt.Sprintf("{user: u%d, time: '2026-05-04T09:00:00Z'}", i)
	}
	return strings.Join(items, ", ")
}

// nameList is "<prefix>0, <prefix>1, ..." with n names.
func nameList(prefix string, n int) string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return strings.Join(names, ", ")
}

// pathList is n distinct absolute paths under dir.
func pathList(dir string, n int) string {
	paths := make([]string, n)
	for i := range paths {
		paths[i] = fmt.Sprintf("%s/%d", dir, i)
	}
	return strings.Join(paths, ", ")
}

// envMap is n distinct environment variables in YAML flow style.
func envMap(n int) string {
	vars := make([]string, n)
	for i := range vars {
		vars[i] = fmt.Sprintf("V%d: x", i)
	}
	return strings.Join(vars, ", ")
}

// named is a whole manifest of kind with the given name in namespace "default".
func named(kind, name, specYAML string) string {
	return fmt.Sprintf("apiVersion: openshell.dev/v1alpha1\nkind: %s\nmetadata: {name: %q, namespace: default}\nspec:\n%s", kind, name, indent(specYAML))
}

// secretYAML is a Secret manifest in namespace "default" with the given top-level fields.
func secretYAML(body string) string {
	counter++
	return fmt.Sprintf("apiVersion: v1\nkind: Secret\nmetadata: {name: secret-%d, namespace: default}\n%s", counter, body)
}

// refusal is one cause the API server gives for refusing a request.
type refusal struct{ Field, Message string }

// refusals lists the causes of an API error. Strict field validation reports unknown fields
// in the message ("unknown field \"spec.x\"" or ".spec.x: field not declared in schema")
// rather than as causes; they are returned as causes of their own.
func refusals(err error) []refusal {
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		return nil
	}
	var out []refusal
	if d := status.Status().Details; d != nil {
		for _, c := range d.Causes {
			out = append(out, refusal{Field: c.Field, Message: c.Message})
		}
	}
	for _, m := range unknownFieldRE.FindAllStringSubmatch(status.Status().Message, -1) {
		out = append(out, refusal{Field: m[1] + m[2], Message: "unknown field"})
	}
	return out
}

var unknownFieldRE = regexp.MustCompile(`unknown field "([^"]+)"|\.?([A-Za-z0-9_.\[\]]+): field not declared in schema`)

// expectRefusal asserts that err is the API server refusing the object at field (the
// empty string for a rule on the whole object) with a message containing wantMessage.
func expectRefusal(err error, kind, field, wantMessage string) {
	GinkgoHelper()
	Expect(err).To(HaveOccurred(), "the API server accepted an invalid %s", kind)
	Expect(apierrors.IsInvalid(err) || apierrors.IsBadRequest(err) || apierrors.IsRequestEntityTooLargeError(err)).To(BeTrue(), "want a validation error, got %v", err)
	Expect(refusals(err)).To(ContainElement(And(
		HaveField("Field", field),
		HaveField("Message", ContainSubstring(wantMessage)),
	)), "refusal of %s: %v", kind, err)
}

var _ client.Object = &unstructured.Unstructured{}
