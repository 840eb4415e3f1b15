// Package epoch is a revocation counter shared by every replica: in Redis
// when there is one, in process otherwise (the embedded default, one
// replica). A revocation bumps it after committing to the store and sends
// the new value with its bus message; a replica trusts its in-memory view
// only while the counter it reads equals the one it has applied every
// message up to (see server/identity/sessioncache.go, the first user, and
// server/share/linkguard.go).
package epoch

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Counter is a revocation counter.
type Counter interface {
	// Current is the last value Next returned (0 before any).
	Current(ctx context.Context) (uint64, error)
	// Next bumps the counter and returns its new value.
	Next(ctx context.Context) (uint64, error)
}

// NewMemory is a counter of this process alone.
func NewMemory() Counter { return &memory{} }

type memory struct{ n atomic.Uint64 }

func (m *memory) Current(context.Context) (uint64, error) { return m.n.Load(), nil }
func (m *memory) Next(context.Context) (uint64, error)    { return m.n.Add(1), nil }

// NewRedis keeps the counter at key, its reads coalesced (Coalesce). A
// missing key (a Redis that lost its data) restarts at the current time in
// microseconds, so the counter never comes back to a value a replica has
// applied before.
func NewRedis(c redis.UniversalClient, key string) Counter {
	return Coalesce(redisCounter{c: c, key: key})
}

type redisCounter struct {
	c   redis.UniversalClient
	key string
}

var nextScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('SET', KEYS[1], ARGV[1]) end
return redis.call('INCR', KEYS[1])`)

func (r redisCounter) Current(ctx context.Context) (uint64, error) {
	v, err := r.c.Get(ctx, r.key).Result()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(v, 10, 64)
}

func (r redisCounter) Next(ctx context.Context) (uint64, error) {
	n, err := nextScript.Run(ctx, r.c, []string{r.key}, time.Now().UnixMicro()).Int64()
	return uint64(n), err
}

// Coalesce shares Current reads between concurrent calls, so that checking
// the counter on every request costs a fraction of a round trip. A call
// never takes a value read before it arrived (that could predate a
// revocation it must see): it joins the next read, issued once the one in
// flight has answered.
func Coalesce(c Counter) Counter { return &coalesced{Counter: c} }

type coalesced struct {
	Counter
	mu       sync.Mutex
	waiting  *read // the read that callers arriving now will get
	inflight bool
}

type read struct {
	done chan struct{}
	v    uint64
	err  error
}

func (c *coalesced) Current(ctx context.Context) (uint64, error) {
	c.mu.Lock()
	if c.waiting == nil {
		c.waiting = &read{done: make(chan struct{})}
	}
	rd := c.waiting
	if !c.inflight {
		c.inflight, c.waiting = true, nil
		go c.issue(rd)
	}
	c.mu.Unlock()
	select {
	case <-rd.done:
		return rd.v, rd.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// issue performs rd, then the read callers joined meanwhile, if any.
func (c *coalesced) issue(rd *read) {
	for rd != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		rd.v, rd.err = c.Counter.Current(ctx)
		cancel()
		close(rd.done)
		c.mu.Lock()
		rd, c.waiting = c.waiting, nil
		if rd == nil {
			c.inflight = false
		}
		c.mu.Unlock()
	}
}
