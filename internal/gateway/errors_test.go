package gateway_test

import (
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/openshell-operator/openshell-operator/internal/gateway"
)

func TestErrorHelpersSeeThroughWrapping(t *testing.T) {
	cases := []struct {
		code      codes.Code
		is        func(error) bool
		retryable bool
	}{
		{codes.NotFound, gateway.IsNotFound, false},
		{codes.AlreadyExists, gateway.IsAlreadyExists, false},
		{codes.InvalidArgument, gateway.IsInvalidArgument, false},
		{codes.FailedPrecondition, gateway.IsFailedPrecondition, false},
		{codes.Aborted, gateway.IsConflict, true},
		{codes.Unavailable, gateway.IsUnavailable, true},
		{codes.Unauthenticated, gateway.IsUnauthenticated, false},
		{codes.PermissionDenied, gateway.IsPermissionDenied, false},
		{codes.Internal, func(err error) bool { return gateway.Code(err) == codes.Internal }, true},
		{codes.DeadlineExceeded, func(err error) bool { return gateway.Code(err) == codes.DeadlineExceeded }, true},
	}
	for _, tc := range cases {
		t.Run(tc.code.String(), func(t *testing.T) {
			err := fmt.Errorf("outer: %w", fmt.Errorf("get sandbox %q: %w", "x", status.Error(tc.code, "the gateway said so")))
			if !tc.is(err) || gateway.Code(err) != tc.code {
				t.Fatalf("helper does not see %v through wrapping", tc.code)
			}
			if gateway.IsRetryable(err) != tc.retryable {
				t.Fatalf("IsRetryable(%v) = %v", tc.code, !tc.retryable)
			}
			if gateway.Message(err) != "the gateway said so" {
				t.Fatalf("Message should return the gateway's message, got %q", gateway.Message(err))
			}
		})
	}
	if gateway.IsRetryable(nil) || gateway.Code(nil) != codes.OK {
		t.Fatal("nil is not an error")
	}
}
