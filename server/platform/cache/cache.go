// Package cache is a byte cache for cache-aside reads with invalidation on
// write, with an in-process engine (NewMemory, for the embedded default and
// for per-process hot-key caches) and a Redis engine (NewRedis, shared by all
// replicas; single node, Sentinel or Cluster).
//
// # Reading
//
// Readers use GetOrLoad: a hit is served from the cache; concurrent misses
// for one key in one process collapse into a single load (singleflight),
// whose result fills the cache for ttl. Wrap the engine in Instrument so that
// a cache outage degrades to misses (reads go to the database) instead of
// failing requests, and so hit ratio and errors show up in Prometheus.
//
// # Invalidation contract
//
// A writer calls Delete for every affected key AFTER its database transaction
// has committed: never before (a reader could re-fill the old value between
// the delete and the commit) and never inside a transaction that may retry or
// roll back (the delete would be for a write that did not happen yet, and a
// reader could re-fill the old value before the commit). If Delete fails
// (the Redis engine retries it for about 1.5 s first) the entry stays stale
// until its TTL, so keep TTLs short (seconds to minutes): the TTL is the
// upper bound on staleness whatever goes wrong.
//
// The classic cache-aside race is a reader that loaded the old row just
// before the writer's commit and fills it just after the writer's Delete,
// leaving a stale entry for a whole TTL. This package closes it with a cheap
// guard instead of relying on the TTL alone: Delete does not just remove the
// entry, it leaves a short-lived tombstone carrying a unique token (in Redis,
// a SET of the same key, so still one key and Cluster-safe); a miss tells
// GetOrLoad which token it saw before loading (on an absent key in Redis, a
// lease token it wrote there), and the fill is a compare-and-set (a Lua
// script in Redis) that only writes if the key still holds what the reader
// saw. A Delete in between changes it, so the stale fill is dropped; the next
// reader loads the new row. So does a Redis that lost its data meanwhile
// (restarted empty, or failed over before the tombstone replicated): the
// lease is gone, where "absent" would have matched again. This costs nothing
// on hits, one script call per miss and one per fill. Concurrent misses are
// collapsed per (key, token), so a reader arriving after a Delete never joins
// a load that started before it; a read that could not reach the cache has
// no token to tell, so it loads alone and fills nothing (in an outage every
// read goes to the database; the per-process hot caches in front of the busy
// reads bound that).
// Delete-twice (delete again after a delay) was rejected: it needs a timer per
// write and still only narrows the window. The guard assumes a load finishes
// within the tombstone lifetime (TombstoneTTL in Redis; in memory a tombstone
// lives until evicted, and an eviction conservatively refuses in-flight
// fills), and that loaders read current data (not follower reads / AS OF
// SYSTEM TIME, whose staleness no cache protocol can see).
//
// Readers that overlap a write may still get either the old or the new value
// (that is what concurrent means); readers that start after Delete returned
// get the new one, per process for NewMemory and across replicas for
// NewRedis. A per-process NewMemory cache in front of several replicas is
// only invalidated in its own process: its TTL (or a bus message) bounds
// staleness elsewhere.
//
// Values are opaque bytes: encode with protobuf or JSON. Returned slices are
// the caller's to keep but may be shared with other callers of the same load:
// do not modify them.
package cache

import (
	"context"
	"errors"
	"time"
)

// Cache is a TTL'd byte cache. A miss is (nil, false, nil); err is non-nil
// only when the cache could not answer (for example Redis is unreachable).
type Cache interface {
	Get(ctx context.Context, key string) ([]byte, bool, error)
	// Set stores val under key for ttl (which must be positive),
	// unconditionally, replacing any value or tombstone.
	Set(ctx context.Context, key string, val []byte, ttl time.Duration) error
	// Delete invalidates keys (see the invalidation contract above): later
	// Gets miss and fills by loads that began before the Delete are refused.
	Delete(ctx context.Context, keys ...string) error
}

// ErrInvalidTTL is returned by Set for a non-positive TTL: an entry without
// expiry would outlive a lost invalidation forever.
var ErrInvalidTTL = errors.New("cache: ttl must be positive")

// TombstoneTTL is how long a Delete's tombstone lives in Redis; a load that
// takes longer than this (between its miss and its fill) is no longer
// protected against re-filling a stale value.
const TombstoneTTL = time.Minute

// filler is implemented by this package's engines (and forwarded by
// Instrument): a Get that also returns the token a guarded fill must match,
// and the compare-and-set fill itself.
type filler interface {
	// getForFill returns a hit like Get, or on a miss the token describing
	// what the key holds now (absent, or which tombstone).
	getForFill(ctx context.Context, key string) (val []byte, ok bool, token string, err error)
	// fill stores val for ttl only if key still holds token; stored reports
	// whether it did.
	fill(ctx context.Context, key, token string, val []byte, ttl time.Duration) (stored bool, err error)
}
