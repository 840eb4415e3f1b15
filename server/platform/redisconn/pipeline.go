package redisconn

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Pipelined wraps c so that the single commands of the hot paths (GET, and
// the EVALSHA of scripts: rate limits, vote counters, cache fills) sent by
// concurrent callers share pipelines. A caller joins the next pipeline,
// which is sent as soon as the one in flight has answered: a lone caller's
// command goes out at once, and under load N commands cost one round trip
// (one write and one read on each side) instead of N. Each of those
// commands is small, so at that point the syscalls and wake-ups of a round
// trip, not Redis's work, are what it costs. A caller never takes the reply
// to a command sent before it arrived, so a read that starts after a write
// returned still sees it. Everything else (transactions, streams, pub/sub,
// the rest of the commands) goes to c as it is.
//
// (go-redis v9.23 brought an automatic pipeliner of its own, AutoPipeline,
// still marked experimental; until it is not, this one stays: it covers
// only the commands above, and the fault suites have proven it.)
func Pipelined(c redis.UniversalClient) *PipelinedClient {
	return &PipelinedClient{UniversalClient: c, b: &batcher{c: c}}
}

// PipelinedClient is c with GET and EVALSHA pipelined between callers.
type PipelinedClient struct {
	redis.UniversalClient
	b *batcher
}

// Get is GET, pipelined.
func (c *PipelinedClient) Get(ctx context.Context, key string) *redis.StringCmd {
	return join(ctx, c.b, func(p redis.Pipeliner) *redis.StringCmd { return p.Get(ctx, key) },
		func() *redis.StringCmd { return redis.NewStringCmd(ctx, "get", key) })
}

// EvalSha is EVALSHA, pipelined (a NOSCRIPT answer makes redis.Script fall
// back to Eval, which goes straight to the server).
func (c *PipelinedClient) EvalSha(ctx context.Context, sha1 string, keys []string, args ...any) *redis.Cmd {
	return join(ctx, c.b, func(p redis.Pipeliner) *redis.Cmd { return p.EvalSha(ctx, sha1, keys, args...) },
		func() *redis.Cmd { return redis.NewCmd(ctx, "evalsha", sha1) })
}

// EvalShaRO is EVALSHA_RO, pipelined.
func (c *PipelinedClient) EvalShaRO(ctx context.Context, sha1 string, keys []string, args ...any) *redis.Cmd {
	return join(ctx, c.b, func(p redis.Pipeliner) *redis.Cmd { return p.EvalShaRO(ctx, sha1, keys, args...) },
		func() *redis.Cmd { return redis.NewCmd(ctx, "evalsha_ro", sha1) })
}

// Shared reports how many commands were sent in a pipeline with others.
func (c *PipelinedClient) Shared() int64 { return c.b.shared.Load() }

type batcher struct {
	c redis.UniversalClient

	mu       sync.Mutex
	waiting  *batch // the pipeline callers arriving now join
	inflight bool

	shared atomic.Int64
}

type batch struct {
	queue []func(redis.Pipeliner) redis.Cmder
	cmds  []redis.Cmder
	done  chan struct{}
}

// maxBatch bounds one pipeline; callers beyond it send their own command.
const maxBatch = 512

// batchTimeout bounds one pipeline's round trip, whoever waits on it; a
// caller's own deadline ends only its wait.
const batchTimeout = time.Second

// join queues queue's command in the next pipeline and returns it once
// answered; failed (a command carrying only an error) is the answer of a
// caller whose context ended first.
func join[C redis.Cmder](ctx context.Context, b *batcher, queue func(redis.Pipeliner) C, failed func() C) C {
	if err := ctx.Err(); err != nil {
		cmd := failed()
		cmd.SetErr(err)
		return cmd
	}
	b.mu.Lock()
	if b.waiting == nil {
		b.waiting = &batch{done: make(chan struct{})}
	}
	bt := b.waiting
	if len(bt.queue) >= maxBatch {
		b.mu.Unlock()
		return direct(ctx, b.c, queue)
	}
	i := len(bt.queue)
	bt.queue = append(bt.queue, func(p redis.Pipeliner) redis.Cmder { return queue(p) })
	if !b.inflight {
		b.inflight, b.waiting = true, nil
		go b.issue(bt)
	}
	b.mu.Unlock()
	select {
	case <-bt.done:
		return bt.cmds[i].(C)
	case <-ctx.Done():
		cmd := failed()
		cmd.SetErr(ctx.Err())
		return cmd
	}
}

// direct sends one command in a pipeline of its own.
func direct[C redis.Cmder](ctx context.Context, c redis.UniversalClient, queue func(redis.Pipeliner) C) C {
	var cmd C
	_, _ = c.Pipelined(ctx, func(p redis.Pipeliner) error {
		cmd = queue(p)
		return nil
	})
	return cmd
}

// issue sends bt, then each pipeline callers joined meanwhile, until none
// is waiting.
func (b *batcher) issue(bt *batch) {
	for bt != nil {
		if len(bt.queue) > 1 {
			b.shared.Add(int64(len(bt.queue)))
		}
		ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
		bt.cmds = make([]redis.Cmder, len(bt.queue))
		// Errors are per command (a Cluster client splits the pipeline
		// per node: one node failing fails only its commands).
		_, _ = b.c.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, q := range bt.queue {
				bt.cmds[i] = q(p)
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
