// Package managercfg turns the manager's command-line settings into controller-runtime
// options: which namespaces the caches hold, which GatewayConnections an instance serves, how
// the metrics endpoint authenticates its callers and which namespaces hold cluster-wide
// references. cmd/main.go parses the flags; the envtest suites build managers from the same
// functions, so what they test is what the binary runs.
package managercfg

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
	"github.com/openshell-operator/openshell-operator/internal/controller"
)

// DefaultClusterResourceNamespace is where cluster-wide references (a GatewayConnection's TLS
// and token Secrets, its global SandboxPolicy) resolve when neither the flag nor POD_NAMESPACE
// says otherwise: the namespace the kustomize overlay and the docs install into.
const DefaultClusterResourceNamespace = controller.DefaultClusterResourceNamespace

// ClientOptions are the manager client's options: Secrets are never read through the cache
// (the controllers read them with the API reader and watch them as metadata only), so a stray
// read cannot start an informer holding every Secret's value.
func ClientOptions() client.Options {
	return client.Options{Cache: &client.CacheOptions{DisableFor: []client.Object{&corev1.Secret{}}}}
}

// DefaultKubeAPIQPS and DefaultKubeAPIBurst are the manager client's write budget by default
// (--kube-api-qps, --kube-api-burst), shared out between namespaces by NewClient.
const (
	DefaultKubeAPIQPS   = 200
	DefaultKubeAPIBurst = 400
)

// NewClient is the manager's NewClient: one API budget of qps and burst for the whole client,
// handed out between the namespaces with waiting calls in turn (controller.NamespaceFairClient).
func NewClient(qps float32, burst int) client.NewClientFunc {
	return controller.NamespaceFairClient(qps, burst)
}

// SplitList splits a comma-separated flag value into trimmed, non-empty, sorted and unique
// items; "" gives nil.
func SplitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" && !slices.Contains(out, part) {
			out = append(out, part)
		}
	}
	slices.Sort(out)
	return out
}

// ValidateNamespaces reports the first item that is not a namespace name (DNS-1123 label).
func ValidateNamespaces(flagName string, namespaces []string) error {
	for _, ns := range namespaces {
		if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
			return fmt.Errorf("--%s: %q is not a namespace name: %s", flagName, ns, strings.Join(errs, "; "))
		}
	}
	return nil
}

// ClusterResourceNamespaces resolves --cluster-resource-namespace: the flag's namespaces when
// set, else the operator's own namespace (podNamespace, from the POD_NAMESPACE environment
// variable the Deployment sets through the downward API), else
// DefaultClusterResourceNamespace.
func ClusterResourceNamespaces(flagValue, podNamespace string) ([]string, error) {
	namespaces := SplitList(flagValue)
	if len(namespaces) == 0 {
		namespaces = SplitList(podNamespace)
	}
	if len(namespaces) == 0 {
		namespaces = []string{DefaultClusterResourceNamespace}
	}
	if err := ValidateNamespaces("cluster-resource-namespace", namespaces); err != nil {
		return nil, err
	}
	return namespaces, nil
}

// Scope is what one manager instance serves.
type Scope struct {
	// WatchNamespaces limits the caches of the namespaced kinds to these namespaces; empty
	// means every namespace.
	WatchNamespaces []string
	// ClusterResourceNamespaces hold the Secrets and SandboxPolicies GatewayConnections name;
	// with WatchNamespaces set they are cached for those two kinds as well.
	ClusterResourceNamespaces []string
	// GatewayConnectionSelector limits the GatewayConnections this instance serves (and so
	// the gateways it calls); nil or empty means all of them.
	GatewayConnectionSelector labels.Selector
}

// ParseGatewayConnectionSelector parses --gateway-connection-selector (label selector syntax,
// for example "openshell.dev/operator-instance=team-a"); "" selects everything.
func ParseGatewayConnectionSelector(s string) (labels.Selector, error) {
	if strings.TrimSpace(s) == "" {
		return labels.Everything(), nil
	}
	sel, err := labels.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("--gateway-connection-selector: %w", err)
	}
	return sel, nil
}

// CacheOptions returns the manager's cache options for the scope. With no namespace list the
// caches are cluster-wide, as before. With one, every namespaced kind is cached only in those
// namespaces (controller-runtime's DefaultNamespaces), except Secrets and SandboxPolicies,
// which are also cached in the cluster resource namespaces where connections' TLS Secrets and
// global policies live. GatewayConnections are cluster-scoped and are cached cluster-wide,
// filtered by the selector, so two instances with disjoint selectors never reconcile the same
// connection (nor write the same status). Every cached object drops its managedFields: the
// operator never reads them, and they are most of a small object's size, which the cache
// would otherwise hold, deep-copy on every read and marshal twice for every status patch.
// (An update without managedFields keeps the stored ones: the API server treats their
// absence as "not specified".)
func CacheOptions(s Scope) cache.Options {
	opts := cache.Options{DefaultTransform: cache.TransformStripManagedFields()}
	if s.GatewayConnectionSelector != nil && !s.GatewayConnectionSelector.Empty() {
		opts.ByObject = map[client.Object]cache.ByObject{
			&v1alpha1.GatewayConnection{}: {Label: s.GatewayConnectionSelector},
		}
	}
	if len(s.WatchNamespaces) == 0 {
		return opts
	}
	opts.DefaultNamespaces = namespaceConfigs(s.WatchNamespaces)
	if opts.ByObject == nil {
		opts.ByObject = map[client.Object]cache.ByObject{}
	}
	withClusterResources := namespaceConfigs(append(slices.Clone(s.WatchNamespaces), s.ClusterResourceNamespaces...))
	opts.ByObject[&corev1.Secret{}] = cache.ByObject{Namespaces: withClusterResources}
	opts.ByObject[&v1alpha1.SandboxPolicy{}] = cache.ByObject{Namespaces: withClusterResources}
	return opts
}

func namespaceConfigs(namespaces []string) map[string]cache.Config {
	out := make(map[string]cache.Config, len(namespaces))
	for _, ns := range namespaces {
		out[ns] = cache.Config{}
	}
	return out
}

// MetricsOptions returns the metrics server options. With secure set the endpoint serves
// HTTPS (the certificate from certDir's tls.crt and tls.key, self-signed when certDir is
// empty or holds none) and every request must carry a bearer token that the API server
// authenticates (TokenReview) and authorizes for GET on the non-resource URL /metrics
// (SubjectAccessReview): a scrape without a token or with one the TokenReview rejects gets
// 401, one not authorized 403, and only a review that could not be made 500
// (metricsAuthFilter).
func MetricsOptions(bindAddress string, secure bool, certDir string) metricsserver.Options {
	opts := metricsserver.Options{BindAddress: bindAddress, SecureServing: secure}
	if !secure {
		return opts
	}
	opts.FilterProvider = metricsAuthFilter
	opts.CertDir = certDir
	return opts
}

// LeaderElectionID is the Lease name of an instance: the flag's value, which must differ per
// instance when several run in one namespace (the chart derives it from the release name).
func LeaderElectionID(id string) (string, error) {
	if errs := validation.IsDNS1123Subdomain(id); len(errs) > 0 {
		return "", fmt.Errorf("--leader-election-id: %q: %s", id, strings.Join(errs, "; "))
	}
	return id, nil
}
