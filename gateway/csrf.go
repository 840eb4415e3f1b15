package gateway

import (
	"mime"
	"net/http"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// CSRF defence that does not rest on the browser's SameSite rules (which
// count other ports and subdomains as the same site):
//
//   - every state-changing call that carries no Authorization header (a
//     browser's call, which the session cookie may authenticate, including
//     login and guest calls that would plant an attacker's session) must be
//     same-origin: net/http's CrossOriginProtection checks Sec-Fetch-Site,
//     or Origin against Host, and accepts the configured public origins
//     (the Host a CDN forwards may differ from what the browser shows);
//   - when such a call does carry a session or refresh cookie, its body
//     must be declared application/json: grpc-gateway would otherwise parse
//     a text/plain body (what an HTML form can send cross-site) as JSON.
//
// Bearer-token calls are unaffected: a page cannot make a browser attach
// a token, and CORS decides which other origins may send one. The one form
// the platform serves (the password form of a protected short link, posted
// to /{code}) is same-origin and keeps its url-encoded body.
type csrfGuard struct {
	cop  *http.CrossOriginProtection
	next http.Handler
}

func newCSRFGuard(publicOrigins []string, next http.Handler) (*csrfGuard, error) {
	cop := http.NewCrossOriginProtection()
	for _, o := range publicOrigins {
		if err := cop.AddTrustedOrigin(o); err != nil {
			return nil, err
		}
	}
	return &csrfGuard{cop: cop, next: next}, nil
}

func (g *csrfGuard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if safeMethod(r.Method) || r.Header.Get("Authorization") != "" {
		g.next.ServeHTTP(w, r)
		return
	}
	if err := g.cop.Check(r); err != nil {
		writeStatus(w, r, http.StatusForbidden, status.New(codes.PermissionDenied,
			"cross-origin request refused: state-changing calls from a browser must come from this site's own pages (send an Authorization header from other origins)"))
		return
	}
	if cookieAuthenticated(r) && !jsonBody(r) && !passwordForm(r) {
		writeStatus(w, r, http.StatusForbidden, status.New(codes.PermissionDenied,
			"calls authenticated by cookie must send their body as Content-Type: application/json"))
		return
	}
	g.next.ServeHTTP(w, r)
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

func cookieAuthenticated(r *http.Request) bool {
	for _, name := range []string{SessionCookie, RefreshCookie} {
		if c, err := r.Cookie(name); err == nil && c.Value != "" {
			return true
		}
	}
	return false
}

// jsonBody: the body is declared JSON, or there is none at all (a DELETE
// from fetch); an HTML form always declares a type.
func jsonBody(r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return r.ContentLength == 0
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "application/json"
}

// passwordForm is the url-encoded post of the password form of a protected
// short link: POST /{code}, one path segment.
func passwordForm(r *http.Request) bool {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	p := strings.TrimPrefix(r.URL.Path, "/")
	return r.Method == http.MethodPost && mt == formMIME && p != "" && !strings.Contains(p, "/")
}
