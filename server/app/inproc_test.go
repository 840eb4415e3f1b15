package app

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/fullstorydev/grpchan/inprocgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// A server stream refused before it reads its request, with the refusal
// certainly complete before the gateway sends the request: the call still
// ends with the refusal's status, as over a connection. (The channel's
// SendMsg then picks at random between taking the request and reporting
// io.EOF; 64 rounds leave no chance of missing the EOF.)
func TestInProcStreamRefusedBeforeRequest(t *testing.T) {
	finished := make(chan struct{}, 1)
	ch := new(inprocgrpc.Channel).WithServerStreamInterceptor(
		func(_ any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, _ grpc.StreamHandler) error {
			go func() { <-ss.Context().Done(); finished <- struct{}{} }()
			return status.Error(codes.PermissionDenied, "refused")
		})
	healthpb.RegisterHealthServer(ch, health.NewServer())
	conn := &inProcConn{Channel: ch}
	desc := &healthpb.Health_ServiceDesc.Streams[0]
	for i := range 64 {
		cs, err := conn.NewStream(context.Background(), desc, "/grpc.health.v1.Health/Watch")
		if err != nil {
			t.Fatal(err)
		}
		<-finished
		if err := cs.SendMsg(&healthpb.HealthCheckRequest{}); err != nil {
			t.Fatalf("round %d: SendMsg: %v, want nil (the status comes from RecvMsg)", i, err)
		}
		_ = cs.CloseSend()
		if err := cs.RecvMsg(new(healthpb.HealthCheckResponse)); status.Code(err) != codes.PermissionDenied {
			t.Fatalf("round %d: RecvMsg: %v, want PermissionDenied", i, err)
		}
	}
}

// A unary call on the caller's goroutine looks to the handler as it would
// through the channel or a connection: its own interceptor chain, none of
// the caller's context values, the caller's outgoing metadata as incoming,
// a peer and the method's name; headers and trailers it sets come back
// through the call options, its context ends with the call, and an error
// that is not a status arrives as the status it stands for.
func TestInProcUnaryOnCallersGoroutine(t *testing.T) {
	type callerKey struct{}
	var (
		seen    context.Context
		refusal error
		// The handler's own metadata: with spare capacity, so an append
		// into it would show.
		first = metadata.MD{"x-header": append(make([]string, 0, 4), "h")}
	)
	conn := &inProcConn{
		Channel: new(inprocgrpc.Channel),
		unary:   map[string]inProcMethod{},
		intercept: func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			seen = ctx
			if refusal != nil {
				return nil, refusal
			}
			_ = grpc.SetHeader(ctx, first)
			_ = grpc.SetHeader(ctx, metadata.Pairs("x-header", "h2"))
			_ = grpc.SetTrailer(ctx, metadata.Pairs("x-trailer", "t"))
			return h(ctx, req)
		},
	}
	healthpb.RegisterHealthServer(conn, health.NewServer())
	client := healthpb.NewHealthClient(conn)

	ctx := context.WithValue(context.Background(), callerKey{}, "caller's")
	ctx = metadata.AppendToOutgoingContext(ctx, "x-sent", "v")
	var header, trailer metadata.MD
	var p peer.Peer
	res, err := client.Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Header(&header), grpc.Trailer(&trailer), grpc.Peer(&p))
	if err != nil || res.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("Check: %v, %v", res, err)
	}
	if v := seen.Value(callerKey{}); v != nil {
		t.Errorf("handler sees the caller's context value %v", v)
	}
	if got := metadata.ValueFromIncomingContext(seen, "x-sent"); len(got) != 1 || got[0] != "v" {
		t.Errorf("incoming x-sent = %q, want [v]", got)
	}
	if m, _ := grpc.Method(seen); m != "/grpc.health.v1.Health/Check" {
		t.Errorf("grpc.Method = %q", m)
	}
	if sp, ok := peer.FromContext(seen); !ok || sp.Addr == nil || p.Addr == nil {
		t.Errorf("peer: handler %v, caller %v", sp, p.Addr)
	}
	if got := header.Get("x-header"); !slices.Equal(got, []string{"h", "h2"}) {
		t.Errorf("header x-header = %q, want [h h2]", got)
	}
	if got := first["x-header"]; !slices.Equal(got, []string{"h"}) || cap(got) != 4 || got[:2][1] != "" {
		t.Errorf("the handler's metadata became %q (%q in its array)", got, got[:2])
	}
	if got := trailer.Get("x-trailer"); len(got) != 1 || got[0] != "t" {
		t.Errorf("trailer x-trailer = %q, want [t]", got)
	}
	if seen.Err() == nil {
		t.Error("the handler's context is still live after the call returned")
	}
	if err := grpc.SetHeader(seen, metadata.Pairs("late", "1")); err == nil {
		t.Error("SetHeader after the call ended: nil error")
	}

	for _, c := range []struct {
		err  error
		want codes.Code
	}{
		{context.Canceled, codes.Canceled},
		{context.DeadlineExceeded, codes.DeadlineExceeded},
		{errors.New("plain"), codes.Unknown},
		{status.Error(codes.PermissionDenied, "no"), codes.PermissionDenied},
	} {
		refusal = c.err
		if _, err := client.Check(context.Background(), &healthpb.HealthCheckRequest{}); status.Code(err) != c.want {
			t.Errorf("handler error %v: call got %v, want %v", c.err, err, c.want)
		}
	}
}
