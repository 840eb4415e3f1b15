package ratelimit

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/apiplatform/platform/server/platform/logthrottle"
)

// failOpenTotal counts events admitted because the limiter failed. Defined
// once per process (promauto at init), so building several limiters never
// registers twice.
var failOpenTotal = promauto.NewCounter(prometheus.CounterOpts{
	Name: "ratelimit_fail_open_total",
	Help: "Events admitted without a decision because the rate limiter failed (e.g. Redis unreachable).",
})

// rejectionsTotal counts refused events by reason (see Reason).
var rejectionsTotal = promauto.NewCounterVec(prometheus.CounterOpts{
	Name: "ratelimit_rejections_total",
	Help: "Events refused by a rate limit, by reason (the limiter key without its subject, e.g. share:user).",
}, []string{"reason"})

// Reason is a limiter key without its subject: keys are written
// "<what>:<per>:<subject>" ("share:user:<id>", "vote:addr:<ip>"), and the
// subject (an id or address, possibly holding colons itself) must not become
// a label value.
func Reason(key string) string {
	parts := strings.SplitN(key, ":", 3)
	if len(parts) < 3 {
		return "other"
	}
	return parts[0] + ":" + parts[1]
}

// failOpenLogEvery bounds failure logging to one line per interval.
const failOpenLogEvery = 10 * time.Second

// FailOpen wraps inner so that it never returns an error: when inner fails
// the event is admitted (Remaining -1), counted in ratelimit_fail_open_total
// and logged at most once per 10s (with how many failures were not logged).
// A failure caused by the caller's own context ending is admitted but neither
// counted nor logged: the request is gone anyway. log nil means slog.Default().
func FailOpen(inner Limiter, log *slog.Logger) Limiter {
	if log == nil {
		log = slog.Default()
	}
	return &failOpen{inner: inner, log: log, logs: logthrottle.Throttle{Every: failOpenLogEvery}}
}

type failOpen struct {
	inner Limiter
	log   *slog.Logger

	logs logthrottle.Throttle
}

func (f *failOpen) Allow(ctx context.Context, key string, l Limit) (Result, error) {
	return f.AllowN(ctx, key, l, 1)
}

// AllowN admits n events at once, or none (or all when the inner limiter
// cannot decide).
func (f *failOpen) AllowN(ctx context.Context, key string, l Limit, n int) (Result, error) {
	res, err := AllowN(ctx, f.inner, key, l, n)
	if err == nil {
		if !res.Allowed {
			rejectionsTotal.WithLabelValues(Reason(key)).Inc()
		}
		return res, nil
	}
	if ctx.Err() == nil {
		failOpenTotal.Inc()
		f.logFailure(key, err)
	}
	return Result{Allowed: true, Remaining: -1}, nil
}

func (f *failOpen) logFailure(key string, err error) {
	n, ok := f.logs.Allow()
	if !ok {
		return
	}
	f.log.Warn("rate limiter failed; admitting requests (fail open)",
		"err", err, "key", key, "suppressed_since_last_log", n)
}
