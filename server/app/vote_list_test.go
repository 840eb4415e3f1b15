package app_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	votev1 "github.com/apiplatform/platform/gen/go/vote/v1"
	"github.com/apiplatform/platform/server/platform/ratelimit"
)

// ListElections and the election's state on the results stream.

func (g grpcVote) listElections(t *testing.T, token string, req *votev1.ListElectionsRequest) (*votev1.ListElectionsResponse, error) {
	return g.client().ListElections(g.ctx(token), req)
}

func (r restVote) listElections(t *testing.T, token string, req *votev1.ListElectionsRequest) (*votev1.ListElectionsResponse, error) {
	q := url.Values{}
	if req.GetPageSize() != 0 {
		q.Set("pageSize", strconv.Itoa(int(req.GetPageSize())))
	}
	if req.GetPageToken() != "" {
		q.Set("pageToken", req.GetPageToken())
	}
	if req.GetState() != votev1.ElectionState_ELECTION_STATE_UNSPECIFIED {
		q.Set("state", req.GetState().String())
	}
	var raw json.RawMessage
	res, err := r.call(t, "GET", "/api/v1/elections?"+q.Encode(), token, nil, &raw)
	if err == nil && res.StatusCode != http.StatusOK {
		t.Fatalf("list answered %d, want 200", res.StatusCode)
	}
	return decodeProto[votev1.ListElectionsResponse](t, raw), err
}

// listAll pages through ListElections and returns the ids in order.
func listAll(t *testing.T, c voteAPI, state votev1.ElectionState, size int32) ([]string, map[string]*votev1.Election) {
	t.Helper()
	var ids []string
	byID := map[string]*votev1.Election{}
	tok := ""
	for pages := 0; ; pages++ {
		if pages > 1000 {
			t.Fatal("paging does not end")
		}
		res, err := c.listElections(t, "", &votev1.ListElectionsRequest{PageSize: size, PageToken: tok, State: state})
		if err != nil {
			t.Fatalf("list: %v", err)
		}
		if len(res.GetElections()) > int(size) {
			t.Fatalf("page of %d, asked for %d", len(res.GetElections()), size)
		}
		for _, e := range res.GetElections() {
			if byID[e.GetElectionId()] != nil {
				t.Fatalf("election %s listed twice", e.GetElectionId())
			}
			ids, byID[e.GetElectionId()] = append(ids, e.GetElectionId()), e
		}
		if tok = res.GetNextPageToken(); tok == "" {
			return ids, byID
		}
	}
}

// A visitor (no session) lists open and closed elections newest first,
// page by page, filtered by state; drafts are not listed; bad paging and a
// DRAFT filter are INVALID_ARGUMENT naming the field.
func TestVoteListElections(t *testing.T) {
	voteClients(t, nil, func(t *testing.T, env *voteEnv, c voteAPI) {
		g := grpcVote{env.g}
		draft, err := g.createElection(t, env.admin, &votev1.CreateElectionRequest{Title: "Draft", Candidates: []*votev1.Candidate{
			{CandidateId: "a", Name: "A"}, {CandidateId: "b", Name: "B"}}})
		if err != nil {
			t.Fatal(err)
		}
		first := env.openElection(t)
		closed := env.openElection(t)
		if _, err := g.closeElection(t, env.admin, closed.GetElectionId()); err != nil {
			t.Fatal(err)
		}
		last := env.openElection(t)

		ids, byID := listAll(t, c, votev1.ElectionState_ELECTION_STATE_UNSPECIFIED, 2)
		if byID[draft.GetElectionId()] != nil {
			t.Fatal("a draft is listed")
		}
		pos := map[string]int{}
		for i, id := range ids {
			pos[id] = i
		}
		for _, e := range []*votev1.Election{first, closed, last} {
			if byID[e.GetElectionId()] == nil {
				t.Fatalf("election %s not listed in %v", e.GetElectionId(), ids)
			}
		}
		if !(pos[last.GetElectionId()] < pos[closed.GetElectionId()] && pos[closed.GetElectionId()] < pos[first.GetElectionId()]) {
			t.Fatalf("not newest first: %v", ids)
		}
		for i := 1; i < len(ids); i++ {
			if byID[ids[i]].GetCreateTime().AsTime().After(byID[ids[i-1]].GetCreateTime().AsTime()) {
				t.Fatalf("%s created after %s but listed later", ids[i], ids[i-1])
			}
		}
		if got := byID[closed.GetElectionId()]; got.GetState() != votev1.ElectionState_ELECTION_STATE_CLOSED ||
			len(got.GetCandidates()) != 3 || got.GetCandidates()[0].GetCandidateId() != "red" || got.GetTitle() != "Favourite colour" {
			t.Fatalf("listed closed election %v", got)
		}

		open, openByID := listAll(t, c, votev1.ElectionState_ELECTION_STATE_OPEN, 100)
		if openByID[closed.GetElectionId()] != nil || openByID[first.GetElectionId()] == nil || openByID[last.GetElectionId()] == nil {
			t.Fatalf("OPEN filter listed %v", open)
		}
		for _, e := range openByID {
			if e.GetState() != votev1.ElectionState_ELECTION_STATE_OPEN {
				t.Fatalf("OPEN filter listed %v", e)
			}
		}
		_, closedByID := listAll(t, c, votev1.ElectionState_ELECTION_STATE_CLOSED, 100)
		if closedByID[closed.GetElectionId()] == nil || closedByID[first.GetElectionId()] != nil {
			t.Fatalf("CLOSED filter listed %v", closedByID)
		}

		for field, req := range map[string]*votev1.ListElectionsRequest{
			"pageSize":  {PageSize: 101},
			"pageToken": {PageToken: "not-a-token"},
			"state":     {State: votev1.ElectionState_ELECTION_STATE_DRAFT},
		} {
			_, err := c.listElections(t, "", req)
			wantField(t, err, field)
		}
	})
}

// awaitElection reads the elections a stream carries until one is in
// state, failing after d.
func (s *tallyStream) awaitElection(t *testing.T, d time.Duration, state votev1.ElectionState) *votev1.Election {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case e := <-s.E:
			if e.GetState() == state {
				return e
			}
		case <-timer.C:
			t.Fatalf("no election in state %v on the stream within %v (stream error %v)", state, d, s.Err())
		}
	}
}

// A page following the results sees the election close the moment an
// admin closes it: the first message carries the election, the close comes
// as a message of its own.
func TestVoteStreamElectionState(t *testing.T) {
	voteClients(t, nil, func(t *testing.T, env *voteEnv, c voteAPI) {
		e := env.openElection(t)
		s := c.stream(t, "", e.GetElectionId(), 0)
		if got := s.awaitElection(t, 5*time.Second, votev1.ElectionState_ELECTION_STATE_OPEN); got.GetElectionId() != e.GetElectionId() || len(got.GetCandidates()) != 3 {
			t.Fatalf("first message's election %v", got)
		}
		s.await(t, 5*time.Second, func(tl *votev1.Tally) bool { return tl.GetVersion() == 0 })
		if _, err := (grpcVote{env.g}).closeElection(t, env.admin, e.GetElectionId()); err != nil {
			t.Fatal(err)
		}
		if got := s.awaitElection(t, 5*time.Second, votev1.ElectionState_ELECTION_STATE_CLOSED); got.GetEndTime() == nil {
			t.Fatalf("closed election without an end: %v", got)
		}
		// A page opened after the close starts from the closed state.
		late := c.stream(t, "", e.GetElectionId(), 0)
		late.awaitElection(t, 5*time.Second, votev1.ElectionState_ELECTION_STATE_CLOSED)
	})
}

// The close made on replica A reaches streams on replica B, over both
// protocols, through the bus.
func TestVoteStreamElectionStateAcrossReplicas(t *testing.T) {
	var envs []*voteEnv
	for _, cfg := range replicaConfigs(t, "region-a", "region-b") {
		cfg.Vote.UserLimit = ratelimit.Limit{Rate: 100, Period: time.Minute, Burst: 100}
		voteConfig(&cfg)
		envs = append(envs, newVoteEnv(t, startConfig(t, cfg)))
	}
	a, b := envs[0], envs[1]
	e := a.openElection(t)
	streams := []*tallyStream{grpcVote{b.g}.stream(t, "", e.GetElectionId(), 0), restVote{newREST(b.p)}.stream(t, "", e.GetElectionId(), 0)}
	for _, s := range streams {
		s.awaitElection(t, 5*time.Second, votev1.ElectionState_ELECTION_STATE_OPEN)
	}
	if _, err := (grpcVote{a.g}).closeElection(t, a.admin, e.GetElectionId()); err != nil {
		t.Fatal(err)
	}
	for _, s := range streams {
		s.awaitElection(t, 5*time.Second, votev1.ElectionState_ELECTION_STATE_CLOSED)
	}
}
