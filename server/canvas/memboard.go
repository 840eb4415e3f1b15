package canvas

import (
	"context"
	"sync"
	"time"
)

// memoryBoard is the in-process Board of a single server (the embedded
// default, or a database without Redis). It starts from the history the
// store keeps, so it is as durable as that history: every acknowledged
// placement is in it. Cooldowns live in memory only: a restart forgets
// them.
type memoryBoard struct {
	n   int // pixels
	now func() time.Time

	mu        sync.Mutex
	pixels    []byte
	seq       int64
	epoch     string
	cooldowns map[string]time.Time
	sweeps    int

	// log holds the newest deltas, logFirst being the sequence number of
	// the first; it is compacted to logCap deltas when twice that long.
	log      []byte
	logFirst int64
	logCap   int
	wake     chan struct{} // closed when deltas are appended
}

// NewMemoryBoard returns a board of w×h pixels holding pixels at seq (as
// Rebuild returned them) and keeping at least logCap recent deltas.
func NewMemoryBoard(w, h int, seq int64, pixels []byte, logCap int) Board {
	b := &memoryBoard{
		n: w * h, now: time.Now,
		pixels: make([]byte, boardBytes(w, h)), seq: seq, epoch: newEpoch(),
		cooldowns: map[string]time.Time{}, logFirst: seq + 1, logCap: max(logCap, MaxRun), wake: make(chan struct{}),
	}
	copy(b.pixels, pixels)
	return b
}

func (b *memoryBoard) Place(ctx context.Context, op PlaceOp) (Placed, error) {
	if err := ctx.Err(); err != nil {
		return Placed{}, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	if op.Cooldown > 0 {
		if until, ok := b.cooldowns[op.UserID]; ok && now.Before(until) {
			return Placed{}, &CooldownError{RetryAfter: until.Sub(now)}
		}
		b.cooldowns[op.UserID] = now.Add(op.Cooldown)
		b.sweep(now)
	}
	n := len(op.Deltas) / DeltaSize
	first := b.seq + 1
	b.seq += int64(n)
	ApplyDeltas(b.pixels, b.n, op.Deltas)
	if len(b.log) >= 2*b.logCap*DeltaSize {
		keep := b.log[len(b.log)-b.logCap*DeltaSize:]
		b.logFirst += int64((len(b.log) - len(keep)) / DeltaSize)
		b.log = append(make([]byte, 0, 2*b.logCap*DeltaSize), keep...)
	}
	b.log = append(b.log, op.Deltas[:n*DeltaSize]...)
	close(b.wake)
	b.wake = make(chan struct{})
	return Placed{First: first, Last: b.seq}, nil
}

// sweep forgets expired cooldowns now and then, so the map holds only
// users who placed within one cooldown.
func (b *memoryBoard) sweep(now time.Time) {
	if b.sweeps++; b.sweeps < 1024 || b.sweeps < len(b.cooldowns)/2 {
		return
	}
	b.sweeps = 0
	for u, until := range b.cooldowns {
		if !now.Before(until) {
			delete(b.cooldowns, u)
		}
	}
}

func (b *memoryBoard) Snapshot(ctx context.Context) (Snapshot, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return Snapshot{Epoch: b.epoch, Seq: b.seq, Pixels: append([]byte(nil), b.pixels...)}, nil
}

func (b *memoryBoard) Head(ctx context.Context) (int64, string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.seq, b.epoch, nil
}

func (b *memoryBoard) Tail(ctx context.Context, after int64, maxDeltas int, wait time.Duration) ([]Run, error) {
	var timer <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		timer = t.C
	}
	for {
		b.mu.Lock()
		if b.seq > after && len(b.log) > 0 {
			start := max(after+1, b.logFirst)
			n := min(b.seq-start+1, int64(max(maxDeltas, 1)))
			off := (start - b.logFirst) * DeltaSize
			run := Run{Epoch: b.epoch, First: start, Deltas: append([]byte(nil), b.log[off:off+n*DeltaSize]...)}
			b.mu.Unlock()
			return []Run{run}, nil
		}
		wake := b.wake
		b.mu.Unlock()
		if timer == nil {
			return nil, nil
		}
		select {
		case <-wake:
		case <-timer:
			return nil, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}
