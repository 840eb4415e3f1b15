package sqlstore

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/apiplatform/platform/server/storage/storetest"
	"github.com/apiplatform/platform/server/vote"
)

// The vote store suite on PostgreSQL, each case on a fresh database.
func TestVoteConformance(t *testing.T) {
	storetest.RunVote(t, func(t *testing.T) vote.Store { return openFresh(t, Config{}) })
}

// BenchmarkVoteCommit isolates the storage side of group commit: b.N votes
// stored by 64 concurrent writers, as batches of 64 through 4 writers
// (what the vote service's committers do) and as one transaction per vote
// (the naive baseline), on one database in one run.
//
//	.ci/with-services go test ./server/storage/sqlstore/ -run '^$' -bench BenchmarkVoteCommit -benchtime 20000x
//
// Recorded on the shared 2-core CI machine with fsync on: 32748 votes/s
// in batches, 2928 one per transaction: 11.2x.
func BenchmarkVoteCommit(b *testing.B) {
	s := openFresh(b, Config{MaxConns: 64})
	ctx := context.Background()
	e := vote.Election{
		ID: uuid.NewString(), Title: "bench", State: vote.StateOpen, HomeRegion: "bench", CreatedBy: uuid.NewString(),
		OpensAt: time.Now().Add(-time.Minute), Candidates: []vote.Candidate{{ID: "a", Name: "A"}, {ID: "b", Name: "B"}, {ID: "c", Name: "C"}},
	}
	if err := s.CreateElection(ctx, e); err != nil {
		b.Fatal(err)
	}
	attempt := func(i int) vote.Attempt {
		audit, _ := uuid.NewV7()
		return vote.Attempt{
			Vote:    vote.Vote{ID: uuid.NewString(), ElectionID: e.ID, HomeRegion: e.HomeRegion, UserID: uuid.NewString(), CandidateID: []string{"a", "b", "c"}[i%3]},
			AuditID: audit.String(), At: time.Now(), ClientNetwork: "192.0.2.0/24", ServedRegion: "bench",
		}
	}
	// run stores n votes from writers goroutines, batch votes per
	// transaction, and returns votes per second.
	run := func(n, writers, batch int) float64 {
		var next atomic.Int64
		var wg sync.WaitGroup
		start := time.Now()
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					from := int(next.Add(int64(batch))) - batch
					if from >= n {
						return
					}
					var atts []vote.Attempt
					for i := from; i < min(from+batch, n); i++ {
						atts = append(atts, attempt(i))
					}
					if _, err := s.CommitVotes(ctx, vote.Batch{Attempts: atts, Shard: w}); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		return float64(n) / time.Since(start).Seconds()
	}
	b.ResetTimer()
	group := run(b.N, 4, 64)
	naive := run(b.N, 64, 1)
	b.StopTimer()
	b.ReportMetric(group, "group-votes/s")
	b.ReportMetric(naive, "naive-votes/s")
	b.ReportMetric(group/naive, "group/naive")
}
