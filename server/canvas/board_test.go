package canvas

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/apiplatform/platform/server/platform/redistest"
)

var bg = context.Background()

// boardMaker opens a w×h board starting from history (seq, pixels); boards
// of one maker's call share state the way replicas do (the same Redis
// canvas), where the engine allows it.
type boardMaker func(t *testing.T, w, h, retain int, rebuild Rebuild) (open func() Board, flush func())

func memoryMaker(t *testing.T, w, h, retain int, rebuild Rebuild) (func() Board, func()) {
	seq, pixels, err := rebuild(bg)
	if err != nil {
		t.Fatal(err)
	}
	b := NewMemoryBoard(w, h, seq, pixels, retain)
	return func() Board { return b }, nil
}

func redisMaker(t *testing.T, w, h, retain int, rebuild Rebuild) (func() Board, func()) {
	id := uuid.NewString() // a canvas of its own on the shared Redis
	c := redistest.Client(t)
	flush := func() { redistest.DeleteMatching(t, c, "canvas:{"+id+"}:*") }
	t.Cleanup(flush)
	open := func() Board {
		// Its own client, like another replica.
		return NewRedisBoard(redistest.Client(t), id, w, h, retain, rebuild, slog.New(slog.NewTextHandler(t.Output(), nil)))
	}
	return open, flush
}

func forBoards(t *testing.T, run func(t *testing.T, mk boardMaker)) {
	t.Run("memory", func(t *testing.T) { run(t, memoryMaker) })
	t.Run("redis", func(t *testing.T) { run(t, redisMaker) })
}

func emptyHistory(w, h int) Rebuild {
	return func(context.Context) (int64, []byte, error) { return 0, make([]byte, boardBytes(w, h)), nil }
}

func one(idx int, c int32) []byte { return PackDelta(nil, idx, c) }

func TestPackDelta(t *testing.T) {
	for _, tc := range []struct {
		idx int
		c   int32
	}{{0, 0}, {1, 15}, {3999999, 7}, {1<<28 - 1, 15}} {
		b := PackDelta(nil, tc.idx, tc.c)
		if len(b) != DeltaSize {
			t.Fatalf("%d bytes a delta", len(b))
		}
		if idx, c := UnpackDelta(b); idx != tc.idx || c != tc.c {
			t.Fatalf("round trip of (%d, %d) = (%d, %d)", tc.idx, tc.c, idx, c)
		}
	}
	px := make([]byte, 2)
	ApplyDeltas(px, 3, append(append(one(0, 0xA), one(1, 0x5)...), append(one(2, 0xF), one(3, 1)...)...))
	if !bytes.Equal(px, []byte{0xA5, 0xF0}) {
		t.Fatalf("packed %x, want a5f0 (high nibble first, index 3 outside the 3-pixel board ignored)", px)
	}
}

func TestBoardPlaceAndSnapshot(t *testing.T) {
	forBoards(t, func(t *testing.T, mk boardMaker) {
		open, _ := mk(t, 5, 3, 1000, emptyHistory(5, 3))
		b := open()
		snap, err := b.Snapshot(bg)
		if err != nil || snap.Seq != 0 || len(snap.Pixels) != 8 || !bytes.Equal(snap.Pixels, make([]byte, 8)) {
			t.Fatalf("fresh board: %+v, %v", snap, err)
		}
		p1, err := b.Place(bg, PlaceOp{UserID: "u1", Deltas: one(14, 9)}) // (4,2): the last pixel
		if err != nil || p1.First != 1 || p1.Last != 1 {
			t.Fatalf("first placement: %+v, %v", p1, err)
		}
		p2, err := b.Place(bg, PlaceOp{UserID: "u2", Deltas: append(one(0, 3), one(0, 4)...)})
		if err != nil || p2.First != 2 || p2.Last != 3 {
			t.Fatalf("two-pixel placement: %+v, %v", p2, err)
		}
		snap, err = b.Snapshot(bg)
		if err != nil || snap.Seq != 3 {
			t.Fatalf("snapshot: %+v, %v", snap, err)
		}
		// Last write wins: pixel 0 is 4; pixel 14 is the low... high nibble of byte 7.
		if PixelAt(snap.Pixels, 0) != 4 || PixelAt(snap.Pixels, 14) != 9 || snap.Pixels[7] != 0x90 {
			t.Fatalf("pixels %x", snap.Pixels)
		}
		seq, epoch, err := b.Head(bg)
		if err != nil || seq != 3 || epoch != snap.Epoch || epoch == "" {
			t.Fatalf("head: %d %q %v (snapshot epoch %q)", seq, epoch, err, snap.Epoch)
		}
	})
}

func TestBoardCooldown(t *testing.T) {
	forBoards(t, func(t *testing.T, mk boardMaker) {
		open, _ := mk(t, 4, 4, 1000, emptyHistory(4, 4))
		b := open()
		if _, err := b.Place(bg, PlaceOp{UserID: "u", Cooldown: time.Minute, Deltas: one(1, 1)}); err != nil {
			t.Fatal(err)
		}
		_, err := b.Place(bg, PlaceOp{UserID: "u", Cooldown: time.Minute, Deltas: one(2, 2)})
		var cd *CooldownError
		if !errors.As(err, &cd) || cd.RetryAfter <= 50*time.Second || cd.RetryAfter > time.Minute {
			t.Fatalf("second placement within the cooldown: %v", err)
		}
		// Other users, and placements without a cooldown, are not held up.
		if _, err := b.Place(bg, PlaceOp{UserID: "v", Cooldown: time.Minute, Deltas: one(2, 2)}); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Place(bg, PlaceOp{UserID: "u", Deltas: one(3, 3)}); err != nil {
			t.Fatal(err)
		}
		snap, _ := b.Snapshot(bg)
		if snap.Seq != 3 || PixelAt(snap.Pixels, 2) != 2 {
			t.Fatalf("the refused placement changed the board: seq %d, pixels %x", snap.Seq, snap.Pixels)
		}
		// A short cooldown ends.
		if _, err := b.Place(bg, PlaceOp{UserID: "w", Cooldown: 30 * time.Millisecond, Deltas: one(1, 1)}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(40 * time.Millisecond)
		if _, err := b.Place(bg, PlaceOp{UserID: "w", Cooldown: 30 * time.Millisecond, Deltas: one(1, 1)}); err != nil {
			t.Fatalf("after the cooldown ended: %v", err)
		}
	})
}

// One user racing on several replicas gets exactly one placement through.
func TestBoardCooldownAcrossReplicas(t *testing.T) {
	forBoards(t, func(t *testing.T, mk boardMaker) {
		open, _ := mk(t, 4, 4, 1000, emptyHistory(4, 4))
		replicas := []Board{open(), open(), open(), open()}
		for round := range 5 {
			user := uuid.NewString()
			var ok, refused atomic.Int32
			var wg sync.WaitGroup
			for i := range 16 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, err := replicas[i%len(replicas)].Place(bg, PlaceOp{UserID: user, Cooldown: time.Hour, Deltas: one(i, 1)})
					var cd *CooldownError
					switch {
					case err == nil:
						ok.Add(1)
					case errors.As(err, &cd):
						refused.Add(1)
					default:
						t.Error(err)
					}
				}()
			}
			wg.Wait()
			if ok.Load() != 1 || refused.Load() != 15 {
				t.Fatalf("round %d: %d placed, %d refused; want 1 and 15", round, ok.Load(), refused.Load())
			}
		}
	})
}

// Every snapshot, taken while placements pour in, is exactly the log
// applied up to its seq: the bitmap and the seq are read as one.
func TestBoardSnapshotIsConsistent(t *testing.T) {
	forBoards(t, func(t *testing.T, mk boardMaker) {
		const w, h = 8, 8
		open, _ := mk(t, w, h, 100_000, emptyHistory(w, h))
		b := open()
		ctx, cancel := context.WithCancel(bg)
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ctx.Err() == nil; i++ {
					// Every placement paints the same two pixels, so a torn
					// read (bitmap and seq from different moments) shows.
					c := int32((i*4 + g) % 16)
					if _, err := b.Place(ctx, PlaceOp{UserID: "u", Deltas: append(one(0, c), one(63, c)...)}); err != nil && ctx.Err() == nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		var snaps []Snapshot
		for len(snaps) < 30 {
			s, err := b.Snapshot(bg)
			if err != nil {
				t.Fatal(err)
			}
			if s.Seq > 0 {
				snaps = append(snaps, s)
			}
		}
		cancel()
		wg.Wait()
		log := readLog(t, b, 0)
		for _, s := range snaps {
			want := make([]byte, boardBytes(w, h))
			ApplyDeltas(want, w*h, log[:s.Seq*DeltaSize])
			if !bytes.Equal(s.Pixels, want) {
				t.Fatalf("snapshot at seq %d is %x; the log up to it gives %x", s.Seq, s.Pixels, want)
			}
		}
	})
}

// readLog reads every delta after seq after; it must be contiguous.
func readLog(t *testing.T, b Board, after int64) []byte {
	t.Helper()
	var out []byte
	for {
		runs, err := b.Tail(bg, after, 1000, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(runs) == 0 {
			return out
		}
		for _, r := range runs {
			if r.First != after+1 {
				t.Fatalf("log run starts at %d, want %d", r.First, after+1)
			}
			out = append(out, r.Deltas...)
			after = r.Last()
		}
	}
}

func TestBoardTail(t *testing.T) {
	forBoards(t, func(t *testing.T, mk boardMaker) {
		open, _ := mk(t, 100, 100, 1000, emptyHistory(100, 100))
		writer, reader := open(), open()
		if runs, err := reader.Tail(bg, 0, 100, 0); err != nil || len(runs) != 0 {
			t.Fatalf("empty log: %v, %v", runs, err)
		}
		// A waiting reader is woken by a placement on another replica.
		got := make(chan []Run, 1)
		go func() {
			runs, err := reader.Tail(bg, 0, 100, 5*time.Second)
			if err != nil {
				t.Error(err)
			}
			got <- runs
		}()
		time.Sleep(20 * time.Millisecond)
		if _, err := writer.Place(bg, PlaceOp{UserID: "a", Deltas: append(one(5, 1), one(6, 2)...)}); err != nil {
			t.Fatal(err)
		}
		runs := <-got
		if len(runs) != 1 || runs[0].First != 1 || runs[0].Last() != 2 || !bytes.Equal(runs[0].Deltas, append(one(5, 1), one(6, 2)...)) {
			t.Fatalf("woken reader got %+v", runs)
		}
		for i := range 10 {
			if _, err := writer.Place(bg, PlaceOp{UserID: "a", Deltas: one(i, 3)}); err != nil {
				t.Fatal(err)
			}
		}
		all := readLog(t, reader, 2)
		if len(all) != 10*DeltaSize {
			t.Fatalf("%d bytes after seq 2, want 10 deltas", len(all))
		}
		// Waiting for nothing times out empty.
		start := time.Now()
		if runs, err := reader.Tail(bg, 12, 100, 50*time.Millisecond); err != nil || len(runs) != 0 || time.Since(start) < 40*time.Millisecond {
			t.Fatalf("idle wait: %v, %v after %v", runs, err, time.Since(start))
		}
		// A wait ends at the context's deadline.
		ctx, cancel := context.WithTimeout(bg, 30*time.Millisecond)
		defer cancel()
		if _, err := reader.Tail(ctx, 12, 100, 10*time.Second); err == nil {
			t.Fatal("cancelled wait returned no error")
		}
		// Cancelling ends a long wait (a closing feed does not sit out the
		// rest of it: stopping a server took a whole batch interval).
		ctx, cancel = context.WithCancel(bg)
		time.AfterFunc(20*time.Millisecond, cancel)
		start = time.Now()
		if _, err := reader.Tail(ctx, 12, 100, time.Minute); !errors.Is(err, context.Canceled) || time.Since(start) > 30*time.Second {
			t.Fatalf("a wait of a minute cancelled after 20 ms: %v after %v", err, time.Since(start))
		}
	})
}

// The log keeps about retain deltas: older ones are gone, and a reader
// asking for them sees the gap (its first run starts later).
func TestBoardLogTrims(t *testing.T) {
	forBoards(t, func(t *testing.T, mk boardMaker) {
		open, _ := mk(t, 100, 100, 5000, emptyHistory(100, 100))
		b := open()
		for range 20 {
			deltas := make([]byte, 0, MaxRun*DeltaSize)
			for i := range 1000 {
				deltas = PackDelta(deltas, i, 1)
			}
			if _, err := b.Place(bg, PlaceOp{UserID: "admin", Deltas: deltas}); err != nil {
				t.Fatal(err)
			}
		}
		runs, err := b.Tail(bg, 0, 100, 0)
		if err != nil || len(runs) == 0 {
			t.Fatalf("tail from 0: %v, %v", runs, err)
		}
		if runs[0].First <= 1 || runs[0].First > 20000-5000+1 {
			t.Fatalf("oldest retained delta %d: want trimmed to about the newest 5000 of 20000", runs[0].First)
		}
	})
}

// A Redis that lost the board (flushed, restarted empty) gets it back from
// history on the next call, in a new epoch.
func TestRedisBoardRebuildsFromHistory(t *testing.T) {
	const w, h = 10, 10
	history := make([]byte, boardBytes(w, h))
	setPixel(history, 42, 7)
	var rebuilds atomic.Int32
	rebuild := func(context.Context) (int64, []byte, error) {
		rebuilds.Add(1)
		return 500, append([]byte(nil), history...), nil
	}
	open, flush := redisMaker(t, w, h, 1000, rebuild)
	a, b := open(), open()
	snap, err := a.Snapshot(bg)
	if err != nil || snap.Seq != 500 || PixelAt(snap.Pixels, 42) != 7 {
		t.Fatalf("first snapshot: seq %d, %v", snap.Seq, err)
	}
	p, err := b.Place(bg, PlaceOp{UserID: "u", Deltas: one(1, 2)})
	if err != nil || p.First != 501 {
		t.Fatalf("placement after rebuild: %+v, %v (want seq 501: numbering continues history's)", p, err)
	}
	if rebuilds.Load() != 1 {
		t.Fatalf("%d rebuilds, want 1", rebuilds.Load())
	}
	flush()
	p, err = a.Place(bg, PlaceOp{UserID: "u", Deltas: one(1, 3)})
	if err != nil || p.First != 501 {
		t.Fatalf("placement after Redis lost the board: %+v, %v", p, err)
	}
	snap2, err := b.Snapshot(bg)
	if err != nil || snap2.Epoch == snap.Epoch || PixelAt(snap2.Pixels, 42) != 7 || PixelAt(snap2.Pixels, 1) != 3 {
		t.Fatalf("after the rebuild: %+v %v; want a new epoch with history's pixel and the new one", snap2, err)
	}
}

// With Redis unreachable, calls fail fast with ErrUnavailable.
func TestRedisBoardUnavailable(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 200 * time.Millisecond, MaxRetries: -1})
	defer c.Close()
	b := NewRedisBoard(c, uuid.NewString(), 4, 4, 1000, emptyHistory(4, 4), slog.Default())
	if _, err := b.Place(bg, PlaceOp{UserID: "u", Deltas: one(1, 1)}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Place: %v, want ErrUnavailable", err)
	}
	if _, err := b.Snapshot(bg); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Snapshot: %v", err)
	}
	if _, err := b.Tail(bg, 0, 10, 0); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Tail: %v", err)
	}
}
