package app

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/fullstorydev/grpchan/inprocgrpc"
	"google.golang.org/genproto/googleapis/api/httpbody"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// newInProcChannel is how the gateway reaches the services when both share
// this process: grpchan's in-process channel dispatches a call straight to
// the registered handler, through the same interceptor chain as the gRPC
// server (auth, limits, metrics, region, recovery, client address), and
// serves streams; there is no loopback TCP, no HTTP/2 framing and no
// serialization. grpc-gateway's own in-process handlers would skip the
// interceptors and cannot serve streams.
//
// The metadata the gateway sets on the outgoing context arrives as the
// handler's incoming metadata, and headers a handler sets with
// grpc.SetHeader come back through the grpc.Header call option that
// grpc-gateway passes, as they do over a connection.
func newInProcChannel(d serverDeps) *inprocgrpc.Channel {
	unary, stream := interceptors(d)
	ch := new(inprocgrpc.Channel).
		WithServerUnaryInterceptor(chainUnary(unary)).
		WithServerStreamInterceptor(chainStream(stream)).
		WithCloner(protoCloner{})
	if d.tracing {
		ch = ch.WithClientStatsHandler(clientStatsHandler()).WithServerStatsHandler(serverStatsHandler())
	}
	return ch
}

// inProcConn is the gateway's side of the channel. For a call that sends
// one request and streams answers, grpc-go's SendMsg never reports that
// the server already ended the call (the generated client would return
// that error instead of the call's status): RecvMsg gives the status. The
// channel's SendMsg returns io.EOF then, so a stream refused at once (a
// permission check, a stream cap) would reach the gateway as an UNKNOWN
// "EOF", a 500, instead of its own status.
type inProcConn struct{ *inprocgrpc.Channel }

func (c inProcConn) NewStream(ctx context.Context, desc *grpc.StreamDesc, method string, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	cs, err := c.Channel.NewStream(ctx, desc, method, opts...)
	if err != nil || desc.ClientStreams {
		return cs, err
	}
	return serverStreamCall{cs}, nil
}

type serverStreamCall struct{ grpc.ClientStream }

func (s serverStreamCall) SendMsg(m any) error {
	if err := s.ClientStream.SendMsg(m); !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// registrars registers every service on the gRPC server and on the
// in-process channel alike, so the two can never serve different sets.
type registrars []grpc.ServiceRegistrar

func (rs registrars) RegisterService(desc *grpc.ServiceDesc, impl any) {
	for _, r := range rs {
		r.RegisterService(desc, impl)
	}
}

// protoCloner copies messages between the gateway and the handler (they
// run on different goroutines, so they must not share one) with the
// protobuf runtime's own merge: the channel's default cloner goes through
// the legacy APIv1 and a dynamic-message check on every copy.
//
// An HttpBody (redirect and share pages, the canvas board and its PNG)
// shares its bytes instead: services hand out bodies they keep cached for
// every caller and never change once returned, and the gateway only writes
// them out, so copying a 500 KB board per request would buy nothing.
type protoCloner struct{}

func (protoCloner) Copy(out, in any) error {
	if dst, ok := out.(*httpbody.HttpBody); ok {
		if src, ok := in.(*httpbody.HttpBody); ok {
			proto.Reset(dst)
			dst.ContentType, dst.Data, dst.Extensions = src.ContentType, src.Data, src.Extensions
			return nil
		}
	}
	dst, ok1 := out.(proto.Message)
	src, ok2 := in.(proto.Message)
	if !ok1 || !ok2 {
		return fmt.Errorf("in-process copy of %T into %T: not protobuf messages", in, out)
	}
	if dst.ProtoReflect().Descriptor() != src.ProtoReflect().Descriptor() {
		return fmt.Errorf("in-process copy of %T into %T: different messages", in, out)
	}
	proto.Reset(dst)
	proto.Merge(dst, src)
	return nil
}

func (protoCloner) Clone(in any) (any, error) {
	m, ok := in.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("in-process clone of %T: not a protobuf message", in)
	}
	return proto.Clone(m), nil
}

// chainUnary runs interceptors in order around the handler, as
// grpc.ChainUnaryInterceptor does for the server (the channel takes one).
func chainUnary(is []grpc.UnaryServerInterceptor) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		return is[0](ctx, req, info, nextUnary(is, 0, info, h))
	}
}

func nextUnary(is []grpc.UnaryServerInterceptor, cur int, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) grpc.UnaryHandler {
	if cur == len(is)-1 {
		return h
	}
	return func(ctx context.Context, req any) (any, error) {
		return is[cur+1](ctx, req, info, nextUnary(is, cur+1, info, h))
	}
}

// chainStream is chainUnary for streams.
func chainStream(is []grpc.StreamServerInterceptor) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		return is[0](srv, ss, info, nextStream(is, 0, info, h))
	}
}

func nextStream(is []grpc.StreamServerInterceptor, cur int, info *grpc.StreamServerInfo, h grpc.StreamHandler) grpc.StreamHandler {
	if cur == len(is)-1 {
		return h
	}
	return func(srv any, ss grpc.ServerStream) error {
		return is[cur+1](srv, ss, info, nextStream(is, cur+1, info, h))
	}
}
