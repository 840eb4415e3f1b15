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
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"html/template"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/skip2/go-qrcode"
	"golang.org/x/sync/singleflight"
	"google.golang.org/genproto/googleapis/api/httpbody"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	shortenerv1 "github.com/apiplatform/platform/gen/go/shortener/v1"
	"github.com/apiplatform/platform/server/platform/apierr"
	"github.com/apiplatform/platform/server/platform/auth"
	"github.com/apiplatform/platform/server/platform/bus"
	"github.com/apiplatform/platform/server/platform/cache"
	"github.com/apiplatform/platform/server/platform/config"
	"github.com/apiplatform/platform/server/platform/page"
	"github.com/apiplatform/platform/server/platform/password"
	"github.com/apiplatform/platform/server/platform/ratelimit"
	"github.com/apiplatform/platform/server/platform/storeerr"
	"github.com/apiplatform/platform/server/platform/wire"
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
	// CreateLimit bounds create calls (single or batch) per user;
	// PasswordLimit bounds password attempts per link and client address.
	CreateLimit, PasswordLimit ratelimit.Limit
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
		CreateLimit:     ratelimit.Limit{Rate: 120, Period: time.Minute, Burst: 60},
		PasswordLimit:   ratelimit.Limit{Rate: 10, Period: time.Minute, Burst: 10},
	}
}

// Deps are the platform pieces the service uses.
type Deps struct {
	Store   Store
	Cache   cache.Cache // shared by replicas (Redis) or in-process
	Bus     bus.Bus
	Limiter ratelimit.Limiter
	Log     *slog.Logger
}

// Service implements ShortenerService.
type Service struct {
	shortenerv1.UnimplementedShortenerServiceServer
	cfg     Config
	base    string
	store   Store
	cache   cache.Cache
	loads   singleflight.Group
	bus     bus.Bus
	limiter ratelimit.Limiter
	log     *slog.Logger
	targets targetRules
	codec   *codec
	ids     *idAllocator
	clicks  *recorder
	agents  *classifier
	geo     *geoDB
	slots   atomic.Int64
	now     func() time.Time

	// The hot-key cache. epochs count invalidations, per stripe of codes: a
	// fill that began before an invalidation of its stripe is dropped, so a
	// load racing an edit cannot put the old entry back (fills and
	// invalidations hold localMu; hits do not).
	local   *expirable.LRU[string, *entry]
	localMu sync.Mutex
	epochs  [256]uint64

	stopListen context.CancelFunc
	listening  chan struct{}
	closeOnce  sync.Once
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
		cfg: cfg, base: strings.TrimRight(cfg.PublicBaseURL, "/"), store: d.Store, cache: d.Cache, bus: d.Bus,
		limiter: d.Limiter, log: d.Log, codec: cd, agents: newClassifier(), now: time.Now,
		targets: targetRules{own: ownHosts(append([]string{cfg.PublicBaseURL}, cfg.OwnHosts...)...)},
		local:   expirable.NewLRU[string, *entry](cfg.LocalCacheSize, nil, cfg.LocalCacheTTL),
	}
	s.ids = &idAllocator{block: cfg.IDBlock, reserve: d.Store.ReserveIDs}
	if cfg.GeoIPFile != "" {
		if s.geo, err = openGeoDB(cfg.GeoIPFile); err != nil {
			return nil, err
		}
	}
	// Subscribe before serving, so that no invalidation is missed.
	lctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	sub, err := s.bus.Subscribe(lctx, invalidateTopic, 4096)
	if err != nil {
		cancel()
		s.geo.close()
		return nil, fmt.Errorf("shortener: subscribe: %w", err)
	}
	s.stopListen, s.listening = cancel, make(chan struct{})
	go s.listen(lctx, sub)
	s.clicks = newRecorder(cfg.ClickBuffer, cfg.FlushBatch, cfg.FlushInterval, func(ctx context.Context, cs []Click) error {
		return s.store.RecordClicks(ctx, cfg.Region, cs)
	}, s.enrich, s.log)
	return s, nil
}

// Register registers the service on a gRPC server.
func (s *Service) Register(gs grpc.ServiceRegistrar) {
	shortenerv1.RegisterShortenerServiceServer(gs, s)
}

// Close stops listening for invalidations and flushes buffered clicks; it
// runs after the servers stopped, so no click arrives after the flush.
func (s *Service) Close() error {
	s.closeOnce.Do(func() {
		s.stopListen()
		<-s.listening
		s.clicks.close()
		s.geo.close()
	})
	return nil
}

// listen drops hot-key entries named on the bus. A subscription dropped
// for being slow missed messages: the whole hot-key cache goes then.
func (s *Service) listen(ctx context.Context, sub *bus.Subscription) {
	defer close(s.listening)
	for {
		func() {
			defer sub.Close()
			for {
				select {
				case <-ctx.Done():
					return
				case msg, ok := <-sub.C:
					if !ok {
						return
					}
					s.dropLocal(strings.Split(string(msg), "\n")...)
				}
			}
		}()
		if ctx.Err() != nil || errors.Is(sub.Err(), bus.ErrClosed) {
			return
		}
		s.log.Warn("shortener: invalidation subscription dropped; purging the hot-key cache", "err", sub.Err())
		s.purgeLocal()
		for {
			var err error
			if sub, err = s.bus.Subscribe(ctx, invalidateTopic, 4096); err == nil {
				break
			}
			if errors.Is(err, bus.ErrClosed) {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
		s.purgeLocal() // what changed while resubscribing
	}
}

// ---- the read path ----

// entry is a link as the redirect path needs it; cached as JSON in the
// shared cache and decoded in the hot-key cache. The shared cache holds
// live and deleted links only: unknown codes are remembered only in the
// hot-key cache (creates broadcast their codes to drop those entries).
type entry struct {
	Missing      bool   `json:"-"`
	Target       string `json:"t,omitempty"`
	Kind         int    `json:"k,omitempty"`
	ExpiresAt    int64  `json:"e,omitempty"` // unix µs; 0: never
	PasswordHash string `json:"p,omitempty"`
	Deleted      bool   `json:"d,omitempty"`
}

func entryOf(l Link) *entry {
	e := &entry{Target: l.Target, Kind: l.Kind, PasswordHash: l.PasswordHash, Deleted: !l.DeletedAt.IsZero()}
	if !l.ExpiresAt.IsZero() {
		e.ExpiresAt = l.ExpiresAt.UnixMicro()
	}
	return e
}

func (e *entry) expired(now time.Time) bool {
	return e.ExpiresAt != 0 && now.UnixMicro() >= e.ExpiresAt
}

func cacheKey(code string) string { return "short:" + code }

// resolve reads a link through the hot-key cache, the shared cache and the
// store.
func (s *Service) resolve(ctx context.Context, code string) (*entry, error) {
	if e, ok := s.local.Get(code); ok {
		localHit.Inc()
		return e, nil
	}
	localMiss.Inc()
	stripe := stripeOf(code)
	s.localMu.Lock()
	epoch := s.epochs[stripe]
	s.localMu.Unlock()
	raw, err := cache.GetOrLoad(ctx, s.cache, &s.loads, cacheKey(code), s.cfg.CacheTTL, func(ctx context.Context) ([]byte, error) {
		l, err := s.store.GetLink(ctx, code)
		if err != nil {
			return nil, err
		}
		return json.Marshal(entryOf(l))
	})
	var e *entry
	switch {
	case errors.Is(err, storeerr.ErrNotFound):
		e = &entry{Missing: true}
	case err != nil:
		return nil, err
	default:
		e = new(entry)
		if err := json.Unmarshal(raw, e); err != nil {
			return nil, err
		}
	}
	s.localMu.Lock()
	if s.epochs[stripe] == epoch {
		s.local.Add(code, e)
	}
	s.localMu.Unlock()
	return e, nil
}

// stripeOf hashes a code (FNV-1a) to its epoch stripe.
func stripeOf(code string) uint8 {
	h := uint32(2166136261)
	for i := 0; i < len(code); i++ {
		h = (h ^ uint32(code[i])) * 16777619
	}
	return uint8(h)
}

func (s *Service) dropLocal(codes ...string) {
	s.localMu.Lock()
	for _, c := range codes {
		s.epochs[stripeOf(c)]++
		s.local.Remove(c)
	}
	s.localMu.Unlock()
}

func (s *Service) purgeLocal() {
	s.localMu.Lock()
	for i := range s.epochs {
		s.epochs[i]++
	}
	s.local.Purge()
	s.localMu.Unlock()
}

// invalidate runs after a write committed: the shared cache first, then
// every replica's hot-key cache (this one's included). A client that gave
// up must not stop it, hence WithoutCancel.
func (s *Service) invalidate(ctx context.Context, shared bool, codes ...string) {
	if len(codes) == 0 {
		return
	}
	ctx = context.WithoutCancel(ctx)
	if shared {
		keys := make([]string, len(codes))
		for i, c := range codes {
			keys[i] = cacheKey(c)
		}
		_ = s.cache.Delete(ctx, keys...)
	}
	s.dropLocal(codes...)
	if err := s.bus.Publish(ctx, invalidateTopic, []byte(strings.Join(codes, "\n"))); err != nil {
		s.log.WarnContext(ctx, "shortener: invalidation broadcast failed; other replicas catch up within the hot-key TTL", "err", err)
	}
}

// ---- overload ----

// admit takes an in-flight slot or sheds the call.
func (s *Service) admit() (func(), error) {
	if s.slots.Add(1) > int64(s.cfg.MaxInFlight) {
		s.slots.Add(-1)
		shedTotal.Inc()
		return nil, apierr.Unavailable("the shortener is overloaded; retry shortly", time.Second)
	}
	inFlight.Inc()
	return func() { s.slots.Add(-1); inFlight.Dec() }, nil
}

// ---- errors ----

// gone is NOT_FOUND with reason GONE (what gRPC clients see), answered 410
// over HTTP.
func gone(ctx context.Context, state string) error {
	wire.SetStatus(ctx, http.StatusGone)
	st, err := status.New(codes.NotFound, "short link "+state).WithDetails(&errdetails.ErrorInfo{
		Reason: ReasonGone, Domain: apierr.Domain, Metadata: map[string]string{"state": state},
	})
	if err != nil {
		panic(err)
	}
	return st.Err()
}

// ReasonGone is the ErrorInfo reason of a NOT_FOUND for a link that existed
// and was deleted or expired.
const ReasonGone = "GONE"

var errNoLink = apierr.NotFound("no such short link")

// live resolves code to a link that may be followed. It answers the HTTP
// status a refusal maps to (404 missing, 410 deleted or expired; 0 for
// other errors) so that callers can count it.
func (s *Service) live(ctx context.Context, code string) (*entry, int, error) {
	if !codeRE.MatchString(code) {
		return nil, http.StatusNotFound, errNoLink
	}
	e, err := s.resolve(ctx, code)
	if err != nil {
		return nil, 0, apierr.FromStorage(ctx, err, "no such short link")
	}
	switch {
	case e.Missing:
		return nil, http.StatusNotFound, errNoLink
	case e.Deleted:
		return nil, http.StatusGone, gone(ctx, "deleted")
	case e.expired(s.now()):
		return nil, http.StatusGone, gone(ctx, "expired")
	}
	return e, 0, nil
}

func (s *Service) storeErr(ctx context.Context, err error) error {
	if errors.Is(err, ErrDeleted) {
		return gone(ctx, "deleted")
	}
	return apierr.FromStorage(ctx, err, "no such short link")
}

func validCode(code string) error {
	if !codeRE.MatchString(code) {
		return apierr.InvalidArgument("code", "must be 1 to 32 letters, digits, '-' or '_'")
	}
	return nil
}

func (s *Service) limit(ctx context.Context, key string, l ratelimit.Limit, msg string) error {
	res, err := s.limiter.Allow(ctx, key, l)
	if err != nil || res.Allowed {
		return nil // limiters fail open
	}
	return apierr.ResourceExhausted(msg, "RATE_LIMITED", res.RetryAfter)
}

// ---- create ----

const (
	maxExpirySec = 10 * 365 * 24 * 3600
	maxBatch     = 1000
	// maxBatchPasswords bounds the distinct passwords of one batch: each
	// costs an argon2id hash (tens of milliseconds of CPU).
	maxBatchPasswords = 10
)

// item is one link being created.
type item struct {
	link     Link
	password string
	err      error
}

// prepare validates one create request.
func (s *Service) prepare(req *shortenerv1.CreateShortUrlRequest, owner string, now time.Time) (Link, []apierr.FieldViolation) {
	var vs []apierr.FieldViolation
	bad := func(field, desc string) { vs = append(vs, apierr.FieldViolation{Field: field, Description: desc}) }
	l := Link{OwnerID: owner, CreatedAt: now, Kind: http.StatusFound}
	target, problem := s.targets.normalize(req.GetLongUrl())
	if problem != "" {
		bad("long_url", problem)
	}
	l.Target = target
	if a := req.GetAlias(); a != "" {
		if p := aliasProblem(a); p != "" {
			bad("alias", p)
		}
		l.Code, l.Custom = a, true
	}
	switch e := req.GetExpiresInSec(); {
	case e < 0 || e > maxExpirySec:
		bad("expires_in_sec", fmt.Sprintf("must be 0 (never) or 1 to %d seconds", maxExpirySec))
	case e > 0:
		l.ExpiresAt = now.Add(time.Duration(e) * time.Second)
	}
	if len(req.GetPassword()) > MaxPasswordBytes {
		bad("password", "must be at most 128 bytes")
	}
	switch req.GetRedirectKind() {
	case shortenerv1.RedirectKind_REDIRECT_KIND_UNSPECIFIED, shortenerv1.RedirectKind_REDIRECT_KIND_FOUND:
	case shortenerv1.RedirectKind_REDIRECT_KIND_MOVED_PERMANENTLY:
		l.Kind = http.StatusMovedPermanently
	default:
		bad("redirect_kind", "must be REDIRECT_KIND_FOUND or REDIRECT_KIND_MOVED_PERMANENTLY")
	}
	return l, vs
}

// CreateShortUrl implements ShortenerService.
func (s *Service) CreateShortUrl(ctx context.Context, req *shortenerv1.CreateShortUrlRequest) (*shortenerv1.CreateShortUrlResponse, error) {
	release, err := s.admit()
	if err != nil {
		return nil, err
	}
	defer release()
	p, err := auth.Require(ctx)
	if err != nil {
		return nil, err
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	l, vs := s.prepare(req, p.UserID, now)
	if len(vs) > 0 {
		return nil, apierr.InvalidArguments(vs...)
	}
	if err := s.limit(ctx, "short:create:"+p.UserID, s.cfg.CreateLimit, "too many links created; retry later"); err != nil {
		return nil, err
	}
	items := []*item{{link: l, password: req.GetPassword()}}
	if err := s.createItems(ctx, items); err != nil {
		return nil, err
	}
	if items[0].err != nil {
		return nil, items[0].err
	}
	wire.SetStatus(ctx, http.StatusCreated)
	return &shortenerv1.CreateShortUrlResponse{ShortUrl: s.toProto(items[0].link)}, nil
}

// BatchCreateShortUrls implements ShortenerService.
func (s *Service) BatchCreateShortUrls(ctx context.Context, req *shortenerv1.BatchCreateShortUrlsRequest) (*shortenerv1.BatchCreateShortUrlsResponse, error) {
	release, err := s.admit()
	if err != nil {
		return nil, err
	}
	defer release()
	p, err := auth.Require(ctx)
	if err != nil {
		return nil, err
	}
	if n := len(req.GetRequests()); n == 0 || n > maxBatch {
		return nil, apierr.InvalidArgument("requests", fmt.Sprintf("must hold 1 to %d items", maxBatch))
	}
	if err := s.limit(ctx, "short:create:"+p.UserID, s.cfg.CreateLimit, "too many links created; retry later"); err != nil {
		return nil, err
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	items := make([]*item, len(req.GetRequests()))
	aliases := map[string]bool{}
	passwords := map[string]bool{}
	for i, r := range req.GetRequests() {
		l, vs := s.prepare(r, p.UserID, now)
		it := &item{link: l, password: r.GetPassword()}
		items[i] = it
		switch {
		case len(vs) > 0:
			it.err = apierr.InvalidArguments(vs...)
		case l.Custom && aliases[l.Code]:
			it.err = apierr.AlreadyExists("alias "+strconv.Quote(l.Code)+" is taken by an earlier item", "ALIAS_TAKEN")
		case it.password != "" && !passwords[it.password] && len(passwords) == maxBatchPasswords:
			it.err = apierr.InvalidArgument("password", fmt.Sprintf("a batch may use at most %d different passwords", maxBatchPasswords))
		}
		if it.err == nil {
			if l.Custom {
				aliases[l.Code] = true
			}
			if it.password != "" {
				passwords[it.password] = true
			}
		}
	}
	if err := s.createItems(ctx, items); err != nil {
		return nil, err
	}
	resp := &shortenerv1.BatchCreateShortUrlsResponse{Results: make([]*shortenerv1.BatchCreateShortUrlsResult, len(items))}
	for i, it := range items {
		r := &shortenerv1.BatchCreateShortUrlsResult{}
		if it.err != nil {
			st, _ := status.FromError(it.err)
			r.ErrorCode, r.ErrorMessage = int32(st.Code()), st.Message()
		} else {
			r.ShortUrl = s.toProto(it.link)
		}
		resp.Results[i] = r
	}
	return resp, nil
}

// createItems stores the items without an error, setting err on those that
// fail on their own (alias taken). It fails as a whole only when the store
// does.
func (s *Service) createItems(ctx context.Context, items []*item) error {
	hashes := map[string]string{}
	for _, it := range items {
		if it.err != nil || it.password == "" {
			continue
		}
		h, ok := hashes[it.password]
		if !ok {
			var err error
			if h, err = password.Hash(it.password); err != nil {
				return apierr.Internal(ctx, err)
			}
			hashes[it.password] = h
		}
		it.link.PasswordHash = h
	}
	var pending []*item
	for _, it := range items {
		if it.err == nil {
			pending = append(pending, it)
		}
	}
	var created []string
	defer func() { s.invalidate(ctx, false, created...) }()
	// A generated code can only be refused when a custom alias took that
	// value first; its item then gets the next id. Rounds are bounded all
	// the same.
	for round := 0; len(pending) > 0; round++ {
		if round == 5 {
			for _, it := range pending {
				it.err = apierr.Unavailable("could not allocate a code; retry", time.Second)
			}
			break
		}
		var gen []*item
		for _, it := range pending {
			if !it.link.Custom {
				gen = append(gen, it)
			}
		}
		codes, err := s.newCodes(ctx, len(gen))
		if err != nil {
			if errors.Is(err, errCodeSpaceExhausted) {
				return apierr.Internal(ctx, err)
			}
			return apierr.FromStorage(ctx, err, "")
		}
		for i, it := range gen {
			it.link.Code = codes[i]
		}
		links := make([]Link, len(pending))
		for i, it := range pending {
			links[i] = it.link
		}
		ok, err := s.store.CreateLinks(ctx, links)
		if err != nil {
			return apierr.FromStorage(ctx, err, "")
		}
		var next []*item
		for i, it := range pending {
			switch {
			case ok[i]:
				created = append(created, it.link.Code)
			case it.link.Custom:
				it.err = apierr.AlreadyExists("alias "+strconv.Quote(it.link.Code)+" is taken", "ALIAS_TAKEN")
			default:
				next = append(next, it)
			}
		}
		pending = next
	}
	return nil
}

// newCodes returns n fresh generated codes, none of them a reserved word.
func (s *Service) newCodes(ctx context.Context, n int) ([]string, error) {
	out := make([]string, 0, n)
	for len(out) < n {
		ids, err := s.ids.take(ctx, n-len(out))
		if err != nil {
			return nil, err
		}
		for _, id := range ids {
			code, err := s.codec.encode(id)
			if err != nil {
				return nil, err
			}
			if !reserved(code) {
				out = append(out, code)
			}
		}
	}
	return out, nil
}

// ---- redirect ----

//go:embed form.html
var formHTML string

// html/template escapes the code in the text and in the form's action.
var formTemplate = template.Must(template.New("form").Parse(formHTML))

// FollowShortUrl implements ShortenerService.
func (s *Service) FollowShortUrl(ctx context.Context, req *shortenerv1.FollowShortUrlRequest) (*httpbody.HttpBody, error) {
	release, err := s.admit()
	if err != nil {
		return nil, err
	}
	defer release()
	code := req.GetCode()
	e, refused, err := s.live(ctx, code)
	if err != nil {
		if refused != 0 {
			redirectsTotal.WithLabelValues(strconv.Itoa(refused)).Inc()
		}
		return nil, err
	}
	now := s.now()
	if e.PasswordHash != "" {
		pw := req.GetPassword()
		if pw == "" {
			return s.passwordForm(ctx, code, http.StatusOK, "")
		}
		key := "short:pw:" + code + ":" + wire.FromContext(ctx).Addr.String()
		if err := s.limit(ctx, key, s.cfg.PasswordLimit, "too many password attempts; retry later"); err != nil {
			return nil, err
		}
		ok := false
		if len(pw) <= MaxPasswordBytes {
			if ok, err = password.Check(e.PasswordHash, pw); err != nil {
				return nil, apierr.Internal(ctx, err)
			}
		}
		if !ok {
			return s.passwordForm(ctx, code, http.StatusForbidden, "Wrong password.")
		}
	}
	s.clicks.add(s.clickOf(ctx, code, now))
	cc := "private, no-store" // a 302 must come back to us: every click counts
	if e.Kind == http.StatusMovedPermanently {
		cc = "public, max-age=" + strconv.Itoa(int(s.cfg.PermanentMaxAge.Seconds()))
	}
	wire.SetStatus(ctx, e.Kind)
	wire.SetHeader(ctx, "location", e.Target)
	wire.SetHeader(ctx, "cache-control", cc)
	redirectsTotal.WithLabelValues(strconv.Itoa(e.Kind)).Inc()
	body := `<!doctype html><meta charset="utf-8"><title>Redirecting</title><a href="` +
		html.EscapeString(e.Target) + `">` + html.EscapeString(e.Target) + "</a>\n"
	return &httpbody.HttpBody{ContentType: "text/html; charset=utf-8", Data: []byte(body)}, nil
}

func (s *Service) passwordForm(ctx context.Context, code string, status int, msg string) (*httpbody.HttpBody, error) {
	var buf bytes.Buffer
	if err := formTemplate.Execute(&buf, struct{ Code, Error string }{code, msg}); err != nil {
		return nil, apierr.Internal(ctx, err)
	}
	wire.SetStatus(ctx, status)
	wire.SetHeader(ctx, "cache-control", "private, no-store")
	redirectsTotal.WithLabelValues(strconv.Itoa(status)).Inc()
	return &httpbody.HttpBody{ContentType: "text/html; charset=utf-8", Data: buf.Bytes()}, nil
}

// clickOf copies what the click needs from the call (the country is the
// one the gateway vouches for, see wire).
func (s *Service) clickOf(ctx context.Context, code string, now time.Time) rawClick {
	e := wire.FromContext(ctx)
	return rawClick{
		code: code, at: now.UTC(), addr: e.Addr,
		agent: cut(e.UserAgent, maxHeaderBytes), referer: cut(e.Referer, maxHeaderBytes), country: cut(e.Country, 8),
	}
}

// enrich runs in the flusher: the costly parts of a click.
func (s *Service) enrich(r rawClick) Click {
	c := Click{Code: r.code, At: r.at, Agent: s.agents.classify(r.agent), Referer: refererHost(r.referer)}
	c.Country = normCountry(r.country)
	if c.Country == "" && s.geo != nil && r.addr.IsValid() {
		c.Country = normCountry(s.geo.country(r.addr))
	}
	if c.Country == "" {
		c.Country = UnknownCountry
	}
	return c
}

// ---- manage ----

// owned reads a live link the caller may manage.
func (s *Service) owned(ctx context.Context, code string) (Link, auth.Principal, error) {
	p, err := auth.Require(ctx)
	if err != nil {
		return Link{}, p, err
	}
	if err := validCode(code); err != nil {
		return Link{}, p, err
	}
	l, err := s.store.GetLink(ctx, code)
	if err != nil {
		return Link{}, p, s.storeErr(ctx, err)
	}
	if !l.DeletedAt.IsZero() {
		return Link{}, p, gone(ctx, "deleted")
	}
	if l.OwnerID != p.UserID && !p.Admin {
		return Link{}, p, apierr.PermissionDenied("only the link's owner may do this")
	}
	return l, p, nil
}

// GetShortUrl implements ShortenerService.
func (s *Service) GetShortUrl(ctx context.Context, req *shortenerv1.GetShortUrlRequest) (*shortenerv1.GetShortUrlResponse, error) {
	release, err := s.admit()
	if err != nil {
		return nil, err
	}
	defer release()
	l, _, err := s.owned(ctx, req.GetCode())
	if err != nil {
		return nil, err
	}
	return &shortenerv1.GetShortUrlResponse{ShortUrl: s.toProto(l)}, nil
}

// ListShortUrls implements ShortenerService.
func (s *Service) ListShortUrls(ctx context.Context, req *shortenerv1.ListShortUrlsRequest) (*shortenerv1.ListShortUrlsResponse, error) {
	release, err := s.admit()
	if err != nil {
		return nil, err
	}
	defer release()
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
	rows, err := s.store.ListLinks(ctx, p.UserID, after, size+1)
	if err != nil {
		return nil, apierr.FromStorage(ctx, err, "")
	}
	resp := &shortenerv1.ListShortUrlsResponse{}
	if len(rows) > size {
		rows = rows[:size]
		last := rows[size-1]
		resp.NextPageToken = page.Token(last.CreatedAt, last.Code)
	}
	for _, l := range rows {
		resp.ShortUrls = append(resp.ShortUrls, s.toProto(l))
	}
	return resp, nil
}

// UpdateShortUrl implements ShortenerService.
func (s *Service) UpdateShortUrl(ctx context.Context, req *shortenerv1.UpdateShortUrlRequest) (*shortenerv1.UpdateShortUrlResponse, error) {
	release, err := s.admit()
	if err != nil {
		return nil, err
	}
	defer release()
	var v apierr.Validator
	var u LinkUpdate
	now := s.now().UTC().Truncate(time.Microsecond)
	if req.LongUrl != nil {
		target, problem := s.targets.normalize(req.GetLongUrl())
		v.Check(problem == "", "long_url", problem)
		u.Target = &target
	}
	if req.ExpiresInSec != nil {
		e := req.GetExpiresInSec()
		v.Check(e >= 0 && e <= maxExpirySec, "expires_in_sec", fmt.Sprintf("must be 0 (no expiry) or 1 to %d seconds", maxExpirySec))
		var at time.Time
		if e > 0 {
			at = now.Add(time.Duration(e) * time.Second)
		}
		u.ExpiresAt = &at
	}
	if req.Password != nil {
		v.Check(len(req.GetPassword()) <= MaxPasswordBytes, "password", "must be at most 128 bytes")
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	l, _, err := s.owned(ctx, req.GetCode())
	if err != nil {
		return nil, err
	}
	if u == (LinkUpdate{}) && req.Password == nil {
		return &shortenerv1.UpdateShortUrlResponse{ShortUrl: s.toProto(l)}, nil
	}
	if req.Password != nil {
		h := ""
		if pw := req.GetPassword(); pw != "" {
			if h, err = password.Hash(pw); err != nil {
				return nil, apierr.Internal(ctx, err)
			}
		}
		u.PasswordHash = &h
	}
	l, err = s.store.UpdateLink(ctx, l.Code, u)
	if err != nil {
		return nil, s.storeErr(ctx, err)
	}
	s.invalidate(ctx, true, l.Code)
	return &shortenerv1.UpdateShortUrlResponse{ShortUrl: s.toProto(l)}, nil
}

// DeleteShortUrl implements ShortenerService.
func (s *Service) DeleteShortUrl(ctx context.Context, req *shortenerv1.DeleteShortUrlRequest) (*shortenerv1.DeleteShortUrlResponse, error) {
	release, err := s.admit()
	if err != nil {
		return nil, err
	}
	defer release()
	l, _, err := s.owned(ctx, req.GetCode())
	if err != nil {
		return nil, err
	}
	if err := s.store.DeleteLink(ctx, l.Code, s.now().UTC().Truncate(time.Microsecond)); err != nil {
		return nil, s.storeErr(ctx, err)
	}
	s.invalidate(ctx, true, l.Code)
	return &shortenerv1.DeleteShortUrlResponse{}, nil
}

// maxStatsDays bounds a stats range: to may be at most 366 days after from.
const maxStatsDays = 366

// GetStats implements ShortenerService.
func (s *Service) GetStats(ctx context.Context, req *shortenerv1.GetStatsRequest) (*shortenerv1.GetStatsResponse, error) {
	release, err := s.admit()
	if err != nil {
		return nil, err
	}
	defer release()
	today := s.now().UTC().Truncate(24 * time.Hour)
	to, from := today, time.Time{}
	var v apierr.Validator
	if req.GetTo() != "" {
		var err error
		to, err = time.Parse(time.DateOnly, req.GetTo())
		v.Check(err == nil, "to", "must be a date as YYYY-MM-DD")
	}
	if req.GetFrom() != "" {
		var err error
		from, err = time.Parse(time.DateOnly, req.GetFrom())
		v.Check(err == nil, "from", "must be a date as YYYY-MM-DD")
	} else {
		from = to.AddDate(0, 0, -29)
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	if to.Before(from) {
		return nil, apierr.InvalidArgument("to", "must not be before from")
	}
	if to.Sub(from) > maxStatsDays*24*time.Hour {
		return nil, apierr.InvalidArgument("to", fmt.Sprintf("must be at most %d days after from", maxStatsDays))
	}
	l, _, err := s.owned(ctx, req.GetCode())
	if err != nil {
		return nil, err
	}
	rows, err := s.store.ClickStats(ctx, l.Code, from, to)
	if err != nil {
		return nil, apierr.FromStorage(ctx, err, "")
	}
	resp := &shortenerv1.GetStatsResponse{Code: l.Code}
	index := map[string]*shortenerv1.DayClicks{}
	for d := from; !d.After(to); d = d.AddDate(0, 0, 1) {
		dc := &shortenerv1.DayClicks{Date: d.Format(time.DateOnly)}
		index[dc.Date] = dc
		resp.Days = append(resp.Days, dc)
	}
	countries := map[string]*shortenerv1.CountryClicks{}
	for _, r := range rows {
		dc := index[r.Date.UTC().Format(time.DateOnly)]
		cc := countries[r.Country]
		if cc == nil {
			cc = &shortenerv1.CountryClicks{Country: r.Country}
			countries[r.Country] = cc
		}
		if r.Bot {
			cc.BotClicks += r.Clicks
			resp.TotalBotClicks += r.Clicks
			if dc != nil {
				dc.BotClicks += r.Clicks
			}
		} else {
			cc.HumanClicks += r.Clicks
			resp.TotalHumanClicks += r.Clicks
			if dc != nil {
				dc.HumanClicks += r.Clicks
			}
		}
	}
	for _, cc := range countries {
		resp.Countries = append(resp.Countries, cc)
	}
	slices.SortFunc(resp.Countries, func(a, b *shortenerv1.CountryClicks) int {
		if d := (b.HumanClicks + b.BotClicks) - (a.HumanClicks + a.BotClicks); d != 0 {
			if d > 0 {
				return 1
			}
			return -1
		}
		return strings.Compare(a.Country, b.Country)
	})
	return resp, nil
}

// GetQrCode implements ShortenerService.
func (s *Service) GetQrCode(ctx context.Context, req *shortenerv1.GetQrCodeRequest) (*httpbody.HttpBody, error) {
	release, err := s.admit()
	if err != nil {
		return nil, err
	}
	defer release()
	size := int(req.GetSize())
	if size == 0 {
		size = 256
	}
	if size < 64 || size > 1024 {
		return nil, apierr.InvalidArgument("size", "must be 0 (256) or 64 to 1024 pixels")
	}
	code := req.GetCode()
	if _, _, err := s.live(ctx, code); err != nil {
		return nil, err
	}
	png, err := qrcode.Encode(s.shortURL(code), qrcode.Medium, size)
	if err != nil {
		return nil, apierr.Internal(ctx, err)
	}
	wire.SetHeader(ctx, "cache-control", "public, max-age=3600")
	return &httpbody.HttpBody{ContentType: "image/png", Data: png}, nil
}

// ---- conversions ----

func (s *Service) shortURL(code string) string { return s.base + "/" + code }

func (s *Service) toProto(l Link) *shortenerv1.ShortUrl {
	out := &shortenerv1.ShortUrl{
		Code: l.Code, ShortUrl: s.shortURL(l.Code), LongUrl: l.Target, OwnerUserId: l.OwnerID,
		RedirectKind:      shortenerv1.RedirectKind_REDIRECT_KIND_FOUND,
		PasswordProtected: l.PasswordHash != "", CreateTime: timestamppb.New(l.CreatedAt), ClickCount: l.Clicks,
	}
	if l.Kind == http.StatusMovedPermanently {
		out.RedirectKind = shortenerv1.RedirectKind_REDIRECT_KIND_MOVED_PERMANENTLY
	}
	if !l.ExpiresAt.IsZero() {
		out.ExpireTime = timestamppb.New(l.ExpiresAt)
	}
	if !l.LastAccessAt.IsZero() {
		out.LastAccessTime = timestamppb.New(l.LastAccessAt)
	}
	return out
}

func decodeCursor(tok string) (*Cursor, error) {
	at, key, ok, err := page.Parse(tok, codeRE.MatchString)
	if !ok {
		return nil, err
	}
	return &Cursor{CreatedAt: at, Code: key}, nil
}
