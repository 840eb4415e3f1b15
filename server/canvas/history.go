package canvas

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/apiplatform/platform/server/platform/storeerr"
)

// historyWriter group-commits placements: concurrent placements wait on a
// shared write of all of them, so history costs one database round trip per
// batch, not per pixel, and a placement is answered only once it is stored.
type historyWriter struct {
	store    Store
	reqs     chan *historyReq
	maxBatch int
	timeout  time.Duration
	wg       sync.WaitGroup
}

type historyReq struct {
	rows []Placement
	done chan error
}

func newHistoryWriter(store Store, workers, maxBatch int, timeout time.Duration) *historyWriter {
	w := &historyWriter{store: store, reqs: make(chan *historyReq, 4*maxBatch), maxBatch: maxBatch, timeout: timeout}
	for range workers {
		w.wg.Add(1)
		go w.work()
	}
	return w
}

// write returns once rows are stored (or the write failed, or ctx ended:
// then they may still be stored).
func (w *historyWriter) write(ctx context.Context, rows []Placement) error {
	req := &historyReq{rows: rows, done: make(chan error, 1)}
	select {
	case w.reqs <- req:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// close lets queued writes finish; no write may start after.
func (w *historyWriter) close() {
	close(w.reqs)
	w.wg.Wait()
}

func (w *historyWriter) work() {
	defer w.wg.Done()
	var group []*historyReq
	var rows []Placement
	for first := range w.reqs {
		group, rows = append(group[:0], first), append(rows[:0], first.rows...)
	fill: // whatever else is already waiting joins this write
		for len(rows) < w.maxBatch {
			select {
			case r, ok := <-w.reqs:
				if !ok {
					break fill
				}
				group, rows = append(group, r), append(rows, r.rows...)
			default:
				break fill
			}
		}
		err := w.append(rows)
		for _, r := range group {
			r.done <- err
		}
		clear(group)
	}
}

// append stores rows, retrying a database that is briefly unreachable:
// rows are keyed by seq, so a repeated write is harmless.
func (w *historyWriter) append(rows []Placement) error {
	var err error
	for attempt := range 3 {
		if attempt > 0 {
			time.Sleep(time.Duration(attempt) * 100 * time.Millisecond)
		}
		ctx, cancel := context.WithTimeout(context.Background(), w.timeout)
		err = w.store.AppendPlacements(ctx, rows)
		cancel()
		if err == nil || !errors.Is(err, storeerr.ErrUnavailable) {
			return err
		}
	}
	return err
}
