package app_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"

	canvasv1 "github.com/apiplatform/platform/gen/go/canvas/v1"
	"github.com/apiplatform/platform/server/app"
	"github.com/apiplatform/platform/server/canvas"
)

// canvasReplicas starts n servers on one database and one Redis, or one
// embedded server (which is a single process by design).
func canvasReplicas(t *testing.T, b backend, n int, configure func(*app.Config)) []*platform {
	t.Helper()
	if b.name == embeddedBackend.name {
		return []*platform{startCanvas(t, b, configure)}
	}
	dbURL := migratedDatabaseURL(t)
	var out []*platform
	for range n {
		out = append(out, startCanvas(t, b, func(cfg *app.Config) {
			cfg.DatabaseURL, cfg.RedisURL = dbURL, os.Getenv("TEST_REDIS_URL")
			if configure != nil {
				configure(cfg)
			}
		}))
	}
	return out
}

// Many users place random pixels on every replica (and an admin clears a
// rectangle) while clients follow the board over gRPC and REST: one loads
// the snapshot first, one opens the stream first, one disconnects and
// resumes mid-run. Afterwards every client's board is the server's snapshot,
// byte for byte.
func TestCanvasConvergence(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		servers := canvasReplicas(t, b, 2, func(cfg *app.Config) { cfg.Canvas.Cooldown = canvas.NoCooldown })
		last := servers[len(servers)-1]
		_, admin := adminLogin(t, servers[0])
		followers := []*canvasFollower{
			newCanvasFollower(t, canvasGRPC{grpcAPI{servers[0]}}, false),
			newCanvasFollower(t, canvasREST{newREST(last)}, false),
			newCanvasFollower(t, canvasGRPC{grpcAPI{last}}, true),
			newCanvasFollower(t, canvasREST{newREST(servers[0])}, true),
		}
		resumer := newCanvasFollower(t, canvasGRPC{grpcAPI{last}}, false)

		const users, each = 8, 30
		var wg sync.WaitGroup
		var placed atomic.Int64
		for u := range users {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := canvasClients(servers[u%len(servers)])[u%2]
				_, tok := c.guest(t)
				rng := rand.New(rand.NewPCG(uint64(u), 7))
				for range each {
					if _, err := c.place(t, tok, rng.Int32N(64), rng.Int32N(48), rng.Int32N(16)); err != nil {
						t.Error(err)
						return
					}
					placed.Add(1)
				}
			}()
		}
		placers := make(chan struct{})
		go func() { wg.Wait(); close(placers) }()
		// reached waits until n placements were acknowledged, or the
		// placers stopped (a failed placement ends its placer).
		reached := func(n int64) bool {
			for placed.Load() < n {
				select {
				case <-placers:
					return placed.Load() >= n
				case <-time.After(5 * time.Millisecond):
				}
			}
			return true
		}
		// Mid-run: the resumer drops its stream, misses a clear and some
		// placements, and comes back with its seq.
		if !reached(users * each / 3) {
			t.FailNow()
		}
		mid, err := canvasClients(last)[0].snapshot(t)
		if err != nil {
			t.Fatal(err)
		}
		resumer.until(mid.GetSeq(), 10*time.Second)
		resumer.s.close()
		if _, err := canvasClients(last)[1].clear(t, admin, 10, 5, 20, 10, 0); err != nil {
			t.Fatal(err)
		}
		if !reached(users * each * 2 / 3) {
			t.FailNow()
		}
		resumer.resume()
		<-placers
		if t.Failed() {
			return
		}

		final, err := canvasClients(servers[0])[0].snapshot(t)
		if err != nil {
			t.Fatal(err)
		}
		if want := int64(users*each + 200); final.GetSeq() != want {
			t.Fatalf("final seq %d, want %d (every placement and cleared pixel once)", final.GetSeq(), want)
		}
		for _, s := range servers[1:] {
			if snap, err := canvasClients(s)[1].snapshot(t); err != nil || snap.GetSeq() != final.GetSeq() || !bytes.Equal(snap.GetPixels(), final.GetPixels()) {
				t.Fatalf("replicas disagree: %v, %v", snap.GetSeq(), err)
			}
		}
		for i, f := range append(followers, resumer) {
			f.until(final.GetSeq(), 20*time.Second)
			if f.seq != final.GetSeq() || !bytes.Equal(f.pixels, final.GetPixels()) {
				t.Fatalf("follower %d (%s) at seq %d differs from the snapshot at %d", i, f.api.name(), f.seq, final.GetSeq())
			}
			if f.resyncs != 0 {
				t.Errorf("follower %d (%s) had to resync %d times", i, f.api.name(), f.resyncs)
			}
		}
	})
}

// A client that stops reading is dropped with a resync; the others get
// every batch meanwhile. The reading client resumes after the snapshot's
// seq (0 on this fresh board) with after_seq, so it has no gap whenever its
// subscription lands, and it reads while the clear is in flight (the clear
// answers only once its 65,536 history rows are written, which may take
// longer than MaxLag on a loaded machine, while its deltas stream at once).
// Lag is measured from when the server cut a batch, so waiting MaxLag
// after the reading client saw a batch makes that batch older than MaxLag
// for the stalled one, however loaded the machine is.
func TestCanvasStalledSubscriberDropped(t *testing.T) {
	const maxLag = 5 * time.Second
	forBackends(t, func(t *testing.T, b backend) {
		p := start(t, b, func(cfg *app.Config) {
			cfg.Canvas = canvasConfig()
			cfg.Canvas.MaxLag = maxLag
			cfg.RequestTimeout = time.Minute               // the clear writes 65,536 history rows
			cfg.Canvas.Width, cfg.Canvas.Height = 256, 256 // a clear of the board outgrows every transport buffer
			cfg.Canvas.Cooldown = canvas.NoCooldown
			cfg.AdminUser, cfg.AdminPassword = canvasAdmin, canvasAdminPassword
		})
		_, admin := adminLogin(t, p)
		// The stalled client: fixed 64 KiB flow-control windows (no
		// automatic growth), and it never reads until told.
		conn, err := grpc.NewClient(p.srv.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithInitialWindowSize(1<<16), grpc.WithInitialConnWindowSize(1<<16))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		stalled, err := canvasv1.NewCanvasServiceClient(conn).StreamPixels(ctx, &canvasv1.StreamPixelsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := stalled.Recv(); err != nil { // the stream's start, then silence
			t.Fatal(err)
		}
		c := canvasClients(p)[0]
		fast := newCanvasFollower(t, c, false)
		cleared, start, began := make(chan struct{}), fast.seq, time.Now()
		var clearErr error // set before cleared closes
		var clearTook time.Duration
		go func() {
			defer close(cleared)
			res, err := c.clear(t, admin, 0, 0, 256, 256, 5)
			if err == nil && res.GetLastSeq() != start+256*256 {
				err = fmt.Errorf("clear emitted %d..%d after seq %d", res.GetFirstSeq(), res.GetLastSeq(), start)
			}
			if err != nil {
				fast.s.close() // the deltas it waits for will not come
			}
			clearErr, clearTook = err, time.Since(began)
		}()
		defer func() { // a failure says how the clear went
			if !t.Failed() {
				return
			}
			select {
			case <-cleared:
				t.Logf("the clear answered %v after %v", clearErr, clearTook)
			default:
				t.Logf("the clear had not answered after %v", time.Since(began))
			}
		}()
		fast.until(start+256*256, time.Minute)
		if <-cleared; clearErr != nil {
			t.Fatal(clearErr)
		}
		_, tok := c.guest(t)
		placed, err := c.place(t, tok, 1, 1, 1)
		if err != nil {
			t.Fatal(err)
		}
		fast.until(placed.GetSeq(), 10*time.Second)
		if fast.resyncs != 0 {
			t.Fatalf("the reading client was resynced %d times (%s)", fast.resyncs, fast.lastResync)
		}
		// Past the lag limit, the stalled client finds a resync after what
		// was already in flight, and the end of its stream. The pause is the
		// stall itself (a client that does not read), not a wait for an
		// event: reading earlier would relieve it, and a slower machine only
		// makes the stall longer.
		time.Sleep(maxLag)
		var got *canvasv1.Resync
		for got == nil {
			m, err := stalled.Recv()
			if err != nil {
				t.Fatalf("stalled client: %v before any resync", err)
			}
			got = m.GetResync()
		}
		if got.GetReason() != "subscriber too slow" || got.GetCurrentSeq() < placed.GetSeq() {
			t.Fatalf("resync %v", got)
		}
		if _, err := stalled.Recv(); !errors.Is(err, io.EOF) {
			t.Fatalf("after the resync: %v", err)
		}
	})
}

// Two replicas share cooldowns, bans and the stream.
func TestCanvasReplicas(t *testing.T) {
	if os.Getenv("TEST_REDIS_URL") == "" || os.Getenv("TEST_DATABASE_URL") == "" {
		t.Skip("needs TEST_DATABASE_URL and TEST_REDIS_URL")
	}
	var b backend
	for _, x := range backends() {
		b = x
	}
	servers := canvasReplicas(t, b, 2, nil)
	a, bb := canvasClients(servers[0]), canvasClients(servers[1])
	_, admin := adminLogin(t, servers[0])
	watcher := newCanvasFollower(t, bb[0], false)

	// One user, both replicas at once: exactly one placement wins.
	for round := range 4 {
		_, tok := a[0].guest(t)
		errs := make([]error, 2)
		var wg sync.WaitGroup
		for i, c := range []canvasAPI{a[round%2], bb[(round+1)%2]} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = c.place(t, tok, int32(round), 0, 4)
			}()
		}
		wg.Wait()
		won := 0
		for _, err := range errs {
			if err == nil {
				won++
			} else {
				retryInfo(t, err)
			}
		}
		if won != 1 {
			t.Fatalf("round %d: %d placements won, want exactly 1 (%v)", round, won, errs)
		}
	}
	// A placement on A reaches a stream on B.
	userID, tok := a[1].guest(t)
	res, err := a[1].place(t, tok, 40, 40, 13)
	if err != nil {
		t.Fatal(err)
	}
	watcher.until(res.GetSeq(), 10*time.Second)
	if canvas.PixelAt(watcher.pixels, 40*64+40) != 13 {
		t.Fatal("B's stream does not show A's placement")
	}
	// A ban on B holds on A at once, and the history on B has A's writes.
	if err := bb[1].ban(t, admin, userID, "test"); err != nil {
		t.Fatal(err)
	}
	_, err = a[0].place(t, tok, 41, 40, 13)
	wantCode(t, err, codes.PermissionDenied)
	if h, err := bb[0].history(t, admin, 40, 40, 10, ""); err != nil || len(h.GetPlacements()) != 1 || h.GetPlacements()[0].GetUserId() != userID {
		t.Fatalf("history on B: %v, %v", h, err)
	}
}

// With Redis gone, placements fail with UNAVAILABLE while the board and its
// history stay readable; when Redis comes back (empty), the board is
// rebuilt from history, placements resume and streams carry on.
func TestCanvasRedisOutage(t *testing.T) {
	dbURL := migratedDatabaseURL(t)
	rs := startRedis(t)
	p := startCanvas(t, embeddedBackend, func(cfg *app.Config) { cfg.DatabaseURL, cfg.RedisURL = dbURL, rs.url })
	g, r := canvasClients(p)[0], canvasREST{newREST(p)}
	_, admin := adminLogin(t, p)
	_, tok := g.guest(t)
	first, err := g.place(t, tok, 7, 7, 9)
	if err != nil {
		t.Fatal(err)
	}
	f := newCanvasFollower(t, g, false)

	rs.stop(t)
	_, tok2 := g.guest(t)
	_, err = g.place(t, tok2, 8, 8, 10)
	wantCode(t, err, codes.Unavailable)
	res, body := r.r.do(t, "POST", "/api/v1/canvas/pixels", tok2, map[string]any{"x": 8, "y": 8, "color": 10})
	if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" {
		t.Fatalf("REST placement with Redis down: %d %s", res.StatusCode, body)
	}
	noLeak(t, string(body))
	for _, c := range []canvasAPI{g, r} {
		snap, err := c.snapshot(t)
		if err != nil || snap.GetSeq() != first.GetSeq() || canvas.PixelAt(snap.GetPixels(), 7*64+7) != 9 {
			t.Fatalf("%s: snapshot with Redis down: %v", c.name(), err)
		}
		if img, err := c.png(t); err != nil || img.contentType != "image/png" {
			t.Fatalf("%s: png with Redis down: %v", c.name(), err)
		}
		if h, err := c.history(t, admin, 7, 7, 10, ""); err != nil || len(h.GetPlacements()) != 1 {
			t.Fatalf("%s: history with Redis down: %v, %v", c.name(), h, err)
		}
	}

	rs.start(t) // empty: the board comes back from history
	var placed *canvasv1.PlacePixelResponse
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if placed, err = g.place(t, tok2, 8, 8, 10); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("placements did not resume: %v", err)
		}
	}
	if placed.GetSeq() != first.GetSeq()+1 {
		t.Fatalf("first placement after the outage got seq %d, want %d", placed.GetSeq(), first.GetSeq()+1)
	}
	snap, err := r.snapshot(t)
	if err != nil || canvas.PixelAt(snap.GetPixels(), 7*64+7) != 9 || canvas.PixelAt(snap.GetPixels(), 8*64+8) != 10 {
		t.Fatalf("board after the outage: %v", err)
	}
	// The follower is told to reload (the board was rebuilt) and converges.
	f.until(placed.GetSeq(), 15*time.Second)
	if !bytes.Equal(f.pixels, snap.GetPixels()) {
		t.Fatal("follower differs from the board after the outage")
	}
}

// The embedded default keeps the board across restarts (it is rebuilt from
// the history on disk), sequence numbers carry on, and so does the history.
func TestCanvasEmbeddedRestart(t *testing.T) {
	cfg := testConfig(t)
	cfg.Canvas = canvasConfig()
	p := startConfig(t, cfg)
	c := canvasClients(p)[0]
	_, tok := c.guest(t)
	first, err := c.place(t, tok, 5, 6, 11)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	p = startConfig(t, cfg)
	c = canvasClients(p)[1]
	snap, err := c.snapshot(t)
	if err != nil || snap.GetSeq() != first.GetSeq() || canvas.PixelAt(snap.GetPixels(), 6*64+5) != 11 {
		t.Fatalf("after restart: %v, %v", snap.GetSeq(), err)
	}
	_, tok = c.guest(t)
	next, err := c.place(t, tok, 5, 6, 12)
	if err != nil || next.GetSeq() != first.GetSeq()+1 {
		t.Fatalf("placement after restart: %v, %v", next, err)
	}
}

// A Redis that hangs instead of refusing (SIGSTOPped: every command waits
// past the board's deadline) leaves the board readable, from the last
// snapshot or from history, not a 500.
func TestCanvasRedisHangs(t *testing.T) {
	dbURL := migratedDatabaseURL(t)
	rs := startRedis(t)
	p := startCanvas(t, embeddedBackend, func(cfg *app.Config) { cfg.DatabaseURL, cfg.RedisURL = dbURL, rs.url })
	g, r := canvasClients(p)[0], canvasREST{newREST(p)}
	_, tok := g.guest(t)
	first, err := g.place(t, tok, 3, 4, 5)
	if err != nil {
		t.Fatal(err)
	}
	if err := rs.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			_ = rs.cmd.Process.Signal(syscall.SIGCONT)
		}
	}
	t.Cleanup(resume)
	for _, c := range []canvasAPI{g, r} {
		snap, err := c.snapshot(t)
		if err != nil || snap.GetSeq() != first.GetSeq() || canvas.PixelAt(snap.GetPixels(), 4*64+3) != 5 {
			t.Fatalf("%s: snapshot with Redis hanging: %v, %v", c.name(), snap.GetSeq(), err)
		}
	}
	resume()
}
