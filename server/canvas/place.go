package canvas

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	canvasv1 "github.com/apiplatform/platform/gen/go/canvas/v1"
	"github.com/apiplatform/platform/server/platform/apierr"
	"github.com/apiplatform/platform/server/platform/auth"
)

func (s *Service) checkXY(v *apierr.Validator, x, y int32) {
	v.Check(x >= 0 && int(x) < s.w, "x", fmt.Sprintf("must be 0 to %d", s.w-1))
	v.Check(y >= 0 && int(y) < s.h, "y", fmt.Sprintf("must be 0 to %d", s.h-1))
}

func checkColor(v *apierr.Validator, c int32) {
	v.Check(c >= 0 && c < int32(len(Palette)), "color", fmt.Sprintf("must be a palette index, 0 to %d", len(Palette)-1))
}

// PlacePixel implements CanvasService.
func (s *Service) PlacePixel(ctx context.Context, req *canvasv1.PlacePixelRequest) (*canvasv1.PlacePixelResponse, error) {
	p, err := auth.Require(ctx)
	if err != nil {
		return nil, err
	}
	var v apierr.Validator
	s.checkXY(&v, req.GetX(), req.GetY())
	checkColor(&v, req.GetColor())
	if err := v.Err(); err != nil {
		placements.WithLabelValues("invalid").Inc()
		return nil, err
	}
	if err := s.checkBan(ctx, p.UserID); err != nil {
		return nil, err
	}
	now := s.now().UTC()
	idx := int(req.GetY())*s.w + int(req.GetX())
	placed, err := s.board.Place(ctx, PlaceOp{UserID: p.UserID, Cooldown: s.cfg.Cooldown, Deltas: PackDelta(nil, idx, req.GetColor())})
	if err != nil {
		return nil, s.placeError(ctx, err)
	}
	row := Placement{Seq: placed.First, X: req.GetX(), Y: req.GetY(), Color: req.GetColor(), UserID: p.UserID, PlacedAt: now.Truncate(time.Microsecond)}
	if err := s.history.write(ctx, []Placement{row}); err != nil {
		return nil, s.historyError(ctx, placed, err)
	}
	placements.WithLabelValues("placed").Inc()
	return &canvasv1.PlacePixelResponse{Seq: placed.First, NextPlacementTime: timestamppb.New(now.Add(s.cfg.Cooldown))}, nil
}

func (s *Service) checkBan(ctx context.Context, userID string) error {
	banned, err := s.store.IsBanned(ctx, userID, s.now())
	if err != nil {
		return apierr.FromStorage(ctx, err, "")
	}
	if banned {
		placements.WithLabelValues("banned").Inc()
		return apierr.PermissionDenied("you are banned from the canvas")
	}
	return nil
}

func (s *Service) placeError(ctx context.Context, err error) error {
	var cd *CooldownError
	switch {
	case errors.As(err, &cd):
		placements.WithLabelValues("cooldown").Inc()
		secs := int64((cd.RetryAfter + time.Second - 1) / time.Second)
		return apierr.ResourceExhausted(fmt.Sprintf("one pixel per %v: you may place again in %d s", s.cfg.Cooldown, secs), "CANVAS_COOLDOWN", cd.RetryAfter)
	case errors.Is(err, ErrUnavailable):
		placements.WithLabelValues("unavailable").Inc()
		s.log.WarnContext(ctx, "canvas: placement refused, board unreachable", "err", err)
		return apierr.Unavailable("placements are paused: the live board is unreachable; the board and its history stay readable", 5*time.Second)
	case ctx.Err() != nil:
		return status.FromContextError(ctx.Err()).Err()
	}
	return apierr.Internal(ctx, err)
}

// historyError answers a placement whose history row could not be written.
// The pixel is on the board already: the client is told it failed, which
// is the truth for the history the acknowledgement promises.
func (s *Service) historyError(ctx context.Context, placed Placed, err error) error {
	if errors.Is(err, ErrSeqTaken) {
		return s.reseat(ctx, placed, err)
	}
	placements.WithLabelValues("history_failed").Inc()
	if ctx.Err() != nil { // the caller gave up; the write may still land
		return status.FromContextError(ctx.Err()).Err()
	}
	s.log.ErrorContext(ctx, "canvas: placement applied to the board but its history row was not written", "err", err)
	return apierr.FromStorage(ctx, err, "")
}
