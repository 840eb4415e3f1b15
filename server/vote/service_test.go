package vote_test

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	votev1 "github.com/apiplatform/platform/gen/go/vote/v1"
	"github.com/apiplatform/platform/server/identity"
	"github.com/apiplatform/platform/server/platform/auth"
	"github.com/apiplatform/platform/server/platform/bus"
	"github.com/apiplatform/platform/server/platform/ratelimit"
	"github.com/apiplatform/platform/server/platform/storeerr"
	"github.com/apiplatform/platform/server/platform/wire"
	"github.com/apiplatform/platform/server/storage/embedded"
	"github.com/apiplatform/platform/server/vote"
)

// Unit tests of what the end-to-end tests cannot pin down: how votes are
// grouped into transactions, what a failed transaction answers, and a
// stream that cannot keep up. The store is the real embedded engine behind
// a wrapper that observes (and may delay or fail) each batch.

type observedStore struct {
	vote.Store
	mu      sync.Mutex
	batches []int // attempts per CommitVotes
	delay   time.Duration
	fail    error
}

func (o *observedStore) CommitVotes(ctx context.Context, b vote.Batch) ([]vote.Result, error) {
	o.mu.Lock()
	delay, fail := o.delay, o.fail
	if len(b.Attempts) > 0 {
		o.batches = append(o.batches, len(b.Attempts))
	}
	o.mu.Unlock()
	time.Sleep(delay)
	if fail != nil {
		return nil, fail
	}
	return o.Store.CommitVotes(ctx, b)
}

type env struct {
	svc   *vote.Service
	store *observedStore
	users identity.Store
	bus   bus.Bus
	admin context.Context
}

func newEnv(t *testing.T, cfg vote.Config) *env {
	t.Helper()
	st, err := embedded.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	b := bus.NewMemory()
	t.Cleanup(func() { _ = b.Close() })
	obs := &observedStore{Store: st}
	cfg.Region = "unit"
	svc, err := vote.New(context.Background(), vote.Deps{Store: obs, Users: st, Limiter: ratelimit.NewMemory(1000), Bus: b}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Close() })
	return &env{svc: svc, store: obs, users: st, bus: b, admin: auth.WithPrincipal(context.Background(), auth.Principal{UserID: uuid.NewString(), Admin: true})}
}

// voter is a registered user's call context.
func (e *env) voter(t *testing.T) context.Context {
	t.Helper()
	u := identity.User{ID: uuid.NewString(), Username: "u" + uuid.NewString()[:8], Role: identity.RoleUser, CreatedAt: time.Now().UTC()}
	if err := e.users.CreateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	ctx := auth.WithPrincipal(context.Background(), auth.Principal{UserID: u.ID})
	return wire.WithEdge(ctx, wire.Edge{Addr: netip.MustParseAddr("192.0.2.7")})
}

func (e *env) election(t *testing.T) string {
	t.Helper()
	res, err := e.svc.CreateElection(e.admin, &votev1.CreateElectionRequest{Title: "t", Candidates: []*votev1.Candidate{
		{CandidateId: "a", Name: "A"}, {CandidateId: "b", Name: "B"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	id := res.GetElection().GetElectionId()
	if _, err := e.svc.OpenElection(e.admin, &votev1.OpenElectionRequest{ElectionId: id}); err != nil {
		t.Fatal(err)
	}
	return id
}

var roomy = ratelimit.Limit{Rate: 1000, Period: time.Second, Burst: 1000}

// Votes arriving while a commit is in flight wait for the next one, which
// takes up to MaxBatch of them: many votes, few transactions, none bigger
// than the bound.
func TestGroupCommitBatches(t *testing.T) {
	e := newEnv(t, vote.Config{MaxBatch: 8, Committers: 1, MaxWait: 50 * time.Millisecond, UserLimit: roomy, AddrLimit: roomy,
		MaxAccountsPerAddr: -1}) // every voter here shares one address
	e.store.delay = 30 * time.Millisecond
	id := e.election(t)
	const n = 50
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		ctx := e.voter(t)
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = e.svc.CastVote(ctx, &votev1.CastVoteRequest{ElectionId: id, CandidateId: "a"})
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	total := 0
	for _, b := range e.store.batches {
		if b > 8 {
			t.Fatalf("a batch of %d votes, bound 8: %v", b, e.store.batches)
		}
		total += b
	}
	t.Logf("%d votes in transactions of %v", n, e.store.batches)
	if total != n || len(e.store.batches) > n/4 {
		t.Fatalf("batches %v: want %d votes in few transactions", e.store.batches, n)
	}
	res, err := e.svc.GetResults(context.Background(), &votev1.GetResultsRequest{ElectionId: id})
	if err != nil || res.GetTally().GetTotalVotes() != n {
		t.Fatalf("results = %v, %v", res, err)
	}
}

// An idle database gets a lone vote at once: no waiting for company.
func TestGroupCommitIdleGoesAtOnce(t *testing.T) {
	e := newEnv(t, vote.Config{MaxWait: 5 * time.Second, UserLimit: roomy, AddrLimit: roomy})
	id := e.election(t)
	start := time.Now()
	if _, err := e.svc.CastVote(e.voter(t), &votev1.CastVoteRequest{ElectionId: id, CandidateId: "b"}); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited > 4*time.Second {
		t.Fatalf("a lone vote waited %v for a batch", waited)
	}
}

// A batch whose transaction fails acknowledges none of its votes: every
// caller hears UNAVAILABLE, and a retry later is stored once.
func TestGroupCommitFailureAcknowledgesNothing(t *testing.T) {
	e := newEnv(t, vote.Config{UserLimit: roomy, AddrLimit: roomy})
	id := e.election(t)
	e.store.fail = storeerr.ErrUnavailable
	ctxs := []context.Context{e.voter(t), e.voter(t), e.voter(t)}
	var wg sync.WaitGroup
	for _, ctx := range ctxs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := e.svc.CastVote(ctx, &votev1.CastVoteRequest{ElectionId: id, CandidateId: "a"})
			if status.Code(err) != codes.Unavailable {
				t.Errorf("with the store failing: %v, want UNAVAILABLE", err)
			}
		}()
	}
	wg.Wait()
	e.store.mu.Lock()
	e.store.fail = nil
	e.store.mu.Unlock()
	for _, ctx := range ctxs {
		if _, err := e.svc.CastVote(ctx, &votev1.CastVoteRequest{ElectionId: id, CandidateId: "a"}); err != nil {
			t.Fatal(err)
		}
	}
	res, err := e.svc.GetResults(context.Background(), &votev1.GetResultsRequest{ElectionId: id})
	if err != nil || res.GetTally().GetTotalVotes() != 3 {
		t.Fatalf("results = %v, %v", res, err)
	}
}

// blockedStream is a StreamResults stream whose client does not read: Send
// blocks until released.
type blockedStream struct {
	grpc.ServerStream
	ctx     context.Context
	release chan struct{}
	sent    chan *votev1.StreamResultsResponse
}

func (s *blockedStream) Context() context.Context     { return s.ctx }
func (s *blockedStream) SendHeader(metadata.MD) error { return nil }
func (s *blockedStream) Send(m *votev1.StreamResultsResponse) error {
	s.sent <- m
	<-s.release
	return nil
}

// A subscriber that stops reading is dropped (told to reconnect), never
// waited for: publishing goes on.
func TestSlowStreamIsDropped(t *testing.T) {
	e := newEnv(t, vote.Config{StreamBuffer: 2})
	id := e.election(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := &blockedStream{ctx: ctx, release: make(chan struct{}), sent: make(chan *votev1.StreamResultsResponse, 10)}
	done := make(chan error, 1)
	go func() { done <- e.svc.StreamResults(&votev1.StreamResultsRequest{ElectionId: id}, st) }()
	<-st.sent // the initial tally; Send now blocks
	// A second stream that reads at once: the feed hands each tally to
	// every stream in turn, so once this one has the last, the blocked one
	// has been offered all ten, whatever the scheduler did.
	witness := &blockedStream{ctx: ctx, release: make(chan struct{}), sent: make(chan *votev1.StreamResultsResponse, 100)}
	close(witness.release)
	go func() { _ = e.svc.StreamResults(&votev1.StreamResultsRequest{ElectionId: id}, witness) }()
	<-witness.sent
	for v := int64(1); v <= 10; v++ {
		if err := e.bus.Publish(context.Background(), "vote.tally."+id, mustTally(t, id, v)); err != nil {
			t.Fatal(err)
		}
		for m := range witness.sent { // one at a time: the witness never falls behind
			if m.GetTally().GetVersion() == v {
				break
			}
		}
	}
	close(st.release)
	select {
	case err := <-done:
		if status.Code(err) != codes.Unavailable {
			t.Fatalf("slow stream ended with %v, want UNAVAILABLE", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("slow stream was not dropped")
	}
}

func mustTally(t *testing.T, id string, version int64) []byte {
	t.Helper()
	b, err := proto.Marshal(&votev1.Tally{ElectionId: id, Version: version, TotalVotes: version})
	if err != nil {
		t.Fatal(err)
	}
	return b
}
