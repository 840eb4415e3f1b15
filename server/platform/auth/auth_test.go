package auth

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/apiplatform/platform/server/platform/storeerr"
)

// tokens is an Authenticator over a fixed table; every other token is
// unknown, and "broken" is a store that cannot answer.
type tokens struct {
	byToken map[string]Principal
	calls   atomic.Int32
}

func (a *tokens) Authenticate(_ context.Context, token string) (Principal, error) {
	a.calls.Add(1)
	if token == "broken" {
		return Principal{}, fmt.Errorf("lookup: %w", storeerr.ErrUnavailable)
	}
	p, ok := a.byToken[token]
	if !ok {
		return Principal{}, storeerr.ErrNotFound
	}
	return p, nil
}

var (
	guest  = Principal{UserID: "g1", SessionID: "s1", Guest: true}
	member = Principal{UserID: "u1", SessionID: "s2"}
	admin  = Principal{UserID: "a1", SessionID: "s3", Admin: true}
)

func newInterceptors() (Interceptors, *tokens) {
	a := &tokens{byToken: map[string]Principal{"guest": guest, "member": member, "admin": admin}}
	return Interceptors{Auth: a, Policies: Policies{
		"/t/Public": Public, "/t/User": User, "/t/Registered": Registered, "/t/Admin": Admin,
	}}, a
}

func incoming(pairs ...string) context.Context {
	return metadata.NewIncomingContext(context.Background(), metadata.Pairs(pairs...))
}

// callUnary runs the unary interceptor for method and reports what the
// handler saw (nil error and the caller) or the refusal.
func callUnary(t *testing.T, i Interceptors, ctx context.Context, method string) (Principal, bool, error) {
	t.Helper()
	var p Principal
	var ok, ran bool
	_, err := i.Unary()(ctx, "req", &grpc.UnaryServerInfo{FullMethod: method}, func(ctx context.Context, req any) (any, error) {
		ran = true
		p, ok = FromContext(ctx)
		return "resp", nil
	})
	if err == nil && !ran {
		t.Fatal("interceptor neither refused nor called the handler")
	}
	if err != nil && ran {
		t.Fatal("handler ran for a refused call")
	}
	return p, ok, err
}

// Each policy admits exactly the callers it names; refusals say whether to
// sign in (UNAUTHENTICATED) or that signing in will not help
// (PERMISSION_DENIED).
func TestPolicies(t *testing.T) {
	i, _ := newInterceptors()
	const ok, unauth, denied = codes.OK, codes.Unauthenticated, codes.PermissionDenied
	callers := []string{"", "guest", "member", "admin", "stale"}
	for _, c := range []struct {
		method string
		want   []codes.Code // by caller, in the order above
	}{
		{"/t/Public", []codes.Code{ok, ok, ok, ok, ok}},
		{"/t/User", []codes.Code{unauth, ok, ok, ok, unauth}},
		{"/t/Registered", []codes.Code{unauth, denied, ok, ok, unauth}},
		{"/t/Admin", []codes.Code{unauth, denied, denied, ok, unauth}},
		{"/t/Unlisted", []codes.Code{unauth, ok, ok, ok, unauth}}, // defaults to User
	} {
		for n, caller := range callers {
			ctx := context.Background()
			if caller != "" {
				ctx = incoming("authorization", "Bearer "+caller)
			}
			p, seen, err := callUnary(t, i, ctx, c.method)
			if got := status.Code(err); got != c.want[n] {
				t.Errorf("%s as %q: %v (%v), want %v", c.method, caller, got, err, c.want[n])
				continue
			}
			if err != nil {
				want := map[codes.Code]string{unauth: "UNAUTHENTICATED", denied: "PERMISSION_DENIED"}[c.want[n]]
				if reason := errorReason(err); reason != want {
					t.Errorf("%s as %q: reason %q, want %q", c.method, caller, reason, want)
				}
				continue
			}
			want, known := map[string]Principal{"guest": guest, "member": member, "admin": admin}[caller]
			if seen != known || p != want {
				t.Errorf("%s as %q: handler saw %+v (%v), want %+v (%v)", c.method, caller, p, seen, want, known)
			}
		}
	}
}

func errorReason(err error) string {
	for _, d := range status.Convert(err).Details() {
		if ei, ok := d.(*errdetails.ErrorInfo); ok {
			return ei.GetReason()
		}
	}
	return ""
}

// Public methods cost no session lookup unless the handler asks who is
// calling, and then exactly one however often it asks.
func TestPublicResolvesLazilyOnce(t *testing.T) {
	i, a := newInterceptors()
	ctx := incoming("authorization", "Bearer member")
	_, err := i.Unary()(ctx, nil, &grpc.UnaryServerInfo{FullMethod: "/t/Public"}, func(ctx context.Context, _ any) (any, error) {
		if n := a.calls.Load(); n != 0 {
			t.Errorf("%d lookups before the handler asked", n)
		}
		for range 3 {
			if p, ok := FromContext(ctx); !ok || p != member {
				t.Errorf("FromContext = %+v, %v; want member", p, ok)
			}
		}
		return nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := a.calls.Load(); n != 1 {
		t.Fatalf("%d lookups, want 1", n)
	}

	// A handler that never asks costs none.
	a.calls.Store(0)
	if _, _, err := callUnaryNoAsk(i, ctx, "/t/Public"); err != nil {
		t.Fatal(err)
	}
	if n := a.calls.Load(); n != 0 {
		t.Fatalf("%d lookups for a handler that never asked", n)
	}
}

func callUnaryNoAsk(i Interceptors, ctx context.Context, method string) (any, bool, error) {
	ran := false
	resp, err := i.Unary()(ctx, nil, &grpc.UnaryServerInfo{FullMethod: method}, func(context.Context, any) (any, error) {
		ran = true
		return nil, nil
	})
	return resp, ran, err
}

// A store that cannot answer is an outage (retry later), not a bad token;
// on a public method it just means anonymous.
func TestStoreOutage(t *testing.T) {
	i, _ := newInterceptors()
	ctx := incoming("authorization", "Bearer broken")
	_, _, err := callUnary(t, i, ctx, "/t/User")
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("User method with the store down: %v, want UNAVAILABLE", err)
	}
	p, ok, err := callUnary(t, i, ctx, "/t/Public")
	if err != nil || ok {
		t.Fatalf("Public method with the store down: %+v %v %v, want anonymous", p, ok, err)
	}
}

func TestBearerToken(t *testing.T) {
	for _, c := range []struct {
		name string
		md   metadata.MD
		want string
	}{
		{"bearer", metadata.Pairs("authorization", "Bearer abc"), "abc"},
		{"scheme is case-insensitive", metadata.Pairs("authorization", "bEaReR abc"), "abc"},
		{"surrounding spaces", metadata.Pairs("authorization", "Bearer   abc  "), "abc"},
		{"other scheme", metadata.Pairs("authorization", "Basic dXNlcjpwYXNz"), ""},
		{"scheme only", metadata.Pairs("authorization", "Bearer "), ""},
		{"no scheme", metadata.Pairs("authorization", "abc"), ""},
		{"first bearer of several", metadata.MD{"authorization": {"Basic x", "Bearer second"}}, "second"},
		{"none", metadata.MD{}, ""},
	} {
		ctx := metadata.NewIncomingContext(context.Background(), c.md)
		if got := BearerToken(ctx); got != c.want {
			t.Errorf("%s: BearerToken = %q, want %q", c.name, got, c.want)
		}
	}
	if got := BearerToken(context.Background()); got != "" {
		t.Errorf("no metadata: BearerToken = %q", got)
	}
}

type fakeStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (f fakeStream) Context() context.Context { return f.ctx }

// Streams are held to the same policies and the handler's stream context
// carries the caller.
func TestStreamInterceptor(t *testing.T) {
	i, _ := newInterceptors()
	run := func(token, method string) (Principal, bool, error) {
		var p Principal
		var ok bool
		err := i.Stream()(nil, fakeStream{ctx: incoming("authorization", "Bearer "+token)}, &grpc.StreamServerInfo{FullMethod: method},
			func(_ any, ss grpc.ServerStream) error {
				p, ok = FromContext(ss.Context())
				return nil
			})
		return p, ok, err
	}
	if p, ok, err := run("admin", "/t/Admin"); err != nil || !ok || p != admin {
		t.Fatalf("admin stream: %+v %v %v", p, ok, err)
	}
	if _, _, err := run("member", "/t/Admin"); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("member on admin stream: %v", err)
	}
	if _, _, err := run("nobody", "/t/User"); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("unknown token on user stream: %v", err)
	}
}

func TestRequire(t *testing.T) {
	if _, err := Require(context.Background()); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("Require without caller: %v", err)
	}
	p, err := Require(WithPrincipal(context.Background(), member))
	if err != nil || p != member {
		t.Fatalf("Require = %+v, %v", p, err)
	}
}
