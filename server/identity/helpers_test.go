package identity_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/apiplatform/platform/server/favorite"
	"github.com/apiplatform/platform/server/identity"
	"github.com/apiplatform/platform/server/platform/auth"
	"github.com/apiplatform/platform/server/platform/cache"
	"github.com/apiplatform/platform/server/platform/ratelimit"
	"github.com/apiplatform/platform/server/platform/servicetest"
	"github.com/apiplatform/platform/server/platform/wire"
	"github.com/apiplatform/platform/server/storage/embedded"
)

type env struct {
	store *embedded.Store
	svc   *identity.Service
	favs  *favorite.Service
	clock *clock
}

// generous keeps the rate limits out of tests that are not about them.
var generous = ratelimit.Limit{Rate: 1000, Period: time.Second, Burst: 1000}

func testConfig() identity.Config {
	return identity.Config{AccessTTL: time.Hour, RefreshTTL: 24 * time.Hour, GuestLimit: generous, LoginLimit: generous}
}

// newEnv builds the service over a fresh embedded store, with the real
// favorite service behind GetMe.
func newEnv(t *testing.T, cfg identity.Config) *env {
	t.Helper()
	st, err := embedded.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	ctx := context.Background()
	favs, err := favorite.New(ctx, favorite.Deps{Store: st, Shares: st, Cache: cache.NewMemory(100)}, favorite.Config{})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := identity.New(ctx, identity.Deps{Store: st, Favorites: favs, Limiter: ratelimit.NewMemory(100)}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := servicetest.NewClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	svc.SetClock(c.Now)
	return &env{store: st, svc: svc, favs: favs, clock: c}
}

// from is a call from a client at addr.
func from(addr string) context.Context {
	return wire.WithEdge(context.Background(), wire.Edge{Addr: netip.MustParseAddr(addr)})
}

// as is a call by the holder of access token tok, as the auth interceptor
// would hand it to the handler.
func (e *env) as(t *testing.T, tok string) context.Context {
	t.Helper()
	p, err := e.svc.Authenticate(context.Background(), tok)
	if err != nil {
		t.Fatalf("Authenticate(%q): %v", tok, err)
	}
	return auth.WithPrincipal(from("192.0.2.1"), p)
}

// The shared test helpers under this package's names.
type clock = servicetest.Clock

var (
	wantStatus = servicetest.WantStatus
	reason     = servicetest.Reason
	retryDelay = servicetest.RetryDelay
)
