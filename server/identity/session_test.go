package identity_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"

	identityv1 "github.com/apiplatform/platform/gen/go/identity/v1"
	"github.com/apiplatform/platform/server/platform/storeerr"
	"github.com/apiplatform/platform/server/platform/wire"
)

// A first visit gets a guest account and a working session; only the
// access token authenticates, and only token hashes are stored.
func TestCreateGuest(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testConfig())
	now := e.clock.Now()
	res, err := e.svc.CreateGuest(from("192.0.2.1"), &identityv1.CreateGuestRequest{})
	if err != nil {
		t.Fatal(err)
	}
	u, s := res.GetUser(), res.GetSession()
	if _, err := uuid.Parse(u.GetId()); err != nil || !u.GetGuest() || u.GetUsername() != "" || u.GetRole() != identityv1.Role_ROLE_USER {
		t.Fatalf("guest user = %v", u)
	}
	if !strings.HasPrefix(s.GetAccessToken(), "at_") || !strings.HasPrefix(s.GetRefreshToken(), "rt_") {
		t.Fatalf("tokens %q %q", s.GetAccessToken(), s.GetRefreshToken())
	}
	if got := s.GetAccessTokenExpireTime().AsTime(); !got.Equal(now.Add(time.Hour)) {
		t.Errorf("access expires %v, want %v", got, now.Add(time.Hour))
	}
	if got := s.GetRefreshTokenExpireTime().AsTime(); !got.Equal(now.Add(24 * time.Hour)) {
		t.Errorf("refresh expires %v, want %v", got, now.Add(24*time.Hour))
	}

	p, err := e.svc.Authenticate(context.Background(), s.GetAccessToken())
	if err != nil || p.UserID != u.GetId() || !p.Guest || p.Admin || p.SessionID == "" {
		t.Fatalf("Authenticate(access) = %+v, %v", p, err)
	}
	if _, err := e.svc.Authenticate(context.Background(), s.GetRefreshToken()); !errors.Is(err, storeerr.ErrNotFound) {
		t.Fatalf("Authenticate(refresh token) = %v, want ErrNotFound", err)
	}
	stored, err := e.store.GetUser(context.Background(), u.GetId())
	if err != nil || !stored.Guest || stored.PasswordHash != "" {
		t.Fatalf("stored guest = %+v, %v", stored, err)
	}

	other, err := e.svc.CreateGuest(from("192.0.2.1"), &identityv1.CreateGuestRequest{})
	if err != nil || other.GetUser().GetId() == u.GetId() || other.GetSession().GetAccessToken() == s.GetAccessToken() {
		t.Fatalf("second guest = %v, %v: not a new account", other, err)
	}
}

// An access token stops working at its expiry, whatever the store says.
func TestAccessTokenExpires(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testConfig())
	res, err := e.svc.CreateGuest(from("192.0.2.1"), &identityv1.CreateGuestRequest{})
	if err != nil {
		t.Fatal(err)
	}
	tok := res.GetSession().GetAccessToken()
	e.clock.Add(time.Hour - time.Microsecond)
	if _, err := e.svc.Authenticate(context.Background(), tok); err != nil {
		t.Fatalf("just before expiry: %v", err)
	}
	e.clock.Add(time.Microsecond)
	if _, err := e.svc.Authenticate(context.Background(), tok); !errors.Is(err, storeerr.ErrNotFound) {
		t.Fatalf("at expiry: %v, want ErrNotFound", err)
	}
}

// A refresh token works exactly once: it yields a new pair and retires the
// old session, access token included.
func TestRefreshWorksOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testConfig())
	first, err := e.svc.CreateGuest(from("192.0.2.1"), &identityv1.CreateGuestRequest{})
	if err != nil {
		t.Fatal(err)
	}
	old := first.GetSession()
	e.clock.Add(time.Minute)
	res, err := e.svc.Refresh(context.Background(), &identityv1.RefreshRequest{RefreshToken: old.GetRefreshToken()})
	if err != nil {
		t.Fatal(err)
	}
	next := res.GetSession()
	if res.GetUser().GetId() != first.GetUser().GetId() {
		t.Fatalf("refresh answered user %q, want %q", res.GetUser().GetId(), first.GetUser().GetId())
	}
	if next.GetAccessToken() == old.GetAccessToken() || next.GetRefreshToken() == old.GetRefreshToken() {
		t.Fatal("refresh returned the old tokens")
	}
	if got, want := next.GetAccessTokenExpireTime().AsTime(), e.clock.Now().Add(time.Hour); !got.Equal(want) {
		t.Errorf("new access expires %v, want %v", got, want)
	}
	if _, err := e.svc.Authenticate(context.Background(), old.GetAccessToken()); !errors.Is(err, storeerr.ErrNotFound) {
		t.Errorf("old access token after refresh: %v, want ErrNotFound", err)
	}
	if p, err := e.svc.Authenticate(context.Background(), next.GetAccessToken()); err != nil || p.UserID != first.GetUser().GetId() {
		t.Errorf("new access token: %+v, %v", p, err)
	}

	// A browser's refresh cookie arrives through the edge contract.
	ctx := wire.WithEdge(context.Background(), wire.Edge{RefreshToken: next.GetRefreshToken()})
	third, err := e.svc.Refresh(ctx, &identityv1.RefreshRequest{})
	if err != nil {
		t.Fatalf("refresh from metadata: %v", err)
	}

	// Reusing a spent refresh token is refused, and ends the whole family:
	// whoever holds the newest tokens (a thief or the owner) must log in.
	_, err = e.svc.Refresh(context.Background(), &identityv1.RefreshRequest{RefreshToken: old.GetRefreshToken()})
	wantStatus(t, err, codes.Unauthenticated)
	_, err = e.svc.Refresh(context.Background(), &identityv1.RefreshRequest{RefreshToken: third.GetSession().GetRefreshToken()})
	wantStatus(t, err, codes.Unauthenticated)
	if _, err := e.svc.Authenticate(context.Background(), third.GetSession().GetAccessToken()); !errors.Is(err, storeerr.ErrNotFound) {
		t.Errorf("newest access token after reuse: %v, want ErrNotFound", err)
	}
}

func TestRefreshRefusals(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testConfig())
	res, err := e.svc.CreateGuest(from("192.0.2.1"), &identityv1.CreateGuestRequest{})
	if err != nil {
		t.Fatal(err)
	}
	rt := res.GetSession().GetRefreshToken()

	_, err = e.svc.Refresh(context.Background(), &identityv1.RefreshRequest{})
	wantStatus(t, err, codes.InvalidArgument, "refreshToken")
	_, err = e.svc.Refresh(context.Background(), &identityv1.RefreshRequest{RefreshToken: strings.Repeat("x", 129)})
	wantStatus(t, err, codes.InvalidArgument, "refreshToken")
	_, err = e.svc.Refresh(context.Background(), &identityv1.RefreshRequest{RefreshToken: "rt_unknown"})
	wantStatus(t, err, codes.Unauthenticated)
	_, err = e.svc.Refresh(context.Background(), &identityv1.RefreshRequest{RefreshToken: res.GetSession().GetAccessToken()})
	wantStatus(t, err, codes.Unauthenticated)

	e.clock.Add(24 * time.Hour)
	_, err = e.svc.Refresh(context.Background(), &identityv1.RefreshRequest{RefreshToken: rt})
	wantStatus(t, err, codes.Unauthenticated)
}

// Logout ends that session (both tokens) on the next call, and only that
// session.
func TestLogout(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testConfig())
	ctx := from("192.0.2.1")
	if _, err := e.svc.SignUp(ctx, &identityv1.RegisterRequest{Username: "carol", Password: "carol-password"}); err != nil {
		t.Fatal(err)
	}
	a, err := e.svc.Login(ctx, &identityv1.LoginRequest{Username: "carol", Password: "carol-password"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.svc.Login(ctx, &identityv1.LoginRequest{Username: "carol", Password: "carol-password"})
	if err != nil {
		t.Fatal(err)
	}
	caller := e.as(t, a.GetSession().GetAccessToken())
	if _, err := e.svc.Logout(caller, &identityv1.LogoutRequest{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Authenticate(context.Background(), a.GetSession().GetAccessToken()); !errors.Is(err, storeerr.ErrNotFound) {
		t.Fatalf("access token after logout: %v, want ErrNotFound", err)
	}
	_, err = e.svc.Refresh(context.Background(), &identityv1.RefreshRequest{RefreshToken: a.GetSession().GetRefreshToken()})
	wantStatus(t, err, codes.Unauthenticated)
	if _, err := e.svc.Authenticate(context.Background(), b.GetSession().GetAccessToken()); err != nil {
		t.Fatalf("the other session after logout: %v", err)
	}
	// Logging out twice is not an error: the session is gone either way.
	if _, err := e.svc.Logout(caller, &identityv1.LogoutRequest{}); err != nil {
		t.Fatalf("second logout: %v", err)
	}
	_, err = e.svc.Logout(context.Background(), &identityv1.LogoutRequest{})
	wantStatus(t, err, codes.Unauthenticated)
}
