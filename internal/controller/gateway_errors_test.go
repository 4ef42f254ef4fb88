package controller

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
)

// TestErrorTable pins the one error model of every kind: each gRPC code's reason, whether it
// stalls, and its retry.
func TestErrorTable(t *testing.T) {
	type row struct {
		Reason  string
		Stalled bool
		Retry   retry
	}
	want := map[codes.Code]row{
		codes.Unavailable:        {v1alpha1.ReasonGatewayUnavailable, false, retryBackoff},
		codes.DeadlineExceeded:   {v1alpha1.ReasonGatewayUnavailable, false, retryBackoff},
		codes.ResourceExhausted:  {v1alpha1.ReasonGatewayUnavailable, false, retryBackoff},
		codes.Aborted:            {v1alpha1.ReasonGatewayUnavailable, false, retryBackoff},
		codes.Internal:           {v1alpha1.ReasonGatewayUnavailable, false, retryBackoff},
		codes.Unknown:            {v1alpha1.ReasonGatewayUnavailable, false, retryBackoff},
		codes.Canceled:           {v1alpha1.ReasonGatewayUnavailable, false, retryBackoff},
		codes.DataLoss:           {v1alpha1.ReasonGatewayUnavailable, false, retryBackoff},
		codes.Unauthenticated:    {v1alpha1.ReasonAuthenticationFailed, false, retryBackoff},
		codes.PermissionDenied:   {v1alpha1.ReasonAuthenticationFailed, false, retryBackoff},
		codes.FailedPrecondition: {v1alpha1.ReasonGatewayRejected, false, retryDependency},
		codes.NotFound:           {v1alpha1.ReasonGatewayRejected, false, retryDependency},
		codes.AlreadyExists:      {v1alpha1.ReasonConflict, false, retryDependency},
		codes.InvalidArgument:    {v1alpha1.ReasonGatewayRejected, true, retryOnChange},
		codes.OutOfRange:         {v1alpha1.ReasonGatewayRejected, true, retryOnChange},
		codes.Unimplemented:      {v1alpha1.ReasonGatewayRejected, true, retryOnChange},
	}
	got := map[codes.Code]row{}
	for code := codes.Canceled; code <= codes.Unauthenticated; code++ {
		f := gatewayFailure("call", status.Error(code, "m"))
		got[code] = row{f.Reason, f.Stalled, f.Retry}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("error table (-want +got):\n%s", diff)
	}
	// A non-gRPC error reads as Unknown; an override wins over the table.
	if f := gatewayFailure("call", fmt.Errorf("plain")); f.Reason != v1alpha1.ReasonGatewayUnavailable || f.Message != "call: plain (Unknown)" {
		t.Fatalf("plain error: %+v", f)
	}
	if f := gatewayFailure("call", withReason(status.Error(codes.FailedPrecondition, "busy"), v1alpha1.ReasonInUse, retryDependency)); f.Reason != v1alpha1.ReasonInUse {
		t.Fatalf("override: %+v", f)
	}
}

// TestDeadlineMessageIsWrittenFromTheCode: however gRPC words a deadline, the condition says
// the same thing, so no message depends on which side of the stream gave up first.
func TestDeadlineMessageIsWrittenFromTheCode(t *testing.T) {
	var msgs []string
	for _, text := range []string{"context deadline exceeded", "stream terminated by RST_STREAM with error code: CANCEL", ""} {
		msgs = append(msgs, gatewayFailure("create sandbox", status.Error(codes.DeadlineExceeded, text)).Message)
	}
	if len(slices.Compact(slices.Clone(msgs))) != 1 {
		t.Fatalf("deadline messages differ: %q", msgs)
	}
}

// TestConditionEvents: Warning only for what went wrong, Normal for notices and recovery,
// nothing for routine progress.
func TestConditionEvents(t *testing.T) {
	tests := []struct {
		before string
		o      outcome
		typ    string
		emit   bool
	}{
		{"", progressing(v1alpha1.ReasonProgressing, ""), "", false},
		{v1alpha1.ReasonProgressing, progressing(v1alpha1.ReasonProvisioning, ""), "", false},
		{v1alpha1.ReasonProvisioning, readyOutcome(""), "", false},
		{v1alpha1.ReasonReady, progressing(v1alpha1.ReasonGatewayUnavailable, ""), "Warning", true},
		{v1alpha1.ReasonGatewayUnavailable, readyOutcome(""), "Normal", true},
		{"", progressing(v1alpha1.ReasonDependencyNotReady, ""), "Normal", true},
		{"", stalled(v1alpha1.ReasonConflict, ""), "Warning", true},
		{"", stalled(v1alpha1.ReasonRecreatePending, ""), "Normal", true},
	}
	for _, tt := range tests {
		typ, emit := conditionEvent(tt.before, tt.o)
		if typ != tt.typ || emit != tt.emit {
			t.Errorf("%s -> %s: got (%q, %v), want (%q, %v)", tt.before, tt.o.Reason, typ, emit, tt.typ, tt.emit)
		}
	}
}

// errorTableMarkdown renders the error table as docs/troubleshooting.md prints it.
func errorTableMarkdown() string {
	var b strings.Builder
	b.WriteString("| gRPC code | reason | Stalled | retried |\n|---|---|---|---|\n")
	codesInOrder := make([]codes.Code, 0, len(errorTable))
	for c := range errorTable {
		codesInOrder = append(codesInOrder, c)
	}
	slices.Sort(codesInOrder)
	for _, c := range codesInOrder {
		r := errorTable[c]
		st := "no"
		if r.Retry == retryOnChange {
			st = "yes"
		}
		fmt.Fprintf(&b, "| %s | `%s` | %s | %s |\n", c, r.Reason, st, r.Retry)
	}
	return b.String()
}

// TestErrorTableIsDocumented keeps docs/troubleshooting.md's error table in step with the code.
func TestErrorTableIsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/troubleshooting.md")
	if err != nil {
		t.Fatal(err)
	}
	if want := errorTableMarkdown(); !strings.Contains(string(doc), want) {
		t.Fatalf("docs/troubleshooting.md must contain the error table exactly as the code has it:\n\n%s", want)
	}
}
