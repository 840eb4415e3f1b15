package shortener

import (
	"context"

	"google.golang.org/grpc"

	shortenerv1 "github.com/apiplatform/platform/gen/go/shortener/v1"
	"time"

	"github.com/apiplatform/platform/server/platform/apierr"
)

// admit takes an in-flight slot or sheds the call.
func (s *Service) admit() (func(), error) {
	if s.slots.Add(1) > int64(s.cfg.MaxInFlight) {
		s.slots.Add(-1)
		shedTotal.Inc()
		return nil, apierr.Unavailable("the shortener is overloaded; retry shortly", time.Second)
	}
	inFlight.Inc()
	return func() { s.slots.Add(-1); inFlight.Dec() }, nil
}

// admitted is the service's gRPC description with every method behind
// admission: the slot is taken after the server's interceptors (so metrics
// and auth see shed calls like any other) and before the handler, in one
// place instead of in each handler.
func (s *Service) admitted() *grpc.ServiceDesc {
	desc := shortenerv1.ShortenerService_ServiceDesc
	desc.Methods = append([]grpc.MethodDesc(nil), desc.Methods...)
	for i, m := range desc.Methods {
		handler := m.Handler
		desc.Methods[i].Handler = func(srv any, ctx context.Context, dec func(any) error, chain grpc.UnaryServerInterceptor) (any, error) {
			return handler(srv, ctx, dec, func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
				admit := func(ctx context.Context, req any) (any, error) {
					release, err := s.admit()
					if err != nil {
						return nil, err
					}
					defer release()
					return h(ctx, req)
				}
				if chain == nil {
					return admit(ctx, req)
				}
				return chain(ctx, req, info, admit)
			})
		}
	}
	return &desc
}
