package hotcache

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/apiplatform/platform/server/platform/bus"
	"github.com/apiplatform/platform/server/platform/redistest"
)

func open(t *testing.T, b bus.Bus, topic string) *Cache[string] {
	t.Helper()
	c, err := New[string](context.Background(), b, topic, 100, time.Minute, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// A fill that began before an invalidation of its key is dropped: a load
// racing a write cannot put the old value back.
func TestFillAfterDropIsDiscarded(t *testing.T) {
	b := bus.NewMemory()
	t.Cleanup(func() { _ = b.Close() })
	c := open(t, b, "t")
	epoch := c.Epoch("k")
	c.Drop(context.Background(), "k") // the write commits while the load runs
	c.Fill("k", epoch, "old")
	if v, ok := c.Get("k"); ok {
		t.Fatalf("stale fill kept: %q", v)
	}
	c.Fill("k", c.Epoch("k"), "new")
	if v, ok := c.Get("k"); !ok || v != "new" {
		t.Fatalf("Get = %q, %v; want new", v, ok)
	}
}

// A Drop on one replica reaches the other's copy, over Redis.
func TestDropReachesEveryReplica(t *testing.T) {
	rc := redistest.Client(t)
	prefix := redistest.Prefix("hotcache")
	ba, bb := bus.NewRedis(rc, prefix, slog.Default()), bus.NewRedis(rc, prefix, slog.Default())
	t.Cleanup(func() { _ = ba.Close(); _ = bb.Close() })
	a, b := open(t, ba, "t"), open(t, bb, "t")
	// Both subscriptions live in Redis before the broadcast.
	until(t, func() bool {
		n, err := redistest.NumSub(context.Background(), rc, prefix+"t")
		return err == nil && n >= 2
	})
	a.Fill("k", a.Epoch("k"), "v")
	b.Fill("k", b.Epoch("k"), "v")
	b.Fill("other", b.Epoch("other"), "w")
	a.Drop(context.Background(), "k")
	if _, ok := a.Get("k"); ok {
		t.Fatal("the dropping replica kept its copy")
	}
	until(t, func() bool { _, ok := b.Get("k"); return !ok })
	if v, ok := b.Get("other"); !ok || v != "w" {
		t.Fatalf("an unrelated key went too: %q, %v", v, ok)
	}
}

// until waits for cond, failing after five seconds.
func until(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 5 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
