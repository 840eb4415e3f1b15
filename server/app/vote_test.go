package app_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	votev1 "github.com/apiplatform/platform/gen/go/vote/v1"
	"github.com/apiplatform/platform/server/app"
	"github.com/apiplatform/platform/server/platform/ratelimit"
)

// The life of an election: managed by admins only, one vote per registered
// user, duplicates answered with the original, results exact, the live
// count catching up, statistics and audit for admins.
func TestVoteElectionLifecycle(t *testing.T) {
	voteClients(t, nil, func(t *testing.T, env *voteEnv, c voteAPI) {
		aliceID, alice := env.voter(t)
		bobID, bob := env.voter(t)
		_, guest := env.g.guest(t)
		req := &votev1.CreateElectionRequest{
			Title: "Лучший цвет 🎨",
			Candidates: []*votev1.Candidate{
				{CandidateId: "red", Name: "Rouge"}, {CandidateId: "green", Name: "緑"}, {CandidateId: "blue_2", Name: "Blue"},
			},
		}
		// Only admins manage elections.
		_, err := c.createElection(t, alice, req)
		wantCode(t, err, codes.PermissionDenied)
		_, err = c.createElection(t, guest, req)
		wantCode(t, err, codes.PermissionDenied)
		_, err = c.createElection(t, "", req)
		wantCode(t, err, codes.Unauthenticated)

		e, err := c.createElection(t, env.admin, req)
		if err != nil {
			t.Fatal(err)
		}
		id := e.GetElectionId()
		if e.GetState() != votev1.ElectionState_ELECTION_STATE_DRAFT || e.GetHomeRegion() != "test-region" ||
			e.GetTitle() != req.GetTitle() || len(e.GetCandidates()) != 3 || e.GetCandidates()[1].GetName() != "緑" ||
			e.GetStartTime() != nil || e.GetCreateTime() == nil {
			t.Fatalf("created %v", e)
		}
		// Anyone reads it, signed in or not.
		if got, err := c.getElection(t, "", id); err != nil || got.GetTitle() != req.GetTitle() {
			t.Fatalf("get = %v, %v", got, err)
		}

		// A draft takes no votes.
		_, err = c.cast(t, alice, id, "red", castOpts{})
		wantReason(t, err, codes.FailedPrecondition, "ELECTION_NOT_OPEN")

		_, err = c.openElection(t, alice, id)
		wantCode(t, err, codes.PermissionDenied)
		opened, err := c.openElection(t, env.admin, id)
		if err != nil || opened.GetState() != votev1.ElectionState_ELECTION_STATE_OPEN || opened.GetStartTime() == nil {
			t.Fatalf("open = %v, %v", opened, err)
		}
		again, err := c.openElection(t, env.admin, id) // opening twice changes nothing
		if err != nil || !again.GetStartTime().AsTime().Equal(opened.GetStartTime().AsTime()) {
			t.Fatalf("second open = %v, %v", again, err)
		}

		// Guests may not vote; bad input changes nothing.
		_, err = c.cast(t, guest, id, "red", castOpts{})
		wantCode(t, err, codes.PermissionDenied)
		_, err = c.cast(t, alice, id, "purple", castOpts{})
		wantField(t, err, "candidateId")
		_, err = c.cast(t, alice, id, "red'; DROP TABLE votes; --", castOpts{})
		wantField(t, err, "candidateId")
		_, err = c.cast(t, alice, "not-an-id", "red", castOpts{})
		wantField(t, err, "electionId")
		_, err = c.cast(t, alice, strings.ToUpper(id), "red", castOpts{})
		wantField(t, err, "electionId")
		_, err = c.cast(t, alice, "00000000-0000-4000-8000-000000000000", "red", castOpts{})
		wantCode(t, err, codes.NotFound)
		_, err = c.cast(t, alice, id, "red", castOpts{captcha: strings.Repeat("x", 5000)})
		wantField(t, err, "captchaToken")

		v, err := c.cast(t, alice, id, "red", castOpts{})
		if err != nil {
			t.Fatal(err)
		}
		if v.GetVoteId() == "" || v.GetStatus() != "accepted" || v.GetAcceptedAt() == nil {
			t.Fatalf("vote = %v", v)
		}
		// A second vote, for anyone, answers with the first.
		_, err = c.cast(t, alice, id, "green", castOpts{})
		alreadyVoted(t, err, v.GetVoteId(), "red")
		_, err = c.cast(t, alice, id, "red", castOpts{key: "some-key"})
		alreadyVoted(t, err, v.GetVoteId(), "red")

		// A retry under the same Idempotency-Key gets the original
		// acceptance; the key with another choice is refused.
		bv, err := c.cast(t, bob, id, "blue_2", castOpts{key: "bob-vote-1"})
		if err != nil {
			t.Fatal(err)
		}
		retry, err := c.cast(t, bob, id, "blue_2", castOpts{key: "bob-vote-1"})
		if err != nil || retry.GetVoteId() != bv.GetVoteId() || !retry.GetAcceptedAt().AsTime().Equal(bv.GetAcceptedAt().AsTime()) {
			t.Fatalf("retry = %v, %v; want %v", retry, err, bv)
		}
		_, err = c.cast(t, bob, id, "red", castOpts{key: "bob-vote-1"})
		wantField(t, err, "Idempotency-Key")

		// Whether one voted: the user themself or an admin.
		st, err := c.status(t, alice, aliceID, id)
		if err != nil || !st.GetVoted() || st.GetVoteId() != v.GetVoteId() || st.GetAcceptedAt() == nil {
			t.Fatalf("status = %v, %v", st, err)
		}
		if st, err := c.status(t, env.admin, bobID, id); err != nil || !st.GetVoted() || st.GetVoteId() != bv.GetVoteId() {
			t.Fatalf("admin's status of bob = %v, %v", st, err)
		}
		_, err = c.status(t, bob, aliceID, id)
		wantCode(t, err, codes.PermissionDenied)
		guestID, guestTok := env.g.guest(t)
		if st, err := c.status(t, guestTok, guestID, id); err != nil || st.GetVoted() {
			t.Fatalf("guest's own status = %v, %v", st, err)
		}
		_, err = c.status(t, alice, "nobody", id)
		wantField(t, err, "userId")

		// Exact results count the stored votes; the live count catches up.
		want := map[string]int64{"red": 1, "green": 0, "blue_2": 1}
		exact, err := c.results(t, "", id)
		if err != nil || fmt.Sprint(counts(exact)) != fmt.Sprint(want) || exact.GetTotalVotes() != 2 || exact.GetVersion() != 2 ||
			exact.GetCounts()[0].GetCandidateId() != "red" {
			t.Fatalf("results = %v, %v", exact, err)
		}
		eventually(t, 3*time.Second, func() error {
			live, err := c.live(t, "", id)
			if err != nil || fmt.Sprint(counts(live)) != fmt.Sprint(want) || live.GetVersion() != exact.GetVersion() {
				return fmt.Errorf("live = %v, %v; want %v", live, err, want)
			}
			return nil
		})

		// Admins see statistics and the audit trail.
		_, err = c.statistics(t, alice, id)
		wantCode(t, err, codes.PermissionDenied)
		eventually(t, 3*time.Second, func() error {
			stats, err := c.statistics(t, env.admin, id)
			if err != nil {
				return err
			}
			r := rejections(stats)
			var perSecond int64
			for _, s := range stats.GetVotesPerSecond() {
				perSecond += s.GetVotes()
			}
			if stats.GetTotalVotes() != 2 || perSecond != 2 || r["DUPLICATE"] != 3 || r["NOT_OPEN"] != 1 {
				return fmt.Errorf("statistics = %v", stats)
			}
			return nil
		})
		_, err = c.audit(t, alice, id)
		wantCode(t, err, codes.PermissionDenied)
		trail, err := c.audit(t, env.admin, id)
		if err != nil {
			t.Fatal(err)
		}
		accepted := map[string]string{}
		var rejected []string
		for i, r := range trail {
			if r.GetSeq() != int64(i+1) || r.GetTime() == nil {
				t.Fatalf("record %d = %v", i, r)
			}
			switch r.GetOutcome() {
			case votev1.AuditOutcome_AUDIT_OUTCOME_ACCEPTED:
				accepted[r.GetVoteId()] = r.GetUserId()
				if r.GetClientNetwork() != "127.0.0.0/24" || r.GetReason() != "" {
					t.Fatalf("accepted record %v", r)
				}
			default:
				rejected = append(rejected, r.GetReason())
			}
		}
		if len(accepted) != 2 || accepted[v.GetVoteId()] != aliceID || accepted[bv.GetVoteId()] != bobID ||
			fmt.Sprint(rejected) != "[NOT_OPEN DUPLICATE DUPLICATE DUPLICATE]" {
			t.Fatalf("trail: accepted %v, rejected %v", accepted, rejected)
		}

		// Closing is final.
		_, err = c.closeElection(t, bob, id)
		wantCode(t, err, codes.PermissionDenied)
		closed, err := c.closeElection(t, env.admin, id)
		if err != nil || closed.GetState() != votev1.ElectionState_ELECTION_STATE_CLOSED || closed.GetEndTime() == nil {
			t.Fatalf("close = %v, %v", closed, err)
		}
		_, carol := env.voter(t)
		_, err = c.cast(t, carol, id, "red", castOpts{})
		wantReason(t, err, codes.FailedPrecondition, "ELECTION_CLOSED")
		_, err = c.openElection(t, env.admin, id)
		wantReason(t, err, codes.FailedPrecondition, "ELECTION_CLOSED")
		if got, err := c.results(t, "", id); err != nil || got.GetTotalVotes() != 2 {
			t.Fatalf("results after close = %v, %v", got, err)
		}
	})
}

// Hostile or malformed elections are refused field by field; nothing is
// created.
func TestVoteElectionValidation(t *testing.T) {
	voteClients(t, nil, func(t *testing.T, env *voteEnv, c voteAPI) {
		two := []*votev1.Candidate{{CandidateId: "a", Name: "A"}, {CandidateId: "b", Name: "B"}}
		past := timestamppb.New(time.Now().Add(-time.Hour))
		for _, tc := range []struct {
			field string
			req   *votev1.CreateElectionRequest
		}{
			{"title", &votev1.CreateElectionRequest{Title: "", Candidates: two}},
			{"title", &votev1.CreateElectionRequest{Title: "   ", Candidates: two}},
			{"title", &votev1.CreateElectionRequest{Title: strings.Repeat("é", 201), Candidates: two}},
			{"title", &votev1.CreateElectionRequest{Title: "nul\x00byte", Candidates: two}},
			{"candidates", &votev1.CreateElectionRequest{Title: "t", Candidates: two[:1]}},
			{"candidates[1].candidateId", &votev1.CreateElectionRequest{Title: "t", Candidates: []*votev1.Candidate{{CandidateId: "a", Name: "A"}, {CandidateId: "a", Name: "B"}}}},
			{"candidates[0].candidateId", &votev1.CreateElectionRequest{Title: "t", Candidates: []*votev1.Candidate{{CandidateId: "<script>", Name: "A"}, {CandidateId: "b", Name: "B"}}}},
			{"candidates[0].candidateId", &votev1.CreateElectionRequest{Title: "t", Candidates: []*votev1.Candidate{{CandidateId: strings.Repeat("x", 65), Name: "A"}, {CandidateId: "b", Name: "B"}}}},
			{"candidates[1].name", &votev1.CreateElectionRequest{Title: "t", Candidates: []*votev1.Candidate{{CandidateId: "a", Name: "A"}, {CandidateId: "b", Name: ""}}}},
			{"endTime", &votev1.CreateElectionRequest{Title: "t", Candidates: two, EndTime: past}},
			{"endTime", &votev1.CreateElectionRequest{Title: "t", Candidates: two,
				StartTime: timestamppb.New(time.Now().Add(2 * time.Hour)), EndTime: timestamppb.New(time.Now().Add(time.Hour))}},
		} {
			_, err := c.createElection(t, env.admin, tc.req)
			wantField(t, err, tc.field)
		}
		many := &votev1.CreateElectionRequest{Title: "t"}
		for i := range 101 {
			many.Candidates = append(many.Candidates, &votev1.Candidate{CandidateId: fmt.Sprint("c", i), Name: "C"})
		}
		_, err := c.createElection(t, env.admin, many)
		wantField(t, err, "candidates")

		_, err = c.getElection(t, "", "00000000-0000-4000-8000-000000000000")
		wantCode(t, err, codes.NotFound)
		_, err = c.getElection(t, "", "x")
		wantField(t, err, "electionId")
		_, err = c.openElection(t, env.admin, "00000000-0000-4000-8000-000000000000")
		wantCode(t, err, codes.NotFound)
		_, err = c.results(t, "", "1 OR 1=1")
		wantField(t, err, "electionId")
	})
}

// The voting window: nothing before its start, nothing from its end.
func TestVoteWindow(t *testing.T) {
	voteClients(t, nil, func(t *testing.T, env *voteEnv, c voteAPI) {
		_, u := env.voter(t)
		later, err := c.createElection(t, env.admin, &votev1.CreateElectionRequest{
			Title: "later", Candidates: []*votev1.Candidate{{CandidateId: "a", Name: "A"}, {CandidateId: "b", Name: "B"}},
			StartTime: timestamppb.New(time.Now().Add(time.Hour)),
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.openElection(t, env.admin, later.GetElectionId()); err != nil {
			t.Fatal(err)
		}
		_, err = c.cast(t, u, later.GetElectionId(), "a", castOpts{})
		wantReason(t, err, codes.FailedPrecondition, "ELECTION_NOT_OPEN")

		// A vote answered before the end is inside the window and must be
		// accepted. On a busy machine the window may pass before the vote is
		// even sent: that try proves nothing, so it is repeated with a
		// window twice as long.
		_, early := env.voter(t)
		var soon *votev1.Election
		var end time.Time
		for window := 700 * time.Millisecond; ; window *= 2 {
			end = time.Now().Add(window)
			soon, err = c.createElection(t, env.admin, &votev1.CreateElectionRequest{
				Title: "soon over", Candidates: []*votev1.Candidate{{CandidateId: "a", Name: "A"}, {CandidateId: "b", Name: "B"}},
				EndTime: timestamppb.New(end),
			})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.openElection(t, env.admin, soon.GetElectionId()); err != nil {
				t.Fatal(err)
			}
			_, err = c.cast(t, early, soon.GetElectionId(), "b", castOpts{})
			if err == nil {
				break
			}
			if time.Now().Before(end) || window > time.Minute {
				t.Fatalf("inside the window: %v", err)
			}
			t.Logf("the %v window passed before the vote was answered (%v); again with a longer one", window, err)
		}
		time.Sleep(time.Until(end) + 10*time.Millisecond)
		_, err = c.cast(t, u, soon.GetElectionId(), "a", castOpts{})
		wantReason(t, err, codes.FailedPrecondition, "ELECTION_CLOSED")
		_, err = c.openElection(t, env.admin, soon.GetElectionId()) // already open: no change
		if err != nil {
			t.Fatal(err)
		}
		if r, err := c.results(t, "", soon.GetElectionId()); err != nil || r.GetTotalVotes() != 1 {
			t.Fatalf("results = %v, %v", r, err)
		}
	})
}

// 200 identical votes at once count once; every other answer carries the
// one stored vote. Retries racing under one Idempotency-Key all get the
// original acceptance.
func TestVoteConcurrentDuplicates(t *testing.T) {
	roomy := func(cfg *app.Config) {
		roomy := ratelimit.Limit{Rate: 10_000, Period: time.Minute, Burst: 10_000}
		cfg.Vote.UserLimit, cfg.Vote.AddrLimit = roomy, roomy
	}
	voteClients(t, roomy, func(t *testing.T, env *voteEnv, c voteAPI) {
		e := env.openElection(t)
		id := e.GetElectionId()
		_, u := env.voter(t)
		const n = 200
		type answer struct {
			v   *votev1.CastVoteResponse
			err error
		}
		race := func(token string, o castOpts) []answer {
			out := make([]answer, n)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					out[i].v, out[i].err = c.cast(t, token, id, "green", o)
				}()
			}
			close(start)
			wg.Wait()
			return out
		}

		answers := race(u, castOpts{})
		var winner *votev1.CastVoteResponse
		for _, a := range answers {
			if a.err == nil {
				if winner != nil {
					t.Fatalf("two acceptances: %v and %v", winner, a.v)
				}
				winner = a.v
			}
		}
		if winner == nil {
			t.Fatalf("no vote accepted: %v", answers[0].err)
		}
		for _, a := range answers {
			if a.err != nil {
				alreadyVoted(t, a.err, winner.GetVoteId(), "green")
			}
		}

		_, w := env.voter(t)
		answers = race(w, castOpts{key: "same-key"})
		for _, a := range answers {
			if a.err != nil || a.v.GetVoteId() != answers[0].v.GetVoteId() {
				t.Fatalf("retry under one key: %v, %v; want %v", a.v, a.err, answers[0].v)
			}
		}
		if r, err := c.results(t, "", id); err != nil || r.GetTotalVotes() != 2 || counts(r)["green"] != 2 {
			t.Fatalf("results = %v, %v; want exactly 2 votes", r, err)
		}
	})
}
