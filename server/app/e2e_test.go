package app_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/apiplatform/platform/server/app"
	"github.com/apiplatform/platform/server/platform/ratelimit"
)

// clients runs a case on every backend, once through the generated gRPC
// client and once through plain HTTP against the gateway.
func clients(t *testing.T, configure func(*app.Config), run func(t *testing.T, p *platform, c api)) {
	forBackends(t, func(t *testing.T, b backend) {
		t.Run("grpc", func(t *testing.T) {
			p := start(t, b, configure)
			run(t, p, grpcAPI{p})
		})
		t.Run("rest", func(t *testing.T) {
			p := start(t, b, configure)
			run(t, p, newREST(p))
		})
	})
}

func TestFavoriteShareFlow(t *testing.T) {
	clients(t, nil, func(t *testing.T, p *platform, c api) {
		ownerID, owner := c.guest(t)
		fav, err := c.setFavorite(t, owner, "hsl(0, 100%, 50%)", "")
		if err != nil {
			t.Fatal(err)
		}
		if fav.GetHex() != "#FF0000" || fav.GetValue() != "hsl(0, 100%, 50%)" || fav.GetSpace().String() != "COLOR_SPACE_HSL" {
			t.Fatalf("saved %v", fav)
		}
		if got, err := c.getFavorite(t, owner); err != nil || got.GetHex() != "#FF0000" {
			t.Fatalf("get own favorite = %v, %v", got, err)
		}

		// Private until shared.
		_, viewer := c.guest(t)
		_, err = c.getUserFavorite(t, viewer, ownerID)
		wantCode(t, err, codes.PermissionDenied)

		sh, err := c.createShare(t, owner, true, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(sh.GetSlug()) < 8 || sh.GetUrl() != p.srv.PublicBaseURL()+"/s/"+sh.GetSlug() || sh.GetHex() != "#FF0000" {
			t.Fatalf("share = %v", sh)
		}
		got, err := c.getShare(t, viewer, sh.GetSlug())
		if err != nil || got.GetHex() != "#FF0000" {
			t.Fatalf("viewer resolves share = %v, %v", got, err)
		}
		if got.GetOwnerUserId() != "" {
			t.Fatalf("a viewer sees owner details: %v", got)
		}
		if f, err := c.getUserFavorite(t, viewer, ownerID); err != nil || f.GetHex() != "#FF0000" {
			t.Fatalf("shared favorite = %v, %v", f, err)
		}

		// A snapshot keeps its colour; a live share follows the owner.
		live, err := c.createShare(t, owner, false, 3600)
		if err != nil {
			t.Fatal(err)
		}
		if live.GetExpireTime() == nil {
			t.Fatal("expiry not reported")
		}
		if _, err := c.setFavorite(t, owner, "blue", ""); err != nil {
			t.Fatal(err)
		}
		if got, _ := c.getShare(t, viewer, sh.GetSlug()); got.GetHex() != "#FF0000" {
			t.Fatalf("snapshot changed to %s", got.GetHex())
		}
		if got, _ := c.getShare(t, viewer, live.GetSlug()); got.GetHex() != "#0000FF" {
			t.Fatalf("live share shows %s, want #0000FF", got.GetHex())
		}
		if got, _ := c.getShare(t, owner, sh.GetSlug()); got.GetHits() != 3 || got.GetOwnerUserId() != ownerID {
			t.Fatalf("owner sees hits %d owner %q, want 3 and %s", got.GetHits(), got.GetOwnerUserId(), ownerID)
		}

		// Only the owner revokes; then it is gone for everyone.
		wantCode(t, c.revokeShare(t, viewer, sh.GetSlug()), codes.PermissionDenied)
		if err := c.revokeShare(t, owner, sh.GetSlug()); err != nil {
			t.Fatal(err)
		}
		_, err = c.getShare(t, viewer, sh.GetSlug())
		wantCode(t, err, codes.NotFound)
		_, err = c.getShare(t, viewer, "doesNotExist1")
		wantCode(t, err, codes.NotFound)
		// The live share still exposes the favorite; revoking it too hides it.
		if err := c.revokeShare(t, owner, live.GetSlug()); err != nil {
			t.Fatal(err)
		}
		_, err = c.getUserFavorite(t, viewer, ownerID)
		wantCode(t, err, codes.PermissionDenied)
	})
}

func TestIdempotentSave(t *testing.T) {
	clients(t, nil, func(t *testing.T, p *platform, c api) {
		_, tok := c.guest(t)
		first, err := c.setFavorite(t, tok, "#abc", "save-1")
		if err != nil {
			t.Fatal(err)
		}
		if first.GetHex() != "#AABBCC" {
			t.Fatalf("hex = %s", first.GetHex())
		}
		time.Sleep(5 * time.Millisecond)
		again, err := c.setFavorite(t, tok, "#abc", "save-1")
		if err != nil {
			t.Fatal(err)
		}
		if !again.GetUpdateTime().AsTime().Equal(first.GetUpdateTime().AsTime()) {
			t.Fatalf("retry saved again: %v then %v", first.GetUpdateTime().AsTime(), again.GetUpdateTime().AsTime())
		}
		// Same key, other body: refused, and nothing changed.
		_, err = c.setFavorite(t, tok, "red", "save-1")
		wantField(t, err, "Idempotency-Key")
		if got, _ := c.getFavorite(t, tok); got.GetHex() != "#AABBCC" {
			t.Fatalf("a refused save changed the favorite to %s", got.GetHex())
		}
		// A new key is a new save.
		if f, err := c.setFavorite(t, tok, "red", "save-2"); err != nil || f.GetHex() != "#FF0000" {
			t.Fatalf("new key: %v, %v", f, err)
		}
	})
}

func TestBadInput(t *testing.T) {
	clients(t, nil, func(t *testing.T, p *platform, c api) {
		_, tok := c.guest(t)
		if _, err := c.setFavorite(t, tok, "teal", ""); err != nil {
			t.Fatal(err)
		}
		for _, bad := range []string{"", "#12", "#GGGGGG", "rgb(300,0,0)", "hsl(0, 100%, 50", "javascript:alert(1)", strings.Repeat("x", 10_000)} {
			_, err := c.setFavorite(t, tok, bad, "")
			wantField(t, err, "color")
		}
		if got, _ := c.getFavorite(t, tok); got.GetHex() != "#008080" {
			t.Fatalf("bad input changed the favorite to %s", got.GetHex())
		}
		_, err := c.setFavorite(t, tok, "red", strings.Repeat("k", 200))
		wantField(t, err, "Idempotency-Key")
		_, err = c.createShare(t, tok, true, 5)
		wantField(t, err, "expiresInSec")
		_, err = c.getShare(t, tok, "not-a-slug!")
		wantField(t, err, "slug")
		_, err = c.getUserFavorite(t, tok, "not-a-uuid")
		wantField(t, err, "userId")
		_, _, err = c.register(t, "", "x", "short")
		st := wantCode(t, err, codes.InvalidArgument)
		if !strings.Contains(fmt.Sprint(st.Details()), "username") || !strings.Contains(fmt.Sprint(st.Details()), "password") {
			t.Fatalf("register violations = %v, want username and password", st.Details())
		}

		// Unauthenticated and revoked tokens.
		_, err = c.getFavorite(t, "")
		wantCode(t, err, codes.Unauthenticated)
		_, err = c.getFavorite(t, "at_forged")
		wantCode(t, err, codes.Unauthenticated)
		if err := c.logout(t, tok); err != nil {
			t.Fatal(err)
		}
		_, err = c.getFavorite(t, tok)
		wantCode(t, err, codes.Unauthenticated)

		// Sharing needs a favorite.
		_, fresh := c.guest(t)
		_, err = c.createShare(t, fresh, true, 0)
		wantCode(t, err, codes.FailedPrecondition)
	})
}

func TestRegisterUpgradesGuest(t *testing.T) {
	clients(t, nil, func(t *testing.T, p *platform, c api) {
		guestID, guest := c.guest(t)
		if _, err := c.setFavorite(t, guest, "rgb(1, 2, 3)", ""); err != nil {
			t.Fatal(err)
		}
		id, tok, err := c.register(t, guest, "Alice_1", "correct horse")
		if err != nil {
			t.Fatal(err)
		}
		if id != guestID {
			t.Fatalf("upgrade changed the id: %s -> %s", guestID, id)
		}
		if f, err := c.getFavorite(t, tok); err != nil || f.GetHex() != "#010203" {
			t.Fatalf("favorite after upgrade = %v, %v", f, err)
		}
		// The guest token died with the upgrade.
		_, err = c.getFavorite(t, guest)
		wantCode(t, err, codes.Unauthenticated)
		_, _, err = c.register(t, "", "alice_1", "another password")
		wantCode(t, err, codes.AlreadyExists)
	})
}

func TestShareRateLimit(t *testing.T) {
	limited := func(cfg *app.Config) {
		cfg.Share.UserLimit = ratelimit.Limit{Rate: 1, Period: time.Hour, Burst: 2}
		cfg.Share.AddrLimit = ratelimit.Limit{Rate: 100, Period: time.Minute, Burst: 100}
	}
	clients(t, limited, func(t *testing.T, p *platform, c api) {
		_, tok := c.guest(t)
		if _, err := c.setFavorite(t, tok, "red", ""); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if _, err := c.createShare(t, tok, true, 0); err != nil {
				t.Fatal(err)
			}
		}
		_, err := c.createShare(t, tok, true, 0)
		if d := retryInfo(t, err); d <= 0 || d > time.Hour {
			t.Fatalf("retry after %v", d)
		}
		// The limit is per user: someone else still may.
		_, other := c.guest(t)
		if _, err := c.setFavorite(t, other, "red", ""); err != nil {
			t.Fatal(err)
		}
		if _, err := c.createShare(t, other, true, 0); err != nil {
			t.Fatal(err)
		}
	})

	forBackends(t, func(t *testing.T, b backend) {
		p := start(t, b, limited)
		r := newREST(p)
		_, tok := r.guest(t)
		if _, err := r.setFavorite(t, tok, "red", ""); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if _, err := r.createShare(t, tok, true, 0); err != nil {
				t.Fatal(err)
			}
		}
		res, body := r.do(t, "POST", "/api/v1/shares", tok, map[string]any{"snapshot": true})
		if res.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("status %d, want 429: %s", res.StatusCode, body)
		}
		if ra := res.Header.Get("Retry-After"); ra == "" || ra == "0" {
			t.Fatalf("Retry-After = %q", ra)
		}
	})
}

// Browsers carry the session in HttpOnly cookies the gateway sets.
func TestCookieSession(t *testing.T) { forBackends(t, testCookieSession) }

func testCookieSession(t *testing.T, b backend) {
	p := start(t, b, nil)
	r := newBrowser(p)
	res, body := r.do(t, "POST", "/api/v1/auth/guest", "", map[string]any{})
	if res.StatusCode != 200 {
		t.Fatalf("guest: %d %s", res.StatusCode, body)
	}
	var session *http.Cookie
	for _, c := range res.Cookies() {
		if c.Name == "session" {
			session = c
		}
	}
	if session == nil || !session.HttpOnly || session.Value == "" {
		t.Fatalf("no HttpOnly session cookie in %v", res.Header.Values("Set-Cookie"))
	}
	// No Authorization header from here on: the cookie jar carries it.
	if _, err := r.setFavorite(t, "", "rebeccapurple", ""); err != nil {
		t.Fatal(err)
	}
	res, body = r.do(t, "GET", "/api/v1/auth/me", "", nil)
	if res.StatusCode != 200 || !strings.Contains(string(body), "#663399") {
		t.Fatalf("me: %d %s", res.StatusCode, body)
	}
	// Refresh rotates the tokens from the refresh cookie alone.
	res, body = r.do(t, "POST", "/api/v1/auth/refresh", "", map[string]any{})
	if res.StatusCode != 200 {
		t.Fatalf("refresh: %d %s", res.StatusCode, body)
	}
	if res, _ := r.do(t, "GET", "/api/v1/favorite", "", nil); res.StatusCode != 200 {
		t.Fatalf("after refresh: %d", res.StatusCode)
	}
	// The old access token was revoked by the rotation.
	if _, err := r.getFavorite(t, session.Value); err == nil {
		t.Fatal("the access token from before the refresh still works")
	}
	res, _ = r.do(t, "POST", "/api/v1/auth/logout", "", map[string]any{})
	if res.StatusCode != 200 {
		t.Fatalf("logout: %d", res.StatusCode)
	}
	if res, _ := r.do(t, "GET", "/api/v1/favorite", "", nil); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("after logout: %d, want 401", res.StatusCode)
	}
}

func TestSharePage(t *testing.T) { forBackends(t, testSharePage) }

func testSharePage(t *testing.T, b backend) {
	p := start(t, b, nil)
	r := newREST(p)
	_, tok := r.guest(t)
	if _, err := r.setFavorite(t, tok, "#1e90ff", ""); err != nil {
		t.Fatal(err)
	}
	sh, err := r.createShare(t, tok, true, 0)
	if err != nil {
		t.Fatal(err)
	}
	anon := newREST(p)
	res, body := anon.do(t, "GET", "/s/"+sh.GetSlug(), "", nil)
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("page: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	if !strings.Contains(string(body), "#1E90FF") {
		t.Fatalf("page lacks the colour: %s", body)
	}
	// A page for people who arrive from a link: a heading, a description
	// for link previews and search, and a way into the app.
	for _, want := range []string{"<h1>", `<meta name="description" content="A favorite colour, #1E90FF`, `<a href="/app/">`} {
		if !strings.Contains(string(body), want) {
			t.Fatalf("page lacks %s: %s", want, body)
		}
	}
	if res, _ := anon.do(t, "GET", "/app/", "", nil); res.StatusCode != 200 {
		t.Fatalf("the page's link into the app: %d", res.StatusCode)
	}
	etag, cc := res.Header.Get("ETag"), res.Header.Get("Cache-Control")
	if etag == "" || !strings.Contains(cc, "public") || !strings.Contains(cc, "max-age=") {
		t.Fatalf("ETag %q Cache-Control %q", etag, cc)
	}
	for _, h := range []string{"Grpc-Metadata-X-Http-Code", "Grpc-Metadata-Content-Type"} {
		if res.Header.Get(h) != "" {
			t.Fatalf("stray header %s", h)
		}
	}
	if res.Header.Get("X-Region") != "test-region" {
		t.Fatalf("X-Region = %q", res.Header.Get("X-Region"))
	}
	res, body = anon.do(t, "GET", "/s/"+sh.GetSlug(), "", nil, "If-None-Match", etag)
	if res.StatusCode != http.StatusNotModified || len(body) != 0 {
		t.Fatalf("conditional GET: %d with %d bytes, want 304 and none", res.StatusCode, len(body))
	}
	res, _ = anon.do(t, "GET", "/s/nope12345", "", nil)
	if res.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown page: %d", res.StatusCode)
	}
	if res, _ := anon.do(t, "GET", "/healthz", "", nil); res.StatusCode != 200 {
		t.Fatalf("healthz: %d", res.StatusCode)
	}
}
