// Package bus fans messages out to subscribers of a topic, within one
// process (NewMemory, for the embedded default) or across every server
// replica sharing a Redis (NewRedis). Later services publish live vote
// tallies and canvas pixel deltas on it.
//
// Delivery is at most once and best effort: a message published while Redis
// is unreachable does not reach other replicas. Consumers that cannot
// tolerate a gap carry a sequence number or version in their messages and
// resynchronise from storage when they see one (the streams built on this
// bus do).
//
// Every subscription has a bounded buffer. A subscriber that falls behind is
// dropped, never waited for: its channel is closed and Err reports
// ErrSlowSubscriber, so one slow stream cannot slow the publisher or the
// other subscribers.
package bus

import (
	"context"
	"errors"
	"sync"
)

// ErrSlowSubscriber ends a subscription whose buffer overflowed.
var ErrSlowSubscriber = errors.New("bus: subscriber too slow, dropped")

// ErrClosed ends subscriptions of a closed bus.
var ErrClosed = errors.New("bus: closed")

// Bus publishes to and subscribes to topics.
type Bus interface {
	// Publish delivers msg to the topic's current subscribers. The slice is
	// shared with them: do not modify it after.
	Publish(ctx context.Context, topic string, msg []byte) error
	// Subscribe starts a subscription holding up to buffer undelivered
	// messages (at least 1).
	Subscribe(ctx context.Context, topic string, buffer int) (*Subscription, error)
	Close() error
}

// Subscription receives a topic's messages on C until it is closed, the
// subscriber is dropped for being slow, or the bus closes.
type Subscription struct {
	C <-chan []byte

	c      chan []byte
	topic  string
	hub    *hub
	mu     sync.Mutex
	err    error
	closed bool
}

// Err tells why C was closed (nil while open, or after Close).
func (s *Subscription) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Close ends the subscription.
func (s *Subscription) Close() { s.hub.remove(s, nil) }

// hub is the in-process fan-out shared by both engines.
type hub struct {
	mu     sync.RWMutex
	topics map[string]map[*Subscription]struct{}
	closed bool
	// first and last are told when a topic gains its first or loses its
	// last local subscriber (the Redis engine (un)subscribes then).
	first, last func(topic string)
}

func newHub() *hub { return &hub{topics: map[string]map[*Subscription]struct{}{}} }

func (h *hub) add(topic string, buffer int) (*Subscription, error) {
	if buffer < 1 {
		buffer = 1
	}
	c := make(chan []byte, buffer)
	s := &Subscription{C: c, c: c, topic: topic, hub: h}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, ErrClosed
	}
	subs := h.topics[topic]
	isFirst := subs == nil
	if isFirst {
		subs = map[*Subscription]struct{}{}
		h.topics[topic] = subs
	}
	subs[s] = struct{}{}
	h.mu.Unlock()
	if isFirst && h.first != nil {
		h.first(topic)
	}
	return s, nil
}

// remove ends s with err (nil for a plain Close).
func (h *hub) remove(s *Subscription, err error) {
	h.mu.Lock()
	subs := h.topics[s.topic]
	_, present := subs[s]
	isLast := false
	if present {
		delete(subs, s)
		if len(subs) == 0 {
			delete(h.topics, s.topic)
			isLast = true
		}
	}
	h.mu.Unlock()
	s.mu.Lock()
	if !s.closed {
		s.closed, s.err = true, err
		close(s.c)
	}
	s.mu.Unlock()
	if isLast && h.last != nil {
		h.last(s.topic)
	}
}

func (h *hub) has(topic string) bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.topics[topic]) > 0
}

// deliver never blocks: a full buffer drops that subscriber.
func (h *hub) deliver(topic string, msg []byte) {
	var slow []*Subscription
	h.mu.RLock()
	for s := range h.topics[topic] {
		select {
		case s.c <- msg:
		default:
			slow = append(slow, s)
		}
	}
	h.mu.RUnlock()
	for _, s := range slow {
		h.remove(s, ErrSlowSubscriber)
	}
}

func (h *hub) close() {
	h.mu.Lock()
	h.closed = true
	var all []*Subscription
	for _, subs := range h.topics {
		for s := range subs {
			all = append(all, s)
		}
	}
	h.mu.Unlock()
	for _, s := range all {
		h.remove(s, ErrClosed)
	}
}

// NewMemory is a bus for one process.
func NewMemory() Bus { return &memory{h: newHub()} }

type memory struct{ h *hub }

func (m *memory) Publish(ctx context.Context, topic string, msg []byte) error {
	m.h.deliver(topic, msg)
	return nil
}

func (m *memory) Subscribe(ctx context.Context, topic string, buffer int) (*Subscription, error) {
	return m.h.add(topic, buffer)
}

func (m *memory) Close() error { m.h.close(); return nil }
