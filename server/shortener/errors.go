package shortener

import (
	"context"
	"errors"
	"net/http"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/apiplatform/platform/server/platform/apierr"
	"github.com/apiplatform/platform/server/platform/ratelimit"
	"github.com/apiplatform/platform/server/platform/wire"
)

// gone is NOT_FOUND with reason GONE (what gRPC clients see), answered 410
// over HTTP.
func gone(ctx context.Context, state string) error {
	wire.SetStatus(ctx, http.StatusGone)
	st, err := status.New(codes.NotFound, "short link "+state).WithDetails(&errdetails.ErrorInfo{
		Reason: ReasonGone, Domain: apierr.Domain, Metadata: map[string]string{"state": state},
	})
	if err != nil {
		panic(err)
	}
	return st.Err()
}

// ReasonGone is the ErrorInfo reason of a NOT_FOUND for a link that existed
// and was deleted or expired.
const ReasonGone = "GONE"

var errNoLink = apierr.NotFound("no such short link")

// live resolves code to a link that may be followed. It answers the HTTP
// status a refusal maps to (404 missing, 410 deleted or expired; 0 for
// other errors) so that callers can count it.
func (s *Service) live(ctx context.Context, code string) (*entry, int, error) {
	if !codeRE.MatchString(code) {
		return nil, http.StatusNotFound, errNoLink
	}
	e, err := s.resolve(ctx, code)
	if err != nil {
		return nil, 0, apierr.FromStorage(ctx, err, "no such short link")
	}
	switch {
	case e.Missing:
		return nil, http.StatusNotFound, errNoLink
	case e.Deleted:
		return nil, http.StatusGone, gone(ctx, "deleted")
	case e.expired(s.now()):
		return nil, http.StatusGone, gone(ctx, "expired")
	}
	return e, 0, nil
}

func (s *Service) storeErr(ctx context.Context, err error) error {
	if errors.Is(err, ErrDeleted) {
		return gone(ctx, "deleted")
	}
	return apierr.FromStorage(ctx, err, "no such short link")
}

func validCode(code string) error {
	if !codeRE.MatchString(code) {
		return apierr.InvalidArgument("code", "must be 1 to 32 letters, digits, '-' or '_'")
	}
	return nil
}

func (s *Service) limit(ctx context.Context, key string, l ratelimit.Limit, msg string) error {
	return ratelimit.Check(ctx, s.limiter, key, l, msg, "RATE_LIMITED")
}
