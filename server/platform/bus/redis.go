package bus

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"sync"

	"github.com/redis/go-redis/v9"
)

// NewRedis is a bus shared by every process on the same Redis (single node,
// Sentinel or Cluster: PUBLISH reaches subscribers on any cluster node).
//
// Local subscribers get a message straight from the publishing process, so
// they keep working while Redis is down; Redis carries it to the other
// replicas. Each message is tagged with the publishing process's id so that
// a process ignores its own messages when Redis echoes them back. One Redis
// connection per process carries every subscribed topic, whatever the number
// of local subscribers.
func NewRedis(c redis.UniversalClient, prefix string, log *slog.Logger) Bus {
	b := &redisBus{c: c, prefix: prefix, h: newHub(), log: log}
	_, _ = rand.Read(b.origin[:])
	b.ps = c.Subscribe(context.Background())
	b.h.first, b.h.last = b.sync, b.sync
	b.done = make(chan struct{})
	go b.receive()
	return b
}

type redisBus struct {
	c      redis.UniversalClient
	ps     *redis.PubSub
	prefix string
	origin [16]byte
	h      *hub
	log    *slog.Logger
	done   chan struct{}
	mu     sync.Mutex // serialises sync
}

// sync makes the Redis subscription match whether the topic has local
// subscribers now; it reads the state itself, so concurrent first/last
// notifications cannot leave it wrong whatever order they run in.
func (b *redisBus) sync(topic string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	op := b.ps.Unsubscribe
	if b.h.has(topic) {
		op = b.ps.Subscribe
	}
	// go-redis re-subscribes after reconnecting, so a failure here is only
	// logged: the subscription is restored when Redis is back.
	if err := op(context.Background(), b.prefix+topic); err != nil {
		b.log.Warn("bus: redis (un)subscribe failed; local delivery continues", "topic", topic, "err", err)
	}
}

func (b *redisBus) Publish(ctx context.Context, topic string, msg []byte) error {
	b.h.deliver(topic, msg)
	payload := make([]byte, 0, len(b.origin)+len(msg))
	payload = append(append(payload, b.origin[:]...), msg...)
	if err := b.publisher(ctx, b.prefix+topic).Publish(ctx, b.prefix+topic, payload).Err(); err != nil {
		return fmt.Errorf("bus: publish to redis: %w", err)
	}
	return nil
}

// publisher is the client a channel's messages go through. A Cluster
// client sends PUBLISH (whose channel is no key) to any node, and messages
// from different nodes reach a subscriber over different links, out of
// order; one channel's messages all go through the master of its slot.
func (b *redisBus) publisher(ctx context.Context, channel string) redis.UniversalClient {
	if cc, ok := b.c.(*redis.ClusterClient); ok {
		if n, err := cc.MasterForKey(ctx, channel); err == nil {
			return n
		}
	}
	return b.c
}

func (b *redisBus) Subscribe(ctx context.Context, topic string, buffer int) (*Subscription, error) {
	return b.h.add(topic, buffer)
}

func (b *redisBus) receive() {
	defer close(b.done)
	for m := range b.ps.Channel() {
		p := []byte(m.Payload)
		if len(p) < len(b.origin) || bytes.Equal(p[:len(b.origin)], b.origin[:]) {
			continue
		}
		topic := m.Channel[len(b.prefix):]
		b.h.deliver(topic, p[len(b.origin):])
	}
}

func (b *redisBus) Close() error {
	err := b.ps.Close()
	<-b.done
	b.h.close()
	return err
}
