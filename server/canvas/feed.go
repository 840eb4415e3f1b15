package canvas

import (
	"context"
	"errors"
	"log/slog"
	"sort"
	"sync"
	"time"

	"google.golang.org/grpc/peer"

	canvasv1 "github.com/apiplatform/platform/gen/go/canvas/v1"
	"github.com/apiplatform/platform/server/platform/apierr"
)

// feed turns the board's delta log into the batches every stream of this
// replica sends. One goroutine follows the log (Board.Tail: a blocking
// XREAD on the shared Redis stream, so placements on every replica arrive
// here in sequence order, with no gap a subscriber would have to repair)
// and cuts what arrived into a batch every interval. Batches are kept in
// one ring shared by all subscribers, bounded by a number of deltas: it is
// the replay buffer for reconnecting clients and the only buffer there is.
//
// Each subscriber is a cursor into the ring, advanced by its own stream
// goroutine: the cutter never waits for anyone (it wakes them all by
// closing a channel), so a slow or stalled client costs nothing but its own
// goroutine and its transport buffers. When a subscriber's next batch has
// waited longer than maxLag, or fell out of the ring, it gets a Resync and
// its stream ends: it must reload the snapshot.
type feed struct {
	board    Board
	interval time.Duration
	retain   int // deltas kept in the ring
	maxLag   time.Duration
	maxMsg   int // deltas per message
	// heartbeat is how long a stream stays silent at most: an idle stream
	// sends a Heartbeat then, which keeps proxies from closing it.
	heartbeat time.Duration
	log       *slog.Logger
	now       func() time.Time

	mu      sync.RWMutex
	gen     uint64 // 0 until started; changes on every restart
	epoch   string
	batches []*batch // oldest first, contiguous: (base, head]
	kept    int      // deltas in batches
	base    int64
	head    int64
	seen    int64 // last seq read from the board; (head, seen] is pending
	// groups hold the subscribers' wake channels, one per connection,
	// each closed when batches or gen change.
	groups map[string]*wakeGroup

	stop      chan struct{} // closed by drain
	drainOnce sync.Once

	// Owned by the run goroutine.
	pending      []byte
	pendingFirst int64

	cancel context.CancelFunc
	done   chan struct{}
}

// batch is one message's worth of consecutive deltas; never modified once
// in the ring.
type batch struct {
	first, last int64
	deltas      []byte
	at          time.Time // when it was cut
}

type feedConfig struct {
	interval  time.Duration
	retain    int
	maxLag    time.Duration
	maxMsg    int
	heartbeat time.Duration
}

func newFeed(board Board, cfg feedConfig, log *slog.Logger) *feed {
	ctx, cancel := context.WithCancel(context.Background())
	f := &feed{
		board: board, interval: cfg.interval, retain: cfg.retain, maxLag: cfg.maxLag, maxMsg: cfg.maxMsg,
		heartbeat: cfg.heartbeat, log: log, now: time.Now, groups: map[string]*wakeGroup{}, stop: make(chan struct{}), cancel: cancel, done: make(chan struct{}),
	}
	go f.run(ctx)
	return f
}

// drain ends every stream (and refuses new ones) with UNAVAILABLE.
func (f *feed) drain() { f.drainOnce.Do(func() { close(f.stop) }) }

// close drains, then stops following the log.
func (f *feed) close() {
	f.drain()
	f.cancel()
	<-f.done
}

func (f *feed) run(ctx context.Context) {
	defer close(f.done)
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		if err := f.start(ctx); err != nil {
			if ctx.Err() == nil {
				f.log.Warn("canvas: delta feed cannot start; retrying", "err", err, "in", backoff)
				sleep(ctx, backoff)
				backoff = min(2*backoff, 2*time.Second)
			}
			continue
		}
		backoff = 50 * time.Millisecond
		if reason := f.follow(ctx); reason != "" {
			f.log.Warn("canvas: delta feed restarting; its subscribers resync", "reason", reason)
			feedRestarts.Inc()
		}
	}
}

// start positions the feed at the board's head, with the ring prefilled
// from what the log still holds (so clients reconnecting to a replica that
// just started can still resume), and tells existing subscribers to resync.
func (f *feed) start(ctx context.Context) error {
	seq, epoch, err := f.board.Head(ctx)
	if err != nil {
		return err
	}
	var log []byte
	base, seen := seq, seq
	for after := int64(0); ; {
		runs, err := f.board.Tail(ctx, after, 8192, 0)
		if err != nil {
			return err
		}
		if len(runs) == 0 {
			break
		}
		for _, r := range runs {
			if r.Epoch != epoch {
				return errors.New("board changed epoch while starting")
			}
			if len(log) > 0 && r.First != seen+1 {
				log = nil // a hole (trimmed as we read): keep what follows it
			}
			if len(log) == 0 {
				base = r.First - 1
			}
			log = append(log, r.Deltas...)
			seen = r.Last()
			after = seen
		}
	}
	if len(log) == 0 || seen < seq {
		log, base, seen = nil, seq, seq
	}
	// Keep only the newest retain deltas.
	if extra := len(log)/DeltaSize - f.retain; extra > 0 {
		log, base = log[extra*DeltaSize:], base+int64(extra)
	}
	f.pending, f.pendingFirst = nil, 0
	f.mu.Lock()
	f.gen++
	f.epoch, f.batches, f.kept = epoch, nil, 0
	f.base, f.head, f.seen = base, base, seen
	f.appendLocked(log, base+1)
	woken := f.rewakeLocked()
	f.mu.Unlock()
	wake(woken)
	return nil
}

// follow reads the log and cuts batches until ctx ends or the log cannot be
// followed any more (reason says why).
//
// The cut runs on this goroutine's own timer while another goroutine does
// the blocking reads: a read that waits for the log to say something can
// return late (Redis times out a blocked XREAD only on its server cron, up
// to 1/hz = 100 ms after the BLOCK asked for), and a batch cut only when
// that read came back would be late by as much whenever the log is quiet
// at the end of an interval.
func (f *feed) follow(ctx context.Context) (reason string) {
	readCtx, stopReading := context.WithCancel(ctx)
	defer stopReading()
	reads := make(chan tailRead)
	go f.read(readCtx, f.seen, reads)

	next := f.now().Add(f.interval)
	lastCheck := f.now()
	cutAt := time.NewTimer(f.interval)
	defer cutAt.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return ""
		case <-cutAt.C:
			now := f.now()
			f.cut()
			if next = next.Add(f.interval); !next.After(now) {
				next = now.Add(f.interval)
			}
			cutAt.Reset(next.Sub(now))
			// A board rebuilt in a new epoch may restart its numbering
			// below what this replica has read, where Tail would not see
			// it: ask now and then rather than wait for a log entry.
			if now.Sub(lastCheck) >= epochCheck {
				lastCheck = now
				if _, epoch, err := f.board.Head(ctx); err == nil && epoch != f.epoch {
					return "the board was rebuilt from history (new epoch)"
				}
			}
		case r := <-reads:
			if r.err != nil {
				if !failing {
					f.log.Warn("canvas: delta log unreachable; streams pause until it is back", "err", r.err)
					failing = true
				}
				continue
			}
			if failing {
				f.log.Info("canvas: delta log reachable again")
				failing = false
			}
			if reason := f.take(r.runs); reason != "" {
				return reason
			}
		}
	}
}

// tailRead is one answer of the log to feed.read.
type tailRead struct {
	runs []Run
	err  error
}

// readWait is how long one read waits for the log; its end means nothing
// (the cut does not wait on it), so it only bounds how long a quiet log
// keeps a read open.
const readWait = 5 * time.Second

// read follows the log from after, handing every non-empty answer (and
// every error, after which it pauses an interval) to follow until ctx ends.
func (f *feed) read(ctx context.Context, after int64, to chan<- tailRead) {
	for ctx.Err() == nil {
		runs, err := f.board.Tail(ctx, after, 8192, readWait)
		if ctx.Err() != nil {
			return
		}
		if err == nil && len(runs) == 0 {
			continue
		}
		select {
		case to <- tailRead{runs, err}:
		case <-ctx.Done():
			return
		}
		if err != nil {
			sleep(ctx, f.interval)
			continue
		}
		after = max(after, runs[len(runs)-1].Last())
	}
}

// take adds runs read from the log to the pending deltas, or says why the
// log cannot be followed from here.
func (f *feed) take(runs []Run) (reason string) {
	for _, r := range runs {
		last := r.Last()
		switch {
		case r.Epoch != f.epoch:
			return "the board was rebuilt from history (new epoch)"
		case last <= f.seen:
			continue
		case r.First > f.seen+1:
			return "deltas were trimmed from the log before this replica read them"
		}
		if len(f.pending) == 0 {
			f.pendingFirst = f.seen + 1
		}
		f.pending = append(f.pending, r.Deltas[(f.seen+1-r.First)*DeltaSize:]...)
		f.mu.Lock()
		f.seen = last
		f.mu.Unlock()
	}
	return ""
}

// cut adds the pending deltas to the ring as batches and wakes the
// subscribers.
func (f *feed) cut() {
	if len(f.pending) == 0 {
		return
	}
	buf, first := f.pending, f.pendingFirst
	f.pending = nil
	f.mu.Lock()
	f.appendLocked(buf, first)
	woken := f.rewakeLocked()
	f.mu.Unlock()
	wake(woken)
}

// appendLocked adds deltas from seq first to the ring as batches of at
// most maxMsg deltas, then trims the ring to retain deltas (keeping at
// least the newest batch).
func (f *feed) appendLocked(buf []byte, first int64) {
	now := f.now()
	for off := 0; off < len(buf); off += f.maxMsg * DeltaSize {
		end := min(off+f.maxMsg*DeltaSize, len(buf))
		b := &batch{first: first + int64(off/DeltaSize), deltas: buf[off:end:end], at: now}
		b.last = b.first + int64((end-off)/DeltaSize) - 1
		f.batches = append(f.batches, b)
		f.kept += (end - off) / DeltaSize
		f.head = b.last
	}
	drop := 0
	for drop < len(f.batches)-1 && f.kept > f.retain {
		f.kept -= len(f.batches[drop].deltas) / DeltaSize
		drop++
	}
	if drop > 0 {
		clear(f.batches[:drop])
		f.batches = f.batches[drop:]
	}
	if len(f.batches) > 0 {
		f.base = f.batches[0].first - 1
	}
}

// wakeGroup is the wake channel of the subscribers on one connection.
// Woken group by group, their sends reach each connection's writer back
// to back, and it finds more frames queued per write; woken all at once,
// in the order they happened to wait, they interleave across connections
// and most frames go out in a write of their own. With 10,000
// subscribers over 100 connections, grouping took the server's write
// calls during the fan-out down by a fifth and the subscribers' reads by
// 2.5 times (BenchmarkCanvasSubscribers, /proc/PID/io).
type wakeGroup struct {
	ch   chan struct{}
	subs int
}

// join adds a subscriber to its connection's group.
func (f *feed) join(conn string) *wakeGroup {
	f.mu.Lock()
	defer f.mu.Unlock()
	g := f.groups[conn]
	if g == nil {
		g = &wakeGroup{ch: make(chan struct{})}
		f.groups[conn] = g
	}
	g.subs++
	return g
}

func (f *feed) leave(conn string, g *wakeGroup) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if g.subs--; g.subs == 0 {
		delete(f.groups, conn)
	}
}

// rewakeLocked gives every group a new wake channel and returns the old
// ones, for wake to close once f.mu is released: a subscriber woken while
// the lock is still held would only block on it and be woken again.
func (f *feed) rewakeLocked() []chan struct{} {
	old := make([]chan struct{}, 0, len(f.groups))
	for _, g := range f.groups {
		old = append(old, g.ch)
		g.ch = make(chan struct{})
	}
	return old
}

func wake(chans []chan struct{}) {
	for _, ch := range chans {
		close(ch)
	}
}

// Resync reasons.
const (
	resyncTooOld    = "after_seq is older than the deltas this server keeps"
	resyncAhead     = "after_seq is newer than the canvas"
	resyncSlow      = "subscriber too slow"
	resyncRestarted = "the delta log restarted"
)

// epochCheck is how often a feed asks the board for its epoch.
const epochCheck = 2 * time.Second

// FromNow as a serve position starts a stream at the current head.
const FromNow = -1

// serve streams batches after position after (FromNow: from the current
// head) through send until ctx ends, send fails, or the subscriber must
// resync. Its first message is a Heartbeat stating the sequence number the
// stream starts after; a stream that sent nothing for the heartbeat period
// sends another (each stream keeps its own timer, so the period holds for
// every subscriber however their joins fall against the batch clock).
func (f *feed) serve(ctx context.Context, after int64, send func(*canvasv1.StreamPixelsResponse) error) error {
	streamSubscribers.Inc()
	defer streamSubscribers.Dec()
	conn := connectionOf(ctx)
	group := f.join(conn)
	defer f.leave(conn, group)
	joined := f.now()
	var (
		gen      uint64
		pos      int64
		caughtUp bool // sent a batch of deltas
		buf      [16]*batch
	)
	beat := time.NewTimer(f.heartbeat)
	defer beat.Stop()
	sent := func() { beat.Reset(f.heartbeat) }
	sendHeartbeat := func() error {
		sent()
		return send(&canvasv1.StreamPixelsResponse{Event: &canvasv1.StreamPixelsResponse_Heartbeat{
			Heartbeat: &canvasv1.Heartbeat{Seq: pos},
		}})
	}
	for {
		select {
		case <-f.stop:
			return apierr.Unavailable("the server is shutting down; reconnect with after_seq", time.Second)
		default:
		}
		f.mu.RLock()
		if f.gen == 0 { // not following the log yet (Redis down at start)
			wake := group.ch
			f.mu.RUnlock()
			if err := f.wait(ctx, wake, nil); err != nil {
				return err
			}
			continue
		}
		current := f.seen
		if gen == 0 {
			switch {
			case after == FromNow:
				pos = f.head
			case after < f.base:
				f.mu.RUnlock()
				return f.resync(send, resyncTooOld, current)
			case after > current:
				// Perhaps only ahead of this replica, which reads the log a
				// moment after it is written.
				f.mu.RUnlock()
				if head, _, err := f.board.Head(ctx); err == nil && after > head {
					return f.resync(send, resyncAhead, head)
				}
				f.mu.RLock()
				pos = after
			default:
				pos = after
			}
			gen = f.gen
			f.mu.RUnlock()
			if err := sendHeartbeat(); err != nil {
				return err
			}
			continue
		}
		if gen != f.gen {
			f.mu.RUnlock()
			return f.resync(send, resyncRestarted, current)
		}
		if pos < f.base {
			f.mu.RUnlock()
			if !caughtUp {
				return f.resync(send, resyncTooOld, current)
			}
			return f.resync(send, resyncSlow, current)
		}
		i := sort.Search(len(f.batches), func(i int) bool { return f.batches[i].last > pos })
		n := copy(buf[:], f.batches[i:])
		wake := group.ch
		f.mu.RUnlock()

		if n == 0 {
			err := f.wait(ctx, wake, beat.C)
			if errors.Is(err, errHeartbeatDue) {
				err = sendHeartbeat()
			}
			if err != nil {
				return err
			}
			continue
		}
		// Only batches cut after the subscriber joined count: catching up
		// on a replay is not lagging.
		if b := buf[0]; b.at.After(joined) && f.now().Sub(b.at) > f.maxLag {
			return f.resync(send, resyncSlow, current)
		}
		for _, b := range buf[:n] {
			first, deltas := b.first, b.deltas
			if pos >= first {
				deltas = deltas[(pos+1-first)*DeltaSize:]
				first = pos + 1
			}
			sent()
			if err := send(&canvasv1.StreamPixelsResponse{Event: &canvasv1.StreamPixelsResponse_Batch{
				Batch: &canvasv1.PixelBatch{FirstSeq: first, LastSeq: b.last, Deltas: deltas},
			}}); err != nil {
				return err
			}
			if b.at.After(joined) {
				deliveryLag.Observe(f.now().Sub(b.at).Seconds())
			}
			pos, caughtUp = b.last, true
		}
		clear(buf[:n])
	}
}

func (f *feed) resync(send func(*canvasv1.StreamPixelsResponse) error, reason string, current int64) error {
	streamResyncs.WithLabelValues(reason).Inc()
	return send(&canvasv1.StreamPixelsResponse{Event: &canvasv1.StreamPixelsResponse_Resync{
		Resync: &canvasv1.Resync{Reason: reason, CurrentSeq: current},
	}})
}

// connectionOf names the connection a stream arrived on: the peer's
// address and port (empty when there is none, as on the in-process
// channel).
func connectionOf(ctx context.Context) string {
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		return p.Addr.String()
	}
	return ""
}

// errHeartbeatDue is wait's answer when the heartbeat timer fired first.
var errHeartbeatDue = errors.New("heartbeat due")

// wait returns when wake is closed, the feed drains (the loop then ends
// the stream), beat fires (errHeartbeatDue) or ctx ends.
func (f *feed) wait(ctx context.Context, wake <-chan struct{}, beat <-chan time.Time) error {
	select {
	case <-wake:
	case <-f.stop:
	case <-beat:
		return errHeartbeatDue
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
