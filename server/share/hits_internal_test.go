package share

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// slowHitStore holds a share's counter; AddHits waits for release, so a
// test can read while a flush is between pending and the store.
type slowHitStore struct {
	Store
	entered chan struct{}
	release chan struct{}
	mu      sync.Mutex
	hits    int64
}

func (s *slowHitStore) AddHits(_ context.Context, _ string, n int64) error {
	s.entered <- struct{}{}
	<-s.release
	s.mu.Lock()
	s.hits += n
	s.mu.Unlock()
	return nil
}

func (s *slowHitStore) GetShare(context.Context, string) (Share, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Share{Slug: "abc", Hits: s.hits}, nil
}

// An owner reading while a flush is storing the counts sees every hit once
// (TestFavoriteShareFlow saw 1 of 3 when its read fell inside a flush).
func TestHitsReadDuringFlush(t *testing.T) {
	st := &slowHitStore{entered: make(chan struct{}), release: make(chan struct{})}
	h := &hitCounter{store: st, log: slog.New(slog.NewTextHandler(io.Discard, nil)), pending: map[string]int64{}, interval: time.Second}
	for range 3 {
		h.add("abc")
	}
	flushed := make(chan struct{})
	go func() { h.flush(); close(flushed) }()
	<-st.entered // the batch has left pending and is not stored yet
	h.add("abc")

	read := make(chan int64)
	go func() {
		sh, err := h.withUnflushed("abc", func() (Share, error) { return st.GetShare(context.Background(), "abc") })
		if err != nil {
			t.Error(err)
		}
		read <- sh.Hits
	}()
	// Fixed code makes the read wait for the flush, so it passes however
	// the goroutines run; the pause only gives a wrong read time to show.
	select {
	case n := <-read:
		t.Fatalf("read during the flush returned %d hits before the flush stored its batch", n)
	case <-time.After(50 * time.Millisecond):
	}
	st.release <- struct{}{}
	if n := <-read; n != 4 {
		t.Fatalf("read %d hits, want 4", n)
	}
	<-flushed
}
