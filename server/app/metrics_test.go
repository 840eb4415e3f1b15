package app_test

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apiplatform/platform/server/app"
	"github.com/apiplatform/platform/server/platform/ratelimit"
)

// scrape returns the value of every sample on /metrics, keyed by its name
// and labels as exposed (e.g. `cache_requests_total{cache="platform",result="hit"}`).
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

// Real traffic moves the metrics named in the dashboards and alerts.
// Counters are process-wide (other tests' servers add to them too), so the
// test compares a scrape after its own traffic with one before it.
func TestMetricsAfterTraffic(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		p := start(t, b, func(cfg *app.Config) {
			cfg.MetricsAddr = "127.0.0.1:0"
			cfg.Share.UserLimit = ratelimit.Limit{Rate: 1, Period: time.Hour, Burst: 1}
		})
		before := scrape(t, p)
		r := newREST(p)
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
		_, err = r.createShare(t, tok, true, 0) // over the limit
		retryInfo(t, err)
		after := scrape(t, p)

		for _, name := range []string{
			`grpc_server_handled_total{grpc_code="OK",grpc_method="SetFavorite",grpc_service="favorite.v1.FavoriteService",grpc_type="unary"}`,
			`grpc_server_handled_total{grpc_code="ResourceExhausted",grpc_method="CreateShare",grpc_service="share.v1.ShareService",grpc_type="unary"}`,
			`grpc_server_handling_seconds_count{grpc_method="GetShare",grpc_service="share.v1.ShareService",grpc_type="unary"}`,
			`cache_requests_total{cache="platform",result="hit"}`,
			`cache_requests_total{cache="platform",result="miss"}`,
			`ratelimit_rejections_total{reason="share:user"}`,
		} {
			if after[name] <= before[name] {
				t.Errorf("%s did not move: %v -> %v", name, before[name], after[name])
			}
		}
	})
}
