package gateway

import (
	"context"
	"net/http"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/rs/cors"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Wrong methods and CORS.
//
// grpc-gateway knows when a path exists under another method but answers
// that as 501 (UNIMPLEMENTED). We answer 405 with the Allow header (RFC
// 9110 15.5.6) instead, and a plain OPTIONS with 204 and Allow. The mux has
// no API that lists the methods of a path, so the Allow list is found by
// routing the request again under each method with a probe mark in its
// context: a middleware on every handler sees the mark and records the
// match instead of calling the service. This runs only on the 405 path.

type probeKey struct{}

// probe collects the methods a probe request was routed under.
type probe struct{ matched bool }

// probeMiddleware stops probe requests before they reach a service.
func probeMiddleware(next runtime.HandlerFunc) runtime.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, params map[string]string) {
		if p, ok := r.Context().Value(probeKey{}).(*probe); ok {
			p.matched = true
			return
		}
		next(w, r, params)
	}
}

var probeMethods = []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// allowed lists the methods under which mux routes r's path.
func allowed(mux *runtime.ServeMux, r *http.Request) []string {
	var out []string
	for _, m := range probeMethods {
		p := &probe{}
		pr := r.Clone(context.WithValue(r.Context(), probeKey{}, p))
		pr.Method = m
		pr.Header = pr.Header.Clone()
		// A form content type would make grpc-gateway fall back from POST
		// to GET (its path-length fallback); probe the method as given.
		pr.Header.Del("Content-Type")
		pr.Body = http.NoBody
		mux.ServeHTTP(discardWriter{h: http.Header{}}, pr)
		if p.matched {
			out = append(out, m)
			if m == http.MethodGet {
				out = append(out, http.MethodHead) // the root handler answers HEAD as GET
			}
		}
	}
	return out
}

// routingError answers grpc-gateway's routing failures: 405 with Allow,
// 204 with Allow for OPTIONS, and otherwise as grpc-gateway would.
func routingError(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, code int) {
	if _, isProbe := r.Context().Value(probeKey{}).(*probe); isProbe {
		return
	}
	if code != http.StatusMethodNotAllowed {
		runtime.DefaultRoutingErrorHandler(ctx, mux, m, w, r, code)
		return
	}
	allow := strings.Join(append(allowed(mux, r), http.MethodOptions), ", ")
	w.Header().Set("Allow", allow)
	if r.Method == http.MethodOptions {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	writeStatus(w, r, http.StatusMethodNotAllowed, status.New(codes.Unimplemented,
		"method "+r.Method+" is not allowed on this path; allowed: "+allow))
}

type discardWriter struct{ h http.Header }

func (d discardWriter) Header() http.Header         { return d.h }
func (d discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d discardWriter) WriteHeader(int)             {}

// withCORS answers preflights and adds CORS headers for the configured
// origins (integrators' browser apps). Cookies are never allowed
// cross-origin: such apps authenticate with a bearer token, which keeps the
// cookie session (and its CSRF rules) to our own pages. With no origins
// configured, preflights are answered (204) without granting anything.
func withCORS(origins []string, next http.Handler) http.Handler {
	allow := map[string]bool{}
	for _, o := range origins {
		allow[strings.TrimRight(o, "/")] = true
	}
	return cors.New(cors.Options{
		AllowOriginFunc: func(origin string) bool { return allow["*"] || allow[origin] },
		AllowedMethods:  probeMethods,
		AllowedHeaders:  []string{"Authorization", "Content-Type", "Idempotency-Key", "If-None-Match", "X-Captcha-Token"},
		ExposedHeaders:  []string{"ETag", "Retry-After", "X-Region", "X-Canvas-Seq", "Location"},
		MaxAge:          600,
	}).Handler(next)
}
