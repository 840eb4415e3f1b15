package app

import (
	"net/http"
	"strings"
	"time"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"

	"github.com/apiplatform/platform/gateway"
	"github.com/apiplatform/platform/server/platform/streamlimit"
)

// EdgeConfig bounds what one client can hold open on a replica.
type EdgeConfig struct {
	// HTTPBodyTimeout bounds reading a request body; HTTPWriteTimeout
	// writing a non-streaming answer (0: the gateway's defaults).
	HTTPBodyTimeout, HTTPWriteTimeout time.Duration
	// HTTPReadHeaderTimeout and HTTPIdleTimeout bound reading request
	// headers and idle keep-alive connections (0: 10 s and 2 min).
	HTTPReadHeaderTimeout, HTTPIdleTimeout time.Duration
	// StreamsPerClient and StreamsTotal cap open stream subscriptions per
	// client address (IPv6: per /64) and per replica (0: 50 and 20,000).
	StreamsPerClient, StreamsTotal int
	// GRPCMaxConcurrentStreams bounds the calls open at once on one gRPC
	// connection (0: StreamsTotal + 1,000). A gateway multiplexes all its
	// REST clients over one connection per server, so the bound must fit a
	// gateway's full load; a single direct client is held to far less by
	// StreamsPerClient.
	GRPCMaxConcurrentStreams uint32
	// CORSOrigins may call the REST API from their pages (bearer tokens).
	CORSOrigins []string
}

func (e EdgeConfig) withDefaults() EdgeConfig {
	if e.HTTPReadHeaderTimeout <= 0 {
		e.HTTPReadHeaderTimeout = 10 * time.Second
	}
	if e.HTTPIdleTimeout <= 0 {
		e.HTTPIdleTimeout = 2 * time.Minute
	}
	if e.StreamsPerClient <= 0 {
		e.StreamsPerClient = streamlimit.DefaultPerClient
	}
	if e.StreamsTotal <= 0 {
		e.StreamsTotal = streamlimit.DefaultTotal
	}
	if e.GRPCMaxConcurrentStreams == 0 {
		e.GRPCMaxConcurrentStreams = uint32(e.StreamsTotal) + 1000
	}
	return e
}

// streamLimiter counts every stream but health watches and reflection.
func streamLimiter(e EdgeConfig) *streamlimit.Limiter {
	return streamlimit.New(e.StreamsPerClient, e.StreamsTotal,
		healthpb.Health_Watch_FullMethodName,
		"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
		"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")
}

// transportOptions bound gRPC connections: a cap on concurrent calls per
// connection, and keepalive enforcement (a client pinging more often than
// every 20 s is disconnected; idle connections are closed after 15 min,
// dead peers noticed within a minute).
func transportOptions(e EdgeConfig) []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.MaxConcurrentStreams(e.GRPCMaxConcurrentStreams),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 20 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			MaxConnectionIdle: 15 * time.Minute, Time: 40 * time.Second, Timeout: 20 * time.Second,
		}),
	}
}

// NewHTTPServer configures net/http for long-lived streams: no server-wide
// read or write timeout (they would cut result and pixel streams; the
// gateway sets per-request deadlines instead), bounded header reads and
// idle keep-alives.
func (e EdgeConfig) NewHTTPServer(h http.Handler) *http.Server {
	e = e.withDefaults()
	return &http.Server{Handler: h, ReadHeaderTimeout: e.HTTPReadHeaderTimeout, IdleTimeout: e.HTTPIdleTimeout}
}

// GatewaySettings is the gateway configuration this server implies (its own
// in-process gateway, or a separate one in front of it). Cookies are
// Secure whenever the public URL is https, whatever the flag says: a
// session cookie sent over plain HTTP can be read on the way.
func (c Config) GatewaySettings() gateway.Config {
	var origins []string
	if o := gateway.OriginOf(c.PublicBaseURL); o != "" {
		origins = append(origins, o)
	}
	return gateway.Config{
		GatewaySecret: c.GatewaySecret, TrustedProxies: c.TrustedProxies,
		SecureCookies: c.SecureCookies || SecureURL(c.PublicBaseURL),
		CountryHeader: c.CountryHeader,
		PublicOrigins: origins, CORSOrigins: c.Edge.CORSOrigins,
		BodyTimeout: c.Edge.HTTPBodyTimeout, WriteTimeout: c.Edge.HTTPWriteTimeout,
	}
}

// SecureURL reports whether a public base URL is served over HTTPS.
func SecureURL(u string) bool {
	return strings.HasPrefix(strings.ToLower(strings.TrimSpace(u)), "https://")
}
