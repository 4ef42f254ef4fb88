// Command gatewaysim serves the in-memory OpenShell gateway simulator over mTLS, for the demo,
// e2e tests and local experiments. See docs/simulator.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/openshell-operator/openshell-operator/internal/gatewaysim"
	"github.com/openshell-operator/openshell-operator/internal/version"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "gatewaysim:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		listen        = flag.String("listen", "127.0.0.1:8443", "gRPC listen address (mTLS)")
		certDir       = flag.String("cert-dir", "", "directory with ca.crt, server.crt, server.key to serve with")
		generateCerts = flag.String("generate-certs", "", "write a fresh CA, server and client certificates into this directory and serve with them")
		hosts         = flag.String("hosts", "localhost,127.0.0.1", "comma-separated server certificate names for --generate-certs")
		adminListen   = flag.String("admin-listen", "127.0.0.1:0", "loopback address of the plain-HTTP fault-injection admin API (empty disables it)")
		tokenFile     = flag.String("bearer-token-file", "", "require this bearer token (file content) on every RPC but Health")
		probe         = flag.String("inference-probe", "loopback", "which inference endpoints SetClusterInference verification connects to: loopback (others are taken as verified without a connection), all, none")
		fakeInference = flag.String("fake-inference-listen", "", "loopback address to serve a fake OpenAI/Anthropic-compatible inference endpoint on (empty disables it)")
		printVersion  = flag.Bool("version", false, "print the version, commit and build date, then exit")
		opts          gatewaysim.Options
	)
	flag.DurationVar(&opts.ProvisioningDelay, "provisioning-delay", 2*time.Second, "time a new sandbox stays PROVISIONING")
	flag.DurationVar(&opts.DeletionDelay, "deletion-delay", time.Second, "time a deleted sandbox stays DELETING")
	flag.DurationVar(&opts.PolicyPollInterval, "policy-poll-interval", time.Second, "simulated supervisor poll interval (policy PENDING -> LOADED)")
	flag.Parse()
	if *printVersion {
		fmt.Println(version.String("gatewaysim"))
		return nil
	}
	var err error
	if opts.InferenceProbe, err = gatewaysim.ParseInferenceProbe(*probe); err != nil {
		return fmt.Errorf("--inference-probe: %w", err)
	}

	var certs *gatewaysim.CertBundle
	switch {
	case *generateCerts != "" && *certDir != "":
		return errors.New("--cert-dir and --generate-certs are exclusive")
	case *generateCerts != "":
		if certs, err = gatewaysim.GenerateCertBundle(strings.Split(*hosts, ",")...); err != nil {
			return err
		}
		if err := certs.WriteDir(*generateCerts); err != nil {
			return err
		}
	case *certDir != "":
		if certs, err = gatewaysim.LoadServerCerts(*certDir); err != nil {
			return err
		}
	default:
		return errors.New("one of --cert-dir or --generate-certs is required: the simulator never serves plaintext")
	}
	if *tokenFile != "" {
		b, err := os.ReadFile(*tokenFile)
		if err != nil {
			return fmt.Errorf("read bearer token: %w", err)
		}
		opts.BearerToken = strings.TrimSpace(string(b))
	}

	sim := gatewaysim.New(opts)
	addr, err := sim.Start(*listen, certs)
	if err != nil {
		return err
	}
	defer sim.Stop()

	adminAddr := "disabled"
	var admin *http.Server
	if *adminListen != "" {
		lis, err := listenLoopback("--admin-listen", *adminListen)
		if err != nil {
			return err
		}
		adminAddr = lis.Addr().String()
		admin = &http.Server{Handler: sim.AdminHandler(), ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = admin.Serve(lis) }()
	}
	inference := ""
	if *fakeInference != "" {
		lis, err := listenLoopback("--fake-inference-listen", *fakeInference)
		if err != nil {
			return err
		}
		inference = " inference=http://" + lis.Addr().String()
		srv := &http.Server{Handler: gatewaysim.FakeInferenceHandler(), ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(lis) }()
		defer func() { _ = srv.Close() }()
	}
	fmt.Printf("gatewaysim listening grpc=%s admin=%s%s\n", addr, adminAddr, inference)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	if admin != nil {
		shutdown, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = admin.Shutdown(shutdown)
	}
	return nil
}

// listenLoopback listens on addr, which must be a loopback address: what is served there
// is unauthenticated by design.
func listenLoopback(flagName, addr string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flagName, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("%s must be a loopback address: it is unauthenticated", flagName)
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flagName, err)
	}
	return lis, nil
}
