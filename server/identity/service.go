// Package identity implements identity.v1.IdentityService: guest sessions,
// accounts, opaque bearer tokens and their revocation.
//
// Tokens are 256-bit random strings; only their SHA-256 is stored, so a
// database leak yields no usable token. Sessions are verified from an
// in-process cache kept current through the bus (sessioncache.go).
package identity

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	favoritev1 "github.com/apiplatform/platform/gen/go/favorite/v1"
	identityv1 "github.com/apiplatform/platform/gen/go/identity/v1"
	"github.com/apiplatform/platform/server/platform/auth"
	"github.com/apiplatform/platform/server/platform/bus"
	"github.com/apiplatform/platform/server/platform/config"
	"github.com/apiplatform/platform/server/platform/epoch"
	"github.com/apiplatform/platform/server/platform/ratelimit"
	"github.com/apiplatform/platform/server/platform/storeerr"
)

// Policies of this service's methods.
var Policies = auth.Policies{
	identityv1.IdentityService_CreateGuest_FullMethodName:    auth.Public,
	identityv1.IdentityService_Register_FullMethodName:       auth.Public,
	identityv1.IdentityService_Login_FullMethodName:          auth.Public,
	identityv1.IdentityService_Refresh_FullMethodName:        auth.Public,
	identityv1.IdentityService_Logout_FullMethodName:         auth.User,
	identityv1.IdentityService_GetMe_FullMethodName:          auth.User,
	identityv1.IdentityService_ChangePassword_FullMethodName: auth.Registered,
	identityv1.IdentityService_DeleteAccount_FullMethodName:  auth.User,
	identityv1.IdentityService_CreateApiKey_FullMethodName:   auth.Registered,
	identityv1.IdentityService_ListApiKeys_FullMethodName:    auth.Registered,
	identityv1.IdentityService_RevokeApiKey_FullMethodName:   auth.Registered,
	identityv1.IdentityService_SuspendUser_FullMethodName:    auth.Admin,
	identityv1.IdentityService_ReinstateUser_FullMethodName:  auth.Admin,
	identityv1.IdentityService_SetUserRole_FullMethodName:    auth.Admin,
	identityv1.IdentityService_ListUsers_FullMethodName:      auth.Admin,
}

// FavoriteReader gives GetMe the caller's favorite.
type FavoriteReader interface {
	GetFavoriteProto(ctx context.Context, userID string) (*favoritev1.Favorite, error)
}

// Verifier checks a CAPTCHA token (vote.SiteVerify is the stock one); err
// is for a verifier that could not answer.
type Verifier interface {
	Verify(ctx context.Context, token string, remote netip.Addr) (bool, error)
}

// Config tunes token lifetimes and abuse limits. Zero fields take
// DefaultConfig's values. Every per-address limit is keyed by
// clientaddr.Key (an IPv4 address or an IPv6 /64).
type Config struct {
	AccessTTL  time.Duration
	RefreshTTL time.Duration
	// GuestLimit bounds guest creation per client address.
	GuestLimit ratelimit.Limit
	// RegisterLimit bounds registrations per client address.
	RegisterLimit ratelimit.Limit
	// LoginLimit bounds login attempts per account and address: a stranger
	// guessing bob's password from X exhausts X's budget for bob, never
	// bob's own from Y.
	LoginLimit ratelimit.Limit
	// LoginAddrLimit bounds login attempts per address, whatever the
	// account (one address trying many accounts).
	LoginAddrLimit ratelimit.Limit
	// Captcha, when set, must accept a token on every registration.
	Captcha Verifier
	// AdminUser and AdminPassword, when set, ensure an admin account at
	// start.
	AdminUser, AdminPassword string
	// SessionCache tunes the session cache.
	SessionCache SessionCacheConfig
	// APIKeyLimit bounds the calls of one API key.
	APIKeyLimit ratelimit.Limit
}

// DefaultConfig is what the server runs with unless told otherwise. The
// per-address values let a household or an office behind one address sign
// up together, and stop one address from minting accounts in bulk.
func DefaultConfig() Config {
	return Config{
		AccessTTL:      time.Hour,
		RefreshTTL:     30 * 24 * time.Hour,
		GuestLimit:     ratelimit.Limit{Rate: 30, Period: time.Hour, Burst: 30},
		RegisterLimit:  ratelimit.Limit{Rate: 30, Period: time.Hour, Burst: 30},
		LoginLimit:     ratelimit.Limit{Rate: 10, Period: time.Minute, Burst: 10},
		LoginAddrLimit: ratelimit.Limit{Rate: 60, Period: time.Minute, Burst: 60},
		SessionCache:   SessionCacheConfig{MaxEntries: 100_000, MaxAge: 30 * time.Second, Resync: 250 * time.Millisecond},
		APIKeyLimit:    ratelimit.Limit{Rate: 600, Period: time.Minute, Burst: 120},
	}
}

// Deps are what the service is built on.
type Deps struct {
	Store Store
	// Favorites gives GetMe the caller's favorite.
	Favorites FavoriteReader
	Limiter   ratelimit.Limiter
	// Bus carries revocations to every replica; Epoch is the revocation
	// epoch they share (nil on the embedded default: one in process).
	Bus   bus.Bus
	Epoch epoch.Counter
	Log   *slog.Logger
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

	// The session cache (see sessioncache.go); nil without a bus.
	cache     *sessionCache
	epochs    epoch.Counter
	bus       bus.Bus
	log       *slog.Logger
	stopCache func() error
	// touched remembers when each API key's last use was recorded.
	touched keyTouches
	// erasers are the services DeleteAccount erases (see EraseWith).
	erasers []Eraser
}

// New builds the service, and ensures the configured admin account (after
// the session cache is up, so that a promotion reaches every replica).
func New(ctx context.Context, d Deps, cfg Config) (*Service, error) {
	config.FillZero(&cfg, DefaultConfig())
	s := &Service{store: d.Store, favorites: d.Favorites, limiter: d.Limiter, cfg: cfg, now: time.Now, log: d.Log}
	if s.log == nil {
		s.log = slog.Default()
	}
	if d.Bus != nil {
		s.stopCache = s.enableSessionCache(d.Bus, d.Epoch, cfg.SessionCache)
	}
	if cfg.AdminUser != "" {
		if err := s.EnsureAdmin(ctx, cfg.AdminUser, cfg.AdminPassword); err != nil {
			_ = s.Close()
			return nil, fmt.Errorf("ensure admin %q: %w", cfg.AdminUser, err)
		}
	}
	return s, nil
}

// Register registers the service on a gRPC server.
func (s *Service) Register(gs grpc.ServiceRegistrar) {
	identityv1.RegisterIdentityServiceServer(gs, rpcServer{s})
}

// Close stops following revocations.
func (s *Service) Close() error {
	if s.stopCache != nil {
		return s.stopCache()
	}
	return nil
}

// rpcServer is the service as IdentityService: the RPC named Register is
// SignUp in Go, so that Register means gRPC registration only.
type rpcServer struct{ *Service }

// Register implements IdentityService.Register.
func (r rpcServer) Register(ctx context.Context, req *identityv1.RegisterRequest) (*identityv1.RegisterResponse, error) {
	return r.SignUp(ctx, req)
}

// Authenticate implements auth.Authenticator: from the session cache when
// it is current (see sessioncache.go), else from the store.
func (s *Service) Authenticate(ctx context.Context, token string) (auth.Principal, error) {
	h := tokenHash(sha256.Sum256([]byte(token)))
	now := s.now()
	var epoch uint64
	fillable := false
	if s.cache != nil {
		e, err := s.epochs.Current(ctx)
		if err == nil {
			var p auth.Principal
			var hit bool
			if p, hit, fillable = s.cache.get(h, e, now); hit {
				sessionCacheTotal.WithLabelValues("hit").Inc()
				if p.KeyID != "" {
					return p, s.keyUsed(ctx, p, now)
				}
				return p, nil
			}
			epoch = e
		}
	}
	if strings.HasPrefix(token, apiKeyPrefix) {
		return s.authenticateKey(ctx, h, now, epoch, fillable)
	}
	sess, u, err := s.store.SessionByAccessHash(ctx, h[:])
	if err != nil {
		return auth.Principal{}, err
	}
	if !now.Before(sess.AccessExpiresAt) || u.Suspended {
		return auth.Principal{}, storeerr.ErrNotFound
	}
	p := auth.Principal{UserID: u.ID, SessionID: sess.ID, Guest: u.Guest, Admin: u.Role == RoleAdmin}
	switch {
	case fillable:
		s.cache.add(h, p, sess.AccessExpiresAt, epoch, now)
		sessionCacheTotal.WithLabelValues("miss").Inc()
	case s.cache != nil:
		sessionCacheTotal.WithLabelValues("fallback").Inc()
	}
	return p, nil
}

func (s *Service) limit(ctx context.Context, key string, l ratelimit.Limit) error {
	return ratelimit.Check(ctx, s.limiter, key, l, "too many attempts; retry later", "RATE_LIMITED")
}

func userProto(u User) *identityv1.User {
	role := identityv1.Role_ROLE_USER
	if u.Role == RoleAdmin {
		role = identityv1.Role_ROLE_ADMIN
	}
	return &identityv1.User{Id: u.ID, Username: u.Username, Guest: u.Guest, Role: role, CreateTime: timestamppb.New(u.CreatedAt), Suspended: u.Suspended}
}
