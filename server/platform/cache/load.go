package cache

import (
	"context"
	"errors"
	"time"

	"golang.org/x/sync/singleflight"
)

// GetOrLoad returns key's value from c, or on a miss calls load once for all
// concurrent callers in this process that missed on the same key (and saw the
// same cache state), fills c for ttl with the result and returns it.
//
// Cache errors never fail the read: a failed Get is treated as a miss and a
// failed fill is dropped (wrap c in Instrument to count and log them). Errors
// from load are returned as is, and nothing is cached. Use one
// singleflight.Group per cache (keys are not namespaced within g).
//
// With an engine from this package the fill is guarded against the stale
// re-fill race described in the package comment. A caller whose ctx ends
// returns at once with ctx.Err(); if the load it was sharing failed only
// because the leading caller's context ended, the others retry.
func GetOrLoad(ctx context.Context, c Cache, g *singleflight.Group, key string, ttl time.Duration, load func(ctx context.Context) ([]byte, error)) ([]byte, error) {
	for attempt := 0; ; attempt++ {
		v, err := getOrLoadOnce(ctx, c, g, key, ttl, load)
		if err == nil {
			return v, nil
		}
		// The shared load died with its leader's context, not ours: retry.
		if ctx.Err() == nil && attempt < 3 && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
			continue
		}
		return nil, err
	}
}

func getOrLoadOnce(ctx context.Context, c Cache, g *singleflight.Group, key string, ttl time.Duration, load func(ctx context.Context) ([]byte, error)) ([]byte, error) {
	f, guarded := c.(filler)
	var (
		val   []byte
		hit   bool
		token string
		err   error
	)
	if guarded {
		val, hit, token, err = f.getForFill(ctx, key)
	} else {
		val, hit, err = c.Get(ctx, key)
	}
	if err == nil && hit {
		return val, nil
	}
	if err != nil || token == tokenCacheError {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, ctxErr
		}
		// Without the cache there is no token to tell a load that began
		// before a write from one after it, so this read joins no other:
		// it loads, and fills nothing.
		return load(ctx)
	}

	ch := g.DoChan(key+"\x00"+token, func() (any, error) {
		// A caller that missed before another load filled the key, and
		// came here after that load's flight ended, finds the value now.
		if v, hit := peek(ctx, c, key); hit {
			return v, nil
		}
		v, err := load(ctx)
		if err != nil {
			return nil, err
		}
		if guarded {
			_, _ = f.fill(ctx, key, token, v, ttl)
		} else {
			_ = c.Set(ctx, key, v, ttl)
		}
		return v, nil
	})
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		v, _ := r.Val.([]byte)
		return v, nil
	}
}

// tokenCacheError marks a miss caused by a cache error (Instrument reports
// one so, instead of the error): load alone, fill nothing.
const tokenCacheError = "\x00error"

// peek reads key without counting it as a request of an instrumented
// cache: the caller already counted its miss.
func peek(ctx context.Context, c Cache, key string) ([]byte, bool) {
	if i, ok := c.(*instrumented); ok {
		c = i.inner
	}
	v, hit, err := c.Get(ctx, key)
	return v, err == nil && hit
}
