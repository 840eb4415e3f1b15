package gateway

import (
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Default per-request deadlines (see withDeadlines).
const (
	DefaultBodyTimeout  = 30 * time.Second
	DefaultWriteTimeout = 60 * time.Second
)

// edge wraps the routes in what every answer goes through, outermost
// first: deadlines, protective headers, CORS, the CSRF guard, compression,
// and the body size bound.
func (cfg Config) edge(routes http.Handler) (http.Handler, error) {
	bounded := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !utf8.ValidString(r.URL.Path) || !utf8.ValidString(r.URL.RawQuery) || (r.URL.RawQuery != "" && !validQuery(r.URL.Query())) {
			// grpc-gateway would copy the bytes into a proto string, which
			// the gRPC client then refuses to marshal (a 500).
			writeStatus(w, r, http.StatusBadRequest, status.New(codes.InvalidArgument, "the URL path and query must be valid UTF-8 once percent-decoded"))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, cfg.MaxBodyBytes)
		routes.ServeHTTP(w, r)
	})
	h, err := withCompression(bounded)
	if err != nil {
		return nil, err
	}
	if h, err = newCSRFGuard(cfg.PublicOrigins, h); err != nil {
		return nil, err
	}
	h = withCORS(cfg.CORSOrigins, h)
	h = securityHeaders(h)
	return withDeadlines(cfg.BodyTimeout, cfg.WriteTimeout, h), nil
}

func validQuery(q url.Values) bool {
	for k, vs := range q {
		if !utf8.ValidString(k) {
			return false
		}
		for _, v := range vs {
			if !utf8.ValidString(v) {
				return false
			}
		}
	}
	return true
}

// OriginOf is the origin (scheme://host[:port]) of a public base URL, as
// browsers send it in Origin; "" when u is not an absolute URL.
func OriginOf(u string) string {
	p, err := url.Parse(strings.TrimSpace(u))
	if err != nil || p.Scheme == "" || p.Host == "" {
		return ""
	}
	return strings.ToLower(p.Scheme) + "://" + strings.ToLower(p.Host)
}
