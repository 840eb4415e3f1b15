// Package vote implements vote.v1.VoteService: elections run by admins,
// exactly one vote per registered user and election, live results.
//
// A vote is acknowledged only once its transaction committed (group commit:
// see committer.go), in which the vote, its audit row and its counter
// increment are written together; the primary key (home region, election,
// user) makes a second vote impossible whatever the concurrency. Live
// results sum sharded counters (so votes do not queue on one row) and are
// pushed to StreamResults subscribers on every replica through the bus.
package vote

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/singleflight"
	"google.golang.org/grpc"

	votev1 "github.com/apiplatform/platform/gen/go/vote/v1"
	"github.com/apiplatform/platform/server/identity"
	"github.com/apiplatform/platform/server/platform/auth"
	"github.com/apiplatform/platform/server/platform/bus"
	"github.com/apiplatform/platform/server/platform/config"
	"github.com/apiplatform/platform/server/platform/ratelimit"
)

// Policies of this service's methods.
var Policies = auth.Policies{
	votev1.VoteService_CreateElection_FullMethodName: auth.Admin,
	votev1.VoteService_GetElection_FullMethodName:    auth.Public,
	votev1.VoteService_ListElections_FullMethodName:  auth.Public,
	votev1.VoteService_OpenElection_FullMethodName:   auth.Admin,
	votev1.VoteService_CloseElection_FullMethodName:  auth.Admin,
	votev1.VoteService_CastVote_FullMethodName:       auth.Registered,
	votev1.VoteService_GetVoteStatus_FullMethodName:  auth.User, // self or admin, checked in the handler
	votev1.VoteService_GetResults_FullMethodName:     auth.Public,
	votev1.VoteService_GetLiveResults_FullMethodName: auth.Public,
	votev1.VoteService_StreamResults_FullMethodName:  auth.Public,
	votev1.VoteService_GetStatistics_FullMethodName:  auth.Admin,
	votev1.VoteService_ExportAudit_FullMethodName:    auth.Admin,
}

// Config of the service. Zero fields take DefaultConfig's values (noted
// in parentheses).
type Config struct {
	// Region is the home region of the elections this server creates.
	Region string
	// MaxBatch bounds the votes of one group-commit transaction (500).
	MaxBatch int
	// MaxWait is how long a batch waits to fill while another commit is in
	// flight (2ms); an idle database gets a vote at once.
	MaxWait time.Duration
	// Committers is how many batch transactions may be in flight (4).
	Committers int
	// CounterShards spreads each candidate's live counter over rows (32).
	CounterShards int
	// QueueWait is how long a vote waits for room in a full commit queue
	// before UNAVAILABLE (1s).
	QueueWait time.Duration
	// Direct commits each vote in a transaction of its own: the naive
	// baseline the benchmark compares group commit with.
	Direct bool

	// UserLimit bounds vote attempts per user (10/min, burst 10);
	// AddrLimit per client address and election (600/min, burst 300).
	UserLimit, AddrLimit ratelimit.Limit
	// MinAccountAge refuses accounts younger than this (0: rule off).
	MinAccountAge time.Duration
	// MaxAccountsPerAddr refuses the next account voting in an election
	// from one address (clientaddr.Key: an IPv4 address or an IPv6 /64)
	// within AccountsWindow and the window before it (default 30 in 10m
	// windows, room for a household or an office behind one address;
	// negative: rule off).
	MaxAccountsPerAddr int
	AccountsWindow     time.Duration

	// CaptchaURL and CaptchaSecret configure a siteverify endpoint (empty:
	// no CAPTCHA, the embedded default); CaptchaTimeout bounds each check
	// (3s). Captcha, when set, is used instead (any provider).
	CaptchaURL, CaptchaSecret string
	CaptchaTimeout            time.Duration
	Captcha                   Verifier

	// LiveMaxAge bounds how stale a served live count may be (500ms).
	LiveMaxAge time.Duration
	// PublishEvery is how often changed tallies are published (250ms).
	PublishEvery time.Duration
	// StreamBuffer is each stream's backlog before it is dropped as too
	// slow (16 tallies).
	StreamBuffer int
	// StreamHeartbeat is the longest a results stream stays silent: a
	// quiet one sends a heartbeat then (15s; 0 means 15s too).
	StreamHeartbeat time.Duration
}

// DefaultMaxAccountsPerAddr is the accounts-per-address cap voting runs
// with unless told otherwise.
const DefaultMaxAccountsPerAddr = 30

// DefaultConfig is what the server runs with unless told otherwise.
func DefaultConfig() Config {
	return Config{
		MaxBatch:           500,
		MaxWait:            2 * time.Millisecond,
		Committers:         4,
		CounterShards:      32,
		QueueWait:          time.Second,
		UserLimit:          ratelimit.Limit{Rate: 10, Period: time.Minute, Burst: 10},
		AddrLimit:          ratelimit.Limit{Rate: 600, Period: time.Minute, Burst: 300},
		MaxAccountsPerAddr: DefaultMaxAccountsPerAddr,
		AccountsWindow:     10 * time.Minute,
		CaptchaTimeout:     3 * time.Second,
		LiveMaxAge:         500 * time.Millisecond,
		PublishEvery:       250 * time.Millisecond,
		StreamBuffer:       16,
		StreamHeartbeat:    15 * time.Second,
	}
}

// Users reads accounts (for their age).
type Users interface {
	GetUser(ctx context.Context, id string) (identity.User, error)
}

// Deps are what the service runs on.
type Deps struct {
	Store   Store
	Users   Users
	Limiter ratelimit.Limiter
	// Bus carries tallies to every replica's streams.
	Bus bus.Bus
	// Redis keeps the accounts-per-address sets; nil: in process.
	Redis redis.UniversalClient
	Log   *slog.Logger
}

// Service implements VoteService.
type Service struct {
	votev1.UnimplementedVoteServiceServer
	cfg      Config
	store    Store
	limiter  ratelimit.Limiter
	bus      bus.Bus
	region   string
	log      *slog.Logger
	captcha  Verifier
	accounts accountSet
	created  *createdAtCache
	now      func() time.Time

	commits *committer // nil when Direct

	mu       sync.Mutex
	inflight map[string]*flight // election/user -> the attempt on its way

	elections     *lru.Cache[string, cachedElection]
	electionLoads singleflight.Group

	tallies tallies
	feeds   feeds
	stop    chan struct{}
	wg      sync.WaitGroup
}

type cachedElection struct {
	e  Election
	at time.Time
}

// New builds the service and starts its committers and tally publisher;
// Close stops them.
func New(_ context.Context, d Deps, cfg Config) (*Service, error) {
	config.FillZero(&cfg, DefaultConfig())
	if d.Log == nil {
		d.Log = slog.Default()
	}
	s := &Service{
		cfg: cfg, store: d.Store, limiter: d.Limiter, bus: d.Bus, region: cfg.Region, log: d.Log,
		captcha: cfg.Captcha, now: func() time.Time { return time.Now().UTC().Truncate(time.Microsecond) },
		inflight: map[string]*flight{}, stop: make(chan struct{}),
	}
	if s.captcha == nil && cfg.CaptchaURL != "" {
		s.captcha = &SiteVerify{URL: cfg.CaptchaURL, Secret: cfg.CaptchaSecret, Client: &http.Client{Timeout: cfg.CaptchaTimeout}}
	}
	if d.Redis != nil {
		s.accounts = redisAccounts{d.Redis}
	} else {
		s.accounts = newMemoryAccounts()
	}
	createdAt, _ := lru.New[string, time.Time](100_000)
	s.created = &createdAtCache{users: d.Users, cache: createdAt}
	s.elections, _ = lru.New[string, cachedElection](10_000)
	s.tallies.init()
	s.feeds.m = map[string]*feed{}
	if !cfg.Direct {
		s.commits = newCommitter(d.Store, d.Log, cfg, s.committed)
	}
	s.wg.Add(1)
	go s.publishLoop()
	return s, nil
}

// Close commits what is queued and stops the background work. Call it
// after the gRPC server stopped.
func (s *Service) Close() error {
	if s.commits != nil {
		s.commits.close()
	}
	close(s.stop)
	s.wg.Wait()
	return nil
}

// Register registers the service on a gRPC server.
func (s *Service) Register(gs grpc.ServiceRegistrar) { votev1.RegisterVoteServiceServer(gs, s) }

// ForgetUser erases a deleted user's personal data from votes and the
// audit trail; their votes keep counting. Identity calls it when an
// account is deleted.
func (s *Service) ForgetUser(ctx context.Context, userID string) error {
	if err := s.store.ForgetUser(ctx, userID); err != nil {
		return err
	}
	s.created.cache.Remove(userID)
	return nil
}

// ---- validation ----
