// Package auth resolves the caller of every RPC from the
// `authorization: Bearer <token>` metadata and enforces each method's
// policy before the handler runs, so handlers only ever see callers that are
// allowed to be there.
package auth

import (
	"context"
	"errors"
	"strings"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/apiplatform/platform/server/platform/apierr"
	"github.com/apiplatform/platform/server/platform/epoch"
	"github.com/apiplatform/platform/server/platform/storeerr"
)

// Principal is an authenticated caller.
type Principal struct {
	UserID    string
	SessionID string
	Guest     bool
	Admin     bool
	// KeyID is set when the caller presented an API key, whose Scopes
	// (space-separated, so that a Principal stays comparable) then bound
	// what it may call (see Allows). Sessions have no scopes.
	KeyID  string
	Scopes string
}

// readPrefixes name the methods a `SERVICE:read` scope allows: they change
// nothing.
var readPrefixes = []string{"Get", "List", "Stream", "Follow", "Export"}

// Allows reports whether p may call the gRPC method fullMethod
// (`/favorite.v1.FavoriteService/GetFavorite`): always for a session; for
// an API key, when a scope names the method's service (its proto package's
// first part, or `*`) with `write`, or with `read` for a read method.
func (p Principal) Allows(fullMethod string) bool {
	if p.KeyID == "" {
		return true
	}
	svc, method, _ := strings.Cut(strings.TrimPrefix(fullMethod, "/"), "/")
	svc, _, _ = strings.Cut(svc, ".")
	read := false
	for _, pre := range readPrefixes {
		read = read || strings.HasPrefix(method, pre)
	}
	for _, sc := range strings.Fields(p.Scopes) {
		name, level, _ := strings.Cut(sc, ":")
		if (name == svc || name == "*") && (level == "write" || (level == "read" && read)) {
			return true
		}
	}
	return false
}

// Policy says who may call a method.
type Policy int

const (
	// Signed-in users, guests included. The default for unlisted methods.
	User Policy = iota
	// Anyone; a valid token is resolved when present, an invalid one ignored
	// (a stale browser cookie must not break a public page).
	Public
	// Registered (non-guest) users.
	Registered
	// Admins.
	Admin
)

// Authenticator turns an access token into a principal. It returns
// storeerr.ErrNotFound for unknown, expired or revoked tokens.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (Principal, error)
}

type principalKey struct{}

// FromContext returns the caller, if the request carried a valid token.
// On public methods the token is resolved here, on first use, so that the
// hot public paths (redirects, share pages, the canvas board) cost no
// session lookup when the handler never asks who is calling.
func FromContext(ctx context.Context) (Principal, bool) {
	if p, ok := ctx.Value(principalKey{}).(Principal); ok {
		return p, true
	}
	if l, ok := ctx.Value(lazyKey{}).(*lazyPrincipal); ok {
		l.once.Do(func() { l.p, l.ok = l.resolve() })
		return l.p, l.ok
	}
	return Principal{}, false
}

type lazyKey struct{}

type lazyPrincipal struct {
	once    sync.Once
	resolve func() (Principal, bool)
	p       Principal
	ok      bool
}

// WithPrincipal is for tests and internal calls.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// BearerToken extracts the token of the authorization metadata.
func BearerToken(ctx context.Context) string {
	// ValueFromIncomingContext reads the one key without copying the
	// whole metadata map, which FromIncomingContext does on every call.
	for _, v := range metadata.ValueFromIncomingContext(ctx, "authorization") {
		if len(v) > 7 && strings.EqualFold(v[:7], "bearer ") {
			return strings.TrimSpace(v[7:])
		}
	}
	return ""
}

// Policies maps full method names to their policy.
type Policies map[string]Policy

// Interceptors enforces policies for unary and streaming RPCs.
type Interceptors struct {
	Auth     Authenticator
	Policies Policies
}

func (i Interceptors) authorize(ctx context.Context, method string) (context.Context, error) {
	policy := i.Policies[method]
	token := BearerToken(ctx)
	if token == "" {
		if policy == Public {
			return ctx, nil
		}
		return nil, apierr.Unauthenticated("missing bearer token: call /api/v1/auth/guest or log in")
	}
	// The revocation epoch Authenticate reads is read together with the
	// epochs of the caches the handler may consult (epoch.NewRedisGroup):
	// one round trip for the call.
	ctx = epoch.WithCall(ctx)
	if policy == Public {
		// An invalid token or a failed lookup just means "anonymous" here.
		authCtx := ctx
		return context.WithValue(ctx, lazyKey{}, &lazyPrincipal{resolve: func() (Principal, bool) {
			p, err := i.Auth.Authenticate(authCtx, token)
			// An API key without a scope for the method is anonymous here.
			return p, err == nil && p.Allows(method)
		}}), nil
	}
	p, err := i.Auth.Authenticate(ctx, token)
	if err != nil {
		if _, ok := err.(interface{ GRPCStatus() *status.Status }); ok {
			return nil, err // e.g. an API key over its rate limit
		}
		if !errors.Is(err, storeerr.ErrNotFound) {
			return nil, apierr.FromStorage(ctx, err, "")
		}
		return nil, apierr.Unauthenticated("invalid, expired or revoked token")
	}
	switch {
	case policy == Registered && p.Guest:
		return nil, apierr.PermissionDenied("this needs a registered account; guests may register with /api/v1/auth/register")
	case policy == Admin && !p.Admin:
		return nil, apierr.PermissionDenied("admin only")
	case !p.Allows(method):
		return nil, apierr.PermissionDenied("this API key's scopes do not allow " + method)
	}
	return WithPrincipal(ctx, p), nil
}

// Unary is the unary server interceptor.
func (i Interceptors) Unary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ctx, err := i.authorize(ctx, info.FullMethod)
		if err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// Stream is the streaming server interceptor.
func (i Interceptors) Stream() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx, err := i.authorize(ss.Context(), info.FullMethod)
		if err != nil {
			return err
		}
		return handler(srv, &wrappedStream{ServerStream: ss, ctx: ctx})
	}
}

type wrappedStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (w *wrappedStream) Context() context.Context { return w.ctx }

// Require returns the caller or UNAUTHENTICATED; for handlers of methods
// whose policy is Public but that need a caller for some inputs.
func Require(ctx context.Context) (Principal, error) {
	p, ok := FromContext(ctx)
	if !ok {
		return Principal{}, apierr.Unauthenticated("missing bearer token")
	}
	return p, nil
}
