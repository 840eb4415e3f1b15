package canvas

import (
	"context"
	"errors"
	"strconv"
	"time"

	"google.golang.org/genproto/googleapis/api/httpbody"

	canvasv1 "github.com/apiplatform/platform/gen/go/canvas/v1"
	"github.com/apiplatform/platform/server/platform/apierr"
	"github.com/apiplatform/platform/server/platform/wire"
)

type cachedPNG struct {
	etag string
	data []byte
}

// snapshot returns a recent board: the cached one while the board has not
// moved on, else a fresh read (one per replica at a time). With the board
// unreachable it serves the last one it had, or the board rebuilt from
// history: viewers keep a board while placements are refused.
func (s *Service) snapshot(ctx context.Context) (*Snapshot, error) {
	s.snapMu.Lock()
	cur, at := s.snap, s.snapAt
	s.snapMu.Unlock()
	if cur != nil && s.cfg.SnapshotMaxAge > 0 && s.now().Sub(at) < s.cfg.SnapshotMaxAge {
		return cur, nil
	}
	v, err, _ := s.snaps.Do("snapshot", func() (any, error) {
		// Detached: one caller giving up must not fail the others.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if cur != nil {
			seq, epoch, err := s.board.Head(ctx)
			if err != nil {
				return nil, err
			}
			if seq == cur.Seq && epoch == cur.Epoch {
				s.keepSnapshot(cur)
				return cur, nil
			}
		}
		snap, err := s.board.Snapshot(ctx)
		if err != nil {
			return nil, err
		}
		s.keepSnapshot(&snap)
		return &snap, nil
	})
	if err == nil {
		return v.(*Snapshot), nil
	}
	// A board too slow to answer within the deadline (Redis overloaded) is
	// as good as unreachable: viewers get the last board or the history.
	if !errors.Is(err, ErrUnavailable) && !errors.Is(err, context.DeadlineExceeded) {
		return nil, apierr.Internal(ctx, err)
	}
	if cur != nil {
		return cur, nil
	}
	v, err, _ = s.snaps.Do("history", func() (any, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		seq, pixels, err := rebuildFrom(s.store, s.w, s.h)(ctx)
		if err != nil {
			return nil, err
		}
		return &Snapshot{Epoch: "history", Seq: seq, Pixels: pixels}, nil
	})
	if err != nil {
		return nil, apierr.FromStorage(ctx, err, "")
	}
	return v.(*Snapshot), nil
}

func (s *Service) keepSnapshot(snap *Snapshot) {
	s.snapMu.Lock()
	if s.snap == nil || snap.Epoch != s.snap.Epoch || snap.Seq >= s.snap.Seq {
		s.snap, s.snapAt = snap, s.now()
	}
	s.snapMu.Unlock()
}

// GetSnapshot implements CanvasService.
func (s *Service) GetSnapshot(ctx context.Context, _ *canvasv1.GetSnapshotRequest) (*canvasv1.GetSnapshotResponse, error) {
	snap, err := s.snapshot(ctx)
	if err != nil {
		return nil, err
	}
	wire.SetHeader(ctx, "x-canvas-seq", strconv.FormatInt(snap.Seq, 10))
	return &canvasv1.GetSnapshotResponse{Width: s.cfg.Width, Height: s.cfg.Height, Seq: snap.Seq, Pixels: snap.Pixels}, nil
}

// boardCacheControl lets a CDN serve one copy to everyone for a second,
// and a second more while it refetches.
const boardCacheControl = "max-age=1, stale-while-revalidate=1"

func etagOf(snap *Snapshot, kind string) string {
	return `"` + snap.Epoch + "." + strconv.FormatInt(snap.Seq, 10) + kind + `"`
}

// boardHeaders sets the cache headers of a board representation and tells
// whether the client's copy is current (answer 304 then).
func boardHeaders(ctx context.Context, snap *Snapshot, etag string) (notModified bool) {
	return wire.NotModified(ctx, etag, "cache-control", boardCacheControl, "x-canvas-seq", strconv.FormatInt(snap.Seq, 10))
}

// GetBoard implements CanvasService.
func (s *Service) GetBoard(ctx context.Context, _ *canvasv1.GetBoardRequest) (*httpbody.HttpBody, error) {
	snap, err := s.snapshot(ctx)
	if err != nil {
		return nil, err
	}
	const ct = "application/octet-stream"
	if boardHeaders(ctx, snap, etagOf(snap, "")) {
		return &httpbody.HttpBody{ContentType: ct}, nil
	}
	return &httpbody.HttpBody{ContentType: ct, Data: snap.Pixels}, nil
}

// GetBoardImage implements CanvasService.
func (s *Service) GetBoardImage(ctx context.Context, _ *canvasv1.GetBoardImageRequest) (*httpbody.HttpBody, error) {
	snap, err := s.snapshot(ctx)
	if err != nil {
		return nil, err
	}
	const ct = "image/png"
	etag := etagOf(snap, ".png")
	if boardHeaders(ctx, snap, etag) {
		return &httpbody.HttpBody{ContentType: ct}, nil
	}
	s.snapMu.Lock()
	cached := s.png
	s.snapMu.Unlock()
	if cached.etag == etag {
		return &httpbody.HttpBody{ContentType: ct, Data: cached.data}, nil
	}
	v, err, _ := s.snaps.Do("png:"+etag, func() (any, error) {
		data, err := EncodePNG(snap.Pixels, s.w, s.h)
		if err == nil {
			s.snapMu.Lock()
			s.png = cachedPNG{etag: etag, data: data}
			s.snapMu.Unlock()
		}
		return data, err
	})
	if err != nil {
		return nil, apierr.Internal(ctx, err)
	}
	return &httpbody.HttpBody{ContentType: ct, Data: v.([]byte)}, nil
}
