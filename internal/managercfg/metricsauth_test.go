package managercfg

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/go-logr/logr"
	"k8s.io/client-go/rest"

	"github.com/openshell-operator/openshell-operator/internal/devenv"
)

// serveFilter builds the metrics filter for an API server at cfg and returns how it answers
// a GET /metrics with the Authorization header auth ("" for none).
func serveFilter(t *testing.T, cfg *rest.Config) func(auth string) int {
	t.Helper()
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	filter, err := metricsAuthFilter(cfg, hc)
	if err != nil {
		t.Fatal(err)
	}
	h, err := filter(logr.Discard(), http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("metrics"))
	}))
	if err != nil {
		t.Fatal(err)
	}
	return func(auth string) int {
		req := httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/metrics", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
}

// With no API server to ask, a token cannot be reviewed (500); a request without a bearer
// token needs no review and is 401. The answers from a real API server (a rejected token,
// one not allowed, one allowed) are tested in metricsauth_envtest_test.go.
func TestMetricsAuthFilterWithoutAPIServer(t *testing.T) {
	addr, err := devenv.FreeLoopbackAddr() // nothing listens there
	if err != nil {
		t.Fatal(err)
	}
	scrape := serveFilter(t, &rest.Config{Host: "https://" + addr, TLSClientConfig: rest.TLSClientConfig{Insecure: true}})
	for _, tc := range []struct {
		name, auth string
		want       int
	}{
		{"no token", "", http.StatusUnauthorized},
		{"not a bearer token", "Basic dXNlcjpwYXNz", http.StatusUnauthorized},
		{"a token the API server cannot review", "Bearer some-token", http.StatusInternalServerError},
	} {
		if got := scrape(tc.auth); got != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, got, tc.want)
		}
	}
}
