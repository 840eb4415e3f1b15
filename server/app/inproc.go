package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sync"

	"github.com/fullstorydev/grpchan/inprocgrpc"
	"google.golang.org/genproto/googleapis/api/httpbody"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
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
func newInProcChannel(d serverDeps) *inProcConn {
	unary, stream := interceptors(d)
	intercept := chainUnary(unary)
	c := &inProcConn{Channel: new(inprocgrpc.Channel).
		WithServerUnaryInterceptor(intercept).
		WithServerStreamInterceptor(chainStream(stream)).
		WithCloner(protoCloner{}),
		intercept: intercept,
	}
	if d.tracing {
		c.Channel = c.Channel.WithClientStatsHandler(clientStatsHandler()).WithServerStatsHandler(serverStatsHandler())
	} else {
		c.unary = map[string]inProcMethod{}
	}
	return c
}

// inProcConn is the gateway's side of the channel.
//
// A unary call runs its handler on the caller's goroutine (Invoke): the
// channel's own Invoke starts a goroutine per call and hands the answer
// back over a channel, which on a redirect cost more than the service's
// own work (a fresh stack grown on every call, a select, the channel's
// frames). The handler sees what it sees through the channel: none of
// the caller's context values, the caller's outgoing metadata as its
// incoming metadata, an in-process peer, and a transport stream whose
// headers and trailers come back through the grpc.Header and
// grpc.Trailer call options grpc-gateway passes. While tracing is on,
// unary calls go through the channel, whose stats handlers trace them.
//
// For a call that sends one request and streams answers, grpc-go's
// SendMsg never reports that the server already ended the call (the
// generated client would return that error instead of the call's
// status): RecvMsg gives the status. The channel's SendMsg returns io.EOF
// then, so a stream refused at once (a permission check, a stream cap)
// would reach the gateway as an UNKNOWN "EOF", a 500, instead of its own
// status.
type inProcConn struct {
	*inprocgrpc.Channel
	// unary is every unary method by full name; nil while tracing.
	unary     map[string]inProcMethod
	intercept grpc.UnaryServerInterceptor
}

type inProcMethod struct {
	impl    any
	handler grpc.MethodHandler
}

// RegisterService registers on the channel (streams, and unary calls
// while tracing) and keeps the unary methods for Invoke.
func (c *inProcConn) RegisterService(desc *grpc.ServiceDesc, impl any) {
	c.Channel.RegisterService(desc, impl)
	if c.unary == nil {
		return
	}
	for _, m := range desc.Methods {
		c.unary["/"+desc.ServiceName+"/"+m.MethodName] = inProcMethod{impl, m.Handler}
	}
}

func (c *inProcConn) Invoke(ctx context.Context, method string, req, resp any, opts ...grpc.CallOption) error {
	m, ok := c.unary[method]
	if !ok {
		return c.Channel.Invoke(ctx, method, req, resp, opts...)
	}
	// The call's context ends when it returns, as a gRPC server's does.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ts := &unaryTransportStream{method: method}
	v, err := m.handler(m.impl, serverContext(ctx, ts), func(in any) error {
		return protoCloner{}.Copy(in, req)
	}, c.intercept)
	header, trailer := ts.finish()
	for _, o := range opts {
		switch o := o.(type) {
		case grpc.HeaderCallOption:
			*o.HeaderAddr = header
		case grpc.TrailerCallOption:
			*o.TrailerAddr = trailer
		case grpc.PeerCallOption:
			*o.PeerAddr = inProcPeer
		}
	}
	if err != nil {
		// A gRPC server answers an error that is not a status (a context's,
		// say) with the status it stands for; so does this.
		if _, ok := status.FromError(err); !ok {
			err = status.FromContextError(err).Err()
		}
		return err
	}
	if v == nil || reflect.ValueOf(v).IsNil() {
		return status.Error(codes.Internal, "handler returned neither error nor response message")
	}
	return protoCloner{}.Copy(resp, v)
}

func (c *inProcConn) NewStream(ctx context.Context, desc *grpc.StreamDesc, method string, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	cs, err := c.Channel.NewStream(ctx, desc, method, opts...)
	if err != nil || desc.ClientStreams {
		return cs, err
	}
	return serverStreamCall{cs}, nil
}

var inProcPeer = peer.Peer{Addr: inProcAddr{}}

type inProcAddr struct{}

func (inProcAddr) Network() string { return "inproc" }
func (inProcAddr) String() string  { return "0" }

// serverContext is the handler's context for a call from ctx: its
// deadline and cancellation, none of its values (the gateway's must not
// leak into the service), and its outgoing metadata as incoming.
func serverContext(ctx context.Context, ts grpc.ServerTransportStream) context.Context {
	out := context.Context(noValues{ctx})
	if md, ok := metadata.FromOutgoingContext(ctx); ok {
		out = metadata.NewIncomingContext(out, md)
	}
	out = peer.NewContext(out, &inProcPeer)
	return grpc.NewContextWithServerTransportStream(out, ts)
}

// noValues passes on a context's deadline and cancellation, not its values.
type noValues struct{ context.Context }

func (noValues) Value(any) any { return nil }

// unaryTransportStream collects what a unary handler sets with
// grpc.SetHeader, grpc.SendHeader and grpc.SetTrailer.
type unaryTransportStream struct {
	method string

	mu              sync.Mutex
	header, trailer metadata.MD
	done            bool
}

func (s *unaryTransportStream) Method() string { return s.method }

func (s *unaryTransportStream) SetHeader(md metadata.MD) error { return s.add(&s.header, md) }

// SendHeader adds md; the headers go out when the handler returns.
func (s *unaryTransportStream) SendHeader(md metadata.MD) error { return s.add(&s.header, md) }

func (s *unaryTransportStream) SetTrailer(md metadata.MD) error { return s.add(&s.trailer, md) }

func (s *unaryTransportStream) add(to *metadata.MD, md metadata.MD) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return errors.New("the call has ended")
	}
	*to = appendMD(*to, md)
	return nil
}

// appendMD adds md's values to to's, as a gRPC server's transport does:
// the handler's md may be shared and is only read.
func appendMD(to, md metadata.MD) metadata.MD {
	if to == nil {
		to = make(metadata.MD, len(md))
	}
	for k, v := range md {
		if to[k] == nil {
			// Shared, clipped: a later append copies instead of writing
			// into the handler's array.
			to[k] = v[:len(v):len(v)]
		} else {
			to[k] = append(to[k], v...)
		}
	}
	return to
}

func (s *unaryTransportStream) finish() (header, trailer metadata.MD) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.done = true
	return s.header, s.trailer
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

// protoCloner copies messages between the gateway and the handler (on a
// stream they run on different goroutines, and a handler may keep what it
// returns, so the two never share one) with the
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
