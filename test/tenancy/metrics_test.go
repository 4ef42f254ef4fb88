package tenancy

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/openshell-operator/openshell-operator/internal/devenv"
)

// scrape GETs url with an optional bearer token and returns the status code and body. The
// endpoint's certificate is self-signed (no --metrics-cert-dir), so it is not verified: what
// is under test is who may read, not the serving certificate.
func scrape(ctx context.Context, url, token string) (int, string) {
	GinkgoHelper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	Expect(err).NotTo(HaveOccurred())
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // self-signed test endpoint
	resp, err := hc.Do(req)
	Expect(err).NotTo(HaveOccurred())
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	Expect(err).NotTo(HaveOccurred())
	return resp.StatusCode, string(b)
}

var _ = Describe("secure metrics", func() {
	var url string
	BeforeEach(func() { url = metricsURL })

	It("refuses a scrape without a token", func(ctx SpecContext) {
		code, body := scrape(ctx, url, "")
		Expect(code).To(Equal(http.StatusUnauthorized))
		Expect(body).NotTo(ContainSubstring("controller_runtime"))
	})

	It("refuses a token the API server does not accept", func(ctx SpecContext) {
		code, body := scrape(ctx, url, "not-a-token")
		Expect(code).To(Equal(http.StatusUnauthorized))
		Expect(body).NotTo(ContainSubstring("controller_runtime"))
	})

	It("refuses a ServiceAccount without the metrics-reader role", func(ctx SpecContext) {
		token, err := devenv.ServiceAccountToken(ctx, adminCfg, operatorNS, "unbound-scraper")
		Expect(err).NotTo(HaveOccurred())
		code, body := scrape(ctx, url, token)
		Expect(code).To(Equal(http.StatusForbidden))
		Expect(body).To(ContainSubstring("Authorization denied for user system:serviceaccount:" + operatorNS + ":unbound-scraper"))
	})

	It("serves a ServiceAccount bound to config/rbac's metrics-reader ClusterRole", func(ctx SpecContext) {
		Expect(admin.Create(ctx, &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "prometheus-metrics-reader"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "metrics-reader"},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: operatorNS, Name: "prometheus"}},
		})).To(Succeed())
		token, err := devenv.ServiceAccountToken(ctx, adminCfg, operatorNS, "prometheus")
		Expect(err).NotTo(HaveOccurred())
		code, body := scrape(ctx, url, token)
		Expect(code).To(Equal(http.StatusOK))
		Expect(body).To(ContainSubstring("# TYPE controller_runtime_"))
	})
})
