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
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/singleflight"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	votev1 "github.com/apiplatform/platform/gen/go/vote/v1"
	"github.com/apiplatform/platform/server/identity"
	"github.com/apiplatform/platform/server/platform/apierr"
	"github.com/apiplatform/platform/server/platform/auth"
	"github.com/apiplatform/platform/server/platform/bus"
	"github.com/apiplatform/platform/server/platform/config"
	"github.com/apiplatform/platform/server/platform/ratelimit"
	"github.com/apiplatform/platform/server/platform/storeerr"
	"github.com/apiplatform/platform/server/platform/text"
	"github.com/apiplatform/platform/server/platform/wire"
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

var candidateIDRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// canonicalUUID accepts ids in the form this API hands out.
func canonicalUUID(s string) bool {
	u, err := uuid.Parse(s)
	return err == nil && u.String() == s
}

func requireElectionID(id string) error {
	if !canonicalUUID(id) {
		return apierr.InvalidArgument("election_id", "must be an election id (a lower-case UUID)")
	}
	return nil
}

// ---- elections ----

// election returns an election for the vote path and the result RPCs,
// from a per-process cache. What the cache may hold stale is safe there:
// title, candidates and home region never change, an election that is
// Over stays over, and any other state is checked again by the store when
// the vote is inserted.
func (s *Service) election(ctx context.Context, id string) (Election, error) {
	if c, ok := s.elections.Get(id); ok && s.now().Sub(c.at) < time.Minute {
		return c.e, nil
	}
	v, err, _ := s.electionLoads.Do(id, func() (any, error) {
		e, err := s.store.GetElection(context.WithoutCancel(ctx), id)
		if err != nil {
			return nil, err
		}
		s.elections.Add(id, cachedElection{e, s.now()})
		return e, nil
	})
	if err != nil {
		return Election{}, apierr.FromStorage(ctx, err, "election not found")
	}
	return v.(Election), nil
}

func stateProto(st State) votev1.ElectionState {
	switch st {
	case StateDraft:
		return votev1.ElectionState_ELECTION_STATE_DRAFT
	case StateOpen:
		return votev1.ElectionState_ELECTION_STATE_OPEN
	case StateClosed:
		return votev1.ElectionState_ELECTION_STATE_CLOSED
	}
	return votev1.ElectionState_ELECTION_STATE_UNSPECIFIED
}

func optionalTime(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func electionProto(e Election) *votev1.Election {
	out := &votev1.Election{
		ElectionId: e.ID, Title: e.Title, State: stateProto(e.State),
		StartTime: optionalTime(e.OpensAt), EndTime: optionalTime(e.ClosesAt),
		CreateTime: timestamppb.New(e.CreatedAt), HomeRegion: e.HomeRegion,
	}
	for _, c := range e.Candidates {
		out.Candidates = append(out.Candidates, &votev1.Candidate{CandidateId: c.ID, Name: c.Name})
	}
	return out
}

// CreateElection implements VoteService.
func (s *Service) CreateElection(ctx context.Context, req *votev1.CreateElectionRequest) (*votev1.CreateElectionResponse, error) {
	p, err := auth.Require(ctx)
	if err != nil {
		return nil, err
	}
	now := s.now()
	var v apierr.Validator
	p200 := text.Display(req.GetTitle(), 200)
	v.Check(p200 == "", "title", p200)
	cs := req.GetCandidates()
	v.Check(len(cs) >= 2 && len(cs) <= 100, "candidates", "must list 2 to 100 candidates")
	seen := map[string]bool{}
	for i, c := range cs {
		if i >= 100 {
			break
		}
		id := c.GetCandidateId()
		v.Check(candidateIDRE.MatchString(id), fmt.Sprintf("candidates[%d].candidate_id", i), "must be 1 to 64 letters, digits, '-' or '_'")
		v.Check(!seen[id], fmt.Sprintf("candidates[%d].candidate_id", i), "repeats another candidate's id")
		seen[id] = true
		pn := text.Display(c.GetName(), 100)
		v.Check(pn == "", fmt.Sprintf("candidates[%d].name", i), pn)
	}
	var opens, closes time.Time
	if t := req.GetStartTime(); t != nil {
		v.Check(t.CheckValid() == nil, "start_time", "is not a valid timestamp")
		opens = t.AsTime().UTC().Truncate(time.Microsecond)
	}
	if t := req.GetEndTime(); t != nil {
		v.Check(t.CheckValid() == nil, "end_time", "is not a valid timestamp")
		closes = t.AsTime().UTC().Truncate(time.Microsecond)
		v.Check(closes.After(now), "end_time", "must be in the future")
		v.Check(opens.IsZero() || closes.After(opens), "end_time", "must be after start_time")
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	e := Election{
		ID: uuid.NewString(), Title: req.GetTitle(), State: StateDraft, OpensAt: opens, ClosesAt: closes,
		HomeRegion: s.region, CreatedBy: p.UserID, CreatedAt: now,
	}
	for _, c := range cs {
		e.Candidates = append(e.Candidates, Candidate{ID: c.GetCandidateId(), Name: c.GetName()})
	}
	if err := s.store.CreateElection(ctx, e); err != nil {
		return nil, apierr.FromStorage(ctx, err, "")
	}
	wire.SetStatus(ctx, http.StatusCreated)
	return &votev1.CreateElectionResponse{Election: electionProto(e)}, nil
}

// GetElection implements VoteService. It reads the store: the state shown
// is current, not cached.
func (s *Service) GetElection(ctx context.Context, req *votev1.GetElectionRequest) (*votev1.GetElectionResponse, error) {
	if err := requireElectionID(req.GetElectionId()); err != nil {
		return nil, err
	}
	e, err := s.store.GetElection(ctx, req.GetElectionId())
	if err != nil {
		return nil, apierr.FromStorage(ctx, err, "election not found")
	}
	s.elections.Add(e.ID, cachedElection{e, s.now()})
	return &votev1.GetElectionResponse{Election: electionProto(e)}, nil
}

var (
	errReopen      = apierr.FailedPrecondition("a closed election cannot be opened again", "ELECTION_CLOSED")
	errWindowEnded = apierr.FailedPrecondition("the election's voting window has already ended", "ELECTION_CLOSED")
)

func (s *Service) transition(ctx context.Context, id string, fn func(e *Election, now time.Time) error) (Election, error) {
	if err := requireElectionID(id); err != nil {
		return Election{}, err
	}
	now := s.now()
	var before State
	e, err := s.store.UpdateElection(ctx, id, func(e *Election) error { before = e.State; return fn(e, now) })
	switch {
	case errors.Is(err, errReopen), errors.Is(err, errWindowEnded):
		return Election{}, err
	case err != nil:
		return Election{}, apierr.FromStorage(ctx, err, "election not found")
	}
	s.elections.Add(e.ID, cachedElection{e, s.now()})
	if e.State != before {
		s.announce(e)
	}
	return e, nil
}

// OpenElection implements VoteService: a draft opens now (its window starts
// now unless it was given a start); opening an open election changes
// nothing.
func (s *Service) OpenElection(ctx context.Context, req *votev1.OpenElectionRequest) (*votev1.OpenElectionResponse, error) {
	e, err := s.transition(ctx, req.GetElectionId(), func(e *Election, now time.Time) error {
		switch {
		case e.State == StateOpen:
			return nil
		case e.State == StateClosed:
			return errReopen
		case !e.ClosesAt.IsZero() && !now.Before(e.ClosesAt):
			return errWindowEnded
		}
		e.State = StateOpen
		if e.OpensAt.IsZero() {
			e.OpensAt = now
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &votev1.OpenElectionResponse{Election: electionProto(e)}, nil
}

// CloseElection implements VoteService: votes are refused from now on
// (closing a closed election changes nothing). An election closed before
// its window began loses its start: it never opened.
func (s *Service) CloseElection(ctx context.Context, req *votev1.CloseElectionRequest) (*votev1.CloseElectionResponse, error) {
	e, err := s.transition(ctx, req.GetElectionId(), func(e *Election, now time.Time) error {
		if e.State == StateClosed {
			return nil
		}
		e.State = StateClosed
		if e.ClosesAt.IsZero() || now.Before(e.ClosesAt) {
			e.ClosesAt = now
		}
		if !e.OpensAt.IsZero() && !e.OpensAt.Before(e.ClosesAt) {
			e.OpensAt = time.Time{}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &votev1.CloseElectionResponse{Election: electionProto(e)}, nil
}

// ---- status ----

// GetVoteStatus implements VoteService.
func (s *Service) GetVoteStatus(ctx context.Context, req *votev1.GetVoteStatusRequest) (*votev1.GetVoteStatusResponse, error) {
	p, err := auth.Require(ctx)
	if err != nil {
		return nil, err
	}
	var v apierr.Validator
	v.Check(canonicalUUID(req.GetUserId()), "user_id", "must be a user id (a lower-case UUID)")
	v.Check(canonicalUUID(req.GetElectionId()), "election_id", "must be an election id (a lower-case UUID)")
	if err := v.Err(); err != nil {
		return nil, err
	}
	if req.GetUserId() != p.UserID && !p.Admin {
		return nil, apierr.PermissionDenied("only the user themself or an admin may see whether they voted")
	}
	e, err := s.election(ctx, req.GetElectionId())
	if err != nil {
		return nil, err
	}
	vt, err := s.store.GetVote(ctx, e.HomeRegion, e.ID, req.GetUserId())
	if errors.Is(err, storeerr.ErrNotFound) {
		return &votev1.GetVoteStatusResponse{}, nil
	}
	if err != nil {
		return nil, apierr.FromStorage(ctx, err, "")
	}
	return &votev1.GetVoteStatusResponse{Voted: true, VoteId: vt.ID, AcceptedAt: timestamppb.New(vt.CastAt)}, nil
}

// ---- results ----

func tallyProto(e Election, counts Counts, at time.Time) *votev1.Tally {
	t := &votev1.Tally{ElectionId: e.ID, AsOf: timestamppb.New(at)}
	for _, c := range e.Candidates {
		n := counts[c.ID]
		t.Counts = append(t.Counts, &votev1.CandidateCount{CandidateId: c.ID, Votes: n})
		t.TotalVotes += n
	}
	// Votes are only ever added (erasing a user keeps theirs), so the
	// total orders tallies across replicas and reads.
	t.Version = t.TotalVotes
	return t
}

// GetResults implements VoteService: a count of the stored votes.
func (s *Service) GetResults(ctx context.Context, req *votev1.GetResultsRequest) (*votev1.GetResultsResponse, error) {
	if err := requireElectionID(req.GetElectionId()); err != nil {
		return nil, err
	}
	e, err := s.election(ctx, req.GetElectionId())
	if err != nil {
		return nil, err
	}
	at := s.now()
	counts, err := s.store.ExactCounts(ctx, e.HomeRegion, e.ID)
	if err != nil {
		return nil, apierr.FromStorage(ctx, err, "")
	}
	return &votev1.GetResultsResponse{Tally: tallyProto(e, counts, at)}, nil
}

// GetLiveResults implements VoteService.
func (s *Service) GetLiveResults(ctx context.Context, req *votev1.GetLiveResultsRequest) (*votev1.GetLiveResultsResponse, error) {
	if err := requireElectionID(req.GetElectionId()); err != nil {
		return nil, err
	}
	e, err := s.election(ctx, req.GetElectionId())
	if err != nil {
		return nil, err
	}
	t, err := s.liveTally(ctx, e)
	if err != nil {
		return nil, apierr.FromStorage(ctx, err, "")
	}
	return &votev1.GetLiveResultsResponse{Tally: t}, nil
}

// statsSeconds bounds the votes-per-second series (an hour of voting).
const statsSeconds = 3600

// GetStatistics implements VoteService.
func (s *Service) GetStatistics(ctx context.Context, req *votev1.GetStatisticsRequest) (*votev1.GetStatisticsResponse, error) {
	if err := requireElectionID(req.GetElectionId()); err != nil {
		return nil, err
	}
	e, err := s.election(ctx, req.GetElectionId())
	if err != nil {
		return nil, err
	}
	st, err := s.store.Statistics(ctx, e.HomeRegion, e.ID, statsSeconds)
	if err != nil {
		return nil, apierr.FromStorage(ctx, err, "")
	}
	out := &votev1.GetStatisticsResponse{TotalVotes: st.Total}
	for _, sc := range st.PerSecond {
		out.VotesPerSecond = append(out.VotesPerSecond, &votev1.VotesPerSecond{Time: timestamppb.New(sc.Second), Votes: sc.Votes})
	}
	reasons := make([]string, 0, len(st.Rejections))
	for r := range st.Rejections {
		reasons = append(reasons, r)
	}
	slices.Sort(reasons)
	for _, r := range reasons {
		out.Rejections = append(out.Rejections, &votev1.RejectionCount{Reason: r, Count: st.Rejections[r]})
	}
	return out, nil
}

// auditPage is how many records the export reads per store call.
const auditPage = 500

// ExportAudit implements VoteService.
func (s *Service) ExportAudit(req *votev1.ExportAuditRequest, stream grpc.ServerStreamingServer[votev1.ExportAuditResponse]) error {
	ctx := stream.Context()
	if err := requireElectionID(req.GetElectionId()); err != nil {
		return err
	}
	e, err := s.election(ctx, req.GetElectionId())
	if err != nil {
		return err
	}
	var seq int64
	after := ""
	for {
		page, err := s.store.AuditPage(ctx, e.HomeRegion, e.ID, after, auditPage)
		if err != nil {
			return apierr.FromStorage(ctx, err, "")
		}
		for _, r := range page {
			seq++
			outcome := votev1.AuditOutcome_AUDIT_OUTCOME_ACCEPTED
			if r.Outcome == AuditRejected {
				outcome = votev1.AuditOutcome_AUDIT_OUTCOME_REJECTED
			}
			if err := stream.Send(&votev1.ExportAuditResponse{
				Seq: seq, Time: timestamppb.New(r.At), Outcome: outcome, Reason: r.Reason, UserId: r.UserID,
				CandidateId: r.CandidateID, VoteId: r.VoteID, ClientNetwork: r.ClientNetwork,
			}); err != nil {
				return err
			}
			after = r.ID
		}
		if len(page) < auditPage {
			return nil
		}
	}
}
