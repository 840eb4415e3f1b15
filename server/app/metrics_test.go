package app_test

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	canvasv1 "github.com/apiplatform/platform/gen/go/canvas/v1"
	"github.com/apiplatform/platform/server/app"
	"github.com/apiplatform/platform/server/canvas"
	"github.com/apiplatform/platform/server/platform/ratelimit"
	"github.com/apiplatform/platform/server/shortener"
)

// scrape returns the value of every sample on /metrics, keyed by its name
// and labels as exposed (e.g. `cache_requests_total{cache="share",result="hit"}`).
func scrape(t *testing.T, p *platform) map[string]float64 {
	t.Helper()
	res, err := http.Get("http://" + p.srv.MetricsAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("/metrics: %d %v", res.StatusCode, err)
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

// sum adds every sample of a metric, whatever its labels.
func sum(m map[string]float64, name string) float64 {
	total := 0.0
	for k, v := range m {
		if k == name || strings.HasPrefix(k, name+"{") {
			total += v
		}
	}
	return total
}

// Real traffic through every service moves the metrics named in the
// dashboards and alerts. Counters are process-wide (other tests' servers
// add to them too), so the test compares a scrape after its own traffic
// with one before it.
func TestMetricsAfterTraffic(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		p := start(t, b, func(cfg *app.Config) {
			cfg.MetricsAddr = "127.0.0.1:0"
			cfg.AdminUser, cfg.AdminPassword = "metrics-admin", "metrics-admin-password"
			cfg.Share.UserLimit = ratelimit.Limit{Rate: 1, Period: time.Hour, Burst: 1}
			cfg.Shortener = shortener.DefaultConfig()
			cfg.Shortener.FlushInterval = 100 * time.Millisecond
			cfg.Canvas = canvas.DefaultConfig()
			cfg.Canvas.Width, cfg.Canvas.Height, cfg.Canvas.BatchInterval = 64, 64, 100*time.Millisecond
		})
		before := scrape(t, p)
		r := newREST(p)
		ctx := context.Background()

		// favorite, share, a cache hit and a rate-limit rejection
		_, tok := r.guest(t)
		if _, err := r.setFavorite(t, tok, "red", ""); err != nil {
			t.Fatal(err)
		}
		sh, err := r.createShare(t, tok, true, 0)
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if _, err := r.getShare(t, tok, sh.GetSlug()); err != nil {
				t.Fatal(err)
			}
		}
		for range 2 { // the public page has its own cache entry and counters
			if res, _ := r.do(t, "GET", "/s/"+sh.GetSlug(), "", nil); res.StatusCode != http.StatusOK {
				t.Fatalf("share page: %d", res.StatusCode)
			}
		}
		_, err = r.createShare(t, tok, true, 0) // over the limit
		retryInfo(t, err)

		// a redirect, whose click is flushed within 100 ms
		var link struct{ Code string }
		if _, err := r.call(t, "POST", "/api/v1/shorten", tok, map[string]any{"longUrl": "https://example.com/metrics"}, &link); err != nil {
			t.Fatal(err)
		}
		noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		res, err := noFollow.Get(p.base + "/" + link.Code)
		if err != nil || res.StatusCode != http.StatusFound {
			t.Fatalf("redirect: %v %v", res, err)
		}
		res.Body.Close()

		// a vote, committed by the group committer
		var admin restAuth
		if _, err := r.call(t, "POST", "/api/v1/auth/login", "", map[string]any{"username": "metrics-admin", "password": "metrics-admin-password"}, &admin); err != nil {
			t.Fatal(err)
		}
		var election struct{ ElectionId string }
		if _, err := r.call(t, "POST", "/api/v1/elections", admin.Session.AccessToken, map[string]any{
			"title": "metrics", "candidates": []map[string]any{{"candidateId": "a", "name": "A"}, {"candidateId": "b", "name": "B"}},
		}, &election); err != nil {
			t.Fatal(err)
		}
		if _, err := r.call(t, "POST", "/api/v1/elections/"+election.ElectionId+":open", admin.Session.AccessToken, map[string]any{}, nil); err != nil {
			t.Fatal(err)
		}
		_, voter, err := r.register(t, "", "metrics-voter", "metrics-voter-password")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.call(t, "POST", "/api/v1/votes", voter, map[string]any{"electionId": election.ElectionId, "candidateId": "a"}, nil); err != nil {
			t.Fatal(err)
		}

		// a placement delivered to a live stream subscriber
		stream, err := canvasv1.NewCanvasServiceClient(p.conn).StreamPixels(ctx, &canvasv1.StreamPixelsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := stream.Recv(); err != nil { // the empty batch that starts every stream
			t.Fatal(err)
		}
		subscribed := scrape(t, p)
		if _, err := r.call(t, "POST", "/api/v1/canvas/pixels", tok, map[string]any{"x": 1, "y": 2, "color": 3}, nil); err != nil {
			t.Fatal(err)
		}
		for {
			m, err := stream.Recv()
			if err != nil {
				t.Fatal(err)
			}
			if len(m.GetBatch().GetDeltas()) > 0 {
				break
			}
		}

		// Counters move; the click flush happens in the background.
		var after map[string]float64
		deadline := time.Now().Add(5 * time.Second)
		for {
			after = scrape(t, p)
			if sum(after, "shortener_click_flush_lag_seconds_count") > sum(before, "shortener_click_flush_lag_seconds_count") || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		for _, name := range []string{
			`grpc_server_handled_total{grpc_code="OK",grpc_method="SetFavorite",grpc_service="favorite.v1.FavoriteService",grpc_type="unary"}`,
			`grpc_server_handled_total{grpc_code="ResourceExhausted",grpc_method="CreateShare",grpc_service="share.v1.ShareService",grpc_type="unary"}`,
			`grpc_server_handling_seconds_count{grpc_method="GetShare",grpc_service="share.v1.ShareService",grpc_type="unary"}`,
			`grpc_server_handling_seconds_count{grpc_method="FollowShortUrl",grpc_service="shortener.v1.ShortenerService",grpc_type="unary"}`,
			`grpc_server_handling_seconds_count{grpc_method="CastVote",grpc_service="vote.v1.VoteService",grpc_type="unary"}`,
			`cache_requests_total{cache="share",result="hit"}`,
			`cache_requests_total{cache="share",result="miss"}`,
			`cache_requests_total{cache="favorite",result="miss"}`,
			`cache_requests_total{cache="share_page",result="hit"}`,
			`ratelimit_rejections_total{reason="share:user"}`,
			"shortener_redirects_total",
			"shortener_click_flush_lag_seconds_count",
			"vote_accepted_total",
			"vote_batch_size_count",
			"canvas_placements_total",
			"canvas_delivery_lag_seconds_count",
		} {
			if sum(after, name) <= sum(before, name) {
				t.Errorf("%s did not move: %v -> %v", name, sum(before, name), sum(after, name))
			}
		}
		if sum(subscribed, "canvas_stream_subscribers") < 1 {
			t.Error("canvas_stream_subscribers does not count the open stream")
		}
		for _, gauge := range []string{"vote_queue_depth", "vote_stream_subscribers", "shortener_click_buffer"} {
			if !hasMetric(after, gauge) {
				t.Errorf("gauge %s is not exported", gauge)
			}
		}
	})
}

func hasMetric(m map[string]float64, name string) bool {
	for k := range m {
		if k == name || strings.HasPrefix(k, name+"{") {
			return true
		}
	}
	return false
}
