package identity

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	identityv1 "github.com/apiplatform/platform/gen/go/identity/v1"
	"github.com/apiplatform/platform/server/platform/apierr"
	"github.com/apiplatform/platform/server/platform/auth"
	"github.com/apiplatform/platform/server/platform/storeerr"
	"github.com/apiplatform/platform/server/platform/text"
	"github.com/apiplatform/platform/server/platform/wire"
)

// apiKeyPrefix starts every API key secret, so that a key is recognisable
// (in a log, a leaked file, a secret scanner) and is told from an access
// token before any lookup.
const apiKeyPrefix = "ak_"

// Secrets are 256 random bits, so the store keeps only their SHA-256: a
// slow password hash would add nothing (there is nothing to guess) and
// would cost every call with a key.

// scopeServices are the services a scope may name.
var scopeServices = []string{"*", "favorite", "share", "shortener", "vote", "canvas", "identity"}

// keyTouches rate-limits the recording of last use to once a minute a key.
type keyTouches struct {
	mu   sync.Mutex
	last map[string]time.Time
}

func (k *keyTouches) due(id string, now time.Time) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.last == nil {
		k.last = map[string]time.Time{}
	}
	if t, ok := k.last[id]; ok && now.Sub(t) < time.Minute {
		return false
	}
	if len(k.last) > 100_000 {
		clear(k.last)
	}
	k.last[id] = now
	return true
}

// keyPrincipal is the caller an API key acts as.
func keyPrincipal(k APIKey, u User) auth.Principal {
	return auth.Principal{UserID: u.ID, SessionID: keySession(k.ID), Guest: u.Guest, Admin: u.Role == RoleAdmin,
		KeyID: k.ID, Scopes: strings.Join(k.Scopes, " ")}
}

// keySession is the session-cache id of a key: revoking it through the
// session revocation path drops it from every replica's cache.
func keySession(id string) string { return "apikey:" + id }

// authenticateKey is Authenticate for an API key the cache did not answer.
func (s *Service) authenticateKey(ctx context.Context, h tokenHash, now time.Time, epoch uint64, fillable bool) (auth.Principal, error) {
	k, u, err := s.store.APIKeyByHash(ctx, h[:])
	if err != nil {
		return auth.Principal{}, err
	}
	if (!k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt)) || u.Suspended {
		return auth.Principal{}, storeerr.ErrNotFound
	}
	p := keyPrincipal(k, u)
	until := k.ExpiresAt
	if until.IsZero() {
		until = now.Add(24 * time.Hour) // the cache's MaxAge bounds it anyway
	}
	switch {
	case fillable:
		s.cache.add(h, p, until, epoch, now)
		sessionCacheTotal.WithLabelValues("miss").Inc()
	case s.cache != nil:
		sessionCacheTotal.WithLabelValues("fallback").Inc()
	}
	return p, s.keyUsed(ctx, p, now)
}

// keyUsed applies the key's rate limit and records its use (at most once
// a minute, in the background: the caller does not wait for the write).
func (s *Service) keyUsed(ctx context.Context, p auth.Principal, now time.Time) error {
	if err := s.limit(ctx, "apikey:"+p.KeyID, s.cfg.APIKeyLimit); err != nil {
		return err
	}
	if s.touched.due(p.KeyID, now) {
		go func() {
			tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if err := s.store.TouchAPIKey(tctx, p.KeyID, now.UTC().Truncate(time.Microsecond)); err != nil {
				s.log.Warn("identity: api key last use not recorded", "err", err)
			}
		}()
	}
	return nil
}

// validScope reports whether sc is SERVICE:read or SERVICE:write.
func validScope(sc string) bool {
	name, level, ok := strings.Cut(sc, ":")
	return ok && slices.Contains(scopeServices, name) && (level == "read" || level == "write")
}

// keyOwner is whose keys the caller manages: its own, or (admins only)
// userID's. API keys cannot manage keys.
func (s *Service) keyOwner(ctx context.Context, userID string) (auth.Principal, string, error) {
	p, err := auth.Require(ctx)
	if err != nil {
		return p, "", err
	}
	if p.KeyID != "" {
		return p, "", apierr.PermissionDenied("API keys cannot manage API keys; call with a session")
	}
	if userID == "" || userID == p.UserID {
		return p, p.UserID, nil
	}
	if !p.Admin {
		return p, "", apierr.PermissionDenied("only admins manage other accounts' keys")
	}
	return p, userID, nil
}

// CreateApiKey implements IdentityService.
func (s *Service) CreateApiKey(ctx context.Context, req *identityv1.CreateApiKeyRequest) (*identityv1.CreateApiKeyResponse, error) {
	_, owner, err := s.keyOwner(ctx, req.GetUserId())
	if err != nil {
		return nil, err
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	var v apierr.Validator
	if p := text.Display(req.GetName(), 100); p != "" {
		v.Check(false, "name", p)
	}
	v.Check(len(req.GetScopes()) >= 1 && len(req.GetScopes()) <= 20, "scopes", "must list 1 to 20 scopes")
	for i, sc := range req.GetScopes() {
		v.Check(validScope(sc), fmt.Sprintf("scopes[%d]", i), "must be SERVICE:read or SERVICE:write, SERVICE one of "+strings.Join(scopeServices, ", "))
	}
	var expires time.Time
	if t := req.GetExpireTime(); t != nil {
		expires = t.AsTime().UTC().Truncate(time.Microsecond)
		v.Check(t.IsValid() && expires.After(now), "expire_time", "must be in the future")
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	u, err := s.store.GetUser(ctx, owner)
	if errors.Is(err, storeerr.ErrNotFound) {
		return nil, apierr.InvalidArgument("user_id", "no such user")
	} else if err != nil {
		return nil, apierr.FromStorage(ctx, err, "")
	}
	if u.Guest {
		return nil, apierr.FailedPrecondition("guests cannot hold API keys; register first", "GUEST_ACCOUNT")
	}
	secret, err := newToken(apiKeyPrefix)
	if err != nil {
		return nil, apierr.Internal(ctx, err)
	}
	scopes := slices.Clone(req.GetScopes())
	slices.Sort(scopes)
	k := APIKey{ID: uuid.NewString(), UserID: u.ID, Name: req.GetName(), Prefix: secret[:len(apiKeyPrefix)+8],
		Hash: hashToken(secret), Scopes: slices.Compact(scopes), ExpiresAt: expires, CreatedAt: now}
	if err := s.store.CreateAPIKey(ctx, k); err != nil {
		return nil, apierr.FromStorage(ctx, err, "user not found")
	}
	wire.SetStatus(ctx, 201)
	return &identityv1.CreateApiKeyResponse{ApiKey: keyProto(k), Secret: secret}, nil
}

// ListApiKeys implements IdentityService.
func (s *Service) ListApiKeys(ctx context.Context, req *identityv1.ListApiKeysRequest) (*identityv1.ListApiKeysResponse, error) {
	_, owner, err := s.keyOwner(ctx, req.GetUserId())
	if err != nil {
		return nil, err
	}
	keys, err := s.store.ListAPIKeys(ctx, owner)
	if err != nil {
		return nil, apierr.FromStorage(ctx, err, "")
	}
	out := &identityv1.ListApiKeysResponse{}
	for _, k := range keys {
		out.ApiKeys = append(out.ApiKeys, keyProto(k))
	}
	return out, nil
}

// RevokeApiKey implements IdentityService. The key is refused from the next
// call on every replica: revoked in the store, then dropped from every
// session cache through the revocation path sessions use.
func (s *Service) RevokeApiKey(ctx context.Context, req *identityv1.RevokeApiKeyRequest) (*identityv1.RevokeApiKeyResponse, error) {
	p, owner, err := s.keyOwner(ctx, "")
	if err != nil {
		return nil, err
	}
	if _, err := uuid.Parse(req.GetKeyId()); err != nil {
		return nil, apierr.InvalidArgument("key_id", "must be an API key id (a UUID)")
	}
	if p.Admin {
		owner = "" // admins revoke any key
	}
	if err := s.store.RevokeAPIKey(ctx, owner, req.GetKeyId()); err != nil {
		return nil, apierr.FromStorage(ctx, err, "API key not found")
	}
	s.endSessions(ctx, keySession(req.GetKeyId()))
	return &identityv1.RevokeApiKeyResponse{}, nil
}

func keyProto(k APIKey) *identityv1.ApiKey {
	out := &identityv1.ApiKey{KeyId: k.ID, UserId: k.UserID, Name: k.Name, Prefix: k.Prefix, Scopes: k.Scopes,
		CreateTime: timestamppb.New(k.CreatedAt)}
	if !k.ExpiresAt.IsZero() {
		out.ExpireTime = timestamppb.New(k.ExpiresAt)
	}
	if !k.LastUsedAt.IsZero() {
		out.LastUsedTime = timestamppb.New(k.LastUsedAt)
	}
	return out
}
