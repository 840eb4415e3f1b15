package share

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// hitCounter batches share hits in memory and adds them to the store once
// per interval, so a page view costs no database write (on CockroachDB
// shares is a GLOBAL table, where every write pays a cross-region commit).
// A killed process loses at most one interval of hits; Close flushes.
type hitCounter struct {
	store Store
	log   *slog.Logger
	mu    sync.Mutex
	// flushing is held by a flush while counts are on their way from
	// pending to the store, so a reader adding pending to a stored count
	// sees each hit exactly once (it waits out a flush in progress).
	flushing sync.RWMutex
	pending  map[string]int64
	stop     chan struct{}
	stopped  chan struct{}
	interval time.Duration
}

func newHitCounter(store Store, interval time.Duration, log *slog.Logger) *hitCounter {
	h := &hitCounter{store: store, log: log, pending: map[string]int64{}, stop: make(chan struct{}), stopped: make(chan struct{}), interval: interval}
	go h.loop()
	return h
}

func (h *hitCounter) add(slug string) {
	h.mu.Lock()
	h.pending[slug]++
	h.mu.Unlock()
}

// withUnflushed reads a share through read and adds what this process
// counted for it and has not stored yet.
func (h *hitCounter) withUnflushed(slug string, read func() (Share, error)) (Share, error) {
	h.flushing.RLock()
	defer h.flushing.RUnlock()
	sh, err := read()
	if err != nil {
		return Share{}, err
	}
	h.mu.Lock()
	sh.Hits += h.pending[slug]
	h.mu.Unlock()
	return sh, nil
}

func (h *hitCounter) loop() {
	defer close(h.stopped)
	t := time.NewTicker(h.interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			h.flush()
		case <-h.stop:
			h.flush()
			return
		}
	}
}

// flush stores pending counts one share at a time. A count whose write
// fails goes back to pending for the next round (a share deleted meanwhile
// drops its count).
func (h *hitCounter) flush() {
	h.flushing.Lock()
	defer h.flushing.Unlock()
	h.mu.Lock()
	batch := h.pending
	h.pending = map[string]int64{}
	h.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), h.interval+5*time.Second)
	defer cancel()
	for slug, n := range batch {
		if err := h.store.AddHits(ctx, slug, n); err != nil {
			h.log.Warn("share hits not stored yet; retrying next flush", "slug", slug, "hits", n, "err", err)
			h.mu.Lock()
			h.pending[slug] += n
			h.mu.Unlock()
		}
	}
}

func (h *hitCounter) close() {
	close(h.stop)
	<-h.stopped
}
