//go:build e2e

package e2e

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/openshell-operator/openshell-operator/internal/devenv"
	"github.com/openshell-operator/openshell-operator/internal/gateway"
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

	bins, err := devenv.Build(ctx, root, GinkgoWriter)
	Expect(err).NotTo(HaveOccurred())
	kubectl, err := devenv.RunScript(ctx, root, "hack/setup-kubectl.sh")
	Expect(err).NotTo(HaveOccurred())

	env, err = devenv.Start(context.Background(), devenv.Options{
		Root: root, ManagerBin: bins.Manager, SimulatorBin: bins.Simulator, Kubectl: kubectl,
		AssetsDir: assets, WorkDir: GinkgoT().TempDir(), Log: GinkgoWriter,
	})
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(env.Stop)

	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(env.CertDir, name))
		Expect(err).NotTo(HaveOccurred())
		return b
	}
	gw, err = gateway.FromCredentials(env.GatewayAddr, read("ca.crt"), read("tls.crt"), read("tls.key"),
		gateway.WithServerName("localhost"))
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(gw.Close)
}, NodeTimeout(15*time.Minute))
