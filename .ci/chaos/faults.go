package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	canvasv1 "github.com/apiplatform/platform/gen/go/canvas/v1"
)

// The fault kinds, injected in this order round after round.
var faultKinds = []string{"replica-kill", "redis-kill", "postgres-restart", "replica-partition"}

// fault is one injected fault: its window runs from start to the moment
// the platform answered again (end), plus grace for clients to notice.
type fault struct {
	kind, target string
	start, end   time.Time
}

// faultLog holds the windows; errors inside one are expected.
type faultLog struct {
	mu     sync.Mutex
	faults []fault
	grace  time.Duration
}

func (l *faultLog) begin(kind, target string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.faults = append(l.faults, fault{kind: kind, target: target, start: time.Now()})
	return len(l.faults) - 1
}

func (l *faultLog) finish(i int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.faults[i].end = time.Now()
}

// inWindow: was t during a fault (or its grace), or is one still open?
func (l *faultLog) inWindow(t time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, f := range l.faults {
		if !t.Before(f.start) && (f.end.IsZero() || t.Before(f.end.Add(l.grace))) {
			return true
		}
	}
	return false
}

// redisProc is the harness's own redis-server, killed and restarted empty
// (no persistence: the worst case, everything in it is lost).
type redisProc struct {
	port int
	dir  string
	cmd  *exec.Cmd
}

func (r *redisProc) url() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", r.port) }

func (r *redisProc) start() error {
	r.cmd = exec.Command("redis-server", "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", r.dir)
	r.cmd.SysProcAttr = dieWithUs()
	if err := r.cmd.Start(); err != nil {
		return fmt.Errorf("redis-server: %w", err)
	}
	go func(c *exec.Cmd) { _ = c.Wait() }(r.cmd)
	return waitTCP(fmt.Sprintf("127.0.0.1:%d", r.port), 10*time.Second)
}

func (r *redisProc) kill() {
	if r.cmd != nil {
		_ = r.cmd.Process.Signal(syscall.SIGKILL)
		for waitTCP(fmt.Sprintf("127.0.0.1:%d", r.port), 0) == nil {
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// postgres is the server .ci/with-services started, restarted through
// its pg_ctl (immediate stop: a crash, recovery from WAL at start).
type postgres struct{ ctl, data string }

func (p postgres) restart(down time.Duration) error {
	if err := run(p.ctl, "-D", p.data, "-m", "immediate", "stop"); err != nil {
		return err
	}
	time.Sleep(down)
	var err error
	for range 3 { // a start can fail while the old postmaster's port is still held
		if err = run(p.ctl, "-D", p.data, "-w", "-l", filepath.Join(filepath.Dir(p.data), "pg.log"), "start"); err == nil {
			return nil
		}
		time.Sleep(time.Second)
	}
	return err
}

// healthy waits until every replica answers a canvas read directly (not
// through the load balancer).
func healthy(ctx context.Context, reps []*replica, d time.Duration) error {
	deadline := time.Now().Add(d)
	for _, r := range reps {
		conn, err := grpc.NewClient(r.grpcAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return err
		}
		for {
			cctx, cancel := context.WithTimeout(ctx, time.Second)
			_, err := canvasv1.NewCanvasServiceClient(conn).GetSnapshot(cctx, &canvasv1.GetSnapshotRequest{})
			cancel()
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				_ = conn.Close()
				return fmt.Errorf("replica %d not healthy after %v: %v", r.id, d, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
		_ = conn.Close()
	}
	return nil
}

// inject runs rounds of every fault kind, each held for hold, with gap of
// quiet between faults.
func inject(ctx context.Context, fl *faultLog, rounds int, hold, gap time.Duration, reps []*replica, rp *redisProc, pg postgres) error {
	for round := range rounds {
		for k, kind := range faultKinds {
			rep := reps[(round+k)%len(reps)]
			target := ""
			switch kind {
			case "replica-kill", "replica-partition":
				target = fmt.Sprintf("replica %d", rep.id)
			case "redis-kill":
				target = "redis"
			case "postgres-restart":
				target = "postgresql"
			}
			i := fl.begin(kind, target)
			var err error
			switch kind {
			case "replica-kill":
				rep.kill()
				time.Sleep(hold)
				err = rep.start()
			case "redis-kill":
				rp.kill()
				time.Sleep(hold)
				err = rp.start()
			case "postgres-restart":
				err = pg.restart(hold)
			case "replica-partition":
				rep.grpcCut.set(true)
				rep.httpCut.set(true)
				time.Sleep(hold)
				rep.grpcCut.set(false)
				rep.httpCut.set(false)
			}
			if err != nil {
				return fmt.Errorf("%s: %w", kind, err)
			}
			if err := healthy(ctx, reps, 60*time.Second); err != nil {
				return fmt.Errorf("after %s of %s: %w", kind, target, err)
			}
			fl.finish(i)
			fmt.Fprintf(os.Stderr, "chaos: %-18s %-10s recovered in %v\n", kind, target, time.Since(fl.faults[i].start).Round(time.Millisecond))
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(gap):
			}
		}
	}
	return nil
}
