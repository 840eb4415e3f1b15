package sqlstore

import (
	"context"
	"testing"
	"time"

	"github.com/apiplatform/platform/server/storage/sqlstore/sqltest"
)

// freshDatabaseURL returns the URL of an empty database of its own, dropped
// when the test ends (skipping without TEST_DATABASE_URL).
func freshDatabaseURL(t testing.TB) string {
	t.Helper()
	return sqltest.FreshDatabaseURL(t)
}

// openFresh opens a store on a fresh database.
func openFresh(t testing.TB, cfg Config) *Store {
	t.Helper()
	cfg.URL = freshDatabaseURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := Open(ctx, cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}
