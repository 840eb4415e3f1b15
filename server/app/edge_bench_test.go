package app_test

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/apiplatform/platform/gateway"
	favoritev1 "github.com/apiplatform/platform/gen/go/favorite/v1"
	sharev1 "github.com/apiplatform/platform/gen/go/share/v1"
	"github.com/apiplatform/platform/server/app"
)

// BenchmarkEdgeLoad is what a user of the REST edge sees, measured with wrk
// (HTTP/1.1, keep-alive, a browser User-Agent) in one run on this machine:
//
//   - bare: a net/http server answering a 302 from a Go map, the ceiling
//     for any Go HTTP server on these cores;
//   - code: GET /{code} through the gateway in the server's process;
//   - slug: GET /s/{slug}, the share page (200, HTML), and slug-304: the
//     same with If-None-Match (a browser revalidating);
//   - code-split: GET /{code} through a separate gateway over a real gRPC
//     connection to the same server (the `server gateway` deployment).
//
// The phases alternate in rounds (bare, code, slug, slug-304, code-split,
// then again), so that a disturbance of the shared machine spreads over all
// of them instead of falling on one; medians over the rounds are reported,
// each path as a ratio of bare's rate, and its p99 as a multiple of bare's
// p99. The targets: code ≥ 0.50, slug ≥ 0.40, p99 ≤ 3× bare's.
//
//	.ci/with-services go test -run '^$' -bench BenchmarkEdgeLoad -benchtime 1x ./server/app/
//
// EDGE_BENCH_ROUNDS (default 5) and EDGE_BENCH_SECONDS (default 10) size
// the run; wrk's -t2 -c64 are fixed. wrk comes from Debian (`apt-get
// install wrk`; .ci/bench installs it).
func BenchmarkEdgeLoad(b *testing.B) {
	if _, err := exec.LookPath("wrk"); err != nil {
		b.Fatal("wrk is not installed (apt-get install wrk)")
	}
	b.Run("embedded", func(b *testing.B) { edgeBenchLoad(b, edgeBenchConfig(b)) })
	b.Run("postgres+redis", func(b *testing.B) {
		if os.Getenv("TEST_DATABASE_URL") == "" || os.Getenv("TEST_REDIS_URL") == "" {
			b.Skip("TEST_DATABASE_URL or TEST_REDIS_URL is not set")
		}
		cfg := edgeBenchConfig(b)
		cfg.DatabaseURL, cfg.RedisURL = migratedDatabaseURL(b), os.Getenv("TEST_REDIS_URL")
		edgeBenchLoad(b, cfg)
	})
}

const edgeBrowserUA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"

func edgeBenchConfig(b *testing.B) app.Config {
	cfg := shortBenchConfig(b)
	cfg.GatewaySecret = "edge-bench-secret" // shared with the separate gateway
	return cfg
}

// edgePhase is one path measured in every round.
type edgePhase struct {
	name    string
	url     string
	headers []string
	runs    []wrkResult
}

func edgeBenchLoad(b *testing.B, cfg app.Config) {
	rounds := edgeEnvInt(b, "EDGE_BENCH_ROUNDS", 5)
	secs := edgeEnvInt(b, "EDGE_BENCH_SECONDS", 10)
	p := shortStartBench(b, cfg)
	tok := shortBenchGuest(b, p)
	u := shortBenchCreate(b, p, tok, "https://example.com/edge/load")
	slug := edgeBenchShare(b, p, tok)
	etag := edgeETag(b, p.base+"/s/"+slug)
	split := edgeSplitGateway(b, cfg, p.srv.GRPCAddr())
	bare := shortBareRedirects(b, map[string]string{u.GetCode(): u.GetLongUrl()})

	phases := []*edgePhase{
		{name: "bare", url: bare + "/" + u.GetCode()},
		{name: "code", url: p.base + "/" + u.GetCode()},
		{name: "slug", url: p.base + "/s/" + slug},
		{name: "slug-304", url: p.base + "/s/" + slug, headers: []string{"If-None-Match: " + etag}},
		{name: "code-split", url: split + "/" + u.GetCode()},
	}
	for _, ph := range phases { // warm every cache layer and connection
		runWrk(b, ph.url, 1, ph.headers)
	}
	for range rounds {
		for _, ph := range phases {
			ph.runs = append(ph.runs, runWrk(b, ph.url, secs, ph.headers))
		}
	}
	base := phases[0]
	baseRate, baseP99 := medianRate(base.runs), medianP99(base.runs)
	b.Logf("wrk -t2 -c64 -d%ds --latency, %d rounds alternated, medians:", secs, rounds)
	for _, ph := range phases {
		rate, p99 := medianRate(ph.runs), medianP99(ph.runs)
		b.Logf("  %-11s %9.0f req/s  %5.3f of bare  p99 %7.2f ms (%4.1f× bare)", ph.name, rate, rate/baseRate, ms(p99), float64(p99)/float64(baseP99))
		if ph == base {
			b.ReportMetric(rate, "bare-req/s")
			b.ReportMetric(ms(p99), "bare-p99-ms")
			continue
		}
		b.ReportMetric(rate/baseRate, ph.name+"/bare")
		b.ReportMetric(float64(p99)/float64(baseP99), ph.name+"-p99/bare-p99")
	}
	code, slugRate := medianRate(phases[1].runs)/baseRate, medianRate(phases[2].runs)/baseRate
	b.Logf("targets: GET /{code} ≥ 0.50 of bare: %s (%.3f); GET /s/{slug} ≥ 0.40: %s (%.3f)",
		metOrMissed(code >= 0.5), code, metOrMissed(slugRate >= 0.4), slugRate)
	for _, ph := range phases[1:3] {
		r := float64(medianP99(ph.runs)) / float64(baseP99)
		b.Logf("target: %s p99 ≤ 3× bare p99: %s (%.1f×)", ph.name, metOrMissed(r <= 3), r)
	}
	b.ReportMetric(0, "ns/op")
}

func metOrMissed(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// edgeBenchShare saves a favorite and shares it as a snapshot, over gRPC.
func edgeBenchShare(b *testing.B, p *platform, tok string) string {
	conn, err := grpc.NewClient(p.srv.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+tok)
	if _, err := favoritev1.NewFavoriteServiceClient(conn).SetFavorite(ctx, &favoritev1.SetFavoriteRequest{Color: "teal"}); err != nil {
		b.Fatal(err)
	}
	sh, err := sharev1.NewShareServiceClient(conn).CreateShare(ctx, &sharev1.CreateShareRequest{Snapshot: true})
	if err != nil {
		b.Fatal(err)
	}
	return sh.GetShare().GetSlug()
}

func edgeETag(b *testing.B, url string) string {
	res, err := http.Get(url)
	if err != nil {
		b.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK || res.Header.Get("ETag") == "" {
		b.Fatalf("share page: %d, ETag %q", res.StatusCode, res.Header.Get("ETag"))
	}
	return res.Header.Get("ETag")
}

// edgeSplitGateway starts a separate gateway in front of upstream.
func edgeSplitGateway(b *testing.B, cfg app.Config, upstream string) string {
	gw, err := app.NewGateway(context.Background(), app.GatewayConfig{
		Upstream: upstream, HTTPAddr: "127.0.0.1:0",
		Gateway: gateway.Config{GatewaySecret: cfg.GatewaySecret},
	})
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = gw.Serve() }()
	b.Cleanup(func() { _ = gw.Shutdown(context.Background()) })
	return "http://" + gw.Addr()
}

// wrkResult is one wrk run.
type wrkResult struct {
	rate float64
	p99  time.Duration
}

var (
	wrkRate = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	wrkP99  = regexp.MustCompile(`\n\s+99%\s+([0-9.]+)(us|ms|s)\b`)
	wrkBad  = regexp.MustCompile(`Non-2xx or 3xx responses: \d+|Socket errors: connect [1-9][^\n]*|Socket errors: [^\n]*(read|write) [1-9][^\n]*`)
	wrkSlow = regexp.MustCompile(`Socket errors: [^\n]*timeout (\d+)`)
)

// runWrk runs wrk against url; any answer other than 2xx/3xx or any
// connection error fails the benchmark (a fast error is not a fast
// answer). wrk leaves requests slower than its timeout out of the latency
// figures, so the timeout is far above any target and each one is logged.
func runWrk(b *testing.B, url string, secs int, headers []string) wrkResult {
	b.Helper()
	args := []string{"-t2", "-c64", "-d" + strconv.Itoa(secs) + "s", "--timeout", "10s", "--latency", "-H", "User-Agent: " + edgeBrowserUA}
	for _, h := range headers {
		args = append(args, "-H", h)
	}
	out, err := exec.Command("wrk", append(args, url)...).CombinedOutput()
	if err != nil {
		b.Fatalf("wrk %s: %v\n%s", url, err, out)
	}
	s := string(out)
	if m := wrkBad.FindString(s); m != "" {
		b.Fatalf("wrk %s: %s\n%s", url, m, s)
	}
	if m := wrkSlow.FindStringSubmatch(s); m != nil && m[1] != "0" {
		b.Logf("wrk %s: %s requests slower than 10 s, left out of its latency figures", url, m[1])
	}
	rate, p99 := wrkRate.FindStringSubmatch(s), wrkP99.FindStringSubmatch(s)
	if rate == nil || p99 == nil {
		b.Fatalf("wrk %s: unexpected output\n%s", url, s)
	}
	r, _ := strconv.ParseFloat(rate[1], 64)
	v, _ := strconv.ParseFloat(p99[1], 64)
	unit := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second}[p99[2]]
	return wrkResult{rate: r, p99: time.Duration(v * float64(unit))}
}

func medianRate(rs []wrkResult) float64 {
	v := make([]float64, 0, len(rs))
	for _, r := range rs {
		v = append(v, r.rate)
	}
	slices.Sort(v)
	return v[len(v)/2]
}

func medianP99(rs []wrkResult) time.Duration {
	v := make([]time.Duration, 0, len(rs))
	for _, r := range rs {
		v = append(v, r.p99)
	}
	slices.Sort(v)
	return v[len(v)/2]
}

func edgeEnvInt(b *testing.B, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 1 {
		b.Fatalf("%s=%q: want a positive integer", name, s)
	}
	return n
}
