package controller

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
)

// GatewayName derives the gateway-wide name of a namespaced resource: a readable DNS-1123
// label of at most 63 characters, "<namespace>-<name>" (truncated) followed by 8 hex
// characters of SHA-256 over "namespace/name". The suffix is always there because the joined
// form alone is ambiguous ("a-b"/"c" and "a"/"b-c" both read "a-b-c").
func GatewayName(namespace, name string) string {
	sum := sha256.Sum256([]byte(namespace + "/" + name))
	suffix := hex.EncodeToString(sum[:])[:8]
	base := strings.Map(func(r rune) rune {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '-' {
			return r
		}
		return '-'
	}, strings.ToLower(namespace+"-"+name))
	if max := 63 - len(suffix) - 1; len(base) > max {
		base = base[:max]
	}
	base = strings.Trim(base, "-")
	if base == "" {
		return "x-" + suffix
	}
	return base + "-" + suffix
}

// OwnershipLabels are stamped on every gateway object created for obj.
func OwnershipLabels(obj client.Object) map[string]string {
	return map[string]string{
		v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue,
		v1alpha1.LabelNamespace: obj.GetNamespace(),
		v1alpha1.LabelName:      obj.GetName(),
		v1alpha1.LabelUID:       string(obj.GetUID()),
	}
}

// OwnedBy reports whether gateway labels prove the object belongs to obj. The UID is
// compared too, so a resource deleted and created again with the same name does not silently
// adopt an object its predecessor orphaned.
func OwnedBy(labels map[string]string, obj client.Object) bool {
	return labels[v1alpha1.LabelManagedBy] == v1alpha1.ManagedByValue &&
		labels[v1alpha1.LabelNamespace] == obj.GetNamespace() &&
		labels[v1alpha1.LabelName] == obj.GetName() &&
		labels[v1alpha1.LabelUID] == string(obj.GetUID())
}
