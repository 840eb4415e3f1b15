package gateway_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/api/httpbody"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/apiplatform/platform/gateway"
	identityv1 "github.com/apiplatform/platform/gen/go/identity/v1"
	sharev1 "github.com/apiplatform/platform/gen/go/share/v1"
	shortenerv1 "github.com/apiplatform/platform/gen/go/shortener/v1"
	"github.com/apiplatform/platform/server/platform/apierr"
	"github.com/apiplatform/platform/server/platform/wire"
)

// seen keeps what the last call the fakes answered carried: its request
// metadata as the gateway sent it, and the Edge the server's wire
// interceptor resolved from it (what a real service believes).
type seen struct {
	mu   sync.Mutex
	md   metadata.MD
	edge wire.Edge
	body any
}

func (s *seen) record(ctx context.Context, req any) {
	md, _ := metadata.FromIncomingContext(ctx)
	s.mu.Lock()
	s.md, s.edge, s.body = md.Copy(), wire.FromContext(ctx), req
	s.mu.Unlock()
}

func (s *seen) last() (metadata.MD, any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.md, s.body
}

func (s *seen) lastEdge() wire.Edge {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.edge
}

// Token lifetimes the fake identity service hands out.
var (
	accessExpiry  = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	refreshExpiry = time.Date(2030, 2, 2, 3, 4, 5, 0, time.UTC)
)

func session() *identityv1.Session {
	return &identityv1.Session{
		AccessToken: "at_fake", AccessTokenExpireTime: timestamppb.New(accessExpiry),
		RefreshToken: "rt_fake", RefreshTokenExpireTime: timestamppb.New(refreshExpiry),
	}
}

// fakeIdentity answers every identity call with a session, as the real one
// does, and sets response metadata both allowlisted and not.
type fakeIdentity struct {
	identityv1.UnimplementedIdentityServiceServer
	seen *seen
}

func (f fakeIdentity) CreateGuest(ctx context.Context, req *identityv1.CreateGuestRequest) (*identityv1.CreateGuestResponse, error) {
	f.seen.record(ctx, req)
	_ = grpc.SetHeader(ctx, metadata.Pairs("x-region", "eu-test", "x-internal-detail", "not for clients"))
	_ = grpc.SetTrailer(ctx, metadata.Pairs("x-trailer-detail", "not for clients"))
	return &identityv1.CreateGuestResponse{User: &identityv1.User{Id: "u1", Guest: true}, Session: session()}, nil
}

func (f fakeIdentity) Register(ctx context.Context, req *identityv1.RegisterRequest) (*identityv1.RegisterResponse, error) {
	f.seen.record(ctx, req)
	return &identityv1.RegisterResponse{User: &identityv1.User{Id: "u1"}, Session: session()}, nil
}

func (f fakeIdentity) Login(ctx context.Context, req *identityv1.LoginRequest) (*identityv1.LoginResponse, error) {
	f.seen.record(ctx, req)
	if req.GetPassword() != "right" {
		return nil, apierr.Unauthenticated("invalid username or password")
	}
	return &identityv1.LoginResponse{User: &identityv1.User{Id: "u1"}, Session: session()}, nil
}

func (f fakeIdentity) Refresh(ctx context.Context, req *identityv1.RefreshRequest) (*identityv1.RefreshResponse, error) {
	f.seen.record(ctx, req)
	return &identityv1.RefreshResponse{User: &identityv1.User{Id: "u1"}, Session: session()}, nil
}

func (f fakeIdentity) Logout(ctx context.Context, req *identityv1.LogoutRequest) (*identityv1.LogoutResponse, error) {
	f.seen.record(ctx, req)
	return &identityv1.LogoutResponse{}, nil
}

func (f fakeIdentity) GetMe(ctx context.Context, req *identityv1.GetMeRequest) (*identityv1.GetMeResponse, error) {
	f.seen.record(ctx, req)
	return &identityv1.GetMeResponse{User: &identityv1.User{Id: "u1"}}, nil
}

// shareErrors are the statuses the fake GetShare answers, by slug.
var shareErrors = map[string]error{
	"limited":  apierr.ResourceExhausted("slow down", "RATE_LIMITED", 1500*time.Millisecond),
	"brief":    apierr.ResourceExhausted("slow down", "RATE_LIMITED", 10*time.Millisecond),
	"down":     apierr.Unavailable("storage is temporarily unavailable", 2*time.Second),
	"missing":  apierr.NotFound("share not found"),
	"bad":      apierr.InvalidArgument("slug", "must be 1 to 32 letters and digits"),
	"private":  apierr.PermissionDenied("only the owner"),
	"nobody":   apierr.Unauthenticated("missing bearer token"),
	"internal": status.Error(codes.Internal, "internal error"),
}

// intents are the HTTP statuses the fake GetShare asks for before failing
// with NOT_FOUND, by slug: an error-class intent is answered, a success
// one cannot turn an error into a success.
var intents = map[string]int{"gone": http.StatusGone, "created-then-failed": http.StatusCreated}

type fakeShare struct {
	sharev1.UnimplementedShareServiceServer
	seen *seen
}

func (f fakeShare) CreateShare(ctx context.Context, req *sharev1.CreateShareRequest) (*sharev1.CreateShareResponse, error) {
	f.seen.record(ctx, req)
	wire.SetStatus(ctx, http.StatusCreated)
	return &sharev1.CreateShareResponse{Share: &sharev1.Share{Slug: "abc", Snapshot: req.GetSnapshot()}}, nil
}

func (f fakeShare) GetShare(ctx context.Context, req *sharev1.GetShareRequest) (*sharev1.GetShareResponse, error) {
	f.seen.record(ctx, req)
	if err, ok := shareErrors[req.GetSlug()]; ok {
		return nil, err
	}
	if code, ok := intents[req.GetSlug()]; ok {
		wire.SetStatus(ctx, code)
		return nil, apierr.NotFound("share not found")
	}
	return &sharev1.GetShareResponse{Share: &sharev1.Share{Slug: req.GetSlug()}}, nil
}

const pageETag = `"v1"`

func (f fakeShare) GetSharePage(ctx context.Context, req *sharev1.GetSharePageRequest) (*httpbody.HttpBody, error) {
	f.seen.record(ctx, req)
	wire.SetHeader(ctx, "cache-control", "public, max-age=60")
	if wire.NotModified(ctx, pageETag) {
		return &httpbody.HttpBody{ContentType: "text/html; charset=utf-8"}, nil
	}
	return &httpbody.HttpBody{ContentType: "text/html; charset=utf-8", Data: []byte("<p>#FF0000</p>")}, nil
}

// fakeShortener redirects "temp" (302) and "perm" (301), answers "gone"
// as expired, and echoes a posted password in the page it returns.
type fakeShortener struct {
	shortenerv1.UnimplementedShortenerServiceServer
	seen *seen
}

func (f fakeShortener) FollowShortUrl(ctx context.Context, req *shortenerv1.FollowShortUrlRequest) (*httpbody.HttpBody, error) {
	f.seen.record(ctx, req)
	switch req.GetCode() {
	case "temp", "perm":
		wire.SetStatus(ctx, map[string]int{"temp": http.StatusFound, "perm": http.StatusMovedPermanently}[req.GetCode()])
		wire.SetHeader(ctx, "location", "https://example.com/"+req.GetCode())
		return &httpbody.HttpBody{ContentType: "text/html; charset=utf-8", Data: []byte("<a>redirecting</a>")}, nil
	case "gone":
		wire.SetStatus(ctx, http.StatusGone)
		return nil, apierr.NotFound("link expired")
	}
	return &httpbody.HttpBody{ContentType: "text/plain", Data: []byte("password=" + req.GetPassword())}, nil
}

type harness struct {
	h      http.Handler
	seen   *seen
	health *health.Server
}

// testSecret is the gateway secret unless a test sets its own.
const testSecret = "test-secret"

// newHarness serves the fakes on an in-memory gRPC listener, behind the
// server's wire interceptor accepting serverSecrets (default: the
// gateway's), and builds the gateway in front of a real client connection
// to it.
func newHarness(t testing.TB, cfg gateway.Config, serverSecrets ...string) *harness {
	t.Helper()
	if cfg.GatewaySecret == "" {
		cfg.GatewaySecret = testSecret
	}
	accepted := cfg.GatewaySecret
	if len(serverSecrets) > 0 {
		accepted = serverSecrets[0]
	}
	lis := bufconn.Listen(1 << 20)
	w := wire.Interceptors{GatewaySecret: accepted}
	srv := grpc.NewServer(grpc.UnaryInterceptor(w.Unary()))
	s := &seen{}
	identityv1.RegisterIdentityServiceServer(srv, fakeIdentity{seen: s})
	sharev1.RegisterShareServiceServer(srv, fakeShare{seen: s})
	shortenerv1.RegisterShortenerServiceServer(srv, fakeShortener{seen: s})
	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)

	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	h, err := gateway.New(context.Background(), conn, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &harness{h: h, seen: s, health: hs}
}

// do serves one request from a client at remote ("ip:port") and returns
// the answer; headers are "Name: value" lines.
func (h *harness) do(method, path, remote, body string, headers ...string) *http.Response {
	var r *http.Request
	if body == "" {
		r = httptest.NewRequest(method, path, nil)
	} else {
		r = httptest.NewRequest(method, path, strings.NewReader(body))
	}
	r.RemoteAddr = remote
	for _, hv := range headers {
		k, v, _ := strings.Cut(hv, ":")
		r.Header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	if body != "" && r.Header.Get("Content-Type") == "" {
		// As browsers and API clients label JSON bodies; the CSRF guard
		// refuses cookie calls that don't.
		r.Header.Set("Content-Type", "application/json")
	}
	w := httptest.NewRecorder()
	h.h.ServeHTTP(w, r)
	return w.Result()
}
