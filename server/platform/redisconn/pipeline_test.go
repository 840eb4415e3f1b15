package redisconn_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/apiplatform/platform/server/platform/redisconn"
	"github.com/apiplatform/platform/server/platform/redistest"
)

var incrBy = redis.NewScript(`return redis.call('INCRBY', KEYS[1], ARGV[1])`)

// Concurrent callers share pipelines: each still gets its own command's
// answer, and a read that starts after a write returned (through the
// unwrapped client, as another replica would) sees that write.
func TestPipelinedCallersKeepTheirOwnAnswers(t *testing.T) {
	raw := redistest.Client(t)
	pc := redisconn.Pipelined(raw)
	prefix := redistest.Prefix("pipeline")
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := fmt.Sprintf("%s{k%d}", prefix, g)
			for round := range 20 {
				want := fmt.Sprintf("%d/%d", g, round)
				if err := raw.Set(ctx, key, want, time.Minute).Err(); err != nil {
					errs <- err
					return
				}
				if got, err := pc.Get(ctx, key).Result(); err != nil || got != want {
					errs <- fmt.Errorf("%s after Set(%q): %q, %v", key, want, got, err)
					return
				}
				// A script (EVALSHA, NOSCRIPT falling back to EVAL the first time).
				n, err := incrBy.Run(ctx, pc, []string{key + ":n"}, g+1).Int()
				if err != nil || n != (round+1)*(g+1) {
					errs <- fmt.Errorf("%s counter after round %d: %d, %v", key, round, n, err)
					return
				}
				if err := raw.Del(ctx, key).Err(); err != nil {
					errs <- err
					return
				}
				if got, err := pc.Get(ctx, key).Result(); err != redis.Nil {
					errs <- fmt.Errorf("%s after Del: %q, %v", key, got, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if !t.Failed() && pc.Shared() == 0 {
		t.Fatal("no command shared a pipeline (this test proves nothing about them)")
	}
}

// A caller whose context ends stops waiting; the others are answered.
func TestPipelinedCallerGivesUp(t *testing.T) {
	pc := redisconn.Pipelined(redistest.Client(t))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := pc.Get(ctx, redistest.Prefix("pipeline")+"gone").Err(); err != context.Canceled {
		t.Fatalf("Get with an ended context: %v", err)
	}
	if err := pc.Get(context.Background(), redistest.Prefix("pipeline")+"absent").Err(); err != redis.Nil {
		t.Fatalf("Get of an absent key: %v", err)
	}
}
