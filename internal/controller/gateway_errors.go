package controller

import (
	"errors"
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
	"github.com/openshell-operator/openshell-operator/internal/gateway"
)

// retry says how the kernel requeues a failed reconcile.
type retry int

const (
	// retryBackoff: per-object exponential backoff (a failed call: outage, race, overload).
	retryBackoff retry = iota
	// retryDependency: look again after the dependency interval (something else must change
	// first, and may change by itself: a provider created, GPU capacity freed).
	retryDependency
	// retryOnChange: Stalled; only a change to the object (or what it references) helps,
	// and that change re-enqueues it.
	retryOnChange
)

// String names the retry as docs/troubleshooting.md prints it.
func (r retry) String() string {
	switch r {
	case retryBackoff:
		return "exponential backoff (500ms doubling to 5m)"
	case retryDependency:
		return "every dependency interval (30s)"
	default:
		return "Stalled: after a change to the resource"
	}
}

// errorRule is one row of the error table.
type errorRule struct {
	Reason string
	Retry  retry
}

// errorTable maps every gRPC code the gateway answers with to a condition reason and a retry:
// the single error model of every kind. Printed in docs/troubleshooting.md (kept in step by
// TestErrorTableIsDocumented). Codes not listed read as codes.Unknown.
var errorTable = map[codes.Code]errorRule{
	// The gateway is down, slow, overloaded or raced us: it will pass.
	codes.Unavailable:       {v1alpha1.ReasonGatewayUnavailable, retryBackoff},
	codes.DeadlineExceeded:  {v1alpha1.ReasonGatewayUnavailable, retryBackoff},
	codes.ResourceExhausted: {v1alpha1.ReasonGatewayUnavailable, retryBackoff},
	codes.Aborted:           {v1alpha1.ReasonGatewayUnavailable, retryBackoff},
	codes.Internal:          {v1alpha1.ReasonGatewayUnavailable, retryBackoff},
	codes.Unknown:           {v1alpha1.ReasonGatewayUnavailable, retryBackoff},
	codes.Canceled:          {v1alpha1.ReasonGatewayUnavailable, retryBackoff},
	codes.DataLoss:          {v1alpha1.ReasonGatewayUnavailable, retryBackoff},
	// Credentials are rotated in Secrets, without a change to the resource: keep trying.
	codes.Unauthenticated:  {v1alpha1.ReasonAuthenticationFailed, retryBackoff},
	codes.PermissionDenied: {v1alpha1.ReasonAuthenticationFailed, retryBackoff},
	// Refused for a state that can change by itself (a provider missing on the gateway, GPU
	// capacity, an endpoint that failed verification, an object still in use).
	codes.FailedPrecondition: {v1alpha1.ReasonGatewayRejected, retryDependency},
	codes.NotFound:           {v1alpha1.ReasonGatewayRejected, retryDependency},
	codes.AlreadyExists:      {v1alpha1.ReasonConflict, retryDependency},
	// Refused for what the resource says: only a spec change helps.
	codes.InvalidArgument: {v1alpha1.ReasonGatewayRejected, retryOnChange},
	codes.OutOfRange:      {v1alpha1.ReasonGatewayRejected, retryOnChange},
	codes.Unimplemented:   {v1alpha1.ReasonGatewayRejected, retryOnChange},
}

// failure is a classified error of one reconcile.
type failure struct {
	outcome
	Retry retry
}

// failed builds a failure that is not a gateway answer (a dependency, a bad Secret).
func failed(reason, msg string, r retry) *failure {
	return &failure{outcome: outcome{Reason: reason, Message: msg, Stalled: r == retryOnChange}, Retry: r}
}

// reasonedError carries a reason a kind gives a gateway answer it understands better than
// the table (a FAILED_PRECONDITION of a policy update means a global policy is active).
type reasonedError struct {
	reason string
	retry  retry
	err    error
}

func (e *reasonedError) Error() string { return e.err.Error() }
func (e *reasonedError) Unwrap() error { return e.err }

// withReason overrides the table's row for err; nil stays nil.
func withReason(err error, reason string, r retry) error {
	if err == nil {
		return nil
	}
	return &reasonedError{reason: reason, retry: r, err: err}
}

// gatewayFailure classifies a failed gateway call: the table's row for its code (or a
// kind's override), with a message "<what>: <the gateway's message> (<Code>)". Messages of
// transport-level codes are written here rather than taken from gRPC, whose text for the
// same event varies with timing ("context deadline exceeded", "stream terminated by
// RST_STREAM ...").
func gatewayFailure(what string, err error) *failure {
	code := gateway.Code(err)
	rule, ok := errorTable[code]
	if !ok {
		code, rule = codes.Unknown, errorTable[codes.Unknown]
	}
	var re *reasonedError
	if errors.As(err, &re) {
		rule = errorRule{Reason: re.reason, Retry: re.retry}
	}
	msg := gatewayMessage(code, err)
	return &failure{
		outcome: outcome{Reason: rule.Reason, Stalled: rule.Retry == retryOnChange,
			Message: fmt.Sprintf("%s: %s (%s)", what, msg, code)},
		Retry: rule.Retry,
	}
}

// gatewayMessage is the text shown for a gateway error.
func gatewayMessage(code codes.Code, err error) string {
	switch code {
	case codes.DeadlineExceeded:
		return "the gateway did not answer within the GatewayConnection's spec.timeout"
	case codes.Canceled:
		return "the call was cancelled"
	}
	msg := strings.TrimSpace(gateway.Message(err))
	if msg == "" {
		msg = "no message"
	}
	return msg
}

// fromOutcome is the failure of a pure check's outcome (a bad Secret, an invalid spec):
// Stalled ones wait for a change, the rest wait on their dependency.
func fromOutcome(o *outcome) *failure {
	r := retryDependency
	if o.Stalled {
		r = retryOnChange
	}
	return &failure{outcome: *o, Retry: r}
}
