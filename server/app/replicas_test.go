package app_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc/codes"

	"github.com/apiplatform/platform/server/platform/ratelimit"
)

// Two server processes over one database and one Redis behave as one
// service: what one writes, the other serves at once, including through its
// cache, and limits are shared.
func TestTwoReplicasOneTruth(t *testing.T) {
	var ps []*platform
	for _, cfg := range replicaConfigs(t, "region-a", "region-b") {
		cfg.Share.UserLimit = ratelimit.Limit{Rate: 1, Period: time.Hour, Burst: 3}
		ps = append(ps, startConfig(t, cfg))
	}
	a, b := ps[0], ps[1]
	ra, rb := newREST(a), newREST(b)
	ga, gb := grpcAPI{a}, grpcAPI{b}

	ownerID, owner := ga.guest(t)
	if _, err := ga.setFavorite(t, owner, "red", ""); err != nil {
		t.Fatal(err)
	}
	live, err := ra.createShare(t, owner, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Created on A, resolved on B (over both protocols); B's reads fill the
	// shared cache with red.
	_, viewer := gb.guest(t)
	for _, c := range []api{gb, rb} {
		if sh, err := c.getShare(t, viewer, live.GetSlug()); err != nil || sh.GetHex() != "#FF0000" {
			t.Fatalf("B resolves A's share: %v, %v", sh, err)
		}
	}
	// A write on A invalidates what B cached: B's very next read is fresh.
	if _, err := ra.setFavorite(t, owner, "lime", ""); err != nil {
		t.Fatal(err)
	}
	if sh, err := rb.getShare(t, viewer, live.GetSlug()); err != nil || sh.GetHex() != "#00FF00" {
		t.Fatalf("B after A's write: %v, %v; want #00FF00", sh, err)
	}
	if f, err := gb.getUserFavorite(t, viewer, ownerID); err != nil || f.GetHex() != "#00FF00" {
		t.Fatalf("B favorite after A's write: %v, %v", f, err)
	}
	// A revocation on B hides the share on A at once.
	if err := gb.revokeShare(t, owner, live.GetSlug()); err != nil {
		t.Fatal(err)
	}
	_, err = ga.getShare(t, viewer, live.GetSlug())
	wantCode(t, err, codes.NotFound)
	// Logout on A is effective on B.
	_, tok := ra.guest(t)
	if err := ga.logout(t, tok); err != nil {
		t.Fatal(err)
	}
	_, err = gb.getFavorite(t, tok)
	wantCode(t, err, codes.Unauthenticated)

	// The per-user share limit (burst 3) is one budget across replicas: one
	// share is spent above, two more fit, the next is refused wherever it goes.
	if _, err := gb.createShare(t, owner, true, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := ga.createShare(t, owner, true, 0); err != nil {
		t.Fatal(err)
	}
	_, err = gb.createShare(t, owner, true, 0)
	retryInfo(t, err)
	_, err = ga.createShare(t, owner, true, 0)
	retryInfo(t, err)

	// Each replica says where it served from.
	res, _ := rb.do(t, "GET", "/api/v1/favorite", owner, nil)
	if res.Header.Get("X-Region") != "region-b" {
		t.Fatalf("X-Region = %q, want region-b", res.Header.Get("X-Region"))
	}
}

// With Redis gone, limits fail open and reads come from the database:
// nothing answers 500, and everything works again when Redis returns.
func TestRedisOutage(t *testing.T) {
	dbURL := migratedDatabaseURL(t)
	rs := startRedis(t)
	cfg := testConfig(t)
	cfg.DatabaseURL, cfg.RedisURL = dbURL, rs.url
	p := startConfig(t, cfg)
	r, g := newREST(p), grpcAPI{p}

	_, tok := r.guest(t)
	if _, err := r.setFavorite(t, tok, "navy", ""); err != nil {
		t.Fatal(err)
	}
	sh, err := r.createShare(t, tok, true, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.getShare(t, tok, sh.GetSlug()); err != nil { // cached now
		t.Fatal(err)
	}

	rs.stop(t)
	_, tok2 := g.guest(t) // guest creation is rate limited: fails open
	if _, err := g.setFavorite(t, tok2, "olive", ""); err != nil {
		t.Fatalf("save with Redis down: %v", err)
	}
	if _, err := g.createShare(t, tok2, true, 0); err != nil {
		t.Fatalf("rate-limited create with Redis down: %v", err)
	}
	if got, err := r.getShare(t, tok2, sh.GetSlug()); err != nil || got.GetHex() != "#000080" {
		t.Fatalf("read with Redis down: %v, %v", got, err)
	}
	// A write while Redis is down cannot invalidate the cache, which is
	// why entries have short TTLs; reads in the meantime still succeed.
	if err := r.revokeShare(t, tok, sh.GetSlug()); err != nil {
		t.Fatalf("revoke with Redis down: %v", err)
	}

	rs.start(t)
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := g.createShare(t, tok2, true, 0)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not recovered after Redis came back: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// With the database unreachable, calls answer UNAVAILABLE (503 with
// Retry-After over REST), and the server recovers by itself.
func TestDatabaseOutage(t *testing.T) {
	dbURL := migratedDatabaseURL(t)
	proxy := newCutProxy(t, dbURL)
	cfg := testConfig(t)
	cfg.DatabaseURL = proxy.url
	cfg.Database.StatementTimeout = 2 * time.Second
	p := startConfig(t, cfg)
	r, g := newREST(p), grpcAPI{p}
	_, tok := r.guest(t)
	if _, err := r.setFavorite(t, tok, "coral", ""); err != nil {
		t.Fatal(err)
	}

	proxy.cut(true)
	for range 3 { // the pool's connections die one by one: each call must say UNAVAILABLE
		res, body := r.do(t, "POST", "/api/v1/auth/guest", "", map[string]any{})
		if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" {
			t.Fatalf("with the database down: %d (Retry-After %q) %s", res.StatusCode, res.Header.Get("Retry-After"), body)
		}
		noLeak(t, string(body))
	}
	_, err := g.setFavorite(t, tok, "gold", "")
	wantCode(t, err, codes.Unavailable)

	proxy.cut(false)
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, err := g.setFavorite(t, tok, "gold", "")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not recovered after the database came back: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if f, err := r.getFavorite(t, tok); err != nil || f.GetHex() != "#FFD700" {
		t.Fatalf("after recovery: %v, %v", f, err)
	}
}

// redisServer is a private redis-server the test may stop and restart.
type redisServer struct {
	port int
	url  string
	cmd  *exec.Cmd
}

func startRedis(t *testing.T) *redisServer {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server not installed (run through .ci/with-services)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	rs := &redisServer{port: port, url: "redis://127.0.0.1:" + strconv.Itoa(port) + "/0"}
	rs.start(t)
	t.Cleanup(func() { rs.stop(t) })
	return rs
}

func (rs *redisServer) start(t *testing.T) {
	t.Helper()
	rs.cmd = exec.Command("redis-server", "--port", strconv.Itoa(rs.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir())
	if err := rs.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(rs.port)})
	defer c.Close()
	for i := 0; c.Ping(context.Background()).Err() != nil; i++ {
		if i > 100 {
			t.Fatal("redis-server did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (rs *redisServer) stop(t *testing.T) {
	if rs.cmd == nil {
		return
	}
	_ = rs.cmd.Process.Kill()
	_ = rs.cmd.Wait()
	rs.cmd = nil
}

// cutProxy forwards TCP to the database until cut, which severs every open
// connection and refuses new ones, as a stopped or partitioned database
// would look to the server.
type cutProxy struct {
	url    string
	target string
	mu     sync.Mutex
	down   bool
	conns  map[net.Conn]struct{}
}

func newCutProxy(t *testing.T, dbURL string) *cutProxy {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	p := &cutProxy{target: u.Host, conns: map[net.Conn]struct{}{}}
	u.Host = l.Addr().String()
	p.url = u.String()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
	t.Cleanup(func() { p.cut(true) })
	return p
}

func (p *cutProxy) serve(c net.Conn) {
	p.mu.Lock()
	if p.down {
		p.mu.Unlock()
		_ = c.Close()
		return
	}
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		p.mu.Unlock()
		_ = c.Close()
		return
	}
	p.conns[c], p.conns[up] = struct{}{}, struct{}{}
	p.mu.Unlock()
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src) // a severed connection ends here
		_ = dst.Close()
		_ = src.Close()
	}
	go pipe(up, c)
	pipe(c, up)
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, up)
	p.mu.Unlock()
}

func (p *cutProxy) cut(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	if down {
		for c := range p.conns {
			_ = c.Close()
		}
	}
}
