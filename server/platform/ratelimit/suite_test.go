package ratelimit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/apiplatform/platform/server/platform/redistest"
)

// runSuite is the conformance suite every Limiter engine must pass.
func runSuite(t *testing.T, newLimiter func(t *testing.T) Limiter) {
	ctx := context.Background()

	// A batch costs one token per item, all or none.
	t.Run("AllowN", func(t *testing.T) {
		lim := newLimiter(t)
		key := uniqueKey(t)
		l := Limit{Rate: 1, Period: time.Hour, Burst: 10}
		if res, err := AllowN(ctx, lim, key, l, 7); err != nil || !res.Allowed {
			t.Fatalf("7 of 10: %+v, %v", res, err)
		}
		if res, err := AllowN(ctx, lim, key, l, 4); err != nil || res.Allowed || res.RetryAfter <= 0 {
			t.Fatalf("4 more of the 3 left: %+v, %v; want refused with a RetryAfter", res, err)
		}
		if res, err := AllowN(ctx, lim, key, l, 3); err != nil || !res.Allowed {
			t.Fatalf("the 3 left: %+v, %v (a refused batch must not spend tokens)", res, err)
		}
		if res, err := lim.Allow(ctx, key, l); err != nil || res.Allowed {
			t.Fatalf("one past the burst: %+v, %v", res, err)
		}
	})

	t.Run("BurstThenRefuse", func(t *testing.T) {
		lim := newLimiter(t)
		key := uniqueKey(t)
		l := Limit{Rate: 2, Period: time.Minute, Burst: 5}
		for i := range l.Burst {
			res, err := lim.Allow(ctx, key, l)
			if err != nil {
				t.Fatal(err)
			}
			if !res.Allowed {
				t.Fatalf("event %d refused, want allowed within burst", i+1)
			}
			if want := l.Burst - 1 - i; res.Remaining != want {
				t.Errorf("event %d: Remaining = %d, want %d", i+1, res.Remaining, want)
			}
			if res.RetryAfter != 0 {
				t.Errorf("event %d: RetryAfter = %s on an admitted event, want 0", i+1, res.RetryAfter)
			}
		}
		res, err := lim.Allow(ctx, key, l)
		if err != nil {
			t.Fatal(err)
		}
		if res.Allowed {
			t.Fatal("event beyond burst admitted")
		}
		if res.RetryAfter <= 0 || res.RetryAfter > l.Period {
			t.Fatalf("RetryAfter = %s, want in (0, %s]", res.RetryAfter, l.Period)
		}
		if emission := l.Period / time.Duration(l.Rate); res.RetryAfter > emission {
			t.Errorf("RetryAfter = %s, want <= Period/Rate = %s", res.RetryAfter, emission)
		}
		if res.Remaining != 0 {
			t.Errorf("Remaining = %d on refusal, want 0", res.Remaining)
		}
	})

	t.Run("RecoversAfterRetryAfter", func(t *testing.T) {
		lim := newLimiter(t)
		key := uniqueKey(t)
		l := Limit{Rate: 10, Period: time.Second, Burst: 2}
		for range l.Burst {
			mustAllow(t, lim, key, l, true)
		}
		res := mustAllow(t, lim, key, l, false)
		time.Sleep(res.RetryAfter + 20*time.Millisecond)
		mustAllow(t, lim, key, l, true)
		mustAllow(t, lim, key, l, false) // only one token came back
	})

	t.Run("KeysIndependent", func(t *testing.T) {
		lim := newLimiter(t)
		a, b := uniqueKey(t), uniqueKey(t)
		l := Limit{Rate: 1, Period: time.Hour, Burst: 1}
		mustAllow(t, lim, a, l, true)
		mustAllow(t, lim, a, l, false)
		mustAllow(t, lim, b, l, true)
		mustAllow(t, lim, b, l, false)
	})

	t.Run("ConcurrentAdmitsExactlyBurst", func(t *testing.T) {
		lim := newLimiter(t)
		key := uniqueKey(t)
		l := Limit{Rate: 1, Period: time.Hour, Burst: 10}
		var allowed, refused atomic.Int64
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range 50 {
			wg.Go(func() {
				<-start
				res, err := lim.Allow(ctx, key, l)
				if err != nil {
					t.Error(err)
					return
				}
				if res.Allowed {
					allowed.Add(1)
				} else {
					refused.Add(1)
				}
			})
		}
		close(start)
		wg.Wait()
		if allowed.Load() != int64(l.Burst) || refused.Load() != 50-int64(l.Burst) {
			t.Fatalf("50 concurrent Allow: %d admitted, %d refused; want exactly %d admitted", allowed.Load(), refused.Load(), l.Burst)
		}
	})

	t.Run("InvalidLimit", func(t *testing.T) {
		lim := newLimiter(t)
		for _, l := range []Limit{{}, {Rate: 1, Period: time.Second}, {Rate: 0, Period: time.Second, Burst: 1}, {Rate: 1, Period: -1, Burst: 1}} {
			if _, err := lim.Allow(ctx, uniqueKey(t), l); err == nil {
				t.Errorf("Allow with %+v: no error", l)
			}
		}
	})
}

func mustAllow(t *testing.T, lim Limiter, key string, l Limit, want bool) Result {
	t.Helper()
	res, err := lim.Allow(context.Background(), key, l)
	if err != nil {
		t.Fatal(err)
	}
	if res.Allowed != want {
		t.Fatalf("Allow(%q) = %+v, want Allowed=%v", key, res, want)
	}
	return res
}

// uniqueKey returns a key no other test (or earlier run on the same Redis)
// uses.
func uniqueKey(t *testing.T) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "test:" + t.Name() + ":" + hex.EncodeToString(b[:])
}

// testRedis connects to TEST_REDIS_URL or skips the test.
func testRedis(t *testing.T) redis.UniversalClient { return redistest.Client(t) }
