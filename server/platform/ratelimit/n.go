package ratelimit

import (
	"context"
	"fmt"
)

// NLimiter admits several events at once (all or none): a batch of n
// items costs n tokens. Every engine here implements it.
type NLimiter interface {
	AllowN(ctx context.Context, key string, l Limit, n int) (Result, error)
}

// AllowN admits n events for key at once, or none. n above l.Burst is
// never admitted: callers bound their batches by the burst first.
func AllowN(ctx context.Context, lim Limiter, key string, l Limit, n int) (Result, error) {
	if n == 1 {
		return lim.Allow(ctx, key, l)
	}
	if nl, ok := lim.(NLimiter); ok {
		return nl.AllowN(ctx, key, l, n)
	}
	return Result{}, fmt.Errorf("ratelimit: %T cannot admit %d events at once", lim, n)
}
