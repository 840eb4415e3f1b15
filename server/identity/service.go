// Package identity implements identity.v1.IdentityService: guest sessions,
// accounts, opaque bearer tokens and their revocation.
//
// Tokens are 256-bit random strings; only their SHA-256 is stored, so a
// database leak yields no usable token. Every call looks the session up, which
// is what makes logout take effect on the very next call on every replica.
package identity

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	favoritev1 "github.com/apiplatform/platform/gen/go/favorite/v1"
	identityv1 "github.com/apiplatform/platform/gen/go/identity/v1"
	"github.com/apiplatform/platform/server/platform/apierr"
	"github.com/apiplatform/platform/server/platform/auth"
	"github.com/apiplatform/platform/server/platform/config"
	"github.com/apiplatform/platform/server/platform/password"
	"github.com/apiplatform/platform/server/platform/ratelimit"
	"github.com/apiplatform/platform/server/platform/storeerr"
	"github.com/apiplatform/platform/server/platform/text"
	"github.com/apiplatform/platform/server/platform/wire"
)

// Policies of this service's methods.
var Policies = auth.Policies{
	identityv1.IdentityService_CreateGuest_FullMethodName: auth.Public,
	identityv1.IdentityService_Register_FullMethodName:    auth.Public,
	identityv1.IdentityService_Login_FullMethodName:       auth.Public,
	identityv1.IdentityService_Refresh_FullMethodName:     auth.Public,
	identityv1.IdentityService_Logout_FullMethodName:      auth.User,
	identityv1.IdentityService_GetMe_FullMethodName:       auth.User,
}

// FavoriteReader gives GetMe the caller's favorite.
type FavoriteReader interface {
	GetFavoriteProto(ctx context.Context, userID string) (*favoritev1.Favorite, error)
}

// Config tunes token lifetimes and abuse limits. Zero fields take
// DefaultConfig's values.
type Config struct {
	AccessTTL  time.Duration
	RefreshTTL time.Duration
	// GuestLimit bounds guest creation per client address.
	GuestLimit ratelimit.Limit
	// LoginLimit bounds login attempts per username and per address.
	LoginLimit ratelimit.Limit
	// AdminUser and AdminPassword, when set, ensure an admin account at
	// start.
	AdminUser, AdminPassword string
}

// DefaultConfig is what the server runs with unless told otherwise.
func DefaultConfig() Config {
	return Config{
		AccessTTL:  time.Hour,
		RefreshTTL: 30 * 24 * time.Hour,
		GuestLimit: ratelimit.Limit{Rate: 30, Period: time.Minute, Burst: 30},
		LoginLimit: ratelimit.Limit{Rate: 10, Period: time.Minute, Burst: 10},
	}
}

// Deps are what the service is built on.
type Deps struct {
	Store Store
	// Favorites gives GetMe the caller's favorite.
	Favorites FavoriteReader
	Limiter   ratelimit.Limiter
}

// Service implements IdentityService (through rpcServer, see Register) and
// auth.Authenticator.
type Service struct {
	identityv1.UnimplementedIdentityServiceServer
	store     Store
	favorites FavoriteReader
	limiter   ratelimit.Limiter
	cfg       Config
	now       func() time.Time
}

// New builds the service, and ensures the configured admin account.
func New(ctx context.Context, d Deps, cfg Config) (*Service, error) {
	config.FillZero(&cfg, DefaultConfig())
	s := &Service{store: d.Store, favorites: d.Favorites, limiter: d.Limiter, cfg: cfg, now: time.Now}
	if cfg.AdminUser != "" {
		if err := s.EnsureAdmin(ctx, cfg.AdminUser, cfg.AdminPassword); err != nil {
			return nil, fmt.Errorf("ensure admin %q: %w", cfg.AdminUser, err)
		}
	}
	return s, nil
}

// Register registers the service on a gRPC server.
func (s *Service) Register(gs grpc.ServiceRegistrar) {
	identityv1.RegisterIdentityServiceServer(gs, rpcServer{s})
}

// Close implements the service shape; identity keeps no background work.
func (s *Service) Close() error { return nil }

// rpcServer is the service as IdentityService: the RPC named Register is
// SignUp in Go, so that Register means gRPC registration only.
type rpcServer struct{ *Service }

// Register implements IdentityService.Register.
func (r rpcServer) Register(ctx context.Context, req *identityv1.RegisterRequest) (*identityv1.RegisterResponse, error) {
	return r.SignUp(ctx, req)
}

// Authenticate implements auth.Authenticator.
func (s *Service) Authenticate(ctx context.Context, token string) (auth.Principal, error) {
	sess, u, err := s.store.SessionByAccessHash(ctx, hashToken(token))
	if err != nil {
		return auth.Principal{}, err
	}
	if !s.now().Before(sess.AccessExpiresAt) {
		return auth.Principal{}, storeerr.ErrNotFound
	}
	return auth.Principal{UserID: u.ID, SessionID: sess.ID, Guest: u.Guest, Admin: u.Role == RoleAdmin}, nil
}

// CreateGuest implements IdentityService.
func (s *Service) CreateGuest(ctx context.Context, _ *identityv1.CreateGuestRequest) (*identityv1.CreateGuestResponse, error) {
	if err := s.limit(ctx, "guest:addr:"+wire.FromContext(ctx).Addr.String(), s.cfg.GuestLimit); err != nil {
		return nil, err
	}
	u := User{ID: uuid.NewString(), Guest: true, Role: RoleUser, CreatedAt: s.now().UTC().Truncate(time.Microsecond)}
	if err := s.store.CreateUser(ctx, u); err != nil {
		return nil, apierr.FromStorage(ctx, err, "")
	}
	tokens, err := s.startSession(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	return &identityv1.CreateGuestResponse{User: userProto(u), Session: tokens}, nil
}

var usernameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{3,32}$`)

func validateCredentials(username, password string) error {
	var v apierr.Validator
	v.Check(usernameRE.MatchString(username), "username", "must be 3 to 32 characters of letters, digits, '_', '-' and '.'")
	v.Check(len(password) >= 8 && len(password) <= 128, "password", "must be 8 to 128 bytes")
	if p := text.Problem(password); p != "" {
		v.Check(false, "password", p)
	}
	return v.Err()
}

// SignUp creates an account, or upgrades the calling guest in place
// (IdentityService.Register).
func (s *Service) SignUp(ctx context.Context, req *identityv1.RegisterRequest) (*identityv1.RegisterResponse, error) {
	if err := validateCredentials(req.GetUsername(), req.GetPassword()); err != nil {
		return nil, err
	}
	hash, err := password.Hash(req.GetPassword())
	if err != nil {
		return nil, apierr.Internal(ctx, err)
	}
	name := strings.ToLower(req.GetUsername())
	var u User
	p, upgrade := auth.FromContext(ctx)
	upgrade = upgrade && p.Guest
	if upgrade {
		// Upgrade in place: the guest keeps its id and everything saved under it.
		if u, err = s.store.GetUser(ctx, p.UserID); err != nil {
			return nil, apierr.FromStorage(ctx, err, "user not found")
		}
		u.Username, u.Guest, u.PasswordHash = name, false, hash
		err = s.store.UpdateUser(ctx, u)
	} else {
		u = User{ID: uuid.NewString(), Username: name, Role: RoleUser, PasswordHash: hash, CreatedAt: s.now().UTC().Truncate(time.Microsecond)}
		err = s.store.CreateUser(ctx, u)
	}
	if errors.Is(err, storeerr.ErrConflict) {
		return nil, apierr.AlreadyExists("username is taken", "USERNAME_TAKEN")
	}
	if err != nil {
		return nil, apierr.FromStorage(ctx, err, "user not found")
	}
	if upgrade {
		// The guest's old tokens must not outlive its upgrade.
		if err := s.store.DeleteUserSessions(ctx, u.ID); err != nil {
			return nil, apierr.FromStorage(ctx, err, "")
		}
	}
	tokens, err := s.startSession(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	return &identityv1.RegisterResponse{User: userProto(u), Session: tokens}, nil
}

// Login implements IdentityService.
func (s *Service) Login(ctx context.Context, req *identityv1.LoginRequest) (*identityv1.LoginResponse, error) {
	var v apierr.Validator
	v.Check(req.GetUsername() != "" && len(req.GetUsername()) <= 32, "username", "is required (at most 32 characters)")
	v.Check(req.GetPassword() != "" && len(req.GetPassword()) <= 128, "password", "is required (at most 128 bytes)")
	if err := v.Err(); err != nil {
		return nil, err
	}
	name := strings.ToLower(req.GetUsername())
	if err := s.limit(ctx, "login:user:"+name, s.cfg.LoginLimit); err != nil {
		return nil, err
	}
	if err := s.limit(ctx, "login:addr:"+wire.FromContext(ctx).Addr.String(), s.cfg.LoginLimit); err != nil {
		return nil, err
	}
	u, err := s.store.GetUserByUsername(ctx, name)
	if err != nil && !errors.Is(err, storeerr.ErrNotFound) {
		return nil, apierr.FromStorage(ctx, err, "")
	}
	hash := u.PasswordHash
	if err != nil || hash == "" {
		hash = password.Dummy
	}
	ok, herr := password.Check(hash, req.GetPassword())
	if herr != nil {
		return nil, apierr.Internal(ctx, herr)
	}
	if err != nil || !ok || u.PasswordHash == "" {
		return nil, apierr.Unauthenticated("invalid username or password")
	}
	tokens, err := s.startSession(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	return &identityv1.LoginResponse{User: userProto(u), Session: tokens}, nil
}

// Logout implements IdentityService.
func (s *Service) Logout(ctx context.Context, _ *identityv1.LogoutRequest) (*identityv1.LogoutResponse, error) {
	p, err := auth.Require(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.store.DeleteSession(ctx, p.SessionID); err != nil && !errors.Is(err, storeerr.ErrNotFound) {
		return nil, apierr.FromStorage(ctx, err, "")
	}
	return &identityv1.LogoutResponse{}, nil
}

// Refresh implements IdentityService.
func (s *Service) Refresh(ctx context.Context, req *identityv1.RefreshRequest) (*identityv1.RefreshResponse, error) {
	token := req.GetRefreshToken()
	if token == "" {
		if t := wire.FromContext(ctx).RefreshToken; t != "" {
			token = t
		}
	}
	if token == "" {
		return nil, apierr.InvalidArgument("refresh_token", "is required")
	}
	if len(token) > 128 {
		return nil, apierr.InvalidArgument("refresh_token", "is not a refresh token")
	}
	old, err := s.store.SessionByRefreshHash(ctx, hashToken(token))
	if errors.Is(err, storeerr.ErrNotFound) || (err == nil && !s.now().Before(old.RefreshExpiresAt)) {
		return nil, apierr.Unauthenticated("invalid, expired or already used refresh token")
	}
	if err != nil {
		return nil, apierr.FromStorage(ctx, err, "")
	}
	next, tokens, err := s.newSession(ctx, old.UserID)
	if err != nil {
		return nil, err
	}
	if err := s.store.RotateSession(ctx, old.ID, next); errors.Is(err, storeerr.ErrNotFound) {
		return nil, apierr.Unauthenticated("invalid, expired or already used refresh token")
	} else if err != nil {
		return nil, apierr.FromStorage(ctx, err, "")
	}
	u, err := s.store.GetUser(ctx, old.UserID)
	if err != nil {
		return nil, apierr.FromStorage(ctx, err, "user not found")
	}
	return &identityv1.RefreshResponse{User: userProto(u), Session: tokens}, nil
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

// EnsureAdmin makes username an admin with password, creating the account
// if needed. The server calls it at start when told an admin account.
func (s *Service) EnsureAdmin(ctx context.Context, username, secret string) error {
	if err := validateCredentials(username, secret); err != nil {
		return err
	}
	hash, err := password.Hash(secret)
	if err != nil {
		return err
	}
	name := strings.ToLower(username)
	u, err := s.store.GetUserByUsername(ctx, name)
	if errors.Is(err, storeerr.ErrNotFound) {
		u = User{ID: uuid.NewString(), Username: name, Role: RoleAdmin, PasswordHash: hash, CreatedAt: s.now().UTC().Truncate(time.Microsecond)}
		if err := s.store.CreateUser(ctx, u); !errors.Is(err, storeerr.ErrConflict) {
			return err
		}
		// Another replica created it at the same moment: update it below.
		u, err = s.store.GetUserByUsername(ctx, name)
	}
	if err != nil {
		return err
	}
	u.Role, u.PasswordHash, u.Guest = RoleAdmin, hash, false
	return s.store.UpdateUser(ctx, u)
}

func (s *Service) limit(ctx context.Context, key string, l ratelimit.Limit) error {
	res, err := s.limiter.Allow(ctx, key, l)
	if err != nil || res.Allowed {
		return nil // limiters fail open; see ratelimit.FailOpen
	}
	return apierr.ResourceExhausted("too many attempts; retry later", "RATE_LIMITED", res.RetryAfter)
}

// startSession creates and stores a new session for userID.
func (s *Service) startSession(ctx context.Context, userID string) (*identityv1.Session, error) {
	sess, tokens, err := s.newSession(ctx, userID)
	if err != nil {
		return nil, err
	}
	if err := s.store.CreateSession(ctx, sess); err != nil {
		return nil, apierr.FromStorage(ctx, err, "")
	}
	return tokens, nil
}

func (s *Service) newSession(ctx context.Context, userID string) (Session, *identityv1.Session, error) {
	access, err := newToken("at_")
	if err != nil {
		return Session{}, nil, apierr.Internal(ctx, err)
	}
	refresh, err := newToken("rt_")
	if err != nil {
		return Session{}, nil, apierr.Internal(ctx, err)
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	sess := Session{
		ID: uuid.NewString(), UserID: userID,
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

func userProto(u User) *identityv1.User {
	role := identityv1.Role_ROLE_USER
	if u.Role == RoleAdmin {
		role = identityv1.Role_ROLE_ADMIN
	}
	return &identityv1.User{Id: u.ID, Username: u.Username, Guest: u.Guest, Role: role, CreateTime: timestamppb.New(u.CreatedAt)}
}
