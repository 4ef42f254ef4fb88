//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// runScript runs a hack/ script and returns its trimmed stdout.
func runScript(ctx context.Context, root, path string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(root, path))
	cmd.Dir = root
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return strings.TrimSpace(string(out)), nil
}
