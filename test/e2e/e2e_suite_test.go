//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/openshell-operator/openshell-operator/internal/devenv"
	"github.com/openshell-operator/openshell-operator/internal/gateway"
	"github.com/openshell-operator/openshell-operator/internal/ociimage"
)

var (
	env *devenv.Env
	gw  *gateway.Client
)

func TestE2E(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "e2e suite")
}

var _ = BeforeSuite(func(ctx SpecContext) {
	root, err := filepath.Abs("../..")
	Expect(err).NotTo(HaveOccurred())
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	Expect(assets).NotTo(BeEmpty(), "KUBEBUILDER_ASSETS must point at kube-apiserver and etcd (make test-e2e sets it)")

	bins, err := buildBinaries(ctx, root)
	Expect(err).NotTo(HaveOccurred())
	kubectl, err := devenv.RunScript(ctx, root, "hack/setup-kubectl.sh")
	Expect(err).NotTo(HaveOccurred())

	env, err = devenv.Start(context.Background(), devenv.Options{
		Root: root, ManagerBin: bins.Manager, SimulatorBin: bins.Simulator, Kubectl: kubectl,
		AssetsDir: assets, WorkDir: GinkgoT().TempDir(), Log: GinkgoWriter,
	})
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(env.Stop)

	gw, err = env.GatewayClient()
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(gw.Close)
}, NodeTimeout(15*time.Minute))

// imageLayoutEnv names the OCI layout of `make image` (`make test-e2e` builds it and sets this):
// the suite then runs the manager binary extracted from the image for this machine, so what
// ships is what was tested. Unset, the manager is built from source.
const imageLayoutEnv = "E2E_IMAGE_LAYOUT"

// buildBinaries builds the simulator, and the manager unless it comes from the image.
func buildBinaries(ctx context.Context, root string) (devenv.Binaries, error) {
	layout := os.Getenv(imageLayoutEnv)
	if layout == "" {
		_, _ = fmt.Fprintf(GinkgoWriter, "==> %s is unset: building the manager from source, not testing the image\n", imageLayoutEnv)
		return devenv.Build(ctx, root, GinkgoWriter)
	}
	sim, err := devenv.BuildSimulator(ctx, root, GinkgoWriter)
	if err != nil {
		return devenv.Binaries{}, err
	}
	manager, err := ociimage.ExtractEntrypoint(layout, runtime.GOOS+"/"+runtime.GOARCH, GinkgoT().TempDir())
	if err != nil {
		return devenv.Binaries{}, fmt.Errorf("manager from the image in %s: %w", layout, err)
	}
	out, err := exec.CommandContext(ctx, manager, "--version").CombinedOutput()
	if err != nil {
		return devenv.Binaries{}, fmt.Errorf("%s --version: %w: %s", manager, err, out)
	}
	_, _ = fmt.Fprintf(GinkgoWriter, "==> running the manager from the image %s: %s", layout, out)
	return devenv.Binaries{Manager: manager, Simulator: sim}, nil
}
