package controller

import (
	"fmt"
	"maps"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
)

func TestProviderCredentials(t *testing.T) {
	const secret = "s3cr3t-value"
	manyKeys := func(n int) map[string][]byte {
		out := map[string][]byte{}
		for i := range n {
			out[fmt.Sprintf("KEY_%d", i)] = []byte(secret)
		}
		return out
	}
	cases := []struct {
		name    string
		keys    []string
		data    map[string][]byte
		noSec   bool
		want    map[string]string // nil: a failure is expected
		reason  string
		message string
	}{
		{name: "all keys", data: map[string][]byte{"A": []byte(secret), "B": []byte("b")}, want: map[string]string{"A": secret, "B": "b"}},
		{name: "selected keys", keys: []string{"B"}, data: map[string][]byte{"A": []byte("\x00"), "B": []byte("b")}, want: map[string]string{"B": "b"}},
		{name: "32 keys, 8192 bytes and a tab are fine", data: func() map[string][]byte {
			d := manyKeys(31)
			d["BIG"] = []byte(strings.Repeat("x", 8190) + "\ty")
			return d
		}(), want: func() map[string]string {
			m := map[string]string{"BIG": strings.Repeat("x", 8190) + "\ty"}
			for k := range manyKeys(31) {
				m[k] = secret
			}
			return m
		}()},
		{name: "missing Secret", noSec: true, reason: v1alpha1.ReasonSecretNotFound, message: "Secret ns/creds not found"},
		{name: "Secret without keys", data: map[string][]byte{}, reason: v1alpha1.ReasonSecretKeyMissing, message: "Secret ns/creds has no keys"},
		{name: "selected key missing", keys: []string{"OPENAI_API_KEY"}, data: map[string][]byte{"OTHER": []byte(secret)}, reason: v1alpha1.ReasonSecretKeyMissing, message: `has no key "OPENAI_API_KEY"`},
		{name: "empty value", data: map[string][]byte{"A": {}}, reason: v1alpha1.ReasonInvalidSpec, message: `key "A" is empty`},
		{name: "not UTF-8", data: map[string][]byte{"A": []byte(secret + "\xff\xfe")}, reason: v1alpha1.ReasonInvalidSpec, message: `key "A" is not valid UTF-8`},
		{name: "key not an environment variable name", data: map[string][]byte{"openai-key": []byte(secret)}, reason: v1alpha1.ReasonInvalidSpec, message: `key "openai-key" is not an environment variable name`},
		{name: "NUL byte", data: map[string][]byte{"A": []byte(secret + "\x00")}, reason: v1alpha1.ReasonInvalidSpec, message: `key "A" holds a NUL byte`},
		{name: "trailing newline", data: map[string][]byte{"A": []byte(secret + "\n")}, reason: v1alpha1.ReasonInvalidSpec, message: `key "A" holds a line break`},
		{name: "carriage return", data: map[string][]byte{"A": []byte(secret + "\r")}, reason: v1alpha1.ReasonInvalidSpec, message: `key "A" holds a line break`},
		{name: "value too large", data: map[string][]byte{"A": []byte(secret + strings.Repeat("x", 8193-len(secret)))}, reason: v1alpha1.ReasonInvalidSpec, message: `key "A" is 8193 bytes; the gateway takes at most 8192`},
		{name: "more keys than the gateway takes", data: manyKeys(33), reason: v1alpha1.ReasonInvalidSpec, message: "has 33 keys; the gateway takes at most 32"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := &v1alpha1.Provider{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p"},
				Spec: v1alpha1.ProviderSpec{CredentialsSecretRef: v1alpha1.CredentialsSecretReference{Name: "creds", Keys: tc.keys}}}
			var s *corev1.Secret
			if !tc.noSec {
				s = &corev1.Secret{Data: tc.data}
			}
			got, fail := providerCredentials(p, s)
			if tc.want != nil {
				if fail != nil || !maps.Equal(got, tc.want) {
					t.Fatalf("got %v, %+v; want %v", got, fail, tc.want)
				}
				return
			}
			if fail == nil {
				t.Fatalf("accepted: %v", got)
			}
			if !fail.Stalled || fail.Reason != tc.reason || !strings.Contains(fail.Message, tc.message) {
				t.Errorf("got %+v, want Stalled %s containing %q", *fail, tc.reason, tc.message)
			}
			if strings.Contains(fail.Message, secret) {
				t.Errorf("message leaks the value: %q", fail.Message)
			}
		})
	}
}
