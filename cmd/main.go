/*
Copyright 2026 The openshell-operator Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

// Command manager runs the openshell-operator controllers.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
	"github.com/openshell-operator/openshell-operator/internal/controller"
	"github.com/openshell-operator/openshell-operator/internal/managercfg"
	"github.com/openshell-operator/openshell-operator/internal/version"
)

// The manager creates TokenReviews and SubjectAccessReviews to authenticate and authorize
// scrapes of its metrics endpoint under --metrics-secure (managercfg.MetricsOptions).
// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create

var scheme = runtime.NewScheme()

func init() {
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(v1alpha1.AddToScheme(scheme))
}

func main() {
	var (
		metricsAddr          string
		probeAddr            string
		enableLeaderElection bool
		secureMetrics        bool
		ctrlOpts             controller.Options
		qps                  float64
		burst                int
		pprofAddr            string
		metricsCertDir       string
		leaderElectionID     string
		watchNamespaces      string
		clusterResourceNS    string
		gatewaySelector      string
		electionNamespace    string
		leaseDuration        time.Duration
		renewDeadline        time.Duration
		retryPeriod          time.Duration
	)
	flag.StringVar(&metricsAddr, "metrics-bind-address", ":8080",
		"The address the metrics endpoint binds to. Use 0 to disable it.")
	flag.StringVar(&probeAddr, "health-probe-bind-address", ":8081", "The address the probe endpoint binds to.")
	flag.BoolVar(&enableLeaderElection, "leader-elect", false,
		"Enable leader election so that only one replica reconciles at a time.")
	// In a pod the Lease lives in the service account's namespace; out of cluster (the soak and
	// e2e run real manager processes) it must be named, and faster timings make failover
	// testable. The defaults are controller-runtime's (15s / 10s / 2s).
	flag.StringVar(&electionNamespace, "leader-election-namespace", "",
		"Namespace of the leader election Lease (default: the pod's namespace; required out of cluster).")
	flag.DurationVar(&leaseDuration, "leader-election-lease-duration", 15*time.Second,
		"How long a non-leader waits before taking over an unrenewed Lease.")
	flag.DurationVar(&renewDeadline, "leader-election-renew-deadline", 10*time.Second,
		"How long the leader retries renewing before it gives up leadership (and exits).")
	flag.DurationVar(&retryPeriod, "leader-election-retry-period", 2*time.Second,
		"How often leader election actions are retried.")
	flag.BoolVar(&secureMetrics, "metrics-secure", false,
		"Serve metrics over HTTPS; every scrape needs a bearer token the API server authenticates (TokenReview) and authorizes for GET /metrics (SubjectAccessReview; bind the metrics-reader ClusterRole).")
	flag.StringVar(&metricsCertDir, "metrics-cert-dir", "",
		"Directory with tls.crt and tls.key for the secure metrics endpoint; empty or missing files: a self-signed certificate.")
	flag.StringVar(&leaderElectionID, "leader-election-id", "openshell-operator.openshell.dev",
		"Name of the leader election Lease; must differ between instances in one namespace.")
	flag.StringVar(&watchNamespaces, "watch-namespaces", "",
		"Comma-separated namespaces whose Sandboxes, Providers, SandboxPolicies, InferenceRoutes and Secrets this instance caches and reconciles; empty: all namespaces. GatewayConnections are cluster-scoped and not limited by it.")
	flag.StringVar(&clusterResourceNS, "cluster-resource-namespace", "",
		"Comma-separated namespaces where GatewayConnections' TLS and token Secrets and global policies must live; empty: $POD_NAMESPACE, else "+managercfg.DefaultClusterResourceNamespace+".")
	flag.StringVar(&gatewaySelector, "gateway-connection-selector", "",
		"Label selector of the GatewayConnections this instance serves (for example openshell.dev/operator-instance=team-a); empty: all. Instances must select disjoint connections.")
	flag.StringVar(&ctrlOpts.ObservationMode, "observation-mode", controller.ObservationWatch,
		"How gateway sandboxes are observed: watch (one paginated list per gateway and minute plus WatchSandbox streams for transitional sandboxes) or poll (GetSandbox per sandbox every 10 s while settling, 300 s when steady).")
	// Defaults chosen with `make bench` (docs/performance.md): 8 workers and 200/400 keep
	// Ready within a second of the gateway for 100 sandboxes applied at once; steady state
	// makes no writes, so the budget is only spent when there is work.
	flag.DurationVar(&ctrlOpts.Observer.DraftResync, "policy-draft-resync", 0,
		"How often every managed sandbox's draft policy is read for PolicyProposals (0: with each one-minute list).")
	flag.IntVar(&ctrlOpts.Observer.DraftReadsPerMinute, "policy-draft-reads-per-minute", controller.DefaultDraftReadsPerMinute,
		"Budget of those reads (GetDraftPolicy) per gateway and minute: a fleet larger than this is swept less often than --policy-draft-resync, and in poll mode a gateway with more than 5 times this many sandboxes has each one's draft re-read less often than every 300 s (negative: no budget).")
	flag.IntVar(&ctrlOpts.MaxConcurrentReconciles, "max-concurrent-reconciles", controller.DefaultMaxConcurrentReconciles, "Concurrent Sandbox reconciles.")
	flag.Float64Var(&qps, "kube-api-qps", managercfg.DefaultKubeAPIQPS, "Kubernetes API budget: finalizer and status writes share it, handed out between namespaces in turn; events have a bucket of their own at this rate.")
	flag.IntVar(&burst, "kube-api-burst", managercfg.DefaultKubeAPIBurst, "Kubernetes client burst.")
	flag.StringVar(&pprofAddr, "pprof-bind-address", "",
		"Serve net/http/pprof on this address (for example 127.0.0.1:6060); empty disables it.")
	printVersion := flag.Bool("version", false, "Print the version, commit and build date, then exit.")
	opts := zap.Options{}
	opts.BindFlags(flag.CommandLine)
	flag.Parse()
	if *printVersion {
		fmt.Println(version.String("manager"))
		return
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&opts)))
	setupLog := ctrl.Log.WithName("setup")

	scope, err := parseScope(watchNamespaces, clusterResourceNS, gatewaySelector)
	if err != nil {
		setupLog.Error(err, "invalid flags")
		os.Exit(2)
	}
	leaseID, err := managercfg.LeaderElectionID(leaderElectionID)
	if err != nil {
		setupLog.Error(err, "invalid flags")
		os.Exit(2)
	}
	ctrlOpts.ClusterResourceNamespaces = scope.ClusterResourceNamespaces
	setupLog.Info("scope", "watchNamespaces", scope.WatchNamespaces,
		"clusterResourceNamespaces", scope.ClusterResourceNamespaces, "gatewayConnectionSelector", scope.GatewayConnectionSelector.String())

	restCfg := ctrl.GetConfigOrDie()
	restCfg.QPS, restCfg.Burst = float32(qps), burst
	mgr, err := ctrl.NewManager(restCfg, ctrl.Options{
		Scheme:                  scheme,
		Cache:                   managercfg.CacheOptions(scope),
		Client:                  managercfg.ClientOptions(),
		NewClient:               managercfg.NewClient(float32(qps), burst),
		Metrics:                 managercfg.MetricsOptions(metricsAddr, secureMetrics, metricsCertDir),
		HealthProbeBindAddress:  probeAddr,
		PprofBindAddress:        pprofAddr,
		LeaderElection:          enableLeaderElection,
		LeaderElectionID:        leaseID,
		LeaderElectionNamespace: electionNamespace,
		LeaseDuration:           &leaseDuration,
		RenewDeadline:           &renewDeadline,
		RetryPeriod:             &retryPeriod,
	})
	if err != nil {
		setupLog.Error(err, "unable to create manager")
		os.Exit(1)
	}
	if err := controller.SetupAll(mgr, ctrlOpts); err != nil {
		setupLog.Error(err, "unable to set up controllers")
		os.Exit(1)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		setupLog.Error(err, "unable to set up health check")
		os.Exit(1)
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		setupLog.Error(err, "unable to set up ready check")
		os.Exit(1)
	}

	setupLog.Info("starting manager")
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		setupLog.Error(err, "manager exited with an error")
		os.Exit(1)
	}
}

// parseScope validates the scoping flags into a managercfg.Scope.
func parseScope(watchNamespaces, clusterResourceNamespaces, gatewaySelector string) (managercfg.Scope, error) {
	watch := managercfg.SplitList(watchNamespaces)
	if err := managercfg.ValidateNamespaces("watch-namespaces", watch); err != nil {
		return managercfg.Scope{}, err
	}
	crn, err := managercfg.ClusterResourceNamespaces(clusterResourceNamespaces, strings.TrimSpace(os.Getenv("POD_NAMESPACE")))
	if err != nil {
		return managercfg.Scope{}, err
	}
	sel, err := managercfg.ParseGatewayConnectionSelector(gatewaySelector)
	if err != nil {
		return managercfg.Scope{}, err
	}
	return managercfg.Scope{WatchNamespaces: watch, ClusterResourceNamespaces: crn, GatewayConnectionSelector: sel}, nil
}
