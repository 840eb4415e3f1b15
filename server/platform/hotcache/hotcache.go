// Package hotcache is a per-process cache of decoded values in front of the
// shared cache, for the reads a busy deployment answers most (share pages,
// redirects): a hit costs no Redis round trip and no decoding.
//
// Every replica keeps its own copy, so a write must reach them all: Drop
// removes keys here and broadcasts them on the bus, and each replica's
// listener drops them too. A fill that began before an invalidation of its
// key is discarded, so a load racing a write cannot put the old value back.
// Should broadcasts be lost (a slow subscription is cut, Redis is down), the
// whole cache is purged when the subscription is re-established, and an
// entry never lives longer than the TTL in any case.
package hotcache

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"

	"github.com/apiplatform/platform/server/platform/bus"
)

// Cache is a hot cache of V by string key.
type Cache[V any] struct {
	bus   bus.Bus
	topic string
	log   *slog.Logger
	lru   *expirable.LRU[string, V]

	// epochs count invalidations per stripe of keys; fills and
	// invalidations hold mu, hits do not.
	mu     sync.Mutex
	epochs [256]uint64

	stop    context.CancelFunc
	stopped chan struct{}
	once    sync.Once
}

// New subscribes to topic (before returning, so that no invalidation sent
// after New is missed) and keeps up to size entries for at most ttl each.
func New[V any](ctx context.Context, b bus.Bus, topic string, size int, ttl time.Duration, log *slog.Logger) (*Cache[V], error) {
	lctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	sub, err := b.Subscribe(lctx, topic, 4096)
	if err != nil {
		cancel()
		return nil, err
	}
	c := &Cache[V]{
		bus: b, topic: topic, log: log, lru: expirable.NewLRU[string, V](size, nil, ttl),
		stop: cancel, stopped: make(chan struct{}),
	}
	go c.listen(lctx, sub)
	return c, nil
}

// Close stops listening.
func (c *Cache[V]) Close() {
	c.once.Do(func() {
		c.stop()
		<-c.stopped
	})
}

// Get returns the cached value of key.
func (c *Cache[V]) Get(key string) (V, bool) { return c.lru.Get(key) }

// Epoch is taken before loading key; Fill stores the loaded value only if
// no invalidation of key happened since.
func (c *Cache[V]) Epoch(key string) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.epochs[stripeOf(key)]
}

// Fill stores v for key unless key was invalidated after epoch was taken.
func (c *Cache[V]) Fill(key string, epoch uint64, v V) {
	c.mu.Lock()
	if c.epochs[stripeOf(key)] == epoch {
		c.lru.Add(key, v)
	}
	c.mu.Unlock()
}

// Drop removes keys here and on every other replica. It runs after the
// write committed; a client that gave up must not stop the broadcast.
func (c *Cache[V]) Drop(ctx context.Context, keys ...string) {
	if len(keys) == 0 {
		return
	}
	c.dropLocal(keys...)
	if err := c.bus.Publish(context.WithoutCancel(ctx), c.topic, []byte(strings.Join(keys, "\n"))); err != nil {
		c.log.WarnContext(ctx, "hot cache: invalidation broadcast failed; other replicas catch up within the TTL", "topic", c.topic, "err", err)
	}
}

func (c *Cache[V]) dropLocal(keys ...string) {
	c.mu.Lock()
	for _, k := range keys {
		c.epochs[stripeOf(k)]++
		c.lru.Remove(k)
	}
	c.mu.Unlock()
}

func (c *Cache[V]) purge() {
	c.mu.Lock()
	for i := range c.epochs {
		c.epochs[i]++
	}
	c.lru.Purge()
	c.mu.Unlock()
}

// listen drops keys named on the bus. A subscription cut for being slow
// missed messages: the whole cache goes then, and again once resubscribed
// (for what changed meanwhile).
func (c *Cache[V]) listen(ctx context.Context, sub *bus.Subscription) {
	defer close(c.stopped)
	for {
		c.drain(ctx, sub)
		if ctx.Err() != nil || errors.Is(sub.Err(), bus.ErrClosed) {
			return
		}
		c.log.Warn("hot cache: invalidation subscription dropped; purging", "topic", c.topic, "err", sub.Err())
		c.purge()
		for {
			var err error
			if sub, err = c.bus.Subscribe(ctx, c.topic, 4096); err == nil {
				break
			}
			if errors.Is(err, bus.ErrClosed) {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
		c.purge()
	}
}

func (c *Cache[V]) drain(ctx context.Context, sub *bus.Subscription) {
	defer sub.Close()
	for {
		select {
		case <-ctx.Done():
			return
		case msg, ok := <-sub.C:
			if !ok {
				return
			}
			c.dropLocal(strings.Split(string(msg), "\n")...)
		}
	}
}

// stripeOf hashes a key (FNV-1a) to its epoch stripe.
func stripeOf(key string) uint8 {
	h := uint32(2166136261)
	for i := 0; i < len(key); i++ {
		h = (h ^ uint32(key[i])) * 16777619
	}
	return uint8(h)
}
