package identity

import (
	"context"
	"errors"
	"fmt"

	identityv1 "github.com/apiplatform/platform/gen/go/identity/v1"
	"github.com/apiplatform/platform/server/platform/apierr"
	"github.com/apiplatform/platform/server/platform/auth"
	"github.com/apiplatform/platform/server/platform/clientaddr"
	"github.com/apiplatform/platform/server/platform/password"
	"github.com/apiplatform/platform/server/platform/storeerr"
	"github.com/apiplatform/platform/server/platform/wire"
)

// Eraser is a service that keeps a user's personal data and erases it
// when the account is deleted. ForgetUser must be idempotent: a deletion
// that failed half-way is finished by calling it again.
type Eraser interface {
	ForgetUser(ctx context.Context, userID string) error
}

// EraseWith names the services DeleteAccount erases, in order. The
// application calls it once every service is built (identity is built
// before the services that depend on its sessions).
func (s *Service) EraseWith(erasers ...Eraser) { s.erasers = erasers }

// DeleteAccount implements IdentityService.
//
// Order matters for a crash half-way: the services' data goes first while
// the account (and the caller's session) still exists, so a failed call
// can be retried; then the account row with its sessions and keys, and
// the revocation to every replica; then the services once more, for what
// another session of the account wrote while the first pass ran (it was
// authenticated before the revocation).
func (s *Service) DeleteAccount(ctx context.Context, req *identityv1.DeleteAccountRequest) (*identityv1.DeleteAccountResponse, error) {
	p, err := auth.Require(ctx)
	if err != nil {
		return nil, err
	}
	if p.KeyID != "" {
		return nil, apierr.PermissionDenied("an API key cannot delete its account: call with a session")
	}
	if !passwordLengthOK(req.GetPassword(), 0) {
		return nil, apierr.InvalidArgument("password", "must be at most 128 characters")
	}
	u, err := s.store.GetUser(ctx, p.UserID)
	if err != nil {
		return nil, apierr.FromStorage(ctx, err, "user not found")
	}
	if !u.Guest {
		if req.GetPassword() == "" {
			return nil, apierr.InvalidArgument("password", "is required to delete a registered account")
		}
		// Throttled like logins: a stolen session must not become a way
		// to guess the password.
		if err := s.limit(ctx, "login:user:"+u.ID+":"+clientaddr.Key(wire.FromContext(ctx).Addr), s.cfg.LoginLimit); err != nil {
			return nil, err
		}
		ok, err := password.Check(ctx, u.PasswordHash, req.GetPassword())
		if err != nil {
			return nil, password.Status(ctx, err)
		}
		if !ok {
			return nil, apierr.Unauthenticated("the password is wrong")
		}
	}
	if err := s.erase(ctx, u.ID); err != nil {
		return nil, err
	}
	if err := s.store.DeleteUser(ctx, u.ID); err != nil && !errors.Is(err, storeerr.ErrNotFound) {
		return nil, apierr.FromStorage(ctx, err, "")
	}
	s.revoke(ctx, revocation{User: u.ID})
	if err := s.erase(ctx, u.ID); err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "account deleted", "user_id", u.ID)
	return &identityv1.DeleteAccountResponse{}, nil
}

func (s *Service) erase(ctx context.Context, userID string) error {
	for _, e := range s.erasers {
		if err := e.ForgetUser(ctx, userID); err != nil {
			s.log.WarnContext(ctx, "account erasure failed", "user_id", userID, "eraser", fmt.Sprintf("%T", e), "err", err)
			return apierr.FromStorage(ctx, err, "")
		}
	}
	return nil
}
