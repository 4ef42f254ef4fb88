//go:build e2e

package e2e

import (
	"context"
	"io"
	"net/http"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/openshell-operator/openshell-operator/internal/gateway"
)

func kubectl(args ...string) string {
	GinkgoHelper()
	out, err := env.Kubectl(context.Background(), args...)
	Expect(err).NotTo(HaveOccurred())
	return out
}

func httpGet(url string) (int, string, error) {
	resp, err := http.Get(url) //nolint:noctx // loopback test endpoint
	if err != nil {
		return 0, "", err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

var _ = Describe("samples applied with kubectl", Ordered, func() {
	var gwName string

	It("become Ready", func(ctx SpecContext) {
		Expect(env.ApplySamples(ctx)).To(Succeed())
		waitCtx, cancel := context.WithTimeout(ctx, 3*time.Minute)
		defer cancel()
		Expect(env.WaitSamplesReady(waitCtx)).To(Succeed())
		kubectl("wait", "--for=condition=Ready", "--timeout=60s", "-n", "demo", "provider/openai", "sandbox/agent")
		gwName = strings.TrimSpace(kubectl("get", "-n", "demo", "sandbox/agent", "-o", "jsonpath={.status.gatewayName}"))
		Expect(gwName).NotTo(BeEmpty())
	}, SpecTimeout(5*time.Minute))

	It("exist on the simulator", func(ctx SpecContext) {
		sb, err := gw.Sandboxes.Get(ctx, gwName)
		Expect(err).NotTo(HaveOccurred())
		Expect(sb.GetSpec().GetTemplate().GetImage()).To(Equal("ghcr.io/nvidia/openshell-community/sandboxes/base:latest"))
	}, SpecTimeout(time.Minute))

	It("converge after an image change", func(ctx SpecContext) {
		const image = "ghcr.io/nvidia/openshell-community/sandboxes/base:e2e"
		kubectl("patch", "-n", "demo", "sandbox/agent", "--type=merge", "-p", `{"spec":{"image":"`+image+`"}}`)
		Eventually(func(g Gomega) {
			name := strings.TrimSpace(kubectl("get", "-n", "demo", "sandbox/agent", "-o", "jsonpath={.status.gatewayName}"))
			sb, err := gw.Sandboxes.Get(ctx, name)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(sb.GetSpec().GetTemplate().GetImage()).To(Equal(image))
		}).WithContext(ctx).WithTimeout(2 * time.Minute).WithPolling(time.Second).Should(Succeed())
		kubectl("wait", "--for=condition=Ready", "--timeout=120s", "-n", "demo", "sandbox/agent")
	}, SpecTimeout(5*time.Minute))

	It("serves its own and controller-runtime's metrics, and readiness", func() {
		code, body, err := httpGet("http://" + env.MetricsAddr + "/metrics")
		Expect(err).NotTo(HaveOccurred())
		Expect(code).To(Equal(http.StatusOK))
		Expect(body).To(ContainSubstring("controller_runtime_reconcile_total"))
		// The samples ran: the connection is up, sandboxes are counted by phase, gateway calls
		// and reconcile outcomes were recorded.
		Expect(body).To(ContainSubstring(`openshell_gateway_connection_up{gateway="default"} 1`))
		Expect(body).To(MatchRegexp(`openshell_sandboxes\{gateway="default",phase="Ready"\} [1-9]`))
		Expect(body).To(ContainSubstring(`openshell_gateway_rpc_duration_seconds_count{code="OK",gateway="default",method="CreateSandbox"}`))
		Expect(body).To(ContainSubstring(`openshell_reconcile_outcomes_total{kind="Sandbox",outcome="ready",reason="Ready"}`))
		code, _, err = httpGet("http://" + env.ProbeAddr + "/readyz")
		Expect(err).NotTo(HaveOccurred())
		Expect(code).To(Equal(http.StatusOK))
	})

	It("removes the gateway sandbox on delete", func(ctx SpecContext) {
		name := strings.TrimSpace(kubectl("get", "-n", "demo", "sandbox/agent", "-o", "jsonpath={.status.gatewayName}"))
		kubectl("delete", "-n", "demo", "sandbox/agent", "--wait=true", "--timeout=120s")
		Eventually(func() bool {
			_, err := gw.Sandboxes.Get(ctx, name)
			return gateway.IsNotFound(err)
		}).WithContext(ctx).WithTimeout(2 * time.Minute).WithPolling(time.Second).Should(BeTrue())
	}, SpecTimeout(5*time.Minute))
})
