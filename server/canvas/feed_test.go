package canvas

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	canvasv1 "github.com/apiplatform/platform/gen/go/canvas/v1"
)

func testFeed(t *testing.T, b Board, cfg feedConfig) *feed {
	t.Helper()
	if cfg.interval == 0 {
		cfg.interval = 20 * time.Millisecond
	}
	if cfg.retain == 0 {
		cfg.retain = 10_000
	}
	if cfg.maxLag == 0 {
		cfg.maxLag = time.Minute
	}
	if cfg.maxMsg == 0 {
		cfg.maxMsg = maxMessageDeltas
	}
	if cfg.heartbeat == 0 {
		cfg.heartbeat = DefaultHeartbeat
	}
	f := newFeed(b, cfg, slog.New(slog.NewTextHandler(t.Output(), nil)))
	t.Cleanup(f.close)
	waitStarted(t, f)
	return f
}

func waitStarted(t *testing.T, f *feed) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		f.mu.RLock()
		gen := f.gen
		f.mu.RUnlock()
		if gen > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("feed did not start")
		}
	}
}

// sub is a subscriber whose messages arrive on a channel.
type sub struct {
	msgs chan *canvasv1.StreamPixelsResponse
	done chan error
	stop context.CancelFunc
	at   int64 // last seq received; -1 until the first heartbeat says
}

// subscribe follows the feed after since (0: from now).
func subscribe(f *feed, since int64, send func(*canvasv1.StreamPixelsResponse) error) *sub {
	return subscribeIn(bg, f, since, send)
}

// subscribeIn is subscribe for a stream whose context is parent (a peer's
// connection, say).
func subscribeIn(parent context.Context, f *feed, since int64, send func(*canvasv1.StreamPixelsResponse) error) *sub {
	ctx, cancel := context.WithCancel(parent)
	s := &sub{msgs: make(chan *canvasv1.StreamPixelsResponse, 10_000), done: make(chan error, 1), stop: cancel, at: since}
	if since == 0 {
		s.at, since = -1, FromNow
	}
	if send == nil {
		send = func(m *canvasv1.StreamPixelsResponse) error { s.msgs <- m; return nil }
	}
	go func() { s.done <- f.serve(ctx, since, send) }()
	return s
}

// follow collects the deltas the subscriber receives until it has seq
// upTo, checking that batches are contiguous.
func (s *sub) follow(t *testing.T, upTo int64) []byte {
	t.Helper()
	var out []byte
	timeout := time.After(10 * time.Second)
	for s.at < upTo {
		select {
		case m := <-s.msgs:
			if hb := m.GetHeartbeat(); hb != nil {
				if s.at == -1 {
					s.at = hb.GetSeq()
				}
				if hb.GetSeq() != s.at {
					t.Fatalf("heartbeat at %d after seq %d", hb.GetSeq(), s.at)
				}
				continue
			}
			b := m.GetBatch()
			if b == nil || s.at == -1 {
				t.Fatalf("got %v while following (at %d)", m, s.at)
			}
			if b.GetFirstSeq() != s.at+1 || int64(len(b.GetDeltas())) != (b.GetLastSeq()-b.GetFirstSeq()+1)*DeltaSize {
				t.Fatalf("batch [%d, %d] with %d bytes after seq %d", b.GetFirstSeq(), b.GetLastSeq(), len(b.GetDeltas()), s.at)
			}
			out = append(out, b.GetDeltas()...)
			s.at = b.GetLastSeq()
		case err := <-s.done:
			t.Fatalf("stream ended at seq %d: %v", s.at, err)
		case <-timeout:
			t.Fatalf("stuck at seq %d, want %d", s.at, upTo)
		}
	}
	return out
}

func (s *sub) resync(t *testing.T) *canvasv1.Resync {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case m := <-s.msgs:
			if r := m.GetResync(); r != nil {
				if err := <-s.done; err != nil {
					t.Fatalf("stream after resync: %v", err)
				}
				return r
			}
		case <-timeout:
			t.Fatal("no resync")
		}
	}
}

func placeN(t *testing.T, b Board, n int) {
	t.Helper()
	for i := range n {
		if _, err := b.Place(bg, PlaceOp{UserID: "u", Deltas: one(i%100, int32(i%16))}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestFeedBatchesAndResumes(t *testing.T) {
	b := NewMemoryBoard(10, 10, 0, nil, 10_000)
	f := testFeed(t, b, feedConfig{interval: 50 * time.Millisecond})
	live := subscribe(f, 0, nil)
	defer live.stop()
	time.Sleep(10 * time.Millisecond)
	placeN(t, b, 60)
	got := live.follow(t, 60)
	log := readLog(t, b, 0)
	if !bytes.Equal(got, log) {
		t.Fatal("streamed deltas differ from the log")
	}
	// A client resuming from seq n gets exactly n+1.., wherever n falls in
	// the batches, then what follows.
	head := int64(60)
	for _, since := range []int64{25, 59, 60} {
		r := subscribe(f, since, nil)
		if d := r.follow(t, head); !bytes.Equal(d, readLog(t, b, since)) {
			t.Fatalf("resumed from %d: wrong deltas", since)
		}
		placeN(t, b, 1)
		head++
		r.follow(t, head)
		r.stop()
	}
}

func TestFeedResyncs(t *testing.T) {
	b := NewMemoryBoard(10, 10, 0, nil, 100_000)
	f := testFeed(t, b, feedConfig{retain: 1000, maxMsg: 100})
	placeN(t, b, 3000)
	waitHead(t, f, 3000)
	s := subscribe(f, 0, nil)
	defer s.stop()
	placeN(t, b, 1)
	s.follow(t, 3001)

	if r := subscribe(f, 10, nil).resync(t); r.GetReason() != resyncTooOld || r.GetCurrentSeq() != 3001 {
		t.Fatalf("since_seq 10 with 1000 kept: %v", r)
	}
	if r := subscribe(f, 1_000_000, nil).resync(t); r.GetReason() != resyncAhead {
		t.Fatalf("since_seq from the future: %v", r)
	}
	// Within what is kept: fine.
	ok := subscribe(f, 2500, nil)
	ok.follow(t, 3001)
	ok.stop()
}

// A subscriber whose client stalls is dropped with a resync once its next
// batch is older than maxLag; the others get every batch meanwhile.
func TestFeedDropsStalledSubscriber(t *testing.T) {
	b := NewMemoryBoard(10, 10, 0, nil, 100_000)
	f := testFeed(t, b, feedConfig{maxLag: 100 * time.Millisecond})
	release := make(chan struct{})
	var stalled sync.Once
	stuck := make(chan struct{})
	slow := subscribe(f, 0, nil)
	slowSend := func(m *canvasv1.StreamPixelsResponse) error {
		stalled.Do(func() { close(stuck); <-release }) // blocks like a full transport
		slow.msgs <- m
		return nil
	}
	slow.stop()
	slow = subscribe(f, 0, slowSend)
	fast := subscribe(f, 0, nil)
	defer fast.stop()
	time.Sleep(10 * time.Millisecond)

	placeN(t, b, 10)
	<-stuck
	for i := range 5 {
		placeN(t, b, 10)
		fast.follow(t, int64(i*10+10))
		time.Sleep(40 * time.Millisecond)
	}
	fast.follow(t, 60)
	close(release)
	if r := slow.resync(t); r.GetReason() != resyncSlow {
		t.Fatalf("stalled subscriber: %v", r)
	}
}

// epochBoard lets a test change the epoch under the feed, as a Redis that
// lost its data and was rebuilt does.
type epochBoard struct {
	Board
	mu    sync.Mutex
	epoch string
}

func (b *epochBoard) get() string { b.mu.Lock(); defer b.mu.Unlock(); return b.epoch }

func (b *epochBoard) Head(ctx context.Context) (int64, string, error) {
	seq, _, err := b.Board.Head(ctx)
	return seq, b.get(), err
}

func (b *epochBoard) Tail(ctx context.Context, after int64, n int, wait time.Duration) ([]Run, error) {
	runs, err := b.Board.Tail(ctx, after, n, wait)
	for i := range runs {
		runs[i].Epoch = b.get()
	}
	return runs, err
}

func TestFeedRestartsOnNewEpoch(t *testing.T) {
	mem := NewMemoryBoard(10, 10, 0, nil, 100_000)
	b := &epochBoard{Board: mem, epoch: "one"}
	f := testFeed(t, b, feedConfig{})
	s := subscribe(f, 0, nil)
	time.Sleep(10 * time.Millisecond)
	placeN(t, mem, 5)
	s.follow(t, 5)
	b.mu.Lock()
	b.epoch = "two"
	b.mu.Unlock()
	placeN(t, mem, 1)
	if r := s.resync(t); r.GetReason() != resyncRestarted {
		t.Fatalf("after the epoch changed: %v", r)
	}
	// New subscribers follow the new epoch.
	n := subscribe(f, 0, nil)
	defer n.stop()
	waitGen(t, f, 2)
	time.Sleep(10 * time.Millisecond)
	placeN(t, mem, 1)
	n.follow(t, 7)
}

// lateBoard's waiting reads end only when there is something to read,
// never when the wait is over: Redis times a blocked XREAD out on its
// server cron, up to 100 ms late, and a quiet log is the common case.
type lateBoard struct{ Board }

func (b lateBoard) Tail(ctx context.Context, after int64, n int, wait time.Duration) ([]Run, error) {
	if wait > 0 {
		wait = time.Hour
	}
	return b.Board.Tail(ctx, after, n, wait)
}

// The feed cuts batches on its own clock: a placement on a quiet log is
// sent on the next cut while the read that found it waits for the next
// placement, and so is the one after it.
func TestFeedCutsWhileTheLogIsQuiet(t *testing.T) {
	mem := NewMemoryBoard(10, 10, 0, nil, 10_000)
	f := testFeed(t, lateBoard{mem}, feedConfig{})
	s := subscribe(f, 0, nil)
	defer s.stop()
	s.follow(t, 0) // the stream's start
	placeN(t, mem, 1)
	s.follow(t, 1)
	placeN(t, mem, 1)
	s.follow(t, 2)
}

// Subscribers are woken connection by connection: every connection's
// subscribers get every batch, and a connection whose last subscriber left
// is woken again when a new one arrives on it.
func TestFeedWakesEveryConnection(t *testing.T) {
	b := NewMemoryBoard(10, 10, 0, nil, 10_000)
	f := testFeed(t, b, feedConfig{})
	on := func(conn int) *sub {
		addr := &net.TCPAddr{IP: net.IPv4(10, 0, 0, byte(conn)), Port: 4000}
		s := subscribeIn(peer.NewContext(bg, &peer.Peer{Addr: addr}), f, 0, nil)
		s.follow(t, s.at+1) // the stream's start
		return s
	}
	var subs []*sub
	for i := range 6 {
		subs = append(subs, on(i%3))
	}
	subs = append(subs, subscribe(f, 0, nil)) // no peer: the in-process channel
	subs[len(subs)-1].follow(t, 0)
	placeN(t, b, 5)
	for _, s := range subs {
		s.follow(t, 5)
	}
	subs[2].stop()
	subs[5].stop() // connection 2 has no subscriber left
	<-subs[2].done
	<-subs[5].done
	back := on(2)
	defer back.stop()
	placeN(t, b, 5)
	for _, s := range append(subs, back) {
		if s != subs[2] && s != subs[5] {
			s.follow(t, 10)
		}
	}
	for i, s := range subs {
		if i != 2 && i != 5 {
			s.stop()
			<-s.done
		}
	}
	f.mu.RLock()
	defer f.mu.RUnlock()
	if len(f.groups) != 1 {
		t.Fatalf("groups left: %v (want only connection 2's)", f.groups)
	}
}

func waitHead(t *testing.T, f *feed, seq int64) {
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		f.mu.RLock()
		h := f.head
		f.mu.RUnlock()
		if h >= seq {
			return
		}
	}
	t.Fatalf("feed not at seq %d", seq)
}

func waitGen(t *testing.T, f *feed, gen uint64) {
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		f.mu.RLock()
		g := f.gen
		f.mu.RUnlock()
		if g >= gen {
			return
		}
	}
	t.Fatalf("feed not at generation %d", gen)
}

// A replica starting on a Redis log that holds recent deltas serves resumes
// from them at once.
func TestFeedPrefillsFromLog(t *testing.T) {
	forBoards(t, func(t *testing.T, mk boardMaker) {
		if t.Name() == "TestFeedPrefillsFromLog/memory" {
			t.Skip("the in-process board's log starts empty with each process")
		}
		open, _ := mk(t, 10, 10, 10_000, emptyHistory(10, 10))
		b := open()
		placeN(t, b, 40)
		f := testFeed(t, open(), feedConfig{})
		s := subscribe(f, 15, nil)
		defer s.stop()
		if d := s.follow(t, 40); !bytes.Equal(d, readLog(t, b, 15)) {
			t.Fatal("replayed deltas differ from the log")
		}
	})
}

func TestFeedSplitsLargeBatches(t *testing.T) {
	b := NewMemoryBoard(100, 100, 0, nil, 100_000)
	f := testFeed(t, b, feedConfig{maxMsg: 1000})
	s := subscribe(f, 0, nil)
	defer s.stop()
	time.Sleep(10 * time.Millisecond)
	deltas := make([]byte, 0, MaxRun*DeltaSize)
	for i := range MaxRun {
		deltas = PackDelta(deltas, i, 2)
	}
	if _, err := b.Place(bg, PlaceOp{UserID: "admin", Deltas: deltas}); err != nil {
		t.Fatal(err)
	}
	s.follow(t, MaxRun)
	f.mu.RLock()
	n := len(f.batches)
	f.mu.RUnlock()
	if n < MaxRun/1000 {
		t.Fatalf("%d deltas in %d batches of at most 1000", MaxRun, n)
	}
}

// Draining ends open streams (and refuses new ones) with UNAVAILABLE, so a
// shutting-down server is not held up by them.
func TestFeedDrain(t *testing.T) {
	b := NewMemoryBoard(10, 10, 0, nil, 1000)
	f := testFeed(t, b, feedConfig{})
	s := subscribe(f, 0, nil)
	<-s.msgs // the stream's start
	f.drain()
	for _, done := range []chan error{s.done, subscribe(f, 0, nil).done} {
		select {
		case err := <-done:
			if st, _ := status.FromError(err); st.Code() != codes.Unavailable {
				t.Fatalf("after drain: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("stream not ended by drain")
		}
	}
}
