package vote

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/apiplatform/platform/server/platform/redistest"
)

// Accounts counted in the window before still count: a burst that
// straddles a window boundary meets the cap like any other.
func TestAccountsCountedAcrossWindowBoundary(t *testing.T) {
	sets := map[string]accountSet{"memory": newMemoryAccounts()}
	if os.Getenv("TEST_REDIS_URL") != "" {
		sets["redis"] = redisAccounts{redistest.Client(t)}
	}
	for name, set := range sets {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			window := 10 * time.Minute
			election := redistest.Prefix("election")
			end := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC).Add(-time.Millisecond) // just before a boundary
			for _, u := range []string{"a", "b"} {
				k, prev := accountsKeys(election, "192.0.2.1", end, window)
				if _, _, err := set.add(ctx, k, prev, u, 2*window); err != nil {
					t.Fatal(err)
				}
			}
			k, prev := accountsKeys(election, "192.0.2.1", end.Add(2*time.Millisecond), window)
			added, n, err := set.add(ctx, k, prev, "c", 2*window)
			if err != nil || !added || n != 3 {
				t.Fatalf("third account just after the boundary: added %v, %d accounts, %v; want 3", added, n, err)
			}
		})
	}
}
