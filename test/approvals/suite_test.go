// Package approvals proves the PolicyProposal review path against a real kube-apiserver
// (envtest): the admission policy that verifies approvers (config/approvals), the reviewer
// roles, and the kubectl plugin's commands.
package approvals

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
)

var (
	testEnv  *envtest.Environment
	cfg      *rest.Config
	scheme   = runtime.NewScheme()
	admin    client.Client
	ctx      = context.Background()
	timeout  = 30 * time.Second
	interval = 100 * time.Millisecond
)

func TestApprovals(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Policy approvals (envtest: admission policy, reviewer RBAC, kubectl plugin)")
}

var _ = BeforeSuite(func() {
	testEnv = &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
	}
	var err error
	cfg, err = testEnv.Start()
	Expect(err).NotTo(HaveOccurred())
	Expect(clientgoscheme.AddToScheme(scheme)).To(Succeed())
	Expect(v1alpha1.AddToScheme(scheme)).To(Succeed())
	admin, err = client.New(cfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())
	for _, f := range []string{"approvals_policy.yaml", "reviewer_roles.yaml"} {
		applyFile(filepath.Join("..", "..", "config", "approvals", f))
	}
})

var _ = AfterSuite(func() {
	Expect(testEnv.Stop()).To(Succeed())
})

// applyFile creates every object of a multi-document YAML file as the admin.
func applyFile(path string) {
	data, err := os.ReadFile(path)
	Expect(err).NotTo(HaveOccurred())
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for {
		u := &unstructured.Unstructured{}
		err := dec.Decode(&u.Object)
		if errors.Is(err, io.EOF) {
			return
		}
		Expect(err).NotTo(HaveOccurred(), path)
		if len(u.Object) == 0 {
			continue
		}
		Expect(admin.Create(ctx, u)).To(Succeed(), "%s: %s %s", path, u.GetKind(), u.GetName())
	}
}

// as is a client that authenticates as the admin and impersonates user (in group
// system:authenticated, as a real login would be).
func as(user string) client.Client {
	c := rest.CopyConfig(cfg)
	c.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: []string{"system:authenticated"}}
	k, err := client.New(c, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())
	return k
}
