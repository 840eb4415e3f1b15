package app_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	shortenerv1 "github.com/apiplatform/platform/gen/go/shortener/v1"
)

const (
	shortPhoneUA   = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
	shortFirefoxUA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0"
)

// dimOf returns a dimension's value as "human/bot", "" when absent.
func dimOf(ds []*shortenerv1.DimensionClicks, value string) string {
	for _, d := range ds {
		if d.GetValue() == value {
			return fmt.Sprintf("%d/%d", d.GetHumanClicks(), d.GetBotClicks())
		}
	}
	return ""
}

// Stats break clicks down by referrer host, browser, OS and device class,
// humans and bots apart, and bucket the range by day, week or month.
func TestShortenerStatsDimensions(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		p := start(t, b, shortConfig)
		for _, c := range shortClients(p) {
			t.Run(c.name(), func(t *testing.T) {
				_, tok := grpcAPI{p}.guest(t)
				u := shortMustCreate(t, c, tok, shortReq("https://example.com/dims"))
				for _, v := range []struct{ ua, ref string }{
					{shortBrowserUA, "https://News.Example.com/front?x=1"},
					{shortBrowserUA, "https://news.example.com/other"},
					{shortPhoneUA, "https://t.co/abc"},
					{shortFirefoxUA, ""},
					{shortBotUA, "not a url"},
				} {
					if f := c.followRef(t, u.GetCode(), v.ua, v.ref); f.status != http.StatusFound {
						t.Fatalf("follow as %q from %q: %d %v", v.ua, v.ref, f.status, f.err)
					}
				}
				st := shortWaitStats(t, c, tok, u.GetCode(), 4, 1)
				for _, w := range []struct {
					what      string
					ds        []*shortenerv1.DimensionClicks
					value, hb string
				}{
					{"referrer", st.GetReferrers(), "news.example.com", "2/0"},
					{"referrer", st.GetReferrers(), "t.co", "1/0"},
					{"referrer", st.GetReferrers(), "", "1/1"},
					{"browser", st.GetBrowsers(), "Chrome", "2/0"},
					{"browser", st.GetBrowsers(), "Safari", "1/0"},
					{"browser", st.GetBrowsers(), "Firefox", "1/0"},
					{"browser", st.GetBrowsers(), "Googlebot", "0/1"},
					{"os", st.GetOperatingSystems(), "Linux", "2/0"},
					{"os", st.GetOperatingSystems(), "iOS", "1/0"},
					{"os", st.GetOperatingSystems(), "Windows", "1/0"},
					{"device", st.GetDevices(), "desktop", "3/0"},
					{"device", st.GetDevices(), "mobile", "1/0"},
					{"device", st.GetDevices(), "bot", "0/1"},
				} {
					if got := dimOf(w.ds, w.value); got != w.hb {
						t.Errorf("%s %q: %q, want %q (all: %v)", w.what, w.value, got, w.hb, w.ds)
					}
				}
				if !slices.IsSortedFunc(st.GetReferrers(), func(a, b *shortenerv1.DimensionClicks) int {
					return int((b.GetHumanClicks() + b.GetBotClicks()) - (a.GetHumanClicks() + a.GetBotClicks()))
				}) {
					t.Errorf("referrers not most clicks first: %v", st.GetReferrers())
				}
				// The default is a bucket per day; weeks and months sum the
				// same clicks into fewer buckets.
				if len(st.GetPeriods()) != len(st.GetDays()) {
					t.Errorf("default periods %d, days %d", len(st.GetPeriods()), len(st.GetDays()))
				}
				for _, g := range []shortenerv1.StatsGranularity{shortenerv1.StatsGranularity_STATS_GRANULARITY_WEEK, shortenerv1.StatsGranularity_STATS_GRANULARITY_MONTH} {
					st, err := c.statsBy(t, tok, u.GetCode(), g)
					if err != nil {
						t.Fatal(err)
					}
					var h, bots int64
					for _, pc := range st.GetPeriods() {
						h, bots = h+pc.GetHumanClicks(), bots+pc.GetBotClicks()
					}
					n := len(st.GetPeriods())
					if h != 4 || bots != 1 || n < 2 || n > 6 || n >= len(st.GetDays()) {
						t.Errorf("%v: %d buckets, %d/%d clicks: %v", g, n, h, bots, st.GetPeriods())
					}
				}
				// An unknown number: the server names the field; the gateway
				// refuses it before it reaches the server.
				_, err := c.statsBy(t, tok, u.GetCode(), shortenerv1.StatsGranularity(99))
				if c.name() == "grpc" {
					wantField(t, err, "granularity")
				} else {
					wantCode(t, err, codes.InvalidArgument)
				}

				// The details and the list agree with the last access: humans
				// and bots apart, with the last human click.
				got, err := c.get(t, tok, u.GetCode())
				if err != nil || got.GetClickCount() != 4 || got.GetBotClickCount() != 1 || got.GetLastHumanAccessTime() == nil {
					t.Fatalf("details: %v (%v)", got, err)
				}
				bots := shortMustCreate(t, c, tok, shortReq("https://example.com/bots-only"))
				if f := c.follow(t, bots.GetCode(), "", shortBotUA); f.status != http.StatusFound {
					t.Fatalf("bot follow: %d", f.status)
				}
				shortWaitStats(t, c, tok, bots.GetCode(), 0, 1)
				list, err := c.list(t, tok, 10, "")
				if err != nil {
					t.Fatal(err)
				}
				for _, l := range list.GetShortUrls() {
					if l.GetCode() == bots.GetCode() && (l.GetClickCount() != 0 || l.GetBotClickCount() != 1 || l.GetLastAccessTime() == nil || l.GetLastHumanAccessTime() != nil) {
						t.Fatalf("bots-only link in the list: %v", l)
					}
				}
			})
		}
	})
}

// The list searches codes and targets, ignoring case, and pages through
// the matches; the redirect kind can be changed.
func TestShortenerSearchAndEditKind(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		p := start(t, b, shortConfig)
		for _, c := range shortClients(p) {
			t.Run(c.name(), func(t *testing.T) {
				_, tok := grpcAPI{p}.guest(t)
				_, stranger := grpcAPI{p}.guest(t)
				var want []string
				for i := range 5 {
					u := shortMustCreate(t, c, tok, shortReq(fmt.Sprintf("https://Docs.example.org/page/%d", i)))
					want = append(want, u.GetCode())
				}
				alias := shortMustCreate(t, c, tok, &shortenerv1.CreateShortUrlRequest{LongUrl: "https://example.net/x", Alias: "my-DOCS-" + c.name()})
				want = append(want, alias.GetCode())
				shortMustCreate(t, c, tok, shortReq("https://example.net/unrelated"))
				shortMustCreate(t, c, stranger, shortReq("https://docs.example.org/theirs"))
				slices.Reverse(want) // newest first

				var got []string
				page := ""
				for range 10 {
					res, err := c.search(t, tok, "docs", 2, page)
					if err != nil {
						t.Fatal(err)
					}
					for _, l := range res.GetShortUrls() {
						got = append(got, l.GetCode())
					}
					if page = res.GetNextPageToken(); page == "" {
						break
					}
				}
				if !slices.Equal(got, want) {
					t.Fatalf("search pages = %v, want %v", got, want)
				}
				if res, err := c.search(t, tok, "%", 10, ""); err != nil || len(res.GetShortUrls()) != 0 {
					t.Fatalf("%% is plain text: %v, %v", res, err)
				}
				for _, bad := range []string{strings.Repeat("x", 201), "a\x00b"} {
					_, err := c.search(t, tok, bad, 10, "")
					wantField(t, err, "query")
				}

				up, err := c.update(t, tok, &shortenerv1.UpdateShortUrlRequest{Code: alias.GetCode(), RedirectKind: shortenerv1.RedirectKind_REDIRECT_KIND_MOVED_PERMANENTLY})
				if err != nil || up.GetRedirectKind() != shortenerv1.RedirectKind_REDIRECT_KIND_MOVED_PERMANENTLY {
					t.Fatalf("update kind: %v, %v", up, err)
				}
				if f := c.follow(t, alias.GetCode(), "", shortBrowserUA); f.status != http.StatusMovedPermanently {
					t.Fatalf("after the kind change: %d", f.status)
				}
				_, err = c.update(t, tok, &shortenerv1.UpdateShortUrlRequest{Code: alias.GetCode(), RedirectKind: shortenerv1.RedirectKind(7)})
				wantField(t, err, "redirectKind")
				if got, _ := c.get(t, tok, alias.GetCode()); got.GetRedirectKind() != shortenerv1.RedirectKind_REDIRECT_KIND_MOVED_PERMANENTLY {
					t.Fatalf("a refused update changed the kind: %v", got)
				}
			})
		}
	})
}
