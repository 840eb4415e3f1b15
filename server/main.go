// Command server runs the platform: every gRPC service and the REST gateway
// in one process, on the embedded store unless told a database.
//
//	go run ./server                 # gRPC on :9090, REST on :8080, data in ./data
//	go run ./server gateway --upstream host:9090   # REST gateway alone
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
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/apiplatform/platform/gateway"
	"github.com/apiplatform/platform/server/app"
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
	default:
		err = fmt.Errorf("unknown command %q (want serve or gateway)", cmd)
	}
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		log.Error("exit", "err", err)
		os.Exit(1)
	}
}

// flags wraps a FlagSet whose defaults come from the environment.
type flags struct{ *flag.FlagSet }

func (f flags) str(p *string, name, env, def, usage string) {
	if v, ok := os.LookupEnv(env); ok {
		def = v
	}
	f.StringVar(p, name, def, usage+" (env "+env+")")
}

func (f flags) boolean(p *bool, name, env string, usage string) {
	def := false
	if v, ok := os.LookupEnv(env); ok {
		def = v == "1" || strings.EqualFold(v, "true")
	}
	f.BoolVar(p, name, def, usage+" (env "+env+")")
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
	fs := flags{flag.NewFlagSet("serve", flag.ContinueOnError)}
	fs.str(&cfg.GRPCAddr, "grpc-addr", "GRPC_ADDR", "127.0.0.1:9090", "gRPC listen address")
	fs.str(&cfg.HTTPAddr, "http-addr", "HTTP_ADDR", "127.0.0.1:8080", "REST gateway listen address (empty: none)")
	fs.str(&cfg.DataDir, "data-dir", "DATA_DIR", "./data", "embedded store directory")
	fs.str(&cfg.Region, "region", "REGION", "local", "region this process serves from")
	fs.str(&cfg.PublicBaseURL, "public-url", "PUBLIC_URL", "", "base URL of links handed out (default http://<http-addr>)")
	fs.str(&cfg.AdminUser, "admin-user", "ADMIN_USER", "", "ensure this admin account exists at start")
	fs.str(&cfg.AdminPassword, "admin-password", "ADMIN_PASSWORD", "", "password of --admin-user")
	fs.str(&cfg.GatewaySecret, "gateway-secret", "GATEWAY_SECRET", "", "secret shared with separately run gateways (random if empty)")
	fs.str(&proxies, "trusted-proxies", "TRUSTED_PROXIES", "", "comma-separated CIDRs allowed to set X-Forwarded-For")
	fs.boolean(&cfg.SecureCookies, "secure-cookies", "SECURE_COOKIES", "mark session cookies Secure (behind HTTPS)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var err error
	if cfg.TrustedProxies, err = parsePrefixes(proxies); err != nil {
		return err
	}
	cfg.Logger = log
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

// runGateway serves REST in front of remote gRPC servers (e.g. a load
// balanced address), for deployments that scale the edge apart.
func runGateway(ctx context.Context, log *slog.Logger, args []string) error {
	var upstream, httpAddr, secret, proxies string
	var secure bool
	fs := flags{flag.NewFlagSet("gateway", flag.ContinueOnError)}
	fs.str(&upstream, "upstream", "UPSTREAM", "127.0.0.1:9090", "gRPC address of the servers")
	fs.str(&httpAddr, "http-addr", "HTTP_ADDR", "127.0.0.1:8080", "listen address")
	fs.str(&secret, "gateway-secret", "GATEWAY_SECRET", "", "secret shared with the servers (required)")
	fs.str(&proxies, "trusted-proxies", "TRUSTED_PROXIES", "", "comma-separated CIDRs allowed to set X-Forwarded-For")
	fs.boolean(&secure, "secure-cookies", "SECURE_COOKIES", "mark session cookies Secure (behind HTTPS)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if secret == "" {
		return errors.New("--gateway-secret is required: the servers must be able to trust the client addresses this gateway forwards")
	}
	trusted, err := parsePrefixes(proxies)
	if err != nil {
		return err
	}
	conn, err := grpc.NewClient(upstream, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	h, err := gateway.New(ctx, conn, gateway.Config{GatewaySecret: secret, TrustedProxies: trusted, SecureCookies: secure})
	if err != nil {
		return err
	}
	srv := app.NewHTTPServer(h)
	srv.Addr = httpAddr
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Info("gateway serving", "http", httpAddr, "upstream", upstream)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return srv.Close()
	}
	return nil
}
