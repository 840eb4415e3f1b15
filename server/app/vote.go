package app

import (
	"context"

	"google.golang.org/grpc"

	votev1 "github.com/apiplatform/platform/gen/go/vote/v1"
	"github.com/apiplatform/platform/server/vote"
)

func buildVote(ctx context.Context, d deps) (module, error) {
	svc := vote.New(d.cfg.Vote)
	return module{
		register: func(g *grpc.Server) { votev1.RegisterVoteServiceServer(g, svc) },
		policies: vote.Policies,
	}, nil
}
