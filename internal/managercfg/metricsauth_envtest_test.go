//go:build envtest

package managercfg

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/openshell-operator/openshell-operator/internal/devenv"
)

// The secure metrics endpoint as MetricsOptions builds it, served as the operator's
// ServiceAccount (config/rbac's roles) against a real API server: the TokenReview and
// SubjectAccessReview answers decide 401, 403 and 200.
func TestSecureMetricsEndpoint(t *testing.T) {
	const ns = "openshell-system"
	env := &envtest.Environment{}
	adminCfg, err := env.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Error(err)
		}
	})
	ctx := t.Context()
	operatorCfg, err := devenv.InstallOperatorRBAC(ctx, adminCfg, filepath.Join("..", ".."), ns)
	if err != nil {
		t.Fatal(err)
	}
	url := serveMetrics(t, operatorCfg)

	unbound, err := devenv.ServiceAccountToken(ctx, adminCfg, ns, "unbound-scraper")
	if err != nil {
		t.Fatal(err)
	}
	reader := bindMetricsReader(t, adminCfg, ns, "prometheus")
	for _, tc := range []struct {
		name, token string
		want        int
		body        string
	}{
		{name: "no token", want: http.StatusUnauthorized, body: "Unauthorized"},
		{name: "a token the TokenReview rejects", token: "not-a-token", want: http.StatusUnauthorized, body: "Unauthorized"},
		{name: "a ServiceAccount without metrics-reader", token: unbound, want: http.StatusForbidden,
			body: "Authorization denied for user system:serviceaccount:" + ns + ":unbound-scraper"},
		{name: "a ServiceAccount bound to metrics-reader", token: reader, want: http.StatusOK, body: "# TYPE "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := scrape(t, url, tc.token)
			if code != tc.want || !strings.Contains(body, tc.body) {
				t.Errorf("status %d, body %q; want %d with %q", code, firstLine(body), tc.want, tc.body)
			}
		})
	}

	// A filter whose own identity may not create TokenReviews cannot review a token: that,
	// unlike a rejected token, is 500.
	unboundCfg := rest.AnonymousClientConfig(adminCfg)
	unboundCfg.BearerToken = unbound
	if got := serveFilter(t, unboundCfg)("Bearer " + reader); got != http.StatusInternalServerError {
		t.Errorf("filter without TokenReview permission: status %d, want 500", got)
	}
}

// serveMetrics starts the metrics server of MetricsOptions(secure) as cfg's identity and
// returns its URL once it answers.
func serveMetrics(t *testing.T, cfg *rest.Config) string {
	t.Helper()
	addr, err := devenv.FreeLoopbackAddr()
	if err != nil {
		t.Fatal(err)
	}
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := metricsserver.NewServer(MetricsOptions(addr, true, ""), cfg, hc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	url := "https://" + addr + "/metrics"
	err = wait.PollUntilContextTimeout(t.Context(), 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return false, err
		}
		resp, err := insecureClient().Do(req)
		if err != nil {
			return false, nil //nolint:nilerr // not listening yet
		}
		_ = resp.Body.Close()
		return true, nil
	})
	if err != nil {
		t.Fatalf("metrics server at %s: %v", url, err)
	}
	return url
}

// bindMetricsReader binds config/rbac's metrics-reader ClusterRole to the ServiceAccount
// ns/name, waits until the API server's authorizer has the binding in effect (it learns of
// bindings through an informer) and returns a token of the ServiceAccount.
func bindMetricsReader(t *testing.T, adminCfg *rest.Config, ns, name string) string {
	t.Helper()
	ctx := t.Context()
	token, err := devenv.ServiceAccountToken(ctx, adminCfg, ns, name)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(adminCfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name + "-metrics-reader"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "metrics-reader"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: name}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	user := "system:serviceaccount:" + ns + ":" + name
	err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		sar, err := cs.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{
			Spec: authorizationv1.SubjectAccessReviewSpec{User: user,
				NonResourceAttributes: &authorizationv1.NonResourceAttributes{Path: "/metrics", Verb: "get"}},
		}, metav1.CreateOptions{})
		if err != nil {
			return false, err
		}
		return sar.Status.Allowed, nil
	})
	if err != nil {
		t.Fatalf("metrics-reader binding of %s not in effect: %v", user, err)
	}
	return token
}

// scrape GETs url with an optional bearer token. The endpoint's certificate is self-signed
// (no cert dir), so it is not verified: what is under test is who may read.
func scrape(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := insecureClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func insecureClient() *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // self-signed test endpoint
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
