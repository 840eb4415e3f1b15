package epoch

import (
	"context"
	"log/slog"
	"time"

	"github.com/apiplatform/platform/server/platform/bus"
)

// Tracker is how far a replica's in-memory view has applied the messages
// that a counter numbers: the view may answer a call only while the
// counter read for that call equals Applied (every message up to it has
// been applied, none after it exists). The zero value must be Reset before
// use. Not safe for concurrent use: it lives under its cache's lock.
type Tracker struct {
	// applied is the value whose messages, and all before it, are applied;
	// pending holds later ones that arrived out of order.
	applied uint64
	pending map[uint64]bool
	// lagTarget is the value seen ahead of applied at the last resync
	// (0: not lagging).
	lagTarget uint64
}

// Reset declares the view current to e (the caller has emptied it).
func (t *Tracker) Reset(e uint64) { t.applied, t.pending, t.lagTarget = e, map[uint64]bool{}, 0 }

// Current tells whether the view may answer a call that read e.
func (t *Tracker) Current(e uint64) bool { return e == t.applied }

// Apply records message e as applied (0: a message whose counter could not
// be bumped; what it names is still dropped by the caller).
func (t *Tracker) Apply(e uint64) {
	if e <= t.applied {
		return
	}
	t.pending[e] = true
	for t.pending[t.applied+1] {
		delete(t.pending, t.applied+1)
		t.applied++
	}
}

// Resync is called periodically with the counter's value. It returns true
// when the view must be emptied (then it is declared current to e): it
// stayed behind for a whole period (a message was lost) or is ahead of the
// counter (the counter was reset, or Unsure was called).
func (t *Tracker) Resync(e uint64) (empty bool) {
	switch {
	case e == t.applied:
		t.lagTarget = 0
	case e < t.applied, t.lagTarget != 0 && t.applied < t.lagTarget:
		t.Reset(e)
		return true
	default:
		t.lagTarget = e
	}
	return false
}

// Unsure declares that messages may have been missed (the subscription was
// lost): the view matches no value until the next Resync empties it.
func (t *Tracker) Unsure() {
	t.Reset(0)
	t.applied = ^uint64(0)
}

// Follower keeps an in-memory view current: it applies every message on
// Topic, tells the view when its subscription was lost, and resyncs it
// with Counter every period. Run it on its own goroutine.
type Follower struct {
	Bus   bus.Bus
	Topic string
	// Sub, when set, is Topic subscribed already (a view that loads
	// itself at start subscribes first, so that nothing published after
	// the load is missed); Run closes it.
	Sub     *bus.Subscription
	Counter Counter
	Every   time.Duration
	Log     *slog.Logger
	Apply   func(msg []byte)
	Unsure  func()
	Resync  func(e uint64)
}

// Run follows until ctx ends.
func (f Follower) Run(ctx context.Context) {
	tick := time.NewTicker(f.Every)
	defer tick.Stop()
	sub := f.Sub
	defer func() {
		if sub != nil {
			sub.Close()
		}
	}()
	for {
		if sub == nil {
			var err error
			if sub, err = f.Bus.Subscribe(ctx, f.Topic, 4096); err != nil {
				f.Log.Warn("subscription failed; reads skip the in-memory view until it is back", "topic", f.Topic, "err", err)
				sub = nil
			}
		}
		var msgs <-chan []byte
		if sub != nil {
			msgs = sub.C
		}
		select {
		case <-ctx.Done():
			return
		case m, ok := <-msgs:
			if !ok {
				// Dropped (too slow) or the bus closed: messages may be lost.
				f.Unsure()
				sub = nil
				continue
			}
			f.Apply(m)
		case <-tick.C:
			if e, err := f.Counter.Current(ctx); err == nil {
				f.Resync(e)
			}
		}
	}
}
