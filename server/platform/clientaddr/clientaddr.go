// Package clientaddr tells services the address of the client behind a call.
//
// A direct gRPC client's address is the connection's peer address. Calls
// that come through our gateway carry the end client's address in the
// x-client-addr metadata, and it is believed only when the call also carries
// the gateway's shared secret: anyone else could write that metadata too.
package clientaddr

import (
	"context"
	"crypto/subtle"
	"net"
	"net/netip"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
)

// Metadata keys set by the gateway.
const (
	AddrKey   = "x-client-addr"
	SecretKey = "x-gateway-secret"
)

type addrKey struct{}

// FromContext returns the client's address (invalid when unknown).
func FromContext(ctx context.Context) netip.Addr {
	a, _ := ctx.Value(addrKey{}).(netip.Addr)
	return a
}

// WithAddr is for tests and internal calls.
func WithAddr(ctx context.Context, a netip.Addr) context.Context {
	return context.WithValue(ctx, addrKey{}, a)
}

// knownSecret reports whether got is one of the comma-separated secrets:
// during a rotation servers accept the old and the new one while gateways
// move over (gateways send the first of theirs, see SendSecret).
func knownSecret(got, secrets string) bool {
	ok := false
	for _, s := range strings.Split(secrets, ",") {
		if s = strings.TrimSpace(s); s != "" && subtle.ConstantTimeCompare([]byte(got), []byte(s)) == 1 {
			ok = true
		}
	}
	return ok
}

// FromGateway reports whether md carries one of the gateway secrets, i.e.
// what else the gateway put in it may be believed.
func FromGateway(md metadata.MD, secrets string) bool {
	s := md.Get(SecretKey)
	return len(s) == 1 && knownSecret(s[0], secrets)
}

// SendSecret is the secret a gateway sends: the first of a comma-separated
// list.
func SendSecret(secrets string) string {
	first, _, _ := strings.Cut(secrets, ",")
	return strings.TrimSpace(first)
}

// Resolve finds the client address of an incoming call.
func Resolve(ctx context.Context, gatewaySecret string) netip.Addr {
	md, _ := metadata.FromIncomingContext(ctx)
	if FromGateway(md, gatewaySecret) {
		if v := md.Get(AddrKey); len(v) == 1 {
			if a, err := netip.ParseAddr(v[0]); err == nil {
				return a.Unmap()
			}
		}
	}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		if tcp, ok := p.Addr.(*net.TCPAddr); ok {
			if a, ok := netip.AddrFromSlice(tcp.IP); ok {
				return a.Unmap()
			}
		}
	}
	return netip.Addr{}
}

// Interceptors attach the client address to every call's context.
type Interceptors struct{ GatewaySecret string }

// Unary is the unary server interceptor.
func (i Interceptors) Unary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		return handler(WithAddr(ctx, Resolve(ctx, i.GatewaySecret)), req)
	}
}

// Stream is the streaming server interceptor.
func (i Interceptors) Stream() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx := WithAddr(ss.Context(), Resolve(ss.Context(), i.GatewaySecret))
		return handler(srv, &stream{ServerStream: ss, ctx: ctx})
	}
}

type stream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *stream) Context() context.Context { return s.ctx }
