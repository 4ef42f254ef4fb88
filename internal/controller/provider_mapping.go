package controller

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
)

// credentialsHashKey is the provider config entry holding the SHA-256 of the credentials the
// operator last sent. The gateway only ever returns REDACTED values, so this hash is how a
// change on either side is seen without reading secrets back.
const credentialsHashKey = "openshell.dev/credentials-sha256"

// envKeyRE is what the gateway can inject as an environment variable.
var envKeyRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// The gateway's limits on provider credentials (gateway-semantics §3.1).
const (
	maxCredentials        = 32
	maxCredentialValueLen = 8192
)

// providerCredentials selects the credentials of a Provider from its Secret (pure). A missing
// Secret or key, more keys than the gateway takes, and values the gateway cannot use (empty,
// not UTF-8, holding a NUL byte or a line break, larger than 8192 bytes) are a Stalled outcome
// that names the key but never a value: the gateway would refuse them or inject them broken
// into environment variables and HTTP headers.
func providerCredentials(p *v1alpha1.Provider, secret *corev1.Secret) (map[string]string, *outcome) {
	where := fmt.Sprintf("Secret %s/%s", p.Namespace, p.Spec.CredentialsSecretRef.Name)
	if secret == nil {
		return nil, &outcome{Stalled: true, Reason: v1alpha1.ReasonSecretNotFound, Message: where + " not found"}
	}
	keys := p.Spec.CredentialsSecretRef.Keys
	if len(keys) == 0 {
		keys = slices.Sorted(maps.Keys(secret.Data))
	}
	if len(keys) == 0 {
		return nil, &outcome{Stalled: true, Reason: v1alpha1.ReasonSecretKeyMissing, Message: where + " has no keys"}
	}
	if len(keys) > maxCredentials {
		return nil, &outcome{Stalled: true, Reason: v1alpha1.ReasonInvalidSpec,
			Message: fmt.Sprintf("%s has %d keys; the gateway takes at most %d credentials (select some with credentialsSecretRef.keys)", where, len(keys), maxCredentials)}
	}
	out := make(map[string]string, len(keys))
	for _, k := range keys {
		v, ok := secret.Data[k]
		switch {
		case !ok:
			return nil, &outcome{Stalled: true, Reason: v1alpha1.ReasonSecretKeyMissing, Message: fmt.Sprintf("%s has no key %q", where, k)}
		case len(v) == 0:
			return nil, &outcome{Stalled: true, Reason: v1alpha1.ReasonInvalidSpec, Message: fmt.Sprintf("%s key %q is empty (the gateway treats an empty value as a deletion)", where, k)}
		case !utf8.Valid(v):
			return nil, &outcome{Stalled: true, Reason: v1alpha1.ReasonInvalidSpec, Message: fmt.Sprintf("%s key %q is not valid UTF-8", where, k)}
		case !envKeyRE.MatchString(k):
			return nil, &outcome{Stalled: true, Reason: v1alpha1.ReasonInvalidSpec, Message: fmt.Sprintf("%s key %q is not an environment variable name", where, k)}
		case bytes.IndexByte(v, 0) >= 0:
			return nil, &outcome{Stalled: true, Reason: v1alpha1.ReasonInvalidSpec, Message: fmt.Sprintf("%s key %q holds a NUL byte, which no environment variable can carry", where, k)}
		case bytes.ContainsAny(v, "\r\n"):
			return nil, &outcome{Stalled: true, Reason: v1alpha1.ReasonInvalidSpec,
				Message: fmt.Sprintf("%s key %q holds a line break (often a trailing newline from a file or echo); credentials are injected into HTTP headers", where, k)}
		case len(v) > maxCredentialValueLen:
			return nil, &outcome{Stalled: true, Reason: v1alpha1.ReasonInvalidSpec,
				Message: fmt.Sprintf("%s key %q is %d bytes; the gateway takes at most %d", where, k, len(v), maxCredentialValueLen)}
		}
		out[k] = string(v)
	}
	return out, nil
}

// credentialsHash is a SHA-256 over the sorted key/value pairs, length-prefixed so that no two
// different maps hash alike.
func credentialsHash(creds map[string]string) string {
	h := sha256.New()
	for _, k := range slices.Sorted(maps.Keys(creds)) {
		_, _ = fmt.Fprintf(h, "%d:%s%d:%s", len(k), k, len(creds[k]), creds[k])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// mapDelta is the map-merge update that turns live into desired: changed or new keys with
// their value, removed keys with "" (which the gateway treats as a deletion).
func mapDelta(live, desired map[string]string) map[string]string {
	delta := map[string]string{}
	for k, v := range desired {
		if live[k] != v {
			delta[k] = v
		}
	}
	for k := range live {
		if _, ok := desired[k]; !ok {
			delta[k] = ""
		}
	}
	return delta
}
