package cache

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// NewMemory returns an in-process Cache holding at most maxEntries entries
// (tombstones included), least recently used evicted first, each with its own
// TTL (expired entries are dropped when next touched or evicted).
// maxEntries < 1 means 10000.
//
// (golang-lru's expirable.LRU was not used: it has one TTL for the whole
// cache and a cleanup goroutine that can never be stopped.)
func NewMemory(maxEntries int) Cache {
	if maxEntries < 1 {
		maxEntries = 10000
	}
	m := &memory{}
	l, err := simplelru.NewLRU(maxEntries, m.onEvict)
	if err != nil { // only for size <= 0, excluded above
		panic(err)
	}
	m.lru = l
	return m
}

type memory struct {
	mu  sync.Mutex
	lru *simplelru.LRU[string, *memEntry]
	// delSeq numbers Deletes; each tombstone carries its own number.
	delSeq uint64
	// lostSeq is the highest Delete number whose trace left the cache (its
	// entry was evicted or expired). A fill of an absent key is allowed only
	// if nothing was lost since the reader looked, so that an evicted
	// tombstone can never let a stale fill through.
	lostSeq uint64
	now     func() time.Time // for tests
}

type memEntry struct {
	val     []byte
	expires time.Time
	tomb    bool
	// delSeq is the number of the last Delete of this key that this entry
	// remembers (a value written over a tombstone inherits it).
	delSeq uint64
}

func (m *memory) clock() time.Time {
	if m.now != nil {
		return m.now()
	}
	return time.Now()
}

// onEvict runs inside lru calls, with m.mu held.
func (m *memory) onEvict(_ string, e *memEntry) {
	m.lostSeq = max(m.lostSeq, e.delSeq)
}

// lookup returns the live value for key, or on a miss its fill token.
// Called with m.mu held.
func (m *memory) lookup(key string) (val []byte, ok bool, token string) {
	e, found := m.lru.Get(key)
	if found && !e.tomb && m.clock().Before(e.expires) {
		return e.val, true, ""
	}
	if found && e.tomb {
		return nil, false, "t" + strconv.FormatUint(e.delSeq, 10)
	}
	if found { // expired value
		m.lru.Remove(key) // onEvict records its delSeq in lostSeq
	}
	return nil, false, "a" + strconv.FormatUint(m.lostSeq, 10)
}

func (m *memory) Get(ctx context.Context, key string) ([]byte, bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	m.mu.Lock()
	v, ok, _ := m.lookup(key)
	m.mu.Unlock()
	if !ok {
		return nil, false, nil
	}
	return clone(v), true, nil
}

func (m *memory) getForFill(ctx context.Context, key string) ([]byte, bool, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, false, "", err
	}
	m.mu.Lock()
	v, ok, tok := m.lookup(key)
	m.mu.Unlock()
	if ok {
		return clone(v), true, "", nil
	}
	return nil, false, tok, nil
}

func (m *memory) Set(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	if ttl <= 0 {
		return ErrInvalidTTL
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	val = clone(val)
	m.mu.Lock()
	defer m.mu.Unlock()
	e := &memEntry{val: val, expires: m.clock().Add(ttl)}
	if old, found := m.lru.Peek(key); found {
		e.delSeq = old.delSeq
	} else {
		// Whatever Delete this key may have had is now only covered by lostSeq.
		e.delSeq = m.lostSeq
	}
	m.lru.Add(key, e)
	return nil
}

func (m *memory) fill(ctx context.Context, key, token string, val []byte, ttl time.Duration) (bool, error) {
	if ttl <= 0 {
		return false, ErrInvalidTTL
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok, cur := m.lookup(key)
	if ok || cur != token { // filled meanwhile, or deleted since the reader looked
		return false, nil
	}
	e := &memEntry{val: clone(val), expires: m.clock().Add(ttl), delSeq: m.lostSeq}
	if old, found := m.lru.Peek(key); found {
		e.delSeq = old.delSeq
	}
	m.lru.Add(key, e)
	return true, nil
}

func (m *memory) Delete(ctx context.Context, keys ...string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, k := range keys {
		m.delSeq++
		m.lru.Add(k, &memEntry{tomb: true, delSeq: m.delSeq})
	}
	return nil
}

func clone(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return append([]byte(nil), b...)
}
