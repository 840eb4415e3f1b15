package gateway_test

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/apiplatform/platform/gateway"
)

func cookies(res *http.Response) map[string]*http.Cookie {
	out := map[string]*http.Cookie{}
	for _, c := range res.Cookies() {
		out[c.Name] = c
	}
	return out
}

// Every identity answer carrying a session sets both HttpOnly cookies, the
// refresh one scoped to the auth routes, expiring with their tokens.
func TestSessionCookies(t *testing.T) {
	for _, secure := range []bool{false, true} {
		h := newHarness(t, gateway.Config{SecureCookies: secure})
		for _, c := range []struct{ path, body string }{
			{"/api/v1/auth/guest", `{}`},
			{"/api/v1/auth/register", `{"username": "alice", "password": "correct horse"}`},
			{"/api/v1/auth/login", `{"username": "alice", "password": "right"}`},
			{"/api/v1/auth/refresh", `{"refreshToken": "rt_old"}`},
		} {
			res := h.do("POST", c.path, client, c.body)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("%s: %d", c.path, res.StatusCode)
			}
			got := cookies(res)
			for _, want := range []struct {
				name, value, path string
				expires           time.Time
			}{
				{gateway.SessionCookie, "at_fake", "/", accessExpiry},
				{gateway.RefreshCookie, "rt_fake", "/api/v1/auth/", refreshExpiry},
			} {
				ck := got[want.name]
				if ck == nil {
					t.Fatalf("%s: no %s cookie in %v", c.path, want.name, res.Header["Set-Cookie"])
				}
				if ck.Value != want.value || ck.Path != want.path || !ck.Expires.Equal(want.expires) ||
					!ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Secure != secure {
					t.Errorf("%s: %s cookie = %+v", c.path, want.name, ck)
				}
			}
		}
		// Answers without a session leave cookies alone; a failed login too.
		if res := h.do("GET", "/api/v1/auth/me", client, ""); len(res.Cookies()) != 0 {
			t.Errorf("GetMe set cookies %v", res.Header["Set-Cookie"])
		}
		if res := h.do("POST", "/api/v1/auth/login", client, `{"username": "alice", "password": "wrong"}`); res.StatusCode != http.StatusUnauthorized || len(res.Cookies()) != 0 {
			t.Errorf("failed login: %d, cookies %v", res.StatusCode, res.Header["Set-Cookie"])
		}
	}
}

// Logout clears both cookies, at the paths they were set on.
func TestLogoutClearsCookies(t *testing.T) {
	h := newHarness(t, gateway.Config{})
	res := h.do("POST", "/api/v1/auth/logout", client, `{}`, "Cookie: session=at_live")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("logout: %d", res.StatusCode)
	}
	got := cookies(res)
	for name, path := range map[string]string{gateway.SessionCookie: "/", gateway.RefreshCookie: "/api/v1/auth/"} {
		ck := got[name]
		if ck == nil || ck.Value != "" || ck.MaxAge >= 0 || ck.Path != path || !ck.HttpOnly {
			t.Errorf("%s cookie after logout = %+v, want cleared at %s", name, ck, path)
		}
	}
	if md, _ := h.seen.last(); len(md.Get("authorization")) != 1 || md.Get("authorization")[0] != "Bearer at_live" {
		t.Errorf("logout reached the service with authorization %q", md.Get("authorization"))
	}
}

// Browsers authenticate with the session cookie, unless the request has an
// Authorization header (a program's own token wins); the refresh cookie
// rides along as x-refresh-token.
func TestCookiesBecomeCredentials(t *testing.T) {
	h := newHarness(t, gateway.Config{})
	for _, c := range []struct {
		name    string
		headers []string
		auth    []string
		refresh []string
	}{
		{"session cookie", []string{"Cookie: session=at_cookie"}, []string{"Bearer at_cookie"}, nil},
		{"header wins", []string{"Cookie: session=at_cookie", "Authorization: Bearer at_header"}, []string{"Bearer at_header"}, nil},
		{"empty cookie", []string{"Cookie: session="}, nil, nil},
		{"refresh cookie", []string{"Cookie: refresh=rt_cookie"}, nil, []string{"rt_cookie"}},
		{"none", nil, nil, nil},
	} {
		h.do("GET", "/api/v1/auth/me", client, "", c.headers...)
		md, _ := h.seen.last()
		if got := md.Get("authorization"); !slices.Equal(got, c.auth) {
			t.Errorf("%s: authorization %q, want %q", c.name, got, c.auth)
		}
		if got := md.Get("x-refresh-token"); !slices.Equal(got, c.refresh) {
			t.Errorf("%s: x-refresh-token %q, want %q", c.name, got, c.refresh)
		}
	}
}
