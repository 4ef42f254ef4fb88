package controller

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
	"github.com/openshell-operator/openshell-operator/internal/gateway"
)

// TLS Secret keys, the layout of the OpenShell Helm chart and of cert-manager.
const (
	keyCACert     = "ca.crt"
	keyClientCert = "tls.crt"
	keyClientKey  = "tls.key"
	defaultToken  = "token"
)

// tlsMaterial checks a TLS Secret and returns its PEM parts and the client certificate's
// expiry. Failures come back as a Stalled outcome naming the Secret, key and (for expired
// certificates) the expiry time, never any key material.
func tlsMaterial(ref v1alpha1.NamespacedObjectReference, secret *corev1.Secret, now time.Time) (ca, cert, key []byte, notAfter time.Time, fail *outcome) {
	where := fmt.Sprintf("Secret %s/%s", ref.Namespace, ref.Name)
	if secret == nil {
		return nil, nil, nil, time.Time{}, &outcome{Stalled: true, Reason: v1alpha1.ReasonSecretNotFound, Message: where + " not found"}
	}
	for _, k := range []string{keyCACert, keyClientCert, keyClientKey} {
		if len(secret.Data[k]) == 0 {
			return nil, nil, nil, time.Time{}, &outcome{Stalled: true, Reason: v1alpha1.ReasonSecretKeyMissing, Message: fmt.Sprintf("%s has no key %q (needs ca.crt, tls.crt and tls.key)", where, k)}
		}
	}
	ca, cert, key = secret.Data[keyCACert], secret.Data[keyClientCert], secret.Data[keyClientKey]
	if _, err := parseCert(ca); err != nil {
		return nil, nil, nil, time.Time{}, &outcome{Stalled: true, Reason: v1alpha1.ReasonCertificateInvalid, Message: fmt.Sprintf("%s key ca.crt: %v", where, err)}
	}
	leaf, err := parseCert(cert)
	if err != nil {
		return nil, nil, nil, time.Time{}, &outcome{Stalled: true, Reason: v1alpha1.ReasonCertificateInvalid, Message: fmt.Sprintf("%s key tls.crt: %v", where, err)}
	}
	if now.After(leaf.NotAfter) {
		return nil, nil, nil, leaf.NotAfter, &outcome{Stalled: true, Reason: v1alpha1.ReasonCertificateExpired,
			Message: fmt.Sprintf("client certificate in %s key tls.crt (CN %q) expired at %s", where, leaf.Subject.CommonName, leaf.NotAfter.UTC().Format(time.RFC3339))}
	}
	if now.Before(leaf.NotBefore) {
		return nil, nil, nil, leaf.NotAfter, &outcome{Stalled: true, Reason: v1alpha1.ReasonCertificateInvalid,
			Message: fmt.Sprintf("client certificate in %s key tls.crt is not valid before %s", where, leaf.NotBefore.UTC().Format(time.RFC3339))}
	}
	return ca, cert, key, leaf.NotAfter, nil
}

func parseCert(pemBytes []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("not a PEM certificate")
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("invalid certificate: %w", err)
	}
	return c, nil
}

// bearerToken reads the token Secret key; a missing Secret or key, or a value that cannot be
// sent as a bearer token (anything but printable ASCII without spaces: a trailing newline
// from a file is the usual case), is a Stalled outcome that never quotes the value.
func bearerToken(ref v1alpha1.SecretKeyReference, secret *corev1.Secret) (string, *outcome) {
	key := ref.Key
	if key == "" {
		key = defaultToken
	}
	where := fmt.Sprintf("Secret %s/%s", ref.Namespace, ref.Name)
	if secret == nil {
		return "", &outcome{Stalled: true, Reason: v1alpha1.ReasonSecretNotFound, Message: where + " (bearer token) not found"}
	}
	if len(secret.Data[key]) == 0 {
		return "", &outcome{Stalled: true, Reason: v1alpha1.ReasonSecretKeyMissing, Message: fmt.Sprintf("%s has no key %q (bearer token)", where, key)}
	}
	token := secret.Data[key]
	for _, b := range token {
		if b < '!' || b > '~' {
			return "", &outcome{Stalled: true, Reason: v1alpha1.ReasonInvalidSpec,
				Message: fmt.Sprintf("%s key %q is not a usable bearer token: only printable ASCII without spaces or line breaks is allowed (a trailing newline is the usual cause)", where, key)}
		}
	}
	return string(token), nil
}

// handshakeFailure explains a probe that failed in the TLS handshake, which a plain
// "unreachable" would hide; nil when err is something else. gRPC reports handshake errors
// only as text, so they are recognised by the messages of Go's crypto/tls and crypto/x509.
func handshakeFailure(endpoint string, err error) *failure {
	msg := gateway.Message(err)
	if msg == "" && err != nil {
		msg = err.Error()
	}
	switch {
	case strings.Contains(msg, "first record does not look like a TLS handshake"):
		return failed(v1alpha1.ReasonGatewayUnavailable,
			fmt.Sprintf("gateway %s does not speak TLS; the operator never falls back to plaintext", endpoint), retryBackoff)
	case strings.Contains(msg, "x509: certificate is valid for"), strings.Contains(msg, "x509: certificate is not valid for"),
		strings.Contains(msg, "x509: cannot validate certificate for"):
		return failed(v1alpha1.ReasonCertificateInvalid,
			fmt.Sprintf("gateway %s presented a certificate for another name (%s); set spec.tls.serverName to the name it carries", endpoint, x509Detail(msg)), retryBackoff)
	case strings.Contains(msg, "x509:"):
		return failed(v1alpha1.ReasonCertificateInvalid,
			fmt.Sprintf("gateway %s presented a certificate the Secret's ca.crt does not verify (%s)", endpoint, x509Detail(msg)), retryBackoff)
	case strings.Contains(msg, "remote error: tls:"):
		return failed(v1alpha1.ReasonAuthenticationFailed,
			fmt.Sprintf("gateway %s refused the client certificate (%s); it must be signed by the gateway's client CA", endpoint, x509Detail(msg)), retryBackoff)
	}
	return nil
}

// x509Detail keeps the crypto error from a gRPC transport message ("... handshake failed:
// tls: failed to verify certificate: x509: ...") without the transport's prefixes.
func x509Detail(msg string) string {
	for _, marker := range []string{"x509: ", "remote error: "} {
		if i := strings.Index(msg, marker); i >= 0 {
			return strings.TrimRight(msg[i:], "\" ")
		}
	}
	return msg
}
