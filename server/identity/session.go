package identity

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	identityv1 "github.com/apiplatform/platform/gen/go/identity/v1"
	"github.com/apiplatform/platform/server/platform/apierr"
	"github.com/apiplatform/platform/server/platform/auth"
	"github.com/apiplatform/platform/server/platform/storeerr"
	"github.com/apiplatform/platform/server/platform/wire"
)

// Logout implements IdentityService.
func (s *Service) Logout(ctx context.Context, _ *identityv1.LogoutRequest) (*identityv1.LogoutResponse, error) {
	p, err := auth.Require(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.store.DeleteSession(ctx, p.SessionID); err != nil && !errors.Is(err, storeerr.ErrNotFound) {
		return nil, apierr.FromStorage(ctx, err, "")
	}
	s.revoke(ctx, revocation{Sessions: []string{p.SessionID}})
	return &identityv1.LogoutResponse{}, nil
}

var errRefresh = apierr.Unauthenticated("invalid, expired or already used refresh token")

// Refresh implements IdentityService. A refresh token works once; when a
// used one comes back, someone holds a copy, so every session refreshed
// from the same login is revoked, whoever holds it.
func (s *Service) Refresh(ctx context.Context, req *identityv1.RefreshRequest) (*identityv1.RefreshResponse, error) {
	token := req.GetRefreshToken()
	if token == "" {
		token = wire.FromContext(ctx).RefreshToken
	}
	if token == "" {
		return nil, apierr.InvalidArgument("refresh_token", "is required")
	}
	if len(token) > 128 {
		return nil, apierr.InvalidArgument("refresh_token", "is not a refresh token")
	}
	hash := hashToken(token)
	old, err := s.store.SessionByRefreshHash(ctx, hash)
	if errors.Is(err, storeerr.ErrNotFound) {
		return nil, s.refreshReused(ctx, hash)
	}
	if err != nil {
		return nil, apierr.FromStorage(ctx, err, "")
	}
	if !s.now().Before(old.RefreshExpiresAt) {
		return nil, errRefresh
	}
	family := old.FamilyID
	if family == "" {
		family = old.ID // a login from before families
	}
	next, tokens, err := s.newSession(ctx, old.UserID, family)
	if err != nil {
		return nil, err
	}
	if err := s.store.RotateSession(ctx, old.ID, next); errors.Is(err, storeerr.ErrNotFound) {
		return nil, s.refreshReused(ctx, hash) // a concurrent use won the rotation
	} else if err != nil {
		return nil, apierr.FromStorage(ctx, err, "")
	}
	// The old access token ends with the rotation, in every replica's cache.
	s.endSessions(ctx, old.ID)
	u, err := s.store.GetUser(ctx, old.UserID)
	if err != nil {
		return nil, apierr.FromStorage(ctx, err, "user not found")
	}
	return &identityv1.RefreshResponse{User: userProto(u), Session: tokens}, nil
}

// refreshReused revokes the family of a refresh token that is no longer
// live and answers UNAUTHENTICATED.
func (s *Service) refreshReused(ctx context.Context, hash []byte) error {
	ids, err := s.store.RevokeFamily(ctx, hash)
	if err != nil {
		return apierr.FromStorage(ctx, err, "")
	}
	if len(ids) > 0 {
		s.endSessions(ctx, ids...)
	}
	return errRefresh
}

// GetMe implements IdentityService.
func (s *Service) GetMe(ctx context.Context, _ *identityv1.GetMeRequest) (*identityv1.GetMeResponse, error) {
	p, err := auth.Require(ctx)
	if err != nil {
		return nil, err
	}
	u, err := s.store.GetUser(ctx, p.UserID)
	if err != nil {
		return nil, apierr.FromStorage(ctx, err, "user not found")
	}
	fav, err := s.favorites.GetFavoriteProto(ctx, p.UserID)
	if err != nil && !errors.Is(err, storeerr.ErrNotFound) {
		return nil, apierr.FromStorage(ctx, err, "")
	}
	return &identityv1.GetMeResponse{User: userProto(u), Favorite: fav}, nil
}

// endUserSessions revokes every session of a user (upgrade, promotion,
// role change, password change, suspension, deletion) on every replica.
func (s *Service) endUserSessions(ctx context.Context, userID string) error {
	if err := s.store.DeleteUserSessions(ctx, userID); err != nil {
		return err
	}
	s.revoke(ctx, revocation{User: userID})
	return nil
}

// endSessions tells every replica of sessions the store already revoked.
func (s *Service) endSessions(ctx context.Context, ids ...string) {
	s.revoke(ctx, revocation{Sessions: ids})
}

// startSession creates and stores a new login for userID.
func (s *Service) startSession(ctx context.Context, userID string) (*identityv1.Session, error) {
	sess, tokens, err := s.newSession(ctx, userID, "")
	if err != nil {
		return nil, err
	}
	if err := s.store.CreateSession(ctx, sess); err != nil {
		return nil, apierr.FromStorage(ctx, err, "")
	}
	return tokens, nil
}

// newSession mints a session of family (a new family: "").
func (s *Service) newSession(ctx context.Context, userID, family string) (Session, *identityv1.Session, error) {
	access, err := newToken("at_")
	if err != nil {
		return Session{}, nil, apierr.Internal(ctx, err)
	}
	refresh, err := newToken("rt_")
	if err != nil {
		return Session{}, nil, apierr.Internal(ctx, err)
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	id := uuid.NewString()
	if family == "" {
		family = id
	}
	sess := Session{
		ID: id, UserID: userID, FamilyID: family,
		AccessHash: hashToken(access), RefreshHash: hashToken(refresh),
		AccessExpiresAt: now.Add(s.cfg.AccessTTL), RefreshExpiresAt: now.Add(s.cfg.RefreshTTL),
		CreatedAt: now,
	}
	return sess, &identityv1.Session{
		AccessToken: access, AccessTokenExpireTime: timestamppb.New(sess.AccessExpiresAt),
		RefreshToken: refresh, RefreshTokenExpireTime: timestamppb.New(sess.RefreshExpiresAt),
	}, nil
}

func newToken(prefix string) (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return prefix + base64.RawURLEncoding.EncodeToString(b), nil
}

func hashToken(t string) []byte {
	h := sha256.Sum256([]byte(t))
	return h[:]
}
