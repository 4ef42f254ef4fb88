package devenv

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Binaries are the paths of the built manager and simulator.
type Binaries struct {
	Manager, Simulator string
}

// Build compiles the manager and the simulator into root/bin, reporting progress and timing to
// log (the first build of the dependency tree takes minutes on a small machine).
func Build(ctx context.Context, root string, log io.Writer) (Binaries, error) {
	return BuildInto(ctx, root, filepath.Join(root, "bin"), log)
}

// BuildInto is Build with another output directory, for runs that must not replace binaries
// other runs of the checkout (or of worktrees sharing its bin/) are using.
func BuildInto(ctx context.Context, root, dir string, log io.Writer) (Binaries, error) {
	b := Binaries{Manager: filepath.Join(dir, "manager"), Simulator: filepath.Join(dir, "gatewaysim")}
	for _, t := range []struct{ out, pkg string }{{b.Manager, "./cmd"}, {b.Simulator, "./cmd/gatewaysim"}} {
		if err := build(ctx, root, t.out, t.pkg, log); err != nil {
			return Binaries{}, err
		}
	}
	return b, nil
}

// BuildSimulator compiles only the simulator into root/bin, for runs whose manager binary comes
// from elsewhere (the e2e suite runs the one in the image).
func BuildSimulator(ctx context.Context, root string, log io.Writer) (string, error) {
	out := filepath.Join(root, "bin", "gatewaysim")
	return out, build(ctx, root, out, "./cmd/gatewaysim", log)
}

func build(ctx context.Context, root, out, pkg string, log io.Writer) error {
	_, _ = fmt.Fprintf(log, "==> building %s (the first build can take a few minutes)\n", pkg)
	start := time.Now()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	cmd.Dir, cmd.Stdout, cmd.Stderr = root, os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("build %s: %w", pkg, err)
	}
	_, _ = fmt.Fprintf(log, "==> built %s in %s\n", out, time.Since(start).Round(time.Second))
	return nil
}

// RunScript runs a repository script (such as hack/setup-envtest.sh) from root and returns its
// trimmed stdout; its stderr goes to ours so progress stays visible.
func RunScript(ctx context.Context, root, path string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(root, path))
	cmd.Dir = root
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return strings.TrimSpace(string(out)), nil
}
