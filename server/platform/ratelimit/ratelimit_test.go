package ratelimit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"
)

func TestMemory(t *testing.T) {
	runSuite(t, func(t *testing.T) Limiter { return NewMemory(1000) })
}

func TestRedis(t *testing.T) {
	c := testRedis(t)
	runSuite(t, func(t *testing.T) Limiter { return NewRedis(c) })
}

// Two limiters on one Redis are two replicas: they share one budget.
func TestRedisSharedAcrossReplicas(t *testing.T) {
	a, b := NewRedis(testRedis(t)), NewRedis(testRedis(t))
	key := uniqueKey(t)
	l := Limit{Rate: 1, Period: time.Hour, Burst: 2}
	mustAllow(t, a, key, l, true)
	mustAllow(t, b, key, l, true)
	mustAllow(t, a, key, l, false)
	mustAllow(t, b, key, l, false)
}

func TestMemoryBoundedKeys(t *testing.T) {
	m := NewMemory(10).(*memory)
	l := Limit{Rate: 1, Period: time.Hour, Burst: 1}
	for i := range 1000 {
		mustAllow(t, m, fmt.Sprintf("k%d", i), l, true)
	}
	if n := m.keys.Len(); n > 10 {
		t.Fatalf("%d buckets kept, want <= 10", n)
	}
}

func TestMemoryLimitChange(t *testing.T) {
	lim := NewMemory(10)
	key := uniqueKey(t)
	mustAllow(t, lim, key, Limit{Rate: 1, Period: time.Hour, Burst: 1}, true)
	mustAllow(t, lim, key, Limit{Rate: 1, Period: time.Hour, Burst: 1}, false)
	// Raising the burst lets the bucket grow from its current (empty) level,
	// it does not reset it to full.
	res := mustAllow(t, lim, key, Limit{Rate: 1, Period: time.Hour, Burst: 5}, false)
	if res.RetryAfter <= 0 || res.RetryAfter > time.Hour {
		t.Fatalf("RetryAfter = %s", res.RetryAfter)
	}
}

type failing struct{ err error }

func (f failing) Allow(context.Context, string, Limit) (Result, error) { return Result{}, f.err }

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func TestFailOpenOnRedisDown(t *testing.T) {
	// Nothing listens on port 1: every call fails fast.
	c := redis.NewClient(&redis.Options{
		Addr:         "127.0.0.1:1",
		DialTimeout:  200 * time.Millisecond,
		ReadTimeout:  200 * time.Millisecond,
		WriteTimeout: 200 * time.Millisecond,
		MaxRetries:   -1,
		// go-redis retries a failed dial 5 times, 100ms apart, by default.
		DialerRetries:      1,
		DialerRetryTimeout: time.Millisecond,
	})
	t.Cleanup(func() { _ = c.Close() })

	if _, err := NewRedis(c).Allow(context.Background(), "k", Limit{Rate: 1, Period: time.Second, Burst: 1}); err == nil {
		t.Fatal("Redis limiter on a closed port: no error")
	}

	var logs bytes.Buffer
	lim := FailOpen(NewRedis(c), slog.New(slog.NewTextHandler(&logs, nil)))
	before := counterValue(t, failOpenTotal)
	l := Limit{Rate: 1, Period: time.Hour, Burst: 1}
	for i := range 5 {
		res, err := lim.Allow(context.Background(), "k", l)
		if err != nil {
			t.Fatalf("FailOpen returned an error: %v", err)
		}
		if !res.Allowed || res.Remaining != -1 {
			t.Fatalf("call %d: %+v, want Allowed with Remaining -1", i, res)
		}
	}
	if got := counterValue(t, failOpenTotal) - before; got != 5 {
		t.Errorf("ratelimit_fail_open_total grew by %v, want 5", got)
	}
	if n := strings.Count(logs.String(), "fail open"); n != 1 {
		t.Errorf("%d log lines for 5 failures, want 1 (rate-limited):\n%s", n, logs.String())
	}
}

func TestFailOpenPassesThrough(t *testing.T) {
	lim := FailOpen(NewMemory(10), slog.New(slog.DiscardHandler))
	key := uniqueKey(t)
	l := Limit{Rate: 1, Period: time.Hour, Burst: 1}
	mustAllow(t, lim, key, l, true)
	mustAllow(t, lim, key, l, false)
}

func TestFailOpenCanceledContextNotCounted(t *testing.T) {
	lim := FailOpen(failing{errors.New("boom")}, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	before := counterValue(t, failOpenTotal)
	res, err := lim.Allow(ctx, "k", Limit{Rate: 1, Period: time.Second, Burst: 1})
	if err != nil || !res.Allowed {
		t.Fatalf("got %+v, %v", res, err)
	}
	if counterValue(t, failOpenTotal) != before {
		t.Error("failure on a canceled context was counted")
	}
}

func TestReasonDropsTheSubject(t *testing.T) {
	for key, want := range map[string]string{
		"share:user:0b7c6c4e-9e51-4c0e-a4a5-1b1f7d7f2a10": "share:user",
		"guest:addr:2001:db8::1":                          "guest:addr",
		"vote:addr:":                                      "vote:addr",
		"nocolon":                                         "other",
		"only:one":                                        "other",
	} {
		if got := Reason(key); got != want {
			t.Errorf("Reason(%q) = %q, want %q", key, got, want)
		}
	}
}
