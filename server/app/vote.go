package app

import (
	"context"
	"fmt"

	"github.com/apiplatform/platform/server/identity"
	"github.com/apiplatform/platform/server/vote"
)

func buildVote(ctx context.Context, d deps) (module, error) {
	store, ok := d.engine.(vote.Store)
	if !ok {
		return module{}, fmt.Errorf("vote: storage engine %T does not keep votes", d.engine)
	}
	users, ok := d.engine.(identity.Store)
	if !ok {
		return module{}, fmt.Errorf("vote: storage engine %T does not keep users", d.engine)
	}
	svc := vote.New(d.cfg.Vote, vote.Deps{
		Store: store, Users: users, Limiter: d.limiter, Bus: d.bus, Redis: d.redis, Region: d.cfg.Region, Log: d.log,
	})
	return module{register: svc.Register, policies: vote.Policies, close: svc.Close}, nil
}
