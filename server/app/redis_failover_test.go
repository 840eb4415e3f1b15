package app_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	canvasv1 "github.com/apiplatform/platform/gen/go/canvas/v1"
	votev1 "github.com/apiplatform/platform/gen/go/vote/v1"
	"github.com/apiplatform/platform/server/app"
	"github.com/apiplatform/platform/server/canvas"
	"github.com/apiplatform/platform/server/platform/ratelimit"
	"github.com/apiplatform/platform/server/platform/redistest"
)

// sentinelRecoveryBound is how long the platform may take to accept
// placements again after the Redis master dies: Sentinel's detection
// (down-after-milliseconds 1 s in .ci/with-redis) and election, then
// go-redis asking the sentinels for the new master.
const sentinelRecoveryBound = 20 * time.Second

// redisBackend is the PostgreSQL + Redis backend, or a skip without it.
func redisBackend(t *testing.T) backend {
	t.Helper()
	for _, b := range backends() {
		if b.name != embeddedBackend.name {
			return b
		}
	}
	t.Skip("needs TEST_DATABASE_URL and TEST_REDIS_URL")
	return backend{}
}

// canvasID reads the canvas's id (its Redis keys are canvas:{id}:...).
func canvasID(t *testing.T, dbURL string) string {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var id string
	if err := conn.QueryRow(context.Background(), `SELECT id::TEXT FROM canvas_meta`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

// A Redis that lost its newest writes (what a promoted replica looks like
// after an asynchronous-replication failover) hands their sequence numbers
// out again. History refuses them, the placement that met one is answered
// UNAVAILABLE, and the board is rebuilt from history: every acknowledged
// placement is on it, and the next placement continues after them.
func TestCanvasBoardBehindHistory(t *testing.T) {
	b := redisBackend(t)
	var dbURL string
	p := startCanvas(t, b, func(cfg *app.Config) { cfg.Canvas.Cooldown, dbURL = canvas.NoCooldown, cfg.DatabaseURL })
	api := canvasGRPC{grpcAPI{p}}
	_, tok := api.guest(t)
	var acked []*canvasv1.PlacePixelResponse
	for i := range int32(3) {
		res, err := api.place(t, tok, i, 0, 3+i)
		if err != nil {
			t.Fatal(err)
		}
		acked = append(acked, res)
	}
	key := "canvas:{" + canvasID(t, dbURL) + "}:"
	rc := redistest.Client(t)
	// The promoted copy missed the last two placements.
	if err := rc.DecrBy(context.Background(), key+"seq", 2).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rc.BitField(context.Background(), key+"board", "SET", "u4", "#1", 0, "SET", "u4", "#2", 0).Err(); err != nil {
		t.Fatal(err)
	}
	first := acked[1].GetSeq()
	if err := rc.XDel(context.Background(), key+"log", fmt.Sprintf("%d-0", first), fmt.Sprintf("%d-0", first+1)).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rc.Do(context.Background(), "XSETID", key+"log", fmt.Sprintf("%d-0", first-1)).Err(); err != nil {
		t.Fatal(err)
	}

	if _, err := api.place(t, tok, 9, 9, 1); status.Code(err) != codes.Unavailable {
		t.Fatalf("placement on a reused seq: got %v, want UNAVAILABLE", err)
	}
	snap, err := api.snapshot(t)
	if err != nil {
		t.Fatal(err)
	}
	if snap.GetSeq() != acked[2].GetSeq() {
		t.Fatalf("rebuilt board at seq %d, want %d", snap.GetSeq(), acked[2].GetSeq())
	}
	for i := range 3 {
		if got := canvas.PixelAt(snap.GetPixels(), i); got != byte(3+i) {
			t.Fatalf("pixel (%d,0) = %d after the rebuild, want %d", i, got, 3+i)
		}
	}
	if got := canvas.PixelAt(snap.GetPixels(), 9*64+9); got != 0 {
		t.Fatalf("the refused placement is on the board: %d", got)
	}
	res, err := api.place(t, tok, 9, 9, 1)
	if err != nil || res.GetSeq() != acked[2].GetSeq()+1 {
		t.Fatalf("next placement: %v, %v; want seq %d", res, err, acked[2].GetSeq()+1)
	}
}

// sentinelMaster returns the port of the master the sentinels name.
func sentinelMaster(ctx context.Context) (string, error) {
	var last error
	for _, addr := range strings.Fields(os.Getenv("TEST_SENTINEL_ADDRS")) {
		s := redis.NewSentinelClient(&redis.Options{Addr: addr})
		hp, err := s.GetMasterAddrByName(ctx, os.Getenv("TEST_SENTINEL_MASTER")).Result()
		_ = s.Close()
		if err == nil && len(hp) == 2 {
			return hp[1], nil
		}
		last = err
	}
	return "", fmt.Errorf("no sentinel names a master: %v", last)
}

// placement is one acknowledged placement.
type placement struct {
	seq         int64
	x, y, color int32
}

// The Redis master is SIGKILLed while users place pixels and vote through
// two replicas; Sentinel promotes the replica. Afterwards every
// acknowledged placement is in history with its sequence number and the
// board shows the newest placement of every pixel, every acknowledged vote
// is counted once and audited, and placements were accepted again within
// sentinelRecoveryBound of the kill.
func TestSentinelFailover(t *testing.T) {
	if redistest.Topology() != "sentinel" {
		t.Skip("needs the Sentinel topology (.ci/with-redis sentinel)")
	}
	b := redisBackend(t)
	roomy := ratelimit.Limit{Rate: 100_000, Period: time.Minute, Burst: 100_000}
	reps := canvasReplicas(t, b, 2, func(cfg *app.Config) {
		cfg.Canvas.Cooldown = canvas.NoCooldown
		cfg.AdminUser, cfg.AdminPassword = adminName, adminPassword
		cfg.Vote.UserLimit, cfg.Vote.AddrLimit = roomy, roomy
	})
	env := newVoteEnv(t, reps[0])
	const voters, elections = 10, 3
	var ids []string
	for range elections {
		ids = append(ids, env.openElection(t).GetElectionId())
	}
	tokens := make([]string, voters)
	for i := range tokens {
		_, tokens[i] = env.voter(t)
	}
	placers := make([]string, 6)
	for i := range placers {
		_, placers[i] = canvasGRPC{grpcAPI{reps[i%2]}}.guest(t)
	}

	var mu sync.Mutex
	var placed []placement
	var lastErr error
	lastOK := map[int]time.Time{} // replica -> last acknowledged placement
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w, tok := range placers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rep := w % 2
			c := canvasv1.NewCanvasServiceClient(reps[rep].conn)
			for {
				select {
				case <-stop:
					return
				default:
				}
				x, y, col := rand.Int32N(16), rand.Int32N(16), rand.Int32N(16)
				ctx, cancel := context.WithTimeout(grpcAPI{reps[rep]}.ctx(tok), 3*time.Second)
				res, err := c.PlacePixel(ctx, &canvasv1.PlacePixelRequest{X: x, Y: y, Color: col})
				cancel()
				mu.Lock()
				if err == nil {
					placed = append(placed, placement{res.GetSeq(), x, y, col})
					lastOK[rep] = time.Now()
				} else {
					lastErr = err
				}
				mu.Unlock()
				if err != nil {
					time.Sleep(50 * time.Millisecond) // a client backing off
				}
			}
		}()
	}

	// Votes: every voter in every election, retried with its key until
	// acknowledged, spread over both replicas.
	type pair struct{ user, election int }
	votes := map[pair]string{}
	work := make(chan pair)
	go func() {
		defer close(work)
		for e := range elections {
			for u := range voters {
				work <- pair{u, e}
				time.Sleep(100 * time.Millisecond) // spread over the failover
			}
		}
	}()
	var vwg sync.WaitGroup
	for w := range 4 {
		vwg.Add(1)
		go func() {
			defer vwg.Done()
			for p := range work {
				g := grpcAPI{reps[(w+p.election)%2]}
				for attempt := 0; ; attempt++ {
					ctx, cancel := context.WithTimeout(g.ctx(tokens[p.user], "idempotency-key", fmt.Sprintf("fo-%d-%d", p.user, p.election)), 3*time.Second)
					res, err := votev1.NewVoteServiceClient(g.p.conn).CastVote(ctx, &votev1.CastVoteRequest{ElectionId: ids[p.election], CandidateId: "red"})
					cancel()
					if err == nil {
						mu.Lock()
						votes[p] = res.GetVoteId()
						mu.Unlock()
						break
					}
					if c := status.Code(err); (c != codes.Unavailable && c != codes.DeadlineExceeded) || attempt > 100 {
						t.Errorf("vote %v: %v", p, err)
						break
					}
					time.Sleep(100 * time.Millisecond)
				}
			}
		}()
	}

	count := func() int { mu.Lock(); defer mu.Unlock(); return len(placed) }
	eventually(t, 30*time.Second, func() error {
		if n := count(); n < 100 {
			return fmt.Errorf("only %d placements before the kill", n)
		}
		return nil
	})
	ctx := context.Background()
	old, err := sentinelMaster(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dir := os.Getenv("TEST_REDIS_CONF_DIR")
	pidText, err := os.ReadFile(filepath.Join(dir, "node-"+old+".pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(pidText)))
	killedAt := time.Now()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	before := count()
	t.Logf("killed the Redis master on :%s (pid %d) after %d placements", old, pid, before)
	eventually(t, sentinelRecoveryBound, func() error {
		if m, err := sentinelMaster(ctx); err != nil || m == old {
			return fmt.Errorf("sentinels still name :%s (%v)", m, err)
		}
		return nil
	})
	promotedAt := time.Since(killedAt)
	// Both replicas place again.
	eventually(t, sentinelRecoveryBound, func() error {
		mu.Lock()
		defer mu.Unlock()
		for rep := range 2 {
			if !lastOK[rep].After(killedAt.Add(promotedAt)) {
				return fmt.Errorf("replica %d has not placed since the failover (last error %v)", rep, lastErr)
			}
		}
		return nil
	})
	recovered := time.Since(killedAt)
	// The old master returns, empty, and Sentinel makes it a replica.
	if out, err := exec.Command("redis-server", filepath.Join(dir, "node-"+old+".conf")).CombinedOutput(); err != nil {
		t.Fatalf("restarting redis: %v: %s", err, out)
	}
	n := count()
	eventually(t, 30*time.Second, func() error {
		if c := count(); c < n+100 {
			return fmt.Errorf("%d placements after the recovery", c-n)
		}
		return nil
	})
	vwg.Wait()
	close(stop)
	wg.Wait()
	t.Logf("master promoted %v after the kill, both replicas placing %v after (bound %v); %d placements, %d votes",
		promotedAt.Round(time.Millisecond), recovered.Round(time.Millisecond), sentinelRecoveryBound, len(placed), len(votes))

	checkPlacements(t, reps, env.admin, placed)
	for e, id := range ids {
		res, err := grpcVote{grpcAPI{reps[e%2]}}.results(t, "", id)
		if err != nil || counts(res)["red"] != voters || res.GetTotalVotes() != voters {
			t.Fatalf("election %d: results %v, %v; want %d votes for red", e, res, err, voters)
		}
		trail, err := grpcVote{env.g}.audit(t, env.admin, id)
		if err != nil {
			t.Fatal(err)
		}
		accepted := map[string]int{}
		for _, r := range trail {
			if r.GetOutcome() == votev1.AuditOutcome_AUDIT_OUTCOME_ACCEPTED {
				accepted[r.GetVoteId()]++
			}
		}
		for u := range voters {
			if id := votes[pair{u, e}]; accepted[id] != 1 {
				t.Fatalf("election %d: acknowledged vote %q has %d accepted audit rows", e, id, accepted[id])
			}
		}
	}
}

// checkPlacements: every acknowledged placement is in its pixel's history
// with its sequence number and colour, and every replica's board shows
// each pixel's newest history entry.
func checkPlacements(t *testing.T, reps []*platform, admin string, placed []placement) {
	t.Helper()
	byPixel := map[[2]int32][]placement{}
	for _, p := range placed {
		byPixel[[2]int32{p.x, p.y}] = append(byPixel[[2]int32{p.x, p.y}], p)
	}
	api := canvasGRPC{grpcAPI{reps[0]}}
	newest := map[[2]int32]int32{}
	for xy, ps := range byPixel {
		stored := map[int64]int32{}
		var top int64
		for page := ""; ; {
			res, err := api.history(t, admin, xy[0], xy[1], 100, page)
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range res.GetPlacements() {
				stored[h.GetSeq()] = h.GetColor()
				if h.GetSeq() > top {
					top, newest[xy] = h.GetSeq(), h.GetColor()
				}
			}
			if page = res.GetNextPageToken(); page == "" {
				break
			}
		}
		for _, p := range ps {
			if c, ok := stored[p.seq]; !ok || c != p.color {
				t.Fatalf("acknowledged placement %+v: history has colour %d (present %v)", p, c, ok)
			}
		}
	}
	for i, r := range reps {
		snap, err := canvasGRPC{grpcAPI{r}}.snapshot(t)
		if err != nil {
			t.Fatal(err)
		}
		for xy, c := range newest {
			if got := canvas.PixelAt(snap.GetPixels(), int(xy[1])*int(snap.GetWidth())+int(xy[0])); int32(got) != c {
				t.Fatalf("replica %d: pixel %v is %d, history's newest is %d", i, xy, got, c)
			}
		}
	}
}
