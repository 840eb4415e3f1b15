// Package favorite implements favorite.v1.FavoriteService: a user's favorite
// colour, saved idempotently and readable by others once shared.
package favorite

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sync/singleflight"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	favoritev1 "github.com/apiplatform/platform/gen/go/favorite/v1"
	"github.com/apiplatform/platform/server/favorite/color"
	"github.com/apiplatform/platform/server/platform/apierr"
	"github.com/apiplatform/platform/server/platform/auth"
	"github.com/apiplatform/platform/server/platform/bus"
	"github.com/apiplatform/platform/server/platform/cache"
	"github.com/apiplatform/platform/server/platform/config"
	"github.com/apiplatform/platform/server/platform/epoch"
	"github.com/apiplatform/platform/server/platform/storeerr"
	"github.com/apiplatform/platform/server/platform/wire"
)

// Policies of this service's methods.
var Policies = auth.Policies{
	favoritev1.FavoriteService_SetFavorite_FullMethodName:     auth.User,
	favoritev1.FavoriteService_GetFavorite_FullMethodName:     auth.User,
	favoritev1.FavoriteService_GetUserFavorite_FullMethodName: auth.Public,
}

// ShareChecker tells whether a user has shared their favorite.
type ShareChecker interface {
	HasActiveShare(ctx context.Context, ownerID string, now time.Time) (bool, error)
}

// Config of the service. Zero fields take DefaultConfig's values.
type Config struct {
	// IdempotencyKeyTTL is how long a save is remembered under its key.
	IdempotencyKeyTTL time.Duration
	// CacheTTL bounds how long a favorite read may be served from the
	// cache if an invalidation is lost (writes invalidate at once
	// otherwise); it bounds the in-memory copies too.
	CacheTTL time.Duration
	// MemoryEntries bounds the favorites each replica keeps in process
	// memory (see localcache.go).
	MemoryEntries int
	// Resync is how often the in-memory copies are checked against the
	// favorite epoch, to recover from lost messages.
	Resync time.Duration
}

// DefaultConfig is what the server runs with unless told otherwise.
func DefaultConfig() Config {
	return Config{IdempotencyKeyTTL: 24 * time.Hour, CacheTTL: time.Minute, MemoryEntries: 100_000, Resync: 250 * time.Millisecond}
}

// Deps are what the service is built on.
type Deps struct {
	Store  Store
	Shares ShareChecker
	// Cache holds favorite reads (cache-aside), which saves invalidate
	// after their transaction commits.
	Cache cache.Cache
	// Bus tells every replica whose favorite changed (ChangedTopic), for
	// live share pages, and keeps their in-memory copies current; nil:
	// nobody is told, nothing is kept in memory.
	Bus bus.Bus
	// Epoch is the favorite epoch every replica shares (nil: one in
	// process, for the embedded default).
	Epoch epoch.Counter
	Log   *slog.Logger
}

// ChangedTopic carries the user ID of each saved favorite, published once
// the save committed and the cached copy is gone.
const ChangedTopic = "favorite.changed"

// Service implements FavoriteService.
type Service struct {
	favoritev1.UnimplementedFavoriteServiceServer
	store  Store
	shares ShareChecker
	cache  cache.Cache
	bus    bus.Bus
	cfg    Config
	loads  singleflight.Group
	now    func() time.Time
	log    *slog.Logger
	// memory and epoch are the in-memory copies (nil without a bus).
	memory     *localCache
	epoch      epoch.Counter
	stopMemory func()
}

// New builds the service.
func New(_ context.Context, d Deps, cfg Config) (*Service, error) {
	config.FillZero(&cfg, DefaultConfig())
	s := &Service{store: d.Store, shares: d.Shares, cache: d.Cache, bus: d.Bus, cfg: cfg, now: time.Now, log: d.Log, epoch: d.Epoch}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.bus != nil {
		if s.epoch == nil {
			s.epoch = epoch.NewMemory()
		}
		s.memory = newLocalCache(cfg.MemoryEntries, cfg.CacheTTL)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			s.memory.follow(ctx, s.bus, s.epoch, cfg.Resync, s.log)
		}()
		s.stopMemory = func() { cancel(); <-done }
	}
	return s, nil
}

// Register registers the service on a gRPC server.
func (s *Service) Register(gs grpc.ServiceRegistrar) { favoritev1.RegisterFavoriteServiceServer(gs, s) }

// Close stops following invalidations.
func (s *Service) Close() error {
	if s.stopMemory != nil {
		s.stopMemory()
	}
	return nil
}

func cacheKey(userID string) string { return "fav:" + userID }

// read is the cache-aside read of a favorite, from process memory when
// that is current (see localcache.go).
func (s *Service) read(ctx context.Context, userID string) (Favorite, error) {
	var e uint64
	fillable := false
	if s.memory != nil {
		var err error
		if e, err = s.epoch.Current(ctx); err == nil {
			var f Favorite
			var hit bool
			if f, hit, fillable = s.memory.get(userID, e, s.now()); hit {
				localCacheTotal.WithLabelValues("hit").Inc()
				return f, nil
			}
		}
	}
	f, err := s.load(ctx, userID)
	switch {
	case err != nil:
	case fillable:
		s.memory.add(f, e, s.now())
		localCacheTotal.WithLabelValues("miss").Inc()
	case s.memory != nil:
		localCacheTotal.WithLabelValues("fallback").Inc()
	}
	return f, err
}

// load reads a favorite through the shared cache.
func (s *Service) load(ctx context.Context, userID string) (Favorite, error) {
	raw, err := cache.GetOrLoad(ctx, s.cache, &s.loads, cacheKey(userID), s.cfg.CacheTTL, func(ctx context.Context) ([]byte, error) {
		f, err := s.store.GetFavorite(ctx, userID)
		if err != nil {
			return nil, err
		}
		return json.Marshal(f)
	})
	if err != nil {
		return Favorite{}, err
	}
	var f Favorite
	return f, json.Unmarshal(raw, &f)
}

// SetFavorite implements FavoriteService.
func (s *Service) SetFavorite(ctx context.Context, req *favoritev1.SetFavoriteRequest) (*favoritev1.SetFavoriteResponse, error) {
	p, err := auth.Require(ctx)
	if err != nil {
		return nil, err
	}
	c, err := color.Parse(req.GetColor())
	if err != nil {
		return nil, apierr.InvalidArgument("color", err.Error())
	}
	key, err := IdempotencyKey(ctx)
	if err != nil {
		return nil, err
	}
	f := Favorite{UserID: p.UserID, Hex: c.Hex, Space: c.Space, Value: c.Value, UpdatedAt: s.now().UTC().Truncate(time.Microsecond)}
	resp := &favoritev1.SetFavoriteResponse{Favorite: ToProto(f)}
	var idem *storeerr.Idempotency
	if key != "" {
		// The request is identified by what the user typed: the same colour
		// written differently is a different request.
		h := sha256.Sum256([]byte(req.GetColor()))
		b, err := proto.Marshal(resp)
		if err != nil {
			return nil, apierr.Internal(ctx, err)
		}
		idem = &storeerr.Idempotency{Scope: "favorite.set", Key: key, RequestHash: h[:], Response: b}
	}
	replayed, err := s.store.SaveFavorite(ctx, f, idem, s.cfg.IdempotencyKeyTTL)
	if errors.Is(err, storeerr.ErrIdempotencyMismatch) {
		return nil, apierr.InvalidArgument("Idempotency-Key", "was already used with a different request body")
	}
	if err != nil {
		return nil, apierr.FromStorage(ctx, err, "")
	}
	// Committed: only now may the cached copies go (see package cache).
	s.invalidate(ctx, p.UserID)
	if s.bus != nil {
		// Best effort: a watcher that misses it shows the colour on its
		// next load.
		_ = s.bus.Publish(context.WithoutCancel(ctx), ChangedTopic, []byte(p.UserID))
	}
	if replayed != nil {
		resp = &favoritev1.SetFavoriteResponse{}
		if err := proto.Unmarshal(replayed, resp); err != nil {
			return nil, apierr.Internal(ctx, err)
		}
	}
	return resp, nil
}

// ForgetUser erases a deleted account's favorite (identity.Eraser).
func (s *Service) ForgetUser(ctx context.Context, userID string) error {
	if err := s.store.DeleteFavorite(ctx, userID); err != nil && !errors.Is(err, storeerr.ErrNotFound) {
		return err
	}
	s.invalidate(ctx, userID)
	return nil
}

// invalidate drops the user's cached copies once a save or erasure has
// committed: the shared one, then, through the favorite epoch and the bus,
// every replica's in-memory one. A failure to bump or publish leaves the
// other replicas' memory unused (their epoch read fails, or does not match
// what they applied) until they resync.
func (s *Service) invalidate(ctx context.Context, userID string) {
	_ = s.cache.Delete(ctx, cacheKey(userID))
	if s.memory == nil {
		return
	}
	ctx = context.WithoutCancel(ctx)
	e, err := epoch.Bump(ctx, s.epoch)
	if err != nil {
		s.log.Warn("favorite: epoch not bumped; replicas read favorites from the shared cache", "err", err)
	}
	inv := invalidation{Epoch: e, User: userID}
	s.memory.apply(inv)
	msg, _ := json.Marshal(inv)
	if err := s.bus.Publish(ctx, invalidationTopic, msg); err != nil {
		s.log.Warn("favorite: invalidation not broadcast; replicas read favorites from the shared cache until they resync", "err", err)
	}
}

// GetFavorite implements FavoriteService.
func (s *Service) GetFavorite(ctx context.Context, _ *favoritev1.GetFavoriteRequest) (*favoritev1.GetFavoriteResponse, error) {
	p, err := auth.Require(ctx)
	if err != nil {
		return nil, err
	}
	f, err := s.GetFavoriteProto(ctx, p.UserID)
	if err != nil {
		return nil, apierr.FromStorage(ctx, err, "no favorite colour saved yet")
	}
	return &favoritev1.GetFavoriteResponse{Favorite: f}, nil
}

// GetUserFavorite implements FavoriteService.
func (s *Service) GetUserFavorite(ctx context.Context, req *favoritev1.GetUserFavoriteRequest) (*favoritev1.GetUserFavoriteResponse, error) {
	if !ValidID(req.GetUserId()) {
		return nil, apierr.InvalidArgument("user_id", "must be a user id (UUID)")
	}
	p, _ := auth.FromContext(ctx)
	if p.UserID != req.GetUserId() && !p.Admin {
		shared, err := s.shares.HasActiveShare(ctx, req.GetUserId(), s.now())
		if err != nil {
			return nil, apierr.FromStorage(ctx, err, "")
		}
		if !shared {
			return nil, apierr.PermissionDenied("this user's favorite is private until they share it")
		}
	}
	f, err := s.GetFavoriteProto(ctx, req.GetUserId())
	if err != nil {
		return nil, apierr.FromStorage(ctx, err, "this user has no favorite colour")
	}
	return &favoritev1.GetUserFavoriteResponse{Favorite: f}, nil
}

// GetFavoriteProto reads a favorite for other services (identity's GetMe).
func (s *Service) GetFavoriteProto(ctx context.Context, userID string) (*favoritev1.Favorite, error) {
	f, err := s.read(ctx, userID)
	if err != nil {
		return nil, err
	}
	return ToProto(f), nil
}

// ToProto converts a stored favorite.
func ToProto(f Favorite) *favoritev1.Favorite {
	return &favoritev1.Favorite{UserId: f.UserID, Hex: f.Hex, Space: spaceProto[f.Space], Value: f.Value, UpdateTime: timestamppb.New(f.UpdatedAt)}
}

var spaceProto = map[color.Space]favoritev1.ColorSpace{
	color.SpaceHex:  favoritev1.ColorSpace_COLOR_SPACE_HEX,
	color.SpaceRGB:  favoritev1.ColorSpace_COLOR_SPACE_RGB,
	color.SpaceHSL:  favoritev1.ColorSpace_COLOR_SPACE_HSL,
	color.SpaceName: favoritev1.ColorSpace_COLOR_SPACE_NAME,
}

// IdempotencyKey returns the request's key ("" when none), refusing values
// that are not 1 to 128 printable ASCII characters.
func IdempotencyKey(ctx context.Context) (string, error) {
	vals := wire.FromContext(ctx).IdempotencyKeys
	if len(vals) == 0 {
		return "", nil
	}
	k := vals[0]
	ok := len(vals) == 1 && len(k) >= 1 && len(k) <= 128
	for i := 0; ok && i < len(k); i++ {
		ok = k[i] > 0x20 && k[i] < 0x7f
	}
	if !ok {
		return "", apierr.InvalidArgument("Idempotency-Key", "must be one value of 1 to 128 printable ASCII characters")
	}
	return k, nil
}

// ValidID reports whether s is a user id in the canonical form we issue.
func ValidID(s string) bool {
	u, err := uuid.Parse(s)
	return err == nil && u.String() == s
}

// CurrentHex returns a user's colour for live share links.
func (s *Service) CurrentHex(ctx context.Context, userID string) (string, error) {
	f, err := s.read(ctx, userID)
	return f.Hex, err
}
