package cache

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"golang.org/x/sync/singleflight"
)

var discard = slog.New(slog.DiscardHandler)

func TestMemory(t *testing.T) {
	runSuite(t, func(t *testing.T) Cache { return NewMemory(1000) }, true)
}

func TestRedis(t *testing.T) {
	rc := testRedis(t)
	runSuite(t, func(t *testing.T) Cache { return NewRedis(rc, uniquePrefix(t)) }, true)
}

func TestInstrumentMemory(t *testing.T) {
	runSuite(t, func(t *testing.T) Cache { return Instrument("test_mem", NewMemory(1000), discard) }, false)
}

func TestInstrumentRedis(t *testing.T) {
	rc := testRedis(t)
	runSuite(t, func(t *testing.T) Cache { return Instrument("test_redis", NewRedis(rc, uniquePrefix(t)), discard) }, false)
}

// Two caches on one Redis are two replicas: a Delete on one invalidates both.
func TestRedisSharedAcrossReplicas(t *testing.T) {
	prefix := uniquePrefix(t)
	a, b := NewRedis(testRedis(t), prefix), NewRedis(testRedis(t), prefix)
	mustSet(t, a, "k", "v", time.Minute)
	wantHit(t, b, "k", "v")
	if err := b.Delete(context.Background(), "k"); err != nil {
		t.Fatal(err)
	}
	wantMiss(t, a, "k")
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func TestInstrumentBypassesErrors(t *testing.T) {
	ctx := context.Background()
	raw := NewRedis(deadRedis(t), "x:")
	if _, _, err := raw.Get(ctx, "k"); err == nil {
		t.Fatal("Redis cache on a closed port: no error")
	}

	var logs bytes.Buffer
	c := Instrument("test_bypass", raw, slog.New(slog.NewTextHandler(&logs, nil)))
	getErrs := errorsTotal.WithLabelValues("test_bypass", "get")
	setErrs := errorsTotal.WithLabelValues("test_bypass", "set")
	delErrs := errorsTotal.WithLabelValues("test_bypass", "delete")
	misses := requestsTotal.WithLabelValues("test_bypass", "miss")
	g0, s0, d0, m0 := counterValue(t, getErrs), counterValue(t, setErrs), counterValue(t, delErrs), counterValue(t, misses)

	if v, ok, err := c.Get(ctx, "k"); ok || err != nil || v != nil {
		t.Fatalf("Get = %q, %v, %v; want a clean miss", v, ok, err)
	}
	if err := c.Set(ctx, "k", []byte("v"), time.Minute); err != nil {
		t.Fatalf("Set: %v", err)
	}
	if err := c.Delete(ctx, "k", "l"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	var g singleflight.Group
	var loads atomic.Int64
	for range 3 {
		v, err := GetOrLoad(ctx, c, &g, "k", time.Minute, func(context.Context) ([]byte, error) {
			loads.Add(1)
			return []byte("db"), nil
		})
		if err != nil || string(v) != "db" {
			t.Fatalf("GetOrLoad with Redis down = %q, %v; want the loaded value", v, err)
		}
	}
	if loads.Load() != 3 {
		t.Errorf("loads = %d, want 3 (every read goes to the source)", loads.Load())
	}
	if d := counterValue(t, getErrs) - g0; d != 4 {
		t.Errorf("cache_errors_total{op=get} +%v, want +4", d)
	}
	if d := counterValue(t, setErrs) - s0; d != 1 {
		t.Errorf("cache_errors_total{op=set} +%v, want +1 (GetOrLoad does not fill after a failed get)", d)
	}
	if d := counterValue(t, delErrs) - d0; d != 1 {
		t.Errorf("cache_errors_total{op=delete} +%v, want +1", d)
	}
	if d := counterValue(t, misses) - m0; d != 4 {
		t.Errorf("cache_requests_total{result=miss} +%v, want +4", d)
	}
	if n := strings.Count(logs.String(), "bypassing cache"); n != 1 {
		t.Errorf("%d log lines for 6 errors, want 1 (rate-limited):\n%s", n, logs.String())
	}
}

// GetOrLoad without Instrument also serves reads from the source when the
// cache is down.
func TestGetOrLoadCacheDown(t *testing.T) {
	c := NewRedis(deadRedis(t), "x:")
	var g singleflight.Group
	v, err := GetOrLoad(context.Background(), c, &g, "k", time.Minute, func(context.Context) ([]byte, error) { return []byte("db"), nil })
	if err != nil || string(v) != "db" {
		t.Fatalf("GetOrLoad = %q, %v", v, err)
	}
}

func TestInstrumentCountsHitsAndMisses(t *testing.T) {
	ctx := context.Background()
	c := Instrument("test_ratio", NewMemory(10), discard)
	hits, misses := requestsTotal.WithLabelValues("test_ratio", "hit"), requestsTotal.WithLabelValues("test_ratio", "miss")
	h0, m0 := counterValue(t, hits), counterValue(t, misses)
	var g singleflight.Group
	load := func(context.Context) ([]byte, error) { return []byte("v"), nil }
	for range 4 {
		if _, err := GetOrLoad(ctx, c, &g, "k", time.Minute, load); err != nil {
			t.Fatal(err)
		}
	}
	_, _, _ = c.Get(ctx, "other")
	if d := counterValue(t, hits) - h0; d != 3 {
		t.Errorf("hits +%v, want +3", d)
	}
	if d := counterValue(t, misses) - m0; d != 2 {
		t.Errorf("misses +%v, want +2", d)
	}
}

func TestMemoryBounded(t *testing.T) {
	c := NewMemory(10).(*memory)
	for i := range 100 {
		mustSet(t, c, fmt.Sprintf("k%d", i), "v", time.Minute)
	}
	if n := c.lru.Len(); n != 10 {
		t.Fatalf("%d entries, want 10", n)
	}
	wantHit(t, c, "k99", "v")
	wantMiss(t, c, "k0")
}

// A tombstone pushed out of a full LRU must not let a stale fill through.
func TestMemoryEvictedTombstoneRefusesFill(t *testing.T) {
	ctx := context.Background()
	c := NewMemory(2).(*memory)
	_, ok, token, _ := c.getForFill(ctx, "row")
	if ok {
		t.Fatal("hit on empty cache")
	}
	if err := c.Delete(ctx, "row"); err != nil {
		t.Fatal(err)
	}
	mustSet(t, c, "x", "1", time.Minute)
	mustSet(t, c, "y", "1", time.Minute) // evicts the tombstone
	if _, found := c.lru.Peek("row"); found {
		t.Fatal("tombstone not evicted")
	}
	if stored, _ := c.fill(ctx, "row", token, []byte("stale"), time.Minute); stored {
		t.Fatal("fill with a token from before the Delete was stored after the tombstone's eviction")
	}
	// A reader starting now may fill.
	_, _, token, _ = c.getForFill(ctx, "row")
	if stored, _ := c.fill(ctx, "row", token, []byte("fresh"), time.Minute); !stored {
		t.Fatal("fresh fill refused")
	}
	wantHit(t, c, "row", "fresh")
}

// Same for a value written over a tombstone that then expired.
func TestMemoryExpiredOverwriteRefusesFill(t *testing.T) {
	ctx := context.Background()
	c := NewMemory(10).(*memory)
	now := time.Now()
	c.now = func() time.Time { return now }
	_, _, token, _ := c.getForFill(ctx, "row")
	_ = c.Delete(ctx, "row")
	mustSet(t, c, "row", "new", time.Second)
	now = now.Add(2 * time.Second)
	wantMiss(t, c, "row")
	if stored, _ := c.fill(ctx, "row", token, []byte("stale"), time.Minute); stored {
		t.Fatal("stale fill stored")
	}
}

// Redis loses its data (restarted empty, or a failover to a replica the
// writer's tombstone never reached) between a reader's miss and its fill,
// while the writer's Delete failed: the fill of the row loaded before the
// write must still be refused, or it would be served for a whole TTL.
func TestRedisFillRefusedAfterDataLoss(t *testing.T) {
	ctx := context.Background()
	rc := testRedis(t)
	prefix := uniquePrefix(t)
	c := NewRedis(rc, prefix).(*redisCache)
	_, ok, token, err := c.getForFill(ctx, "row")
	if err != nil || ok {
		t.Fatalf("getForFill on an absent key: hit %v, %v", ok, err)
	}
	if err := rc.Del(ctx, prefix+"row").Err(); err != nil { // the data loss
		t.Fatal(err)
	}
	if stored, err := c.fill(ctx, "row", token, []byte("stale"), time.Minute); err != nil || stored {
		t.Fatalf("fill across the data loss: stored %v, %v; want refused", stored, err)
	}
	wantMiss(t, c, "row")
	// A reader starting now may fill.
	_, _, token, _ = c.getForFill(ctx, "row")
	if stored, err := c.fill(ctx, "row", token, []byte("fresh"), time.Minute); err != nil || !stored {
		t.Fatalf("fresh fill: stored %v, %v", stored, err)
	}
	wantHit(t, c, "row", "fresh")
}
