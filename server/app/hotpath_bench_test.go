package app_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/apiplatform/platform/server/app"
)

// BenchmarkHotPath measures the REST requests a busy deployment answers
// most, through the whole stack of one process (gateway, the server's
// interceptor chain, the service, its caches) but without a socket, so
// that -benchmem counts what the platform allocates per request, on every
// goroutine it uses:
//
//	go test -run '^$' -bench BenchmarkHotPath -benchmem ./server/app/
//	.ci/with-services go test -run '^$' -bench BenchmarkHotPath -benchmem ./server/app/
//
// redirect: GET /{code} (302); share-page: GET /s/{slug} (200, HTML);
// canvas-snapshot: GET /api/v1/canvas (the board's bytes, default
// 1000×1000 board); favorite: GET /api/v1/favorite with a bearer token.
func BenchmarkHotPath(b *testing.B) {
	b.Run("embedded", func(b *testing.B) { hotPaths(b, edgeBenchConfig(b)) })
	b.Run("postgres+redis", func(b *testing.B) {
		if os.Getenv("TEST_DATABASE_URL") == "" || os.Getenv("TEST_REDIS_URL") == "" {
			b.Skip("TEST_DATABASE_URL or TEST_REDIS_URL is not set")
		}
		cfg := edgeBenchConfig(b)
		cfg.DatabaseURL, cfg.RedisURL = migratedDatabaseURL(b), os.Getenv("TEST_REDIS_URL")
		hotPaths(b, cfg)
	})
}

func hotPaths(b *testing.B, cfg app.Config) {
	p := shortStartBench(b, cfg)
	tok := shortBenchGuest(b, p)
	u := shortBenchCreate(b, p, tok, "https://example.com/hot/path")
	slug := edgeBenchShare(b, p, tok)
	h := p.srv.HTTPHandler()
	for _, c := range []struct {
		name, path string
		want       int
		header     []string
	}{
		{"redirect", "/" + u.GetCode(), http.StatusFound, nil},
		{"share-page", "/s/" + slug, http.StatusOK, nil},
		{"canvas-snapshot", "/api/v1/canvas", http.StatusOK, nil},
		{"favorite", "/api/v1/favorite", http.StatusOK, []string{"Authorization", "Bearer " + tok}},
	} {
		b.Run(c.name, func(b *testing.B) {
			req := httptest.NewRequest("GET", c.path, nil)
			req.RemoteAddr = "192.0.2.10:40000"
			req.Header.Set("User-Agent", edgeBrowserUA)
			for i := 0; i+1 < len(c.header); i += 2 {
				req.Header.Set(c.header[i], c.header[i+1])
			}
			w := &discardWriter{h: http.Header{}}
			h.ServeHTTP(w, req) // warm the caches
			if w.code != c.want {
				b.Fatalf("GET %s: %d, want %d", c.path, w.code, c.want)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				w.reset()
				h.ServeHTTP(w, req)
				if w.code != c.want {
					b.Fatalf("GET %s: %d, want %d", c.path, w.code, c.want)
				}
			}
		})
	}
}

// discardWriter is a ResponseWriter that keeps only the status, so that
// the benchmark measures the server, not a recorder's buffer.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header { return w.h }

func (w *discardWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}

func (w *discardWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return len(p), nil
}

func (w *discardWriter) reset() {
	clear(w.h)
	w.code = 0
}

var _ io.Writer = (*discardWriter)(nil)
