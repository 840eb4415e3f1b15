package app_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	shortenerv1 "github.com/apiplatform/platform/gen/go/shortener/v1"
	"github.com/apiplatform/platform/server/app"
	"github.com/apiplatform/platform/server/platform/ratelimit"
)

// The shortener's end-to-end cases talk to a real server through two
// clients: the generated gRPC stub and plain net/http against the gateway.

// shortBrowserUA is a human visitor; shortBotUA and shortPreviewUA are counted apart.
const (
	shortBrowserUA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
	shortBotUA     = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
	shortPreviewUA = "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"
)

// shortConfig flushes clicks quickly (the stats cases wait for them) and
// lifts per-user and per-address limits that tests sharing one Redis and
// one client address would otherwise hit.
func shortConfig(cfg *app.Config) {
	cfg.Shortener.FlushInterval = 20 * time.Millisecond
	roomy := ratelimit.Limit{Rate: 10_000, Period: time.Minute, Burst: 10_000}
	cfg.Shortener.CreateLimit, cfg.Shortener.PasswordLimit = roomy, roomy
}

// shortFollowed is the answer to following a short link.
type shortFollowed struct {
	status   int    // HTTP status (over gRPC: the x-http-code the gateway would send, or the error's)
	location string // Location header
	cache    string // Cache-Control header
	vary     string // Vary header
	body     string
	err      error // the gRPC status of an error answer
}

type shortAPI interface {
	name() string
	create(t *testing.T, token string, req *shortenerv1.CreateShortUrlRequest) (*shortenerv1.ShortUrl, error)
	batch(t *testing.T, token string, reqs ...*shortenerv1.CreateShortUrlRequest) ([]*shortenerv1.BatchCreateShortUrlsResult, error)
	get(t *testing.T, token, code string) (*shortenerv1.ShortUrl, error)
	list(t *testing.T, token string, size int32, page string) (*shortenerv1.ListShortUrlsResponse, error)
	update(t *testing.T, token string, req *shortenerv1.UpdateShortUrlRequest) (*shortenerv1.ShortUrl, error)
	del(t *testing.T, token, code string) error
	stats(t *testing.T, token, code, from, to string) (*shortenerv1.GetStatsResponse, error)
	// follow follows code as a visitor with the given User-Agent, posting
	// password when not empty.
	follow(t *testing.T, code, password, ua string) shortFollowed
	qr(t *testing.T, code string, size int32) (contentType string, png []byte, err error)
	// followRef follows code as a visitor with a User-Agent and a Referer.
	followRef(t *testing.T, code, ua, referer string) shortFollowed
	// search lists the links whose code or target contains query.
	search(t *testing.T, token, query string, size int32, page string) (*shortenerv1.ListShortUrlsResponse, error)
	// statsBy is stats bucketed by granularity.
	statsBy(t *testing.T, token, code string, g shortenerv1.StatsGranularity) (*shortenerv1.GetStatsResponse, error)
}

func shortClients(p *platform) []shortAPI {
	return []shortAPI{&shortGRPC{p: p}, shortREST{p: p}}
}

// ---- gRPC ----

type shortGRPC struct {
	p     *platform
	mu    sync.Mutex
	conns map[string]*grpc.ClientConn // by User-Agent
}

func (g *shortGRPC) name() string { return "grpc" }

func (g *shortGRPC) ctx(token string) context.Context {
	if token == "" {
		return context.Background()
	}
	return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+token)
}

func (g *shortGRPC) client() shortenerv1.ShortenerServiceClient {
	return shortenerv1.NewShortenerServiceClient(g.p.conn)
}

// clientAs is a client whose calls carry ua (gRPC's user-agent is a
// connection option).
func (g *shortGRPC) clientAs(t *testing.T, ua string) shortenerv1.ShortenerServiceClient {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.conns == nil {
		g.conns = map[string]*grpc.ClientConn{}
	}
	c := g.conns[ua]
	if c == nil {
		var err error
		if c, err = grpc.NewClient(g.p.srv.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithUserAgent(ua)); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		g.conns[ua] = c
	}
	return shortenerv1.NewShortenerServiceClient(c)
}

func (g *shortGRPC) create(t *testing.T, token string, req *shortenerv1.CreateShortUrlRequest) (*shortenerv1.ShortUrl, error) {
	res, err := g.client().CreateShortUrl(g.ctx(token), req)
	return res.GetShortUrl(), err
}

func (g *shortGRPC) batch(t *testing.T, token string, reqs ...*shortenerv1.CreateShortUrlRequest) ([]*shortenerv1.BatchCreateShortUrlsResult, error) {
	res, err := g.client().BatchCreateShortUrls(g.ctx(token), &shortenerv1.BatchCreateShortUrlsRequest{Requests: reqs})
	return res.GetResults(), err
}

func (g *shortGRPC) get(t *testing.T, token, code string) (*shortenerv1.ShortUrl, error) {
	res, err := g.client().GetShortUrl(g.ctx(token), &shortenerv1.GetShortUrlRequest{Code: code})
	return res.GetShortUrl(), err
}

func (g *shortGRPC) list(t *testing.T, token string, size int32, page string) (*shortenerv1.ListShortUrlsResponse, error) {
	return g.client().ListShortUrls(g.ctx(token), &shortenerv1.ListShortUrlsRequest{PageSize: size, PageToken: page})
}

func (g *shortGRPC) update(t *testing.T, token string, req *shortenerv1.UpdateShortUrlRequest) (*shortenerv1.ShortUrl, error) {
	res, err := g.client().UpdateShortUrl(g.ctx(token), req)
	return res.GetShortUrl(), err
}

func (g *shortGRPC) del(t *testing.T, token, code string) error {
	_, err := g.client().DeleteShortUrl(g.ctx(token), &shortenerv1.DeleteShortUrlRequest{Code: code})
	return err
}

func (g *shortGRPC) stats(t *testing.T, token, code, from, to string) (*shortenerv1.GetStatsResponse, error) {
	return g.client().GetStats(g.ctx(token), &shortenerv1.GetStatsRequest{Code: code, From: from, To: to})
}

func (g *shortGRPC) follow(t *testing.T, code, password, ua string) shortFollowed {
	var hdr metadata.MD
	body, err := g.clientAs(t, ua).FollowShortUrl(context.Background(),
		&shortenerv1.FollowShortUrlRequest{Code: code, Password: password}, grpc.Header(&hdr))
	if err != nil {
		return shortFollowed{status: shortHTTPStatus(err), err: err}
	}
	f := shortFollowed{status: http.StatusOK, body: string(body.GetData())}
	if v := hdr.Get("x-http-code"); len(v) == 1 {
		f.status, _ = strconv.Atoi(v[0])
	}
	if v := hdr.Get("location"); len(v) == 1 {
		f.location = v[0]
	}
	if v := hdr.Get("cache-control"); len(v) == 1 {
		f.cache = v[0]
	}
	if v := hdr.Get("vary"); len(v) == 1 {
		f.vary = v[0]
	}
	return f
}

func (g *shortGRPC) followRef(t *testing.T, code, ua, referer string) shortFollowed {
	ctx := metadata.AppendToOutgoingContext(context.Background(), "x-http-referer", referer)
	var hdr metadata.MD
	_, err := g.clientAs(t, ua).FollowShortUrl(ctx, &shortenerv1.FollowShortUrlRequest{Code: code}, grpc.Header(&hdr))
	if err != nil {
		return shortFollowed{status: shortHTTPStatus(err), err: err}
	}
	f := shortFollowed{status: http.StatusOK}
	if v := hdr.Get("x-http-code"); len(v) == 1 {
		f.status, _ = strconv.Atoi(v[0])
	}
	return f
}

func (g *shortGRPC) search(t *testing.T, token, query string, size int32, page string) (*shortenerv1.ListShortUrlsResponse, error) {
	return g.client().ListShortUrls(g.ctx(token), &shortenerv1.ListShortUrlsRequest{PageSize: size, PageToken: page, Query: query})
}

func (g *shortGRPC) statsBy(t *testing.T, token, code string, gr shortenerv1.StatsGranularity) (*shortenerv1.GetStatsResponse, error) {
	return g.client().GetStats(g.ctx(token), &shortenerv1.GetStatsRequest{Code: code, Granularity: gr})
}

func (g *shortGRPC) qr(t *testing.T, code string, size int32) (string, []byte, error) {
	body, err := g.client().GetQrCode(context.Background(), &shortenerv1.GetQrCodeRequest{Code: code, Size: size})
	return body.GetContentType(), body.GetData(), err
}

// shortHTTPStatus is the HTTP status the gateway answers an error with.
func shortHTTPStatus(err error) int {
	st, _ := status.FromError(err)
	if shortIsGone(st) {
		return http.StatusGone
	}
	return runtime.HTTPStatusFromCode(st.Code())
}

func shortIsGone(st *status.Status) bool {
	if st.Code() != codes.NotFound {
		return false
	}
	for _, d := range st.Details() {
		if ei, ok := d.(*errdetails.ErrorInfo); ok && ei.GetReason() == "GONE" {
			return true
		}
	}
	return false
}

// ---- REST ----

type shortREST struct{ p *platform }

func (r shortREST) name() string { return "rest" }

// shortNoRedirects is a client that shows redirects instead of following them.
var shortNoRedirects = &http.Client{
	Timeout:       10 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// shortSend makes one request; headers come in pairs.
func shortSend(t *testing.T, c *http.Client, method, u, token, contentType string, body []byte, headers ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, b
}

// shortStatusFromREST decodes an error answer back into its gRPC status, after
// checking the HTTP status is the one the code (and reason) map to.
func shortStatusFromREST(t *testing.T, res *http.Response, b []byte) error {
	t.Helper()
	var pb spb.Status
	if err := protojson.Unmarshal(b, &pb); err != nil {
		t.Fatalf("HTTP %d with a body that is not a status: %v: %s", res.StatusCode, err, b)
	}
	err := status.ErrorProto(&pb)
	if want := shortHTTPStatus(err); res.StatusCode != want {
		t.Fatalf("HTTP %d for %v, want %d", res.StatusCode, err, want)
	}
	noLeak(t, string(b))
	return err
}

// call sends a JSON request and decodes a 2xx JSON answer into out.
func (r shortREST) call(t *testing.T, method, path, token string, in, out proto.Message) (*http.Response, error) {
	t.Helper()
	var body []byte
	if in != nil {
		var err error
		if body, err = protojson.Marshal(in); err != nil {
			t.Fatal(err)
		}
	}
	res, b := shortSend(t, shortNoRedirects, method, r.p.base+path, token, "application/json", body)
	if res.StatusCode/100 != 2 {
		return res, shortStatusFromREST(t, res, b)
	}
	if out != nil {
		if err := protojson.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
	return res, nil
}

func (r shortREST) create(t *testing.T, token string, req *shortenerv1.CreateShortUrlRequest) (*shortenerv1.ShortUrl, error) {
	out := &shortenerv1.ShortUrl{}
	res, err := r.call(t, "POST", "/api/v1/shorten", token, req, out)
	if err != nil {
		return nil, err
	}
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("create answered %d, want 201", res.StatusCode)
	}
	return out, nil
}

func (r shortREST) batch(t *testing.T, token string, reqs ...*shortenerv1.CreateShortUrlRequest) ([]*shortenerv1.BatchCreateShortUrlsResult, error) {
	out := &shortenerv1.BatchCreateShortUrlsResponse{}
	_, err := r.call(t, "POST", "/api/v1/shorten:batch", token, &shortenerv1.BatchCreateShortUrlsRequest{Requests: reqs}, out)
	return out.GetResults(), err
}

func (r shortREST) get(t *testing.T, token, code string) (*shortenerv1.ShortUrl, error) {
	out := &shortenerv1.ShortUrl{}
	_, err := r.call(t, "GET", "/api/v1/urls/"+url.PathEscape(code), token, nil, out)
	return out, err
}

func (r shortREST) list(t *testing.T, token string, size int32, page string) (*shortenerv1.ListShortUrlsResponse, error) {
	out := &shortenerv1.ListShortUrlsResponse{}
	q := url.Values{"pageSize": {strconv.Itoa(int(size))}, "pageToken": {page}}
	_, err := r.call(t, "GET", "/api/v1/urls?"+q.Encode(), token, nil, out)
	return out, err
}

func (r shortREST) update(t *testing.T, token string, req *shortenerv1.UpdateShortUrlRequest) (*shortenerv1.ShortUrl, error) {
	out := &shortenerv1.ShortUrl{}
	_, err := r.call(t, "PATCH", "/api/v1/urls/"+url.PathEscape(req.GetCode()), token, req, out)
	return out, err
}

func (r shortREST) del(t *testing.T, token, code string) error {
	_, err := r.call(t, "DELETE", "/api/v1/urls/"+url.PathEscape(code), token, nil, nil)
	return err
}

func (r shortREST) stats(t *testing.T, token, code, from, to string) (*shortenerv1.GetStatsResponse, error) {
	out := &shortenerv1.GetStatsResponse{}
	q := url.Values{}
	if from != "" {
		q.Set("from", from)
	}
	if to != "" {
		q.Set("to", to)
	}
	_, err := r.call(t, "GET", "/api/v1/stats/"+url.PathEscape(code)+"?"+q.Encode(), token, nil, out)
	return out, err
}

func (r shortREST) follow(t *testing.T, code, password, ua string) shortFollowed {
	return r.followWith(t, shortNoRedirects, code, password, "User-Agent", ua)
}

// followWith follows code with client c and extra headers; a password is
// posted the way the HTML form posts it.
func (r shortREST) followWith(t *testing.T, c *http.Client, code, password string, headers ...string) shortFollowed {
	t.Helper()
	var res *http.Response
	var b []byte
	if password == "" {
		res, b = shortSend(t, c, "GET", r.p.base+"/"+code, "", "", nil, headers...)
	} else {
		form := url.Values{"password": {password}}.Encode()
		res, b = shortSend(t, c, "POST", r.p.base+"/"+code, "", "application/x-www-form-urlencoded", []byte(form), headers...)
	}
	f := shortFollowed{status: res.StatusCode, location: res.Header.Get("Location"), cache: res.Header.Get("Cache-Control"), vary: strings.Join(res.Header.Values("Vary"), ", "), body: string(b)}
	if res.StatusCode >= 400 && strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		f.err = shortStatusFromREST(t, res, b)
	}
	return f
}

func (r shortREST) followRef(t *testing.T, code, ua, referer string) shortFollowed {
	return r.followWith(t, shortNoRedirects, code, "", "User-Agent", ua, "Referer", referer)
}

func (r shortREST) search(t *testing.T, token, query string, size int32, page string) (*shortenerv1.ListShortUrlsResponse, error) {
	out := &shortenerv1.ListShortUrlsResponse{}
	q := url.Values{"pageSize": {strconv.Itoa(int(size))}, "pageToken": {page}, "query": {query}}
	_, err := r.call(t, "GET", "/api/v1/urls?"+q.Encode(), token, nil, out)
	return out, err
}

func (r shortREST) statsBy(t *testing.T, token, code string, g shortenerv1.StatsGranularity) (*shortenerv1.GetStatsResponse, error) {
	out := &shortenerv1.GetStatsResponse{}
	_, err := r.call(t, "GET", "/api/v1/stats/"+url.PathEscape(code)+"?granularity="+g.String(), token, nil, out)
	return out, err
}

func (r shortREST) qr(t *testing.T, code string, size int32) (string, []byte, error) {
	res, b := shortSend(t, shortNoRedirects, "GET", r.p.base+"/api/v1/urls/"+code+"/qr.png?size="+strconv.Itoa(int(size)), "", "", nil)
	if res.StatusCode != http.StatusOK {
		return "", nil, shortStatusFromREST(t, res, b)
	}
	return res.Header.Get("Content-Type"), b, nil
}

// ---- helpers ----

func shortMustCreate(t *testing.T, c shortAPI, token string, req *shortenerv1.CreateShortUrlRequest) *shortenerv1.ShortUrl {
	t.Helper()
	u, err := c.create(t, token, req)
	if err != nil {
		t.Fatalf("create %v: %v", req, err)
	}
	return u
}

// shortWantGone checks a 410: NOT_FOUND with reason GONE.
func shortWantGone(t *testing.T, err error) {
	t.Helper()
	st := wantCode(t, err, codes.NotFound)
	if !shortIsGone(st) {
		t.Fatalf("NOT_FOUND without reason GONE: %v", st.Details())
	}
}

// shortWaitStats polls the stats of code until the totals are humans and bots
// (clicks reach the database with the next flush).
func shortWaitStats(t *testing.T, c shortAPI, token, code string, humans, bots int64) *shortenerv1.GetStatsResponse {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		st, err := c.stats(t, token, code, "", "")
		if err != nil {
			t.Fatal(err)
		}
		if st.GetTotalHumanClicks() == humans && st.GetTotalBotClicks() == bots {
			return st
		}
		if time.Now().After(deadline) || st.GetTotalHumanClicks() > humans || st.GetTotalBotClicks() > bots {
			t.Fatalf("stats of %s: %d human and %d bot clicks, want %d and %d", code, st.GetTotalHumanClicks(), st.GetTotalBotClicks(), humans, bots)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// shortClientFrom is an HTTP client whose connections come from local address
// ip (any 127.0.0.0/8 address works on loopback), so one server sees
// trusted and untrusted peers.
func shortClientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{
		Timeout:       10 * time.Second,
		Transport:     &http.Transport{DialContext: d.DialContext},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
