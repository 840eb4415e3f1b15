package app

import (
	"context"
	"testing"

	"github.com/fullstorydev/grpchan/inprocgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
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
	conn := inProcConn{ch}
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
