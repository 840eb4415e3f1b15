package identity_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	favoritev1 "github.com/apiplatform/platform/gen/go/favorite/v1"
	identityv1 "github.com/apiplatform/platform/gen/go/identity/v1"
	"github.com/apiplatform/platform/server/identity"
	"github.com/apiplatform/platform/server/platform/ratelimit"
	"github.com/apiplatform/platform/server/platform/storeerr"
	"github.com/apiplatform/platform/server/storage/embedded"
)

// Signing up as a guest upgrades that account in place: same id, same
// saved colour, and the guest's tokens stop working.
func TestRegisterKeepsGuestID(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testConfig())
	g, err := e.svc.CreateGuest(from("192.0.2.1"), &identityv1.CreateGuestRequest{})
	if err != nil {
		t.Fatal(err)
	}
	guestTok := g.GetSession().GetAccessToken()
	if _, err := e.favs.SetFavorite(e.as(t, guestTok), &favoritev1.SetFavoriteRequest{Color: "teal"}); err != nil {
		t.Fatal(err)
	}

	res, err := e.svc.SignUp(e.as(t, guestTok), &identityv1.RegisterRequest{Username: "Alice", Password: "correct horse"})
	if err != nil {
		t.Fatal(err)
	}
	if u := res.GetUser(); u.GetId() != g.GetUser().GetId() || u.GetGuest() || u.GetUsername() != "alice" {
		t.Fatalf("registered user = %v, want id %s, not guest, username alice", u, g.GetUser().GetId())
	}
	if _, err := e.svc.Authenticate(context.Background(), guestTok); !errors.Is(err, storeerr.ErrNotFound) {
		t.Fatalf("guest token after upgrade: %v, want ErrNotFound", err)
	}
	_, err = e.svc.Refresh(context.Background(), &identityv1.RefreshRequest{RefreshToken: g.GetSession().GetRefreshToken()})
	wantStatus(t, err, codes.Unauthenticated)

	caller := e.as(t, res.GetSession().GetAccessToken())
	me, err := e.svc.GetMe(caller, &identityv1.GetMeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if me.GetUser().GetId() != g.GetUser().GetId() || me.GetFavorite().GetHex() != "#008080" {
		t.Fatalf("GetMe after upgrade = %v", me)
	}
	stored, err := e.store.GetUser(context.Background(), g.GetUser().GetId())
	if err != nil || stored.Guest || stored.Username != "alice" || !stored.CreatedAt.Equal(g.GetUser().GetCreateTime().AsTime()) {
		t.Fatalf("stored = %+v, %v", stored, err)
	}
	// And the account logs in by name, whatever its case.
	if _, err := e.svc.Login(from("192.0.2.1"), &identityv1.LoginRequest{Username: "ALICE", Password: "correct horse"}); err != nil {
		t.Fatalf("login after upgrade: %v", err)
	}
}

// Bad sign-ups say which field is wrong and why, and store nothing; a taken
// name (in any case) is ALREADY_EXISTS and leaves a would-be upgrader a
// working guest.
func TestRegisterRefusals(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testConfig())
	ctx := from("192.0.2.1")
	if _, err := e.svc.SignUp(ctx, &identityv1.RegisterRequest{Username: "bob", Password: "bob-password"}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, username, password string
		fields                   []string
	}{
		{"short name", "ab", "long-enough", []string{"username"}},
		{"long name", strings.Repeat("a", 33), "long-enough", []string{"username"}},
		{"bad characters", "al ice", "long-enough", []string{"username"}},
		{"short password", "alice", "1234567", []string{"password"}},
		{"long password", "alice", strings.Repeat("p", 129), []string{"password"}},
		{"both", "a!", "", []string{"username", "password"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := e.svc.SignUp(ctx, &identityv1.RegisterRequest{Username: c.username, Password: c.password})
			wantStatus(t, err, codes.InvalidArgument, c.fields...)
		})
	}
	if _, err := e.store.GetUserByUsername(context.Background(), "alice"); !errors.Is(err, storeerr.ErrNotFound) {
		t.Fatalf("a refused sign-up stored a user: %v", err)
	}

	_, err := e.svc.SignUp(ctx, &identityv1.RegisterRequest{Username: "BOB", Password: "another-password"})
	if st := wantStatus(t, err, codes.AlreadyExists); reason(st) != "USERNAME_TAKEN" {
		t.Fatalf("reason %q", reason(st))
	}

	g, err := e.svc.CreateGuest(ctx, &identityv1.CreateGuestRequest{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.SignUp(e.as(t, g.GetSession().GetAccessToken()), &identityv1.RegisterRequest{Username: "bob", Password: "another-password"})
	wantStatus(t, err, codes.AlreadyExists)
	p, err := e.svc.Authenticate(context.Background(), g.GetSession().GetAccessToken())
	if err != nil || !p.Guest {
		t.Fatalf("guest after a refused upgrade: %+v, %v; want still a guest", p, err)
	}
}

// Login answers the same for a wrong password and an unknown user, so it
// does not tell which accounts exist.
func TestLogin(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testConfig())
	ctx := from("192.0.2.1")
	reg, err := e.svc.SignUp(ctx, &identityv1.RegisterRequest{Username: "dave", Password: "dave-password"})
	if err != nil {
		t.Fatal(err)
	}
	g, err := e.svc.CreateGuest(ctx, &identityv1.CreateGuestRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, username, password string
		code                     codes.Code
		fields                   []string
	}{
		{"right", "dave", "dave-password", codes.OK, nil},
		{"right, other case", "DaVe", "dave-password", codes.OK, nil},
		{"wrong password", "dave", "dave-passwort", codes.Unauthenticated, nil},
		{"unknown user", "erin", "dave-password", codes.Unauthenticated, nil},
		{"guest id is no username", g.GetUser().GetId()[:32], "dave-password", codes.Unauthenticated, nil},
		{"missing", "", "", codes.InvalidArgument, []string{"username", "password"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			res, err := e.svc.Login(ctx, &identityv1.LoginRequest{Username: c.username, Password: c.password})
			if c.code != codes.OK {
				st := wantStatus(t, err, c.code, c.fields...)
				if c.code == codes.Unauthenticated && st.Message() != "invalid username or password" {
					t.Fatalf("message %q tells more than it should", st.Message())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			p, err := e.svc.Authenticate(context.Background(), res.GetSession().GetAccessToken())
			if err != nil || p.UserID != reg.GetUser().GetId() || p.Guest {
				t.Fatalf("session of login = %+v, %v", p, err)
			}
		})
	}
}

// EnsureAdmin makes (or promotes) the admin account; the role shows in the
// principal every call gets and in GetMe.
func TestRoles(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testConfig())
	ctx := from("192.0.2.1")
	if err := e.svc.EnsureAdmin(ctx, "root", "root-password-1"); err != nil {
		t.Fatal(err)
	}
	admin, err := e.svc.Login(ctx, &identityv1.LoginRequest{Username: "root", Password: "root-password-1"})
	if err != nil {
		t.Fatal(err)
	}
	if p, err := e.svc.Authenticate(context.Background(), admin.GetSession().GetAccessToken()); err != nil || !p.Admin || p.Guest {
		t.Fatalf("admin principal = %+v, %v", p, err)
	}
	if admin.GetUser().GetRole() != identityv1.Role_ROLE_ADMIN {
		t.Fatalf("admin role = %v", admin.GetUser().GetRole())
	}

	user, err := e.svc.SignUp(ctx, &identityv1.RegisterRequest{Username: "frank", Password: "frank-password"})
	if err != nil {
		t.Fatal(err)
	}
	if p, err := e.svc.Authenticate(context.Background(), user.GetSession().GetAccessToken()); err != nil || p.Admin {
		t.Fatalf("user principal = %+v, %v", p, err)
	}
	// Promoting an existing account keeps its id and replaces its password.
	if err := e.svc.EnsureAdmin(ctx, "Frank", "new-admin-password"); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.Login(ctx, &identityv1.LoginRequest{Username: "frank", Password: "frank-password"})
	wantStatus(t, err, codes.Unauthenticated)
	promoted, err := e.svc.Login(ctx, &identityv1.LoginRequest{Username: "frank", Password: "new-admin-password"})
	if err != nil {
		t.Fatal(err)
	}
	me, err := e.svc.GetMe(e.as(t, promoted.GetSession().GetAccessToken()), &identityv1.GetMeRequest{})
	if err != nil || me.GetUser().GetId() != user.GetUser().GetId() || me.GetUser().GetRole() != identityv1.Role_ROLE_ADMIN || me.GetFavorite() != nil {
		t.Fatalf("GetMe of promoted user = %v, %v", me, err)
	}

	if err := e.svc.EnsureAdmin(ctx, "x", "short"); err == nil {
		t.Fatal("EnsureAdmin accepted invalid credentials")
	}
}

// An admin account named in the config exists once the service is built.
func TestConfiguredAdmin(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.AdminUser, cfg.AdminPassword = "Boot", "boot-password-1"
	e := newEnv(t, cfg)
	res, err := e.svc.Login(from("192.0.2.1"), &identityv1.LoginRequest{Username: "boot", Password: "boot-password-1"})
	if err != nil {
		t.Fatal(err)
	}
	if p, err := e.svc.Authenticate(context.Background(), res.GetSession().GetAccessToken()); err != nil || !p.Admin {
		t.Fatalf("configured admin's principal = %+v, %v", p, err)
	}

	cfg.AdminPassword = "short"
	st, err := embedded.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := identity.New(context.Background(), identity.Deps{Store: st, Limiter: ratelimit.NewMemory(10)}, cfg); err == nil {
		t.Fatal("New accepted an invalid admin password")
	}
}

// Guest creation is limited per client address; the refusal says when to
// retry, and other addresses are unaffected.
func TestGuestLimit(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.GuestLimit = ratelimit.Limit{Rate: 1, Period: time.Hour, Burst: 2}
	e := newEnv(t, cfg)
	for range 2 {
		if _, err := e.svc.CreateGuest(from("198.51.100.7"), &identityv1.CreateGuestRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	_, err := e.svc.CreateGuest(from("198.51.100.7"), &identityv1.CreateGuestRequest{})
	st := wantStatus(t, err, codes.ResourceExhausted)
	if reason(st) != "RATE_LIMITED" || retryDelay(st) <= 0 || retryDelay(st) > time.Hour {
		t.Fatalf("refusal reason %q retry %v", reason(st), retryDelay(st))
	}
	if _, err := e.svc.CreateGuest(from("198.51.100.8"), &identityv1.CreateGuestRequest{}); err != nil {
		t.Fatalf("another address: %v", err)
	}
}

// Login attempts are limited per account and address, before the
// password is checked: guesses from one address exhaust that address's
// budget for the account, never the owner's from another address.
func TestLoginLimitPerAccountAndAddress(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.LoginLimit = ratelimit.Limit{Rate: 1, Period: time.Hour, Burst: 2}
	e := newEnv(t, cfg)
	if _, err := e.svc.SignUp(from("192.0.2.1"), &identityv1.RegisterRequest{Username: "gina", Password: "gina-password"}); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		_, err := e.svc.Login(from("203.0.113.1"), &identityv1.LoginRequest{Username: "gina", Password: "guess-" + string(rune('a'+i))})
		wantStatus(t, err, codes.Unauthenticated)
	}
	_, err := e.svc.Login(from("203.0.113.1"), &identityv1.LoginRequest{Username: "GINA", Password: "gina-password"})
	if st := wantStatus(t, err, codes.ResourceExhausted); reason(st) != "RATE_LIMITED" {
		t.Fatalf("reason %q", reason(st))
	}
	if _, err := e.svc.Login(from("203.0.113.2"), &identityv1.LoginRequest{Username: "gina", Password: "gina-password"}); err != nil {
		t.Fatalf("the owner from another address: %v", err)
	}
}

// Password lengths count characters, as the sign-up form says: six letters
// written in eight bytes are too short, eight in ten bytes are enough.
func TestPasswordLengthInCharacters(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testConfig())
	_, err := e.svc.SignUp(from("192.0.2.1"), &identityv1.RegisterRequest{Username: "short", Password: "pässwö"})
	st := wantStatus(t, err, codes.InvalidArgument, "password")
	if !strings.Contains(st.Message()+st.String(), "characters") {
		t.Fatalf("the refusal does not speak of characters: %v", st)
	}
	if _, err := e.svc.SignUp(from("192.0.2.1"), &identityv1.RegisterRequest{Username: "umlauts", Password: "pässwörd"}); err != nil {
		t.Fatalf("eight characters in ten bytes: %v", err)
	}
}
