package cache

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/apiplatform/platform/server/platform/logthrottle"
)

// Package-level collectors, registered once at init; instances differ by the
// "cache" label (the name given to Instrument).
var (
	requestsTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "cache_requests_total",
		Help: "Cache lookups by cache name and result (hit or miss; a failed lookup counts as a miss).",
	}, []string{"cache", "result"})
	errorsTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "cache_errors_total",
		Help: "Cache operations that failed and were bypassed (get: served as a miss; set, fill, delete: skipped).",
	}, []string{"cache", "op"})
)

// errorLogEvery bounds error logging to one line per interval per cache.
const errorLogEvery = 10 * time.Second

// Instrument wraps inner so that its errors never reach callers: a failed Get
// is a miss, a failed Set or Delete is a no-op (a failed Delete leaves the old
// value until its TTL). Errors are counted in cache_errors_total{cache,op}
// and logged at most once per 10s; lookups are counted in
// cache_requests_total{cache,result="hit"|"miss"}, so the hit ratio can be
// graphed per cache. Errors caused by the caller's own context ending are
// bypassed but neither counted nor logged. log nil means slog.Default().
// Instrument keeps GetOrLoad's fill guard working.
func Instrument(name string, inner Cache, log *slog.Logger) Cache {
	if log == nil {
		log = slog.Default()
	}
	return &instrumented{
		name:  name,
		inner: inner,
		log:   log,
		hits:  requestsTotal.WithLabelValues(name, "hit"),
		miss:  requestsTotal.WithLabelValues(name, "miss"),
		logs:  logthrottle.Throttle{Every: errorLogEvery},
	}
}

type instrumented struct {
	name       string
	inner      Cache
	log        *slog.Logger
	hits, miss prometheus.Counter

	logs logthrottle.Throttle
}

func (c *instrumented) count(hit bool) {
	if hit {
		c.hits.Inc()
	} else {
		c.miss.Inc()
	}
}

func (c *instrumented) failed(ctx context.Context, op, key string, err error) {
	if ctx.Err() != nil {
		return
	}
	errorsTotal.WithLabelValues(c.name, op).Inc()
	n, ok := c.logs.Allow()
	if !ok {
		return
	}
	c.log.Warn("cache error; bypassing cache", "cache", c.name, "op", op, "key", key, "err", err, "suppressed_since_last_log", n)
}

func (c *instrumented) Get(ctx context.Context, key string) ([]byte, bool, error) {
	v, ok, err := c.inner.Get(ctx, key)
	if err != nil {
		c.failed(ctx, "get", key, err)
		v, ok = nil, false
	}
	c.count(ok)
	return v, ok, nil
}

func (c *instrumented) Set(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	if err := c.inner.Set(ctx, key, val, ttl); err != nil {
		c.failed(ctx, "set", key, err)
	}
	return nil
}

func (c *instrumented) Delete(ctx context.Context, keys ...string) error {
	if err := c.inner.Delete(ctx, keys...); err != nil {
		var key string
		if len(keys) > 0 {
			key = keys[0]
		}
		c.failed(ctx, "delete", key, err)
	}
	return nil
}

func (c *instrumented) getForFill(ctx context.Context, key string) ([]byte, bool, string, error) {
	f, ok := c.inner.(filler)
	if !ok {
		v, hit, _ := c.Get(ctx, key)
		return v, hit, "", nil
	}
	v, hit, token, err := f.getForFill(ctx, key)
	if err != nil {
		c.failed(ctx, "get", key, err)
		c.count(false)
		return nil, false, tokenCacheError, nil
	}
	c.count(hit)
	return v, hit, token, nil
}

func (c *instrumented) fill(ctx context.Context, key, token string, val []byte, ttl time.Duration) (bool, error) {
	f, ok := c.inner.(filler)
	if !ok {
		return true, c.Set(ctx, key, val, ttl)
	}
	stored, err := f.fill(ctx, key, token, val, ttl)
	if err != nil {
		c.failed(ctx, "set", key, err)
		return false, nil
	}
	return stored, nil
}

// HitCounter counts the hits of a cache that sits in front of the
// instrumented one named name (a per-process hot copy), so that use's hit
// ratio still counts every request the database did not answer.
func HitCounter(name string) prometheus.Counter {
	return requestsTotal.WithLabelValues(name, "hit")
}
