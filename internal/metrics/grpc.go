package metrics

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	inferencev1 "github.com/openshell-operator/openshell-operator/gen/openshell/inference/v1"
	openshellv1 "github.com/openshell-operator/openshell-operator/gen/openshell/v1"
)

// OtherMethod is the method label of an RPC outside the gateway's services (never expected:
// it keeps the label's values bounded whatever a caller invokes).
const OtherMethod = "other"

// knownMethods maps the full name of every RPC of the gateway services ("/openshell.v1.
// OpenShell/CreateSandbox") to its short name ("CreateSandbox").
var knownMethods = func() map[string]string {
	out := map[string]string{}
	for _, sd := range []grpc.ServiceDesc{openshellv1.OpenShell_ServiceDesc, inferencev1.Inference_ServiceDesc} {
		for _, m := range sd.Methods {
			out["/"+sd.ServiceName+"/"+m.MethodName] = m.MethodName
		}
		for _, s := range sd.Streams {
			out["/"+sd.ServiceName+"/"+s.StreamName] = s.StreamName
		}
	}
	return out
}()

// MethodLabel returns the short RPC name of a full gRPC method name, or OtherMethod.
func MethodLabel(fullMethod string) string {
	if m, ok := knownMethods[fullMethod]; ok {
		return m
	}
	return OtherMethod
}

// DialOptions returns the gRPC dial options that record openshell_gateway_rpc_duration_seconds
// and openshell_gateway_rpc_errors_total for every call on a connection to gateway (a
// GatewayConnection name); pass them to gateway.WithDialOptions.
func DialOptions(gateway string) []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithChainUnaryInterceptor(UnaryClientInterceptor(gateway)),
		grpc.WithChainStreamInterceptor(StreamClientInterceptor(gateway)),
	}
}

// UnaryClientInterceptor records the duration and status code of each unary call.
func UnaryClientInterceptor(gateway string) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		start := time.Now()
		err := invoker(ctx, method, req, reply, cc, opts...)
		observe(ctx, gateway, method, err, time.Since(start))
		return err
	}
}

// StreamClientInterceptor records each stream once, when it ends: read to its end (code OK),
// failed (the stream's code), or cancelled by the caller (Canceled or DeadlineExceeded).
// Its duration is the stream's lifetime. A stream the caller abandons without reading its
// end or cancelling its context is not recorded.
func StreamClientInterceptor(gateway string) grpc.StreamClientInterceptor {
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		start := time.Now()
		cs, err := streamer(ctx, desc, cc, method, opts...)
		if err != nil {
			observe(ctx, gateway, method, err, time.Since(start))
			return nil, err
		}
		s := &monitoredStream{ClientStream: cs, serverStreams: desc.ServerStreams}
		s.finish = func(err error) {
			s.once.Do(func() { observe(ctx, gateway, method, err, time.Since(start)) })
		}
		// The stream's context ends with the stream; only a caller's cancellation is recorded
		// here, a normal end is recorded by RecvMsg.
		context.AfterFunc(cs.Context(), func() {
			if ctx.Err() != nil {
				s.finish(status.FromContextError(ctx.Err()).Err())
			}
		})
		return s, nil
	}
}

// monitoredStream reports the end of a client stream once.
type monitoredStream struct {
	grpc.ClientStream
	serverStreams bool
	once          sync.Once
	finish        func(error)
}

// RecvMsg reads a message and records the stream's end when this read ends it.
func (s *monitoredStream) RecvMsg(m any) error {
	err := s.ClientStream.RecvMsg(m)
	switch {
	case err == nil:
		if !s.serverStreams {
			// Client-streaming: the single response ends the call.
			s.finish(nil)
		}
	case errors.Is(err, io.EOF):
		s.finish(nil)
	default:
		s.finish(err)
	}
	return err
}

// observe records one finished call.
func observe(ctx context.Context, gateway, fullMethod string, err error, d time.Duration) {
	code := status.Code(err)
	method := MethodLabel(fullMethod)
	rpcDuration.WithLabelValues(gateway, method, code.String()).Observe(d.Seconds())
	if code == codes.OK || (code == codes.Canceled && ctx.Err() != nil) {
		return
	}
	rpcErrors.WithLabelValues(gateway, method, code.String()).Inc()
}
