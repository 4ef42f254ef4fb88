package gateway

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

func metadataAppend(ctx context.Context, k, v string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, k, v)
}

// wrap prefixes a gRPC error with the operation; status.FromError still sees the code
// through the wrapping.
func wrap(err error, format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, err)...)
}

// Code returns the gRPC code of err (codes.OK for nil, codes.Unknown for non-gRPC errors,
// DeadlineExceeded/Canceled for context errors).
func Code(err error) codes.Code {
	if err == nil {
		return codes.OK
	}
	if s, ok := status.FromError(err); ok {
		return s.Code()
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return codes.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		return codes.Canceled
	}
	return codes.Unknown
}

// Message returns the gateway's own message of a gRPC error (without our operation prefix).
func Message(err error) string {
	// status.FromError on a wrapped error reports the whole chain's text; the gateway's own
	// message is on the innermost status.
	var se interface{ GRPCStatus() *status.Status }
	if errors.As(err, &se) {
		return se.GRPCStatus().Message()
	}
	if err == nil {
		return ""
	}
	return err.Error()
}

// IsNotFound reports a NOT_FOUND answer.
func IsNotFound(err error) bool { return Code(err) == codes.NotFound }

// IsAlreadyExists reports an ALREADY_EXISTS answer.
func IsAlreadyExists(err error) bool { return Code(err) == codes.AlreadyExists }

// IsInvalidArgument reports an INVALID_ARGUMENT answer.
func IsInvalidArgument(err error) bool { return Code(err) == codes.InvalidArgument }

// IsFailedPrecondition reports a FAILED_PRECONDITION answer.
func IsFailedPrecondition(err error) bool { return Code(err) == codes.FailedPrecondition }

// IsConflict reports an ABORTED answer: a resource-version (compare-and-swap) conflict.
func IsConflict(err error) bool { return Code(err) == codes.Aborted }

// IsUnavailable reports an UNAVAILABLE answer or a failed connection.
func IsUnavailable(err error) bool { return Code(err) == codes.Unavailable }

// IsUnauthenticated reports an UNAUTHENTICATED answer.
func IsUnauthenticated(err error) bool { return Code(err) == codes.Unauthenticated }

// IsPermissionDenied reports a PERMISSION_DENIED answer.
func IsPermissionDenied(err error) bool { return Code(err) == codes.PermissionDenied }

// IsRetryable reports errors worth retrying with backoff: the gateway was unreachable, slow,
// raced, or failed internally.
func IsRetryable(err error) bool {
	switch Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Aborted, codes.Internal, codes.ResourceExhausted, codes.Unknown:
		return err != nil
	}
	return false
}
