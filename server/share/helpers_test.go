package share_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	favoritev1 "github.com/apiplatform/platform/gen/go/favorite/v1"
	"github.com/apiplatform/platform/server/favorite"
	"github.com/apiplatform/platform/server/platform/auth"
	"github.com/apiplatform/platform/server/platform/cache"
	"github.com/apiplatform/platform/server/platform/ratelimit"
	"github.com/apiplatform/platform/server/platform/servicetest"
	"github.com/apiplatform/platform/server/platform/wire"
	"github.com/apiplatform/platform/server/share"
	"github.com/apiplatform/platform/server/storage/embedded"
)

type env struct {
	store  *embedded.Store
	svc    *share.Service
	favs   *favorite.Service
	clock  *clock
	closed bool
}

var generous = ratelimit.Limit{Rate: 1000, Period: time.Second, Burst: 1000}

func testConfig() share.Config {
	return share.Config{
		PublicBaseURL: "https://colors.example/",
		UserLimit:     generous, AddrLimit: generous,
		PageMaxAge: time.Minute,
		// Hits reach the store only when a test closes the service.
		HitsFlushInterval: time.Hour,
	}
}

// newEnv builds the service over a fresh embedded store with the real
// favorite service as the source of colours.
func newEnv(t *testing.T, cfg share.Config) *env {
	t.Helper()
	st, err := embedded.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	favs, err := favorite.New(ctx, favorite.Deps{Store: st, Shares: st, Cache: cache.NewMemory(100)}, favorite.Config{})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := share.New(ctx, share.Deps{
		Store: st, Favorites: favs, Limiter: ratelimit.NewMemory(100),
		Cache: cache.NewMemory(100), Pages: cache.NewMemory(100),
	}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{store: st, svc: svc, favs: favs, clock: servicetest.NewClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))}
	svc.SetClock(e.clock.Now)
	t.Cleanup(func() {
		e.close()
		_ = st.Close()
	})
	return e
}

// close flushes counted hits to the store (once).
func (e *env) close() {
	if !e.closed {
		e.closed = true
		_ = e.svc.Close()
	}
}

// user is a signed-in caller at addr with a saved favorite colour.
func (e *env) user(t *testing.T, colour string) context.Context {
	t.Helper()
	ctx := as(uuid.NewString(), "192.0.2.1")
	e.setColour(t, ctx, colour)
	return ctx
}

func (e *env) setColour(t *testing.T, ctx context.Context, colour string) {
	t.Helper()
	if _, err := e.favs.SetFavorite(ctx, &favoritev1.SetFavoriteRequest{Color: colour}); err != nil {
		t.Fatal(err)
	}
}

func as(userID, addr string) context.Context {
	ctx := wire.WithEdge(context.Background(), wire.Edge{Addr: netip.MustParseAddr(addr)})
	return auth.WithPrincipal(ctx, auth.Principal{UserID: userID, SessionID: "s-" + userID})
}

func userID(ctx context.Context) string {
	p, _ := auth.FromContext(ctx)
	return p.UserID
}

// anonymous is a caller without a token (and, when given, with that
// If-None-Match).
func anonymous(ifNoneMatch ...string) context.Context {
	e := wire.Edge{Addr: netip.MustParseAddr("198.51.100.9")}
	if len(ifNoneMatch) > 0 {
		e.IfNoneMatch = ifNoneMatch[0]
	}
	return wire.WithEdge(context.Background(), e)
}

// headers records the response metadata a handler sets, standing in for
// the gRPC transport the gateway reads it from.
type headers struct{ md metadata.MD }

func (h *headers) Method() string { return "" }
func (h *headers) SetHeader(md metadata.MD) error {
	h.md = metadata.Join(h.md, md)
	return nil
}
func (h *headers) SendHeader(md metadata.MD) error { return h.SetHeader(md) }
func (h *headers) SetTrailer(metadata.MD) error    { return nil }

func (h *headers) get(key string) string {
	if v := h.md.Get(key); len(v) > 0 {
		return v[len(v)-1]
	}
	return ""
}

func recording(ctx context.Context) (context.Context, *headers) {
	h := &headers{}
	return grpc.NewContextWithServerTransportStream(ctx, h), h
}

// The shared test helpers under this package's names.
type clock = servicetest.Clock

var (
	wantStatus = servicetest.WantStatus
	reason     = servicetest.Reason
)
