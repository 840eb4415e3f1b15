package sqlstore

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/cockroachdb/cockroach-go/v2/crdb/crdbpgxv5"
	"github.com/jackc/pgx/v5"
)

// retryPolicy bounds the re-runs of a transaction that lost a serialization
// conflict.
type retryPolicy struct {
	attempts  int           // total runs, the first included
	baseDelay time.Duration // first backoff ceiling, doubled each retry
	maxDelay  time.Duration // backoff ceiling
}

// defaultRetry lets a transaction through heavy contention on one row (a
// counter bumped by many requests at once) while failing in well under a
// second of backoff when it cannot win.
var defaultRetry = retryPolicy{attempts: 25, baseDelay: time.Millisecond, maxDelay: 100 * time.Millisecond}

// backoff returns a "full jitter" delay before retry n (1-based): uniform in
// [0, min(max, base·2ⁿ⁻¹)], so conflicting transactions spread out instead of
// colliding again in lockstep.
func (p retryPolicy) backoff(n int) time.Duration {
	ceil := p.baseDelay << min(n-1, 20)
	if ceil <= 0 || ceil > p.maxDelay {
		ceil = p.maxDelay
	}
	return rand.N(ceil + 1)
}

// retry runs op until it succeeds, fails with something other than a
// serialization failure, runs out of attempts or ctx ends. op must be safe to
// run again after a serialization failure: the database rolled back all of
// its effects, so it may only touch the database (no cache writes, no
// publishes, no counters in memory).
func (p retryPolicy) retry(ctx context.Context, op func() error) error {
	for n := 1; ; n++ {
		err := op()
		if err == nil || !retryable(err) || n >= p.attempts {
			return err
		}
		t := time.NewTimer(p.backoff(n))
		select {
		case <-ctx.Done():
			t.Stop()
			return err // the conflict, not the deadline, is what went wrong
		case <-t.C:
		}
	}
}

// inTx runs fn in a serializable transaction and commits it, re-running the
// whole transaction on serialization failures. fn may run several times, so
// it must have no side effect outside the transaction: do cache writes,
// publishes and the like after inTx returns.
//
// CockroachDB: cockroach-go's helper, which retries inside one transaction
// through the cockroach_restart savepoint (the protocol CockroachDB
// recommends; its RELEASE is the commit).
//
// PostgreSQL: never that helper. There RELEASE SAVEPOINT commits nothing; a
// serialization failure can surface at the final COMMIT, which the helper
// ignores, reporting success for a transaction PostgreSQL rolled back (a
// lost write; TestSavepointHelperLosesWritesOnPostgres shows it). So the
// transaction is run again from BEGIN, with backoff.
func (s *db) inTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	if s.engine == EngineCockroachDB {
		return crdbpgx.ExecuteTx(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.Serializable}, fn)
	}
	return s.retry.retry(ctx, func() error {
		return pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.Serializable}, fn)
	})
}

// do runs one statement (an implicit transaction), re-running it on
// serialization failures: at SERIALIZABLE, PostgreSQL raises them for single
// statements too (concurrent updates of one row), and CockroachDB cannot
// retry a statement itself once it has started returning rows.
func (s *db) do(ctx context.Context, op func() error) error {
	return s.retry.retry(ctx, op)
}
