package ratelimit

import (
	"context"

	"github.com/apiplatform/platform/server/platform/apierr"
)

// Check admits one event for key under l, or refuses it with
// RESOURCE_EXHAUSTED (HTTP 429 with Retry-After) carrying msg and reason.
// A limiter that cannot decide admits: limits fail open (see FailOpen).
func Check(ctx context.Context, lim Limiter, key string, l Limit, msg, reason string) error {
	res, err := lim.Allow(ctx, key, l)
	if err != nil || res.Allowed {
		return nil
	}
	return apierr.ResourceExhausted(msg, reason, res.RetryAfter)
}
