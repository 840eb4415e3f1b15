package cache

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"golang.org/x/sync/singleflight"

	"github.com/apiplatform/platform/server/platform/redistest"
)

// runSuite is the conformance suite every Cache engine (and Instrument around
// one) must pass. strict is false for wrappers that swallow errors.
func runSuite(t *testing.T, newCache func(t *testing.T) Cache, strict bool) {
	ctx := context.Background()

	t.Run("GetSetDelete", func(t *testing.T) {
		c := newCache(t)
		if _, ok, err := c.Get(ctx, "missing"); ok || err != nil {
			t.Fatalf("Get(missing) = ok %v, err %v; want a clean miss", ok, err)
		}
		mustSet(t, c, "a", "1", time.Minute)
		mustSet(t, c, "b", "2", time.Minute)
		mustSet(t, c, "c", "", time.Minute)
		wantHit(t, c, "a", "1")
		wantHit(t, c, "b", "2")
		wantHit(t, c, "c", "")
		mustSet(t, c, "a", "1bis", time.Minute)
		wantHit(t, c, "a", "1bis")
		if err := c.Delete(ctx, "a", "b", "never-set"); err != nil {
			t.Fatal(err)
		}
		wantMiss(t, c, "a")
		wantMiss(t, c, "b")
		wantMiss(t, c, "never-set")
		wantHit(t, c, "c", "")
		if err := c.Delete(ctx); err != nil {
			t.Fatalf("Delete(): %v", err)
		}
		// A writer may Set after Delete: it replaces the tombstone.
		mustSet(t, c, "a", "2", time.Minute)
		wantHit(t, c, "a", "2")
	})

	t.Run("ReturnedBytesAreCopies", func(t *testing.T) {
		c := newCache(t)
		buf := []byte("abc")
		if err := c.Set(ctx, "k", buf, time.Minute); err != nil {
			t.Fatal(err)
		}
		buf[0] = 'X'
		v, _, _ := c.Get(ctx, "k")
		v[1] = 'Y'
		wantHit(t, c, "k", "abc")
	})

	t.Run("TTLExpiry", func(t *testing.T) {
		c := newCache(t)
		mustSet(t, c, "short", "x", 50*time.Millisecond)
		mustSet(t, c, "long", "y", time.Minute)
		wantHit(t, c, "short", "x")
		time.Sleep(120 * time.Millisecond)
		wantMiss(t, c, "short")
		wantHit(t, c, "long", "y")
	})

	if strict {
		t.Run("InvalidTTL", func(t *testing.T) {
			c := newCache(t)
			for _, ttl := range []time.Duration{0, -time.Second} {
				if err := c.Set(ctx, "k", []byte("v"), ttl); !errors.Is(err, ErrInvalidTTL) {
					t.Errorf("Set with ttl %s: %v, want ErrInvalidTTL", ttl, err)
				}
			}
		})
	}

	t.Run("GetOrLoadCollapsesConcurrentMisses", func(t *testing.T) {
		c := newCache(t)
		var g singleflight.Group
		var loads atomic.Int64
		load := func(context.Context) ([]byte, error) {
			// However the 50 interleave (all on one flight, or some
			// arriving after it ended), the row is loaded once.
			loads.Add(1)
			return []byte("loaded"), nil
		}
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range 50 {
			wg.Go(func() {
				<-start
				v, err := GetOrLoad(ctx, c, &g, "hot", time.Minute, load)
				if err != nil || string(v) != "loaded" {
					t.Errorf("GetOrLoad = %q, %v", v, err)
				}
			})
		}
		close(start)
		wg.Wait()
		if n := loads.Load(); n != 1 {
			t.Fatalf("50 concurrent misses ran %d loads, want 1", n)
		}
		wantHit(t, c, "hot", "loaded")
		v, err := GetOrLoad(ctx, c, &g, "hot", time.Minute, load)
		if err != nil || string(v) != "loaded" || loads.Load() != 1 {
			t.Fatalf("GetOrLoad after fill = %q, %v, loads %d; want a hit", v, err, loads.Load())
		}
	})

	t.Run("GetOrLoadError", func(t *testing.T) {
		c := newCache(t)
		var g singleflight.Group
		boom := errors.New("boom")
		_, err := GetOrLoad(ctx, c, &g, "k", time.Minute, func(context.Context) ([]byte, error) { return nil, boom })
		if !errors.Is(err, boom) {
			t.Fatalf("err = %v, want the load's error", err)
		}
		wantMiss(t, c, "k")
	})

	t.Run("StaleFillAfterDeleteIsRefused", func(t *testing.T) {
		c := newCache(t)
		var g singleflight.Group
		db := "old"
		var dbMu sync.Mutex
		read := func() []byte { dbMu.Lock(); defer dbMu.Unlock(); return []byte(db) }

		loading, release := make(chan struct{}), make(chan struct{})
		var slowLoads atomic.Int64
		done := make(chan []byte)
		go func() {
			// Reader: misses, reads the old row, then stalls before filling.
			v, err := GetOrLoad(ctx, c, &g, "row", time.Minute, func(context.Context) ([]byte, error) {
				slowLoads.Add(1)
				v := read()
				close(loading)
				<-release
				return v, nil
			})
			if err != nil {
				t.Error(err)
			}
			done <- v
		}()
		<-loading
		// Writer: commits, then invalidates.
		dbMu.Lock()
		db = "new"
		dbMu.Unlock()
		if err := c.Delete(ctx, "row"); err != nil {
			t.Fatal(err)
		}
		// A reader starting after the Delete must not join the stale load.
		v, err := GetOrLoad(ctx, c, &g, "row", time.Minute, func(context.Context) ([]byte, error) { return read(), nil })
		if err != nil || string(v) != "new" {
			t.Fatalf("reader after Delete got %q, %v; want \"new\"", v, err)
		}
		close(release)
		if v := <-done; string(v) != "old" {
			t.Fatalf("overlapping reader got %q, want \"old\"", v)
		}
		if slowLoads.Load() != 1 {
			t.Fatalf("slow load ran %d times", slowLoads.Load())
		}
		// The stale fill lost: the cache holds the new row (filled by the
		// second reader), never the old one.
		wantHit(t, c, "row", "new")
	})

	t.Run("StaleFillAfterDeleteLeavesMiss", func(t *testing.T) {
		c := newCache(t)
		var g singleflight.Group
		loading, release := make(chan struct{}), make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, _ = GetOrLoad(ctx, c, &g, "row", time.Minute, func(context.Context) ([]byte, error) {
				close(loading)
				<-release
				return []byte("old"), nil
			})
		}()
		<-loading
		if err := c.Delete(ctx, "row"); err != nil {
			t.Fatal(err)
		}
		close(release)
		<-done
		wantMiss(t, c, "row")
	})

	t.Run("GetOrLoadCallerCancel", func(t *testing.T) {
		c := newCache(t)
		var g singleflight.Group
		cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		_, err := GetOrLoad(cctx, c, &g, "slow", time.Minute, func(lctx context.Context) ([]byte, error) {
			<-lctx.Done()
			return nil, lctx.Err()
		})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want DeadlineExceeded", err)
		}
	})
}

func mustSet(t *testing.T, c Cache, key, val string, ttl time.Duration) {
	t.Helper()
	if err := c.Set(context.Background(), key, []byte(val), ttl); err != nil {
		t.Fatalf("Set(%q): %v", key, err)
	}
}

func wantHit(t *testing.T, c Cache, key, want string) {
	t.Helper()
	v, ok, err := c.Get(context.Background(), key)
	if err != nil || !ok || !bytes.Equal(v, []byte(want)) {
		t.Fatalf("Get(%q) = %q, ok %v, err %v; want hit %q", key, v, ok, err, want)
	}
}

func wantMiss(t *testing.T, c Cache, key string) {
	t.Helper()
	v, ok, err := c.Get(context.Background(), key)
	if err != nil || ok {
		t.Fatalf("Get(%q) = %q, ok %v, err %v; want miss", key, v, ok, err)
	}
}

func uniquePrefix(t *testing.T) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "test:cache:" + hex.EncodeToString(b[:]) + ":"
}

// testRedis connects to TEST_REDIS_URL or skips the test.
func testRedis(t *testing.T) redis.UniversalClient { return redistest.Client(t) }

// deadRedis is a client for a port nothing listens on: every call fails fast.
func deadRedis(t *testing.T) redis.UniversalClient {
	c := redis.NewClient(&redis.Options{
		Addr:               "127.0.0.1:1",
		DialTimeout:        200 * time.Millisecond,
		ReadTimeout:        200 * time.Millisecond,
		WriteTimeout:       200 * time.Millisecond,
		MaxRetries:         -1,
		DialerRetries:      1,
		DialerRetryTimeout: time.Millisecond,
	})
	t.Cleanup(func() { _ = c.Close() })
	return c
}
