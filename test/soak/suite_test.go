//go:build soak

package soak

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/openshell-operator/openshell-operator/internal/devenv"
)

var (
	root   string
	bins   devenv.Binaries
	assets string
)

// seeds and duration come from SOAK_SEED (one seed) or SOAK_SEEDS (comma-separated) and
// SOAK_DURATION (per seed).
func soakParams() ([]uint64, time.Duration) {
	list := os.Getenv("SOAK_SEED")
	if list == "" {
		list = os.Getenv("SOAK_SEEDS")
	}
	if list == "" {
		list = "1"
	}
	var seeds []uint64
	for _, s := range strings.Split(list, ",") {
		v, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
		if err != nil {
			panic(fmt.Sprintf("bad seed %q in SOAK_SEED(S)", s))
		}
		seeds = append(seeds, v)
	}
	d := 2 * time.Minute
	if v := os.Getenv("SOAK_DURATION"); v != "" {
		var err error
		if d, err = time.ParseDuration(v); err != nil {
			panic(fmt.Sprintf("bad SOAK_DURATION %q: %v", v, err))
		}
	}
	return seeds, d
}

// soakSkip are the step kinds SOAK_SKIP (comma-separated) leaves out of the schedule.
func soakSkip() []Kind {
	var out []Kind
	for _, k := range strings.Split(os.Getenv("SOAK_SKIP"), ",") {
		if k = strings.TrimSpace(k); k != "" {
			out = append(out, Kind(k))
		}
	}
	return out
}

func TestSoak(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Soak (seeded actions and faults against real processes)")
}

var _ = BeforeSuite(func(ctx SpecContext) {
	ctrllog.SetLogger(logr.Discard())
	var err error
	root, err = filepath.Abs(filepath.Join("..", ".."))
	Expect(err).NotTo(HaveOccurred())
	// Private binaries: bin/ may be shared with other worktrees and their running tests.
	bins, err = devenv.BuildInto(ctx, root, GinkgoT().TempDir(), GinkgoWriter)
	Expect(err).NotTo(HaveOccurred())
	assets = os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		assets, err = devenv.RunScript(ctx, root, "hack/setup-envtest.sh")
		Expect(err).NotTo(HaveOccurred())
	}
}, NodeTimeout(15*time.Minute))

var _ = Describe("Soak", func() {
	seeds, d := soakParams()
	for _, seed := range seeds {
		It(fmt.Sprintf("keeps every invariant with seed %d for %s", seed, d), func(ctx SpecContext) {
			rep := runSoak(ctx, seed, d, soakSkip())
			summary := rep.Summary()
			_, _ = fmt.Fprintln(GinkgoWriter, summary)
			if path := os.Getenv("SOAK_REPORT"); path != "" {
				f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
				Expect(err).NotTo(HaveOccurred())
				_, _ = fmt.Fprintln(f, rep.Row())
				_ = f.Close()
			}
			if len(rep.Violations) > 0 {
				Fail(rep.Failure())
			}
		}, NodeTimeout(d+20*time.Minute))
	}
})

// soakContext bounds one call of the harness.
func callCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, 5*time.Second)
}
