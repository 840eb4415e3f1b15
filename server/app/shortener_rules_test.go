package app_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/status"

	shortenerv1 "github.com/apiplatform/platform/gen/go/shortener/v1"
)

const shortAndroidUA = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36"

// shortWantExpired checks the answer of a link that served its visits: the
// expired link's 410 (NOT_FOUND, GONE, state "expired").
func shortWantExpired(t *testing.T, f shortFollowed) {
	t.Helper()
	if f.status != http.StatusGone {
		t.Fatalf("answered %d %q, want 410", f.status, f.location)
	}
	shortWantGone(t, f.err)
	st, _ := status.FromError(f.err)
	for _, d := range st.Details() {
		if ei, ok := d.(*errdetails.ErrorInfo); ok && ei.GetMetadata()["state"] == "expired" {
			return
		}
	}
	t.Fatalf("410 without state expired: %v", st.Details())
}

// shortListed is how many links the caller's list holds.
func shortListed(t *testing.T, c shortAPI, tok string) int {
	t.Helper()
	l, err := c.list(t, tok, 100, "")
	if err != nil {
		t.Fatal(err)
	}
	return len(l.GetShortUrls())
}

// A link with max visits serves that many human redirects, even when they
// come at once, then answers like an expired link (bots too); bots do not
// use visits up; the limit can be raised and removed; bad limits are 400s
// that store nothing.
func TestShortenerMaxVisits(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		p := start(t, b, shortConfig)
		for _, c := range shortClients(p) {
			t.Run(c.name(), func(t *testing.T) {
				_, tok := grpcAPI{p}.guest(t)
				req := shortReq("https://example.com/limited")
				req.MaxVisits = 2
				req.RedirectKind = shortenerv1.RedirectKind_REDIRECT_KIND_MOVED_PERMANENTLY
				u := shortMustCreate(t, c, tok, req)
				if u.GetMaxVisits() != 2 {
					t.Fatalf("created %v", u)
				}
				// A bot before the people: served, and no visit used.
				if f := c.follow(t, u.GetCode(), "", shortBotUA); f.status != http.StatusMovedPermanently {
					t.Fatalf("bot: %d", f.status)
				}
				for i := range 2 {
					f := c.follow(t, u.GetCode(), "", shortBrowserUA)
					if f.status != http.StatusMovedPermanently || f.location != "https://example.com/limited" {
						t.Fatalf("visit %d: %d %q", i+1, f.status, f.location)
					}
					// No shared cache may keep serving it past its limit.
					if f.cache != "private, no-store" {
						t.Fatalf("visit %d: Cache-Control %q", i+1, f.cache)
					}
				}
				shortWantExpired(t, c.follow(t, u.GetCode(), "", shortBrowserUA))
				shortWantExpired(t, c.follow(t, u.GetCode(), "", shortBotUA))
				// The list shows the visits against the limit once they are stored.
				shortWaitStats(t, c, tok, u.GetCode(), 2, 1)
				if got, err := c.get(t, tok, u.GetCode()); err != nil || got.GetClickCount() != 2 || got.GetMaxVisits() != 2 {
					t.Fatalf("details: %v, %v", got, err)
				}

				// Raised: the visits so far still count.
				if _, err := c.update(t, tok, &shortenerv1.UpdateShortUrlRequest{Code: u.GetCode(), MaxVisits: shortI64(3)}); err != nil {
					t.Fatal(err)
				}
				if f := c.follow(t, u.GetCode(), "", shortBrowserUA); f.status != http.StatusMovedPermanently {
					t.Fatalf("after raising the limit: %d", f.status)
				}
				shortWantExpired(t, c.follow(t, u.GetCode(), "", shortBrowserUA))
				// Removed: it redirects again, and a 301 may be cached again.
				up, err := c.update(t, tok, &shortenerv1.UpdateShortUrlRequest{Code: u.GetCode(), MaxVisits: shortI64(0)})
				if err != nil || up.GetMaxVisits() != 0 {
					t.Fatalf("remove the limit: %v, %v", up, err)
				}
				if f := c.follow(t, u.GetCode(), "", shortBrowserUA); f.status != http.StatusMovedPermanently || f.cache == "private, no-store" {
					t.Fatalf("without a limit: %d %q", f.status, f.cache)
				}

				// Concurrent redirects serve exactly the limit.
				req = shortReq("https://example.com/burst")
				req.MaxVisits = 5
				burst := shortMustCreate(t, c, tok, req)
				if n := shortBurst(t, []shortAPI{c}, burst.GetCode(), 24); n != 5 {
					t.Fatalf("%d of 24 concurrent redirects served, want 5", n)
				}

				// A protected link uses a visit only when it redirects: not
				// for its form, nor for a wrong password.
				req = shortReq("https://example.com/locked-once")
				req.MaxVisits, req.Password = 1, "once-password"
				locked := shortMustCreate(t, c, tok, req)
				if f := c.follow(t, locked.GetCode(), "", shortBrowserUA); f.status != http.StatusOK {
					t.Fatalf("form: %d", f.status)
				}
				if f := c.follow(t, locked.GetCode(), "wrong-password", shortBrowserUA); f.status != http.StatusForbidden {
					t.Fatalf("wrong password: %d", f.status)
				}
				if f := c.follow(t, locked.GetCode(), "once-password", shortBrowserUA); f.status != http.StatusFound {
					t.Fatalf("right password: %d", f.status)
				}
				shortWantExpired(t, c.follow(t, locked.GetCode(), "once-password", shortBrowserUA))

				// Bad limits: 400 naming the field, nothing stored or changed.
				before := shortListed(t, c, tok)
				req = shortReq("https://example.com/negative")
				req.MaxVisits = -1
				_, err = c.create(t, tok, req)
				wantField(t, err, "maxVisits")
				if n := shortListed(t, c, tok); n != before {
					t.Fatalf("a refused create stored a link: %d links, had %d", n, before)
				}
				_, err = c.update(t, tok, &shortenerv1.UpdateShortUrlRequest{Code: burst.GetCode(), MaxVisits: shortI64(-3)})
				wantField(t, err, "maxVisits")
				if got, _ := c.get(t, tok, burst.GetCode()); got.GetMaxVisits() != 5 {
					t.Fatalf("a refused update changed the limit: %v", got)
				}
			})
		}
	})
}

// shortBurst follows code n times at once, spread over the clients as a
// person, and returns how many were redirected; every other answer must
// be the expired link's.
func shortBurst(t *testing.T, cs []shortAPI, code string, n int) int {
	t.Helper()
	var wg sync.WaitGroup
	res := make([]shortFollowed, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i] = cs[i%len(cs)].follow(t, code, "", shortBrowserUA)
		}()
	}
	wg.Wait()
	served := 0
	for _, f := range res {
		if f.status == http.StatusFound {
			served++
			continue
		}
		shortWantExpired(t, f)
	}
	return served
}

// Two replicas over one database: concurrent redirects on both serve
// exactly max visits, with the counter in Redis and, without Redis, in
// the database.
func TestShortenerMaxVisitsTwoReplicas(t *testing.T) {
	for _, counter := range []string{"redis", "store"} {
		t.Run(counter, func(t *testing.T) {
			var ps []*platform
			for _, cfg := range replicaConfigs(t, "region-a", "region-b") {
				shortConfig(&cfg)
				if counter == "store" {
					cfg.RedisURL = ""
				}
				ps = append(ps, startConfig(t, cfg))
			}
			a, b := ps[0], ps[1]
			cs := []shortAPI{shortREST{a}, shortREST{b}, &shortGRPC{p: a}, &shortGRPC{p: b}}
			_, tok := grpcAPI{a}.guest(t)
			for i, m := range []int64{1, 7} {
				req := shortReq(fmt.Sprintf("https://example.com/replicas/%d", i))
				req.MaxVisits = m
				u := shortMustCreate(t, cs[0], tok, req)
				if n := shortBurst(t, cs, u.GetCode(), 40); int64(n) != m {
					t.Fatalf("max visits %d: %d of 40 redirects served on two replicas", m, n)
				}
				// Once stored, the clicks agree with the limit.
				shortWaitStats(t, cs[1], tok, u.GetCode(), m, 0)
			}
		})
	}
}

// Device targets: Android, iOS and desktop visitors each get their own,
// everyone else the long URL; answers vary by User-Agent; targets can be
// set and removed one by one; bad ones are 400s naming the device.
func TestShortenerDeviceTargets(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		p := start(t, b, shortConfig)
		for _, c := range shortClients(p) {
			t.Run(c.name(), func(t *testing.T) {
				_, tok := grpcAPI{p}.guest(t)
				req := shortReq("https://example.com/default")
				req.DeviceLongUrls = map[string]string{
					"android": "https://play.example.com/app", "ios": "https://APPS.example.com/app", "desktop": "https://example.com/desktop",
				}
				u := shortMustCreate(t, c, tok, req)
				if got := u.GetDeviceLongUrls(); len(got) != 3 || got["ios"] != "https://apps.example.com/app" {
					t.Fatalf("created with %v (the host is lower-cased like long_url's)", got)
				}
				for _, v := range []struct{ ua, want string }{
					{shortAndroidUA, "https://play.example.com/app"},
					{shortPhoneUA, "https://apps.example.com/app"},
					{shortBrowserUA, "https://example.com/desktop"},
					{shortFirefoxUA, "https://example.com/desktop"},
					{shortBotUA, "https://example.com/default"},
				} {
					f := c.follow(t, u.GetCode(), "", v.ua)
					if f.status != http.StatusFound || f.location != v.want {
						t.Fatalf("as %q: %d %q, want %q", v.ua, f.status, f.location, v.want)
					}
					if !strings.Contains(f.vary, "User-Agent") {
						t.Fatalf("Vary %q", f.vary)
					}
				}
				// iOS removed, Android changed, desktop left as it was.
				up, err := c.update(t, tok, &shortenerv1.UpdateShortUrlRequest{Code: u.GetCode(),
					DeviceLongUrls: map[string]string{"ios": "", "android": "https://example.com/android2"}})
				if err != nil || len(up.GetDeviceLongUrls()) != 2 || up.GetDeviceLongUrls()["desktop"] != "https://example.com/desktop" {
					t.Fatalf("update: %v, %v", up, err)
				}
				if f := c.follow(t, u.GetCode(), "", shortPhoneUA); f.location != "https://example.com/default" {
					t.Fatalf("iPhone after its target was removed: %q", f.location)
				}
				if f := c.follow(t, u.GetCode(), "", shortAndroidUA); f.location != "https://example.com/android2" {
					t.Fatalf("Android after the change: %q", f.location)
				}
				// A link without device targets does not vary.
				plain := shortMustCreate(t, c, tok, shortReq("https://example.com/plain"))
				if f := c.follow(t, plain.GetCode(), "", shortAndroidUA); f.location != "https://example.com/plain" || strings.Contains(f.vary, "User-Agent") {
					t.Fatalf("plain link: %q, Vary %q", f.location, f.vary)
				}

				// Every device target is checked like long_url.
				before := shortListed(t, c, tok)
				for _, bad := range []struct{ device, url string }{
					{"android", "ftp://example.com/x"},
					{"ios", "http://10.0.0.1/admin"},
					{"desktop", "http://169.254.169.254/latest"},
					{"android", p.base + "/loop"},
					{"ios", "https://аррӏе.com/"},
					{"tv", "https://example.com/tv"},
				} {
					req := shortReq("https://example.com/ok")
					req.DeviceLongUrls = map[string]string{bad.device: bad.url}
					_, err := c.create(t, tok, req)
					wantField(t, err, "deviceLongUrls."+bad.device)
					_, err = c.update(t, tok, &shortenerv1.UpdateShortUrlRequest{Code: u.GetCode(), DeviceLongUrls: map[string]string{bad.device: bad.url}})
					wantField(t, err, "deviceLongUrls."+bad.device)
				}
				req = shortReq("https://example.com/ok")
				req.DeviceLongUrls = map[string]string{"ios": ""}
				_, err = c.create(t, tok, req)
				wantField(t, err, "deviceLongUrls.ios")
				if n := shortListed(t, c, tok); n != before {
					t.Fatalf("refused creates stored links: %d, had %d", n, before)
				}
				if got, _ := c.get(t, tok, u.GetCode()); len(got.GetDeviceLongUrls()) != 2 || got.GetDeviceLongUrls()["android"] != "https://example.com/android2" {
					t.Fatalf("refused updates changed the targets: %v", got.GetDeviceLongUrls())
				}
			})
		}
	})
}
