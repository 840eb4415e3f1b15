// Package wire is the contract between the HTTP edge (gateway) and the gRPC
// services, both ways:
//
//   - in: what the gateway vouches for about the HTTP client (address,
//     country, user agent, referrer) and the HTTP request headers services
//     read (Idempotency-Key, If-None-Match, ...). The server's interceptor
//     resolves it once per call (Interceptors); services read it through
//     FromContext, never from metadata.
//   - out: what a service asks of the HTTP answer (status intent, allowlisted
//     headers), set with SetStatus / SetHeader and mapped once by the
//     gateway (Status, Headers).
//
// Values the gateway forwards are made safe for gRPC metadata once, by
// Encode (percent-encoding), and decoded once here.
package wire

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"unicode"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
)

// Request metadata keys. The gateway sets them itself (never from a
// same-named client header); the ones marked "believed" count only on calls
// that carry the gateway's secret.
const (
	AddrKey      = "x-client-addr"     // believed: the client's IP address
	SecretKey    = "x-gateway-secret"  // the shared secret proving the gateway
	CountryKey   = "x-client-country"  // believed: the CDN's country header
	UserAgentKey = "x-http-user-agent" // the HTTP User-Agent, "" when none was sent
	RefererKey   = "x-http-referer"    // the HTTP Referer
	// RefreshTokenKey carries a refresh token the gateway took from the
	// browser's cookie.
	RefreshTokenKey = "x-refresh-token"
)

// RequestHeaders are the HTTP request headers forwarded to services, with
// their metadata keys. Direct gRPC clients set the same keys.
var RequestHeaders = map[string]string{
	"Idempotency-Key": "idempotency-key",
	"If-None-Match":   "if-none-match",
	"X-Captcha-Token": "x-captcha-token",
}

// Edge is what a call tells about its HTTP client, resolved once per call.
type Edge struct {
	// Addr is the client's address (invalid when unknown): the one the
	// gateway vouches for, else the connection's peer.
	Addr netip.Addr
	// ViaGateway: the call carries the gateway's secret.
	ViaGateway bool
	// UserAgent is the HTTP client's (through the gateway) or the gRPC
	// client's own; printable UTF-8.
	UserAgent string
	// Referer, and the Country the CDN told (through the gateway only).
	Referer, Country string
	// IdempotencyKeys are the Idempotency-Key values (a valid call has at
	// most one).
	IdempotencyKeys []string
	// IfNoneMatch, CaptchaToken and RefreshToken as sent.
	IfNoneMatch, CaptchaToken, RefreshToken string
}

type edgeKey struct{}

// FromContext returns the call's Edge (zero outside a call).
func FromContext(ctx context.Context) Edge {
	e, _ := ctx.Value(edgeKey{}).(Edge)
	return e
}

// WithEdge is for tests and internal calls.
func WithEdge(ctx context.Context, e Edge) context.Context {
	return context.WithValue(ctx, edgeKey{}, e)
}

// Resolve reads an incoming call's Edge. Metadata set by the gateway was
// encoded by Encode and is decoded here. It reads the keys it needs one by
// one: metadata.FromIncomingContext would copy every key and value of the
// call's metadata, on every call.
func Resolve(ctx context.Context, gatewaySecret string) Edge {
	get := func(k string) []string { return metadata.ValueFromIncomingContext(ctx, k) }
	e := Edge{ViaGateway: fromGateway(get(SecretKey), gatewaySecret)}
	val := func(k string) string {
		v := first(get(k))
		if e.ViaGateway {
			v = Decode(v)
		}
		return v
	}
	if e.ViaGateway {
		if a, err := netip.ParseAddr(first(get(AddrKey))); err == nil {
			e.Addr = a.Unmap()
		}
		e.UserAgent, e.Country = val(UserAgentKey), val(CountryKey)
	} else {
		e.UserAgent = first(get("user-agent")) // a direct gRPC client's own
	}
	if !e.Addr.IsValid() {
		e.Addr = peerAddr(ctx)
	}
	e.UserAgent, e.Referer = printable(e.UserAgent), printable(val(RefererKey))
	for _, k := range get(RequestHeaders["Idempotency-Key"]) {
		if e.ViaGateway {
			k = Decode(k)
		}
		e.IdempotencyKeys = append(e.IdempotencyKeys, k)
	}
	e.IfNoneMatch = val(RequestHeaders["If-None-Match"])
	e.CaptchaToken = val(RequestHeaders["X-Captcha-Token"])
	e.RefreshToken = val(RefreshTokenKey)
	return e
}

func first(v []string) string {
	if len(v) > 0 {
		return v[0]
	}
	return ""
}

func peerAddr(ctx context.Context) netip.Addr {
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		if tcp, ok := p.Addr.(*net.TCPAddr); ok {
			if a, ok := netip.AddrFromSlice(tcp.IP); ok {
				return a.Unmap()
			}
		}
	}
	return netip.Addr{}
}

// printable is s as valid UTF-8 without control characters: what may be
// stored as text on every engine (PostgreSQL refuses NUL).
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, ""))
}

// Interceptors resolve every call's Edge (and refuse nothing: an unproven
// call is simply not believed).
type Interceptors struct{ GatewaySecret string }

// Unary is the unary server interceptor.
func (i Interceptors) Unary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		return handler(WithEdge(ctx, Resolve(ctx, i.GatewaySecret)), req)
	}
}

// Stream is the streaming server interceptor.
func (i Interceptors) Stream() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx := WithEdge(ss.Context(), Resolve(ss.Context(), i.GatewaySecret))
		return handler(srv, &stream{ServerStream: ss, ctx: ctx})
	}
}

type stream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *stream) Context() context.Context { return s.ctx }
