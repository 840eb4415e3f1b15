package ratelimit

import (
	"context"
	"fmt"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
)

// redisKeyPrefix keeps limiter keys in their own namespace. redis_rate adds
// its own "rate:" in front, so a key "share:user:42" is stored as
// "rate:rl:share:user:42" (one key per limiter key, so Cluster is fine).
const redisKeyPrefix = "rl:"

// NewRedis returns a Limiter shared by every process using the same Redis:
// GCRA evaluated atomically in a Lua script, so N replicas admit Burst events
// in total, not N×Burst. The stored state is one number per key with a TTL
// of about the time to refill, so idle keys disappear by themselves.
func NewRedis(c redis.UniversalClient) Limiter {
	return &redisLimiter{l: redis_rate.NewLimiter(c)}
}

type redisLimiter struct {
	l *redis_rate.Limiter
}

func (r *redisLimiter) Allow(ctx context.Context, key string, l Limit) (Result, error) {
	return r.AllowN(ctx, key, l, 1)
}

// AllowN admits n events at once, or none.
func (r *redisLimiter) AllowN(ctx context.Context, key string, l Limit, n int) (Result, error) {
	if err := l.validate(); err != nil {
		return Result{}, err
	}
	res, err := r.l.AllowN(ctx, redisKeyPrefix+key, redis_rate.Limit{Rate: l.Rate, Burst: l.Burst, Period: l.Period}, n)
	if err != nil {
		return Result{}, fmt.Errorf("ratelimit: redis: %w", err)
	}
	out := Result{Allowed: res.Allowed > 0, Remaining: res.Remaining}
	if !out.Allowed {
		out.RetryAfter = res.RetryAfter
		if out.RetryAfter <= 0 { // GCRA rounding; never tell a refused caller "retry now"
			out.RetryAfter = 1
		}
		out.Remaining = 0
	}
	return out, nil
}
