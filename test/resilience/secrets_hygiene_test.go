package resilience

import (
	"encoding/json"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
	"github.com/openshell-operator/openshell-operator/internal/controller"
)

var _ = Describe("Secrets hygiene", func() {
	It("never writes a credential or key to a log line, an event or a status field", func() {
		op := startOperator(nil)
		defer op.stop()
		f := newGateway(true)
		ns := newNamespace()
		first, rotated := "sk-hygiene-first-7f3a9c", "sk-hygiene-rotated-51be02"
		Expect(k8s.Create(ctx, credentials(ns, "creds", first))).To(Succeed())
		p := provider(ns, "openai", "creds", f.name)
		Expect(k8s.Create(ctx, p)).To(Succeed())
		// A provider asking for a key the Secret does not have: the message names the key only.
		bad := provider(ns, "missing-key", "creds", f.name)
		bad.Spec.CredentialsSecretRef.Keys = []string{"ANTHROPIC_API_KEY"}
		Expect(k8s.Create(ctx, bad)).To(Succeed())
		sb := sandbox(ns, "uses-creds", f.name)
		sb.Spec.Providers = []string{"openai"}
		Expect(k8s.Create(ctx, sb)).To(Succeed())
		Eventually(sandboxReady(sb), timeout, interval).Should(haveReason(metav1.ConditionTrue, v1alpha1.ReasonReady))

		secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "creds"}}
		Expect(edit(secret, func() { secret.Data["OPENAI_API_KEY"] = []byte(rotated) })).To(Succeed())
		Eventually(func() map[string]string {
			c, _ := f.sim.ProviderCredentials(controller.GatewayName(ns, "openai"))
			return c
		}, timeout, interval).Should(HaveKeyWithValue("OPENAI_API_KEY", rotated))

		// A rotated client certificate, and a broken one, on the connection.
		cert, key, err := f.certs.IssueClient("hygiene-client", time.Now().Add(48*time.Hour))
		Expect(err).NotTo(HaveOccurred())
		tls := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: systemNS, Name: f.name + "-tls"}}
		Expect(edit(tls, func() { tls.Data["tls.crt"], tls.Data["tls.key"] = cert, key })).To(Succeed())
		gc := &v1alpha1.GatewayConnection{ObjectMeta: metav1.ObjectMeta{Name: f.name}}
		Eventually(connectionReady(gc), timeout, interval).Should(haveReason(metav1.ConditionTrue, v1alpha1.ReasonReady))
		Expect(edit(tls, func() { tls.Data["tls.crt"] = key })).To(Succeed())
		Eventually(connectionReady(gc), timeout, interval).Should(haveReason(metav1.ConditionFalse, v1alpha1.ReasonCertificateInvalid))
		time.Sleep(time.Second) // let the last events and log lines land

		secrets := []string{first, rotated, pemBody(key), pemBody(f.certs.ClientKey)}
		haystacks := map[string]string{"operator logs": logs.String(), "events": eventsJSON(), "status fields": statusesJSON()}
		for where, text := range haystacks {
			Expect(text).NotTo(BeEmpty(), where)
			for _, s := range secrets {
				Expect(strings.Contains(text, s)).To(BeFalse(), "a credential appears in the %s", where)
			}
		}
		// The scenario did produce what was searched: the key name, not its value.
		Expect(haystacks["status fields"]).To(ContainSubstring("ANTHROPIC_API_KEY"))
		Expect(haystacks["operator logs"]).To(ContainSubstring(controller.GatewayName(ns, "openai")))
	})
})

// pemBody is a distinctive line of base64 from the middle of a PEM block.
func pemBody(pemBytes []byte) string {
	lines := strings.Split(strings.TrimSpace(string(pemBytes)), "\n")
	Expect(len(lines)).To(BeNumerically(">=", 3))
	return lines[1][:32]
}

func eventsJSON() string {
	list := &corev1.EventList{}
	Expect(k8s.List(ctx, list)).To(Succeed())
	b, err := json.Marshal(list.Items)
	Expect(err).NotTo(HaveOccurred())
	return string(b)
}

func statusesJSON() string {
	var all []any
	for _, l := range []client.ObjectList{&v1alpha1.SandboxList{}, &v1alpha1.ProviderList{}, &v1alpha1.GatewayConnectionList{},
		&v1alpha1.SandboxPolicyList{}, &v1alpha1.InferenceRouteList{}} {
		Expect(k8s.List(ctx, l)).To(Succeed())
		all = append(all, l)
	}
	b, err := json.Marshal(all)
	Expect(err).NotTo(HaveOccurred())
	return string(b)
}
