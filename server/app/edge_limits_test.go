package app_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	canvasv1 "github.com/apiplatform/platform/gen/go/canvas/v1"
	shortenerv1 "github.com/apiplatform/platform/gen/go/shortener/v1"
	"github.com/apiplatform/platform/server/app"
	"github.com/apiplatform/platform/server/platform/ratelimit"
)

// A client that sends its body one byte at a time is cut off once the
// body timeout has passed, however steadily it drips; nothing is stored.
func TestSlowBodyCutOff(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		const timeout = 300 * time.Millisecond
		p := start(t, b, func(cfg *app.Config) { cfg.Edge.HTTPBodyTimeout = timeout })
		_, tok := grpcAPI{p}.guest(t)
		conn, err := net.Dial("tcp", strings.TrimPrefix(p.base, "http://")) // the gateway, split or not
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		body := `{"longUrl": "https://example.com/slow"}`
		head := "POST /api/v1/shorten HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" +
			"Authorization: Bearer " + tok + "\r\nContent-Length: " + fmt.Sprint(len(body)) + "\r\n\r\n"
		began := time.Now()
		if _, err := io.WriteString(conn, head+body[:1]); err != nil {
			t.Fatal(err)
		}
		stop := make(chan struct{})
		defer close(stop)
		go func() { // drip the rest, never finishing in time
			tick := time.NewTicker(timeout / 3)
			defer tick.Stop()
			for i := 1; i < len(body)-1; i++ {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				if _, err := conn.Write([]byte{body[i]}); err != nil {
					return
				}
			}
		}()
		// The failure bound is generous; the event waited on is the close.
		_ = conn.SetReadDeadline(time.Now().Add(30 * timeout))
		answer, err := io.ReadAll(conn)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("the connection was still open after %s (answer so far %q)", 30*timeout, answer)
		}
		if took := time.Since(began); took < timeout {
			t.Fatalf("cut off after %s, before the %s timeout", took, timeout)
		}
		if bytes.HasPrefix(answer, []byte("HTTP/1.1 5")) {
			t.Fatalf("a slow body got a server error: %q", answer)
		}
		list, err := shortenerv1.NewShortenerServiceClient(p.conn).ListShortUrls(grpcAPI{p}.ctx(tok), &shortenerv1.ListShortUrlsRequest{})
		if err != nil || len(list.GetShortUrls()) != 0 {
			t.Fatalf("the cut-off request stored something: %v, %v", list, err)
		}
	})
}

// dialFrom connects to the gRPC server from a given loopback address.
func dialFrom(t *testing.T, p *platform, ip string) *grpc.ClientConn {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	conn, err := grpc.NewClient(p.srv.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// The 51st open stream from one address is refused, over gRPC and REST,
// while another address still subscribes; refusals are counted.
func TestStreamCapPerClient(t *testing.T) {
	p := startCanvas(t, embeddedBackend, func(cfg *app.Config) { cfg.MetricsAddr = "127.0.0.1:0" })
	refusedBefore := metricValue(t, p, `stream_subscriptions_refused_total{scope="client"}`)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	one := canvasv1.NewCanvasServiceClient(dialFrom(t, p, "127.0.0.1"))
	var streams []canvasv1.CanvasService_StreamPixelsClient
	for range 50 {
		s, err := one.StreamPixels(ctx, &canvasv1.StreamPixelsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		streams = append(streams, s)
	}
	// A placement reaches every admitted stream: all 50 are open.
	place := func() {
		_, tok := grpcAPI{p}.guest(t)
		ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+tok)
		if _, err := canvasv1.NewCanvasServiceClient(p.conn).PlacePixel(ctx, &canvasv1.PlacePixelRequest{X: 1, Y: 1, Color: 3}); err != nil {
			t.Fatal(err)
		}
	}
	// Each stream opens with a heartbeat once it is subscribed; then the
	// placement reaches it.
	for i, s := range streams {
		if m, err := s.Recv(); err != nil || m.GetHeartbeat() == nil {
			t.Fatalf("stream %d: %v %v, want a heartbeat first", i+1, m, err)
		}
	}
	place()
	for i, s := range streams {
		if m, err := s.Recv(); err != nil || m.GetBatch() == nil {
			t.Fatalf("stream %d: %v %v, want the batch", i+1, m, err)
		}
	}
	s51, err := one.StreamPixels(ctx, &canvasv1.StreamPixelsRequest{})
	if err == nil {
		_, err = s51.Recv()
	}
	if st := wantCode(t, err, codes.ResourceExhausted); !strings.Contains(st.Message(), "streams") {
		t.Fatalf("refusal does not say why: %q", st.Message())
	}
	rest, err := shortClientFrom("127.0.0.1").Get(p.base + "/api/v1/canvas/stream")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rest.Body)
	rest.Body.Close()
	if rest.StatusCode != http.StatusTooManyRequests || rest.Header.Get("Retry-After") == "" {
		t.Fatalf("REST stream 51: %d %s (Retry-After %q), want 429", rest.StatusCode, b, rest.Header.Get("Retry-After"))
	}

	// Another address is not affected, over either surface.
	other, err := canvasv1.NewCanvasServiceClient(dialFrom(t, p, "127.0.0.2")).StreamPixels(ctx, &canvasv1.StreamPixelsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if m, err := other.Recv(); err != nil || m.GetHeartbeat() == nil {
		t.Fatalf("gRPC stream from another address: %v %v", m, err)
	}
	req, _ := http.NewRequestWithContext(ctx, "GET", p.base+"/api/v1/canvas/stream", nil)
	res, err := shortClientFrom("127.0.0.2").Do(req)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("REST stream from another address: %v %v", res, err)
	}
	defer res.Body.Close()
	lines := bufio.NewReader(res.Body)
	if line, err := lines.ReadString('\n'); err != nil || !strings.Contains(line, "heartbeat") {
		t.Fatalf("REST stream from another address: %q, %v, want a heartbeat first", line, err)
	}
	place()
	if m, err := other.Recv(); err != nil || m.GetBatch() == nil {
		t.Fatalf("gRPC stream from another address: %v %v", m, err)
	}
	if line, err := lines.ReadString('\n'); err != nil || !strings.Contains(line, "batch") {
		t.Fatalf("REST stream from another address: %q, %v", line, err)
	}
	if after := metricValue(t, p, `stream_subscriptions_refused_total{scope="client"}`); after < refusedBefore+2 {
		t.Fatalf("refusals counted %v -> %v, want 2 more", refusedBefore, after)
	}
}

// metricValue reads one sample from the server's /metrics (0 when absent).
func metricValue(t *testing.T, p *platform, series string) float64 {
	t.Helper()
	res, err := http.Get("http://" + p.srv.MetricsAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			var f float64
			fmt.Sscan(v, &f)
			return f
		}
	}
	return 0
}

// rawClient neither asks for nor decodes compression by itself, and does
// not follow redirects.
var rawClient = &http.Client{
	Timeout:       10 * time.Second,
	Transport:     &http.Transport{DisableCompression: true},
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

func rawGet(t *testing.T, url string, headers ...string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := rawClient.Do(req)
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

// The binary snapshot of an empty board is small gzipped and decodes to
// the same bytes; its ETag still revalidates; PNG is never recompressed.
func TestSnapshotCompressed(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		p := start(t, b, nil) // the default board: 1000 x 1000
		plain, raw := rawGet(t, p.base+"/api/v1/canvas")
		if plain.StatusCode != 200 || plain.Header.Get("Content-Encoding") != "" || len(raw) < 100_000 {
			t.Fatalf("identity snapshot: %d, encoding %q, %d bytes", plain.StatusCode, plain.Header.Get("Content-Encoding"), len(raw))
		}
		gz, zipped := rawGet(t, p.base+"/api/v1/canvas", "Accept-Encoding", "gzip")
		if gz.StatusCode != 200 || gz.Header.Get("Content-Encoding") != "gzip" || !strings.Contains(strings.Join(gz.Header.Values("Vary"), ","), "Accept-Encoding") {
			t.Fatalf("gzip snapshot: %d, encoding %q, vary %q", gz.StatusCode, gz.Header.Get("Content-Encoding"), gz.Header.Values("Vary"))
		}
		if len(zipped) >= 10_000 {
			t.Fatalf("gzipped empty board is %d bytes, want under 10 KB", len(zipped))
		}
		zr, err := gzip.NewReader(bytes.NewReader(zipped))
		if err != nil {
			t.Fatal(err)
		}
		unzipped, err := io.ReadAll(zr)
		if err != nil || !bytes.Equal(unzipped, raw) {
			t.Fatalf("gzip decodes to %d bytes (%v), want the %d identity bytes", len(unzipped), err, len(raw))
		}
		t.Logf("snapshot: %d bytes, %d gzipped", len(raw), len(zipped))
		etag := gz.Header.Get("ETag")
		if !strings.HasPrefix(etag, `W/"`) {
			t.Fatalf("compressed answer carries ETag %q, want a weak tag", etag)
		}
		again, body := rawGet(t, p.base+"/api/v1/canvas", "Accept-Encoding", "gzip", "If-None-Match", etag)
		if again.StatusCode != http.StatusNotModified || len(body) != 0 || again.Header.Get("ETag") != etag {
			t.Fatalf("revalidation: %d, %d bytes, ETag %q", again.StatusCode, len(body), again.Header.Get("ETag"))
		}
		png, _ := rawGet(t, p.base+"/canvas.png", "Accept-Encoding", "gzip")
		if png.StatusCode != 200 || png.Header.Get("Content-Encoding") != "" {
			t.Fatalf("png: %d, encoding %q", png.StatusCode, png.Header.Get("Content-Encoding"))
		}
	})
}

// Guesses at a link's password are limited per link across addresses:
// new addresses behind the trusted proxy gain nothing once the link's own
// budget is spent.
func TestPasswordGuessesPerLink(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		p := start(t, b, func(cfg *app.Config) {
			shortConfig(cfg)
			cfg.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
			cfg.Shortener.PasswordLinkLimit = ratelimit.Limit{Rate: 1, Period: time.Hour, Burst: 3}
		})
		r := shortREST{p}
		_, tok := grpcAPI{p}.guest(t)
		u := shortMustCreate(t, r, tok, &shortenerv1.CreateShortUrlRequest{LongUrl: "https://example.com/guarded", Password: "right-password"})
		proxy := shortClientFrom("127.0.0.1")
		for i := range 3 {
			if f := r.followWith(t, proxy, u.GetCode(), "wrong", "X-Forwarded-For", fmt.Sprintf("81.2.69.%d", i+1)); f.status != http.StatusForbidden {
				t.Fatalf("guess %d: %d %v", i+1, f.status, f.err)
			}
		}
		f := r.followWith(t, proxy, u.GetCode(), "wrong", "X-Forwarded-For", "81.2.69.99")
		if f.status != http.StatusTooManyRequests {
			t.Fatalf("a fourth address on the same link: %d %v, want 429", f.status, f.err)
		}
		retryInfo(t, f.err)
	})
}

// A batch costs one create token per item: a batch larger than the burst
// is refused, and batches share one budget with single creates.
func TestBatchCostsPerItem(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		p := start(t, b, func(cfg *app.Config) {
			shortConfig(cfg)
			cfg.Shortener.CreateLimit = ratelimit.Limit{Rate: 1, Period: time.Hour, Burst: 10}
		})
		for _, c := range shortClients(p) {
			t.Run(c.name(), func(t *testing.T) {
				_, tok := grpcAPI{p}.guest(t)
				items := func(n int) []*shortenerv1.CreateShortUrlRequest {
					var out []*shortenerv1.CreateShortUrlRequest
					for i := range n {
						out = append(out, shortReq(fmt.Sprintf("https://example.com/%s/%d", c.name(), i)))
					}
					return out
				}
				_, err := c.batch(t, tok, items(11)...)
				wantField(t, err, "requests")
				if res, err := c.batch(t, tok, items(7)...); err != nil || len(res) != 7 {
					t.Fatalf("7 of 10 tokens: %v, %v", res, err)
				}
				_, err = c.batch(t, tok, items(4)...)
				retryInfo(t, err)
				if _, err := c.create(t, tok, shortReq("https://example.com/single-1")); err != nil {
					t.Fatalf("a single create within the 3 left: %v", err)
				}
			})
		}
	})
}

// The cap per replica holds whatever the addresses: with room for two
// streams, a third address is refused, and counted as the replica's
// refusal.
func TestStreamCapPerReplica(t *testing.T) {
	p := startCanvas(t, embeddedBackend, func(cfg *app.Config) {
		cfg.MetricsAddr = "127.0.0.1:0"
		cfg.Edge.StreamsTotal = 2
	})
	refusedBefore := metricValue(t, p, `stream_subscriptions_refused_total{scope="replica"}`)
	open := func(ctx context.Context, ip string) (canvasv1.CanvasService_StreamPixelsClient, error) {
		s, err := canvasv1.NewCanvasServiceClient(dialFrom(t, p, ip)).StreamPixels(ctx, &canvasv1.StreamPixelsRequest{})
		if err != nil {
			return nil, err
		}
		if _, err := s.Recv(); err != nil { // the heartbeat: subscribed
			return nil, err
		}
		return s, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := open(ctx, "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	if _, err := open(ctx, "127.0.0.2"); err != nil {
		t.Fatal(err)
	}
	_, err := open(ctx, "127.0.0.3")
	if st := wantCode(t, err, codes.ResourceExhausted); !strings.Contains(st.Message(), "server") {
		t.Fatalf("refusal does not say the server is full: %q", st.Message())
	}
	if after := metricValue(t, p, `stream_subscriptions_refused_total{scope="replica"}`); after < refusedBefore+1 {
		t.Fatalf("replica refusals counted %v -> %v, want 1 more", refusedBefore, after)
	}
}

// Streams are never compressed, even for a client that accepts gzip:
// each message reaches the client when it is sent (NDJSON and SSE alike).
func TestStreamsNotCompressed(t *testing.T) {
	p := startCanvas(t, embeddedBackend, nil)
	for _, accept := range []string{"application/json", "text/event-stream"} {
		t.Run(accept, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "GET", p.base+"/api/v1/canvas/stream", nil)
			req.Header.Set("Accept-Encoding", "gzip, zstd")
			req.Header.Set("Accept", accept)
			res, err := (&http.Client{Transport: &http.Transport{DisableCompression: true}}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			if res.StatusCode != 200 || res.Header.Get("Content-Encoding") != "" {
				t.Fatalf("stream: %d, Content-Encoding %q, want 200 uncompressed", res.StatusCode, res.Header.Get("Content-Encoding"))
			}
			if sse := strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream"); sse != (accept == "text/event-stream") {
				t.Fatalf("Accept %s answered as %s", accept, res.Header.Get("Content-Type"))
			}
			// The first message arrives on its own: a compressor would hold
			// it until its window filled or the stream ended.
			lines := bufio.NewReader(res.Body)
			for {
				line, err := lines.ReadString('\n')
				if err != nil {
					t.Fatalf("stream ended before its first message: %v", err)
				}
				if strings.Contains(line, "heartbeat") {
					return
				}
			}
		})
	}
}

// Session cookies are Secure whenever the public URL is https, without
// --secure-cookies: behind a TLS-terminating balancer the gateway itself
// sees plain HTTP.
func TestSecureCookiesBehindHTTPS(t *testing.T) {
	for public, want := range map[string]bool{"": false, "https://short.example": true} {
		t.Run("public="+public, func(t *testing.T) {
			p := start(t, embeddedBackend, func(cfg *app.Config) {
				if public != "" {
					cfg.PublicBaseURL = public
				}
			})
			req, _ := http.NewRequest("POST", p.base+"/api/v1/auth/guest", strings.NewReader("{}"))
			req.Header.Set("Content-Type", "application/json")
			res, err := rawClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			var found bool
			for _, c := range res.Cookies() {
				if c.Name == "session" {
					found = true
					if c.Secure != want {
						t.Fatalf("session cookie Secure=%v, want %v (%v)", c.Secure, want, res.Header.Values("Set-Cookie"))
					}
				}
			}
			if res.StatusCode != 200 || !found {
				t.Fatalf("guest: %d, cookies %v", res.StatusCode, res.Header.Values("Set-Cookie"))
			}
		})
	}
}
