package app_test

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"net/http"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"

	identityv1 "github.com/apiplatform/platform/gen/go/identity/v1"
	shortenerv1 "github.com/apiplatform/platform/gen/go/shortener/v1"
	"github.com/apiplatform/platform/server/app"
	"github.com/apiplatform/platform/server/platform/ratelimit"
)

var shortCodeRE = regexp.MustCompile(`^[0-9A-Za-z]{7}$`)

func shortReq(long string) *shortenerv1.CreateShortUrlRequest {
	return &shortenerv1.CreateShortUrlRequest{LongUrl: long}
}

// Create, follow (302 with Location), and the click shows up in the stats
// and the details; a 301 link answers 301 with a cacheable redirect.
func TestShortenerCreateFollowStats(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		p := start(t, b, shortConfig)
		for _, c := range shortClients(p) {
			t.Run(c.name(), func(t *testing.T) {
				ownerID, tok := grpcAPI{p}.guest(t)
				u := shortMustCreate(t, c, tok, shortReq("HTTPS://Example.COM/landing?x=1#top"))
				if !shortCodeRE.MatchString(u.GetCode()) || u.GetShortUrl() != p.srv.PublicBaseURL()+"/"+u.GetCode() ||
					u.GetLongUrl() != "https://example.com/landing?x=1#top" || u.GetOwnerUserId() != ownerID ||
					u.GetRedirectKind() != shortenerv1.RedirectKind_REDIRECT_KIND_FOUND || u.GetPasswordProtected() ||
					u.GetExpireTime() != nil || u.GetCreateTime() == nil || u.GetClickCount() != 0 {
					t.Fatalf("created %v", u)
				}
				f := c.follow(t, u.GetCode(), "", shortBrowserUA)
				if f.status != http.StatusFound || f.location != u.GetLongUrl() || !strings.Contains(f.cache, "no-store") {
					t.Fatalf("follow: %d %q %q %v", f.status, f.location, f.cache, f.err)
				}
				perm := shortMustCreate(t, c, tok, &shortenerv1.CreateShortUrlRequest{
					LongUrl: "https://example.org/forever", RedirectKind: shortenerv1.RedirectKind_REDIRECT_KIND_MOVED_PERMANENTLY,
				})
				if perm.GetRedirectKind() != shortenerv1.RedirectKind_REDIRECT_KIND_MOVED_PERMANENTLY || perm.GetCode() == u.GetCode() {
					t.Fatalf("301 link %v", perm)
				}
				f = c.follow(t, perm.GetCode(), "", shortBrowserUA)
				if f.status != http.StatusMovedPermanently || f.location != "https://example.org/forever" || !strings.Contains(f.cache, "max-age=") {
					t.Fatalf("follow 301: %d %q %q %v", f.status, f.location, f.cache, f.err)
				}
				// Unknown codes, and paths that cannot be codes, are 404.
				for _, code := range []string{"zzzzzzz", "no-such-alias", strings.Repeat("a", 33)} {
					if f := c.follow(t, code, "", shortBrowserUA); f.status != http.StatusNotFound {
						t.Fatalf("follow %q: %d %v", code, f.status, f.err)
					}
				}

				st := shortWaitStats(t, c, tok, u.GetCode(), 1, 0)
				if len(st.GetDays()) != 30 || daySum(st, false) != 1 || daySum(st, true) != 0 {
					t.Fatalf("days %v, want 30 (the default range) with one human click", st.GetDays())
				}
				if last := st.GetDays()[29].GetDate(); last != time.Now().UTC().Format(time.DateOnly) && last != time.Now().UTC().AddDate(0, 0, -1).Format(time.DateOnly) {
					t.Fatalf("the default range ends %s, not today", last)
				}
				if len(st.GetCountries()) != 1 || st.GetCountries()[0].GetCountry() != "ZZ" || st.GetCountries()[0].GetHumanClicks() != 1 {
					t.Fatalf("countries %v", st.GetCountries())
				}
				got, err := c.get(t, tok, u.GetCode())
				if err != nil || got.GetClickCount() != 1 || got.GetLastAccessTime() == nil || got.GetLongUrl() != u.GetLongUrl() {
					t.Fatalf("details after one click: %v, %v", got, err)
				}
				page, err := c.list(t, tok, 0, "")
				if err != nil || len(page.GetShortUrls()) != 2 || page.GetShortUrls()[0].GetCode() != perm.GetCode() || page.GetNextPageToken() != "" {
					t.Fatalf("list: %v, %v", page, err)
				}
				page, err = c.list(t, tok, 1, "")
				if err != nil || len(page.GetShortUrls()) != 1 || page.GetNextPageToken() == "" {
					t.Fatalf("first page: %v, %v", page, err)
				}
				if page, err = c.list(t, tok, 1, page.GetNextPageToken()); err != nil || len(page.GetShortUrls()) != 1 || page.GetShortUrls()[0].GetCode() != u.GetCode() {
					t.Fatalf("second page: %v, %v", page, err)
				}
				_, err = c.list(t, tok, 101, "")
				wantField(t, err, "pageSize")
				_, err = c.list(t, tok, 0, "garbage!")
				wantField(t, err, "pageToken")
			})
		}
	})
}

// Custom aliases: taken (409), reserved or malformed (field violation);
// every invalid target class is refused naming long_url; nothing refused
// is stored.
func TestShortenerAliasesAndValidation(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		p := start(t, b, shortConfig)
		for _, c := range shortClients(p) {
			t.Run(c.name(), func(t *testing.T) {
				_, tok := grpcAPI{p}.guest(t)
				alias := "Sale-" + c.name()
				u := shortMustCreate(t, c, tok, &shortenerv1.CreateShortUrlRequest{LongUrl: "https://shop.example/sale", Alias: alias})
				if u.GetCode() != alias {
					t.Fatalf("alias link %v", u)
				}
				if f := c.follow(t, alias, "", shortBrowserUA); f.status != http.StatusFound || f.location != "https://shop.example/sale" {
					t.Fatalf("follow alias: %d %q", f.status, f.location)
				}
				_, other := grpcAPI{p}.guest(t)
				_, err := c.create(t, other, &shortenerv1.CreateShortUrlRequest{LongUrl: "https://evil.example/", Alias: alias})
				wantCode(t, err, codes.AlreadyExists)
				// Aliases are case-sensitive: another case is another link.
				lower := shortMustCreate(t, c, other, &shortenerv1.CreateShortUrlRequest{LongUrl: "https://other.example/", Alias: strings.ToLower(alias)})
				if f := c.follow(t, alias, "", shortBrowserUA); f.location != "https://shop.example/sale" || lower.GetCode() == alias {
					t.Fatalf("the taken alias changed: %q", f.location)
				}

				for _, a := range []string{"api", "API", "healthz", "s", "canvas", "ab", strings.Repeat("x", 33), "has space", "dot.ted", "ünicode", "a/b"} {
					_, err := c.create(t, tok, &shortenerv1.CreateShortUrlRequest{LongUrl: "https://example.com/", Alias: a})
					wantField(t, err, "alias")
				}
				for name, long := range map[string]string{
					"empty": "", "relative": "/path", "no scheme": "example.com", "ftp": "ftp://example.com/",
					"javascript": "javascript:alert(document.cookie)", "data": "data:text/html,hi",
					"credentials": "https://user:pw@example.com/", "user": "https://admin@example.com/",
					"own host": p.srv.PublicBaseURL() + "/abc1234", "too long": "https://example.com/" + strings.Repeat("a", 2030),
					"header injection": "https://example.com/\r\nSet-Cookie: x=1", "space": "https://exa mple.com/",
					"bad port": "https://example.com:70000/", "no host": "https:///x",
				} {
					_, err := c.create(t, tok, shortReq(long))
					if err == nil {
						t.Fatalf("%s: %q accepted", name, long)
					}
					wantField(t, err, "longUrl")
				}
				_, err = c.create(t, tok, &shortenerv1.CreateShortUrlRequest{LongUrl: "https://example.com/", ExpiresInSec: -5})
				wantField(t, err, "expiresInSec")
				_, err = c.create(t, tok, &shortenerv1.CreateShortUrlRequest{LongUrl: "https://example.com/", Password: strings.Repeat("p", 129)})
				wantField(t, err, "password")
				_, err = c.create(t, tok, &shortenerv1.CreateShortUrlRequest{LongUrl: "https://example.com/", RedirectKind: 9})
				wantField(t, err, "redirectKind")
				// Several problems are all named at once.
				_, err = c.create(t, tok, &shortenerv1.CreateShortUrlRequest{LongUrl: "ftp://x", Alias: "api"})
				wantField(t, err, "longUrl")
				wantField(t, err, "alias")

				page, err := c.list(t, tok, 0, "")
				if err != nil || len(page.GetShortUrls()) != 1 {
					t.Fatalf("after refused creates the owner has %v, %v; want only the alias link", page, err)
				}
				// Creating needs a session.
				_, err = c.create(t, "", shortReq("https://example.com/"))
				wantCode(t, err, codes.Unauthenticated)
			})
		}
	})
}

// Expiry answers 410; editing the target and expiry takes effect at once;
// deleting answers 410 from then on; only the owner (or an admin) manages
// a link.
func TestShortenerManage(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		p := start(t, b, func(cfg *app.Config) {
			shortConfig(cfg)
			cfg.AdminUser, cfg.AdminPassword = "root", "correct horse battery staple"
		})
		admin, err := identityv1.NewIdentityServiceClient(p.conn).Login(context.Background(),
			&identityv1.LoginRequest{Username: "root", Password: "correct horse battery staple"})
		if err != nil {
			t.Fatal(err)
		}
		adminTok := admin.GetSession().GetAccessToken()
		for _, c := range shortClients(p) {
			t.Run(c.name(), func(t *testing.T) {
				_, tok := grpcAPI{p}.guest(t)
				_, stranger := grpcAPI{p}.guest(t)

				// Expiry.
				short := shortMustCreate(t, c, tok, &shortenerv1.CreateShortUrlRequest{LongUrl: "https://example.com/soon", ExpiresInSec: 1})
				if short.GetExpireTime() == nil {
					t.Fatalf("no expire time: %v", short)
				}
				if f := c.follow(t, short.GetCode(), "", shortBrowserUA); f.status != http.StatusFound {
					t.Fatalf("before expiry: %d %v", f.status, f.err)
				}
				time.Sleep(time.Until(short.GetExpireTime().AsTime()))
				f := c.follow(t, short.GetCode(), "", shortBrowserUA)
				if f.status != http.StatusGone {
					t.Fatalf("after expiry: %d %v", f.status, f.err)
				}
				shortWantGone(t, f.err)
				// The owner revives it by moving the expiry.
				if _, err := c.update(t, tok, &shortenerv1.UpdateShortUrlRequest{Code: short.GetCode(), ExpiresInSec: shortI64(0)}); err != nil {
					t.Fatal(err)
				}
				if f := c.follow(t, short.GetCode(), "", shortBrowserUA); f.status != http.StatusFound {
					t.Fatalf("after removing the expiry: %d %v", f.status, f.err)
				}

				// Edits take effect on the very next redirect (this replica;
				// the replicas test covers the others).
				u := shortMustCreate(t, c, tok, shortReq("https://example.com/v1"))
				if f := c.follow(t, u.GetCode(), "", shortBrowserUA); f.location != "https://example.com/v1" {
					t.Fatalf("before edit: %q", f.location)
				}
				newTarget := "https://example.com/v2"
				got, err := c.update(t, tok, &shortenerv1.UpdateShortUrlRequest{Code: u.GetCode(), LongUrl: &newTarget, ExpiresInSec: shortI64(3600)})
				if err != nil || got.GetLongUrl() != newTarget || got.GetExpireTime() == nil {
					t.Fatalf("update: %v, %v", got, err)
				}
				if f := c.follow(t, u.GetCode(), "", shortBrowserUA); f.location != newTarget {
					t.Fatalf("after edit: %q", f.location)
				}
				bad := "javascript:alert(1)"
				_, err = c.update(t, tok, &shortenerv1.UpdateShortUrlRequest{Code: u.GetCode(), LongUrl: &bad})
				wantField(t, err, "longUrl")
				_, err = c.update(t, tok, &shortenerv1.UpdateShortUrlRequest{Code: u.GetCode(), ExpiresInSec: shortI64(-1)})
				wantField(t, err, "expiresInSec")
				if f := c.follow(t, u.GetCode(), "", shortBrowserUA); f.location != newTarget {
					t.Fatalf("a refused edit changed the link: %q", f.location)
				}

				// Owner only: strangers get 403 everywhere, admins may.
				_, err = c.get(t, stranger, u.GetCode())
				wantCode(t, err, codes.PermissionDenied)
				_, err = c.update(t, stranger, &shortenerv1.UpdateShortUrlRequest{Code: u.GetCode(), LongUrl: &bad})
				wantField(t, err, "longUrl") // validation first: no lookup for a bad request
				evil := "https://evil.example/"
				_, err = c.update(t, stranger, &shortenerv1.UpdateShortUrlRequest{Code: u.GetCode(), LongUrl: &evil})
				wantCode(t, err, codes.PermissionDenied)
				wantCode(t, c.del(t, stranger, u.GetCode()), codes.PermissionDenied)
				_, err = c.stats(t, stranger, u.GetCode(), "", "")
				wantCode(t, err, codes.PermissionDenied)
				if f := c.follow(t, u.GetCode(), "", shortBrowserUA); f.location != newTarget {
					t.Fatalf("a stranger changed the link: %q", f.location)
				}
				if got, err := c.get(t, adminTok, u.GetCode()); err != nil || got.GetLongUrl() != newTarget {
					t.Fatalf("admin get: %v, %v", got, err)
				}
				_, err = c.get(t, tok, "zzzzzzz")
				wantCode(t, err, codes.NotFound)
				_, err = c.get(t, tok, "bad code!")
				wantField(t, err, "code")

				// Delete: 410 for redirects and management from then on.
				if err := c.del(t, tok, u.GetCode()); err != nil {
					t.Fatal(err)
				}
				f = c.follow(t, u.GetCode(), "", shortBrowserUA)
				if f.status != http.StatusGone {
					t.Fatalf("after delete: %d %v", f.status, f.err)
				}
				shortWantGone(t, f.err)
				_, err = c.get(t, tok, u.GetCode())
				shortWantGone(t, err)
				shortWantGone(t, c.del(t, tok, u.GetCode()))
				// Deleted by an admin works too.
				v := shortMustCreate(t, c, tok, shortReq("https://example.com/admin-deletes"))
				if err := c.del(t, adminTok, v.GetCode()); err != nil {
					t.Fatal(err)
				}
				if f := c.follow(t, v.GetCode(), "", shortBrowserUA); f.status != http.StatusGone {
					t.Fatalf("after admin delete: %d", f.status)
				}
				// Stats ranges are checked.
				_, err = c.stats(t, tok, short.GetCode(), "2025-13-01", "")
				wantField(t, err, "from")
				_, err = c.stats(t, tok, short.GetCode(), "2025-03-02", "2025-03-01")
				wantField(t, err, "to")
				_, err = c.stats(t, tok, short.GetCode(), "2024-01-01", "2025-03-01")
				wantField(t, err, "to")
				if st, err := c.stats(t, tok, short.GetCode(), "2024-01-01", "2024-12-31"); err != nil || len(st.GetDays()) != 366 {
					t.Fatalf("a leap year of stats: %d days, %v", len(st.GetDays()), err)
				}
			})
		}
	})
}

func shortI64(v int64) *int64 { return &v }

// daySum adds up the bot or human clicks of every day of st.
func daySum(st *shortenerv1.GetStatsResponse, bots bool) int64 {
	var n int64
	for _, d := range st.GetDays() {
		if bots {
			n += d.GetBotClicks()
		} else {
			n += d.GetHumanClicks()
		}
	}
	return n
}

// A protected link serves a form, refuses a wrong password (with the form
// again) and redirects with the right one; only then is a click counted.
func TestShortenerPassword(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		p := start(t, b, shortConfig)
		for _, c := range shortClients(p) {
			t.Run(c.name(), func(t *testing.T) {
				_, tok := grpcAPI{p}.guest(t)
				u := shortMustCreate(t, c, tok, &shortenerv1.CreateShortUrlRequest{LongUrl: "https://example.com/secret", Password: "open sesame"})
				if !u.GetPasswordProtected() {
					t.Fatalf("not protected: %v", u)
				}
				f := c.follow(t, u.GetCode(), "", shortBrowserUA)
				if f.status != http.StatusOK || f.location != "" || !strings.Contains(f.body, `<form method="post"`) ||
					!strings.Contains(f.body, `name="password"`) || !strings.Contains(f.cache, "no-store") {
					t.Fatalf("form: %d %q %q %.200s", f.status, f.location, f.cache, f.body)
				}
				f = c.follow(t, u.GetCode(), "open sesame?", shortBrowserUA)
				if f.status != http.StatusForbidden || f.location != "" || !strings.Contains(f.body, "Wrong password") || !strings.Contains(f.body, "<form") {
					t.Fatalf("wrong password: %d %q %.200s", f.status, f.location, f.body)
				}
				f = c.follow(t, u.GetCode(), "open sesame", shortBrowserUA)
				if f.status != http.StatusFound || f.location != "https://example.com/secret" {
					t.Fatalf("right password: %d %q %v", f.status, f.location, f.err)
				}
				shortWaitStats(t, c, tok, u.GetCode(), 1, 0)

				// The password can be changed and removed.
				pw := "new one!"
				if _, err := c.update(t, tok, &shortenerv1.UpdateShortUrlRequest{Code: u.GetCode(), Password: &pw}); err != nil {
					t.Fatal(err)
				}
				if f := c.follow(t, u.GetCode(), "open sesame", shortBrowserUA); f.status != http.StatusForbidden {
					t.Fatalf("old password after change: %d", f.status)
				}
				if f := c.follow(t, u.GetCode(), "new one!", shortBrowserUA); f.status != http.StatusFound {
					t.Fatalf("new password: %d", f.status)
				}
				none := ""
				got, err := c.update(t, tok, &shortenerv1.UpdateShortUrlRequest{Code: u.GetCode(), Password: &none})
				if err != nil || got.GetPasswordProtected() {
					t.Fatalf("remove password: %v, %v", got, err)
				}
				if f := c.follow(t, u.GetCode(), "", shortBrowserUA); f.status != http.StatusFound {
					t.Fatalf("after removing the password: %d", f.status)
				}
			})
		}
		// JSON bodies work on POST too.
		r := shortREST{p}
		_, tok := grpcAPI{p}.guest(t)
		u := shortMustCreate(t, r, tok, &shortenerv1.CreateShortUrlRequest{LongUrl: "https://example.com/x", Password: "pw-secret"})
		res, body := shortSend(t, shortNoRedirects, "POST", p.base+"/"+u.GetCode(), "", "application/json", []byte(`{"password":"pw-secret"}`))
		if res.StatusCode != http.StatusFound || res.Header.Get("Location") != "https://example.com/x" {
			t.Fatalf("JSON post: %d %s", res.StatusCode, body)
		}
		// JSON labelled as a form (what `curl -d` sends) is still JSON, for
		// the password form and the rest of the API alike.
		res, body = shortSend(t, shortNoRedirects, "POST", p.base+"/"+u.GetCode(), "", "application/x-www-form-urlencoded", []byte(`{"password":"pw-secret"}`))
		if res.StatusCode != http.StatusFound {
			t.Fatalf("JSON posted as a form: %d %s", res.StatusCode, body)
		}
		res, body = shortSend(t, shortNoRedirects, "POST", p.base+"/api/v1/shorten", tok, "application/x-www-form-urlencoded", []byte(`{"longUrl":"https://example.com/curl"}`))
		if res.StatusCode != http.StatusCreated {
			t.Fatalf("JSON posted as a form to the API: %d %s", res.StatusCode, body)
		}
		// A form-encoded body is not JSON: refused with 400, nothing created.
		res, body = shortSend(t, shortNoRedirects, "POST", p.base+"/api/v1/shorten", tok, "application/x-www-form-urlencoded", []byte("longUrl=https://example.com/"))
		if res.StatusCode != http.StatusBadRequest {
			t.Fatalf("form post to the JSON API: %d %s", res.StatusCode, body)
		}
	})
}

// Bulk create: every item succeeds or fails on its own, in order.
func TestShortenerBatch(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		p := start(t, b, shortConfig)
		for _, c := range shortClients(p) {
			t.Run(c.name(), func(t *testing.T) {
				_, tok := grpcAPI{p}.guest(t)
				taken := "taken-" + c.name()
				shortMustCreate(t, c, tok, &shortenerv1.CreateShortUrlRequest{LongUrl: "https://example.com/first", Alias: taken})
				dup := "dup-" + c.name()
				res, err := c.batch(t, tok,
					shortReq("https://example.com/1"),
					shortReq("ftp://example.com/2"),
					&shortenerv1.CreateShortUrlRequest{LongUrl: "https://example.com/3", Alias: dup, Password: "pw-secret"},
					&shortenerv1.CreateShortUrlRequest{LongUrl: "https://example.com/4", Alias: dup},
					&shortenerv1.CreateShortUrlRequest{LongUrl: "https://example.com/5", Alias: taken},
					&shortenerv1.CreateShortUrlRequest{LongUrl: "https://example.com/6", Alias: "api"},
					&shortenerv1.CreateShortUrlRequest{LongUrl: "https://example.com/7", RedirectKind: shortenerv1.RedirectKind_REDIRECT_KIND_MOVED_PERMANENTLY},
				)
				if err != nil {
					t.Fatal(err)
				}
				want := []codes.Code{codes.OK, codes.InvalidArgument, codes.OK, codes.AlreadyExists, codes.AlreadyExists, codes.InvalidArgument, codes.OK}
				if len(res) != len(want) {
					t.Fatalf("%d results, want %d", len(res), len(want))
				}
				for i, r := range res {
					if codes.Code(r.GetErrorCode()) != want[i] || (want[i] == codes.OK) != (r.GetShortUrl() != nil) || (want[i] != codes.OK) == (r.GetErrorMessage() == "") {
						t.Fatalf("item %d: %v, want %v", i, r, want[i])
					}
				}
				if !strings.Contains(res[1].GetErrorMessage(), "longUrl") || !strings.Contains(res[5].GetErrorMessage(), "alias") {
					t.Fatalf("messages do not name the field: %q, %q", res[1].GetErrorMessage(), res[5].GetErrorMessage())
				}
				if res[2].GetShortUrl().GetCode() != dup || !res[2].GetShortUrl().GetPasswordProtected() {
					t.Fatalf("item 2: %v", res[2])
				}
				for i, wantLoc := range map[int]string{0: "https://example.com/1", 6: "https://example.com/7"} {
					f := c.follow(t, res[i].GetShortUrl().GetCode(), "", shortBrowserUA)
					if f.location != wantLoc {
						t.Fatalf("item %d redirects to %q", i, f.location)
					}
				}
				if f := c.follow(t, taken, "", shortBrowserUA); f.location != "https://example.com/first" {
					t.Fatalf("the taken alias was overwritten: %q", f.location)
				}

				// 1000 items fit in one call, each with its own code.
				var many []*shortenerv1.CreateShortUrlRequest
				for i := range 1000 {
					many = append(many, shortReq(fmt.Sprintf("https://example.com/many/%d", i)))
				}
				res, err = c.batch(t, tok, many...)
				if err != nil || len(res) != 1000 {
					t.Fatalf("1000 items: %d results, %v", len(res), err)
				}
				seen := map[string]bool{}
				for i, r := range res {
					code := r.GetShortUrl().GetCode()
					if !shortCodeRE.MatchString(code) || seen[code] || r.GetShortUrl().GetLongUrl() != fmt.Sprintf("https://example.com/many/%d", i) {
						t.Fatalf("item %d: %v", i, r)
					}
					seen[code] = true
				}
				_, err = c.batch(t, tok, append(many, shortReq("https://example.com/one-too-many"))...)
				wantField(t, err, "requests")
				_, err = c.batch(t, tok)
				wantField(t, err, "requests")
			})
		}
	})
}

// Bots and link-preview crawlers are counted apart from people, and the
// details count people only.
func TestShortenerBotsCountedApart(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		p := start(t, b, shortConfig)
		for _, c := range shortClients(p) {
			t.Run(c.name(), func(t *testing.T) {
				_, tok := grpcAPI{p}.guest(t)
				u := shortMustCreate(t, c, tok, shortReq("https://example.com/viral"))
				for _, ua := range []string{shortBrowserUA, shortBrowserUA, shortBotUA, shortPreviewUA, "facebookexternalhit/1.1"} {
					if f := c.follow(t, u.GetCode(), "", ua); f.status != http.StatusFound {
						t.Fatalf("follow as %q: %d", ua, f.status)
					}
				}
				st := shortWaitStats(t, c, tok, u.GetCode(), 2, 3)
				if daySum(st, false) != 2 || daySum(st, true) != 3 {
					t.Fatalf("days: %v", st.GetDays())
				}
				if got, err := c.get(t, tok, u.GetCode()); err != nil || got.GetClickCount() != 2 {
					t.Fatalf("details count %d (%v), want the 2 human clicks", got.GetClickCount(), err)
				}
			})
		}
	})
}

// Client address and country behind proxies: X-Forwarded-For and the CDN
// country header are believed from a trusted proxy only. The country comes
// from the CDN header, else from the GeoIP database by client address;
// password attempts are limited per client address.
func TestShortenerTrustedProxies(t *testing.T) {
	geo := shortGeoDB(t, map[string]string{"81.2.69.0/24": "GB", "89.160.20.0/24": "SE"})
	forBackends(t, func(t *testing.T, b backend) {
		p := start(t, b, func(cfg *app.Config) {
			shortConfig(cfg)
			cfg.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
			cfg.Shortener.GeoIPFile = geo
			cfg.Shortener.PasswordLimit = ratelimit.Limit{Rate: 1, Period: time.Hour, Burst: 2}
		})
		r := shortREST{p}
		_, tok := grpcAPI{p}.guest(t)
		u := shortMustCreate(t, r, tok, shortReq("https://example.com/geo"))
		proxy, stranger := shortClientFrom("127.0.0.1"), shortClientFrom("127.0.0.2")
		visit := func(c *http.Client, headers ...string) {
			t.Helper()
			if f := r.followWith(t, c, u.GetCode(), "", append([]string{"User-Agent", shortBrowserUA}, headers...)...); f.status != http.StatusFound {
				t.Fatalf("follow: %d %v", f.status, f.err)
			}
		}
		visit(proxy, "X-Forwarded-For", "81.2.69.142")                            // GeoIP: GB
		visit(proxy, "X-Forwarded-For", "203.0.113.9, 89.160.20.112")             // the proxy's own hop: SE
		visit(proxy, "X-Forwarded-For", "81.2.69.142", "CF-IPCountry", "fr")      // the CDN header wins: FR
		visit(stranger, "X-Forwarded-For", "81.2.69.142")                         // spoofed: ignored, ZZ
		visit(stranger, "X-Forwarded-For", "89.160.20.112", "CF-IPCountry", "DE") // spoofed: ignored, ZZ
		visit(proxy, "X-Forwarded-For", "198.51.100.7")                           // not in the database: ZZ
		g := grpcAPI{p}
		ctx := metadata.AppendToOutgoingContext(context.Background(),
			"x-client-country", "US", "x-client-addr", "81.2.69.142", "x-gateway-secret", "guess")
		if _, err := shortenerv1.NewShortenerServiceClient(g.p.conn).FollowShortUrl(ctx, &shortenerv1.FollowShortUrlRequest{Code: u.GetCode()}); err != nil {
			t.Fatal(err) // a direct gRPC client writing the gateway's metadata: ignored, ZZ
		}
		st := shortWaitStats(t, r, tok, u.GetCode(), 7, 0)
		got := map[string]int64{}
		for _, c := range st.GetCountries() {
			got[c.GetCountry()] = c.GetHumanClicks()
		}
		if fmt.Sprint(got) != fmt.Sprint(map[string]int64{"GB": 1, "SE": 1, "FR": 1, "ZZ": 4}) {
			t.Fatalf("countries %v", got)
		}
		if st.GetCountries()[0].GetCountry() != "ZZ" {
			t.Fatalf("countries not ordered by clicks: %v", st.GetCountries())
		}

		// Password attempts (burst 2 per link and client address): clients
		// behind the trusted proxy each have their own budget; a stranger's
		// spoofed X-Forwarded-For does not buy it a fresh one.
		pw := shortMustCreate(t, r, tok, &shortenerv1.CreateShortUrlRequest{LongUrl: "https://example.com/pw", Password: "right-password"})
		for i := range 4 {
			xff := fmt.Sprintf("81.2.69.%d", i+1)
			for range 2 {
				if f := r.followWith(t, proxy, pw.GetCode(), "wrong", "X-Forwarded-For", xff); f.status != http.StatusForbidden {
					t.Fatalf("client %s behind the proxy: %d %v", xff, f.status, f.err)
				}
			}
		}
		var limited shortFollowed
		for i := range 3 {
			limited = r.followWith(t, stranger, pw.GetCode(), "wrong", "X-Forwarded-For", fmt.Sprintf("10.0.0.%d", i))
		}
		if limited.status != http.StatusTooManyRequests {
			t.Fatalf("third attempt from one untrusted peer: %d %v", limited.status, limited.err)
		}
		retryInfo(t, limited.err)
	})
}

// A QR code of the short URL, as PNG of the asked size.
func TestShortenerQRCode(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		p := start(t, b, shortConfig)
		_, tok := grpcAPI{p}.guest(t)
		for _, c := range shortClients(p) {
			t.Run(c.name(), func(t *testing.T) {
				u := shortMustCreate(t, c, tok, shortReq("https://example.com/qr"))
				ct, data, err := c.qr(t, u.GetCode(), 300)
				if err != nil || ct != "image/png" {
					t.Fatalf("qr: %q, %v", ct, err)
				}
				img, err := png.Decode(bytes.NewReader(data))
				if err != nil || img.Bounds().Dx() != 300 || img.Bounds().Dy() != 300 {
					t.Fatalf("png: %v, %v", img.Bounds(), err)
				}
				if content := shortDecodeQR(t, img); content != u.GetShortUrl() {
					t.Fatalf("QR says %q, want %q", content, u.GetShortUrl())
				}
				_, _, err = c.qr(t, u.GetCode(), 5000)
				wantField(t, err, "size")
				_, _, err = c.qr(t, "zzzzzzz", 0)
				wantCode(t, err, codes.NotFound)
				if err := c.del(t, tok, u.GetCode()); err != nil {
					t.Fatal(err)
				}
				_, _, err = c.qr(t, u.GetCode(), 0)
				shortWantGone(t, err)
			})
		}
	})
}

// Beyond MaxInFlight concurrent calls the shortener answers 503 with
// Retry-After (UNAVAILABLE with RetryInfo over gRPC) instead of queueing.
// Calls are held in flight by the password check (an argon2id hash, tens
// of milliseconds); bursts repeat until one overlaps.
func TestShortenerLoadShedding(t *testing.T) {
	p := start(t, embeddedBackend, func(cfg *app.Config) {
		shortConfig(cfg)
		cfg.Shortener.MaxInFlight = 1
	})
	_, tok := grpcAPI{p}.guest(t)
	u := shortMustCreate(t, shortREST{p}, tok, &shortenerv1.CreateShortUrlRequest{LongUrl: "https://example.com/busy", Password: "pw-secret"})
	burst := func(one func() (int, string, error)) (string, error) {
		for range 50 {
			results := make(chan struct {
				status int
				retry  string
				err    error
			}, 8)
			for range 8 {
				go func() {
					s, ra, err := one()
					results <- struct {
						status int
						retry  string
						err    error
					}{s, ra, err}
				}()
			}
			var shed *struct {
				status int
				retry  string
				err    error
			}
			for range 8 {
				r := <-results
				if r.status == http.StatusServiceUnavailable && shed == nil {
					shed = &r
				} else if r.status != http.StatusFound && r.status != http.StatusServiceUnavailable {
					t.Errorf("status %d (%v)", r.status, r.err)
				}
			}
			if shed != nil {
				return shed.retry, shed.err
			}
		}
		t.Fatal("no call was shed with MaxInFlight 1")
		return "", nil
	}
	retry, err := burst(func() (int, string, error) {
		res, b := shortSend(t, shortNoRedirects, "POST", p.base+"/"+u.GetCode(), "", "application/x-www-form-urlencoded", []byte("password=pw-secret"))
		var err error
		if res.StatusCode == http.StatusServiceUnavailable {
			err = shortStatusFromREST(t, res, b)
		}
		return res.StatusCode, res.Header.Get("Retry-After"), err
	})
	if retry == "" {
		t.Fatal("503 without Retry-After")
	}
	wantCode(t, err, codes.Unavailable)
	g := &shortGRPC{p: p}
	_, err = burst(func() (int, string, error) {
		f := g.follow(t, u.GetCode(), "pw-secret", shortBrowserUA)
		return f.status, "", f.err
	})
	st := wantCode(t, err, codes.Unavailable)
	if len(st.Details()) == 0 {
		t.Fatal("UNAVAILABLE without details")
	}
	// When the burst is over, calls are served again.
	if f := g.follow(t, u.GetCode(), "pw-secret", shortBrowserUA); f.status != http.StatusFound {
		t.Fatalf("after the burst: %d %v", f.status, f.err)
	}
}

// Clicks buffered when the server shuts down are flushed, not lost.
func TestShortenerFlushOnShutdown(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		cfg := testConfig(t)
		b.setup(t, &cfg)
		shortConfig(&cfg)
		cfg.Shortener.FlushInterval = time.Hour // only the shutdown flush writes
		first := startConfig(t, cfg)
		r := shortREST{first}
		_, tok := grpcAPI{first}.guest(t)
		u := shortMustCreate(t, r, tok, shortReq("https://example.com/shutdown"))
		for range 3 {
			if f := r.follow(t, u.GetCode(), "", shortBrowserUA); f.status != http.StatusFound {
				t.Fatalf("follow: %d", f.status)
			}
		}
		if got, _ := r.get(t, tok, u.GetCode()); got.GetClickCount() != 0 {
			t.Fatalf("clicks stored before any flush: %d", got.GetClickCount())
		}
		if err := first.srv.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		cfg.GRPCAddr, cfg.HTTPAddr = "127.0.0.1:0", "127.0.0.1:0"
		second := startConfig(t, cfg)
		if got, err := (shortREST{second}).get(t, tok, u.GetCode()); err != nil || got.GetClickCount() != 3 {
			t.Fatalf("after restart: %v clicks, %v; want 3", got.GetClickCount(), err)
		}
	})
}

// GET /{code} takes only what no other route claims.
func TestShortenerRoutesDoNotShadow(t *testing.T) {
	p := start(t, embeddedBackend, shortConfig)
	res, body := shortSend(t, shortNoRedirects, "GET", p.base+"/healthz", "", "", nil)
	if res.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != "ok" {
		t.Fatalf("/healthz: %d %s", res.StatusCode, body)
	}
	// HEAD answers like GET, without a body (link checkers, curl -I).
	_, tok := grpcAPI{p}.guest(t)
	u := shortMustCreate(t, shortREST{p}, tok, shortReq("https://example.com/head"))
	res, body = shortSend(t, shortNoRedirects, "HEAD", p.base+"/"+u.GetCode(), "", "", nil)
	if res.StatusCode != http.StatusFound || res.Header.Get("Location") != "https://example.com/head" || len(body) != 0 {
		t.Fatalf("HEAD: %d %q %q", res.StatusCode, res.Header.Get("Location"), body)
	}
	for _, path := range []string{"/canvas.png", "/s/abcdefghijk", "/api/v1/shares/abcdefghijk"} {
		res, body := shortSend(t, shortNoRedirects, "GET", p.base+path, "", "", nil)
		if strings.Contains(string(body), "no such short link") {
			t.Fatalf("%s was answered by the shortener: %d %s", path, res.StatusCode, body)
		}
	}
}
