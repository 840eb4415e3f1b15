package favorite_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	favoritev1 "github.com/apiplatform/platform/gen/go/favorite/v1"
	"github.com/apiplatform/platform/server/favorite"
	"github.com/apiplatform/platform/server/favorite/color"
	"github.com/apiplatform/platform/server/platform/auth"
	"github.com/apiplatform/platform/server/platform/cache"
	"github.com/apiplatform/platform/server/platform/servicetest"
	"github.com/apiplatform/platform/server/platform/storeerr"
	"github.com/apiplatform/platform/server/platform/wire"
	"github.com/apiplatform/platform/server/share"
	"github.com/apiplatform/platform/server/storage/embedded"
)

type env struct {
	store *embedded.Store
	svc   *favorite.Service
}

// newEnv builds the service over a fresh embedded store, which also
// answers whether a user has shared (as it does in the server).
func newEnv(t *testing.T) *env {
	t.Helper()
	st, err := embedded.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	svc, err := favorite.New(context.Background(), favorite.Deps{Store: st, Shares: st, Cache: cache.NewMemory(100)}, favorite.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return &env{store: st, svc: svc}
}

// as is a call by user (with the given Idempotency-Key values, if any).
func as(user string, keys ...string) context.Context {
	ctx := auth.WithPrincipal(context.Background(), auth.Principal{UserID: user, SessionID: "s-" + user})
	return wire.WithEdge(ctx, wire.Edge{IdempotencyKeys: keys})
}

func (e *env) stored(t *testing.T, user string) favorite.Favorite {
	t.Helper()
	f, err := e.store.GetFavorite(context.Background(), user)
	if err != nil {
		t.Fatalf("stored favorite of %s: %v", user, err)
	}
	return f
}

// Every notation is stored as #RRGGBB together with the notation it was
// given in and its canonical form there.
func TestSetFavoriteNormalises(t *testing.T) {
	e := newEnv(t)
	user := uuid.NewString()
	for _, c := range []struct {
		in, hex string
		space   favoritev1.ColorSpace
		stored  color.Space
		value   string
	}{
		{"#f00", "#FF0000", favoritev1.ColorSpace_COLOR_SPACE_HEX, color.SpaceHex, "#FF0000"},
		{"#aBcDeF", "#ABCDEF", favoritev1.ColorSpace_COLOR_SPACE_HEX, color.SpaceHex, "#ABCDEF"},
		{"rgb(0 128 255)", "#0080FF", favoritev1.ColorSpace_COLOR_SPACE_RGB, color.SpaceRGB, "rgb(0, 128, 255)"},
		{"rgb(50% 25% 10%)", "#80401A", favoritev1.ColorSpace_COLOR_SPACE_RGB, color.SpaceRGB, "rgb(50%, 25%, 10%)"},
		{"hsl(120deg 100% 25%)", "#008000", favoritev1.ColorSpace_COLOR_SPACE_HSL, color.SpaceHSL, "hsl(120, 100%, 25%)"},
		{"RebeccaPurple", "#663399", favoritev1.ColorSpace_COLOR_SPACE_NAME, color.SpaceName, "rebeccapurple"},
	} {
		res, err := e.svc.SetFavorite(as(user), &favoritev1.SetFavoriteRequest{Color: c.in})
		if err != nil {
			t.Fatalf("%q: %v", c.in, err)
		}
		if f := res.GetFavorite(); f.GetUserId() != user || f.GetHex() != c.hex || f.GetSpace() != c.space || f.GetValue() != c.value {
			t.Errorf("%q answered %v, want %s %v %q", c.in, f, c.hex, c.space, c.value)
		}
		if f := e.stored(t, user); f.Hex != c.hex || f.Space != c.stored || f.Value != c.value {
			t.Errorf("%q stored %+v, want %s %s %q", c.in, f, c.hex, c.stored, c.value)
		}
		// Reads follow the latest save (the cached copy is dropped on write).
		got, err := e.svc.GetFavorite(as(user), &favoritev1.GetFavoriteRequest{})
		if err != nil || got.GetFavorite().GetHex() != c.hex || got.GetFavorite().GetValue() != c.value {
			t.Errorf("%q then GetFavorite = %v, %v", c.in, got, err)
		}
	}
}

// A colour that does not parse is refused naming the field, and what was
// saved before stays.
func TestSetFavoriteRefusesBadColour(t *testing.T) {
	e := newEnv(t)
	user := uuid.NewString()
	if _, err := e.svc.SetFavorite(as(user), &favoritev1.SetFavoriteRequest{Color: "navy"}); err != nil {
		t.Fatal(err)
	}
	for _, in := range []string{"", "#12", "#GGGGGG", "rgb(300, 0, 0)", "hsl(0, 120%, 50%)", "rgba(0,0,0,0.5)", "transparent", "notacolour", strings.Repeat("a", 65)} {
		_, err := e.svc.SetFavorite(as(user), &favoritev1.SetFavoriteRequest{Color: in})
		servicetest.WantStatus(t, err, codes.InvalidArgument, "color")
		if f := e.stored(t, user); f.Hex != "#000080" || f.Value != "navy" {
			t.Fatalf("after refused %q the stored favorite is %+v", in, f)
		}
	}
	_, err := e.svc.SetFavorite(context.Background(), &favoritev1.SetFavoriteRequest{Color: "red"})
	servicetest.WantStatus(t, err, codes.Unauthenticated)
	_, err = e.svc.GetFavorite(as(uuid.NewString()), &favoritev1.GetFavoriteRequest{})
	servicetest.WantStatus(t, err, codes.NotFound)
}

// A retry under the same Idempotency-Key gets the first answer and writes
// nothing; the same key with another body is refused and writes nothing.
func TestIdempotencyKey(t *testing.T) {
	e := newEnv(t)
	user := uuid.NewString()
	first, err := e.svc.SetFavorite(as(user, "k1"), &favoritev1.SetFavoriteRequest{Color: "red"})
	if err != nil {
		t.Fatal(err)
	}
	// A later save without the key moves the favorite on.
	if _, err := e.svc.SetFavorite(as(user), &favoritev1.SetFavoriteRequest{Color: "blue"}); err != nil {
		t.Fatal(err)
	}
	replay, err := e.svc.SetFavorite(as(user, "k1"), &favoritev1.SetFavoriteRequest{Color: "red"})
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(replay, first) {
		t.Fatalf("replay answered %v, want the first answer %v", replay, first)
	}
	if f := e.stored(t, user); f.Hex != "#0000FF" {
		t.Fatalf("a replay wrote: stored %+v, want blue kept", f)
	}

	// Another body under the key, even the same colour written differently.
	for _, body := range []string{"green", "#FF0000"} {
		_, err = e.svc.SetFavorite(as(user, "k1"), &favoritev1.SetFavoriteRequest{Color: body})
		servicetest.WantStatus(t, err, codes.InvalidArgument, "Idempotency-Key")
		if f := e.stored(t, user); f.Hex != "#0000FF" {
			t.Fatalf("a refused reuse wrote: stored %+v", f)
		}
	}

	// Keys belong to their user: another user's k1 is a new request.
	other := uuid.NewString()
	res, err := e.svc.SetFavorite(as(other, "k1"), &favoritev1.SetFavoriteRequest{Color: "green"})
	if err != nil || res.GetFavorite().GetHex() != "#008000" || e.stored(t, other).Hex != "#008000" {
		t.Fatalf("other user's k1: %v, %v", res, err)
	}
}

func TestIdempotencyKeyFormat(t *testing.T) {
	e := newEnv(t)
	user := uuid.NewString()
	for _, c := range []struct {
		name string
		keys []string
	}{
		{"empty", []string{""}},
		{"too long", []string{strings.Repeat("k", 129)}},
		{"space", []string{"two words"}},
		{"control", []string{"key\x01"}},
		{"non-ASCII", []string{"clé"}},
		{"two values", []string{"a", "b"}},
	} {
		_, err := e.svc.SetFavorite(as(user, c.keys...), &favoritev1.SetFavoriteRequest{Color: "red"})
		servicetest.WantStatus(t, err, codes.InvalidArgument, "Idempotency-Key")
		if _, err := e.store.GetFavorite(context.Background(), user); !errors.Is(err, storeerr.ErrNotFound) {
			t.Fatalf("%s: a refused key stored a favorite (%v)", c.name, err)
		}
	}
	if _, err := e.svc.SetFavorite(as(user, strings.Repeat("k", 128)), &favoritev1.SetFavoriteRequest{Color: "red"}); err != nil {
		t.Fatalf("128-character key: %v", err)
	}
}

// Another user's favorite is readable by its owner and admins, and by
// anyone else only while the owner has a live share.
func TestPrivateUntilShared(t *testing.T) {
	e := newEnv(t)
	owner, stranger := uuid.NewString(), uuid.NewString()
	if _, err := e.svc.SetFavorite(as(owner), &favoritev1.SetFavoriteRequest{Color: "teal"}); err != nil {
		t.Fatal(err)
	}
	read := func(ctx context.Context) error {
		res, err := e.svc.GetUserFavorite(ctx, &favoritev1.GetUserFavoriteRequest{UserId: owner})
		if err == nil && res.GetFavorite().GetHex() != "#008080" {
			t.Fatalf("GetUserFavorite = %v", res)
		}
		return err
	}
	adminCtx := auth.WithPrincipal(context.Background(), auth.Principal{UserID: uuid.NewString(), Admin: true})
	anonymous := context.Background()

	if err := read(as(owner)); err != nil {
		t.Fatalf("owner: %v", err)
	}
	if err := read(adminCtx); err != nil {
		t.Fatalf("admin: %v", err)
	}
	servicetest.WantStatus(t, read(as(stranger)), codes.PermissionDenied)
	servicetest.WantStatus(t, read(anonymous), codes.PermissionDenied)

	// An expired share does not open it.
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)
	if err := e.store.CreateShare(ctx, share.Share{Slug: "expired1", OwnerID: owner, CreatedAt: now.Add(-2 * time.Hour), ExpiresAt: now.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	servicetest.WantStatus(t, read(as(stranger)), codes.PermissionDenied)

	if err := e.store.CreateShare(ctx, share.Share{Slug: "live1", OwnerID: owner, CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := read(as(stranger)); err != nil {
		t.Fatalf("stranger once shared: %v", err)
	}
	if err := read(anonymous); err != nil {
		t.Fatalf("anonymous once shared: %v", err)
	}

	if err := e.store.RevokeShare(ctx, "live1", now); err != nil {
		t.Fatal(err)
	}
	servicetest.WantStatus(t, read(as(stranger)), codes.PermissionDenied)

	// Ids are checked before anything is looked up.
	_, err := e.svc.GetUserFavorite(as(owner), &favoritev1.GetUserFavoriteRequest{UserId: strings.ToUpper(owner)})
	servicetest.WantStatus(t, err, codes.InvalidArgument, "userId")
	_, err = e.svc.GetUserFavorite(as(owner), &favoritev1.GetUserFavoriteRequest{UserId: "../etc"})
	servicetest.WantStatus(t, err, codes.InvalidArgument, "userId")
	// Someone shared with no colour saved: not found, not private.
	empty := uuid.NewString()
	if err := e.store.CreateShare(ctx, share.Share{Slug: "empty1", OwnerID: empty, CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.GetUserFavorite(as(stranger), &favoritev1.GetUserFavoriteRequest{UserId: empty})
	servicetest.WantStatus(t, err, codes.NotFound)
}
