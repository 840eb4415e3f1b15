package shortener

import (
	"context"
	"fmt"

	"github.com/apiplatform/platform/server/platform/apierr"
	"github.com/apiplatform/platform/server/platform/clientaddr"
	"github.com/apiplatform/platform/server/platform/ratelimit"
	"github.com/apiplatform/platform/server/platform/text"
	"github.com/apiplatform/platform/server/platform/wire"
)

// MinPasswordBytes is the shortest link password: a short one falls to a
// few thousand guesses, which the per-link limit allows within a day.
const MinPasswordBytes = 8

// passwordProblem describes what is wrong with a new link password ("" to
// remove one, on update), or "".
func passwordProblem(pw string) string {
	switch {
	case pw == "":
		return ""
	case len(pw) < MinPasswordBytes:
		return fmt.Sprintf("must be at least %d bytes (or empty for no password)", MinPasswordBytes)
	case len(pw) > MaxPasswordBytes:
		return fmt.Sprintf("must be at most %d bytes", MaxPasswordBytes)
	}
	return text.Problem(pw)
}

// limitGuesses admits one password guess for code: within the limit per
// client address (IPv6: per /64), and within the limit per link from all
// addresses together, so that guessing from many addresses gains nothing.
func (s *Service) limitGuesses(ctx context.Context, code string) error {
	msg := "too many password attempts; retry later"
	if err := s.limit(ctx, "short:pw:"+code+":"+clientaddr.Key(wire.FromContext(ctx).Addr), s.cfg.PasswordLimit, msg); err != nil {
		return err
	}
	return s.limit(ctx, "short:pwlink:"+code, s.cfg.PasswordLinkLimit, "too many password attempts on this link; retry later")
}

// limitCreates admits n new links for a user: a batch costs one token per
// item, so that batching does not multiply what the limit allows.
func (s *Service) limitCreates(ctx context.Context, userID string, n int) error {
	l := s.cfg.CreateLimit
	if n > l.Burst {
		return apierr.InvalidArgument("requests", fmt.Sprintf("must hold at most %d items (the number of links you may create at once)", l.Burst))
	}
	res, err := ratelimit.AllowN(ctx, s.limiter, "short:create:"+userID, l, n)
	if err != nil || res.Allowed {
		return nil // limiters fail open
	}
	return apierr.ResourceExhausted("too many links created; retry later", "RATE_LIMITED", res.RetryAfter)
}
