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
	return NewRedisGroup(c, key)[0]
}

// NewRedisGroup is counters at keys that are read together: one MGET,
// coalesced between concurrent calls, answers every counter of the group,
// and within one call (WithCall) a second counter's Current takes the read
// the first one made. So a call that checks both the revocation epoch and
// a cache's epoch pays for one shared round trip, not two. The keys must
// share a Redis Cluster slot: name the others with the first as their hash
// tag ("{first}:other" hashes like "first" itself).
func NewRedisGroup(c redis.UniversalClient, keys ...string) []Counter {
	g := &group{read: func(ctx context.Context) ([]uint64, error) {
		vals, err := c.MGet(ctx, keys...).Result()
		if err != nil {
			return nil, err
		}
		out := make([]uint64, len(keys))
		for i, v := range vals {
			if v == nil {
				continue // missing: 0, as Next will restart above anything seen
			}
			s, _ := v.(string)
			if out[i], err = strconv.ParseUint(s, 10, 64); err != nil {
				return nil, err
			}
		}
		return out, nil
	}}
	out := make([]Counter, len(keys))
	for i, k := range keys {
		out[i] = member{g: g, i: i, next: func(ctx context.Context) (uint64, error) {
			n, err := nextScript.Run(ctx, c, []string{k}, time.Now().UnixMicro()).Int64()
			return uint64(n), err
		}}
	}
	return out
}

var nextScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('SET', KEYS[1], ARGV[1]) end
return redis.call('INCR', KEYS[1])`)

// Coalesce shares Current reads between concurrent calls, so that checking
// the counter on every request costs a fraction of a round trip.
func Coalesce(c Counter) Counter {
	g := &group{read: func(ctx context.Context) ([]uint64, error) {
		v, err := c.Current(ctx)
		return []uint64{v}, err
	}}
	return member{g: g, next: c.Next}
}

// member is one counter of a group.
type member struct {
	g    *group
	i    int
	next func(ctx context.Context) (uint64, error)
}

func (m member) Current(ctx context.Context) (uint64, error) {
	v, err := m.g.current(ctx)
	if err != nil {
		return 0, err
	}
	return v[m.i], nil
}

func (m member) Next(ctx context.Context) (uint64, error) { return m.next(ctx) }

// group coalesces the reads of its counters. A call never takes a value
// read before it arrived (that could predate a revocation it must see): it
// joins the next read, issued once the one in flight has answered.
type group struct {
	read     func(ctx context.Context) ([]uint64, error)
	mu       sync.Mutex
	waiting  *read // the read that callers arriving now will get
	inflight bool
}

type read struct {
	done chan struct{}
	v    []uint64
	err  error
}

func (g *group) current(ctx context.Context) ([]uint64, error) {
	cl, _ := ctx.Value(callKey{}).(*call)
	rd := cl.lookup(g)
	if rd == nil {
		g.mu.Lock()
		if g.waiting == nil {
			g.waiting = &read{done: make(chan struct{})}
		}
		rd = g.waiting
		if !g.inflight {
			g.inflight, g.waiting = true, nil
			go g.issue(rd)
		}
		g.mu.Unlock()
		cl.remember(g, rd)
	}
	select {
	case <-rd.done:
		return rd.v, rd.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// issue performs rd, then the read callers joined meanwhile, if any.
func (g *group) issue(rd *read) {
	for rd != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		rd.v, rd.err = g.read(ctx)
		cancel()
		close(rd.done)
		g.mu.Lock()
		rd, g.waiting = g.waiting, nil
		if rd == nil {
			g.inflight = false
		}
		g.mu.Unlock()
	}
}

// WithCall marks ctx as one call's: the first Current of a group's counter
// under it reads as usual, and every later one (of any counter of that
// group) takes that same read. That read was issued after the call arrived,
// so it still sees everything acknowledged before the call began.
func WithCall(ctx context.Context) context.Context {
	return context.WithValue(ctx, callKey{}, &call{})
}

type callKey struct{}

// call holds a call's reads; nearly every call touches one group.
type call struct {
	mu    sync.Mutex
	group *group
	read  *read
}

func (c *call) lookup(g *group) *read {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.group == g {
		return c.read
	}
	return nil
}

func (c *call) remember(g *group, rd *read) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.group == nil {
		c.group, c.read = g, rd
	}
}

// bumpRetries are the pauses between attempts of a Bump that failed.
var bumpRetries = []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond}

// Bump is Next for a write that has committed, retried for about 0.75 s: a
// bump that does not land leaves every replica that still reads the old
// value trusting what it keeps in memory, for its entries' whole lifetime.
// The usual cause is short (a connection pool still failing its dials just
// after Redis came back); a Redis down for longer comes back empty, and a
// missing counter matches no replica's view.
func Bump(ctx context.Context, c Counter) (uint64, error) {
	ctx = context.WithoutCancel(ctx)
	n, err := c.Next(ctx)
	for _, pause := range bumpRetries {
		if err == nil {
			break
		}
		time.Sleep(pause)
		n, err = c.Next(ctx)
	}
	return n, err
}
