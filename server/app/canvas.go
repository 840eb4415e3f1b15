package app

import (
	"context"

	"google.golang.org/grpc"

	canvasv1 "github.com/apiplatform/platform/gen/go/canvas/v1"
	"github.com/apiplatform/platform/server/canvas"
)

func buildCanvas(ctx context.Context, d deps) (module, error) {
	svc := canvas.New(d.cfg.Canvas)
	return module{
		register: func(g *grpc.Server) { canvasv1.RegisterCanvasServiceServer(g, svc) },
		policies: canvas.Policies,
	}, nil
}
