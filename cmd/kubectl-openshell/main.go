// Command kubectl-openshell is the kubectl plugin for OpenShell sandboxes (`kubectl
// openshell`): review policy proposals, export a sandbox's effective policy, show a sandbox.
// Install with `go install github.com/openshell-operator/openshell-operator/cmd/kubectl-openshell@latest`
// or `kubectl krew install --manifest=plugins/openshell.yaml`.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/openshell-operator/openshell-operator/internal/plugin"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	cmd := plugin.NewCommand(genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr})
	if err := cmd.ExecuteContext(ctx); err != nil {
		_, _ = fmt.Fprintln(os.Stderr, "error:", err)
		stop()
		os.Exit(1)
	}
}
