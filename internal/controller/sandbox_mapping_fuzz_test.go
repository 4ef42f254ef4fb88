package controller

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
	sandboxv1 "github.com/openshell-operator/openshell-operator/gen/openshell/sandbox/v1"
	openshellv1 "github.com/openshell-operator/openshell-operator/gen/openshell/v1"
)

// Seed policies (CRD JSON): empty, typical, and one that sets every field.
var policySeeds = []string{
	`{}`,
	`{"filesystem":{"includeWorkdir":true,"readOnly":["/usr","/etc"],"readWrite":["/sandbox","/tmp"]},"landlock":{"compatibility":"best_effort"},"process":{"runAsUser":"sandbox","runAsGroup":"sandbox"}}`,
	`{"networkPolicies":{"github":{"name":"github","endpoints":[{"host":"api.github.com","port":443,"protocol":"rest","tls":"terminate","enforcement":"enforce","access":"read-only"}],"binaries":[{"path":"/usr/bin/gh"},{"path":"/usr/bin/git"}]},"pypi":{"endpoints":[{"host":"*.pypi.org","ports":[443,8443]}]}}}`,
	`{"filesystem":{"readOnly":["/"]},"process":{},"networkPolicies":{"gql":{"name":"gql","endpoints":[{"host":"api.example.com","ports":[443],"protocol":"graphql","rules":[{"allow":{"method":"POST","path":"/graphql","command":"c","query":{"a":{"glob":"x*"},"b":{"any":["1","2"]}},"operationType":"query","operationName":"Q","fields":["f","g"]}}],"allowedIps":["10.0.0.0/8","192.168.1.1"],"denyRules":[{"method":"DELETE","path":"/**","query":{"force":{"any":["true"]}},"operationType":"mutation","operationName":"M","fields":["x"]}],"allowEncodedSlash":true,"persistedQueries":"allow_registered","graphqlPersistedQueries":{"abc":{"operationType":"query","operationName":"Q","fields":["f"]},"def":{}},"graphqlMaxBodyBytes":65536,"path":"/v1","websocketCredentialRewrite":true,"requestBodyCredentialRewrite":true,"advisorProposed":true}],"binaries":[{"path":"/usr/bin/python3"}]}}}`,
	// graphqlMaxBodyBytes is a uint32 on the wire: 2^32 failed the conversion of a spec the
	// API server accepted, until the CRD declared the maximum (now refused at apply time).
	`{"networkPolicies":{"big":{"endpoints":[{"host":"api.example.com","port":443,"graphqlMaxBodyBytes":4294967296}]}}}`,
	`{"networkPolicies":{"neg":{"endpoints":[{"host":"api.example.com","port":-1,"ports":[-443]}]}}}`,
	`{"filesystem":{"readOnly":["/\u0000","/é","/\ud800"]},"networkPolicies":{"":{"name":"","endpoints":[{}],"binaries":[{}]}}}`,
}

// bound is an inclusive range; the CRD leaves a side open with ±Inf.
type bound struct{ min, max float64 }

func (b bound) admits(v int64) bool { return float64(v) >= b.min && float64(v) <= b.max }

func schemaBound(s apiextensionsv1.JSONSchemaProps) bound {
	b := bound{min: math.Inf(-1), max: math.Inf(1)}
	if s.Minimum != nil {
		b.min = *s.Minimum
	}
	if s.Maximum != nil {
		b.max = *s.Maximum
	}
	return b
}

// endpointBounds are the numeric ranges the SandboxPolicy CRD declares for an endpoint's
// port, ports and graphqlMaxBodyBytes, read from the generated CRD so that the fuzz target
// checks the schema the API server enforces, not a copy of it.
var endpointBounds = sync.OnceValues(func() (map[string]bound, error) {
	data, err := os.ReadFile(filepath.Join("..", "..", "config", "crd", "bases", "openshell.dev_sandboxpolicies.yaml"))
	if err != nil {
		return nil, err
	}
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := sigsyaml.Unmarshal(data, crd); err != nil {
		return nil, err
	}
	spec := crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"]
	ep := spec.Properties["networkPolicies"].AdditionalProperties.Schema.Properties["endpoints"].Items.Schema.Properties
	return map[string]bound{
		"port":                schemaBound(ep["port"]),
		"ports":               schemaBound(*ep["ports"].Items.Schema),
		"graphqlMaxBodyBytes": schemaBound(ep["graphqlMaxBodyBytes"]),
	}, nil
})

// admittedByCRD reports whether every number of spec is in the CRD's declared range (an
// unset port, 0, is not sent).
func admittedByCRD(t *testing.T, spec *v1alpha1.SandboxPolicySpec) bool {
	b, err := endpointBounds()
	if err != nil {
		t.Fatalf("read the SandboxPolicy CRD: %v", err)
	}
	for _, r := range spec.NetworkPolicies {
		for _, e := range r.Endpoints {
			if e.Port != 0 && !b["port"].admits(int64(e.Port)) {
				return false
			}
			for _, p := range e.Ports {
				if !b["ports"].admits(int64(p)) {
					return false
				}
			}
			if !b["graphqlMaxBodyBytes"].admits(e.GraphqlMaxBodyBytes) {
				return false
			}
		}
	}
	return true
}

// policyFromGateway is the reverse mapping: the proto's JSON names are the CRD's.
func policyFromGateway(t *testing.T, p *sandboxv1.SandboxPolicy) *v1alpha1.SandboxPolicySpec {
	t.Helper()
	b, err := protojson.Marshal(p)
	if err != nil {
		t.Fatalf("encode gateway policy: %v", err)
	}
	out := &v1alpha1.SandboxPolicySpec{}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("decode gateway policy %s into the CRD type: %v", b, err)
	}
	return out
}

// FuzzSandboxPolicyToGateway: CRD policy → gateway proto → CRD policy. The conversion never
// panics, succeeds for every spec within the CRD's numeric bounds, and the round trip gives
// back the same spec (and, over the wire, the same proto and hash).
func FuzzSandboxPolicyToGateway(f *testing.F) {
	for _, s := range policySeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		spec := &v1alpha1.SandboxPolicySpec{}
		if json.Unmarshal(data, spec) != nil {
			t.Skip("not a policy")
		}
		p, err := sandboxPolicyToGateway(spec)
		if err != nil {
			if admittedByCRD(t, spec) {
				t.Fatalf("a policy the CRD admits does not convert: %v", err)
			}
			return
		}
		if back := policyFromGateway(t, p); !equality.Semantic.DeepEqual(spec, back) {
			t.Fatalf("round trip changed the policy:\n in: %+v\nout: %+v", spec, back)
		}
		wire, err := proto.Marshal(p)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		got := &sandboxv1.SandboxPolicy{}
		if err := proto.Unmarshal(wire, got); err != nil {
			t.Fatalf("unmarshal: %v", err)
		}
		if !proto.Equal(p, got) || sandboxPolicyHash(p) != sandboxPolicyHash(got) {
			t.Fatal("the wire changed the policy or its hash")
		}
	})
}

// Seed sandbox specs (CRD JSON).
var sandboxSeeds = []string{
	`{}`,
	`{"image":"busybox","logLevel":"info","environment":{"A":"1","B":""},"providers":["openai","github"],"gpu":true,"gpuDevice":"0000:2d:00.0","runtimeClassName":"kata"}`,
	`{"podLabels":{"team":"a","app.kubernetes.io/name":"x"},"podAnnotations":{"note":"multi\nline"},"resources":{"limits":{"cpu":"2","memory":"2Gi","nvidia.com/gpu":"1"},"requests":{"cpu":"500m","memory":"1.5Gi"}}}`,
	`{"resources":{"limits":{"cpu":"1e3","memory":"0.5Gi"},"requests":{}},"policy":{"filesystem":{"readWrite":["/sandbox"]}}}`,
	`{"environment":{"":"","é":"\u0000"},"podLabels":{"":""},"providers":["",""],"policy":{"process":{"runAsUser":"root"},"networkPolicies":{"r":{"endpoints":[{"host":"a","port":1}]}}}}`,
}

// gatewayStored is what the gateway stores for a created spec (gateway-semantics §1.1): the
// default image when none is given, and the policy's process identity defaulted to sandbox.
func gatewayStored(desired *openshellv1.SandboxSpec) *openshellv1.SandboxSpec {
	out := proto.Clone(desired).(*openshellv1.SandboxSpec)
	if out.Template == nil {
		out.Template = &openshellv1.SandboxTemplate{}
	}
	if out.Template.Image == "" {
		out.Template.Image = "ghcr.io/nvidia/openshell-community/sandboxes/base:latest"
	}
	if out.Policy != nil {
		out.Policy = normalizeSandboxPolicy(out.Policy)
	}
	return out
}

// FuzzSandboxDesiredSpec: Sandbox CR → gateway spec. The mapping never fails for a spec that
// decodes, is deterministic, survives the wire, and is never seen as drift against itself or
// against what the gateway stores for it (default image, process identity): such drift would
// recreate the sandbox forever.
func FuzzSandboxDesiredSpec(f *testing.F) {
	for _, s := range sandboxSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		sb := &v1alpha1.Sandbox{}
		sb.Namespace, sb.Name = "ns", "sb"
		if json.Unmarshal(data, &sb.Spec) != nil {
			t.Skip("not a sandbox spec")
		}
		policy, err := sandboxPolicyToGateway(sb.Spec.Policy)
		if err != nil {
			t.Skip("policy outside the wire types (see FuzzSandboxPolicyToGateway)")
		}
		var providers []string
		for _, n := range sb.Spec.Providers {
			providers = append(providers, GatewayName(sb.Namespace, n))
		}
		desired, err := sandboxDesiredSpec(sb, providers, policy)
		if err != nil {
			t.Fatalf("a decodable spec does not map: %v", err)
		}
		again, err := sandboxDesiredSpec(sb, providers, policy)
		if err != nil || !proto.Equal(desired, again) {
			t.Fatalf("mapping is not deterministic: %v", err)
		}
		wire, err := proto.Marshal(desired)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		back := &openshellv1.SandboxSpec{}
		if err := proto.Unmarshal(wire, back); err != nil {
			t.Fatalf("unmarshal: %v", err)
		}
		for what, observed := range map[string]*openshellv1.SandboxSpec{"itself": desired, "the wire": back, "the gateway's stored form": gatewayStored(desired)} {
			if d := diffSandboxSpec(desired, observed); d.InPlace() || d.NeedsRecreate() {
				t.Fatalf("spec differs from %s: attach %v, detach %v, recreate %v", what, d.Attach, d.Detach, d.Recreate)
			}
		}
		if policy != nil && sandboxPolicyHash(back.GetPolicy()) != sandboxPolicyHash(policy) {
			t.Fatal("the policy hash changed over the wire")
		}
	})
}

// shuffleJSON re-encodes a JSON document with the members of every object in a random order.
func shuffleJSON(t *testing.T, data []byte, rng *rand.Rand) []byte {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decode: %v", err)
	}
	var buf bytes.Buffer
	var write func(v any)
	write = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			keys := make([]string, 0, len(x))
			for k := range x {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			rng.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
			buf.WriteByte('{')
			for i, k := range keys {
				if i > 0 {
					buf.WriteByte(',')
				}
				kb, _ := json.Marshal(k)
				buf.Write(kb)
				buf.WriteByte(':')
				write(x[k])
			}
			buf.WriteByte('}')
		case []any:
			buf.WriteByte('[')
			for i, e := range x {
				if i > 0 {
					buf.WriteByte(',')
				}
				write(e)
			}
			buf.WriteByte(']')
		default:
			b, err := json.Marshal(x)
			if err != nil {
				t.Fatalf("encode: %v", err)
			}
			buf.Write(b)
		}
	}
	write(v)
	return buf.Bytes()
}

// rebuildMaps returns a copy of p whose maps were filled in a random key order.
func rebuildMaps(p *sandboxv1.SandboxPolicy, rng *rand.Rand) *sandboxv1.SandboxPolicy {
	out := proto.Clone(p).(*sandboxv1.SandboxPolicy)
	keys := make([]string, 0, len(out.NetworkPolicies))
	for k := range out.NetworkPolicies {
		keys = append(keys, k)
	}
	rng.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
	rules := make(map[string]*sandboxv1.NetworkPolicyRule, len(keys))
	for _, k := range keys {
		rules[k] = out.NetworkPolicies[k]
	}
	out.NetworkPolicies = rules
	return out
}

// FuzzSandboxPolicyHash: the canonical hash is stable under the order of map members (in the
// CR's JSON and in the proto's maps) and under the gateway's identity defaults, and changes
// when the content does.
func FuzzSandboxPolicyHash(f *testing.F) {
	for i, s := range policySeeds {
		f.Add([]byte(s), uint64(i))
	}
	f.Fuzz(func(t *testing.T, data []byte, seed uint64) {
		spec := &v1alpha1.SandboxPolicySpec{}
		if json.Unmarshal(data, spec) != nil {
			t.Skip("not a policy")
		}
		p, err := sandboxPolicyToGateway(spec)
		if err != nil {
			t.Skip("policy outside the wire types")
		}
		h := sandboxPolicyHash(p)
		if !strings.HasPrefix(h, "sha256:") || len(h) != len("sha256:")+64 {
			t.Fatalf("hash %q is not sha256:<64 hex>", h)
		}
		rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
		canonical, err := json.Marshal(spec)
		if err != nil {
			t.Fatalf("encode: %v", err)
		}
		shuffled := &v1alpha1.SandboxPolicySpec{}
		if err := json.Unmarshal(shuffleJSON(t, canonical, rng), shuffled); err != nil {
			t.Fatalf("decode shuffled: %v", err)
		}
		sp, err := sandboxPolicyToGateway(shuffled)
		if err != nil {
			t.Fatalf("shuffled policy does not convert: %v", err)
		}
		for what, q := range map[string]*sandboxv1.SandboxPolicy{
			"the same policy again":          p,
			"JSON members in another order":  sp,
			"maps filled in another order":   rebuildMaps(p, rng),
			"the gateway's identity default": normalizeSandboxPolicy(p),
		} {
			if got := sandboxPolicyHash(q); got != h {
				t.Fatalf("hash of %s differs: %s != %s", what, got, h)
			}
		}

		// Content changes change the hash.
		changes := map[string]func(q *sandboxv1.SandboxPolicy){
			"a read-only path added": func(q *sandboxv1.SandboxPolicy) {
				if q.Filesystem == nil {
					q.Filesystem = &sandboxv1.FilesystemPolicy{}
				}
				q.Filesystem.ReadOnly = append(q.Filesystem.ReadOnly, fmt.Sprintf("/fuzz-added-%d", len(q.Filesystem.ReadOnly)))
			},
			"includeWorkdir flipped": func(q *sandboxv1.SandboxPolicy) {
				if q.Filesystem == nil {
					q.Filesystem = &sandboxv1.FilesystemPolicy{}
				}
				q.Filesystem.IncludeWorkdir = !q.Filesystem.IncludeWorkdir
			},
			"a network rule added": func(q *sandboxv1.SandboxPolicy) {
				if q.NetworkPolicies == nil {
					q.NetworkPolicies = map[string]*sandboxv1.NetworkPolicyRule{}
				}
				k := "fuzz-added"
				for q.NetworkPolicies[k] != nil {
					k += "-"
				}
				q.NetworkPolicies[k] = &sandboxv1.NetworkPolicyRule{}
			},
		}
		for _, k := range slices.Sorted(maps.Keys(p.GetNetworkPolicies())) {
			changes["rule "+k+" renamed"] = func(q *sandboxv1.SandboxPolicy) {
				nk := k + "-renamed"
				for q.NetworkPolicies[nk] != nil {
					nk += "-"
				}
				q.NetworkPolicies[nk] = q.NetworkPolicies[k]
				delete(q.NetworkPolicies, k)
			}
			break
		}
		for what, change := range changes {
			q := proto.Clone(p).(*sandboxv1.SandboxPolicy)
			change(q)
			if sandboxPolicyHash(q) == h {
				t.Fatalf("hash unchanged after %s", what)
			}
		}
	})
}
