package main

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
	"github.com/openshell-operator/openshell-operator/internal/devenv"
)

// benchEnv is one fresh environment: apiserver+etcd, simulator, manager in one mode, a Ready
// GatewayConnection "default" and the given namespaces.
type benchEnv struct {
	env       *devenv.Env
	c         client.WithWatch
	pprofAddr string
	work      string
}

// client returns a client of the bench's on a connection of its own: client-go shares one
// HTTP/2 connection between clients of the same TLS config, and a watch of a burst's events
// on it delays every other call and watch event on it, so each tenant (each namespace's
// owner) and each floor gets its own, as separate users would have.
func (b *benchEnv) client() (client.WithWatch, error) {
	cfg := ownConnection(b.env.Config)
	cfg.QPS, cfg.Burst = 500, 1000
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = v1alpha1.AddToScheme(scheme)
	return client.NewWithWatch(cfg, client.Options{Scheme: scheme})
}

// ownConnection copies cfg so that clients built from it do not share client-go's cached
// transport (a config with a Proxy function is never cached).
func ownConnection(cfg *rest.Config) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.Proxy = func(*http.Request) (*url.URL, error) { return nil, nil }
	return c
}

func startBench(ctx context.Context, root string, bins devenv.Binaries, assets, mode string, extra []string, delay time.Duration, namespaces ...string) (_ *benchEnv, err error) {
	b := &benchEnv{}
	if b.work, err = os.MkdirTemp("", "openshell-bench-"); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			b.stop()
		}
	}()
	if b.pprofAddr, err = freeAddr(); err != nil {
		return nil, err
	}
	b.env, err = devenv.Start(ctx, devenv.Options{
		Root: root, ManagerBin: bins.Manager, SimulatorBin: bins.Simulator, AssetsDir: assets, WorkDir: b.work,
		ManagerArgs: append([]string{"--observation-mode", mode, "--zap-log-level", cmp.Or(os.Getenv("BENCH_LOG_LEVEL"), "info"),
			"--pprof-bind-address", b.pprofAddr}, extra...),
		SimulatorArgs: []string{"--provisioning-delay", delay.String(), "--policy-poll-interval", "1s"},
	})
	if err != nil {
		return nil, err
	}
	if b.c, err = b.client(); err != nil {
		return nil, err
	}
	gc := &v1alpha1.GatewayConnection{ObjectMeta: metav1.ObjectMeta{Name: "default"}, Spec: v1alpha1.GatewayConnectionSpec{
		Endpoint: b.env.GatewayAddr,
		TLS:      v1alpha1.GatewayTLS{SecretRef: v1alpha1.NamespacedObjectReference{Namespace: "openshell-system", Name: "openshell-client-tls"}, ServerName: "localhost"},
	}}
	if err := b.c.Create(ctx, gc); err != nil {
		return nil, err
	}
	if err := waitFor(ctx, time.Minute, func() (bool, error) {
		if err := b.c.Get(ctx, client.ObjectKeyFromObject(gc), gc); err != nil {
			return false, err
		}
		return meta.IsStatusConditionTrue(gc.Status.Conditions, v1alpha1.ConditionReady), nil
	}); err != nil {
		return nil, fmt.Errorf("gateway connection not Ready: %w", err)
	}
	for _, ns := range namespaces {
		if err := b.c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// stop tears the environment down and removes its work directory unless BENCH_KEEP is set.
func (b *benchEnv) stop() {
	if b.env != nil {
		b.env.Stop()
	}
	if os.Getenv("BENCH_KEEP") != "" {
		fmt.Fprintf(os.Stderr, "keeping %s (manager.log, gatewaysim.log)\n", b.work)
		return
	}
	_ = os.RemoveAll(b.work)
}
