package app_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	votev1 "github.com/apiplatform/platform/gen/go/vote/v1"
	"github.com/apiplatform/platform/server/platform/ratelimit"
)

// StreamResults sends the current tally, then a newer one within about a
// second of each change; a client reconnecting with the version it has
// gets only newer tallies.
func TestVoteStreamResults(t *testing.T) {
	voteClients(t, nil, func(t *testing.T, env *voteEnv, c voteAPI) {
		e := env.openElection(t)
		id := e.GetElectionId()
		s := c.stream(t, "", id, 0)
		first := s.await(t, 5*time.Second, func(*votev1.Tally) bool { return true })
		if first.GetVersion() != 0 || first.GetTotalVotes() != 0 || len(first.GetCounts()) != 3 || first.GetAsOf() == nil {
			t.Fatalf("initial tally %v", first)
		}

		g := grpcVote{env.g}
		cast := func(candidate string) {
			_, u := env.voter(t)
			if _, err := g.cast(t, u, id, candidate, castOpts{}); err != nil {
				t.Fatal(err)
			}
		}
		cast("red")
		cast("blue")
		start := time.Now()
		cast("blue")
		tl := s.await(t, 5*time.Second, func(tl *votev1.Tally) bool { return tl.GetTotalVotes() == 3 })
		t.Logf("tally of the last vote arrived %v after it was cast", time.Since(start))
		if got := counts(tl); got["red"] != 1 || got["blue"] != 2 || tl.GetVersion() != 3 {
			t.Fatalf("tally %v", tl)
		}

		// Reconnecting with version 3: nothing until something changes.
		again := c.stream(t, "", id, 3)
		again.quiet(t, 1100*time.Millisecond) // longer than one refresh period
		cast("green")
		if tl := again.await(t, 5*time.Second, func(*votev1.Tally) bool { return true }); tl.GetVersion() != 4 || counts(tl)["green"] != 1 {
			t.Fatalf("after reconnecting: %v", tl)
		}
		s.await(t, 5*time.Second, func(tl *votev1.Tally) bool { return tl.GetVersion() == 4 })

		wantField(t, c.stream(t, "", id, -1).refused(t), "sinceVersion")
		wantCode(t, c.stream(t, "", "00000000-0000-4000-8000-000000000000", 0).refused(t), codes.NotFound)
	})
}

// Two replicas on one database and one Redis: a stream on B sees the votes
// cast on A within about a second, over both protocols; votes sent to
// either replica for one user count once.
func TestVoteStreamAcrossReplicas(t *testing.T) {
	var envs []*voteEnv
	for _, cfg := range replicaConfigs(t, "region-a", "region-b") {
		cfg.Vote.UserLimit = ratelimit.Limit{Rate: 100, Period: time.Minute, Burst: 100}
		voteConfig(&cfg)
		envs = append(envs, newVoteEnv(t, startConfig(t, cfg)))
	}
	a, b := envs[0], envs[1]
	e := a.openElection(t)
	id := e.GetElectionId()
	if e.GetHomeRegion() != "region-a" {
		t.Fatalf("home region %q, want the creating replica's", e.GetHomeRegion())
	}
	streams := []*tallyStream{grpcVote{b.g}.stream(t, "", id, 0), restVote{newREST(b.p)}.stream(t, "", id, 0)}
	for _, s := range streams {
		s.await(t, 5*time.Second, func(tl *votev1.Tally) bool { return tl.GetVersion() == 0 })
	}

	ga, gb := grpcVote{a.g}, grpcVote{b.g}
	const voters = 6
	for i := range voters {
		_, u := a.voter(t)
		if _, err := ga.cast(t, u, id, []string{"red", "green", "blue"}[i%3], castOpts{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range streams {
		tl := s.await(t, 5*time.Second, func(tl *votev1.Tally) bool { return tl.GetTotalVotes() == voters })
		if got := counts(tl); got["red"] != 2 || got["green"] != 2 || got["blue"] != 2 {
			t.Fatalf("B's stream: %v", tl)
		}
	}

	// One user, racing on both replicas: one vote.
	_, u := a.voter(t)
	var wg sync.WaitGroup
	errs := make([]error, 20)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := []grpcVote{ga, gb}[i%2]
			_, errs[i] = c.cast(t, u, id, "red", castOpts{})
		}()
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
		} else {
			wantCode(t, err, codes.AlreadyExists)
		}
	}
	if ok != 1 {
		t.Fatalf("%d acceptances, want 1", ok)
	}
	for _, c := range []grpcVote{ga, gb} {
		if r, err := c.results(t, "", id); err != nil || r.GetTotalVotes() != voters+1 {
			t.Fatalf("results = %v, %v", r, err)
		}
	}
	eventually(t, 3*time.Second, func() error {
		if l, err := gb.live(t, "", id); err != nil || l.GetTotalVotes() != voters+1 {
			return fmt.Errorf("B's live count = %v, %v", l, err)
		}
		return nil
	})
	for _, s := range streams {
		s.await(t, 5*time.Second, func(tl *votev1.Tally) bool { return tl.GetTotalVotes() == voters+1 })
	}
}
