package devenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

// OperatorServiceAccount is the manager's ServiceAccount name in config/rbac (before the
// kustomize name prefix).
const OperatorServiceAccount = "controller-manager"

// kustomizeNamespace is the placeholder namespace config/rbac's objects carry.
const kustomizeNamespace = "system"

// InstallOperatorRBAC creates, in namespace, the objects config/rbac/kustomization.yaml lists
// (the manager's ServiceAccount, ClusterRole and Role and their bindings, the metrics-reader
// ClusterRole) the way `kubectl apply -k config/default` would, without the name prefix, and
// returns a REST config that authenticates as that ServiceAccount with a token from the
// TokenRequest API. A manager run with it has exactly the permissions config/rbac grants, so
// a missing permission fails the caller's tests instead of hiding behind an admin identity.
func InstallOperatorRBAC(ctx context.Context, admin *rest.Config, root, namespace string) (*rest.Config, error) {
	objs, err := ReadRBAC(root, namespace)
	if err != nil {
		return nil, err
	}
	c, err := client.New(admin, client.Options{})
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("create namespace %s: %w", namespace, err)
	}
	for _, o := range objs {
		if err := c.Create(ctx, o); err != nil {
			return nil, fmt.Errorf("create %s %s: %w", o.GetKind(), o.GetName(), err)
		}
	}
	return ServiceAccountConfig(ctx, admin, namespace, OperatorServiceAccount)
}

// ReadRBAC decodes the objects config/rbac/kustomization.yaml lists, moved from the
// placeholder namespace "system" to namespace (objects and binding subjects).
func ReadRBAC(root, namespace string) ([]*unstructured.Unstructured, error) {
	dir := filepath.Join(root, "config", "rbac")
	var kust struct {
		Resources []string `json:"resources"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		return nil, fmt.Errorf("read config/rbac: %w", err)
	}
	if err := yaml.Unmarshal(b, &kust); err != nil {
		return nil, fmt.Errorf("parse config/rbac/kustomization.yaml: %w", err)
	}
	var out []*unstructured.Unstructured
	for _, res := range kust.Resources {
		objs, err := decodeManifests(filepath.Join(dir, res))
		if err != nil {
			return nil, err
		}
		for _, o := range objs {
			moveNamespace(o, namespace)
		}
		out = append(out, objs...)
	}
	return out, nil
}

// decodeManifests decodes every object of a multi-document YAML file.
func decodeManifests(path string) ([]*unstructured.Unstructured, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	var out []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(b), 4096)
	for {
		var o unstructured.Unstructured
		if err := dec.Decode(&o.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, fmt.Errorf("decode %s: %w", path, err)
		}
		if len(o.Object) > 0 {
			out = append(out, &o)
		}
	}
}

// moveNamespace moves o and its binding subjects from the placeholder namespace to namespace.
func moveNamespace(o *unstructured.Unstructured, namespace string) {
	if o.GetNamespace() == kustomizeNamespace {
		o.SetNamespace(namespace)
	}
	subjects, ok, _ := unstructured.NestedSlice(o.Object, "subjects")
	if !ok {
		return
	}
	for _, s := range subjects {
		if m, ok := s.(map[string]any); ok && m["namespace"] == kustomizeNamespace {
			m["namespace"] = namespace
		}
	}
	_ = unstructured.SetNestedSlice(o.Object, subjects, "subjects")
}

// ServiceAccountConfig returns a REST config that authenticates to admin's API server as the
// ServiceAccount namespace/name (created if missing) with a one-day token from the
// TokenRequest API.
func ServiceAccountConfig(ctx context.Context, admin *rest.Config, namespace, name string) (*rest.Config, error) {
	token, err := ServiceAccountToken(ctx, admin, namespace, name)
	if err != nil {
		return nil, err
	}
	cfg := rest.AnonymousClientConfig(admin)
	cfg.BearerToken = token
	return cfg, nil
}

// ServiceAccountToken creates the ServiceAccount namespace/name if missing and returns a
// one-day token for it.
func ServiceAccountToken(ctx context.Context, admin *rest.Config, namespace, name string) (string, error) {
	cs, err := kubernetes.NewForConfig(admin)
	if err != nil {
		return "", fmt.Errorf("kubernetes client: %w", err)
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}
	if _, err := cs.CoreV1().ServiceAccounts(namespace).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return "", fmt.Errorf("create ServiceAccount %s/%s: %w", namespace, name, err)
	}
	day := int64(24 * 60 * 60)
	tr, err := cs.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &day}}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("token for ServiceAccount %s/%s: %w", namespace, name, err)
	}
	return tr.Status.Token, nil
}

// WriteKubeconfig writes a kubeconfig for cfg (server, CA and bearer token or client
// certificate) to path.
func WriteKubeconfig(cfg *rest.Config, path string) error {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["envtest"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["user"] = &clientcmdapi.AuthInfo{Token: cfg.BearerToken,
		ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData}
	kc.Contexts["envtest"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "user"}
	kc.CurrentContext = "envtest"
	b, err := clientcmd.Write(*kc)
	if err != nil {
		return fmt.Errorf("render kubeconfig: %w", err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return fmt.Errorf("write kubeconfig: %w", err)
	}
	return nil
}
