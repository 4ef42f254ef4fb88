// Command demo runs the whole operator locally as real processes (kube-apiserver + etcd, the
// gateway simulator, the manager), applies config/samples with kubectl and waits until they are
// Ready. See docs/demo.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/openshell-operator/openshell-operator/internal/devenv"
)

func main() {
	var (
		root         = flag.String("root", ".", "repository root")
		workDir      = flag.String("work-dir", "", "directory for kubeconfig, certs and logs (default bin/demo/<timestamp>, removed on exit)")
		exitReady    = flag.Bool("exit-when-ready", false, "tear down after printing the resources (for CI)")
		readyTimeout = flag.Duration("ready-timeout", 3*time.Minute, "how long to wait for the samples to become Ready")
	)
	flag.Parse()
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	if err := run(ctx, *root, *workDir, *exitReady, *readyTimeout); err != nil {
		fmt.Fprintf(os.Stderr, "demo: %v\n", err)
		os.Exit(1)
	}
}

func step(format string, args ...any) {
	fmt.Printf("==> "+format+"\n", args...)
}

func run(ctx context.Context, root, workDir string, exitReady bool, readyTimeout time.Duration) error {
	root, err := filepath.Abs(root)
	if err != nil {
		return fmt.Errorf("resolve root: %w", err)
	}
	removeWork := workDir == ""
	if removeWork {
		workDir = filepath.Join(root, "bin", "demo", time.Now().UTC().Format("20060102-150405"))
	}
	bins, err := devenv.Build(ctx, root, os.Stdout)
	if err != nil {
		return err
	}
	step("obtaining envtest assets and kubectl (cached after the first run)")
	assets, err := devenv.RunScript(ctx, root, "hack/setup-envtest.sh")
	if err != nil {
		return err
	}
	kubectl, err := devenv.RunScript(ctx, root, "hack/setup-kubectl.sh")
	if err != nil {
		return err
	}
	env, err := devenv.Start(ctx, devenv.Options{
		Root: root, ManagerBin: bins.Manager, SimulatorBin: bins.Simulator,
		Kubectl: kubectl, AssetsDir: assets, WorkDir: workDir, Log: prefixWriter{},
	})
	if err != nil {
		return err
	}
	defer func() {
		step("tearing down")
		env.Stop()
		if removeWork {
			_ = os.RemoveAll(workDir)
		}
	}()

	step("applying config/samples with kubectl (endpoint -> %s)", env.GatewayAddr)
	if err := env.ApplySamples(ctx); err != nil {
		return err
	}
	step("waiting for the samples to become Ready (timeout %s)", readyTimeout)
	waitCtx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	if err := env.WaitSamplesReady(waitCtx); err != nil {
		out, _ := env.Kubectl(context.Background(), "get", "openshell", "-A")
		fmt.Println(out)
		return fmt.Errorf("%w (manager log: %s)", err, filepath.Join(workDir, "manager.log"))
	}
	out, err := env.Kubectl(ctx, "get", "openshell", "-A")
	if err != nil {
		return err
	}
	step("kubectl get openshell -A\n%s", out)
	step("the sandbox's policy advisor proposes a rule (simulator admin API); waiting for its PolicyProposal")
	proposals, err := env.ProposeDemoChunk(waitCtx)
	if err != nil {
		return err
	}
	step("kubectl get policyproposals -n demo\n%s", proposals)
	fmt.Printf("Review it: kubectl openshell proposals -n demo; kubectl openshell approve <name> -n demo (docs/approvals.md)\n")
	fmt.Printf("\nThe cluster keeps running. In another shell:\n\n  export KUBECONFIG=%s\n  kubectl get openshell -A\n\n", env.Kubeconfig)
	fmt.Printf("Logs: %s/{manager,gatewaysim}.log; simulator admin API http://%s\n", workDir, env.AdminAddr)
	if exitReady {
		return nil
	}
	fmt.Println("Press Ctrl-C to stop and clean up.")
	<-ctx.Done()
	return nil
}

// script runs a hack/ script and returns its trimmed stdout; progress goes to stderr.
type prefixWriter struct{}

func (prefixWriter) Write(p []byte) (int, error) {
	fmt.Print("==> " + string(p))
	return len(p), nil
}
