// Package shortener implements shortener.v1.ShortenerService: short codes
// that redirect to long URLs, with click analytics that never slow a
// redirect.
//
// The redirect path (FollowShortUrl) reads a link through three layers: a
// per-process hot-key cache (an expiring LRU of decoded entries, so a viral
// link costs no network round trip at all), then the shared cache (Redis in
// production; concurrent misses for one code in one process collapse into
// one load), then the store. It records the click into an in-memory buffer
// and returns (see clicks.go). Edits and deletes invalidate the shared
// cache after they commit and broadcast the code on the bus, so every
// replica drops its hot-key entry at once; should a broadcast be lost (Redis
// down), an entry lives at most LocalCacheTTL.
//
// Overload: every call takes a slot of a bounded in-flight budget
// (MaxInFlight) without waiting; when none is free the call is refused with
// UNAVAILABLE and RetryInfo (HTTP 503 with Retry-After) instead of queueing.
package shortener

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/singleflight"
	"google.golang.org/grpc"

	shortenerv1 "github.com/apiplatform/platform/gen/go/shortener/v1"
	"github.com/apiplatform/platform/server/platform/auth"
	"github.com/apiplatform/platform/server/platform/bus"
	"github.com/apiplatform/platform/server/platform/cache"
	"github.com/apiplatform/platform/server/platform/config"
	"github.com/apiplatform/platform/server/platform/hotcache"
	"github.com/apiplatform/platform/server/platform/ratelimit"
)

// MaxPasswordBytes bounds a link password.
const MaxPasswordBytes = 128

// Policies of this service's methods: following a link and its QR code are
// public; everything else needs a session (guests included), and the
// handlers check ownership.
var Policies = auth.Policies{
	shortenerv1.ShortenerService_CreateShortUrl_FullMethodName:       auth.User,
	shortenerv1.ShortenerService_BatchCreateShortUrls_FullMethodName: auth.User,
	shortenerv1.ShortenerService_FollowShortUrl_FullMethodName:       auth.Public,
	shortenerv1.ShortenerService_GetShortUrl_FullMethodName:          auth.User,
	shortenerv1.ShortenerService_ListShortUrls_FullMethodName:        auth.User,
	shortenerv1.ShortenerService_UpdateShortUrl_FullMethodName:       auth.User,
	shortenerv1.ShortenerService_DeleteShortUrl_FullMethodName:       auth.User,
	shortenerv1.ShortenerService_GetStats_FullMethodName:             auth.User,
	shortenerv1.ShortenerService_GetQrCode_FullMethodName:            auth.Public,
}

// Config of the service. Zero fields take DefaultConfig's values.
type Config struct {
	// PublicBaseURL prefixes short URLs; its host is refused as a target.
	// Filled by the app.
	PublicBaseURL string
	// Region labels the clicks this process serves. Filled by the app.
	Region string
	// OwnHosts are further host names of this shortener (CDN or vanity
	// domains), refused as targets.
	OwnHosts []string
	// GeoIPFile is a MaxMind DB (GeoLite2/GeoIP2 Country or City) used for
	// clicks without a trusted country header; empty: none.
	GeoIPFile string

	// MaxInFlight bounds concurrent calls; beyond it calls are shed (503).
	MaxInFlight int
	// LocalCacheSize and LocalCacheTTL shape the per-process hot-key cache;
	// the TTL bounds staleness when an invalidation broadcast is lost.
	LocalCacheSize int
	LocalCacheTTL  time.Duration
	// CacheTTL is the lifetime of entries in the shared cache.
	CacheTTL time.Duration
	// Click analytics: the buffer's bound, and when it is flushed (every
	// FlushInterval, or as soon as it holds FlushBatch clicks).
	ClickBuffer   int
	FlushBatch    int
	FlushInterval time.Duration
	// IDBlock is how many ids a process reserves from the store at a time.
	IDBlock int
	// PermanentMaxAge is the Cache-Control max-age of 301 answers.
	PermanentMaxAge time.Duration
	// CreateLimit bounds links created per user (a batch costs one token
	// per item); PasswordLimit bounds password attempts per link and client
	// address, PasswordLinkLimit per link from all addresses together.
	CreateLimit, PasswordLimit, PasswordLinkLimit ratelimit.Limit
	// AllowPrivateTargets lets links point into private networks (RFC 1918,
	// fc00::/7, .internal names), for intranet deployments. Loopback,
	// link-local and metadata addresses are refused regardless.
	AllowPrivateTargets bool
	// AllowTargetHosts are host names accepted as targets whatever address
	// class they are (e.g. "localhost" on a developer's machine); our own
	// hosts stay refused.
	AllowTargetHosts []string
}

// DefaultConfig is what the server runs with unless told otherwise.
func DefaultConfig() Config {
	return Config{
		MaxInFlight:     2048,
		LocalCacheSize:  100_000,
		LocalCacheTTL:   5 * time.Second,
		CacheTTL:        time.Minute,
		ClickBuffer:     100_000,
		FlushBatch:      1000,
		FlushInterval:   time.Second,
		IDBlock:         100,
		PermanentMaxAge: 24 * time.Hour,
		// One full batch of 1,000 links, then about 17 a minute.
		CreateLimit:       ratelimit.Limit{Rate: 1000, Period: time.Hour, Burst: maxBatch},
		PasswordLimit:     ratelimit.Limit{Rate: 10, Period: time.Minute, Burst: 10},
		PasswordLinkLimit: ratelimit.Limit{Rate: 60, Period: time.Minute, Burst: 30},
	}
}

// Deps are the platform pieces the service uses.
type Deps struct {
	Store   Store
	Cache   cache.Cache // shared by replicas (Redis) or in-process
	Bus     bus.Bus
	Limiter ratelimit.Limiter
	// Redis keeps the visit counters of links with a visit limit; nil:
	// the store does.
	Redis redis.UniversalClient
	Log   *slog.Logger
}

// Service implements ShortenerService.
type Service struct {
	shortenerv1.UnimplementedShortenerServiceServer
	cfg     Config
	base    string
	store   Store
	cache   cache.Cache
	loads   singleflight.Group
	limiter ratelimit.Limiter
	log     *slog.Logger
	targets targetRules
	codec   *codec
	ids     *idAllocator
	clicks  *recorder
	visits  visitCounter
	agents  *classifier
	geo     *geoDB
	slots   atomic.Int64
	now     func() time.Time

	// The hot-key cache: a fill that began before an invalidation of its
	// code is dropped, so a load racing an edit cannot put the old entry
	// back; invalidations reach every replica over the bus.
	local     *hotcache.Cache[*entry]
	closeOnce sync.Once
}

var (
	redirectsTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "shortener_redirects_total",
		Help: "FollowShortUrl answers by HTTP status.",
	}, []string{"status"})
	shedTotal = promauto.NewCounter(prometheus.CounterOpts{
		Name: "shortener_shed_total",
		Help: "Calls refused with 503 because MaxInFlight calls were running.",
	})
	localCacheTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "shortener_local_cache_requests_total",
		Help: "Hot-key cache lookups by result (hit or miss).",
	}, []string{"result"})
	inFlight = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "shortener_in_flight",
		Help: "Shortener calls running now in this process.",
	})
	localHit, localMiss = localCacheTotal.WithLabelValues("hit"), localCacheTotal.WithLabelValues("miss")
)

// invalidateTopic carries codes (newline-separated) whose hot-key entries
// every replica must drop.
const invalidateTopic = "shortener.invalidate"

// New builds the service: it loads the code key (creating it on first
// start), subscribes to invalidations and starts the click flusher. Close
// stops them, flushing buffered clicks.
func New(ctx context.Context, d Deps, cfg Config) (*Service, error) {
	config.FillZero(&cfg, DefaultConfig())
	if d.Log == nil {
		d.Log = slog.Default()
	}
	key, err := d.Store.CodeKey(ctx)
	if err != nil {
		return nil, fmt.Errorf("shortener: load code key: %w", err)
	}
	cd, err := newCodec(key)
	if err != nil {
		return nil, err
	}
	s := &Service{
		cfg: cfg, base: strings.TrimRight(cfg.PublicBaseURL, "/"), store: d.Store, cache: d.Cache,
		limiter: d.Limiter, log: d.Log, codec: cd, agents: newClassifier(), now: time.Now,
		targets: targetRules{own: ownHosts(append([]string{cfg.PublicBaseURL}, cfg.OwnHosts...)...), allowPrivate: cfg.AllowPrivateTargets, allowHosts: hostSet(cfg.AllowTargetHosts)},
	}
	s.visits = storeVisits{d.Store}
	if d.Redis != nil {
		s.visits = redisVisits{d.Redis}
	}
	s.ids = &idAllocator{block: cfg.IDBlock, reserve: d.Store.ReserveIDs}
	if cfg.GeoIPFile != "" {
		if s.geo, err = openGeoDB(cfg.GeoIPFile); err != nil {
			return nil, err
		}
	}
	// Subscribed before serving, so that no invalidation is missed.
	if s.local, err = hotcache.New[*entry](ctx, d.Bus, invalidateTopic, cfg.LocalCacheSize, cfg.LocalCacheTTL, d.Log); err != nil {
		s.geo.close()
		return nil, fmt.Errorf("shortener: subscribe: %w", err)
	}
	s.clicks = newRecorder(cfg.ClickBuffer, cfg.FlushBatch, cfg.FlushInterval, func(ctx context.Context, cs []Click) error {
		return s.store.RecordClicks(ctx, cfg.Region, cs)
	}, s.enrich, s.log)
	return s, nil
}

// Register registers the service on a gRPC server.
func (s *Service) Register(gs grpc.ServiceRegistrar) {
	gs.RegisterService(s.admitted(), s)
}

// Close stops listening for invalidations and flushes buffered clicks; it
// runs after the servers stopped, so no click arrives after the flush.
func (s *Service) Close() error {
	s.closeOnce.Do(func() {
		s.local.Close()
		s.clicks.close()
		s.geo.close()
	})
	return nil
}

func hostSet(names []string) map[string]bool {
	set := make(map[string]bool, len(names))
	for _, n := range names {
		set[canonicalHost(n)] = true
	}
	return set
}
