package controller

import (
	"encoding/pem"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
	"github.com/openshell-operator/openshell-operator/internal/gatewaysim"
)

func TestTLSMaterial(t *testing.T) {
	certs, err := gatewaysim.GenerateCertBundle()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	expired, expiredKey, err := certs.IssueClient("old", now.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	der, _ := pem.Decode(certs.CACert)
	ref := v1alpha1.NamespacedObjectReference{Namespace: "ns", Name: "tls"}
	valid := func() map[string][]byte {
		return map[string][]byte{"ca.crt": certs.CACert, "tls.crt": certs.ClientCert, "tls.key": certs.ClientKey}
	}
	with := func(k string, v []byte) map[string][]byte {
		d := valid()
		if v == nil {
			delete(d, k)
		} else {
			d[k] = v
		}
		return d
	}
	cases := []struct {
		name    string
		data    map[string][]byte
		noSec   bool
		reason  string // "" means accepted
		message string
	}{
		{name: "valid", data: valid()},
		{name: "missing Secret", noSec: true, reason: v1alpha1.ReasonSecretNotFound, message: "Secret ns/tls not found"},
		{name: "no ca.crt", data: with("ca.crt", nil), reason: v1alpha1.ReasonSecretKeyMissing, message: `has no key "ca.crt"`},
		{name: "keys named like files", data: map[string][]byte{"ca.pem": certs.CACert, "cert.pem": certs.ClientCert, "key.pem": certs.ClientKey}, reason: v1alpha1.ReasonSecretKeyMissing, message: `has no key "ca.crt"`},
		{name: "empty tls.key", data: with("tls.key", []byte{}), reason: v1alpha1.ReasonSecretKeyMissing, message: `has no key "tls.key"`},
		{name: "garbage tls.crt", data: with("tls.crt", []byte("not a certificate")), reason: v1alpha1.ReasonCertificateInvalid, message: "key tls.crt: not a PEM certificate"},
		{name: "DER ca.crt", data: with("ca.crt", der.Bytes), reason: v1alpha1.ReasonCertificateInvalid, message: "key ca.crt: not a PEM certificate"},
		{name: "key in tls.crt", data: with("tls.crt", certs.ClientKey), reason: v1alpha1.ReasonCertificateInvalid, message: "key tls.crt: not a PEM certificate"},
		{name: "corrupt PEM body", data: with("tls.crt", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("junk")})), reason: v1alpha1.ReasonCertificateInvalid, message: "key tls.crt: invalid certificate"},
		{name: "expired", data: map[string][]byte{"ca.crt": certs.CACert, "tls.crt": expired, "tls.key": expiredKey}, reason: v1alpha1.ReasonCertificateExpired, message: `(CN "old") expired at`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var s *corev1.Secret
			if !tc.noSec {
				s = &corev1.Secret{Data: tc.data}
			}
			ca, cert, key, _, fail := tlsMaterial(ref, s, now)
			if tc.reason == "" {
				if fail != nil || len(ca) == 0 || len(cert) == 0 || len(key) == 0 {
					t.Fatalf("rejected a valid Secret: %+v", fail)
				}
				return
			}
			if fail == nil {
				t.Fatal("accepted")
			}
			if !fail.Stalled || fail.Reason != tc.reason || !strings.Contains(fail.Message, tc.message) {
				t.Errorf("got %+v, want Stalled %s containing %q", *fail, tc.reason, tc.message)
			}
			if strings.Contains(fail.Message, "PRIVATE KEY") || strings.Contains(fail.Message, "-----") {
				t.Errorf("message quotes PEM material: %q", fail.Message)
			}
		})
	}
}

func TestBearerToken(t *testing.T) {
	const token = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJvcGVyYXRvciJ9.c2lnbmF0dXJl"
	ref := v1alpha1.SecretKeyReference{Namespace: "ns", Name: "tok"}
	cases := []struct {
		name    string
		key     string
		data    map[string][]byte
		noSec   bool
		reason  string // "" means accepted
		message string
	}{
		{name: "default key", data: map[string][]byte{"token": []byte(token)}},
		{name: "named key", key: "jwt", data: map[string][]byte{"jwt": []byte(token + "==")}},
		{name: "missing Secret", noSec: true, reason: v1alpha1.ReasonSecretNotFound, message: "Secret ns/tok (bearer token) not found"},
		{name: "missing key", key: "jwt", data: map[string][]byte{"token": []byte(token)}, reason: v1alpha1.ReasonSecretKeyMissing, message: `has no key "jwt"`},
		{name: "trailing newline", data: map[string][]byte{"token": []byte(token + "\n")}, reason: v1alpha1.ReasonInvalidSpec, message: `key "token" is not a usable bearer token`},
		{name: "space inside", data: map[string][]byte{"token": []byte("Bearer " + token)}, reason: v1alpha1.ReasonInvalidSpec, message: "not a usable bearer token"},
		{name: "not ASCII", data: map[string][]byte{"token": []byte(token + "\xc3\xa9")}, reason: v1alpha1.ReasonInvalidSpec, message: "not a usable bearer token"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := ref
			r.Key = tc.key
			var s *corev1.Secret
			if !tc.noSec {
				s = &corev1.Secret{Data: tc.data}
			}
			got, fail := bearerToken(r, s)
			if tc.reason == "" {
				if fail != nil || got == "" {
					t.Fatalf("rejected a valid token: %+v", fail)
				}
				return
			}
			if fail == nil {
				t.Fatalf("accepted %q", got)
			}
			if !fail.Stalled || fail.Reason != tc.reason || !strings.Contains(fail.Message, tc.message) {
				t.Errorf("got %+v, want Stalled %s containing %q", *fail, tc.reason, tc.message)
			}
			if strings.Contains(fail.Message, token) {
				t.Errorf("message leaks the token: %q", fail.Message)
			}
		})
	}
}
