package app

import (
	"context"
	"fmt"

	"google.golang.org/grpc"

	shortenerv1 "github.com/apiplatform/platform/gen/go/shortener/v1"
	"github.com/apiplatform/platform/server/shortener"
)

func buildShortener(ctx context.Context, d deps) (module, error) {
	st, ok := d.engine.(shortener.Store)
	if !ok {
		return module{}, fmt.Errorf("storage engine %T does not implement shortener.Store", d.engine)
	}
	cfg := d.cfg.Shortener
	cfg.PublicBaseURL, cfg.Region, cfg.GatewaySecret = d.cfg.PublicBaseURL, d.cfg.Region, d.cfg.GatewaySecret
	svc, err := shortener.New(ctx, shortener.Deps{Store: st, Cache: d.cache, Bus: d.bus, Limiter: d.limiter, Log: d.log}, cfg)
	if err != nil {
		return module{}, err
	}
	return module{
		register: func(g *grpc.Server) { shortenerv1.RegisterShortenerServiceServer(g, svc) },
		policies: shortener.Policies,
		// Runs after the servers stopped: flushes the buffered clicks.
		close: svc.Close,
	}, nil
}
