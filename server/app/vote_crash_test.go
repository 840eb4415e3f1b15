package app_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	votev1 "github.com/apiplatform/platform/gen/go/vote/v1"
	"github.com/apiplatform/platform/server/app"
	"github.com/apiplatform/platform/server/platform/ratelimit"
)

// Environment of the server process TestVoteSurvivesKill starts (this test
// binary again, running only TestVoteCrashChild).
const (
	crashChildEnv = "VOTE_CRASH_CHILD"
	crashAddrEnv  = "VOTE_CRASH_GRPC_ADDR"
	crashDBEnv    = "VOTE_CRASH_DATABASE_URL"
	crashRedisEnv = "VOTE_CRASH_REDIS_URL"
	crashDirEnv   = "VOTE_CRASH_DATA_DIR"
)

// TestVoteCrashChild is the server process of TestVoteSurvivesKill; run
// directly it does nothing.
func TestVoteCrashChild(t *testing.T) {
	if os.Getenv(crashChildEnv) != "1" {
		t.Skip("the server process of TestVoteSurvivesKill")
	}
	roomy := ratelimit.Limit{Rate: 100_000, Period: time.Minute, Burst: 100_000}
	cfg := app.Config{
		GRPCAddr: os.Getenv(crashAddrEnv), DataDir: os.Getenv(crashDirEnv), Region: "test-region",
		DatabaseURL: os.Getenv(crashDBEnv), RedisURL: os.Getenv(crashRedisEnv),
		AdminUser: adminName, AdminPassword: adminPassword,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	cfg.Vote.UserLimit, cfg.Vote.AddrLimit = roomy, roomy
	cfg.Vote.MaxAccountsPerAddr = -1 // every client here is 127.0.0.1
	cfg.Identity.GuestLimit, cfg.Identity.RegisterLimit, cfg.Identity.LoginAddrLimit = roomy, roomy, roomy
	srv, err := app.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("READY", srv.GRPCAddr())
	t.Fatal(srv.Serve()) // until killed
}

// crashServer is a server process the test may SIGKILL and restart.
type crashServer struct {
	env  []string
	addr string
	cmd  *exec.Cmd
	done chan struct{}
}

func (s *crashServer) start(t *testing.T) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestVoteCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), s.env...)
	cmd.Stderr = t.Output()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.cmd, s.done = cmd, make(chan struct{})
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "READY ") {
				ready <- true
				break
			}
		}
		_, _ = io.Copy(io.Discard, out)
		_ = cmd.Wait()
		close(s.done)
		ready <- false
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatal("server process exited before it was ready")
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("server process not ready")
	}
}

func (s *crashServer) kill(t *testing.T) {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
	s.cmd = nil
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Votes from many users while the server process is SIGKILLed mid-load
// and restarted. The client keeps a ledger of every acknowledgement and
// retries the rest with their Idempotency-Keys. Afterwards every
// acknowledged vote is stored, once, with the id it was acknowledged with,
// its audit row is there, and the exact result of each election equals the
// ledger.
func TestVoteSurvivesKill(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		cfg := testConfig(t)
		b.setup(t, &cfg)
		srv := &crashServer{addr: freeAddr(t), env: []string{
			crashChildEnv + "=1", crashAddrEnv + "=" + "", crashDBEnv + "=" + cfg.DatabaseURL,
			crashRedisEnv + "=" + cfg.RedisURL, crashDirEnv + "=" + cfg.DataDir,
		}}
		srv.env[1] = crashAddrEnv + "=" + srv.addr
		t.Cleanup(func() { srv.kill(t) })
		srv.start(t)

		conn, err := grpc.NewClient(srv.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		env := newVoteEnv(t, &platform{conn: conn})
		g := grpcVote{env.g}

		const users, elections = 12, 15
		var ids []string
		for range elections {
			ids = append(ids, env.openElection(t).GetElectionId())
		}
		userIDs, tokens := make([]string, users), make([]string, users)
		// One at a time: the server bounds concurrent password hashes, and
		// parallel sign-ups on a busy machine would be refused as busy.
		for i := range users {
			userIDs[i], tokens[i] = env.voter(t)
		}

		type pair struct{ user, election int }
		type ack struct{ voteID, candidate string }
		candidate := func(p pair) string { return []string{"red", "green", "blue"}[(p.user*7+p.election)%3] }
		key := func(p pair) string { return fmt.Sprintf("crash-%d-%d", p.user, p.election) }
		var mu sync.Mutex
		ledger := map[pair]ack{}
		var failed []pair

		// cast sends one vote and files its answer: an acknowledgement (or
		// the original vote an ALREADY_EXISTS carries) in the ledger,
		// anything else for a retry.
		cast := func(p pair) bool {
			ctx, cancel := context.WithTimeout(g.ctx(tokens[p.user], "idempotency-key", key(p)), 3*time.Second)
			defer cancel()
			res, err := g.client().CastVote(ctx, &votev1.CastVoteRequest{ElectionId: ids[p.election], CandidateId: candidate(p)})
			mu.Lock()
			defer mu.Unlock()
			switch status.Code(err) {
			case codes.OK:
				ledger[p] = ack{res.GetVoteId(), candidate(p)}
				return true
			case codes.AlreadyExists:
				for _, d := range status.Convert(err).Details() {
					if info, ok := d.(*errdetails.ErrorInfo); ok {
						ledger[p] = ack{info.GetMetadata()["vote_id"], info.GetMetadata()["candidate_id"]}
						return true
					}
				}
				t.Errorf("ALREADY_EXISTS without the original vote: %v", err)
			case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled:
			default:
				t.Errorf("vote: %v", err)
			}
			failed = append(failed, p)
			return false
		}

		work := make(chan pair)
		go func() {
			defer close(work)
			for e := range elections {
				for u := range users {
					work <- pair{u, e}
				}
			}
		}()
		var acked atomic.Int64
		killAt := int64(users * elections / 4)
		var once sync.Once
		var wg sync.WaitGroup
		for range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for p := range work {
					if cast(p) && acked.Add(1) == killAt {
						once.Do(func() { srv.kill(t) })
					}
				}
			}()
		}
		wg.Wait()
		beforeKill := map[pair]ack{}
		for p, a := range ledger {
			beforeKill[p] = a
		}
		t.Logf("%d votes acknowledged, %d failed around the kill", len(ledger), len(failed))
		if len(failed) == 0 || len(ledger) < int(killAt) {
			t.Fatalf("the kill did not land mid-load: %d acknowledged, %d failed", len(ledger), len(failed))
		}

		srv.start(t)
		for attempt := 0; len(failed) > 0; attempt++ {
			if attempt == 50 {
				t.Fatalf("%d votes still failing after the restart", len(failed))
			}
			retry := failed
			failed = nil
			for _, p := range retry {
				cast(p)
			}
			if len(failed) > 0 {
				time.Sleep(100 * time.Millisecond)
			}
		}

		// Nothing acknowledged before the kill was lost or replaced.
		for p, a := range beforeKill {
			if ledger[p] != a {
				t.Fatalf("vote %v acknowledged as %v, later answered %v", p, a, ledger[p])
			}
		}
		for e, id := range ids {
			want := map[string]int64{}
			wantIDs := map[string]bool{}
			for u := range users {
				a := ledger[pair{u, e}]
				want[a.candidate]++
				wantIDs[a.voteID] = true
				st, err := g.status(t, env.admin, userIDs[u], id)
				if err != nil || !st.GetVoted() || st.GetVoteId() != a.voteID {
					t.Fatalf("status of %v = %v, %v; acknowledged %v", pair{u, e}, st, err, a)
				}
			}
			exact, err := g.results(t, "", id)
			if err != nil || fmt.Sprint(counts(exact)) != fmt.Sprint(want) {
				t.Fatalf("election %d: results %v, %v; ledger %v", e, exact, err, want)
			}
			trail, err := g.audit(t, env.admin, id)
			if err != nil {
				t.Fatal(err)
			}
			seen := map[string]bool{}
			for _, r := range trail {
				if r.GetOutcome() != votev1.AuditOutcome_AUDIT_OUTCOME_ACCEPTED {
					continue
				}
				if seen[r.GetVoteId()] || !wantIDs[r.GetVoteId()] {
					t.Fatalf("election %d: audit has vote %s twice or unacknowledged", e, r.GetVoteId())
				}
				seen[r.GetVoteId()] = true
			}
			if len(seen) != users {
				t.Fatalf("election %d: %d accepted audit rows, want %d", e, len(seen), users)
			}
			eventually(t, 3*time.Second, func() error {
				if live, err := g.live(t, "", id); err != nil || fmt.Sprint(counts(live)) != fmt.Sprint(want) {
					return fmt.Errorf("election %d: live %v, %v; want %v", e, live, err, want)
				}
				return nil
			})
		}
	})
}
