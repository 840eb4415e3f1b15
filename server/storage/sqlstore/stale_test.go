package sqlstore

import (
	"context"
	"testing"

	"github.com/apiplatform/platform/server/platform/storeerr"
)

// Stale-tolerant reads become follower reads on CockroachDB only; fresh
// reads never do.
func TestFollowerReadClause(t *testing.T) {
	ctx := context.Background()
	stale := storeerr.WithStaleReads(ctx)
	crdb := &Store{db{engine: EngineCockroachDB}}
	pg := &Store{db{engine: EnginePostgreSQL}}
	if got := crdb.asOf(stale); got != " AS OF SYSTEM TIME follower_read_timestamp()" {
		t.Fatalf("cockroachdb stale read: %q", got)
	}
	for name, got := range map[string]string{"cockroachdb fresh": crdb.asOf(ctx), "postgresql stale": pg.asOf(stale), "postgresql fresh": pg.asOf(ctx)} {
		if got != "" {
			t.Fatalf("%s read: %q, want no clause", name, got)
		}
	}
}

// On PostgreSQL a stale-tolerant read is a normal read.
func TestStaleReadOnPostgres(t *testing.T) {
	s := openFresh(t, Config{})
	ctx := context.Background()
	if _, err := s.GetShare(storeerr.WithStaleReads(ctx), "missing"); err != storeerr.ErrNotFound {
		t.Fatalf("stale read of a missing share: %v, want ErrNotFound", err)
	}
}
