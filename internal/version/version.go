// Package version holds the build's version, commit and date, stamped at link time with
// -ldflags "-X" (see the Makefile's LDFLAGS), and prints them for every binary's --version.
package version

import (
	"fmt"
	"runtime"
)

// Set at link time: -X github.com/openshell-operator/openshell-operator/internal/version.Version=v0.1.0
var (
	// Version is the release's semantic version (v0.x.y); "dev" for an unstamped build.
	Version = "dev"
	// Commit is the git commit the binary was built from.
	Commit = "unknown"
	// Date is the build date in RFC 3339, UTC.
	Date = "unknown"
)

// String is the one-line form every binary prints for --version:
// "<name> v0.1.0 (commit abc123, built 2026-12-01T00:00:00Z, go1.26.8 linux/amd64)".
func String(name string) string {
	return fmt.Sprintf("%s %s (commit %s, built %s, %s %s/%s)",
		name, Version, Commit, Date, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
