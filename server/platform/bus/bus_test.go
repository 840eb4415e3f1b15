package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/apiplatform/platform/server/platform/redistest"
)

var ctx = context.Background()

func TestMemory(t *testing.T) {
	runSuite(t, func(t *testing.T) (Bus, Bus) { b := NewMemory(); return b, b })
}

func TestRedis(t *testing.T) {
	rc := redisClient(t)
	runSuite(t, func(t *testing.T) (Bus, Bus) {
		prefix := uniquePrefix()
		a, b := NewRedis(rc, prefix, slog.Default()), NewRedis(rc, prefix, slog.Default())
		t.Cleanup(func() { _ = a.Close(); _ = b.Close() })
		return a, b
	})
}

// runSuite gets two handles on one bus: the same value for the memory
// engine, two "replicas" sharing a Redis for the Redis engine. Every case
// publishes on one and expects delivery on both.
func runSuite(t *testing.T, open func(t *testing.T) (Bus, Bus)) {
	t.Run("FanOut", func(t *testing.T) {
		a, b := open(t)
		s1 := subscribe(t, a, "t", 10)
		s2 := subscribe(t, b, "t", 10)
		other := subscribe(t, b, "other", 10)
		waitReady(t, a, b, "t")
		for i := range 3 {
			if err := a.Publish(ctx, "t", []byte(fmt.Sprint(i))); err != nil {
				t.Fatal(err)
			}
		}
		for _, s := range []*Subscription{s1, s2} {
			for i := range 3 {
				if got := recv(t, s); got != fmt.Sprint(i) {
					t.Fatalf("message %d = %q (order lost)", i, got)
				}
			}
		}
		select {
		case m := <-other.C:
			t.Fatalf("another topic got %q", m)
		case <-time.After(100 * time.Millisecond):
		}
	})

	t.Run("SlowSubscriberDropped", func(t *testing.T) {
		a, b := open(t)
		slow := subscribe(t, b, "t", 2)
		fast := subscribe(t, b, "t", 100)
		waitReady(t, a, b, "t")
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := range 50 {
				_ = a.Publish(ctx, "t", []byte(fmt.Sprint(i)))
			}
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("a slow subscriber blocked the publisher")
		}
		for i := range 50 {
			if got := recv(t, fast); got != fmt.Sprint(i) {
				t.Fatalf("fast subscriber got %q at %d", got, i)
			}
		}
		// The slow one kept what fit, then was closed with a reason.
		n := 0
		for range slow.C {
			n++
		}
		if n != 2 || !errors.Is(slow.Err(), ErrSlowSubscriber) {
			t.Fatalf("slow subscriber: %d messages, err %v; want 2 and ErrSlowSubscriber", n, slow.Err())
		}
	})

	t.Run("CloseStopsDelivery", func(t *testing.T) {
		a, b := open(t)
		s := subscribe(t, b, "t", 10)
		keep := subscribe(t, b, "t", 10)
		waitReady(t, a, b, "t")
		s.Close()
		s.Close() // idempotent
		if _, ok := <-s.C; ok || s.Err() != nil {
			t.Fatalf("closed subscription still open or failed: %v", s.Err())
		}
		if err := a.Publish(ctx, "t", []byte("x")); err != nil {
			t.Fatal(err)
		}
		if got := recv(t, keep); got != "x" {
			t.Fatalf("remaining subscriber got %q", got)
		}
	})
}

func subscribe(t *testing.T, b Bus, topic string, buffer int) *Subscription {
	t.Helper()
	s, err := b.Subscribe(ctx, topic, buffer)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func recv(t *testing.T, s *Subscription) string {
	t.Helper()
	select {
	case m, ok := <-s.C:
		if !ok {
			t.Fatalf("subscription closed: %v", s.Err())
		}
		return string(m)
	case <-time.After(5 * time.Second):
		t.Fatal("no message within 5s")
		return ""
	}
}

// waitReady waits until a message published on a reaches b's subscribers
// (Redis SUBSCRIBE is asynchronous), using a probe subscription.
func waitReady(t *testing.T, a, b Bus, topic string) {
	t.Helper()
	if a == b {
		return
	}
	rb := b.(*redisBus)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		n, err := redistest.NumSub(ctx, rb.c, rb.prefix+topic)
		if err == nil && n > 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("redis subscription not ready")
}

func redisClient(t *testing.T) redis.UniversalClient { return redistest.Client(t) }

func uniquePrefix() string { return redistest.Prefix("bus") }
