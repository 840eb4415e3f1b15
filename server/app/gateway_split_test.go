package app_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/http"
	"os"
	"testing"

	"github.com/apiplatform/platform/server/app"
)

// The gateway reaches the services in two ways: in process, when it shares
// the server's process (the default here, and `go run ./server`), or over
// a real gRPC connection, when it runs apart (`server gateway`). Every
// end-to-end case runs on the first; TEST_GATEWAY=split runs the whole
// suite on the second:
//
//	TEST_GATEWAY=split .ci/with-services go test ./server/app/
//
// and `make test` does both.
func splitMode() bool { return os.Getenv("TEST_GATEWAY") == "split" }

// splitGateway, in split mode, takes the REST edge out of cfg and returns
// the function that starts it as a separate gateway (the code `server
// gateway` runs) in front of the server's gRPC address, answering the base
// URL. Outside split mode, or for a server started without REST, it
// returns nil.
func splitGateway(t testing.TB, cfg *app.Config) func(upstream string) string {
	t.Helper()
	if !splitMode() || cfg.HTTPAddr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		t.Fatal(err)
	}
	cfg.HTTPAddr = ""
	if cfg.PublicBaseURL == "" {
		cfg.PublicBaseURL = "http://" + ln.Addr().String()
	}
	if cfg.GatewaySecret == "" {
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		cfg.GatewaySecret = hex.EncodeToString(b)
	}
	gcfg := app.GatewayConfig{
		Listener: ln, Tracing: cfg.Tracing, HTTPMiddleware: cfg.HTTPMiddleware,
		Gateway: cfg.GatewaySettings(), Edge: cfg.Edge,
	}
	return func(upstream string) string {
		t.Helper()
		gcfg.Upstream = upstream
		gw, err := app.NewGateway(context.Background(), gcfg)
		if err != nil {
			_ = ln.Close()
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- gw.Serve() }()
		t.Cleanup(func() {
			http.DefaultTransport.(*http.Transport).CloseIdleConnections() // as startConfig does
			_ = gw.Shutdown(context.Background())
			if err := <-done; err != nil {
				t.Errorf("gateway Serve: %v", err)
			}
		})
		return "http://" + gw.Addr()
	}
}
