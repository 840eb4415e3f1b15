package canvas

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// Board is the live state every replica shares: the 4-bit bitmap, the
// global sequence, the cooldowns and a bounded log of recent deltas. Redis
// holds it in production (NewRedisBoard); NewMemoryBoard is its in-process
// twin for a single process.
//
// A placement assigns sequence numbers, writes the bitmap, appends the
// deltas to the log and starts the cooldown in one atomic step, so the log
// has no holes, the bitmap at sequence n is exactly the log applied up to n,
// and two replicas never both let one user through.
type Board interface {
	// Place applies op atomically. It returns a *CooldownError when the
	// user is cooling down (nothing applied) and an error wrapping
	// ErrUnavailable when the board cannot be reached.
	Place(ctx context.Context, op PlaceOp) (Placed, error)
	// Snapshot returns the bitmap with the sequence number it is current to,
	// read atomically.
	Snapshot(ctx context.Context) (Snapshot, error)
	// Head returns the newest sequence number and the board's epoch.
	Head(ctx context.Context) (seq int64, epoch string, err error)
	// Tail returns logged runs whose first sequence number is above after,
	// oldest first, at most max deltas' worth (at least one run when there
	// is any), waiting up to wait for one to arrive (0: no wait); a wait
	// that ctx ends returns ctx's error. Runs that were trimmed from the
	// log are simply absent: the caller sees the gap.
	Tail(ctx context.Context, after int64, max int, wait time.Duration) ([]Run, error)
}

// ErrUnavailable: the live board cannot be reached (Redis down).
var ErrUnavailable = errors.New("canvas: live board unavailable")

// CooldownError refuses a placement made before the user's cooldown ended.
type CooldownError struct{ RetryAfter time.Duration }

func (e *CooldownError) Error() string {
	return fmt.Sprintf("canvas: cooling down for another %v", e.RetryAfter)
}

// PlaceOp is one atomic placement: a user's pixel, or a chunk of an
// admin's cleared rectangle.
type PlaceOp struct {
	UserID string
	// Cooldown starts for UserID when the placement is accepted; 0: none
	// (and no cooldown is checked).
	Cooldown time.Duration
	// Deltas are packed (see PackDelta), at most MaxRun of them, placed in
	// order: they get consecutive sequence numbers.
	Deltas []byte
}

// Placed tells which sequence numbers a placement got.
type Placed struct {
	First, Last int64
	Epoch       string // of the board that applied it ("" in process)
}

// Snapshot is the bitmap at a sequence number.
type Snapshot struct {
	// Epoch changes whenever the board is rebuilt from history (a new
	// process for the in-process board, a Redis that lost its data): the
	// same Seq in two epochs need not mean the same board.
	Epoch  string
	Seq    int64
	Pixels []byte // 4 bits a pixel, high nibble first
}

// Run is a stretch of the delta log: consecutive sequence numbers from
// First, one packed delta each.
type Run struct {
	Epoch  string
	First  int64
	Deltas []byte
}

// Last is the sequence number of the run's last delta.
func (r Run) Last() int64 { return r.First + int64(len(r.Deltas)/DeltaSize) - 1 }

// DeltaSize is the bytes of one packed delta.
const DeltaSize = 4

// MaxRun bounds the deltas of one PlaceOp: an admin's rectangle is placed
// in chunks so that no single atomic step holds the board for long.
const MaxRun = 4096

// PackDelta encodes a placement as the stream carries it: one
// little-endian uint32, (pixel index << 4) | colour.
func PackDelta(dst []byte, idx int, color int32) []byte {
	return binary.LittleEndian.AppendUint32(dst, uint32(idx)<<4|uint32(color)&0xF)
}

// UnpackDelta decodes one packed delta.
func UnpackDelta(b []byte) (idx int, color int32) {
	v := binary.LittleEndian.Uint32(b)
	return int(v >> 4), int32(v & 0xF)
}

// boardBytes is the size of a w×h bitmap at 4 bits a pixel.
func boardBytes(w, h int) int { return (w*h + 1) / 2 }

// setPixel writes colour c at pixel i: high nibble for even i.
func setPixel(pixels []byte, i int, c byte) {
	if i%2 == 0 {
		pixels[i/2] = pixels[i/2]&0x0F | c<<4
	} else {
		pixels[i/2] = pixels[i/2]&0xF0 | c&0x0F
	}
}

// PixelAt reads the colour of pixel i of a packed bitmap.
func PixelAt(pixels []byte, i int) byte {
	if i%2 == 0 {
		return pixels[i/2] >> 4
	}
	return pixels[i/2] & 0x0F
}

// ApplyDeltas applies packed deltas to a bitmap of n pixels, ignoring any
// outside it.
func ApplyDeltas(pixels []byte, n int, deltas []byte) {
	for i := 0; i+DeltaSize <= len(deltas); i += DeltaSize {
		idx, c := UnpackDelta(deltas[i:])
		if idx < n {
			setPixel(pixels, idx, byte(c))
		}
	}
}

func newEpoch() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Rebuild returns the board as history has it: the newest placement of
// every pixel, and the highest sequence number placed.
type Rebuild func(ctx context.Context) (seq int64, pixels []byte, err error)

// rebuildFrom builds a Rebuild over the history of store for a w×h board.
// Placements outside the board cannot exist (dimensions are fixed per
// canvas) but are skipped rather than trusted.
func rebuildFrom(store Store, w, h int) Rebuild {
	return func(ctx context.Context) (int64, []byte, error) {
		pixels := make([]byte, boardBytes(w, h))
		var seq int64
		err := store.LatestPixels(ctx, func(p Placement) error {
			seq = max(seq, p.Seq)
			if p.X >= 0 && p.Y >= 0 && int(p.X) < w && int(p.Y) < h && p.Color >= 0 && p.Color < 16 {
				setPixel(pixels, int(p.Y)*w+int(p.X), byte(p.Color))
			}
			return nil
		})
		return seq, pixels, err
	}
}
