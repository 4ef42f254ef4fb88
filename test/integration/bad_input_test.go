package integration

import (
	"encoding/pem"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
	"github.com/openshell-operator/openshell-operator/internal/controller"
	"github.com/openshell-operator/openshell-operator/internal/gateway"
	"github.com/openshell-operator/openshell-operator/internal/gatewaysim"
)

// Where a bad input is judged, once the API server has accepted it.
type judge int

const (
	// byOperator: the operator refuses it before any gateway call that concerns the object.
	byOperator judge = iota
	// byGateway: the gateway is asked and refuses; the operator reports its answer.
	byGateway
	// byDialing: a GatewayConnection reaches its endpoint and finds no gateway there.
	byDialing
)

// gatewayCall names a gateway object (its gateway-wide name) and optionally one RPC; an
// empty method means any RPC naming the object.
type gatewayCall struct{ name, method string }

func (c gatewayCall) count() int {
	calls := sim.CallsFor(c.name)
	if c.method != "" {
		return calls[c.method]
	}
	n := 0
	for _, v := range calls {
		n += v
	}
	return n
}

// badSubject is what one row creates: the resource whose conditions carry the verdict, every
// object to delete afterwards (in creation order), the gateway calls the verdict is about,
// and a secret value that must never appear in the message.
type badSubject struct {
	obj     client.Object
	conds   func() []metav1.Condition
	objs    []client.Object
	calls   []gatewayCall
	dialing bool // GatewayConnection rows: count connections to the dead endpoint instead
	secret  string
	// absent are gateway names that must be neither a sandbox nor a provider afterwards.
	absent []string
}

const (
	// badInputGateway is a second connection to the suite's simulator, so InferenceRoute
	// rows claim routes nobody else in the suite claims.
	badInputGateway = "bad-input"
	leakedSecret    = "sk-never-in-a-message"
	garbageKey      = "garbage-key-material"
)

var (
	// deadEndpoint accepts TCP connections, counts them and closes them: no gateway there.
	deadEndpoint string
	deadDials    atomic.Int64
	badCounter   int
)

func uniqueName(prefix string) string {
	badCounter++
	return fmt.Sprintf("%s-%d", prefix, badCounter)
}

func create(objs ...client.Object) []client.Object {
	GinkgoHelper()
	for _, o := range objs {
		Expect(k8s.Create(ctx, o)).To(Succeed(), "create %T %s", o, o.GetName())
	}
	return objs
}

func secretBytes(ns, name string, data map[string][]byte) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: data}
}

// providerRow creates Provider "p" over a Secret "creds" holding data (no Secret when nil).
func providerRow(data map[string][]byte, keys ...string) func(ns string) badSubject {
	return func(ns string) badSubject {
		var objs []client.Object
		if data != nil {
			objs = append(objs, secretBytes(ns, "creds", data))
		}
		p := provider(ns, "p", "creds", keys...)
		objs = append(objs, p)
		name := controller.GatewayName(ns, "p")
		return badSubject{obj: p, conds: func() []metav1.Condition { return p.Status.Conditions }, objs: create(objs...),
			calls: []gatewayCall{{name: name}}, secret: leakedSecret, absent: []string{name}}
	}
}

func sandboxRow(ns string, mutate func(*v1alpha1.Sandbox), before ...client.Object) badSubject {
	GinkgoHelper()
	sb := &v1alpha1.Sandbox{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "sb"}, Spec: v1alpha1.SandboxSpec{Image: "busybox"}}
	mutate(sb)
	objs := create(append(before, sb)...)
	name := controller.GatewayName(ns, "sb")
	return badSubject{obj: sb, conds: func() []metav1.Condition { return sb.Status.Conditions }, objs: objs,
		calls: []gatewayCall{{name: name}}, absent: []string{name}}
}

// routeRow creates an InferenceRoute "r" on the bad-input connection pointing at Provider
// providerName; SetClusterInference must never name that provider.
func routeRow(ns, providerName string, before ...client.Object) badSubject {
	GinkgoHelper()
	ir := inferenceRoute(ns, "r", "inference.local", providerName, "m")
	ir.Spec.GatewayRef.Name = badInputGateway
	objs := create(append(before, ir)...)
	return badSubject{obj: ir, conds: func() []metav1.Condition { return ir.Status.Conditions }, objs: objs,
		calls: []gatewayCall{{name: controller.GatewayName(ns, providerName), method: "SetClusterInference"}}}
}

// connectionRow creates a GatewayConnection to the dead endpoint over a TLS Secret in the
// system namespace holding data() (no Secret when data is nil); auth adds a token Secret
// reference. data is called when the row runs: the suite's certificates do not exist yet
// when the table is built.
func connectionRow(data func() map[string][]byte, auth func(gc *v1alpha1.GatewayConnection) []client.Object) func(string) badSubject {
	return func(string) badSubject {
		name := uniqueName("bad")
		var objs []client.Object
		if data != nil {
			objs = append(objs, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: systemNS, Name: name}, Data: data()})
		}
		gc := connection(name, name)
		gc.Spec.Endpoint = deadEndpoint
		if auth != nil {
			objs = append(objs, auth(gc)...)
		}
		objs = append(objs, gc)
		return badSubject{obj: gc, conds: func() []metav1.Condition { return gc.Status.Conditions }, objs: create(objs...),
			dialing: true, secret: garbageKey}
	}
}

// pemPart is one value of a TLS Secret, computed when a row runs.
type pemPart func() []byte

var (
	caPEM   pemPart = func() []byte { return certs.CACert }
	certPEM pemPart = func() []byte { return certs.ClientCert }
	keyPEM  pemPart = func() []byte { return certs.ClientKey }
)

func literal(s string) pemPart { return func() []byte { return []byte(s) } }

// tlsData is a TLS Secret's data with keys ca.crt, tls.crt and tls.key (a nil part is left
// out).
func tlsData(ca, cert, key pemPart) func() map[string][]byte {
	return func() map[string][]byte {
		d := map[string][]byte{}
		for k, v := range map[string]pemPart{"ca.crt": ca, "tls.crt": cert, "tls.key": key} {
			if v != nil {
				d[k] = v()
			}
		}
		return d
	}
}

// tokenSecret makes the connection authenticate with a token Secret holding data (no Secret
// when nil).
func tokenSecret(data map[string][]byte) func(gc *v1alpha1.GatewayConnection) []client.Object {
	return func(gc *v1alpha1.GatewayConnection) []client.Object {
		name := gc.Name + "-token"
		gc.Spec.Auth = &v1alpha1.GatewayAuth{TokenSecretRef: v1alpha1.SecretKeyReference{Namespace: systemNS, Name: name, Key: "token"}}
		if data == nil {
			return nil
		}
		return []client.Object{&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: systemNS, Name: name}, Data: data}}
	}
}

func manyCredentials(n int) map[string][]byte {
	d := map[string][]byte{}
	for i := range n {
		d[fmt.Sprintf("KEY_%d", i)] = []byte(leakedSecret)
	}
	return d
}

func expiredCert() []byte {
	GinkgoHelper()
	cert, _, err := certs.IssueClient("expired-bad-input", time.Now().Add(-time.Hour))
	Expect(err).NotTo(HaveOccurred())
	return cert
}

func otherClientKey() []byte {
	GinkgoHelper()
	other, err := gatewaysim.GenerateCertBundle()
	Expect(err).NotTo(HaveOccurred())
	return other.ClientKey
}

func derCA() []byte {
	block, _ := pem.Decode(certs.CACert)
	return block.Bytes
}

var _ = Describe("Bad input the API server cannot judge", Ordered, ContinueOnFailure, func() {
	BeforeAll(func() {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		Expect(err).NotTo(HaveOccurred())
		deadEndpoint = l.Addr().String()
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				deadDials.Add(1)
				_ = c.Close()
			}
		}()
		DeferCleanup(l.Close)

		gc := connection(badInputGateway, "openshell-client-tls")
		Expect(k8s.Create(ctx, gc)).To(Succeed())
		Eventually(condition(gc, func() []metav1.Condition { return gc.Status.Conditions }, v1alpha1.ConditionReady), timeout, interval).
			Should(haveStatusReason(metav1.ConditionTrue, v1alpha1.ReasonReady))
		DeferCleanup(func() { Expect(client.IgnoreNotFound(k8s.Delete(ctx, gc))).To(Succeed()) })
	})

	DescribeTable("reports each at the resource, with the gateway left alone where it should be",
		func(build func(ns string) badSubject, reason string, stalled bool, message string, where judge) {
			ns := newNamespace()
			dialsBefore := deadDials.Load()
			s := build(ns)

			Eventually(condition(s.obj, s.conds, v1alpha1.ConditionReady), timeout, interval).
				Should(haveStatusReason(metav1.ConditionFalse, reason))
			ready := meta.FindStatusCondition(s.conds(), v1alpha1.ConditionReady)
			Expect(ready.Message).To(ContainSubstring(message))
			if s.secret != "" {
				Expect(ready.Message).NotTo(ContainSubstring(s.secret))
			}
			Expect(ready.Message).NotTo(ContainSubstring("PRIVATE KEY"))
			Expect(meta.IsStatusConditionTrue(s.conds(), v1alpha1.ConditionStalled)).To(Equal(stalled), "Stalled")
			Expect(meta.IsStatusConditionTrue(s.conds(), v1alpha1.ConditionReconciling)).To(Equal(!stalled), "Reconciling")

			switch where {
			case byOperator:
				// Also across the requeues that follow (a dependency is retried every second).
				Consistently(func(g Gomega) {
					for _, c := range s.calls {
						g.Expect(c.count()).To(BeZero(), "gateway calls naming %s: %v", c.name, sim.CallsFor(c.name))
					}
					if s.dialing {
						g.Expect(deadDials.Load()-dialsBefore).To(BeZero(), "connections to the endpoint")
					}
				}, time.Second, 100*time.Millisecond).Should(Succeed())
				Expect(len(s.calls) > 0 || s.dialing).To(BeTrue(), "a row names the calls it rules out")
			case byGateway:
				for _, c := range s.calls {
					Expect(c.count()).To(BeNumerically(">", 0), "the gateway judged %s", c.name)
				}
			case byDialing:
				Expect(deadDials.Load() - dialsBefore).To(BeNumerically(">", 0))
			}

			for _, name := range s.absent {
				_, err := gw.Sandboxes.Get(ctx, name)
				Expect(gateway.IsNotFound(err)).To(BeTrue(), "no gateway sandbox %s: %v", name, err)
				_, ok := sim.ProviderCredentials(name)
				Expect(ok).To(BeFalse(), "no gateway provider %s", name)
			}

			// A refused resource can always be deleted.
			for i := len(s.objs) - 1; i >= 0; i-- {
				Expect(client.IgnoreNotFound(k8s.Delete(ctx, s.objs[i]))).To(Succeed())
			}
			for _, o := range s.objs {
				Eventually(func() bool { return apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKeyFromObject(o), o)) }, timeout, interval).
					Should(BeTrue(), "%T %s is deleted", o, o.GetName())
			}
		},

		// Provider: its credentials Secret.
		Entry("Provider whose Secret does not exist", providerRow(nil),
			v1alpha1.ReasonSecretNotFound, true, "/creds not found", byOperator),
		Entry("Provider whose Secret lacks the selected key", providerRow(map[string][]byte{"OTHER": []byte(leakedSecret)}, "OPENAI_API_KEY"),
			v1alpha1.ReasonSecretKeyMissing, true, `has no key "OPENAI_API_KEY"`, byOperator),
		Entry("Provider whose Secret has no data", providerRow(map[string][]byte{}),
			v1alpha1.ReasonSecretKeyMissing, true, "has no keys", byOperator),
		Entry("Provider whose Secret key is no environment variable name", providerRow(map[string][]byte{"openai-api-key": []byte(leakedSecret)}),
			v1alpha1.ReasonInvalidSpec, true, `key "openai-api-key" is not an environment variable name`, byOperator),
		Entry("Provider whose credential is not UTF-8", providerRow(map[string][]byte{"OPENAI_API_KEY": []byte(leakedSecret + "\xff\xfe")}),
			v1alpha1.ReasonInvalidSpec, true, `key "OPENAI_API_KEY" is not valid UTF-8`, byOperator),
		Entry("Provider whose credential is empty", providerRow(map[string][]byte{"OPENAI_API_KEY": {}}),
			v1alpha1.ReasonInvalidSpec, true, `key "OPENAI_API_KEY" is empty`, byOperator),
		Entry("Provider whose credential ends in a newline", providerRow(map[string][]byte{"OPENAI_API_KEY": []byte(leakedSecret + "\n")}),
			v1alpha1.ReasonInvalidSpec, true, `key "OPENAI_API_KEY" holds a line break`, byOperator),
		Entry("Provider whose credential holds a NUL byte", providerRow(map[string][]byte{"OPENAI_API_KEY": []byte(leakedSecret + "\x00")}),
			v1alpha1.ReasonInvalidSpec, true, `key "OPENAI_API_KEY" holds a NUL byte`, byOperator),
		Entry("Provider whose credential is larger than the gateway takes", providerRow(map[string][]byte{"CA_BUNDLE": []byte(leakedSecret + strings.Repeat("x", 9000-len(leakedSecret)))}),
			v1alpha1.ReasonInvalidSpec, true, `key "CA_BUNDLE" is 9000 bytes; the gateway takes at most 8192`, byOperator),
		Entry("Provider whose Secret has more keys than the gateway takes", providerRow(manyCredentials(33)),
			v1alpha1.ReasonInvalidSpec, true, "has 33 keys; the gateway takes at most 32", byOperator),
		Entry("Provider on a GatewayConnection that does not exist", func(ns string) badSubject {
			p := provider(ns, "p", "creds")
			p.Spec.GatewayRef.Name = "nowhere"
			objs := create(secretBytes(ns, "creds", map[string][]byte{"OPENAI_API_KEY": []byte(leakedSecret)}), p)
			return badSubject{obj: p, conds: func() []metav1.Condition { return p.Status.Conditions }, objs: objs,
				calls: []gatewayCall{{name: controller.GatewayName(ns, "p")}}, secret: leakedSecret}
		}, v1alpha1.ReasonDependencyNotReady, false, `GatewayConnection "nowhere"`, byOperator),

		// Sandbox: what it references.
		Entry("Sandbox attaching a Provider that does not exist", func(ns string) badSubject {
			return sandboxRow(ns, func(sb *v1alpha1.Sandbox) { sb.Spec.Providers = []string{"absent"} })
		}, v1alpha1.ReasonDependencyNotReady, false, "providers not ready on the gateway: absent", byOperator),
		Entry("Sandbox attaching a Provider whose Secret is missing", func(ns string) badSubject {
			s := sandboxRow(ns, func(sb *v1alpha1.Sandbox) { sb.Spec.Providers = []string{"p"} }, provider(ns, "p", "creds"))
			s.calls = append(s.calls, gatewayCall{name: controller.GatewayName(ns, "p")})
			return s
		}, v1alpha1.ReasonDependencyNotReady, false, "providers not ready on the gateway: p", byOperator),
		Entry("Sandbox referencing a SandboxPolicy that does not exist", func(ns string) badSubject {
			return sandboxRow(ns, func(sb *v1alpha1.Sandbox) { sb.Spec.PolicyRef = &v1alpha1.LocalObjectReference{Name: "absent"} })
		}, v1alpha1.ReasonDependencyNotReady, false, `SandboxPolicy "absent" not found`, byOperator),
		Entry("Sandbox on a GatewayConnection that does not exist", func(ns string) badSubject {
			return sandboxRow(ns, func(sb *v1alpha1.Sandbox) { sb.Spec.GatewayRef.Name = "nowhere" })
		}, v1alpha1.ReasonDependencyNotReady, false, `GatewayConnection "nowhere"`, byOperator),
		Entry("Sandbox whose two Providers inject the same variable", func(ns string) badSubject {
			objs := create(
				secretBytes(ns, "a", map[string][]byte{"OPENAI_API_KEY": []byte(leakedSecret)}), provider(ns, "first", "a"),
				secretBytes(ns, "b", map[string][]byte{"OPENAI_API_KEY": []byte(leakedSecret)}), provider(ns, "second", "b"))
			s := sandboxRow(ns, func(sb *v1alpha1.Sandbox) { sb.Spec.Providers = []string{"first", "second"} })
			s.objs = append(objs, s.objs...)
			s.calls[0].method = "CreateSandbox"
			s.secret = leakedSecret
			return s
		}, v1alpha1.ReasonGatewayRejected, false, "credential env key 'OPENAI_API_KEY' is provided by both provider", byGateway),

		// InferenceRoute: its Provider.
		Entry("InferenceRoute to a Provider that does not exist", func(ns string) badSubject {
			return routeRow(ns, "absent")
		}, v1alpha1.ReasonDependencyNotReady, false, `Provider "absent" not found`, byOperator),
		Entry("InferenceRoute to a Provider of a type the gateway cannot route", func(ns string) badSubject {
			p := readyProvider(ns, "gh", "github")
			s := routeRow(ns, "gh")
			s.objs = append([]client.Object{p}, s.objs...)
			return s
		}, v1alpha1.ReasonUnsupportedProvider, true, `Provider "gh" has type "github"`, byOperator),
		Entry("InferenceRoute to a Provider that is not on the gateway", func(ns string) badSubject {
			p := provider(ns, "p", "creds")
			p.Spec.GatewayRef.Name = badInputGateway
			return routeRow(ns, "p", p)
		}, v1alpha1.ReasonDependencyNotReady, false, `Provider "p" is not Ready for its current generation`, byOperator),
		Entry("InferenceRoute to a Provider on another GatewayConnection", func(ns string) badSubject {
			return routeRow(ns, "p", provider(ns, "p", "creds"))
		}, v1alpha1.ReasonDependencyNotReady, false, `Provider "p" is on another GatewayConnection`, byOperator),

		// GatewayConnection: its TLS and token Secrets. None of these may even dial.
		Entry("GatewayConnection whose TLS Secret does not exist", connectionRow(nil, nil),
			v1alpha1.ReasonSecretNotFound, true, "not found", byOperator),
		Entry("GatewayConnection whose TLS Secret names its keys like files", connectionRow(func() map[string][]byte {
			return map[string][]byte{"ca.pem": certs.CACert, "cert.pem": certs.ClientCert, "key.pem": certs.ClientKey}
		}, nil),
			v1alpha1.ReasonSecretKeyMissing, true, `has no key "ca.crt" (needs ca.crt, tls.crt and tls.key)`, byOperator),
		Entry("GatewayConnection whose TLS Secret lacks tls.key", connectionRow(tlsData(caPEM, certPEM, nil), nil),
			v1alpha1.ReasonSecretKeyMissing, true, `has no key "tls.key"`, byOperator),
		Entry("GatewayConnection whose tls.crt is not PEM", connectionRow(tlsData(caPEM, literal("not a certificate"), keyPEM), nil),
			v1alpha1.ReasonCertificateInvalid, true, "key tls.crt: not a PEM certificate", byOperator),
		Entry("GatewayConnection whose ca.crt is DER, not PEM", connectionRow(tlsData(derCA, certPEM, keyPEM), nil),
			v1alpha1.ReasonCertificateInvalid, true, "key ca.crt: not a PEM certificate", byOperator),
		Entry("GatewayConnection whose tls.key is garbage", connectionRow(tlsData(caPEM, certPEM, literal(garbageKey)), nil),
			v1alpha1.ReasonCertificateInvalid, true, "client certificate/key pair is invalid", byOperator),
		Entry("GatewayConnection whose tls.key belongs to another certificate", connectionRow(tlsData(caPEM, certPEM, otherClientKey), nil),
			v1alpha1.ReasonCertificateInvalid, true, "private key does not match public key", byOperator),
		Entry("GatewayConnection whose tls.crt and tls.key are swapped", connectionRow(tlsData(caPEM, keyPEM, certPEM), nil),
			v1alpha1.ReasonCertificateInvalid, true, "key tls.crt: not a PEM certificate", byOperator),
		Entry("GatewayConnection whose client certificate expired", connectionRow(tlsData(caPEM, expiredCert, keyPEM), nil),
			v1alpha1.ReasonCertificateExpired, true, `(CN "expired-bad-input") expired at`, byOperator),
		Entry("GatewayConnection whose token Secret does not exist", connectionRow(tlsData(caPEM, certPEM, keyPEM), tokenSecret(nil)),
			v1alpha1.ReasonSecretNotFound, true, "(bearer token) not found", byOperator),
		Entry("GatewayConnection whose token Secret lacks the key", connectionRow(tlsData(caPEM, certPEM, keyPEM), tokenSecret(map[string][]byte{"jwt": []byte(garbageKey)})),
			v1alpha1.ReasonSecretKeyMissing, true, `has no key "token" (bearer token)`, byOperator),
		Entry("GatewayConnection whose token ends in a newline", connectionRow(tlsData(caPEM, certPEM, keyPEM), tokenSecret(map[string][]byte{"token": []byte(garbageKey + "\n")})),
			v1alpha1.ReasonInvalidSpec, true, `key "token" is not a usable bearer token`, byOperator),
		Entry("GatewayConnection whose endpoint is no gateway", connectionRow(tlsData(caPEM, certPEM, keyPEM), nil),
			v1alpha1.ReasonGatewayUnavailable, false, "is unreachable", byDialing),
	)
})
