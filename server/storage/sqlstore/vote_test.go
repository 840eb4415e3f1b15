package sqlstore

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

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

// TestVoteInsertLooksUpElections: the batch insert checks each vote's
// election and candidate through their keys. With a few hundred elections,
// PostgreSQL's generic plan for the plain join (insertVotes) hash-joins the
// batch against a sequential scan of every election, which this test
// refuses.
func TestVoteInsertLooksUpElections(t *testing.T) {
	s := openFresh(t, Config{})
	if s.engine != EnginePostgreSQL {
		t.Skip("the plan is PostgreSQL's")
	}
	ctx := context.Background()
	if _, err := s.pool.Exec(ctx, `
		INSERT INTO elections (title, home_region, state, opens_at, created_by)
		SELECT 'e' || g, 'r', 2, now() - interval '1 hour', gen_random_uuid() FROM generate_series(1, 300) g;
		INSERT INTO candidates (election_id, id, name) SELECT e.id, c, c FROM elections e, unnest(ARRAY['a', 'b', 'c']) c;
		ANALYZE elections; ANALYZE candidates`, pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Fatal(err)
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	// The plan every execution after the first few uses: the generic one.
	if _, err := conn.Exec(ctx, "SET plan_cache_mode = force_generic_plan; PREPARE ins AS "+insertVotesPostgres, pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Fatal(err)
	}
	rows, err := conn.Query(ctx, `EXPLAIN EXECUTE ins('{r}', ARRAY[gen_random_uuid()], ARRAY[gen_random_uuid()], '{a}', ARRAY[gen_random_uuid()], '{""}')`,
		pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Join(plan, "\n")
	if strings.Contains(text, "Seq Scan on elections") || strings.Contains(text, "Seq Scan on candidates") ||
		!strings.Contains(text, "Index Scan using elections_") {
		t.Errorf("the vote insert does not look elections up by key:\n%s", text)
	}
}
