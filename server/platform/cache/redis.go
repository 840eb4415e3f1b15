package cache

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// NewRedis returns a Cache in Redis, shared by every replica. Keys are stored
// as prefix+key (choose a prefix per cache, e.g. "slug:"); each key is one
// Redis key, so Cluster is fine. A stored value is one marker byte ('v') and
// the bytes; a Delete stores a tombstone ('t' and a random token) for
// TombstoneTTL instead of removing the key (see the package comment).
func NewRedis(c redis.UniversalClient, prefix string) Cache {
	return &redisCache{c: c, prefix: prefix}
}

type redisCache struct {
	c      redis.UniversalClient
	prefix string
}

const (
	markValue = 'v'
	markTomb  = 't'
	markLease = 'l'
)

// fillScript is the guarded fill: SET only if the key still holds what the
// reader saw on its miss (its lease, or that exact tombstone), and never
// over a value (someone filled it meanwhile with data at least as new).
var fillScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if not cur then cur = '' end
if string.sub(cur, 1, 1) == 'v' or cur ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
`)

func (r *redisCache) get(ctx context.Context, key string) (val []byte, ok bool, token string, err error) {
	s, err := r.c.Get(ctx, r.prefix+key).Result()
	if errors.Is(err, redis.Nil) {
		return nil, false, "", nil
	}
	if err != nil {
		return nil, false, "", fmt.Errorf("cache: redis get: %w", err)
	}
	if len(s) > 0 && s[0] == markValue {
		return []byte(s[1:]), true, "", nil
	}
	// A tombstone (or anything this package did not write): a miss whose
	// fill must find exactly this content.
	return nil, false, s, nil
}

func (r *redisCache) Get(ctx context.Context, key string) ([]byte, bool, error) {
	v, ok, _, err := r.get(ctx, key)
	return v, ok, err
}

// leaseScript is the read of a miss that will fill: an absent key gets a
// lease (a random token, like a tombstone) and the fill must find exactly
// it. Taking the token "absent" instead would let a fill whose load began
// before Redis lost its data (a restart, a failover to a replica that had
// not received the writer's tombstone) write the old row into the empty
// key after the writer's Delete had failed, stale for a whole TTL.
var leaseScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur then return cur end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return ARGV[1]
`)

// getForFill reads the key with a plain GET first (a hit costs no script;
// with redisconn.Pipelined it shares a pipeline with other readers): a
// value or a tombstone answers as leaseScript would. Only an
// absent key takes the script, which looks again before writing its lease.
func (r *redisCache) getForFill(ctx context.Context, key string) ([]byte, bool, string, error) {
	val, ok, token, err := r.get(ctx, key)
	if err != nil || ok || token != "" {
		return val, ok, token, err
	}
	lease := string(markLease) + strconv.FormatUint(rand.Uint64(), 36)
	s, err := leaseScript.Run(ctx, r.c, []string{r.prefix + key}, lease, strconv.FormatInt(TombstoneTTL.Milliseconds(), 10)).Text()
	if err != nil {
		return nil, false, "", fmt.Errorf("cache: redis get: %w", err)
	}
	if len(s) > 0 && s[0] == markValue {
		return []byte(s[1:]), true, "", nil
	}
	return nil, false, s, nil
}

func encodeValue(val []byte) []byte {
	b := make([]byte, 1+len(val))
	b[0] = markValue
	copy(b[1:], val)
	return b
}

func (r *redisCache) Set(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	if ttl <= 0 {
		return ErrInvalidTTL
	}
	if err := r.c.Set(ctx, r.prefix+key, encodeValue(val), max(ttl, time.Millisecond)).Err(); err != nil {
		return fmt.Errorf("cache: redis set: %w", err)
	}
	return nil
}

func (r *redisCache) fill(ctx context.Context, key, token string, val []byte, ttl time.Duration) (bool, error) {
	if ttl <= 0 {
		return false, ErrInvalidTTL
	}
	ms := max(ttl.Milliseconds(), 1)
	n, err := fillScript.Run(ctx, r.c, []string{r.prefix + key}, token, encodeValue(val), strconv.FormatInt(ms, 10)).Int()
	if err != nil {
		return false, fmt.Errorf("cache: redis fill: %w", err)
	}
	return n == 1, nil
}

func newTombstone() string {
	return string(markTomb) + strconv.FormatUint(rand.Uint64(), 36)
}

// deleteRetries are the pauses between attempts of a Delete that failed.
// A write is acknowledged after its Delete; one that did not land leaves
// the old value readable by every replica that still reaches Redis, for a
// whole TTL. The usual cause is short: a connection pool still failing its
// dials for a moment after Redis came back (go-redis waits before dialing
// again). About 1.5 s of retries outlast that; a Redis down for longer
// comes back empty, with nothing stale in it. Meanwhile writes wait: a
// Redis outage slows them, it does not fail them.
var deleteRetries = []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond}

func (r *redisCache) Delete(ctx context.Context, keys ...string) error {
	// The write has committed: a caller that gave up must not stop its
	// invalidation.
	ctx = context.WithoutCancel(ctx)
	err := r.deleteOnce(ctx, keys)
	for _, pause := range deleteRetries {
		if err == nil {
			return nil
		}
		time.Sleep(pause)
		err = r.deleteOnce(ctx, keys)
	}
	return err
}

func (r *redisCache) deleteOnce(ctx context.Context, keys []string) error {
	switch len(keys) {
	case 0:
		return nil
	case 1:
		if err := r.c.Set(ctx, r.prefix+keys[0], newTombstone(), TombstoneTTL).Err(); err != nil {
			return fmt.Errorf("cache: redis delete: %w", err)
		}
		return nil
	}
	// One pipeline; a Cluster client splits it per node.
	_, err := r.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range keys {
			p.Set(ctx, r.prefix+k, newTombstone(), TombstoneTTL)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("cache: redis delete: %w", err)
	}
	return nil
}
