package vote

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// Group commit. Every accepted vote must be durable before it is
// acknowledged, and a durable commit costs a round trip and a log flush
// whatever its size; so concurrent votes share one. Committer goroutines
// take attempts from one queue: a committer that finds the database idle
// commits what it has at once (no added latency at low load); while another
// commit is in flight it waits up to MaxWait for the batch to fill to
// MaxBatch. A vote thus waits at most MaxWait plus the commits ahead of it,
// and the committers keep up to Committers transactions in flight.

// flight is one vote attempt on its way to the store. Concurrent attempts
// of the same (election, user) in this process join the first one's flight
// instead of reaching the store (see Service.submit).
type flight struct {
	att  Attempt
	done chan struct{}
	res  Result
	err  error
}

// errOverloaded: the queue stayed full for QueueWait.
var errOverloaded = errors.New("vote: commit queue full")

type committer struct {
	store   Store
	log     *slog.Logger
	queue   chan *flight
	rejects chan AuditRecord
	max     int
	wait    time.Duration
	workers int
	shards  int
	base    int
	busy    atomic.Int32 // commits in flight
	stop    chan struct{}
	wg      sync.WaitGroup
	// done is told each committed batch's results, after commit.
	done func(flights []*flight)
}

func newCommitter(store Store, log *slog.Logger, cfg Config, done func([]*flight)) *committer {
	workers := cfg.Committers
	shards := (cfg.CounterShards + workers - 1) / workers * workers // a multiple of workers
	c := &committer{
		store: store, log: log, done: done,
		queue:   make(chan *flight, cfg.MaxBatch*workers*4),
		rejects: make(chan AuditRecord, cfg.MaxBatch*workers*4),
		max:     cfg.MaxBatch, wait: cfg.MaxWait, workers: workers, shards: shards,
		base: rand.IntN(shards), stop: make(chan struct{}),
	}
	for i := range workers {
		c.wg.Add(1)
		go c.run(i)
	}
	return c
}

// enqueue hands f to the committers, waiting at most queueWait for room.
func (c *committer) enqueue(ctx context.Context, f *flight, queueWait time.Duration) error {
	select {
	case c.queue <- f:
		queueDepth.Inc()
		return nil
	default:
	}
	t := time.NewTimer(queueWait)
	defer t.Stop()
	select {
	case c.queue <- f:
		queueDepth.Inc()
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return errOverloaded
	}
}

// reject queues the audit row of a refused attempt without waiting: under a
// flood of refusals rows are dropped (and counted) rather than slowing the
// refusals down or filling memory.
func (c *committer) reject(r AuditRecord) {
	select {
	case c.rejects <- r:
	default:
		auditDropped.Inc()
	}
}

// shard picks the counter shard of worker i's next batch: concurrent
// workers of this process never share one (they differ modulo workers);
// other processes start at a random base, and the random step spreads
// them further.
func (c *committer) shard(i int) int {
	return (c.base + i + c.workers*rand.IntN(c.shards/c.workers)) % c.shards
}

func (c *committer) run(i int) {
	defer c.wg.Done()
	for {
		var flights []*flight
		var rejects []AuditRecord
		select {
		case f := <-c.queue:
			flights = append(flights, f)
		case r := <-c.rejects:
			rejects = append(rejects, r)
		case <-c.stop:
			c.drain(i)
			return
		}
		flights, rejects = c.fill(flights, rejects)
		c.commit(i, flights, rejects)
	}
}

// fill adds what is queued to a batch: everything already waiting, and
// while another commit is in flight whatever arrives within MaxWait.
func (c *committer) fill(flights []*flight, rejects []AuditRecord) ([]*flight, []AuditRecord) {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for len(flights) < c.max && len(rejects) < c.max {
		select {
		case f := <-c.queue:
			flights = append(flights, f)
			continue
		case r := <-c.rejects:
			rejects = append(rejects, r)
			continue
		default:
		}
		if c.busy.Load() == 0 {
			return flights, rejects // the database is idle: go now
		}
		if timer == nil {
			timer = time.NewTimer(c.wait)
		}
		select {
		case f := <-c.queue:
			flights = append(flights, f)
		case r := <-c.rejects:
			rejects = append(rejects, r)
		case <-timer.C:
			return flights, rejects
		}
	}
	return flights, rejects
}

// commitTimeout bounds one batch transaction; callers have their own
// deadlines, but the transaction must not outlive a stuck database forever.
const commitTimeout = 10 * time.Second

func (c *committer) commit(worker int, flights []*flight, rejects []AuditRecord) {
	queueDepth.Sub(float64(len(flights)))
	c.busy.Add(1)
	defer c.busy.Add(-1)
	commitBatch(c.store, c.log, flights, rejects, c.shard(worker))
	c.done(flights)
}

// commitBatch stores one batch and hands every flight its result.
func commitBatch(store Store, log *slog.Logger, flights []*flight, rejects []AuditRecord, shard int) {
	b := Batch{Rejections: rejects, Shard: shard}
	for _, f := range flights {
		b.Attempts = append(b.Attempts, f.att)
	}
	ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
	defer cancel()
	start := time.Now()
	results, err := store.CommitVotes(ctx, b)
	commitSeconds.Observe(time.Since(start).Seconds())
	batchSize.Observe(float64(len(flights) + len(rejects)))
	if err == nil && len(results) != len(flights) {
		err = errors.New("vote: store returned the wrong number of results")
	}
	if err != nil {
		log.Warn("vote batch failed", "votes", len(flights), "rejections", len(rejects), "err", err)
	}
	for i, f := range flights {
		if err != nil {
			f.err = err
		} else {
			f.res = results[i]
		}
	}
}

// drain commits what is left at shutdown (the servers have stopped, so
// nothing new arrives).
func (c *committer) drain(i int) {
	for {
		var flights []*flight
		var rejects []AuditRecord
	collect:
		for len(flights) < c.max && len(rejects) < c.max {
			select {
			case f := <-c.queue:
				flights = append(flights, f)
			case r := <-c.rejects:
				rejects = append(rejects, r)
			default:
				break collect
			}
		}
		if len(flights) == 0 && len(rejects) == 0 {
			return
		}
		c.commit(i, flights, rejects)
	}
}

func (c *committer) close() {
	close(c.stop)
	c.wg.Wait()
}
