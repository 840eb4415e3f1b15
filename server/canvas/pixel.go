package canvas

import (
	"context"
	"errors"

	"google.golang.org/protobuf/types/known/timestamppb"

	canvasv1 "github.com/apiplatform/platform/gen/go/canvas/v1"
	"github.com/apiplatform/platform/server/platform/apierr"
	"github.com/apiplatform/platform/server/platform/clientaddr"
	"github.com/apiplatform/platform/server/platform/ratelimit"
	"github.com/apiplatform/platform/server/platform/storeerr"
	"github.com/apiplatform/platform/server/platform/wire"
)

// guestName is how the public sees a guest placer: guests have no name,
// and their id must not leave the server.
const guestName = "guest"

// GetPixel implements CanvasService.
func (s *Service) GetPixel(ctx context.Context, req *canvasv1.GetPixelRequest) (*canvasv1.GetPixelResponse, error) {
	var v apierr.Validator
	s.checkXY(&v, req.GetX(), req.GetY())
	if err := v.Err(); err != nil {
		return nil, err
	}
	if s.limiter != nil {
		key := "canvas:pixel:addr:" + clientaddr.Key(wire.FromContext(ctx).Addr)
		if err := ratelimit.Check(ctx, s.limiter, key, s.cfg.PixelLookupLimit, "too many pixel lookups; retry shortly", "RATE_LIMITED"); err != nil {
			return nil, err
		}
	}
	rows, err := s.store.PixelHistory(ctx, req.GetX(), req.GetY(), 0, 1)
	if err != nil {
		return nil, apierr.FromStorage(ctx, err, "")
	}
	resp := &canvasv1.GetPixelResponse{X: req.GetX(), Y: req.GetY()}
	if len(rows) == 0 {
		return resp, nil
	}
	r := rows[0]
	resp.Placed, resp.Seq, resp.Color, resp.Time = true, r.Seq, r.Color, timestamppb.New(r.PlacedAt)
	resp.Author, resp.AuthorKind, err = s.authorName(ctx, r.UserID)
	if err != nil {
		return nil, apierr.FromStorage(ctx, err, "")
	}
	return resp, nil
}

// authorName turns a placer's id into what the public may see of them.
func (s *Service) authorName(ctx context.Context, userID string) (string, canvasv1.AuthorKind, error) {
	if userID == NoAuthor {
		return "", canvasv1.AuthorKind_AUTHOR_KIND_DELETED, nil
	}
	if s.users == nil {
		return "", canvasv1.AuthorKind_AUTHOR_KIND_DELETED, nil
	}
	u, err := s.users.GetUser(ctx, userID)
	switch {
	case errors.Is(err, storeerr.ErrNotFound):
		// Deleted while its placements were still being forgotten.
		return "", canvasv1.AuthorKind_AUTHOR_KIND_DELETED, nil
	case err != nil:
		return "", 0, err
	case u.Guest:
		return guestName, canvasv1.AuthorKind_AUTHOR_KIND_GUEST, nil
	}
	return u.Username, canvasv1.AuthorKind_AUTHOR_KIND_USER, nil
}
