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
	store    Store
	log      *slog.Logger
	mu       sync.Mutex
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

// unflushed is what this process counted for slug and not yet stored.
func (h *hitCounter) unflushed(slug string) int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.pending[slug]
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
