// Command server runs the platform: every gRPC service and the REST gateway
// in one process, on the embedded store unless told a database.
//
//	go run ./server                 # gRPC on :9090, REST on :8080, data in ./data
//	go run ./server gateway --upstream host:9090   # REST gateway alone
//	go run ./server migrate --database-url postgres://...   # schema only
//
// Every flag has an environment fallback (--grpc-addr / GRPC_ADDR, ...).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/apiplatform/platform/gateway"
	"github.com/apiplatform/platform/server/app"
	"github.com/apiplatform/platform/server/platform/telemetry"
	"github.com/apiplatform/platform/server/storage/sqlstore"
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	slog.SetDefault(log)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	args := os.Args[1:]
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "serve":
		err = serve(ctx, log, args)
	case "gateway":
		err = runGateway(ctx, log, args)
	case "migrate":
		err = migrate(ctx, log, args)
	default:
		err = fmt.Errorf("unknown command %q (want serve, gateway or migrate)", cmd)
	}
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		log.Error("exit", "err", err)
		os.Exit(1)
	}
}

// flags wraps a FlagSet whose defaults come from the environment. A bad
// environment value is kept in bad and refused by parse, naming the variable,
// its flag and the value, rather than silently falling back to the default.
type flags struct {
	*flag.FlagSet
	bad *[]error
}

func newFlags(name string) flags {
	return flags{flag.NewFlagSet(name, flag.ContinueOnError), new([]error)}
}

// parse parses args, then refuses any bad environment value seen while the
// flags were registered.
func (f flags) parse(args []string) error {
	if err := f.Parse(args); err != nil {
		return err
	}
	return errors.Join(*f.bad...)
}

// fromEnv sets flag name from env when it is set and not empty, through the
// flag's own parser, so an environment value is read exactly as the flag
// would be. The value becomes the default shown by -h.
func (f flags) fromEnv(name, env string) {
	v, ok := os.LookupEnv(env)
	if !ok || v == "" {
		return
	}
	if err := f.Set(name, v); err != nil {
		*f.bad = append(*f.bad, fmt.Errorf("env %s=%q (flag --%s): %w", env, v, name, err))
		return
	}
	f.Lookup(name).DefValue = v
}

func (f flags) str(p *string, name, env, def, usage string) {
	if v, ok := os.LookupEnv(env); ok {
		def = v // an empty value is meaningful here (e.g. --http-addr "": none)
	}
	f.StringVar(p, name, def, usage+" (env "+env+")")
}

func (f flags) boolean(p *bool, name, env string, usage string) {
	f.BoolVar(p, name, false, usage+" (env "+env+")")
	f.fromEnv(name, env)
}

func (f flags) duration(p *time.Duration, name, env string, def time.Duration, usage string) {
	f.DurationVar(p, name, def, usage+" (env "+env+")")
	f.fromEnv(name, env)
}

func (f flags) integer(p *int32, name, env string, def int32, usage string) {
	*p = def
	f.Func(name, fmt.Sprintf("%s (env %s) (default %d)", usage, env, def), func(s string) error {
		n, err := strconv.ParseInt(s, 10, 32)
		if err != nil {
			return errors.New("want an integer")
		}
		*p = int32(n)
		return nil
	})
	f.fromEnv(name, env)
}

// countryHeader registers the one name of the country header setting,
// shared by serve and gateway.
func (f flags) countryHeader(p *string) {
	f.str(p, "country-header", "COUNTRY_HEADER", "CF-IPCountry", "CDN request header with the visitor's country, believed from trusted proxies only")
}

// database registers the SQL store's flags; finish fills cfg after Parse.
func (f flags) database(cfg *sqlstore.Config, url, region *string) (finish func() error) {
	var regions string
	f.str(url, "database-url", "DATABASE_URL", "", "postgres:// or postgresql:// URL of CockroachDB or PostgreSQL (empty: embedded store)")
	f.str(region, "region", "REGION", "local", "region this process serves from")
	f.str(&regions, "regions", "DB_REGIONS", "", "CockroachDB database regions, primary first, comma-separated (multi-region DDL)")
	f.integer(&cfg.MaxConns, "db-max-conns", "DB_MAX_CONNS", 0, "connection pool size (0: pgx's default)")
	f.duration(&cfg.MaxConnLifetime, "db-max-conn-lifetime", "DB_MAX_CONN_LIFETIME", 30*time.Minute, "recycle database connections after this long")
	f.duration(&cfg.StatementTimeout, "db-statement-timeout", "DB_STATEMENT_TIMEOUT", 5*time.Second, "server-side timeout of each statement")
	return func() error {
		for _, r := range strings.Split(regions, ",") {
			if r = strings.TrimSpace(r); r != "" {
				cfg.Regions = append(cfg.Regions, r)
			}
		}
		return nil
	}
}

func parsePrefixes(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
		p, err := netip.ParsePrefix(f)
		if err != nil {
			a, aerr := netip.ParseAddr(f)
			if aerr != nil {
				return nil, fmt.Errorf("trusted proxy %q: %w", f, err)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p)
	}
	return out, nil
}

func serve(ctx context.Context, log *slog.Logger, args []string) error {
	var cfg app.Config
	var proxies string
	fs := newFlags("serve")
	fs.str(&cfg.GRPCAddr, "grpc-addr", "GRPC_ADDR", "127.0.0.1:9090", "gRPC listen address")
	fs.str(&cfg.HTTPAddr, "http-addr", "HTTP_ADDR", "127.0.0.1:8080", "REST gateway listen address (empty: none)")
	fs.str(&cfg.MetricsAddr, "metrics-addr", "METRICS_ADDR", "127.0.0.1:9464", "Prometheus /metrics listen address (empty: none)")
	var otlp string
	fs.str(&otlp, "otlp-endpoint", "OTEL_EXPORTER_OTLP_ENDPOINT", "", "OTLP/gRPC collector URL for traces, e.g. http://otel-collector:4317 (empty: no tracing)")
	fs.str(&cfg.DataDir, "data-dir", "DATA_DIR", "./data", "embedded store directory")
	finishDB := fs.database(&cfg.Database, &cfg.DatabaseURL, &cfg.Region)
	fs.duration(&cfg.RequestTimeout, "request-timeout", "REQUEST_TIMEOUT", 15*time.Second, "deadline of unary calls that bring none")
	fs.str(&cfg.RedisURL, "redis-url", "REDIS_URL", "", "Redis for rate limits, caches and the bus: redis://host:6379/0, ?master_name= for Sentinel, ?cluster=true for Cluster (empty: in-process)")
	fs.str(&cfg.PublicBaseURL, "public-url", "PUBLIC_URL", "", "base URL of links handed out (default http://<http-addr>)")
	fs.str(&cfg.AdminUser, "admin-user", "ADMIN_USER", "", "ensure this admin account exists at start")
	var adminPasswordFile string
	fs.str(&adminPasswordFile, "admin-password-file", "ADMIN_PASSWORD_FILE", "", "file holding the password of --admin-user (else env ADMIN_PASSWORD; never on the command line)")
	fs.str(&cfg.GatewaySecret, "gateway-secret", "GATEWAY_SECRET", "", "secret shared with separately run gateways; comma-separated to accept several during a rotation (random if empty)")
	fs.str(&proxies, "trusted-proxies", "TRUSTED_PROXIES", "", "comma-separated CIDRs allowed to set X-Forwarded-For")
	fs.boolean(&cfg.SecureCookies, "secure-cookies", "SECURE_COOKIES", "mark session cookies Secure (always when --public-url is https)")
	edgeFlags(fs, &cfg.Edge)
	fs.countryHeader(&cfg.CountryHeader)
	shareFlags(fs, &cfg.Share)
	shortenerFlags(fs, &cfg.Shortener)
	voteFlags(fs, &cfg.Vote)
	finishCanvas := canvasFlags(fs, &cfg.Canvas)
	finishIdentity := identityFlags(fs, &cfg.Identity)
	if err := fs.parse(args); err != nil {
		return err
	}
	finishCanvas()
	if err := finishDB(); err != nil {
		return err
	}
	finishIdentity()
	var err error
	if cfg.TrustedProxies, err = parsePrefixes(proxies); err != nil {
		return err
	}
	if cfg.AdminPassword, err = adminPassword(adminPasswordFile); err != nil {
		return err
	}
	cfg.Logger = log
	cfg.Tracing = otlp != ""
	stopTracing, err := telemetry.StartTracing(ctx, otlp, "platform-server", cfg.Region)
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = stopTracing(sctx)
	}()
	srv, err := app.New(ctx, cfg)
	if err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve() }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	return srv.Shutdown(context.Background())
}

// migrate applies the schema and exits, for deployments that migrate in a
// release step rather than at server start (both are safe to run at once).
func migrate(ctx context.Context, log *slog.Logger, args []string) error {
	var cfg sqlstore.Config
	fs := newFlags("migrate")
	finish := fs.database(&cfg, &cfg.URL, &cfg.Region)
	if err := fs.parse(args); err != nil {
		return err
	}
	if err := finish(); err != nil {
		return err
	}
	if cfg.URL == "" {
		return errors.New("--database-url is required")
	}
	if err := sqlstore.Migrate(ctx, cfg); err != nil {
		return err
	}
	log.Info("schema up to date")
	return nil
}

// runGateway serves REST in front of remote gRPC servers (e.g. a load
// balanced address), for deployments that scale the edge apart.
func runGateway(ctx context.Context, log *slog.Logger, args []string) error {
	var upstream, httpAddr, secret, proxies string
	var secure bool
	fs := newFlags("gateway")
	fs.str(&upstream, "upstream", "UPSTREAM", "127.0.0.1:9090", "gRPC address of the servers")
	fs.str(&httpAddr, "http-addr", "HTTP_ADDR", "127.0.0.1:8080", "listen address")
	fs.str(&secret, "gateway-secret", "GATEWAY_SECRET", "", "secret shared with the servers (required; the first of a comma-separated list is sent)")
	fs.str(&proxies, "trusted-proxies", "TRUSTED_PROXIES", "", "comma-separated CIDRs allowed to set X-Forwarded-For")
	fs.boolean(&secure, "secure-cookies", "SECURE_COOKIES", "mark session cookies Secure (always when --public-url is https)")
	var publicURL string
	fs.str(&publicURL, "public-url", "PUBLIC_URL", "", "base URL browsers see this site at (its origin counts as same-origin for browser calls)")
	var edge app.EdgeConfig
	edgeFlags(fs, &edge)
	var country string
	fs.countryHeader(&country)
	var otlp, region string
	fs.str(&otlp, "otlp-endpoint", "OTEL_EXPORTER_OTLP_ENDPOINT", "", "OTLP/gRPC collector URL for traces (empty: no tracing)")
	fs.str(&region, "region", "REGION", "local", "region this gateway serves from (trace attribute)")
	if err := fs.parse(args); err != nil {
		return err
	}
	stopTracing, err := telemetry.StartTracing(ctx, otlp, "platform-gateway", region)
	if err != nil {
		return err
	}
	defer func() { _ = stopTracing(context.Background()) }()
	if secret == "" {
		return errors.New("--gateway-secret is required: the servers must be able to trust the client addresses this gateway forwards")
	}
	trusted, err := parsePrefixes(proxies)
	if err != nil {
		return err
	}
	var origins []string
	if o := gateway.OriginOf(publicURL); o != "" {
		origins = append(origins, o)
	}
	gw, err := app.NewGateway(ctx, app.GatewayConfig{
		Upstream: upstream, HTTPAddr: httpAddr, Tracing: otlp != "", Edge: edge,
		Gateway: gateway.Config{
			GatewaySecret: secret, TrustedProxies: trusted, SecureCookies: secure || app.SecureURL(publicURL), CountryHeader: country,
			PublicOrigins: origins, CORSOrigins: edge.CORSOrigins, BodyTimeout: edge.HTTPBodyTimeout, WriteTimeout: edge.HTTPWriteTimeout,
		},
	})
	if err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() { errc <- gw.Serve() }()
	log.Info("gateway serving", "http", gw.Addr(), "upstream", upstream)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return gw.Shutdown(sctx)
}
