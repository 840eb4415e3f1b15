package app

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc"

	canvasv1 "github.com/apiplatform/platform/gen/go/canvas/v1"
	"github.com/apiplatform/platform/server/canvas"
	"github.com/apiplatform/platform/server/identity"
	"github.com/apiplatform/platform/server/storage"
)

// buildCanvas puts the live board in Redis when there is one (every
// replica then serves the same board and shares cooldowns), in process
// otherwise; history and bans go to the store.
func buildCanvas(ctx context.Context, d deps) (module, error) {
	store, ok := d.engine.(canvas.Store)
	if !ok {
		return module{}, fmt.Errorf("canvas: storage engine %T has no canvas store", d.engine)
	}
	cd := canvas.Deps{Store: store, Redis: d.redis, Log: d.log}
	if users, ok := d.engine.(identity.Store); ok {
		cd.UserExists = func(ctx context.Context, id string) (bool, error) {
			_, err := users.GetUser(ctx, id)
			if errors.Is(err, storage.ErrNotFound) {
				return false, nil
			}
			return err == nil, err
		}
	}
	svc, err := canvas.New(ctx, cd, d.cfg.Canvas)
	if err != nil {
		return module{}, err
	}
	return module{
		register: func(g *grpc.Server) { canvasv1.RegisterCanvasServiceServer(g, svc) },
		policies: canvas.Policies,
		drain:    svc.Drain,
		close:    svc.Close,
	}, nil
}
