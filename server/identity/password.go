package identity

import (
	"context"
	"unicode/utf8"

	identityv1 "github.com/apiplatform/platform/gen/go/identity/v1"
	"github.com/apiplatform/platform/server/platform/apierr"
	"github.com/apiplatform/platform/server/platform/auth"
	"github.com/apiplatform/platform/server/platform/clientaddr"
	"github.com/apiplatform/platform/server/platform/password"
	"github.com/apiplatform/platform/server/platform/text"
	"github.com/apiplatform/platform/server/platform/wire"
)

// ChangePassword implements IdentityService. Whoever else holds a session
// of the account (a thief, a forgotten device) loses it: every session
// ends and the caller gets a fresh one.
func (s *Service) ChangePassword(ctx context.Context, req *identityv1.ChangePasswordRequest) (*identityv1.ChangePasswordResponse, error) {
	p, err := auth.Require(ctx)
	if err != nil {
		return nil, err
	}
	var v apierr.Validator
	v.Check(passwordLengthOK(req.GetCurrentPassword(), 1), "current_password", "is required (at most 128 characters)")
	v.Check(passwordLengthOK(req.GetNewPassword(), 8), "new_password", "must be 8 to 128 characters")
	if p := text.Problem(req.GetNewPassword()); p != "" {
		v.Check(false, "new_password", p)
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	if p.Guest {
		return nil, apierr.FailedPrecondition("a guest has no password; register instead", "GUEST_ACCOUNT")
	}
	// Throttled like logins: a stolen session must not become a way to
	// guess the password.
	if err := s.limit(ctx, "login:user:"+p.UserID+":"+clientaddr.Key(wire.FromContext(ctx).Addr), s.cfg.LoginLimit); err != nil {
		return nil, err
	}
	u, err := s.store.GetUser(ctx, p.UserID)
	if err != nil {
		return nil, apierr.FromStorage(ctx, err, "user not found")
	}
	ok, err := password.Check(ctx, u.PasswordHash, req.GetCurrentPassword())
	if err != nil {
		return nil, password.Status(ctx, err)
	}
	if !ok {
		return nil, apierr.Unauthenticated("the current password is wrong")
	}
	if u.PasswordHash, err = password.Hash(ctx, req.GetNewPassword()); err != nil {
		return nil, password.Status(ctx, err)
	}
	if err := s.store.UpdateUser(ctx, u); err != nil {
		return nil, apierr.FromStorage(ctx, err, "user not found")
	}
	if err := s.endUserSessions(ctx, u.ID); err != nil {
		return nil, apierr.FromStorage(ctx, err, "")
	}
	tokens, err := s.startSession(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	return &identityv1.ChangePasswordResponse{User: userProto(u), Session: tokens}, nil
}

// passwordLengthOK counts characters, as people do (the sign-up form says
// "8 to 128 characters"), not bytes: "pässwörd" is 8 characters. 512 bytes
// (128 characters of four bytes) bounds what is hashed.
func passwordLengthOK(p string, least int) bool {
	n := utf8.RuneCountInString(p)
	return n >= least && n <= 128 && len(p) <= 512
}
