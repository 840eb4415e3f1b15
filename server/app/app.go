// Package app assembles the platform: storage, services, the gRPC server and
// the REST gateway in front of it. main runs it; tests start it on loopback
// ports and talk to it over real sockets.
package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/redis/go-redis/extra/redisotel/v9"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	"github.com/apiplatform/platform/gateway"
	"github.com/apiplatform/platform/server/canvas"
	"github.com/apiplatform/platform/server/favorite"
	"github.com/apiplatform/platform/server/identity"
	"github.com/apiplatform/platform/server/platform/auth"
	"github.com/apiplatform/platform/server/platform/bus"
	"github.com/apiplatform/platform/server/platform/cache"
	"github.com/apiplatform/platform/server/platform/epoch"
	"github.com/apiplatform/platform/server/platform/ratelimit"
	"github.com/apiplatform/platform/server/platform/redisconn"
	"github.com/apiplatform/platform/server/platform/telemetry"
	"github.com/apiplatform/platform/server/share"
	"github.com/apiplatform/platform/server/shortener"
	"github.com/apiplatform/platform/server/storage"
	"github.com/apiplatform/platform/server/storage/embedded"
	"github.com/apiplatform/platform/server/storage/sqlstore"
	"github.com/apiplatform/platform/server/vote"
)

// Config of one server process.
type Config struct {
	GRPCAddr string // e.g. "127.0.0.1:9090"; port 0 picks a free one
	HTTPAddr string // e.g. "127.0.0.1:8080"; empty: no REST gateway
	// MetricsAddr serves Prometheus /metrics, apart from the public
	// gateway; empty: not served.
	MetricsAddr string
	DataDir     string // embedded store directory (when DatabaseURL is empty)
	Region      string // the region this process serves from

	// DatabaseURL (postgres:// or postgresql://, PostgreSQL or CockroachDB)
	// selects the SQL store; empty means the embedded store in DataDir.
	DatabaseURL string
	// Database tunes the SQL store's pool and timeouts (URL and Region are
	// filled from the fields above).
	Database sqlstore.Config
	// RedisURL selects Redis for rate limits, caches and the bus; empty
	// means their in-process twins (one replica only).
	RedisURL string

	// PublicBaseURL prefixes links handed to users; default http://<HTTPAddr>.
	PublicBaseURL string
	// AdminUser/AdminPassword, when set, ensure an admin account at start.
	AdminUser, AdminPassword string
	// GatewaySecret authenticates the gateway to the gRPC server; random
	// when empty (fine when both run in this process).
	GatewaySecret string
	// TrustedProxies may set X-Forwarded-For.
	TrustedProxies []netip.Prefix
	SecureCookies  bool
	// CountryHeader is the CDN request header carrying the visitor's
	// country (default CF-IPCountry); the gateway forwards it from trusted
	// proxies only.
	CountryHeader string

	// Edge bounds connections, timeouts and open streams, and lists the
	// origins allowed cross-origin calls.
	Edge EdgeConfig

	Identity  identity.Config
	Favorite  favorite.Config
	Share     share.Config
	Shortener shortener.Config
	Vote      vote.Config
	Canvas    canvas.Config

	// RequestTimeout bounds unary calls without a client deadline (streams
	// are long-lived by design and are not bounded).
	RequestTimeout time.Duration
	// Tracing turns on spans for HTTP, gRPC, database and Redis calls (set
	// when an OTLP endpoint is configured). Off, no tracing middleware runs
	// at all: a no-op tracer still costs allocations on every call.
	Tracing bool
	// ShutdownTimeout bounds a graceful stop before connections are cut.
	ShutdownTimeout time.Duration
	// HealthInterval is how often the health service probes the database
	// and Redis (health.go); 0: 2s.
	HealthInterval time.Duration
	Logger         *slog.Logger

	// HTTPMiddleware, when set, wraps the gateway's handler: the end-to-end
	// tests check every REST answer against the OpenAPI document with it.
	HTTPMiddleware func(http.Handler) http.Handler
}

// Defaults fills unset fields.
func (c *Config) Defaults() {
	if c.GRPCAddr == "" {
		c.GRPCAddr = "127.0.0.1:9090"
	}
	if c.DataDir == "" {
		c.DataDir = "./data"
	}
	if c.Region == "" {
		c.Region = "local"
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = 15 * time.Second
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = 10 * time.Second
	}
	if c.HealthInterval == 0 {
		c.HealthInterval = 2 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.CountryHeader == "" {
		c.CountryHeader = "CF-IPCountry"
	}
	c.Edge = c.Edge.withDefaults()
}

// fillServiceConfigs hands the services the process-wide settings they
// need (set once for the process, not per service).
func (c *Config) fillServiceConfigs() {
	c.Identity.AdminUser, c.Identity.AdminPassword = c.AdminUser, c.AdminPassword
	c.Share.PublicBaseURL = c.PublicBaseURL
	c.Shortener.PublicBaseURL, c.Shortener.Region = c.PublicBaseURL, c.Region
	c.Vote.Region = c.Region
}

// Server is a running platform process.
type Server struct {
	cfg       Config
	log       *slog.Logger
	grpcLn    net.Listener
	httpLn    net.Listener
	metricsLn net.Listener
	grpc      *grpc.Server
	http      *http.Server
	metrics   *http.Server
	health    *health.Server
	checker   *healthChecker
	closers   []func() error
	drains    []func()
	stopOnce  sync.Once
}

// New opens storage, builds every service and binds the listeners. Serve
// starts answering.
func New(ctx context.Context, cfg Config) (_ *Server, err error) {
	cfg.Defaults()
	s := &Server{cfg: cfg, log: cfg.Logger}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	if cfg.GatewaySecret == "" {
		cfg.GatewaySecret = randomSecret()
	}

	st, err := s.openStorage(ctx, cfg)
	if err != nil {
		return nil, err
	}
	limiter, cached, bs, rc, err := s.openRedis(cfg)
	if err != nil {
		return nil, err
	}

	if s.grpcLn, err = net.Listen("tcp", cfg.GRPCAddr); err != nil {
		return nil, err
	}
	if cfg.HTTPAddr != "" {
		if s.httpLn, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
			return nil, err
		}
		if cfg.PublicBaseURL == "" {
			cfg.PublicBaseURL = "http://" + s.httpLn.Addr().String()
		}
	}
	if cfg.MetricsAddr != "" {
		if s.metricsLn, err = net.Listen("tcp", cfg.MetricsAddr); err != nil {
			return nil, err
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", telemetry.MetricsHandler())
		s.metrics = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
			WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}
	}

	cfg.fillServiceConfigs()
	// One cache engine, instrumented per use so that hit ratios are
	// graphed apart (cache_requests_total{cache=...}).
	cacheFor := func(name string) cache.Cache { return cache.Instrument(name, cached, s.log) }
	// Every service is built the same way, one line each; once one fails
	// the later ones are not built (see add).
	a := &assembly{ctx: ctx}
	// The revocation epoch and the favorite epoch are read in one round
	// trip (the second key hash-tagged into the first's Cluster slot).
	var revocationEpoch, favoriteEpoch epoch.Counter
	if rc != nil {
		eps := epoch.NewRedisGroup(rc, "identity:revocation-epoch", "{identity:revocation-epoch}:favorite")
		revocationEpoch, favoriteEpoch = eps[0], eps[1]
	}
	favorites := add(a, favorite.New, favorite.Deps{Store: st, Shares: st, Cache: cacheFor("favorite"), Bus: bs, Epoch: favoriteEpoch, Log: s.log}, cfg.Favorite)
	shares := add(a, share.New, share.Deps{Store: st, Favorites: favorites, Limiter: limiter, Cache: cacheFor("share"), Pages: cacheFor("share_page"), Bus: bs, Redis: rc, Log: s.log}, cfg.Share)
	identities := add(a, identity.New, identity.Deps{Store: st, Favorites: favorites, Limiter: limiter, Bus: bs, Epoch: revocationEpoch, Log: s.log}, cfg.Identity)
	shorteners := add(a, shortener.New, shortener.Deps{Store: st, Cache: cacheFor("shortener"), Bus: bs, Limiter: limiter, Redis: rc, Log: s.log}, cfg.Shortener)
	votes := add(a, vote.New, vote.Deps{Store: st, Users: st, Limiter: limiter, Bus: bs, Redis: rc, Log: s.log}, cfg.Vote)
	canvases := add(a, canvas.New, canvas.Deps{Store: st, Users: st, Redis: rc, Limiter: limiter, Log: s.log}, cfg.Canvas)
	for _, svc := range a.services {
		// Run after the servers stopped: services flush what they buffer.
		s.closers = append(s.closers, svc.Close)
	}
	if a.err != nil {
		return nil, a.err
	}
	// What DeleteAccount erases: every service that keeps personal data.
	identities.EraseWith(favorites, shares, shorteners, votes, canvases)
	// Long-lived streams end when a graceful shutdown begins (they would
	// otherwise hold it for the whole timeout); clients reconnect to
	// another replica.
	s.drains = append(s.drains, canvases.Drain)
	policies := mergePolicies(identity.Policies, favorite.Policies, share.Policies,
		shortener.Policies, vote.Policies, canvas.Policies, publicPolicies, healthPolicies)

	s.health = health.NewServer()
	s.checker = newHealthChecker(s.health, databasePing(st), rc, cfg.HealthInterval, s.log)
	s.closers = append(s.closers, func() error { s.checker.close(); return nil })
	sd := serverDeps{
		log: s.log, region: cfg.Region, gatewaySecret: cfg.GatewaySecret, authn: identities, policies: policies,
		requestTimeout: cfg.RequestTimeout, edge: cfg.Edge, streams: streamLimiter(cfg.Edge), tracing: cfg.Tracing,
	}
	s.grpc = newGRPCServer(sd)
	// The gateway in this process calls the services in process (see
	// newInProcChannel); every service is registered on both.
	inproc := newInProcChannel(sd)
	both := registrars{s.grpc, inproc}
	for _, svc := range a.services {
		svc.Register(both)
	}
	healthpb.RegisterHealthServer(both, s.health)
	reflection.Register(s.grpc)
	telemetry.RPCMetrics.InitializeMetrics(s.grpc)

	if s.httpLn != nil {
		gw, err := gateway.New(ctx, inproc, cfg.GatewaySettings())
		if err != nil {
			return nil, err
		}
		if cfg.HTTPMiddleware != nil {
			gw = cfg.HTTPMiddleware(gw)
		}
		s.http = cfg.Edge.NewHTTPServer(traceHTTP(gw, cfg.Tracing))
	}
	s.cfg = cfg
	return s, nil
}

// openStorage opens the SQL store when a database URL is set, else the
// embedded one.
func (s *Server) openStorage(ctx context.Context, cfg Config) (storage.Engine, error) {
	if cfg.DatabaseURL == "" {
		st, err := embedded.Open(cfg.DataDir)
		if err != nil {
			return nil, fmt.Errorf("open embedded store: %w", err)
		}
		s.closers = append(s.closers, st.Close)
		return st, nil
	}
	dbCfg := cfg.Database
	dbCfg.URL, dbCfg.Region, dbCfg.Tracing = cfg.DatabaseURL, cfg.Region, cfg.Tracing
	st, err := sqlstore.Open(ctx, dbCfg)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	s.closers = append(s.closers, st.Close)
	s.log.Info("database", "engine", st.Engine())
	return st, nil
}

// openRedis returns the rate limiter, the cache engine (instrumented per
// use by the caller), the bus and the raw client (nil in process): Redis-backed
// (shared by every replica) when a Redis URL is set, else in-process. The
// limiter fails open and the cache is bypassed when Redis is down, so a
// Redis outage degrades service instead of failing requests.
func (s *Server) openRedis(cfg Config) (ratelimit.Limiter, cache.Cache, bus.Bus, redis.UniversalClient, error) {
	if cfg.RedisURL == "" {
		bs := bus.NewMemory()
		s.closers = append(s.closers, bs.Close)
		return ratelimit.FailOpen(ratelimit.NewMemory(100_000), s.log),
			cache.NewMemory(100_000), bs, nil, nil
	}
	rc, err := redisconn.New(cfg.RedisURL)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	if cfg.Tracing {
		if err := redisotel.InstrumentTracing(rc); err != nil {
			return nil, nil, nil, nil, err
		}
	}
	s.closers = append(s.closers, rc.Close)
	bs := bus.NewRedis(rc, "bus:", s.log) // the bus routes PUBLISH by Cluster node itself
	s.closers = append(s.closers, bs.Close)
	// The hot paths' single commands (cache reads, rate limits, counters)
	// share pipelines between concurrent calls.
	pc := redisconn.Pipelined(rc)
	return ratelimit.FailOpen(ratelimit.NewRedis(pc), s.log),
		cache.NewRedis(pc, "cache:"), bs, pc, nil
}

// GRPCAddr is the bound gRPC address.
func (s *Server) GRPCAddr() string { return s.grpcLn.Addr().String() }

// HTTPAddr is the bound HTTP address ("" without a gateway).
func (s *Server) HTTPAddr() string {
	if s.httpLn == nil {
		return ""
	}
	return s.httpLn.Addr().String()
}

// MetricsAddr is the bound metrics address ("" when not served).
func (s *Server) MetricsAddr() string {
	if s.metricsLn == nil {
		return ""
	}
	return s.metricsLn.Addr().String()
}

// PublicBaseURL is the prefix of links handed out.
func (s *Server) PublicBaseURL() string { return s.cfg.PublicBaseURL }

// Serve answers until Shutdown; it returns the first serving error.
func (s *Server) Serve() error {
	errc := make(chan error, 3)
	go func() { errc <- s.grpc.Serve(s.grpcLn) }()
	if s.metrics != nil {
		go func() {
			if err := s.metrics.Serve(s.metricsLn); !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		}()
	}
	if s.http != nil {
		go func() {
			if err := s.http.Serve(s.httpLn); !errors.Is(err, http.ErrServerClosed) {
				errc <- err
				return
			}
			errc <- nil
		}()
	}
	s.checker.start()
	s.log.Info("serving", "grpc", s.GRPCAddr(), "http", s.HTTPAddr(), "region", s.cfg.Region)
	return <-errc
}

// Shutdown stops taking new work, lets in-flight calls finish until ctx or
// the configured timeout ends, then cuts what is left and closes storage.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopOnce.Do(func() {
		ctx, cancel := context.WithTimeout(ctx, s.cfg.ShutdownTimeout)
		defer cancel()
		s.health.Shutdown() // readiness fails first, so balancers drain us
		for _, drain := range s.drains {
			drain()
		}
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			done := make(chan struct{})
			go func() { s.grpc.GracefulStop(); close(done) }()
			select {
			case <-done:
			case <-ctx.Done():
				s.grpc.Stop() // ends streams still open
			}
		}()
		if s.http != nil {
			if err := s.http.Shutdown(ctx); err != nil {
				_ = s.http.Close()
			}
		}
		wg.Wait()
		if s.metrics != nil {
			_ = s.metrics.Close()
		}
		s.close()
	})
	return nil
}

func (s *Server) close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		if err := s.closers[i](); err != nil {
			s.log.Warn("close", "err", err)
		}
	}
	s.closers = nil
	if s.grpcLn != nil {
		_ = s.grpcLn.Close()
	}
	if s.httpLn != nil {
		_ = s.httpLn.Close()
	}
	if s.metricsLn != nil {
		_ = s.metricsLn.Close()
	}
}

func mergePolicies(sets ...auth.Policies) auth.Policies {
	out := auth.Policies{}
	for _, set := range sets {
		for k, v := range set {
			out[k] = v
		}
	}
	return out
}

// publicPolicies open the platform's own introspection to everyone.
var publicPolicies = auth.Policies{
	"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo":      auth.Public,
	"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": auth.Public,
}

func randomSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
