package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	shortenerv1 "github.com/apiplatform/platform/gen/go/shortener/v1"
	"github.com/apiplatform/platform/server/app"
	"github.com/apiplatform/platform/server/identity"
	"github.com/apiplatform/platform/server/platform/ratelimit"
	"github.com/apiplatform/platform/server/share"
)

// BenchmarkShortenerLoad is the shortener's load command. In one run it
// measures, on this machine:
//
//  1. the ceiling: a bare net/http server answering the same 302 from a Go
//     map, driven by the same load generator;
//  2. redirect throughput and latency through the gateway (HTTP -> gateway ->
//     gRPC -> service) with warm caches, closed loop (as fast as it goes);
//  3. latency at half of the throughput measured in 2, open loop (requests
//     sent on a schedule; latency counted from the scheduled time, so a
//     stall is not hidden);
//  4. create throughput (POST /api/v1/shorten).
//
// and reports the redirect/ceiling ratio. The server runs on the embedded
// default; under .ci/with-services the same is run on PostgreSQL + Redis.
//
//	go test -run '^$' -bench BenchmarkShortenerLoad -benchtime 1x ./server/app/
//	.ci/with-services go test -run '^$' -bench BenchmarkShortenerLoad -benchtime 1x ./server/app/
//
// The load generator shares the machine's cores with the server, for the
// ceiling and the gateway alike; compare ratios, not absolute numbers,
// across machines.
//
// One run on the 2-core development machine, shared with other jobs at the
// time (load average about 9), 16 workers, 2 s a phase:
//
//	                          embedded            postgres+redis
//	bare net/http 302         8710 req/s          7049 req/s
//	gateway redirects         1455 req/s (17%)    1176 req/s (17%)
//	p99 at half that rate     17.2 ms             100.4 ms
//	creates                   297 req/s, p95 105 ms   354 req/s, p95 144 ms
//
// The targets (redirects at 50% of the ceiling, p99 < 10 ms at half load)
// are not met on this machine. A profile shows the service's own redirect
// work (hot-key hit: BenchmarkRedirectRead, under 1 µs) is a few percent of
// the CPU; the rest is the two loopback hops every REST call makes (HTTP,
// then gRPC to the service with the server's interceptor chain), which
// the bare server does not have.
func BenchmarkShortenerLoad(b *testing.B) {
	b.Run("embedded", func(b *testing.B) { shortBenchLoad(b, shortBenchConfig(b)) })
	b.Run("postgres+redis", func(b *testing.B) {
		if os.Getenv("TEST_DATABASE_URL") == "" || os.Getenv("TEST_REDIS_URL") == "" {
			b.Skip("TEST_DATABASE_URL or TEST_REDIS_URL is not set")
		}
		cfg := shortBenchConfig(b)
		cfg.DatabaseURL, cfg.RedisURL = migratedDatabaseURL(b), os.Getenv("TEST_REDIS_URL")
		shortBenchLoad(b, cfg)
	})
}

func shortBenchConfig(b *testing.B) app.Config {
	roomy := ratelimit.Limit{Rate: 1_000_000, Period: time.Minute, Burst: 1_000_000}
	cfg := app.Config{
		GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", DataDir: b.TempDir(), Region: "bench",
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		Identity: identity.DefaultConfig(), Share: share.DefaultConfig(),
	}
	cfg.Identity.GuestLimit, cfg.Identity.RegisterLimit, cfg.Identity.LoginAddrLimit = roomy, roomy, roomy
	cfg.Shortener.MaxInFlight = 1 << 20 // measure, do not shed
	cfg.Shortener.CreateLimit = roomy
	return cfg
}

const (
	shortLoadWorkers  = 16
	shortLoadDuration = 2 * time.Second
	shortLoadLinks    = 100
)

func shortBenchLoad(b *testing.B, cfg app.Config) {
	p := shortStartBench(b, cfg)
	tok := shortBenchGuest(b, p)

	// Links to follow, and the map the bare server answers from.
	targets := map[string]string{}
	var codes []string
	for i := range shortLoadLinks {
		u := shortBenchCreate(b, p, tok, fmt.Sprintf("https://example.com/load/%d", i))
		targets[u.GetCode()] = u.GetLongUrl()
		codes = append(codes, u.GetCode())
	}
	client := &http.Client{
		Transport:     &http.Transport{MaxIdleConnsPerHost: 2 * shortLoadWorkers, MaxConnsPerHost: 2 * shortLoadWorkers},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       10 * time.Second,
	}
	follow := func(base string) func(i int) error {
		return func(i int) error {
			res, err := client.Get(base + "/" + codes[i%len(codes)])
			if err != nil {
				return err
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusFound {
				return fmt.Errorf("status %d", res.StatusCode)
			}
			return nil
		}
	}
	// Warm every cache layer.
	for i := range codes {
		if err := follow(p.base)(i); err != nil {
			b.Fatal(err)
		}
	}

	bare := shortBareRedirects(b, targets)
	ceiling := shortRunLoad(b, shortLoadWorkers, shortLoadDuration, 0, follow(bare))
	gw := shortRunLoad(b, shortLoadWorkers, shortLoadDuration, 0, follow(p.base))
	half := shortRunLoad(b, shortLoadWorkers, shortLoadDuration, gw.rate()/2, follow(p.base))
	var n atomic.Int64
	creates := shortRunLoad(b, shortLoadWorkers, shortLoadDuration, 0, func(int) error {
		_, err := shortBenchCreateErr(client, p, tok, fmt.Sprintf("https://example.com/new/%d", n.Add(1)))
		return err
	})

	b.Logf("bare net/http 302 (ceiling): %8.0f req/s  p50 %6.2f ms  p99 %6.2f ms", ceiling.rate(), ceiling.p(50), ceiling.p(99))
	b.Logf("gateway redirects, closed:   %8.0f req/s  p50 %6.2f ms  p99 %6.2f ms  (%.0f%% of ceiling)", gw.rate(), gw.p(50), gw.p(99), 100*gw.rate()/ceiling.rate())
	b.Logf("gateway redirects at %5.0f/s: %8.0f req/s  p50 %6.2f ms  p99 %6.2f ms", gw.rate()/2, half.rate(), half.p(50), half.p(99))
	b.Logf("creates, closed:             %8.0f req/s  p50 %6.2f ms  p99 %6.2f ms", creates.rate(), creates.p(50), creates.p(99))
	b.ReportMetric(ceiling.rate(), "ceiling-req/s")
	b.ReportMetric(gw.rate(), "redirect-req/s")
	b.ReportMetric(gw.rate()/ceiling.rate(), "redirect/ceiling")
	b.ReportMetric(half.p(99), "half-load-p99-ms")
	b.ReportMetric(creates.rate(), "create-req/s")
	b.ReportMetric(creates.p(95), "create-p95-ms")
	b.ReportMetric(0, "ns/op")
}

// shortLoadResult is one phase: how many requests completed, over how long,
// with each one's latency.
type shortLoadResult struct {
	n    int
	dur  time.Duration
	lats []time.Duration
}

func (r shortLoadResult) rate() float64 { return float64(r.n) / r.dur.Seconds() }

// p is a latency percentile in milliseconds.
func (r shortLoadResult) p(q float64) float64 {
	if len(r.lats) == 0 {
		return 0
	}
	i := min(len(r.lats)-1, int(float64(len(r.lats))*q/100))
	return float64(r.lats[i].Microseconds()) / 1000
}

// shortRunLoad runs op from workers goroutines for d: as fast as they go when
// rate is 0, else on a fixed schedule of rate per second (latency counted
// from each request's scheduled time). Any error fails the benchmark.
func shortRunLoad(b *testing.B, workers int, d time.Duration, rate float64, op func(i int) error) shortLoadResult {
	b.Helper()
	var mu sync.Mutex
	var lats []time.Duration
	var failed atomic.Value
	var next atomic.Int64
	start := time.Now()
	deadline := start.Add(d)
	var schedule chan time.Time
	if rate > 0 {
		schedule = make(chan time.Time, workers*4)
		go func() {
			defer close(schedule)
			interval := time.Duration(float64(time.Second) / rate)
			for at := start; at.Before(deadline); at = at.Add(interval) {
				time.Sleep(time.Until(at))
				schedule <- at
			}
		}()
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			defer func() { mu.Lock(); lats = append(lats, mine...); mu.Unlock() }()
			for {
				var begin time.Time
				if schedule != nil {
					at, ok := <-schedule
					if !ok {
						return
					}
					begin = at
				} else {
					if time.Now().After(deadline) {
						return
					}
					begin = time.Now()
				}
				if err := op(int(next.Add(1))); err != nil {
					failed.Store(err)
					return
				}
				mine = append(mine, time.Since(begin))
			}
		}()
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	slices.Sort(lats)
	return shortLoadResult{n: len(lats), dur: time.Since(start), lats: lats}
}

// shortBareRedirects serves 302s from a map: the most a Go HTTP server on this
// machine can do for this request.
func shortBareRedirects(b *testing.B, targets map[string]string) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		loc, ok := targets[r.URL.Path[1:]]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Location", loc)
		w.Header().Set("Cache-Control", "private, no-store")
		w.WriteHeader(http.StatusFound)
	})}
	go func() { _ = srv.Serve(l) }()
	b.Cleanup(func() { _ = srv.Close() })
	return "http://" + l.Addr().String()
}

func shortStartBench(b *testing.B, cfg app.Config) *platform {
	b.Helper()
	srv, err := app.New(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve() }()
	b.Cleanup(func() {
		_ = srv.Shutdown(context.Background())
		<-done
	})
	return &platform{srv: srv, base: "http://" + srv.HTTPAddr()}
}

func shortBenchGuest(b *testing.B, p *platform) string {
	res, err := http.Post(p.base+"/api/v1/auth/guest", "application/json", bytes.NewReader([]byte("{}")))
	if err != nil {
		b.Fatal(err)
	}
	defer res.Body.Close()
	var out restAuth
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil || out.Session.AccessToken == "" {
		b.Fatalf("guest: %v", err)
	}
	return out.Session.AccessToken
}

func shortBenchCreateErr(c *http.Client, p *platform, tok, long string) (*shortenerv1.ShortUrl, error) {
	body, _ := protojson.Marshal(&shortenerv1.CreateShortUrlRequest{LongUrl: long})
	req, err := http.NewRequest("POST", p.base+"/api/v1/shorten", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	res, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	if res.StatusCode != http.StatusCreated {
		return nil, fmt.Errorf("create: %d %s", res.StatusCode, b)
	}
	u := &shortenerv1.ShortUrl{}
	return u, protojson.Unmarshal(b, u)
}

func shortBenchCreate(b *testing.B, p *platform, tok, long string) *shortenerv1.ShortUrl {
	u, err := shortBenchCreateErr(http.DefaultClient, p, tok, long)
	if err != nil {
		b.Fatal(err)
	}
	return u
}
