package app

import (
	"context"

	"google.golang.org/grpc"
)

// service is what every service package's New returns.
type service interface {
	// Register registers the service on a gRPC server.
	Register(gs grpc.ServiceRegistrar)
	// Close ends the service's background work, flushing what it buffers;
	// it runs once the servers stopped.
	Close() error
}

// assembly collects the services as app.New builds them, in order.
type assembly struct {
	ctx      context.Context
	err      error
	services []service
}

// add builds one service with its package's New(ctx, Deps, Config). After
// a failure it builds nothing more and returns the zero service: New then
// returns a.err, closing what was built.
func add[S service, D, C any](a *assembly, newService func(context.Context, D, C) (S, error), d D, cfg C) S {
	var zero S
	if a.err != nil {
		return zero
	}
	svc, err := newService(a.ctx, d, cfg)
	if err != nil {
		a.err = err
		return zero
	}
	a.services = append(a.services, svc)
	return svc
}
