package app_test

import (
	"context"
	"net/http"
	"strings"

	"google.golang.org/grpc/codes"

	canvasv1 "github.com/apiplatform/platform/gen/go/canvas/v1"
	favoritev1 "github.com/apiplatform/platform/gen/go/favorite/v1"
	identityv1 "github.com/apiplatform/platform/gen/go/identity/v1"
	shortenerv1 "github.com/apiplatform/platform/gen/go/shortener/v1"
	votev1 "github.com/apiplatform/platform/gen/go/vote/v1"
)

const appJSON = "application/json"

// hostileTargets are link targets inside the network, back at us, or
// look-alikes, in the spellings hostile clients use (item 7).
var hostileTargets = []string{
	"http://127.1/", "http://0x7f000001/", "http://2130706433/", "http://[::ffff:127.0.0.1]/",
	"http://0.0.0.0/", "http://localhost:8080/", "http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/",
	"http://[::1]/", "http://0177.0.0.1/", "http://127.0.0.1./", "http://[::ffff:7f00:1]/",
	"http://0/", "http://[::]/", "http://LOCALHOST./", "http://api.localhost/", "http://0xa9fea9fe/",
	"http://[fd00:ec2::254]/", "http://metadata.google.internal/", "http://169.254.1.1/", "http://[fe80::1]/",
	"http://172.16.5.4/", "http://192.168.1.1/", "http://100.64.0.1/", "http://[fc00::1]/",
	"http://[64:ff9b::a00:1]/", "http://[2002:7f00:1::]/", "http://router/", "http://nas.local/",
	"http://239.1.2.3/", "http://255.255.255.255/", "http://256.0.0.1/", "http://1.2.3.4.5/",
	"http://[fe80::1%25eth0]/", "https://аррӏе.com/", "https://xn--80ak6aa92e.com/", "https://pаypal.com/",
	"https://gооgle.com/", "{BASE}/{L}", "{BASE}/{P}", "http://LOCALHOST:1/{L}",
}

func hostileRows(f *hostileFix) []hostileRow {
	var rows []hostileRow
	add := func(r ...hostileRow) { rows = append(rows, r...) }
	sc := func() shortenerv1.ShortenerServiceClient { return shortenerv1.NewShortenerServiceClient(f.p.conn) }
	vc := func() votev1.VoteServiceClient { return votev1.NewVoteServiceClient(f.p.conn) }
	cc := func() canvasv1.CanvasServiceClient { return canvasv1.NewCanvasServiceClient(f.p.conn) }
	ic := func() identityv1.IdentityServiceClient { return identityv1.NewIdentityServiceClient(f.p.conn) }

	// 1. Non-ASCII header values from ordinary phone browsers.
	const xiaomi = "Mozilla/5.0 (Linux; Android 13) 小米浏览器"
	add(
		hostileRow{name: "ua xiaomi redirect", method: "GET", path: "/{L}", headers: []string{"User-Agent", xiaomi}, want: 302},
		hostileRow{name: "ua xiaomi share page", method: "GET", path: "/s/{S}", headers: []string{"User-Agent", xiaomi}, want: 200},
		hostileRow{name: "ua xiaomi api", method: "GET", path: "/api/v1/canvas/info", headers: []string{"User-Agent", xiaomi}, want: 200},
		hostileRow{name: "ua xiaomi bearer list", method: "GET", path: "/api/v1/urls", auth: "bearer", headers: []string{"User-Agent", xiaomi}, want: 200},
		hostileRow{name: "ua emoji redirect", method: "GET", path: "/{L}", headers: []string{"User-Agent", "Browser 🎨 1.0"}, want: 302},
		hostileRow{name: "ua latin-1 bytes", method: "GET", path: "/{L}", headers: []string{"User-Agent", "Navigateur \xe9t\xe9"}, want: 302},
		hostileRow{name: "referer non-ascii", method: "GET", path: "/{L}", headers: []string{"Referer", "https://例え.jp/ページ"}, want: 302},
		hostileRow{name: "referer raw bytes", method: "GET", path: "/{L}", headers: []string{"Referer", "https://example.com/\xff\xfe"}, want: 302},
		hostileRow{name: "ua non-ascii on a refused create", method: "POST", path: "/api/v1/shorten", auth: "bearer", ctype: appJSON,
			body: js(map[string]string{"longUrl": "http://127.1/"}), headers: []string{"User-Agent", xiaomi}, want: 400},
		hostileRow{name: "ua non-ascii password form", method: "GET", path: "/{P}", headers: []string{"User-Agent", xiaomi}, want: 200},
	)

	// 2. CSRF: cookie-authenticated state changes from elsewhere.
	evil := []string{"Origin", "https://evil.example"}
	short := js(map[string]string{"longUrl": "https://example.com/csrf"})
	add(
		hostileRow{name: "csrf text/plain cross-site shorten", method: "POST", path: "/api/v1/shorten", auth: "cookie", ctype: "text/plain", body: short, headers: evil, want: 403, wantBody: "cross-origin"},
		hostileRow{name: "csrf cross-site delete account", method: "POST", path: "/api/v1/auth/me:delete", auth: "cookie", ctype: appJSON, body: `{"password":"owner-password-1"}`, headers: evil, want: 403},
		hostileRow{name: "delete account wrong password", method: "POST", path: "/api/v1/auth/me:delete", auth: "bearer", ctype: appJSON, body: `{"password":"owner-password-2"}`, want: 401},
		hostileRow{name: "delete account no password", method: "POST", path: "/api/v1/auth/me:delete", auth: "bearer", ctype: appJSON, body: `{}`, want: 400, wantBody: "password"},
		hostileRow{name: "delete account nul password", method: "POST", path: "/api/v1/auth/me:delete", auth: "bearer", ctype: appJSON, body: `{"password":"owner-password-1\u0000"}`, want: 401},
		hostileRow{name: "delete account oversized password", method: "POST", path: "/api/v1/auth/me:delete", auth: "bearer", ctype: appJSON, body: js(map[string]string{"password": strings.Repeat("p", 129)}), want: 400, wantBody: "password"},
		hostileRow{name: "delete account anonymous", method: "POST", path: "/api/v1/auth/me:delete", ctype: appJSON, body: `{"password":"owner-password-1"}`, want: 401},
		hostileRow{name: "csrf json cross-site shorten", method: "POST", path: "/api/v1/shorten", auth: "cookie", ctype: appJSON, body: short, headers: evil, want: 403},
		hostileRow{name: "csrf sec-fetch-site cross-site", method: "POST", path: "/api/v1/shorten", auth: "cookie", ctype: appJSON, body: short, headers: []string{"Sec-Fetch-Site", "cross-site"}, want: 403},
		hostileRow{name: "csrf sec-fetch-site same-site subdomain", method: "POST", path: "/api/v1/shorten", auth: "cookie", ctype: appJSON, body: short, headers: []string{"Sec-Fetch-Site", "same-site", "Origin", "http://sub.127.0.0.1.nip.io"}, want: 403},
		hostileRow{name: "csrf other port origin", method: "POST", path: "/api/v1/shorten", auth: "cookie", ctype: appJSON, body: short, headers: []string{"Origin", "http://127.0.0.1:1"}, want: 403},
		hostileRow{name: "csrf null origin", method: "POST", path: "/api/v1/shorten", auth: "cookie", ctype: appJSON, body: short, headers: []string{"Origin", "null"}, want: 403},
		hostileRow{name: "csrf text/plain no origin", method: "POST", path: "/api/v1/shorten", auth: "cookie", ctype: "text/plain", body: short, want: 403, wantBody: "application/json"},
		hostileRow{name: "csrf form body to api", method: "POST", path: "/api/v1/shorten", auth: "cookie", ctype: "application/x-www-form-urlencoded", body: short, want: 403},
		hostileRow{name: "csrf multipart", method: "POST", path: "/api/v1/shorten", auth: "cookie", ctype: "multipart/form-data; boundary=x", body: short, want: 403},
		hostileRow{name: "csrf no content type with body", method: "POST", path: "/api/v1/shorten", auth: "cookie", body: short, want: 403},
		hostileRow{name: "csrf json look-alike type", method: "POST", path: "/api/v1/shorten", auth: "cookie", ctype: "application/json-evil", body: short, want: 403},
		hostileRow{name: "csrf text/plain with json param", method: "POST", path: "/api/v1/shorten", auth: "cookie", ctype: "text/plain; application/json", body: short, want: 403},
		hostileRow{name: "csrf favorite text/plain", method: "PUT", path: "/api/v1/favorite", auth: "cookie", ctype: "text/plain", body: js(map[string]string{"color": "red"}), want: 403},
		hostileRow{name: "csrf favorite cross-site", method: "PUT", path: "/api/v1/favorite", auth: "cookie", ctype: appJSON, body: js(map[string]string{"color": "red"}), headers: evil, want: 403},
		hostileRow{name: "csrf delete link cross-site", method: "DELETE", path: "/api/v1/urls/{L}", auth: "cookie", headers: evil, want: 403},
		hostileRow{name: "csrf patch link text/plain", method: "PATCH", path: "/api/v1/urls/{L}", auth: "cookie", ctype: "text/plain", body: js(map[string]string{"longUrl": "https://evil.example/"}), want: 403},
		hostileRow{name: "csrf login plants a session", method: "POST", path: "/api/v1/auth/login", ctype: "text/plain", body: js(map[string]string{"username": "attacker", "password": "attacker-password"}), headers: evil, want: 403},
		hostileRow{name: "csrf register cross-site", method: "POST", path: "/api/v1/auth/register", ctype: appJSON, body: js(map[string]string{"username": hostileVictim, "password": "victim-password"}), headers: evil, want: 403},
		hostileRow{name: "csrf guest cross-site", method: "POST", path: "/api/v1/auth/guest", ctype: appJSON, body: "{}", headers: []string{"Sec-Fetch-Site", "cross-site"}, want: 403},
		hostileRow{name: "csrf logout cross-site", method: "POST", path: "/api/v1/auth/logout", auth: "cookie", ctype: appJSON, body: "{}", headers: evil, want: 403},
		hostileRow{name: "csrf refresh cross-site", method: "POST", path: "/api/v1/auth/refresh", auth: "cookie", ctype: appJSON, body: "{}", headers: evil, want: 403},
		hostileRow{name: "csrf share text/plain", method: "POST", path: "/api/v1/shares", auth: "cookie", ctype: "text/plain", body: "{}", want: 403},
		hostileRow{name: "csrf revoke share cross-site", method: "DELETE", path: "/api/v1/shares/{S}", auth: "cookie", headers: evil, want: 403},
		hostileRow{name: "csrf pixel text/plain", method: "POST", path: "/api/v1/canvas/pixels", auth: "cookie", ctype: "text/plain", body: js(map[string]int{"x": 1, "y": 1, "color": 2}), want: 403},
		hostileRow{name: "csrf vote cross-site", method: "POST", path: "/api/v1/votes", auth: "cookie", ctype: appJSON, body: js(map[string]string{"electionId": "{E}", "candidateId": "a"}), headers: evil, want: 403},
		hostileRow{name: "csrf admin ban cross-site", method: "POST", path: "/api/v1/admin/bans", auth: "admin-cookie", ctype: appJSON, body: js(map[string]string{"userId": "{O}"}), headers: evil, want: 403},
		hostileRow{name: "csrf admin open election text/plain", method: "POST", path: "/api/v1/elections/{E}:open", auth: "admin-cookie", ctype: "text/plain", body: "{}", want: 403},
		hostileRow{name: "csrf admin clear cross-site", method: "POST", path: "/api/v1/admin/canvas:clear", auth: "admin-cookie", ctype: appJSON, body: js(map[string]int{"x": 0, "y": 0, "width": 4, "height": 4}), headers: []string{"Sec-Fetch-Site", "cross-site"}, want: 403},
		hostileRow{name: "csrf batch text/plain", method: "POST", path: "/api/v1/shorten:batch", auth: "cookie", ctype: "text/plain", body: js(map[string]any{"requests": []map[string]string{{"longUrl": "https://example.com/b"}}}), want: 403},
		hostileRow{name: "csrf integrator origin with cookie", method: "POST", path: "/api/v1/shorten", auth: "cookie", ctype: appJSON, body: short, headers: []string{"Origin", hostileOrigin}, want: 403},
		// Not CSRF: reads, bearer calls, and the password form.
		hostileRow{name: "cross-site read with cookie allowed", method: "GET", path: "/api/v1/urls/{L}", auth: "cookie", headers: evil, want: 200},
		hostileRow{name: "bearer text/plain cross-site is not csrf", method: "POST", path: "/api/v1/shorten", auth: "bearer", ctype: "text/plain", body: js(map[string]string{"longUrl": "http://127.1/"}), headers: evil, want: 400},
		hostileRow{name: "password form wrong password keeps working", method: "POST", path: "/{P}", auth: "cookie", ctype: "application/x-www-form-urlencoded", body: "password=wrong-one", headers: []string{"Sec-Fetch-Site", "same-origin"}, want: 403, wantBody: "Wrong password"},
		hostileRow{name: "password form right password", method: "POST", path: "/{P}", ctype: "application/x-www-form-urlencoded", body: "password=" + hostilePassword, headers: []string{"Origin", "{BASE}"}, want: 302},
		hostileRow{name: "password form posted cross-site", method: "POST", path: "/{P}", ctype: "application/x-www-form-urlencoded", body: "password=" + hostilePassword, headers: evil, want: 403},
	)

	// 3. Bodies: too large, malformed.
	add(
		hostileRow{name: "body over 1 MiB", method: "POST", path: "/api/v1/shorten", auth: "bearer", ctype: appJSON, body: `{"longUrl":"https://example.com/` + strings.Repeat("a", 1<<20) + `"}`, want: 400},
		hostileRow{name: "body not json", method: "POST", path: "/api/v1/shorten", auth: "bearer", ctype: appJSON, body: "not json", want: 400},
		hostileRow{name: "body truncated json", method: "POST", path: "/api/v1/shorten", auth: "bearer", ctype: appJSON, body: `{"longUrl": "https://exa`, want: 400},
		hostileRow{name: "body wrong type", method: "POST", path: "/api/v1/shorten", auth: "bearer", ctype: appJSON, body: `{"longUrl": 5}`, want: 400},
		hostileRow{name: "body unknown field", method: "POST", path: "/api/v1/shorten", auth: "bearer", ctype: appJSON, body: `{"longUrl": "https://example.com/", "evil": 1}`, want: 400},
		hostileRow{name: "body deeply nested", method: "POST", path: "/api/v1/shorten", auth: "bearer", ctype: appJSON, body: strings.Repeat("[", 100_000), want: 400},
		hostileRow{name: "body json array", method: "PUT", path: "/api/v1/favorite", auth: "bearer", ctype: appJSON, body: `["red"]`, want: 400},
		hostileRow{name: "body null color", method: "PUT", path: "/api/v1/favorite", auth: "bearer", ctype: appJSON, body: `{"color": null}`, want: 400},
		hostileRow{name: "body invalid utf-8", method: "PUT", path: "/api/v1/favorite", auth: "bearer", ctype: appJSON, body: "{\"color\": \"\xff\"}", want: 400},
		hostileRow{name: "body duplicate keys", method: "PUT", path: "/api/v1/favorite", auth: "bearer", ctype: appJSON, body: `{"color": "red", "color": "blue"}`, want: 400},
	)

	// 4. HTML pages and their errors.
	html := []string{"Accept", "text/html,application/xhtml+xml,*/*;q=0.8"}
	protected := []string{"Content-Security-Policy", "frame-ancestors 'none'", "X-Content-Type-Options", "nosniff", "Referrer-Policy", "no-referrer", "X-Frame-Options", "DENY"}
	add(
		hostileRow{name: "share page headers", method: "GET", path: "/s/{S}", headers: html, want: 200, wantHeaders: protected},
		hostileRow{name: "password form headers", method: "GET", path: "/{P}", headers: html, want: 200, wantHeaders: protected, wantBody: "password"},
		hostileRow{name: "web client headers", method: "GET", path: "/app/", headers: html, want: 200, wantHeaders: []string{"Content-Security-Policy", "frame-ancestors 'none'", "X-Content-Type-Options", "nosniff", "Referrer-Policy", "same-origin"}},
		hostileRow{name: "unknown share as page", method: "GET", path: "/s/nosuchslug00", headers: html, want: 404, wantHeaders: append([]string{"Content-Type", "text/html"}, protected...), wantBody: "Not found"},
		hostileRow{name: "revoked share as page", method: "GET", path: "/s/{R}", headers: html, want: 404, wantHeaders: []string{"Content-Type", "text/html"}},
		hostileRow{name: "unknown share as json", method: "GET", path: "/s/nosuchslug00", want: 404, wantHeaders: []string{"Content-Type", "application/json"}},
		hostileRow{name: "unknown code as page", method: "GET", path: "/nosuch1", headers: html, want: 404, wantHeaders: append([]string{"Content-Type", "text/html"}, protected...)},
		hostileRow{name: "deleted code as page", method: "GET", path: "/{D}", headers: html, want: 410, wantHeaders: []string{"Content-Type", "text/html"}, wantBody: "No longer available"},
		hostileRow{name: "deleted code as json", method: "GET", path: "/{D}", headers: []string{"Accept", appJSON}, want: 410, wantHeaders: []string{"Content-Type", "application/json"}},
		hostileRow{name: "unknown code as json", method: "GET", path: "/nosuch1", want: 404, wantHeaders: []string{"Content-Type", "application/json"}},
		hostileRow{name: "json errors carry nosniff", method: "GET", path: "/api/v1/urls/nosuch1", auth: "bearer", want: 404, wantHeaders: []string{"X-Content-Type-Options", "nosniff"}},
		hostileRow{name: "code with html chars as page", method: "GET", path: "/%3Cscript%3E", headers: html, want: 404, wantHeaders: []string{"Content-Type", "text/html"}},
	)

	// 5. Compression.
	gz := []string{"Accept-Encoding", "gzip"}
	add(
		hostileRow{name: "gzip snapshot", method: "GET", path: "/api/v1/canvas", headers: gz, want: 200, wantHeaders: []string{"Content-Encoding", "gzip"}},
		hostileRow{name: "zstd snapshot", method: "GET", path: "/api/v1/canvas", headers: []string{"Accept-Encoding", "zstd"}, want: 200, wantHeaders: []string{"Content-Encoding", "zstd"}},
		hostileRow{name: "gzip refused by q=0", method: "GET", path: "/api/v1/canvas", headers: []string{"Accept-Encoding", "gzip;q=0"}, want: 200},
		hostileRow{name: "no gzip for png", method: "GET", path: "/canvas.png", headers: gz, want: 200, wantHeaders: []string{"Content-Type", "image/png"}},
		hostileRow{name: "gzip share page keeps etag weak", method: "GET", path: "/s/{S}", headers: gz, want: 200, wantHeaders: []string{"ETag", `W/"`}},
		hostileRow{name: "bogus accept-encoding", method: "GET", path: "/api/v1/canvas/info", headers: []string{"Accept-Encoding", "br;q=abc, ,,"}, want: 200},
	)

	// 6. Methods and CORS.
	add(
		hostileRow{name: "put shorten", method: "PUT", path: "/api/v1/shorten", auth: "bearer", want: 405, wantHeaders: []string{"Allow", "POST"}},
		hostileRow{name: "get shorten", method: "GET", path: "/api/v1/shorten", auth: "bearer", want: 405, wantHeaders: []string{"Allow", "POST"}},
		hostileRow{name: "delete favorite", method: "DELETE", path: "/api/v1/favorite", auth: "bearer", want: 405, wantHeaders: []string{"Allow", "GET, HEAD, PUT"}},
		hostileRow{name: "patch pixels", method: "PATCH", path: "/api/v1/canvas/pixels", auth: "bearer", want: 405, wantHeaders: []string{"Allow", "POST"}},
		hostileRow{name: "post canvas info", method: "POST", path: "/api/v1/canvas/info", ctype: appJSON, body: "{}", want: 405, wantHeaders: []string{"Allow", "GET"}},
		hostileRow{name: "put share page", method: "PUT", path: "/s/{S}", want: 405, wantHeaders: []string{"Allow", "GET, HEAD"}},
		hostileRow{name: "delete short code", method: "DELETE", path: "/{L}", want: 405, wantHeaders: []string{"Allow", "GET, HEAD, POST"}},
		hostileRow{name: "post share resource", method: "POST", path: "/api/v1/shares/{S}", auth: "bearer", ctype: appJSON, body: "{}", want: 405, wantHeaders: []string{"Allow", "DELETE"}},
		hostileRow{name: "put election", method: "PUT", path: "/api/v1/elections/{E}", auth: "admin", want: 405, wantHeaders: []string{"Allow", "GET"}},
		hostileRow{name: "trace method", method: "TRACE", path: "/api/v1/favorite", want: 405},
		hostileRow{name: "made-up method", method: "BREW", path: "/api/v1/favorite", want: 405, wantHeaders: []string{"Allow", "PUT"}},
		hostileRow{name: "plain options", method: "OPTIONS", path: "/api/v1/shorten", want: 204, wantHeaders: []string{"Allow", "POST"}},
		hostileRow{name: "preflight from stranger", method: "OPTIONS", path: "/api/v1/shorten", headers: []string{"Origin", "https://evil.example", "Access-Control-Request-Method", "POST"}, want: 204},
		hostileRow{name: "preflight from integrator", method: "OPTIONS", path: "/api/v1/shorten", headers: []string{"Origin", hostileOrigin, "Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "authorization, content-type"}, want: 204, wantHeaders: []string{"Access-Control-Allow-Origin", hostileOrigin, "Access-Control-Allow-Headers", "uthorization"}},
		hostileRow{name: "preflight for unknown method", method: "OPTIONS", path: "/api/v1/shorten", headers: []string{"Origin", hostileOrigin, "Access-Control-Request-Method", "BREW"}, want: 204},
		hostileRow{name: "cors read from integrator", method: "GET", path: "/api/v1/canvas/info", headers: []string{"Origin", hostileOrigin}, want: 200, wantHeaders: []string{"Access-Control-Allow-Origin", hostileOrigin, "Access-Control-Expose-Headers", "Retry-After"}},
		hostileRow{name: "unknown api path", method: "GET", path: "/api/v1/nothing/here", want: 404},
		hostileRow{name: "head redirect", method: "HEAD", path: "/{L}", want: 302},
	)

	// 7. Link targets, through create (REST and gRPC), update and batch.
	for _, target := range hostileTargets {
		target := target
		add(hostileRow{name: "target " + target, method: "POST", path: "/api/v1/shorten", auth: "bearer", ctype: appJSON,
			body: js(map[string]string{"longUrl": target}), want: 400, wantBody: "longUrl",
			grpc: func(ctx context.Context, f *hostileFix) error {
				_, err := sc().CreateShortUrl(ctx, &shortenerv1.CreateShortUrlRequest{LongUrl: f.replace.Replace(target)})
				return err
			}, grpcWant: codes.InvalidArgument})
	}
	for _, target := range []string{"http://127.1/", "http://169.254.169.254/", "{BASE}/{P}", "https://аррӏе.com/"} {
		target := target
		add(hostileRow{name: "update to " + target, method: "PATCH", path: "/api/v1/urls/{L}", auth: "bearer", ctype: appJSON,
			body: js(map[string]string{"longUrl": target}), want: 400,
			grpc: func(ctx context.Context, f *hostileFix) error {
				u := f.replace.Replace(target)
				_, err := sc().UpdateShortUrl(ctx, &shortenerv1.UpdateShortUrlRequest{Code: f.L, LongUrl: &u})
				return err
			}, grpcWant: codes.InvalidArgument})
	}
	add(hostileRow{name: "batch of refused targets only", method: "POST", path: "/api/v1/shorten:batch", auth: "bearer", ctype: appJSON,
		body: js(map[string]any{"requests": []map[string]string{{"longUrl": "http://127.1/"}, {"longUrl": "http://[::1]/"}, {"longUrl": "{BASE}/{L}"}}}), want: 200, wantBody: "errorMessage"})

	// 8. Link passwords.
	for _, pw := range []string{"a", "1234567", "äöü", "pass\x00word", "tab\tpassword", strings.Repeat("p", 129)} {
		pw := pw
		add(hostileRow{name: "link password " + strings.ToValidUTF8(pw[:min(len(pw), 12)], "?"), method: "POST", path: "/api/v1/shorten", auth: "bearer", ctype: appJSON,
			body: js(map[string]string{"longUrl": "https://example.com/pw", "password": pw}), want: 400, wantBody: "password",
			grpc: func(ctx context.Context, f *hostileFix) error {
				_, err := sc().CreateShortUrl(ctx, &shortenerv1.CreateShortUrlRequest{LongUrl: "https://example.com/pw", Password: pw})
				return err
			}, grpcWant: codes.InvalidArgument})
	}
	short7 := "short77"
	add(
		hostileRow{name: "update to a short password", method: "PATCH", path: "/api/v1/urls/{L}", auth: "bearer", ctype: appJSON, body: js(map[string]string{"password": short7}), want: 400,
			grpc: func(ctx context.Context, f *hostileFix) error {
				_, err := sc().UpdateShortUrl(ctx, &shortenerv1.UpdateShortUrlRequest{Code: f.L, Password: &short7})
				return err
			}, grpcWant: codes.InvalidArgument},
		hostileRow{name: "batch over the limit", method: "POST", path: "/api/v1/shorten:batch", auth: "bearer", ctype: appJSON, body: js(map[string]any{"requests": make([]map[string]string, 1001)}), want: 400},
		hostileRow{name: "empty batch", method: "POST", path: "/api/v1/shorten:batch", auth: "bearer", ctype: appJSON, body: `{"requests": []}`, want: 400},
		hostileRow{name: "wrong password json", method: "POST", path: "/{P}", ctype: appJSON, body: js(map[string]string{"password": "nope-nope"}), want: 403},
		hostileRow{name: "password of 10 KB", method: "POST", path: "/{P}", ctype: "application/x-www-form-urlencoded", body: "password=" + strings.Repeat("x", 10_000), want: 403},
	)

	// 9. Text: control characters anywhere, bidi controls in display text.
	bad := map[string]string{"nul": "a\x00b", "rlo": "\u202eevil", "lri": "\u2066x\u2069", "lre": "\u202ax", "newline": "a\nb", "tab": "a\tb", "c1": "a\u0085b", "del": "a\x7fb", "esc": "\x1b[31mred"}
	for kind, s := range bad {
		s := s
		add(
			hostileRow{name: "election title " + kind, method: "POST", path: "/api/v1/elections", auth: "admin", ctype: appJSON,
				body: js(map[string]any{"title": s, "candidates": []map[string]string{{"candidateId": "a", "name": "A"}, {"candidateId": "b", "name": "B"}}}), want: 400, wantBody: "title",
				grpc: func(ctx context.Context, f *hostileFix) error {
					_, err := vc().CreateElection(ctx, &votev1.CreateElectionRequest{Title: s, Candidates: []*votev1.Candidate{{CandidateId: "a", Name: "A"}, {CandidateId: "b", Name: "B"}}})
					return err
				}, grpcWant: codes.InvalidArgument},
			hostileRow{name: "candidate name " + kind, method: "POST", path: "/api/v1/elections", auth: "admin", ctype: appJSON,
				body: js(map[string]any{"title": "ok", "candidates": []map[string]string{{"candidateId": "a", "name": s}, {"candidateId": "b", "name": "B"}}}), want: 400, wantBody: "name",
				grpc: func(ctx context.Context, f *hostileFix) error {
					_, err := vc().CreateElection(ctx, &votev1.CreateElectionRequest{Title: "ok", Candidates: []*votev1.Candidate{{CandidateId: "a", Name: s}, {CandidateId: "b", Name: "B"}}})
					return err
				}, grpcWant: codes.InvalidArgument},
			hostileRow{name: "ban reason " + kind, method: "POST", path: "/api/v1/admin/bans", auth: "admin", ctype: appJSON,
				body: js(map[string]string{"userId": "{O}", "reason": s}), want: 400, wantBody: "reason",
				grpc: func(ctx context.Context, f *hostileFix) error {
					_, err := cc().BanUser(ctx, &canvasv1.BanUserRequest{UserId: f.ownerID, Reason: s})
					return err
				}, grpcWant: codes.InvalidArgument},
		)
	}
	for kind, s := range map[string]string{"nul": "victim-pass\x00", "newline": "victim-pass\n", "esc": "victim\x1bpass"} {
		s := s
		add(hostileRow{name: "account password " + kind, method: "POST", path: "/api/v1/auth/register", ctype: appJSON,
			body: js(map[string]string{"username": hostileVictim, "password": s}), want: 400,
			grpc: func(ctx context.Context, f *hostileFix) error {
				_, err := ic().Register(ctx, &identityv1.RegisterRequest{Username: hostileVictim, Password: s})
				return err
			}, grpcWant: codes.InvalidArgument})
	}
	add(
		hostileRow{name: "username with nul", method: "POST", path: "/api/v1/auth/register", ctype: appJSON, body: js(map[string]string{"username": "victim\x00", "password": "victim-password"}), want: 400,
			grpc: func(ctx context.Context, f *hostileFix) error {
				_, err := ic().Register(ctx, &identityv1.RegisterRequest{Username: "victim\x00", Password: "victim-password"})
				return err
			}, grpcWant: codes.InvalidArgument},
		hostileRow{name: "user search with nul", method: "GET", path: "/api/v1/admin/users?query=ad%00min", auth: "admin", want: 400, wantBody: "query",
			grpc: func(ctx context.Context, f *hostileFix) error {
				_, err := ic().ListUsers(ctx, &identityv1.ListUsersRequest{Query: "ad\x00min"})
				return err
			}, grpcWant: codes.InvalidArgument},
		hostileRow{name: "login username with nul", method: "POST", path: "/api/v1/auth/login", ctype: appJSON, body: js(map[string]string{"username": "hostile_owner\x00", "password": "owner-password-1"}), want: 400, wantBody: "username",
			grpc: func(ctx context.Context, f *hostileFix) error {
				_, err := ic().Login(ctx, &identityv1.LoginRequest{Username: "hostile_owner\x00", Password: "owner-password-1"})
				return err
			}, grpcWant: codes.InvalidArgument},
		hostileRow{name: "refresh token with nul", method: "POST", path: "/api/v1/auth/refresh", ctype: appJSON, body: js(map[string]string{"refreshToken": "tok\x00en"}), want: 401,
			grpc: func(ctx context.Context, f *hostileFix) error {
				_, err := ic().Refresh(ctx, &identityv1.RefreshRequest{RefreshToken: "tok\x00en"})
				return err
			}, grpcWant: codes.Unauthenticated},
		hostileRow{name: "stats range with nul", method: "GET", path: "/api/v1/stats/{L}?from=2026%00", auth: "bearer", want: 400},
		hostileRow{name: "user search with escape", method: "GET", path: "/api/v1/admin/users?query=%1B%5B31m", auth: "admin", want: 400, wantBody: "query"},
		hostileRow{name: "color with nul", method: "PUT", path: "/api/v1/favorite", auth: "bearer", ctype: appJSON, body: js(map[string]string{"color": "red\x00"}), want: 400,
			grpc: func(ctx context.Context, f *hostileFix) error {
				_, err := favoritev1.NewFavoriteServiceClient(f.p.conn).SetFavorite(ctx, &favoritev1.SetFavoriteRequest{Color: "red\x00"})
				return err
			}, grpcWant: codes.InvalidArgument},
		hostileRow{name: "alias with nul", method: "POST", path: "/api/v1/shorten", auth: "bearer", ctype: appJSON, body: js(map[string]string{"longUrl": "https://example.com/", "alias": "ab\x00c"}), want: 400,
			grpc: func(ctx context.Context, f *hostileFix) error {
				_, err := sc().CreateShortUrl(ctx, &shortenerv1.CreateShortUrlRequest{LongUrl: "https://example.com/", Alias: "ab\x00c"})
				return err
			}, grpcWant: codes.InvalidArgument},
		hostileRow{name: "alias with rlo", method: "POST", path: "/api/v1/shorten", auth: "bearer", ctype: appJSON, body: js(map[string]string{"longUrl": "https://example.com/", "alias": "gpj\u202eexe"}), want: 400},
		hostileRow{name: "target with nul", method: "POST", path: "/api/v1/shorten", auth: "bearer", ctype: appJSON, body: js(map[string]string{"longUrl": "https://example.com/\x00"}), want: 400},
		hostileRow{name: "target with crlf", method: "POST", path: "/api/v1/shorten", auth: "bearer", ctype: appJSON, body: js(map[string]string{"longUrl": "https://example.com/\r\nSet-Cookie: a=b"}), want: 400},
		// A valid colour other than the stored one: only the key can refuse
		// these, and a key let through would change the favourite.
		hostileRow{name: "idempotency key control char", method: "PUT", path: "/api/v1/favorite", auth: "bearer", ctype: appJSON, body: js(map[string]string{"color": "#654321"}), headers: []string{"Idempotency-Key", "key\twith-tab"}, want: 400, wantBody: "Idempotency-Key"},
		hostileRow{name: "idempotency key non-ascii", method: "PUT", path: "/api/v1/favorite", auth: "bearer", ctype: appJSON, body: js(map[string]string{"color": "#654321"}), headers: []string{"Idempotency-Key", "clé-1"}, want: 400, wantBody: "Idempotency-Key"},
		hostileRow{name: "idempotency key of 4000 bytes", method: "PUT", path: "/api/v1/favorite", auth: "bearer", ctype: appJSON, body: js(map[string]string{"color": "#654321"}), headers: []string{"Idempotency-Key", strings.Repeat("k", 4000)}, want: 400, wantBody: "Idempotency-Key"},
	)

	// 10. Auth and identifiers.
	add(
		hostileRow{name: "garbage bearer", method: "GET", path: "/api/v1/auth/me", headers: []string{"Authorization", "Bearer garbage"}, want: 401},
		hostileRow{name: "basic auth", method: "GET", path: "/api/v1/auth/me", headers: []string{"Authorization", "Basic YTpi"}, want: 401},
		hostileRow{name: "garbage session cookie", method: "GET", path: "/api/v1/auth/me", headers: []string{"Cookie", "session=garbage"}, want: 401},
		hostileRow{name: "spoofed gateway metadata headers", method: "GET", path: "/{L}", headers: []string{"X-Client-Addr", "1.2.3.4", "X-Gateway-Secret", "guess", "Grpc-Metadata-X-Client-Addr", "1.2.3.4"}, want: 302},
		hostileRow{name: "spoofed forwarded-for", method: "GET", path: "/{L}", headers: []string{"X-Forwarded-For", "8.8.8.8"}, want: 302},
		hostileRow{name: "unauthenticated create", method: "POST", path: "/api/v1/shorten", ctype: appJSON, body: short, want: 401,
			grpc: func(ctx context.Context, f *hostileFix) error {
				_, err := sc().CreateShortUrl(ctx, &shortenerv1.CreateShortUrlRequest{LongUrl: "https://example.com/x"})
				return err
			}, grpcWant: codes.Unauthenticated},
		hostileRow{name: "non-admin ban", method: "POST", path: "/api/v1/admin/bans", auth: "bearer", ctype: appJSON, body: js(map[string]string{"userId": "{O}"}), want: 403,
			grpc: func(ctx context.Context, f *hostileFix) error {
				_, err := cc().BanUser(ctx, &canvasv1.BanUserRequest{UserId: f.ownerID})
				return err
			}, grpcWant: codes.PermissionDenied},
		hostileRow{name: "bad election id", method: "GET", path: "/api/v1/elections/not-a-uuid", auth: "admin", want: 400,
			grpc: func(ctx context.Context, f *hostileFix) error {
				_, err := vc().GetElection(ctx, &votev1.GetElectionRequest{ElectionId: "not-a-uuid"})
				return err
			}, grpcWant: codes.InvalidArgument},
		hostileRow{name: "bad page token", method: "GET", path: "/api/v1/urls?pageToken=%00%ff", auth: "bearer", want: 400,
			grpc: func(ctx context.Context, f *hostileFix) error {
				_, err := sc().ListShortUrls(ctx, &shortenerv1.ListShortUrlsRequest{PageToken: "!!not-a-token"})
				return err
			}, grpcWant: codes.InvalidArgument},
		hostileRow{name: "negative page size", method: "GET", path: "/api/v1/urls?pageSize=-1", auth: "bearer", want: 400},
		hostileRow{name: "pixel out of board", method: "POST", path: "/api/v1/canvas/pixels", auth: "bearer", ctype: appJSON, body: js(map[string]int{"x": -1, "y": 0, "color": 2}), want: 400,
			grpc: func(ctx context.Context, f *hostileFix) error {
				_, err := cc().PlacePixel(ctx, &canvasv1.PlacePixelRequest{X: 1 << 30, Y: 0, Color: 2})
				return err
			}, grpcWant: codes.InvalidArgument},
		hostileRow{name: "pixel colour out of palette", method: "POST", path: "/api/v1/canvas/pixels", auth: "bearer", ctype: appJSON, body: js(map[string]int{"x": 1, "y": 1, "color": 99}), want: 400},
		hostileRow{name: "history bad x", method: "GET", path: "/api/v1/pixel?x=abc&y=1", auth: "admin", want: 400},
		hostileRow{name: "stream negative since", method: "GET", path: "/api/v1/canvas/stream?sinceSeq=-1", want: 400},
		hostileRow{name: "qr huge size", method: "GET", path: "/api/v1/urls/{L}/qr.png?size=100000", auth: "bearer", want: 400},
		hostileRow{name: "share negative expiry", method: "POST", path: "/api/v1/shares", auth: "bearer", ctype: appJSON, body: js(map[string]int{"expiresInSec": -5}), want: 400},
		hostileRow{name: "colour out of range", method: "PUT", path: "/api/v1/favorite", auth: "bearer", ctype: appJSON, body: js(map[string]string{"color": "rgb(300, 0, 0)"}), want: 400},
		hostileRow{name: "colour script", method: "PUT", path: "/api/v1/favorite", auth: "bearer", ctype: appJSON, body: js(map[string]string{"color": "javascript:alert(1)"}), want: 400},
		hostileRow{name: "reserved alias", method: "POST", path: "/api/v1/shorten", auth: "bearer", ctype: appJSON, body: js(map[string]string{"longUrl": "https://example.com/", "alias": "API"}), want: 400},
		hostileRow{name: "alias taken", method: "POST", path: "/api/v1/shorten", auth: "bearer", ctype: appJSON, body: js(map[string]string{"longUrl": "https://example.com/", "alias": "{L}"}), want: 409},
		hostileRow{name: "code of 33 characters", method: "GET", path: "/" + strings.Repeat("a", 33), want: 404},
		hostileRow{name: "code non-ascii", method: "GET", path: "/%C3%BC", want: 404},
		hostileRow{name: "code percent nul", method: "GET", path: "/%00", want: 404},
		hostileRow{name: "share slug percent nul", method: "GET", path: "/s/%00", want: 400},
		hostileRow{name: "code invalid utf-8", method: "GET", path: "/%ff%fe", want: 400},
		hostileRow{name: "query invalid utf-8", method: "GET", path: "/api/v1/canvas/info?x=%ff", want: 400},
		hostileRow{name: "share slug traversal", method: "GET", path: "/s/..%2F..%2Fetc", want: 404},
		hostileRow{name: "delete someone else's link", method: "DELETE", path: "/api/v1/urls/nosuch1", auth: "bearer", want: 404},
		hostileRow{name: "vote bad candidate", method: "POST", path: "/api/v1/votes", auth: "bearer", ctype: appJSON, body: js(map[string]string{"electionId": "{E}", "candidateId": "zz\x00"}), want: 400},
	)
	for i := range rows {
		if rows[i].want == 0 {
			rows[i].want = http.StatusOK
		}
	}
	return rows
}
