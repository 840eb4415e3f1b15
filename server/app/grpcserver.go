package app

import (
	"context"
	"log/slog"
	"time"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/apiplatform/platform/server/platform/apierr"
	"github.com/apiplatform/platform/server/platform/auth"
	"github.com/apiplatform/platform/server/platform/streamlimit"
	"github.com/apiplatform/platform/server/platform/telemetry"
	"github.com/apiplatform/platform/server/platform/wire"
)

type serverDeps struct {
	log           *slog.Logger
	region        string
	gatewaySecret string
	authn         auth.Authenticator
	policies      auth.Policies
	// requestTimeout bounds unary calls that carry no earlier deadline, so
	// a stuck dependency cannot pile up requests without end.
	requestTimeout time.Duration
	edge           EdgeConfig
	// streams caps open streams per client and per replica; one limiter is
	// shared by the gRPC server and the in-process channel.
	streams *streamlimit.Limiter
	tracing bool
}

// newGRPCServer builds the gRPC server with its whole interceptor chain
// (see interceptors). Tracing, when on, is a stats handler (it continues the
// gateway's trace from the request metadata).
func newGRPCServer(d serverDeps) *grpc.Server {
	unary, stream := interceptors(d)
	opts := append(transportOptions(d.edge), grpc.ChainUnaryInterceptor(unary...), grpc.ChainStreamInterceptor(stream...))
	if d.tracing {
		opts = append(opts, grpc.StatsHandler(serverStatsHandler()))
	}
	return grpc.NewServer(opts...)
}

// interceptors is the server's chain in one place, shared by the gRPC
// server and the gateway's in-process channel; the order matters and is
// read top to bottom:
//  1. recovery turns a handler panic into INTERNAL instead of a dead process;
//  2. sanitize keeps non-status error text from reaching clients;
//  3. region stamps the serving region on every response;
//  4. client address, then auth, which may rate limit by that address;
//  5. (streams) the cap on open streams, counted by that address before
//     auth so that anonymous floods are held too;
//
// metrics come first of all so that they see every outcome, including
// panics turned into INTERNAL and calls refused by auth.
func interceptors(d serverDeps) ([]grpc.UnaryServerInterceptor, []grpc.StreamServerInterceptor) {
	recover := recovery.WithRecoveryHandlerContext(func(ctx context.Context, p any) error {
		d.log.ErrorContext(ctx, "panic in handler", "panic", p)
		return status.Error(codes.Internal, "internal error")
	})
	edge := wire.Interceptors{GatewaySecret: d.gatewaySecret}
	authz := auth.Interceptors{Auth: d.authn, Policies: d.policies}
	streams := d.streams
	unary := []grpc.UnaryServerInterceptor{
		telemetry.RPCMetrics.UnaryServerInterceptor(),
		deadlineUnary(d.requestTimeout),
		recovery.UnaryServerInterceptor(recover),
		sanitizeUnary,
		regionUnary(d.region),
		edge.Unary(),
		authz.Unary(),
	}
	stream := []grpc.StreamServerInterceptor{
		telemetry.RPCMetrics.StreamServerInterceptor(),
		recovery.StreamServerInterceptor(recover),
		sanitizeStream,
		regionStream(d.region),
		edge.Stream(),
		streams.Stream(),
		authz.Stream(),
	}
	return unary, stream
}

func deadlineUnary(d time.Duration) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		if _, ok := ctx.Deadline(); !ok && d > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, d)
			defer cancel()
		}
		return h(ctx, req)
	}
}

func sanitize(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	return apierr.Internal(ctx, err)
}

func sanitizeUnary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	resp, err := h(ctx, req)
	return resp, sanitize(ctx, err)
}

func sanitizeStream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	return sanitize(ss.Context(), h(srv, ss))
}

// RegionMetadata names the serving region in response headers (X-Region
// over REST).
const RegionMetadata = "x-region"

func regionUnary(region string) grpc.UnaryServerInterceptor {
	// One metadata for every call: grpc.SetHeader only reads it.
	md := metadata.Pairs(RegionMetadata, region)
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		_ = grpc.SetHeader(ctx, md)
		return h(ctx, req)
	}
}

func regionStream(region string) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		_ = ss.SetHeader(metadata.Pairs(RegionMetadata, region))
		return h(srv, ss)
	}
}
