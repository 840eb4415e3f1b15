// Package share implements share.v1.ShareService: links that show a user's
// favorite colour to anyone holding them.
package share

import (
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/singleflight"
	"google.golang.org/genproto/googleapis/api/httpbody"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	sharev1 "github.com/apiplatform/platform/gen/go/share/v1"
	"github.com/apiplatform/platform/server/platform/apierr"
	"github.com/apiplatform/platform/server/platform/auth"
	"github.com/apiplatform/platform/server/platform/bus"
	"github.com/apiplatform/platform/server/platform/cache"
	"github.com/apiplatform/platform/server/platform/clientaddr"
	"github.com/apiplatform/platform/server/platform/config"
	"github.com/apiplatform/platform/server/platform/epoch"
	"github.com/apiplatform/platform/server/platform/hotcache"
	"github.com/apiplatform/platform/server/platform/page"
	"github.com/apiplatform/platform/server/platform/ratelimit"
	"github.com/apiplatform/platform/server/platform/storeerr"
	"github.com/apiplatform/platform/server/platform/wire"
)

// Policies of this service's methods.
var Policies = auth.Policies{
	sharev1.ShareService_CreateShare_FullMethodName:  auth.User,
	sharev1.ShareService_GetShare_FullMethodName:     auth.Public,
	sharev1.ShareService_ListShares_FullMethodName:   auth.User,
	sharev1.ShareService_RevokeShare_FullMethodName:  auth.User,
	sharev1.ShareService_GetSharePage_FullMethodName: auth.Public,
	sharev1.ShareService_WatchShare_FullMethodName:   auth.Public,

	sharev1.ShareService_CreateSignedShare_FullMethodName:  auth.User,
	sharev1.ShareService_ListSignedShares_FullMethodName:   auth.User,
	sharev1.ShareService_RevokeSignedShare_FullMethodName:  auth.User,
	sharev1.ShareService_GetSignedSharePage_FullMethodName: auth.Public,
}

// FavoriteReader gives live shares the owner's current colour.
type FavoriteReader interface {
	CurrentHex(ctx context.Context, userID string) (string, error)
}

// Config of the service. Zero fields take DefaultConfig's values.
type Config struct {
	// PublicBaseURL prefixes share URLs, e.g. "https://colors.example".
	PublicBaseURL string
	// Share creation limits, per user and per client address.
	UserLimit, AddrLimit ratelimit.Limit
	// PageMaxAge is the public cache lifetime of share pages.
	PageMaxAge time.Duration
	// HitsFlushInterval is how often counted hits are stored (at most this
	// much of them is lost if the process is killed).
	HitsFlushInterval time.Duration
	// LinkKeys sign signed share links (the first) and verify them (any),
	// secrets of at least 32 bytes; empty: a ring stored in the database
	// (signedtoken.go).
	LinkKeys []string
	// LinkResync is how often the revocation epoch of signed links is
	// compared with what this replica applied, to recover from lost
	// messages (linkguard.go).
	LinkResync time.Duration
}

// DefaultConfig is what the server runs with unless told otherwise.
func DefaultConfig() Config {
	return Config{
		UserLimit:         ratelimit.Limit{Rate: 10, Period: time.Minute, Burst: 5},
		AddrLimit:         ratelimit.Limit{Rate: 30, Period: time.Minute, Burst: 20},
		PageMaxAge:        time.Minute,
		HitsFlushInterval: time.Second,
		LinkResync:        250 * time.Millisecond,
	}
}

// Deps are what the service is built on.
type Deps struct {
	Store     Store
	Favorites FavoriteReader
	Limiter   ratelimit.Limiter
	// Cache holds share rows (slug -> share, cache-aside), which
	// revocations invalidate after they commit; Pages is the same engine
	// counted apart, for the public page.
	Cache, Pages cache.Cache
	// Bus keeps every replica's hot copy of share rows in step (see
	// page.go); nil: in-process only (one replica).
	Bus bus.Bus
	// Redis holds the revocation epoch of signed links, shared by every
	// replica; nil: in process (one replica).
	Redis redis.UniversalClient
	Log   *slog.Logger
}

// Service implements ShareService.
type Service struct {
	sharev1.UnimplementedShareServiceServer
	store     Store
	favorites FavoriteReader
	limiter   ratelimit.Limiter
	cache     cache.Cache
	pages     cache.Cache // the same engine, counted apart
	loads     singleflight.Group
	cfg       Config
	hits      *hitCounter
	now       func() time.Time
	hot       *hotcache.Cache[Share] // share rows for the page, per process
	hotHits   prometheus.Counter     // hits of hot, counted as share_page hits
	rendered  *lru.Cache[renderKey, renderedPage]
	bus       bus.Bus // Deps.Bus or ownBus
	ownBus    bus.Bus // created when Deps.Bus is nil

	pageCacheControl string

	log        *slog.Logger
	keys       *keyRing      // signs and verifies signed links
	revoked    *revokedLinks // signed links refused (linkguard.go)
	linkEpochs epoch.Counter // their revocation epoch
	stopLinks  func()        // ends followLinkRevocations
}

// New builds the service and starts its hit flusher; Close stops it.
func New(ctx context.Context, d Deps, cfg Config) (*Service, error) {
	config.FillZero(&cfg, DefaultConfig())
	cfg.PublicBaseURL = strings.TrimRight(cfg.PublicBaseURL, "/")
	if d.Log == nil {
		d.Log = slog.Default()
	}
	s := &Service{
		store: d.Store, favorites: d.Favorites, limiter: d.Limiter, cache: d.Cache, pages: d.Pages, cfg: cfg, now: time.Now,
		log: d.Log, revoked: newRevokedLinks(), linkEpochs: epoch.NewMemory(),
	}
	if d.Redis != nil {
		s.linkEpochs = epoch.NewRedis(d.Redis, "share:signed-revocation-epoch")
	}
	var err error
	if s.keys, err = loadKeyRing(ctx, cfg.LinkKeys, d.Store); err != nil {
		return nil, err
	}
	if err := s.openHot(ctx, d); err != nil {
		return nil, err
	}
	// Subscribed before the first load of the revoked list, so that no
	// revocation published after that load is missed.
	sub, err := s.bus.Subscribe(ctx, linkRevocationTopic, 4096)
	if err != nil {
		s.log.Warn("share: revocation subscription failed; signed links checked in the database", "err", err)
		sub = nil
	}
	linkCtx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.followLinkRevocations(linkCtx, sub)
	}()
	s.stopLinks = func() { cancel(); <-done }
	s.hits = newHitCounter(d.Store, cfg.HitsFlushInterval, d.Log)
	return s, nil
}

// Register registers the service on a gRPC server.
func (s *Service) Register(gs grpc.ServiceRegistrar) { sharev1.RegisterShareServiceServer(gs, s) }

// Close stores the hits counted but not yet flushed.
func (s *Service) Close() error {
	s.hits.close()
	s.stopLinks()
	s.hot.Close()
	if s.ownBus != nil {
		return s.ownBus.Close()
	}
	return nil
}

// cacheTTL bounds staleness if an invalidation is lost.
const cacheTTL = time.Minute

func cacheKey(slug string) string { return "share:" + slug }

// read is the cache-aside read of a share row for the JSON API: fresh
// reads, invalidated by revocation. Its hit counter is as of the fill:
// callers that show hits read the store.
func (s *Service) read(ctx context.Context, slug string) (Share, error) {
	return s.readKey(ctx, s.cache, cacheKey(slug), cacheTTL, slug)
}

// readForPage reads for the public share page, which is served with a
// public max-age and so may be that stale in any CDN anyway: it has its own
// cache entry, filled by a stale-tolerant read (a follower read on
// CockroachDB, local to the serving region), for at most PageMaxAge.
// In front of that entry sits this process's hot copy (page.go).
func (s *Service) readForPage(ctx context.Context, slug string) (Share, error) {
	if sh, ok := s.hot.Get(slug); ok {
		s.hotHits.Inc()
		return sh, nil
	}
	epoch := s.hot.Epoch(slug)
	sh, err := s.readKey(storeerr.WithStaleReads(ctx), s.pages, pageCacheKey(slug), s.cfg.PageMaxAge, slug)
	if err == nil {
		s.hot.Fill(slug, epoch, sh)
	}
	return sh, err
}

func pageCacheKey(slug string) string { return "sharepage:" + slug }

func (s *Service) readKey(ctx context.Context, c cache.Cache, key string, ttl time.Duration, slug string) (Share, error) {
	raw, err := cache.GetOrLoad(ctx, c, &s.loads, key, max(ttl, time.Second), func(ctx context.Context) ([]byte, error) {
		sh, err := s.store.GetShare(ctx, slug)
		if err != nil {
			return nil, err
		}
		return json.Marshal(sh)
	})
	if err != nil {
		return Share{}, err
	}
	var sh Share
	return sh, json.Unmarshal(raw, &sh)
}

const (
	minExpiry = 60
	maxExpiry = 365 * 24 * 3600
)

// CreateShare implements ShareService.
func (s *Service) CreateShare(ctx context.Context, req *sharev1.CreateShareRequest) (*sharev1.CreateShareResponse, error) {
	p, err := auth.Require(ctx)
	if err != nil {
		return nil, err
	}
	if e := req.GetExpiresInSec(); e != 0 && (e < minExpiry || e > maxExpiry) {
		return nil, apierr.InvalidArgument("expires_in_sec", fmt.Sprintf("must be 0 (never) or %d to %d seconds", minExpiry, maxExpiry))
	}
	if err := s.limit(ctx, "share:user:"+p.UserID, s.cfg.UserLimit); err != nil {
		return nil, err
	}
	if err := s.limit(ctx, "share:addr:"+clientaddr.Key(wire.FromContext(ctx).Addr), s.cfg.AddrLimit); err != nil {
		return nil, err
	}
	hexColor, err := s.favorites.CurrentHex(ctx, p.UserID)
	if errors.Is(err, storeerr.ErrNotFound) {
		return nil, apierr.FailedPrecondition("save a favorite colour before sharing it", "NO_FAVORITE")
	}
	if err != nil {
		return nil, apierr.FromStorage(ctx, err, "")
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	sh := Share{OwnerID: p.UserID, Snapshot: req.GetSnapshot(), CreatedAt: now}
	if sh.Snapshot {
		sh.Hex = hexColor
	}
	if e := req.GetExpiresInSec(); e > 0 {
		sh.ExpiresAt = now.Add(time.Duration(e) * time.Second)
	}
	// 64 random bits make a collision vanishingly rare; retrying covers it.
	for attempt := 0; ; attempt++ {
		if sh.Slug, err = newSlug(); err != nil {
			return nil, apierr.Internal(ctx, err)
		}
		err = s.store.CreateShare(ctx, sh)
		if !errors.Is(err, storeerr.ErrConflict) || attempt == 3 {
			break
		}
	}
	if err != nil {
		return nil, apierr.FromStorage(ctx, err, "")
	}
	wire.SetStatus(ctx, http.StatusCreated)
	return &sharev1.CreateShareResponse{Share: s.toProto(sh, hexColor, true)}, nil
}

// resolve returns a live share and the colour it shows, counting a hit.
func (s *Service) resolve(ctx context.Context, slug string, read func(context.Context, string) (Share, error)) (Share, string, error) {
	if !slugRE.MatchString(slug) {
		return Share{}, "", apierr.InvalidArgument("slug", "must be 1 to 32 letters and digits")
	}
	sh, err := read(ctx, slug)
	if err != nil {
		return Share{}, "", apierr.FromStorage(ctx, err, "share not found")
	}
	now := s.now()
	if !sh.RevokedAt.IsZero() || (!sh.ExpiresAt.IsZero() && !now.Before(sh.ExpiresAt)) {
		return Share{}, "", apierr.NotFound("share not found")
	}
	hexColor := sh.Hex
	if !sh.Snapshot {
		if hexColor, err = s.favorites.CurrentHex(ctx, sh.OwnerID); err != nil {
			return Share{}, "", apierr.FromStorage(ctx, err, "share not found")
		}
	}
	s.hits.add(slug)
	return sh, hexColor, nil
}

// GetShare implements ShareService.
func (s *Service) GetShare(ctx context.Context, req *sharev1.GetShareRequest) (*sharev1.GetShareResponse, error) {
	sh, hexColor, err := s.resolve(ctx, req.GetSlug(), s.read)
	if err != nil {
		return nil, err
	}
	p, _ := auth.FromContext(ctx)
	owner := p.UserID == sh.OwnerID || p.Admin
	if owner {
		// The owner sees the stored counter (not the cached row's) plus
		// what this replica has not flushed yet; other replicas' hits show
		// within a flush interval.
		if sh, err = s.hits.withUnflushed(sh.Slug, func() (Share, error) { return s.store.GetShare(ctx, sh.Slug) }); err != nil {
			return nil, apierr.FromStorage(ctx, err, "share not found")
		}
	}
	return &sharev1.GetShareResponse{Share: s.toProto(sh, hexColor, owner)}, nil
}

// ListShares implements ShareService.
func (s *Service) ListShares(ctx context.Context, req *sharev1.ListSharesRequest) (*sharev1.ListSharesResponse, error) {
	p, err := auth.Require(ctx)
	if err != nil {
		return nil, err
	}
	size, err := page.Size(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	after, err := decodeCursor(req.GetPageToken())
	if err != nil {
		return nil, err
	}
	// One extra row tells whether there is a next page.
	rows, err := s.store.ListShares(ctx, p.UserID, after, size+1)
	if err != nil {
		return nil, apierr.FromStorage(ctx, err, "")
	}
	resp := &sharev1.ListSharesResponse{}
	rows, resp.NextPageToken = page.Trim(rows, size, func(sh Share) (time.Time, string) { return sh.CreatedAt, sh.Slug })
	for _, sh := range rows {
		hexColor := sh.Hex
		if !sh.Snapshot {
			// A live share shows the owner's colour; the owner is the caller.
			if hexColor, err = s.favorites.CurrentHex(ctx, p.UserID); err != nil && !errors.Is(err, storeerr.ErrNotFound) {
				return nil, apierr.FromStorage(ctx, err, "")
			}
		}
		resp.Shares = append(resp.Shares, s.toProto(sh, hexColor, true))
	}
	return resp, nil
}

// RevokeShare implements ShareService.
func (s *Service) RevokeShare(ctx context.Context, req *sharev1.RevokeShareRequest) (*sharev1.RevokeShareResponse, error) {
	p, err := auth.Require(ctx)
	if err != nil {
		return nil, err
	}
	if !slugRE.MatchString(req.GetSlug()) {
		return nil, apierr.InvalidArgument("slug", "must be 1 to 32 letters and digits")
	}
	sh, err := s.store.GetShare(ctx, req.GetSlug())
	if err != nil {
		return nil, apierr.FromStorage(ctx, err, "share not found")
	}
	if sh.OwnerID != p.UserID && !p.Admin {
		return nil, apierr.PermissionDenied("only the share's owner may revoke it")
	}
	if err := s.store.RevokeShare(ctx, sh.Slug, s.now().UTC().Truncate(time.Microsecond)); err != nil {
		return nil, apierr.FromStorage(ctx, err, "share not found")
	}
	// Committed: now every replica must stop serving it (the page within
	// its max-age, like any CDN copy).
	s.dropCached(ctx, sh.Slug)
	return &sharev1.RevokeShareResponse{}, nil
}

// dropCached forgets a share in every cache once a change committed.
func (s *Service) dropCached(ctx context.Context, slug string) {
	_ = s.cache.Delete(ctx, cacheKey(slug))
	_ = s.pages.Delete(ctx, pageCacheKey(slug))
	s.hot.Drop(ctx, slug)
}

//go:embed page.html
var pageHTML string

// html/template escapes the colour in every context it appears in (text,
// attributes, CSS), so nothing stored can inject markup.
var pageTemplate = template.Must(template.New("share").Parse(pageHTML))

// GetSharePage implements ShareService.
func (s *Service) GetSharePage(ctx context.Context, req *sharev1.GetSharePageRequest) (*httpbody.HttpBody, error) {
	sh, hexColor, err := s.resolve(ctx, req.GetSlug(), s.readForPage)
	if err != nil {
		return nil, err
	}
	page, err := s.render(hexColor, sh.Snapshot)
	if err != nil {
		return nil, apierr.Internal(ctx, err)
	}
	if wire.NotModified(ctx, page.etag, "cache-control", s.pageCacheControl) {
		return &httpbody.HttpBody{ContentType: "text/html; charset=utf-8"}, nil
	}
	return &httpbody.HttpBody{ContentType: "text/html; charset=utf-8", Data: page.body}, nil
}

// etagMatches implements If-None-Match's weak comparison (RFC 9110 13.1.2).
func (s *Service) toProto(sh Share, hexColor string, owner bool) *sharev1.Share {
	out := &sharev1.Share{
		Slug: sh.Slug, Url: s.cfg.PublicBaseURL + "/s/" + sh.Slug, Snapshot: sh.Snapshot, Hex: hexColor,
		CreateTime: timestamppb.New(sh.CreatedAt),
	}
	if !sh.ExpiresAt.IsZero() {
		out.ExpireTime = timestamppb.New(sh.ExpiresAt)
	}
	if owner {
		out.OwnerUserId, out.Hits, out.Revoked = sh.OwnerID, sh.Hits, !sh.RevokedAt.IsZero()
	}
	return out
}

func (s *Service) limit(ctx context.Context, key string, l ratelimit.Limit) error {
	return ratelimit.Check(ctx, s.limiter, key, l, "too many shares created; retry later", "RATE_LIMITED")
}

var slugRE = regexp.MustCompile(`^[0-9A-Za-z]{1,32}$`)

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// newSlug encodes 64 random bits in 11 base62 characters (62^11 > 2^64), far
// above the 42 bits needed to make guessing impractical.
func newSlug() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	n := binary.BigEndian.Uint64(b[:])
	out := make([]byte, 11)
	for i := range out {
		out[10-i] = base62[n%62]
		n /= 62
	}
	return string(out), nil
}

func decodeCursor(tok string) (*Cursor, error) {
	at, key, ok, err := page.Parse(tok, slugRE.MatchString)
	if !ok {
		return nil, err
	}
	return &Cursor{CreatedAt: at, Slug: key}, nil
}
