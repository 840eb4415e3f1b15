package gateway

import (
	"context"
	"html/template"
	"net/http"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
)

// pageCSP is the policy of every answer that does not bring its own (the
// web client sets a stricter one for its files): no script at all, inline
// style only (the share page embeds its colour), images and form posts to
// this origin only, and no framing, so that the password form cannot be
// overlaid by another site (clickjacking).
const pageCSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; " +
	"form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// sharePageCSP is pageCSP plus the live share page's own script
// (/app/js/share-live.js) and the stream it opens, both of this origin.
const sharePageCSP = pageCSP + "; script-src 'self'; connect-src 'self'"

// securityHeaders sets the protective headers on every answer before the
// handler runs; a handler may replace them with its own (Header().Set).
// They are set on JSON too: a JSON answer opened as a page is a page.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Assigned, not Set: every answer shares these one-value slices
		// (net/http only reads them, and a handler's Set or Add replaces
		// or copies), which spares four allocations a request.
		h := w.Header()
		if strings.HasPrefix(r.URL.Path, "/s/") {
			h["Content-Security-Policy"] = sharePageCSPValue
		} else {
			h["Content-Security-Policy"] = pageCSPValue
		}
		h["X-Frame-Options"] = denyFraming // for browsers that predate frame-ancestors
		h["X-Content-Type-Options"] = noSniff
		// Short codes and share slugs are capabilities: never hand them to
		// the next site in a Referer.
		h["Referrer-Policy"] = noReferrer
		next.ServeHTTP(w, r)
	})
}

// The security headers' values: full one-value slices, so an Add copies.
var (
	pageCSPValue      = []string{pageCSP}
	sharePageCSPValue = []string{sharePageCSP}
	denyFraming       = []string{"DENY"}
	noSniff           = []string{"nosniff"}
	noReferrer        = []string{"no-referrer"}
)

// browserRoutes are the paths people open in a browser; their errors are
// pages for people when the client accepts HTML.
var browserRoutes = map[string]bool{"/s/{slug}": true, "/s/t/{token}": true, "/{code}": true}

// wantsPage reports whether an error for r should be a small HTML page:
// a browser route, and an Accept header that names text/html (browsers'
// navigations do; API clients and `curl` do not).
func wantsPage(ctx context.Context, r *http.Request) bool {
	if p, ok := runtime.HTTPPathPattern(ctx); !ok || !browserRoutes[p] {
		return false
	}
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, _, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(mt), "text/html") {
			return true
		}
	}
	return false
}

var errorPage = template.Must(template.New("error").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#222}</style>
</head><body><main><h1>{{.Title}}</h1><p>{{.Text}}</p><p><a href="/app/">Go to the app</a></p></main></body></html>
`))

// writePage answers with a small HTML page for people.
func writePage(w http.ResponseWriter, code int) {
	title, text := http.StatusText(code), "Something went wrong; try again later."
	switch code {
	case http.StatusNotFound:
		title, text = "Not found", "There is no link or page at this address. Check it for typing mistakes."
	case http.StatusGone:
		title, text = "No longer available", "This link or page existed but has been removed or has expired."
	case http.StatusTooManyRequests:
		title, text = "Too many requests", "Slow down, then try again in a little while."
	case http.StatusServiceUnavailable:
		title, text = "Busy", "The service is busy; try again shortly."
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = errorPage.Execute(w, struct{ Title, Text string }{title, text})
}

// writeStatus answers an error the gateway decides itself (before any
// service is called) in the same JSON shape as a service's errors.
func writeStatus(w http.ResponseWriter, _ *http.Request, code int, st *status.Status) {
	b, err := protojson.Marshal(st.Proto())
	if err != nil {
		b = []byte(`{"code":13,"message":"internal error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}
