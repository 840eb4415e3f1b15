package canvas

import (
	"time"

	canvasv1 "github.com/apiplatform/platform/gen/go/canvas/v1"
	"github.com/apiplatform/platform/server/platform/apierr"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// DefaultHeartbeat is the longest a stream stays silent unless configured:
// under the idle timeouts of common proxies and load balancers (30–60 s).
const DefaultHeartbeat = 15 * time.Second

// streamStart is where a StreamPixels request starts: after after_seq when
// set (0 included), after since_seq when positive, else from now. Both at
// once would be two answers to one question, so that is refused.
func streamStart(req *canvasv1.StreamPixelsRequest) (int64, error) {
	var v apierr.Validator
	v.Check(req.GetSinceSeq() >= 0, "since_seq", "must be 0 (from now) or a sequence number the server sent")
	if req.AfterSeq != nil {
		v.Check(req.GetAfterSeq() >= 0, "after_seq", "must be a sequence number the server sent, or 0")
		v.Check(req.GetSinceSeq() == 0, "since_seq", "must not be set together with after_seq")
	}
	if err := v.Err(); err != nil {
		return 0, err
	}
	switch {
	case req.AfterSeq != nil:
		return req.GetAfterSeq(), nil
	case req.GetSinceSeq() > 0:
		return req.GetSinceSeq(), nil
	}
	return FromNow, nil
}

// StreamPixels implements CanvasService.
func (s *Service) StreamPixels(req *canvasv1.StreamPixelsRequest, stream canvasv1.CanvasService_StreamPixelsServer) error {
	after, err := streamStart(req)
	if err != nil {
		return err
	}
	ctx := stream.Context()
	err = s.feed.serve(ctx, after, stream.Send)
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return status.FromContextError(ctx.Err()).Err()
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	return status.Error(codes.Unavailable, "stream interrupted")
}
