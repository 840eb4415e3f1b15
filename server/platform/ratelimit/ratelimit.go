// Package ratelimit admits or refuses events per caller-chosen key (for
// example "share:user:<id>" or "vote:ip:<addr>") against a Limit.
//
// Two engines implement the one Limiter interface:
//
//   - NewMemory: golang.org/x/time/rate token buckets, one per key, held in a
//     bounded LRU. Used by the embedded one-process default. Limits are per
//     process.
//   - NewRedis: GCRA in a Redis Lua script (github.com/go-redis/redis_rate),
//     so every server replica shares the same budget per key. Works with a
//     single node, Sentinel or Cluster (one Redis key per limiter key).
//
// Both admit exactly Burst events from a full bucket, however many goroutines
// or replicas ask at once, then one event every Period/Rate.
//
// Production wraps the Redis limiter in FailOpen: when Redis is unreachable a
// rate limit is not worth an outage, so requests are admitted, the failure is
// logged (at most once per interval) and counted in
// ratelimit_fail_open_total.
package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Limit admits Rate events per Period with bursts up to Burst. A full bucket
// admits Burst events at once; after that one event every Period/Rate.
// Rate, Period and Burst must all be positive.
type Limit struct {
	Rate   int
	Period time.Duration
	Burst  int
}

// Result is the outcome of one Allow.
type Result struct {
	// Allowed reports whether the event was admitted (and counted).
	Allowed bool
	// RetryAfter is how long to wait before the next event can be admitted;
	// 0 when Allowed, and in (0, Period/Rate] when refused.
	RetryAfter time.Duration
	// Remaining is how many more events would be admitted right now; -1 when
	// unknown (FailOpen admitted the event without asking the limiter).
	Remaining int
}

// Limiter decides whether one more event for key fits in l. Refusal is not an
// error: err is non-nil only when the limiter could not decide (for example
// Redis is unreachable) or l is invalid.
type Limiter interface {
	Allow(ctx context.Context, key string, l Limit) (Result, error)
}

// ErrInvalidLimit is returned (wrapped) for a Limit with a non-positive field.
var ErrInvalidLimit = errors.New("ratelimit: invalid limit")

func (l Limit) validate() error {
	if l.Rate <= 0 || l.Period <= 0 || l.Burst <= 0 {
		return fmt.Errorf("%w: rate=%d period=%s burst=%d (all must be positive)", ErrInvalidLimit, l.Rate, l.Period, l.Burst)
	}
	return nil
}
