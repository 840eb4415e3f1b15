package shortener_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/apiplatform/platform/server/platform/bus"
	"github.com/apiplatform/platform/server/platform/cache"
	"github.com/apiplatform/platform/server/platform/ratelimit"
	"github.com/apiplatform/platform/server/shortener"
	"github.com/apiplatform/platform/server/storage/embedded"
	"github.com/apiplatform/platform/server/storage/sqlstore"
	"github.com/apiplatform/platform/server/storage/sqlstore/sqltest"
)

// BenchmarkRedirectRead compares, in one run, the redirect path's read of a
// hot link (served by the per-process hot-key cache) with a read of the same
// link from the store alone, on the embedded store and (under
// .ci/with-services) on PostgreSQL:
//
//	go test -run '^$' -bench BenchmarkRedirectRead ./server/shortener/
//	.ci/with-services go test -run '^$' -bench BenchmarkRedirectRead ./server/shortener/
//
// It reports ns per hot-key hit, ns per store read, and store/hit: how many
// times cheaper a hot link is than going to the database each time. On the
// 2-core development machine (shared with other jobs at the time):
//
//	BenchmarkRedirectRead/embedded   183.8 ns/hit   16692 ns/store-read     90.81 store/hit
//	BenchmarkRedirectRead/postgres    73.43 ns/hit 234322 ns/store-read   3191 store/hit
func BenchmarkRedirectRead(b *testing.B) {
	b.Run("embedded", func(b *testing.B) {
		st, err := embedded.Open(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = st.Close() })
		benchRead(b, st)
	})
	b.Run("postgres", func(b *testing.B) {
		if os.Getenv("TEST_DATABASE_URL") == "" {
			b.Skip("TEST_DATABASE_URL is not set")
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		st, err := sqlstore.Open(ctx, sqlstore.Config{URL: sqltest.FreshDatabaseURL(b)})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = st.Close() })
		benchRead(b, st)
	})
}

func benchRead(b *testing.B, st shortener.Store) {
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	bs := bus.NewMemory()
	b.Cleanup(func() { _ = bs.Close() })
	s, err := shortener.New(ctx, shortener.Deps{
		Store: st, Cache: cache.NewMemory(1000), Bus: bs, Limiter: ratelimit.NewMemory(1000), Log: log,
	}, shortener.Config{PublicBaseURL: "https://sho.rt", LocalCacheTTL: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	code := "bench-link"
	if _, err := st.CreateLinks(ctx, []shortener.Link{{Code: code, Target: "https://example.com/", Kind: 302, CreatedAt: time.Now().UTC()}}); err != nil {
		b.Fatal(err)
	}
	if err := s.Resolve(ctx, code); err != nil { // warms the hot-key cache
		b.Fatal(err)
	}
	measure := func(op func() error) float64 {
		start := time.Now()
		for range b.N {
			if err := op(); err != nil {
				b.Fatal(err)
			}
		}
		return float64(time.Since(start).Nanoseconds()) / float64(b.N)
	}
	b.ResetTimer()
	hit := measure(func() error { return s.Resolve(ctx, code) })
	db := measure(func() error { _, err := st.GetLink(ctx, code); return err })
	b.StopTimer()
	b.ReportMetric(hit, "ns/hit")
	b.ReportMetric(db, "ns/store-read")
	b.ReportMetric(db/hit, "store/hit")
	b.ReportMetric(0, "ns/op") // the two figures above are the result
}
