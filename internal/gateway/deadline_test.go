package gateway

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestCutByDeadline(t *testing.T) {
	withDeadline := func() context.Context {
		ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
		t.Cleanup(cancel)
		return ctx
	}
	expired := func() context.Context {
		ctx, cancel := context.WithTimeout(context.Background(), -time.Second)
		t.Cleanup(cancel)
		return ctx
	}
	cancelled := func() context.Context {
		ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
		cancel()
		return ctx
	}
	reset := status.Error(codes.Canceled, "stream terminated by RST_STREAM with error code: CANCEL")
	for _, tc := range []struct {
		name string
		ctx  context.Context
		err  error
		want bool
	}{
		{"server reset before the client's timer", withDeadline(), reset, true},
		{"reset after the deadline passed", expired(), reset, true},
		{"another error after the deadline passed", expired(), status.Error(codes.Internal, "x"), true},
		{"already DeadlineExceeded", expired(), status.Error(codes.DeadlineExceeded, "x"), false},
		{"the caller cancelled", cancelled(), reset, false},
		{"no deadline", context.Background(), reset, false},
		{"an error within the deadline", withDeadline(), status.Error(codes.Unavailable, "x"), false},
		{"success", withDeadline(), nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := cutByDeadline(tc.ctx, tc.err); got != tc.want {
				t.Fatalf("cutByDeadline = %v, want %v", got, tc.want)
			}
		})
	}
}
