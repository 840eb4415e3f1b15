package storetest

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/apiplatform/platform/server/platform/storeerr"
	"github.com/apiplatform/platform/server/vote"
)

// RunVote runs the vote store suite; open returns an empty store.
func RunVote(t *testing.T, open func(t *testing.T) vote.Store) {
	t.Run("Elections", func(t *testing.T) { testElections(t, open(t)) })
	t.Run("ListElections", func(t *testing.T) { testListElections(t, open(t)) })
	t.Run("CommitVotes", func(t *testing.T) { testCommitVotes(t, open(t)) })
	t.Run("ConcurrentDuplicates", func(t *testing.T) { testConcurrentDuplicates(t, open(t)) })
	t.Run("CountersMatchVotes", func(t *testing.T) { testCountersMatchVotes(t, open(t)) })
	t.Run("AuditAndStatistics", func(t *testing.T) { testAuditAndStatistics(t, open(t)) })
	t.Run("ForgetUser", func(t *testing.T) { testForgetUser(t, open(t)) })
}

const region = "test-region"

func newElection(t *testing.T, s vote.Store, state vote.State, candidates ...string) vote.Election {
	t.Helper()
	if len(candidates) == 0 {
		candidates = []string{"red", "green", "blue"}
	}
	e := vote.Election{
		ID: uuid.NewString(), Title: "Best colour", State: state, HomeRegion: region,
		CreatedBy: uuid.NewString(), CreatedAt: now(),
	}
	if state == vote.StateOpen {
		e.OpensAt = now().Add(-time.Minute)
	}
	for _, c := range candidates {
		e.Candidates = append(e.Candidates, vote.Candidate{ID: c, Name: "Candidate " + c})
	}
	must(t, s.CreateElection(ctx, e))
	return e
}

func attempt(e vote.Election, user, candidate, key string) vote.Attempt {
	audit, _ := uuid.NewV7()
	return vote.Attempt{
		Vote: vote.Vote{
			ID: uuid.NewString(), ElectionID: e.ID, HomeRegion: e.HomeRegion, UserID: user,
			CandidateID: candidate, IdempotencyKey: key,
		},
		AuditID: audit.String(), At: now(), ClientNetwork: "192.0.2.0/24", UserAgent: "test", ServedRegion: region,
	}
}

func commit(t *testing.T, s vote.Store, shard int, atts ...vote.Attempt) []vote.Result {
	t.Helper()
	res, err := s.CommitVotes(ctx, vote.Batch{Attempts: atts, Shard: shard})
	must(t, err)
	if len(res) != len(atts) {
		t.Fatalf("%d results for %d attempts", len(res), len(atts))
	}
	return res
}

func wantCounts(t *testing.T, what string, got vote.Counts, want map[string]int64) {
	t.Helper()
	for c, n := range want {
		if got[c] != n {
			t.Fatalf("%s: %v, want %v", what, got, want)
		}
	}
	for c, n := range got {
		if n != 0 && want[c] != n {
			t.Fatalf("%s: %v, want %v", what, got, want)
		}
	}
}

func testElections(t *testing.T, s vote.Store) {
	e := newElection(t, s, vote.StateDraft, "b", "a", "c")
	e.ClosesAt = now().Add(time.Hour)
	got, err := s.GetElection(ctx, e.ID)
	must(t, err)
	if got.Title != e.Title || got.State != vote.StateDraft || got.HomeRegion != region || !got.CreatedAt.Equal(e.CreatedAt) ||
		len(got.Candidates) != 3 || got.Candidates[0].ID != "b" || got.Candidates[2].Name != "Candidate c" || !got.OpensAt.IsZero() {
		t.Fatalf("GetElection = %+v, want %+v", got, e)
	}
	wantErr(t, s.CreateElection(ctx, got), storeerr.ErrConflict)
	_, err = s.GetElection(ctx, uuid.NewString())
	wantErr(t, err, storeerr.ErrNotFound)
	_, err = s.GetElection(ctx, "not-a-uuid")
	wantErr(t, err, storeerr.ErrNotFound)

	opens := now()
	up, err := s.UpdateElection(ctx, e.ID, func(e *vote.Election) error {
		e.State, e.OpensAt = vote.StateOpen, opens
		return nil
	})
	must(t, err)
	if up.State != vote.StateOpen || !up.OpensAt.Equal(opens) || len(up.Candidates) != 3 {
		t.Fatalf("UpdateElection = %+v", up)
	}
	// An error from fn changes nothing.
	refuse := errors.New("refused")
	_, err = s.UpdateElection(ctx, e.ID, func(e *vote.Election) error {
		e.State = vote.StateClosed
		return refuse
	})
	wantErr(t, err, refuse)
	got, err = s.GetElection(ctx, e.ID)
	must(t, err)
	if got.State != vote.StateOpen || !got.OpensAt.Equal(opens) {
		t.Fatalf("after a refused update: %+v", got)
	}
	_, err = s.UpdateElection(ctx, uuid.NewString(), func(*vote.Election) error { return nil })
	wantErr(t, err, storeerr.ErrNotFound)
}

func testCommitVotes(t *testing.T, s vote.Store) {
	e := newElection(t, s, vote.StateOpen)
	draft := newElection(t, s, vote.StateDraft)
	alice, bob, carol := uuid.NewString(), uuid.NewString(), uuid.NewString()

	first := []vote.Attempt{attempt(e, alice, "red", "k1"), attempt(e, bob, "blue", ""), attempt(draft, alice, "red", "")}
	res := commit(t, s, 0, first...)
	for i, want := range []vote.Outcome{vote.Accepted, vote.Accepted, vote.NotOpen} {
		if res[i].Outcome != want {
			t.Fatalf("result %d = %+v, want outcome %d", i, res[i], want)
		}
	}
	if v := res[0].Vote; v.ID != first[0].Vote.ID || v.CastAt.IsZero() || v.IdempotencyKey != "k1" {
		t.Fatalf("accepted vote = %+v", v)
	}

	// A second vote, in a batch with a new voter, an unknown candidate and
	// the same pair twice: the original comes back; nothing counts twice.
	again := []vote.Attempt{
		attempt(e, alice, "green", "k2"), attempt(e, carol, "green", ""), attempt(e, uuid.NewString(), "purple", ""),
		attempt(e, carol, "red", ""),
	}
	res = commit(t, s, 1, again...)
	if res[0].Outcome != vote.Duplicate || res[0].Vote.ID != first[0].Vote.ID || res[0].Vote.CandidateID != "red" ||
		res[0].Vote.IdempotencyKey != "k1" || res[0].Vote.UserID != alice || res[0].Vote.CastAt.IsZero() {
		t.Fatalf("second vote = %+v, want the original %+v", res[0], first[0].Vote)
	}
	// Which of a repeated pair wins is up to the engine; one does.
	carol1, carol3 := res[1], res[3]
	if carol3.Outcome == vote.Accepted {
		carol1, carol3 = carol3, carol1
	}
	if res[2].Outcome != vote.UnknownCandidate || carol1.Outcome != vote.Accepted ||
		carol3.Outcome != vote.Duplicate || carol3.Vote.ID != carol1.Vote.ID {
		t.Fatalf("results = %+v", res)
	}
	carolVoted := carol1.Vote.CandidateID
	got, err := s.GetVote(ctx, region, e.ID, alice)
	must(t, err)
	if got.ID != first[0].Vote.ID || got.CandidateID != "red" || !got.CastAt.Equal(res[0].Vote.CastAt) {
		t.Fatalf("GetVote = %+v", got)
	}
	_, err = s.GetVote(ctx, region, draft.ID, alice)
	wantErr(t, err, storeerr.ErrNotFound)

	want := map[string]int64{"red": 1, "blue": 1}
	want[carolVoted]++
	live, err := s.LiveCounts(ctx, region, e.ID)
	must(t, err)
	wantCounts(t, "live", live, want)
	exact, err := s.ExactCounts(ctx, region, e.ID)
	must(t, err)
	wantCounts(t, "exact", exact, want)

	// Closed elections, and open ones outside their window, take nothing.
	closed, err := s.UpdateElection(ctx, e.ID, func(e *vote.Election) error {
		e.State, e.ClosesAt = vote.StateClosed, now()
		return nil
	})
	must(t, err)
	future := newElection(t, s, vote.StateOpen)
	_, err = s.UpdateElection(ctx, future.ID, func(e *vote.Election) error {
		e.OpensAt = now().Add(time.Hour)
		return nil
	})
	must(t, err)
	ended := newElection(t, s, vote.StateOpen)
	_, err = s.UpdateElection(ctx, ended.ID, func(e *vote.Election) error {
		e.ClosesAt = now().Add(-time.Second)
		return nil
	})
	must(t, err)
	res = commit(t, s, 0, attempt(closed, uuid.NewString(), "red", ""), attempt(future, alice, "red", ""), attempt(ended, alice, "red", ""))
	for i, r := range res {
		if r.Outcome != vote.NotOpen {
			t.Fatalf("result %d = %+v, want NotOpen", i, r)
		}
	}
	exact, err = s.ExactCounts(ctx, region, e.ID)
	must(t, err)
	wantCounts(t, "exact after close", exact, want)
}

// Many batches racing to store the same user's vote: one wins, every other
// one gets the winner back, the counters say 1.
func testConcurrentDuplicates(t *testing.T, s vote.Store) {
	e := newElection(t, s, vote.StateOpen)
	user := uuid.NewString()
	const n = 20
	results := make([]vote.Result, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			res, err := s.CommitVotes(ctx, vote.Batch{Attempts: []vote.Attempt{attempt(e, user, []string{"red", "green"}[i%2], "")}, Shard: i})
			if err == nil {
				results[i] = res[0]
			}
			errs[i] = err
		}()
	}
	close(start)
	wg.Wait()
	var winner string
	for i := range n {
		must(t, errs[i])
		if results[i].Outcome == vote.Accepted {
			if winner != "" {
				t.Fatalf("two votes accepted: %s and %s", winner, results[i].Vote.ID)
			}
			winner = results[i].Vote.ID
		}
	}
	if winner == "" {
		t.Fatal("no vote accepted")
	}
	for i, r := range results {
		if r.Outcome != vote.Accepted && (r.Outcome != vote.Duplicate || r.Vote.ID != winner) {
			t.Fatalf("result %d = %+v, want Duplicate of %s", i, r, winner)
		}
	}
	for _, count := range []func() (vote.Counts, error){
		func() (vote.Counts, error) { return s.LiveCounts(ctx, region, e.ID) },
		func() (vote.Counts, error) { return s.ExactCounts(ctx, region, e.ID) },
	} {
		c, err := count()
		must(t, err)
		if c["red"]+c["green"] != 1 {
			t.Fatalf("counts %v, want one vote", c)
		}
	}
}

// Concurrent batches on a few shards: the shards add up to the stored
// votes exactly.
func testCountersMatchVotes(t *testing.T, s vote.Store) {
	e := newElection(t, s, vote.StateOpen)
	cands := []string{"red", "green", "blue"}
	const workers, batches, size = 4, 5, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers*batches)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range batches {
				var atts []vote.Attempt
				for i := range size {
					atts = append(atts, attempt(e, uuid.NewString(), cands[(w+b+i)%3], ""))
				}
				if _, err := s.CommitVotes(ctx, vote.Batch{Attempts: atts, Shard: (w + b) % 3}); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	live, err := s.LiveCounts(ctx, region, e.ID)
	must(t, err)
	exact, err := s.ExactCounts(ctx, region, e.ID)
	must(t, err)
	var total int64
	for _, c := range cands {
		total += exact[c]
		if live[c] != exact[c] {
			t.Fatalf("live %v != exact %v", live, exact)
		}
	}
	if total != workers*batches*size {
		t.Fatalf("exact total %d, want %d", total, workers*batches*size)
	}
}

func testAuditAndStatistics(t *testing.T, s vote.Store) {
	e := newElection(t, s, vote.StateOpen)
	other := newElection(t, s, vote.StateOpen)
	alice, bob := uuid.NewString(), uuid.NewString()
	a1 := attempt(e, alice, "red", "")
	a1.CaptchaPassed = true
	res := commit(t, s, 0, a1, attempt(e, bob, "green", ""), attempt(other, alice, "blue", ""))
	rejected := func(user, reason string) vote.AuditRecord {
		id, _ := uuid.NewV7()
		return vote.AuditRecord{
			ID: id.String(), ElectionID: e.ID, HomeRegion: region, At: now(), Outcome: vote.AuditRejected,
			Reason: reason, UserID: user, CandidateID: "red", ClientNetwork: "198.51.100.0/24", ServedRegion: region,
		}
	}
	_, err := s.CommitVotes(ctx, vote.Batch{Rejections: []vote.AuditRecord{
		rejected(uuid.NewString(), vote.ReasonRateLimited), rejected(uuid.NewString(), vote.ReasonRateLimited),
		rejected(bob, vote.ReasonCaptchaFailed),
	}})
	must(t, err)
	dup := commit(t, s, 0, attempt(e, alice, "green", ""))
	if dup[0].Outcome != vote.Duplicate {
		t.Fatalf("second vote: %+v", dup[0])
	}

	// Pages of 2 in id order: accepted, accepted, 3 refusals, the
	// duplicate; the other election's row is not in it.
	var trail []vote.AuditRecord
	after := ""
	for {
		page, err := s.AuditPage(ctx, region, e.ID, after, 2)
		must(t, err)
		trail = append(trail, page...)
		if len(page) < 2 {
			break
		}
		after = page[len(page)-1].ID
	}
	if len(trail) != 6 {
		t.Fatalf("trail has %d records, want 6: %+v", len(trail), trail)
	}
	for i := 1; i < len(trail); i++ {
		if trail[i-1].ID >= trail[i].ID {
			t.Fatalf("trail out of order at %d: %s then %s", i, trail[i-1].ID, trail[i].ID)
		}
	}
	first := trail[0]
	if first.Outcome != vote.AuditAccepted || first.VoteID != res[0].Vote.ID || first.UserID != alice ||
		first.CandidateID != "red" || first.ClientNetwork != "192.0.2.0/24" || !first.CaptchaPassed || first.Reason != "" ||
		first.ServedRegion != region || first.UserAgent != "test" || !first.At.Equal(res[0].Vote.CastAt) {
		t.Fatalf("accepted record = %+v", first)
	}
	if last := trail[5]; last.Outcome != vote.AuditRejected || last.Reason != vote.ReasonDuplicate || last.UserID != alice ||
		last.VoteID != "" || last.CandidateID != "green" {
		t.Fatalf("duplicate record = %+v", last)
	}

	st, err := s.Statistics(ctx, region, e.ID, 3600)
	must(t, err)
	if st.Total != 2 || st.Rejections[vote.ReasonRateLimited] != 2 || st.Rejections[vote.ReasonCaptchaFailed] != 1 ||
		st.Rejections[vote.ReasonDuplicate] != 1 || len(st.Rejections) != 3 {
		t.Fatalf("statistics = %+v", st)
	}
	var perSecond int64
	for i, sc := range st.PerSecond {
		perSecond += sc.Votes
		if !sc.Second.Equal(sc.Second.Truncate(time.Second)) || (i > 0 && !st.PerSecond[i-1].Second.Before(sc.Second)) {
			t.Fatalf("per second = %+v", st.PerSecond)
		}
	}
	if perSecond != 2 {
		t.Fatalf("per second adds up to %d, want 2: %+v", perSecond, st.PerSecond)
	}
	empty, err := s.Statistics(ctx, region, uuid.NewString(), 3600)
	must(t, err)
	if empty.Total != 0 || len(empty.PerSecond) != 0 || len(empty.Rejections) != 0 {
		t.Fatalf("statistics of nothing = %+v", empty)
	}
}

func testForgetUser(t *testing.T, s vote.Store) {
	e1 := newElection(t, s, vote.StateOpen)
	e2 := newElection(t, s, vote.StateOpen)
	gone, stays := uuid.NewString(), uuid.NewString()
	commit(t, s, 0, attempt(e1, gone, "red", "key"), attempt(e1, stays, "red", ""), attempt(e2, gone, "blue", ""))
	id, _ := uuid.NewV7()
	_, err := s.CommitVotes(ctx, vote.Batch{Rejections: []vote.AuditRecord{{
		ID: id.String(), ElectionID: e2.ID, HomeRegion: region, At: now(), Outcome: vote.AuditRejected,
		Reason: vote.ReasonRateLimited, UserID: gone, ClientNetwork: "192.0.2.0/24", UserAgent: "bot",
	}}})
	must(t, err)

	must(t, s.ForgetUser(ctx, gone))
	must(t, s.ForgetUser(ctx, gone)) // nothing left to do
	for _, e := range []vote.Election{e1, e2} {
		_, err := s.GetVote(ctx, region, e.ID, gone)
		wantErr(t, err, storeerr.ErrNotFound)
		exact, err := s.ExactCounts(ctx, region, e.ID)
		must(t, err)
		live, err := s.LiveCounts(ctx, region, e.ID)
		must(t, err)
		want := map[string]int64{"blue": 1}
		if e.ID == e1.ID {
			want = map[string]int64{"red": 2}
		}
		wantCounts(t, "exact after erasure", exact, want)
		wantCounts(t, "live after erasure", live, want)
		trail, err := s.AuditPage(ctx, region, e.ID, "", 100)
		must(t, err)
		for _, r := range trail {
			if r.UserID == gone || (r.UserID == "" && (r.ClientNetwork != "" || r.UserAgent != "")) {
				t.Fatalf("audit keeps personal data: %+v", r)
			}
		}
		if e.ID == e2.ID && (len(trail) != 2 || trail[0].UserID != "" || trail[1].UserID != "") {
			t.Fatalf("e2 trail = %+v", trail)
		}
	}
	if v, err := s.GetVote(ctx, region, e1.ID, stays); err != nil || v.UserID != stays {
		t.Fatalf("another user's vote: %+v, %v", v, err)
	}
}
