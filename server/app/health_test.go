package app_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

var healthServices = []string{
	"identity.v1.IdentityService", "favorite.v1.FavoriteService", "share.v1.ShareService",
	"shortener.v1.ShortenerService", "vote.v1.VoteService", "canvas.v1.CanvasService",
}

// Health is public (Check, Watch and List need no credentials) and names
// every service; /healthz and /readyz answer over REST.
func TestHealthPublic(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		p := start(t, b, nil)
		h := healthpb.NewHealthClient(p.conn)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		// Ready once the first probe of its dependencies has answered.
		ready, err := h.Watch(ctx, &healthpb.HealthCheckRequest{})
		if err != nil {
			t.Fatal(err)
		}
		for res, err := ready.Recv(); res.GetStatus() != healthpb.HealthCheckResponse_SERVING; res, err = ready.Recv() {
			if err != nil {
				t.Fatal(err)
			}
		}
		list, err := h.List(ctx, &healthpb.HealthListRequest{})
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range append([]string{""}, healthServices...) {
			if st := list.GetStatuses()[name]; st.GetStatus() != healthpb.HealthCheckResponse_SERVING {
				t.Errorf("List: %q is %v", name, st.GetStatus())
			}
			if res, err := h.Check(ctx, &healthpb.HealthCheckRequest{Service: name}); err != nil || res.GetStatus() != healthpb.HealthCheckResponse_SERVING {
				t.Errorf("Check(%q): %v, %v", name, res, err)
			}
		}
		if len(list.GetStatuses()) != len(healthServices)+1 {
			t.Errorf("List names %d entries, want %d: %v", len(list.GetStatuses()), len(healthServices)+1, list.GetStatuses())
		}
		w, err := h.Watch(ctx, &healthpb.HealthCheckRequest{Service: "canvas.v1.CanvasService"})
		if err != nil {
			t.Fatal(err)
		}
		if res, err := w.Recv(); err != nil || res.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("Watch: %v, %v", res, err)
		}
		for _, path := range []string{"/healthz", "/readyz"} {
			if code, body := httpGet(t, p.base+path); code != http.StatusOK {
				t.Errorf("%s: %d %s", path, code, body)
			}
		}
	})
}

// With the database unreachable every service goes NOT_SERVING (they all
// keep their data there), /readyz answers 503 naming them while /healthz
// (liveness) stays up, and all come back when the database does. The
// canvas alone also needs Redis: with Redis down only it is NOT_SERVING.
func TestHealthFollowsDependencies(t *testing.T) {
	if os.Getenv("TEST_DATABASE_URL") == "" {
		t.Skip("needs TEST_DATABASE_URL (run through .ci/with-services)")
	}
	proxy := newCutProxy(t, migratedDatabaseURL(t))
	rs := startRedis(t)
	cfg := testConfig(t)
	cfg.DatabaseURL, cfg.RedisURL = proxy.url, rs.url
	cfg.Database.StatementTimeout = 2 * time.Second
	cfg.HealthInterval = 50 * time.Millisecond
	p := startConfig(t, cfg)
	h := healthpb.NewHealthClient(p.conn)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	watch := func(service string) func(want healthpb.HealthCheckResponse_ServingStatus) {
		w, err := h.Watch(ctx, &healthpb.HealthCheckRequest{Service: service})
		if err != nil {
			t.Fatal(err)
		}
		return func(want healthpb.HealthCheckResponse_ServingStatus) {
			t.Helper()
			for {
				res, err := w.Recv()
				if err != nil {
					t.Fatalf("watching %q for %v: %v", service, want, err)
				}
				if res.GetStatus() == want {
					return
				}
			}
		}
	}
	watchers := map[string]func(healthpb.HealthCheckResponse_ServingStatus){}
	for _, s := range append([]string{""}, healthServices...) {
		watchers[s] = watch(s)
		watchers[s](healthpb.HealthCheckResponse_SERVING)
	}

	proxy.cut(true)
	for _, s := range append([]string{""}, healthServices...) {
		watchers[s](healthpb.HealthCheckResponse_NOT_SERVING)
	}
	code, body := httpGet(t, p.base+"/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "favorite.v1.FavoriteService NOT_SERVING") {
		t.Fatalf("/readyz with the database down: %d %s", code, body)
	}
	if code, body := httpGet(t, p.base+"/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz with the database down: %d %s", code, body)
	}
	proxy.cut(false)
	for _, s := range append([]string{""}, healthServices...) {
		watchers[s](healthpb.HealthCheckResponse_SERVING)
	}
	if code, body := httpGet(t, p.base+"/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz after the database came back: %d %s", code, body)
	}

	rs.stop(t)
	watchers["canvas.v1.CanvasService"](healthpb.HealthCheckResponse_NOT_SERVING)
	watchers[""](healthpb.HealthCheckResponse_NOT_SERVING)
	if res, err := h.Check(ctx, &healthpb.HealthCheckRequest{Service: "favorite.v1.FavoriteService"}); err != nil || res.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("favorites with Redis down (they only lose their cache): %v, %v", res, err)
	}
	rs.start(t)
	watchers["canvas.v1.CanvasService"](healthpb.HealthCheckResponse_SERVING)
	watchers[""](healthpb.HealthCheckResponse_SERVING)
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("%s: Content-Type %q", url, ct)
	}
	return res.StatusCode, string(b)
}
