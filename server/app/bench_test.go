package app_test

import (
	"context"
	"testing"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	favoritev1 "github.com/apiplatform/platform/gen/go/favorite/v1"
	identityv1 "github.com/apiplatform/platform/gen/go/identity/v1"
	sharev1 "github.com/apiplatform/platform/gen/go/share/v1"
)

// measure runs op b.N times from parallel clients over the real socket and
// reports, besides ns/op, its cost as a multiple of baseline (a gRPC health
// check: the floor cost of any call through the same server, connection
// and interceptors), measured for a second just before in the same run so
// that machine noise cancels out. ops/s is the throughput this machine
// sustained.
func measure(b *testing.B, baseline, op func(ctx context.Context) error) {
	ctx := context.Background()
	// The baseline is measured before and after the operation, and the
	// two averaged: a machine whose load changes during the run moves
	// both sides of the ratio alike.
	before := parallelRate(b, time.Second, func() error { return baseline(ctx) })
	b.ResetTimer()
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := op(ctx); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	rate := float64(b.N) / b.Elapsed().Seconds()
	base := (before + parallelRate(b, time.Second, func() error { return baseline(ctx) })) / 2
	b.ReportMetric(base/rate, "x-baseline")
	b.ReportMetric(rate, "ops/s")
}

// BenchmarkCore measures the identity, favorite and share hot paths on each
// backend against the health-check baseline.
//
//	make bench   # or: .ci/with-services go test -run '^$' -bench Core ./server/app/
func BenchmarkCore(b *testing.B) {
	for _, be := range backends() {
		b.Run(be.name, func(b *testing.B) {
			p := start(b, be, nil)
			ctx := context.Background()
			g, err := identityv1.NewIdentityServiceClient(p.conn).CreateGuest(ctx, &identityv1.CreateGuestRequest{})
			if err != nil {
				b.Fatal(err)
			}
			authed := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+g.GetSession().GetAccessToken())
			fav := favoritev1.NewFavoriteServiceClient(p.conn)
			if _, err := fav.SetFavorite(authed, &favoritev1.SetFavoriteRequest{Color: "teal"}); err != nil {
				b.Fatal(err)
			}
			shares := sharev1.NewShareServiceClient(p.conn)
			sh, err := shares.CreateShare(authed, &sharev1.CreateShareRequest{Snapshot: false})
			if err != nil {
				b.Fatal(err)
			}
			health := healthpb.NewHealthClient(p.conn)
			baseline := func(ctx context.Context) error {
				_, err := health.Check(ctx, &healthpb.HealthCheckRequest{})
				return err
			}
			b.Run("GetFavorite", func(b *testing.B) {
				measure(b, baseline, func(context.Context) error {
					_, err := fav.GetFavorite(authed, &favoritev1.GetFavoriteRequest{})
					return err
				})
			})
			b.Run("SetFavorite", func(b *testing.B) {
				measure(b, baseline, func(context.Context) error {
					_, err := fav.SetFavorite(authed, &favoritev1.SetFavoriteRequest{Color: "#336699"})
					return err
				})
			})
			b.Run("GetSharePage", func(b *testing.B) {
				measure(b, baseline, func(context.Context) error {
					_, err := shares.GetSharePage(ctx, &sharev1.GetSharePageRequest{Slug: sh.GetShare().GetSlug()})
					return err
				})
			})
		})
	}
}
