package cache

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// getBatcher pipelines the GETs of concurrent readers. A reader joins the
// next pipeline, which is sent as soon as the one in flight has answered:
// a lone reader's GET goes out at once, and under load N reads cost one
// round trip (one write and one read on each side) instead of N. The hot
// reads of a busy replica (a favorite, a share row) are each one small GET,
// so at that point the syscalls and wake-ups of a round trip, not Redis's
// work, are what a read costs. A reader never takes the reply to a GET sent
// before it arrived, so a read that starts after a Delete returned still
// sees it. (go-redis has no automatic pipelining; rueidis does, but the
// platform keeps one Redis client.)
type getBatcher struct {
	c redis.UniversalClient

	mu       sync.Mutex
	waiting  *getBatch // the pipeline readers arriving now join
	inflight bool

	batched atomic.Int64 // reads that shared a pipeline with another, for tests
}

type getBatch struct {
	keys []string
	cmds []*redis.StringCmd
	done chan struct{}
}

// maxBatch bounds one pipeline; readers beyond it send their own GET.
const maxBatch = 512

// batchTimeout bounds one pipeline's round trip, whoever is waiting on it:
// a reader's own deadline ends only its wait.
const batchTimeout = time.Second

func (b *getBatcher) get(ctx context.Context, key string) (string, error) {
	b.mu.Lock()
	if b.waiting == nil {
		b.waiting = &getBatch{done: make(chan struct{})}
	}
	bt := b.waiting
	if len(bt.keys) >= maxBatch {
		b.mu.Unlock()
		return b.c.Get(ctx, key).Result()
	}
	i := len(bt.keys)
	bt.keys = append(bt.keys, key)
	if !b.inflight {
		b.inflight, b.waiting = true, nil
		go b.issue(bt)
	}
	b.mu.Unlock()
	select {
	case <-bt.done:
		return bt.cmds[i].Result()
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// issue sends bt, then each pipeline readers joined meanwhile, until none
// is waiting.
func (b *getBatcher) issue(bt *getBatch) {
	for bt != nil {
		if len(bt.keys) > 1 {
			b.batched.Add(int64(len(bt.keys)))
		}
		ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
		bt.cmds = make([]*redis.StringCmd, len(bt.keys))
		// Errors are per command (a Cluster client splits the pipeline
		// per node; one node failing fails only its keys).
		_, _ = b.c.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, k := range bt.keys {
				bt.cmds[i] = p.Get(ctx, k)
			}
			return nil
		})
		cancel()
		close(bt.done)
		b.mu.Lock()
		bt, b.waiting = b.waiting, nil
		if bt == nil {
			b.inflight = false
		}
		b.mu.Unlock()
	}
}
