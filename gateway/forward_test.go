package gateway_test

import (
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/apiplatform/platform/gateway"
	"github.com/apiplatform/platform/server/platform/wire"
)

var proxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8:1::/48")}

// The client address the gateway vouches for is the peer, unless the peer
// is a trusted proxy: then the right-most X-Forwarded-For hop that is not
// one. What a client writes further left proves nothing.
func TestClientAddress(t *testing.T) {
	h := newHarness(t, gateway.Config{TrustedProxies: proxies})
	for _, c := range []struct {
		name, remote string
		xff          []string
		want         string
	}{
		{"direct client", "192.0.2.10:4000", nil, "192.0.2.10"},
		{"direct client lying", "192.0.2.10:4000", []string{"203.0.113.66"}, "192.0.2.10"},
		{"through a proxy", "10.1.2.3:4000", []string{"198.51.100.7"}, "198.51.100.7"},
		{"spoofed hop left of the real one", "10.1.2.3:4000", []string{"203.0.113.66, 198.51.100.7"}, "198.51.100.7"},
		{"two proxies", "10.1.2.3:4000", []string{"198.51.100.7, 10.9.9.9"}, "198.51.100.7"},
		{"hops in two headers", "10.1.2.3:4000", []string{"203.0.113.66", "198.51.100.7"}, "198.51.100.7"},
		{"garbage stops the walk", "10.1.2.3:4000", []string{"198.51.100.7, junk, 10.9.9.9"}, "10.9.9.9"},
		{"proxy without the header", "10.1.2.3:4000", nil, "10.1.2.3"},
		{"IPv6 through a proxy", "[2001:db8:1::5]:4000", []string{"2001:db8:2::9"}, "2001:db8:2::9"},
		{"IPv4-mapped peer", "[::ffff:192.0.2.10]:4000", nil, "192.0.2.10"},
	} {
		var headers []string
		for _, v := range c.xff {
			headers = append(headers, "X-Forwarded-For: "+v)
		}
		h.do("GET", "/api/v1/auth/me", c.remote, "", headers...)
		md, _ := h.seen.last()
		if got := md.Get(wire.AddrKey); !slices.Equal(got, []string{c.want}) {
			t.Errorf("%s: %s = %q, want %s", c.name, wire.AddrKey, got, c.want)
		}
		if got := h.seen.lastEdge().Addr; got != netip.MustParseAddr(c.want) {
			t.Errorf("%s: the service believes %v, want %s", c.name, got, c.want)
		}
	}
}

// The gateway sends the first of its secrets, and nothing a client writes
// can stand in for it or for what it vouches for; a server that does not
// know the secret believes none of it.
func TestGatewaySecret(t *testing.T) {
	forged := []string{
		"X-Gateway-Secret: forged", "Grpc-Metadata-X-Gateway-Secret: forged",
		"X-Client-Addr: 203.0.113.66", "Grpc-Metadata-X-Client-Addr: 203.0.113.66",
		"CF-IPCountry: NL",
	}
	cfg := gateway.Config{GatewaySecret: " new-secret , old-secret", TrustedProxies: proxies}

	// During a rotation the server accepts both.
	h := newHarness(t, cfg, "old-secret, new-secret")
	h.do("GET", "/api/v1/auth/me", "10.1.2.3:4000", "", append(forged, "X-Forwarded-For: 192.0.2.10")...)
	md, _ := h.seen.last()
	if got := md.Get(wire.SecretKey); !slices.Equal(got, []string{"new-secret"}) {
		t.Errorf("secret metadata %q, want [new-secret]", got)
	}
	if got := md.Get(wire.AddrKey); !slices.Equal(got, []string{"192.0.2.10"}) {
		t.Errorf("address metadata %q, want [192.0.2.10]", got)
	}
	if e := h.seen.lastEdge(); !e.ViaGateway || e.Addr != netip.MustParseAddr("192.0.2.10") || e.Country != "NL" {
		t.Errorf("with the secret the service believes %+v", e)
	}

	// A server that only knows another secret treats the call as direct.
	h = newHarness(t, cfg, "old-secret")
	h.do("GET", "/api/v1/auth/me", "10.1.2.3:4000", "", append(forged, "X-Forwarded-For: 192.0.2.10")...)
	if e := h.seen.lastEdge(); e.ViaGateway || e.Addr.IsValid() || e.Country != "" {
		t.Errorf("without the secret the service believes %+v", e)
	}
}

// The gateway forwards the few request headers services read, sets the
// client's User-Agent and Referer itself, and believes a CDN's country
// header only from a trusted proxy; services read all of it from the Edge.
func TestForwardedHeaders(t *testing.T) {
	h := newHarness(t, gateway.Config{TrustedProxies: proxies, CountryHeader: "X-Country"})
	h.do("GET", "/api/v1/auth/me", "10.1.2.3:4000", "",
		"User-Agent: Mozilla/5.0 (test)", "Referer: https://ref.example/page",
		"X-Country: NL", "Idempotency-Key: k-1", `If-None-Match: "v1"`, "X-Captcha-Token: cap",
		"X-Evil: payload", "X-Http-User-Agent: forged-agent", "X-Client-Country: ZZ")
	e := h.seen.lastEdge()
	want := wire.Edge{
		Addr: netip.MustParseAddr("10.1.2.3"), ViaGateway: true,
		UserAgent: "Mozilla/5.0 (test)", Referer: "https://ref.example/page", Country: "NL",
		IdempotencyKeys: []string{"k-1"}, IfNoneMatch: `"v1"`, CaptchaToken: "cap",
	}
	if e.Addr != want.Addr || e.ViaGateway != want.ViaGateway || e.UserAgent != want.UserAgent || e.Referer != want.Referer ||
		e.Country != want.Country || !slices.Equal(e.IdempotencyKeys, want.IdempotencyKeys) ||
		e.IfNoneMatch != want.IfNoneMatch || e.CaptchaToken != want.CaptchaToken {
		t.Errorf("edge = %+v, want %+v", e, want)
	}
	md, _ := h.seen.last()
	for _, key := range []string{"x-evil"} {
		if got := md.Get(key); got != nil {
			t.Errorf("%s forwarded: %q", key, got)
		}
	}
	for key, want := range map[string][]string{wire.UserAgentKey: {"Mozilla/5.0 (test)"}, wire.CountryKey: {"NL"}} {
		if got := md.Get(key); !slices.Equal(got, want) {
			t.Errorf("%s = %q, want %q (the client's same-named header must not add to it)", key, got, want)
		}
	}

	// From an untrusted peer the country is not forwarded, and a missing
	// User-Agent is sent empty (the call's own user agent is the gateway's).
	h.do("GET", "/api/v1/auth/me", "192.0.2.10:4000", "", "X-Country: NL")
	md, _ = h.seen.last()
	if got := md.Get(wire.CountryKey); got != nil {
		t.Errorf("country from an untrusted peer: %q", got)
	}
	if got, ok := md[wire.UserAgentKey]; !ok || !slices.Equal(got, []string{""}) {
		t.Errorf("user agent without one sent: %q (present %v)", got, ok)
	}
	if e := h.seen.lastEdge(); e.Country != "" || e.UserAgent != "" || e.Referer != "" {
		t.Errorf("edge from an untrusted peer without headers = %+v", e)
	}
}

// Header values that gRPC metadata cannot carry (UTF-8, controls) are
// percent-encoded by the gateway, so the call does not fail, and reach the
// service decoded, exactly as sent.
func TestForwardedValuesEncoded(t *testing.T) {
	h := newHarness(t, gateway.Config{})
	const agent, key = "Mozilla/5.0 (Linux; Ünïcödé) 100%", "clé-%41"
	res := h.do("GET", "/api/v1/auth/me", client, "", "User-Agent: "+agent, "Idempotency-Key: "+key)
	if res.StatusCode != 200 {
		t.Fatalf("%d", res.StatusCode)
	}
	md, _ := h.seen.last()
	for _, k := range []string{wire.UserAgentKey, "idempotency-key"} {
		for _, v := range md.Get(k) {
			for i := 0; i < len(v); i++ {
				if v[i] < 0x20 || v[i] > 0x7e {
					t.Fatalf("%s sent as %q: not printable ASCII", k, v)
				}
			}
		}
	}
	if e := h.seen.lastEdge(); e.UserAgent != agent || !slices.Equal(e.IdempotencyKeys, []string{key}) {
		t.Errorf("service read user agent %q, keys %q; want %q, [%q]", e.UserAgent, e.IdempotencyKeys, agent, key)
	}
}

// The default country header is Cloudflare's.
func TestDefaultCountryHeader(t *testing.T) {
	h := newHarness(t, gateway.Config{TrustedProxies: proxies})
	h.do("GET", "/api/v1/auth/me", "10.1.2.3:4000", "", "CF-IPCountry: BE")
	if got := h.seen.lastEdge().Country; got != "BE" {
		t.Errorf("country = %q, want BE", got)
	}
}

// Any bytes in any header the gateway forwards to gRPC metadata (the
// client's own, the ones it vouches for, the cookies it turns into
// credentials) give an answer, never a 5xx, and reach the server as
// printable ASCII: a phone browser's User-Agent must not break a route.
func FuzzForwardedHeaders(f *testing.F) {
	h := newHarness(f, gateway.Config{TrustedProxies: proxies, CountryHeader: "X-Country"})
	names := []string{"User-Agent", "Referer", "Authorization", "X-Forwarded-Host", "X-Forwarded-For", "X-Country", "Cookie"}
	for name := range wire.RequestHeaders {
		names = append(names, name)
	}
	for _, seed := range []string{
		"Mozilla/5.0 (Linux; Android 13) 小米浏览器", "https://例え.jp/ページ", "\xff\xfe\x00", "a\r\nb", "100%", "%ZZ%",
		"Bearer \x7f\x80", "session=é; refresh=\x01", "1.2.3.4, \u202e5.6.7.8", strings.Repeat("ü", 300), "",
	} {
		for i := range names {
			f.Add(i, seed)
		}
	}
	f.Fuzz(func(t *testing.T, which int, value string) {
		name := names[(which%len(names)+len(names))%len(names)]
		r := httptest.NewRequest("GET", "/api/v1/auth/me", nil)
		r.RemoteAddr = "10.1.2.3:4000" // a trusted proxy: every header is believed and forwarded
		r.Header["User-Agent"] = []string{"base"}
		r.Header[name] = []string{value}
		h.seen.mu.Lock()
		h.seen.md = nil // metadata of this call only
		h.seen.mu.Unlock()
		w := httptest.NewRecorder()
		h.h.ServeHTTP(w, r)
		if w.Code >= 500 {
			t.Fatalf("%s: %q: %d %s", name, value, w.Code, w.Body)
		}
		md, _ := h.seen.last()
		for k, vs := range md {
			for _, v := range vs {
				for i := 0; i < len(v); i++ {
					if v[i] < 0x20 || v[i] > 0x7e {
						t.Fatalf("%s: %q reached the server as %s=%q: not printable ASCII", name, value, k, v)
					}
				}
			}
		}
	})
}
