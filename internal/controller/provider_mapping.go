package controller

import (
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

// providerCredentials selects the credentials of a Provider from its Secret (pure). Missing
// Secret, missing keys, empty or non-UTF-8 values are a Stalled outcome that names the key but
// never a value.
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
