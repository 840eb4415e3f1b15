package identity

import (
	"context"
	"sync"
	"time"
)

// coalescedEpochs shares epoch reads between concurrent calls, so that the
// steady-state cost of verifying a session under load is a fraction of a
// Redis round trip per call. A call never takes a value read before it
// arrived (that could predate a revocation it must see): it joins the next
// read, which is issued only once the one in flight has answered.
type coalescedEpochs struct {
	epochs
	mu       sync.Mutex
	waiting  *epochRead // the read that callers arriving now will get
	inflight bool
}

type epochRead struct {
	done chan struct{}
	v    uint64
	err  error
}

func (c *coalescedEpochs) current(ctx context.Context) (uint64, error) {
	c.mu.Lock()
	if c.waiting == nil {
		c.waiting = &epochRead{done: make(chan struct{})}
	}
	rd := c.waiting
	if !c.inflight {
		c.inflight, c.waiting = true, nil
		go c.issue(rd)
	}
	c.mu.Unlock()
	select {
	case <-rd.done:
		return rd.v, rd.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// issue performs rd, then the read callers joined meanwhile, if any.
func (c *coalescedEpochs) issue(rd *epochRead) {
	for rd != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		rd.v, rd.err = c.epochs.current(ctx)
		cancel()
		close(rd.done)
		c.mu.Lock()
		rd, c.waiting = c.waiting, nil
		if rd == nil {
			c.inflight = false
		}
		c.mu.Unlock()
	}
}
