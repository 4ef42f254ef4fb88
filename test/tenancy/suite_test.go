// Package tenancy tests the operator as an attacker would: tenants are impersonated users
// whose only permissions are a namespace Role (what a platform grants a team), against a real
// kube-apiserver (envtest) that enforces RBAC and admission policies. The manager runs with
// exactly the RBAC config/rbac grants, as its ServiceAccount.
package tenancy

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
	"github.com/openshell-operator/openshell-operator/internal/devenv"
)

// operatorNS is where the operator runs and its cluster-wide references live.
const operatorNS = "openshell-system"

var (
	testEnv *envtest.Environment
	// adminCfg is a cluster admin; admin is its client.
	adminCfg *rest.Config
	admin    client.Client
	// operatorCfg authenticates as the manager's ServiceAccount with config/rbac's roles.
	operatorCfg *rest.Config
	scheme   = runtime.NewScheme()
	root     = filepath.Join("..", "..")
	timeout  = 30 * time.Second
	interval = 100 * time.Millisecond
)

func TestTenancy(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Tenancy (impersonated tenants on envtest)")
}

var _ = BeforeSuite(func() {
	ctrl.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))
	Expect(clientgoscheme.AddToScheme(scheme)).To(Succeed())
	Expect(v1alpha1.AddToScheme(scheme)).To(Succeed())
	testEnv = &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(root, "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
	}
	var err error
	adminCfg, err = testEnv.Start()
	Expect(err).NotTo(HaveOccurred())
	admin, err = client.New(adminCfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())
	operatorCfg, err = devenv.InstallOperatorRBAC(context.Background(), adminCfg, root, operatorNS)
	Expect(err).NotTo(HaveOccurred())
})

var _ = AfterSuite(func() {
	if testEnv != nil {
		Expect(testEnv.Stop()).To(Succeed())
	}
})

// namespace creates a namespace with labels.
func namespace(ctx context.Context, name string, labels map[string]string) {
	GinkgoHelper()
	Expect(admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}})).To(Succeed())
}

// tenant returns a client for user, who holds a Role granting every verb on every resource
// (status subresources included) of the openshell.dev and core API groups in namespace ns,
// and nothing else: the threat model of docs/security.md. The namespace must exist.
func tenant(ctx context.Context, user, ns string) client.Client {
	GinkgoHelper()
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: user + "-tenant"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{v1alpha1.GroupVersion.Group, ""},
			Resources: []string{"*"}, Verbs: []string{"*"}}},
	}
	Expect(admin.Create(ctx, role)).To(Succeed())
	Expect(admin.Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: user + "-tenant"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}},
	})).To(Succeed())
	cfg := rest.CopyConfig(adminCfg)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: []string{"system:authenticated"}}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())
	return c
}
