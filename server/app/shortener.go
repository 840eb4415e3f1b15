package app

import (
	"context"

	"google.golang.org/grpc"

	shortenerv1 "github.com/apiplatform/platform/gen/go/shortener/v1"
	"github.com/apiplatform/platform/server/shortener"
)

func buildShortener(ctx context.Context, d deps) (module, error) {
	svc := shortener.New(d.cfg.Shortener)
	return module{
		register: func(g *grpc.Server) { shortenerv1.RegisterShortenerServiceServer(g, svc) },
		policies: shortener.Policies,
	}, nil
}
