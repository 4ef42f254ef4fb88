package controller

import (
	"errors"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
)

func TestHandshakeFailure(t *testing.T) {
	const prefix = `connection error: desc = "transport: authentication handshake failed: `
	for _, tc := range []struct {
		name       string
		err        error
		wantReason string
		wantIn     string
	}{
		{"plaintext endpoint", status.Error(codes.Unavailable, prefix+`tls: first record does not look like a TLS handshake"`),
			v1alpha1.ReasonGatewayUnavailable, "does not speak TLS"},
		{"name mismatch", status.Error(codes.Unavailable, prefix+`tls: failed to verify certificate: x509: certificate is valid for gateway.internal, not localhost"`),
			v1alpha1.ReasonCertificateInvalid, "x509: certificate is valid for gateway.internal, not localhost)"},
		{"IP without IP SANs", status.Error(codes.Unavailable, prefix+`tls: failed to verify certificate: x509: cannot validate certificate for 127.0.0.1 because it doesn't contain any IP SANs"`),
			v1alpha1.ReasonCertificateInvalid, "another name"},
		{"unknown authority", status.Error(codes.Unavailable, prefix+`tls: failed to verify certificate: x509: certificate signed by unknown authority"`),
			v1alpha1.ReasonCertificateInvalid, "ca.crt does not verify"},
		{"client certificate refused", status.Error(codes.Unavailable, `connection error: desc = "error reading server preface: remote error: tls: unknown certificate authority"`),
			v1alpha1.ReasonAuthenticationFailed, "remote error: tls: unknown certificate authority)"},
		{"refused connection is not a handshake failure", status.Error(codes.Unavailable, `connection error: desc = "transport: Error while dialing: dial tcp 127.0.0.1:1: connect: connection refused"`), "", ""},
		{"plain error", errors.New("boom"), "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := handshakeFailure("gw:443", tc.err)
			if tc.wantReason == "" {
				if o != nil {
					t.Fatalf("got %+v, want nil", o)
				}
				return
			}
			if o == nil || o.Reason != tc.wantReason || !strings.Contains(o.Message, tc.wantIn) || o.Stalled {
				t.Fatalf("got %+v, want reason %s (not stalled) with %q", o, tc.wantReason, tc.wantIn)
			}
		})
	}
}
