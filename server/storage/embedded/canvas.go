package embedded

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/apiplatform/platform/server/canvas"
	"github.com/apiplatform/platform/server/platform/storeerr"
)

// Canvas buckets.
var (
	bCanvasMeta       = []byte("canvas_meta")       // "meta" -> canvas.Meta
	bCanvasPlacements = []byte("canvas_placements") // seq (8, big-endian) -> placement record
	// x (4) | y (4) | ^seq (8) -> placement record: one pixel's history is a
	// key range, newest first.
	bCanvasPixels = []byte("canvas_pixel_history")
	bCanvasBans   = []byte("canvas_bans") // user id -> canvas.Ban
)

func init() {
	allBuckets = append(allBuckets, bCanvasMeta, bCanvasPlacements, bCanvasPixels, bCanvasBans)
}

var metaKey = []byte("meta")

// CanvasMeta implements canvas.Store.
func (s *Store) CanvasMeta(ctx context.Context, want canvas.Meta) (m canvas.Meta, err error) {
	err = s.update(ctx, func(tx *bolt.Tx) error {
		m, err = get[canvas.Meta](tx, bCanvasMeta, metaKey)
		if errors.Is(err, storeerr.ErrNotFound) {
			m = want
			return put(tx, bCanvasMeta, metaKey, m)
		}
		return err
	})
	return m, err
}

func seqKey(seq int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(seq)) }

func pixelPrefix(x, y int32) []byte {
	return binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(make([]byte, 0, 16), uint32(x)), uint32(y))
}

func pixelKey(x, y int32, seq int64) []byte {
	return binary.BigEndian.AppendUint64(pixelPrefix(x, y), ^uint64(seq))
}

// A placement record: seq (8) | x (4) | y (4) | colour (1) | time in µs (8)
// | user id (the rest).
func encodePlacement(p canvas.Placement) []byte {
	b := make([]byte, 0, 25+len(p.UserID))
	b = binary.BigEndian.AppendUint64(b, uint64(p.Seq))
	b = binary.BigEndian.AppendUint32(b, uint32(p.X))
	b = binary.BigEndian.AppendUint32(b, uint32(p.Y))
	b = append(b, byte(p.Color))
	b = binary.BigEndian.AppendUint64(b, uint64(p.PlacedAt.UnixMicro()))
	return append(b, p.UserID...)
}

// samePlacement compares a stored record with a new one but for the time
// placed (a retried batch carries the same rows; a reused seq carries
// another user's pixel). A stored row whose author was forgotten since
// (ForgetAuthor) still matches its retry.
func samePlacement(stored, b []byte) bool {
	return len(stored) >= 25 && len(b) >= 25 && bytes.Equal(stored[:17], b[:17]) &&
		(bytes.Equal(stored[25:], b[25:]) || string(stored[25:]) == canvas.NoAuthor)
}

func decodePlacement(b []byte) (canvas.Placement, error) {
	if len(b) < 25 {
		return canvas.Placement{}, errors.New("embedded: short canvas placement record")
	}
	return canvas.Placement{
		Seq:      int64(binary.BigEndian.Uint64(b)),
		X:        int32(binary.BigEndian.Uint32(b[8:])),
		Y:        int32(binary.BigEndian.Uint32(b[12:])),
		Color:    int32(b[16]),
		PlacedAt: time.UnixMicro(int64(binary.BigEndian.Uint64(b[17:]))).UTC(),
		UserID:   string(b[25:]),
	}, nil
}

// AppendPlacements implements canvas.Store: the whole batch in one
// transaction, one fsync.
func (s *Store) AppendPlacements(ctx context.Context, ps []canvas.Placement) error {
	taken := 0
	err := s.update(ctx, func(tx *bolt.Tx) error {
		taken = 0 // the closure may run again
		all, pixels := tx.Bucket(bCanvasPlacements), tx.Bucket(bCanvasPixels)
		for _, p := range ps {
			if p.X < 0 || p.Y < 0 || p.Color < 0 || p.Color > 15 {
				return errors.New("embedded: placement out of range")
			}
			k := seqKey(p.Seq)
			rec := encodePlacement(p)
			if old := all.Get(k); old != nil {
				if !samePlacement(old, rec) {
					taken++
				}
				continue
			}
			if err := all.Put(k, rec); err != nil {
				return err
			}
			if err := pixels.Put(pixelKey(p.X, p.Y, p.Seq), rec); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil && taken > 0 {
		err = fmt.Errorf("%w: %d of %d", canvas.ErrSeqTaken, taken, len(ps))
	}
	return err
}

// PixelHistory implements canvas.Store.
func (s *Store) PixelHistory(ctx context.Context, x, y int32, beforeSeq int64, limit int) (out []canvas.Placement, err error) {
	if x < 0 || y < 0 || limit <= 0 {
		return nil, nil
	}
	prefix := pixelPrefix(x, y)
	start := prefix
	if beforeSeq > 0 {
		start = pixelKey(x, y, beforeSeq-1)
	}
	err = s.view(ctx, func(tx *bolt.Tx) error {
		c := tx.Bucket(bCanvasPixels).Cursor()
		for k, v := c.Seek(start); k != nil && bytes.HasPrefix(k, prefix) && len(out) < limit; k, v = c.Next() {
			p, err := decodePlacement(v)
			if err != nil {
				return err
			}
			out = append(out, p)
		}
		return nil
	})
	return out, err
}

// LatestPixels implements canvas.Store: the first key of each pixel's
// range is its newest placement; the cursor then jumps to the next pixel.
func (s *Store) LatestPixels(ctx context.Context, fn func(canvas.Placement) error) error {
	return s.view(ctx, func(tx *bolt.Tx) error {
		c := tx.Bucket(bCanvasPixels).Cursor()
		for k, v := c.First(); k != nil; {
			p, err := decodePlacement(v)
			if err != nil {
				return err
			}
			if err := fn(p); err != nil {
				return err
			}
			xy := binary.BigEndian.Uint64(k[:8])
			if xy == ^uint64(0) {
				break
			}
			k, v = c.Seek(binary.BigEndian.AppendUint64(nil, xy+1))
		}
		return nil
	})
}

// BanUser implements canvas.Store.
func (s *Store) BanUser(ctx context.Context, b canvas.Ban) error {
	return s.update(ctx, func(tx *bolt.Tx) error { return put(tx, bCanvasBans, []byte(b.UserID), b) })
}

// UnbanUser implements canvas.Store.
func (s *Store) UnbanUser(ctx context.Context, userID string) error {
	return s.update(ctx, func(tx *bolt.Tx) error {
		bans := tx.Bucket(bCanvasBans)
		if bans.Get([]byte(userID)) == nil {
			return storeerr.ErrNotFound
		}
		return bans.Delete([]byte(userID))
	})
}

// IsBanned implements canvas.Store.
func (s *Store) IsBanned(ctx context.Context, userID string, now time.Time) (banned bool, err error) {
	err = s.view(ctx, func(tx *bolt.Tx) error {
		b, err := get[canvas.Ban](tx, bCanvasBans, []byte(userID))
		if errors.Is(err, storeerr.ErrNotFound) {
			return nil
		}
		banned = err == nil && (b.ExpiresAt.IsZero() || now.Before(b.ExpiresAt))
		return err
	})
	return banned, err
}

// ForgetAuthor implements canvas.Store. Placements are not indexed by user:
// the one-process store scans its history once, in one transaction.
func (s *Store) ForgetAuthor(ctx context.Context, userID string) error {
	if userID == canvas.NoAuthor {
		return nil
	}
	return s.update(ctx, func(tx *bolt.Tx) error {
		all, pixels := tx.Bucket(bCanvasPlacements), tx.Bucket(bCanvasPixels)
		var mine []canvas.Placement
		err := all.ForEach(func(_, v []byte) error {
			p, err := decodePlacement(v)
			if err == nil && p.UserID == userID {
				mine = append(mine, p)
			}
			return err
		})
		if err != nil {
			return err
		}
		// Rewritten after the scan: bbolt forbids writes under ForEach.
		for _, p := range mine {
			p.UserID = canvas.NoAuthor
			rec := encodePlacement(p)
			if err := all.Put(seqKey(p.Seq), rec); err != nil {
				return err
			}
			if err := pixels.Put(pixelKey(p.X, p.Y, p.Seq), rec); err != nil {
				return err
			}
		}
		return tx.Bucket(bCanvasBans).Delete([]byte(userID))
	})
}
