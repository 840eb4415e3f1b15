package canvas

import (
	"context"
	"encoding/base64"
	"strconv"

	"google.golang.org/protobuf/types/known/timestamppb"

	canvasv1 "github.com/apiplatform/platform/gen/go/canvas/v1"
	"github.com/apiplatform/platform/server/platform/apierr"
)

// ListPixelHistory implements CanvasService.
func (s *Service) ListPixelHistory(ctx context.Context, req *canvasv1.ListPixelHistoryRequest) (*canvasv1.ListPixelHistoryResponse, error) {
	var v apierr.Validator
	s.checkXY(&v, req.GetX(), req.GetY())
	size := int(req.GetPageSize())
	v.Check(size >= 0 && size <= 100, "page_size", "must be 0 to 100")
	before, ok := decodeCursor(req.GetPageToken())
	v.Check(ok, "page_token", "is not a token this API returned")
	if err := v.Err(); err != nil {
		return nil, err
	}
	if size == 0 {
		size = 50
	}
	// One extra row tells whether there is a next page.
	rows, err := s.store.PixelHistory(ctx, req.GetX(), req.GetY(), before, size+1)
	if err != nil {
		return nil, apierr.FromStorage(ctx, err, "")
	}
	resp := &canvasv1.ListPixelHistoryResponse{}
	if len(rows) > size {
		rows = rows[:size]
		resp.NextPageToken = encodeCursor(rows[size-1].Seq)
	}
	for _, r := range rows {
		resp.Placements = append(resp.Placements, &canvasv1.Placement{
			Seq: r.Seq, X: r.X, Y: r.Y, Color: r.Color, UserId: r.UserID, Time: timestamppb.New(r.PlacedAt),
		})
	}
	return resp, nil
}

func encodeCursor(seq int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(seq, 10)))
}

func decodeCursor(tok string) (int64, bool) {
	if tok == "" {
		return 0, true
	}
	if len(tok) > 32 {
		return 0, false
	}
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return 0, false
	}
	seq, err := strconv.ParseInt(string(b), 10, 64)
	return seq, err == nil && seq > 0
}
