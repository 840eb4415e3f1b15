package ratelimit

import (
	"context"
	"math"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/time/rate"
)

// NewMemory returns an in-process Limiter: one token bucket per key, at most
// maxKeys buckets (least recently used evicted first, so a client cycling
// through fresh keys cannot exhaust memory; an evicted key starts again with
// a full bucket, so size maxKeys well above the number of keys active within
// one Period — a bucket costs a few hundred bytes). maxKeys < 1 means 10000.
func NewMemory(maxKeys int) Limiter {
	if maxKeys < 1 {
		maxKeys = 10000
	}
	c, err := lru.New[string, *bucket](maxKeys)
	if err != nil { // only for size <= 0, excluded above
		panic(err)
	}
	return &memory{keys: c}
}

type memory struct {
	keys *lru.Cache[string, *bucket]
}

// bucket serialises its check-then-take so that concurrent callers on one key
// admit exactly Burst events (rate.Limiter is safe for concurrent use, but
// the Reserve+Cancel dance can over-restore tokens under contention).
type bucket struct {
	mu    sync.Mutex
	lim   *rate.Limiter
	limit Limit
}

func ratePerSecond(l Limit) rate.Limit {
	return rate.Limit(float64(l.Rate) / l.Period.Seconds())
}

func (m *memory) Allow(ctx context.Context, key string, l Limit) (Result, error) {
	return m.AllowN(ctx, key, l, 1)
}

// AllowN admits n events at once, or none.
func (m *memory) AllowN(ctx context.Context, key string, l Limit, n int) (Result, error) {
	if err := l.validate(); err != nil {
		return Result{}, err
	}
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	b, ok := m.keys.Get(key)
	if !ok {
		nb := &bucket{lim: rate.NewLimiter(ratePerSecond(l), l.Burst), limit: l}
		if prev, found, _ := m.keys.PeekOrAdd(key, nb); found {
			b = prev
		} else {
			b = nb
		}
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	if b.limit != l { // same key used with a new limit: keep its tokens
		b.lim.SetLimitAt(now, ratePerSecond(l))
		b.lim.SetBurstAt(now, l.Burst)
		b.limit = l
	}
	tokens := b.lim.TokensAt(now)
	if tokens >= float64(n) && b.lim.AllowN(now, n) {
		return Result{Allowed: true, Remaining: int(tokens - float64(n))}, nil
	}
	// Time until n whole tokens have accrued.
	need := float64(n) - tokens
	wait := time.Duration(math.Ceil(need / float64(b.lim.Limit()) * float64(time.Second)))
	if wait <= 0 {
		wait = time.Nanosecond
	}
	return Result{RetryAfter: wait}, nil
}
