package app

import (
	"context"
	"errors"
	"net"
	"net/http"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/apiplatform/platform/gateway"
)

// GatewayConfig is a REST gateway run apart from the servers (`server
// gateway`), for deployments that scale the edge on its own.
type GatewayConfig struct {
	// Upstream is the servers' gRPC address, e.g.
	// dns:///platform-server-headless:9090.
	Upstream string
	// HTTPAddr is where to listen, unless Listener is set (tests bind
	// first to learn the address the servers hand out in links).
	HTTPAddr string
	Listener net.Listener
	Gateway  gateway.Config
	// HTTPMiddleware: see Config.HTTPMiddleware.
	HTTPMiddleware func(http.Handler) http.Handler
	// Edge bounds the HTTP listener as for the servers' own gateway.
	Edge EdgeConfig
	// Tracing: see Config.Tracing.
	Tracing bool
}

// Gateway is a running separate gateway: REST in front of a real gRPC
// connection to remote servers.
type Gateway struct {
	conn *grpc.ClientConn
	ln   net.Listener
	http *http.Server
}

// NewGateway dials the upstream (lazily: servers may start later) and
// binds the listener. Serve starts answering.
func NewGateway(ctx context.Context, cfg GatewayConfig) (*Gateway, error) {
	if cfg.Gateway.GatewaySecret == "" {
		return nil, errors.New("a gateway secret is required: the servers must be able to trust the client addresses this gateway forwards")
	}
	// Round robin over every address the upstream name resolves to, so
	// calls spread over all servers instead of pinning one connection to
	// one pod.
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"round_robin":{}}]}`),
	}
	if cfg.Tracing {
		opts = append(opts, grpc.WithStatsHandler(clientStatsHandler()))
	}
	conn, err := grpc.NewClient(cfg.Upstream, opts...)
	if err != nil {
		return nil, err
	}
	h, err := gateway.New(ctx, conn, cfg.Gateway)
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	if cfg.HTTPMiddleware != nil {
		h = cfg.HTTPMiddleware(h)
	}
	ln := cfg.Listener
	if ln == nil {
		if ln, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
			_ = conn.Close()
			return nil, err
		}
	}
	return &Gateway{conn: conn, ln: ln, http: cfg.Edge.NewHTTPServer(traceHTTP(h, cfg.Tracing))}, nil
}

// Addr is the bound HTTP address.
func (g *Gateway) Addr() string { return g.ln.Addr().String() }

// Serve answers until Shutdown.
func (g *Gateway) Serve() error {
	if err := g.http.Serve(g.ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Shutdown lets in-flight requests finish until ctx ends, then cuts them,
// and closes the upstream connection.
func (g *Gateway) Shutdown(ctx context.Context) error {
	err := g.http.Shutdown(ctx)
	if err != nil {
		_ = g.http.Close()
	}
	return errors.Join(err, g.conn.Close())
}

// HTTPHandler is the REST gateway's handler (nil without one), for
// in-process benchmarks that measure a request without a socket.
func (s *Server) HTTPHandler() http.Handler {
	if s.http == nil {
		return nil
	}
	return s.http.Handler
}
