package controller

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// sandboxNameFor derives the gateway name of a namespaced object: a readable DNS-1123 label
// (≤63) from namespace and name plus a short hash of both, so that "a-b/c" and "a/b-c"
// never collide. Interim: replace with the shared GatewayName once naming.go lands.
func sandboxNameFor(namespace, name string) string {
	sum := sha256.Sum256([]byte(namespace + "/" + name))
	suffix := hex.EncodeToString(sum[:])[:8]
	base := strings.ToLower(namespace + "-" + name)
	base = strings.Map(func(r rune) rune {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '-' {
			return r
		}
		return '-'
	}, base)
	if len(base) > 63-len(suffix)-1 {
		base = base[:63-len(suffix)-1]
	}
	base = strings.Trim(base, "-")
	return base + "-" + suffix
}
