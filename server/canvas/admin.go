package canvas

import (
	"context"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	canvasv1 "github.com/apiplatform/platform/gen/go/canvas/v1"
	"github.com/apiplatform/platform/server/platform/apierr"
	"github.com/apiplatform/platform/server/platform/auth"
	"github.com/apiplatform/platform/server/platform/text"
)

// checkUserID validates a user id field and returns its canonical form.
func checkUserID(id string) (string, error) {
	u, err := uuid.Parse(id)
	if err != nil || len(id) != 36 {
		return "", apierr.InvalidArgument("user_id", "must be a user id (a UUID)")
	}
	return u.String(), nil
}

const maxReasonRunes = 500

// BanUser implements CanvasService.
func (s *Service) BanUser(ctx context.Context, req *canvasv1.BanUserRequest) (*canvasv1.BanUserResponse, error) {
	admin, err := auth.Require(ctx)
	if err != nil {
		return nil, err
	}
	userID, err := checkUserID(req.GetUserId())
	if err != nil {
		return nil, err
	}
	if r := req.GetReason(); utf8.RuneCountInString(r) > maxReasonRunes {
		return nil, apierr.InvalidArgument("reason", fmt.Sprintf("must be at most %d characters", maxReasonRunes))
	} else if p := text.DisplayProblem(r); p != "" {
		return nil, apierr.InvalidArgument("reason", p)
	}
	if s.users != nil {
		if _, err := s.users.GetUser(ctx, userID); err != nil {
			return nil, apierr.FromStorage(ctx, err, "no such user")
		}
	}
	err = s.store.BanUser(ctx, Ban{UserID: userID, BannedBy: admin.UserID, Reason: req.GetReason(), BannedAt: s.now().UTC().Truncate(time.Microsecond)})
	if err != nil {
		return nil, apierr.FromStorage(ctx, err, "")
	}
	s.log.InfoContext(ctx, "canvas: user banned", "user", userID, "by", admin.UserID)
	return &canvasv1.BanUserResponse{}, nil
}

// UnbanUser implements CanvasService.
func (s *Service) UnbanUser(ctx context.Context, req *canvasv1.UnbanUserRequest) (*canvasv1.UnbanUserResponse, error) {
	userID, err := checkUserID(req.GetUserId())
	if err != nil {
		return nil, err
	}
	if err := s.store.UnbanUser(ctx, userID); err != nil {
		return nil, apierr.FromStorage(ctx, err, "user is not banned")
	}
	return &canvasv1.UnbanUserResponse{}, nil
}

// ClearRect implements CanvasService. The rectangle is placed in chunks of
// MaxRun pixels, each atomic and in history before the next; other users'
// placements may land between chunks (and win over the clear where they
// come later). If a chunk fails, the chunks before it stay applied:
// repeating the call finishes the job.
func (s *Service) ClearRect(ctx context.Context, req *canvasv1.ClearRectRequest) (*canvasv1.ClearRectResponse, error) {
	admin, err := auth.Require(ctx)
	if err != nil {
		return nil, err
	}
	x, y, rw, rh := int64(req.GetX()), int64(req.GetY()), int64(req.GetWidth()), int64(req.GetHeight())
	var v apierr.Validator
	s.checkXY(&v, req.GetX(), req.GetY())
	v.Check(rw >= 1 && x+rw <= int64(s.w), "width", fmt.Sprintf("must be at least 1, with x+width at most %d", s.w))
	v.Check(rh >= 1 && y+rh <= int64(s.h), "height", fmt.Sprintf("must be at least 1, with y+height at most %d", s.h))
	checkColor(&v, req.GetColor())
	if rw >= 1 && rh >= 1 {
		v.Check(rw*rh <= int64(s.cfg.MaxClearArea), "width", fmt.Sprintf("width×height must be at most %d pixels", s.cfg.MaxClearArea))
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	resp := &canvasv1.ClearRectResponse{}
	deltas := make([]byte, 0, MaxRun*DeltaSize)
	rows := make([]Placement, 0, MaxRun)
	flush := func() error {
		placed, err := s.board.Place(ctx, PlaceOp{UserID: admin.UserID, Deltas: deltas})
		if err != nil {
			return s.placeError(ctx, err)
		}
		for i := range rows {
			rows[i].Seq = placed.First + int64(i)
		}
		if err := s.history.write(ctx, rows); err != nil {
			return s.historyError(ctx, placed, err)
		}
		if resp.FirstSeq == 0 {
			resp.FirstSeq = placed.First
		}
		resp.LastSeq = placed.Last
		deltas, rows = deltas[:0], rows[:0]
		return nil
	}
	for py := y; py < y+rh; py++ {
		for px := x; px < x+rw; px++ {
			deltas = PackDelta(deltas, int(py)*s.w+int(px), req.GetColor())
			rows = append(rows, Placement{X: int32(px), Y: int32(py), Color: req.GetColor(), UserID: admin.UserID, PlacedAt: now})
			if len(rows) == MaxRun {
				if err := flush(); err != nil {
					return nil, err
				}
			}
		}
	}
	if len(rows) > 0 {
		if err := flush(); err != nil {
			return nil, err
		}
	}
	s.log.InfoContext(ctx, "canvas: rectangle cleared", "by", admin.UserID, "x", x, "y", y, "width", rw, "height", rh,
		"first_seq", resp.FirstSeq, "last_seq", resp.LastSeq)
	return resp, nil
}
