package share_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"

	sharev1 "github.com/apiplatform/platform/gen/go/share/v1"
	"github.com/apiplatform/platform/server/platform/auth"
	"github.com/apiplatform/platform/server/platform/wire"
)

func (e *env) create(t *testing.T, owner context.Context, req *sharev1.CreateShareRequest) string {
	t.Helper()
	res, err := e.svc.CreateShare(owner, req)
	if err != nil {
		t.Fatal(err)
	}
	return res.GetShare().GetSlug()
}

func (e *env) get(ctx context.Context, slug string) (*sharev1.Share, error) {
	res, err := e.svc.GetShare(ctx, &sharev1.GetShareRequest{Slug: slug})
	return res.GetShare(), err
}

// A snapshot keeps the colour it was made with; a live share follows the
// owner's colour, on the JSON API and on the page.
func TestSnapshotAndLive(t *testing.T) {
	e := newEnv(t, testConfig())
	owner := e.user(t, "red")
	snap := e.create(t, owner, &sharev1.CreateShareRequest{Snapshot: true})
	live := e.create(t, owner, &sharev1.CreateShareRequest{})
	// Read both once so any cached copy exists before the change.
	for _, s := range []string{snap, live} {
		if sh, err := e.get(anonymous(), s); err != nil || sh.GetHex() != "#FF0000" {
			t.Fatalf("%s before the change: %v, %v", s, sh, err)
		}
	}
	e.setColour(t, owner, "blue")
	for _, c := range []struct{ slug, hex string }{{snap, "#FF0000"}, {live, "#0000FF"}} {
		sh, err := e.get(anonymous(), c.slug)
		if err != nil || sh.GetHex() != c.hex {
			t.Errorf("GetShare(%s) = %v, %v; want %s", c.slug, sh, err, c.hex)
		}
		body, err := e.svc.GetSharePage(anonymous(), &sharev1.GetSharePageRequest{Slug: c.slug})
		if err != nil || !bytes.Contains(body.GetData(), []byte("background: "+c.hex)) {
			t.Errorf("page of %s does not show %s (%v)", c.slug, c.hex, err)
		}
	}
}

// Strangers see the colour, not who shared it or how often it was seen.
func TestGetShareHidesOwnerDetails(t *testing.T) {
	e := newEnv(t, testConfig())
	owner := e.user(t, "red")
	slug := e.create(t, owner, &sharev1.CreateShareRequest{Snapshot: true})
	sh, err := e.get(as(uuid.NewString(), "192.0.2.2"), slug)
	if err != nil {
		t.Fatal(err)
	}
	if sh.GetOwnerUserId() != "" || sh.GetHits() != 0 || sh.GetHex() != "#FF0000" || sh.GetUrl() != "https://colors.example/s/"+slug {
		t.Fatalf("stranger sees %v", sh)
	}
	mine, err := e.get(owner, slug)
	if err != nil || mine.GetOwnerUserId() != userID(owner) || mine.GetHits() != 2 {
		t.Fatalf("owner sees %v, %v; want owner id and 2 hits", mine, err)
	}
	_, err = e.get(anonymous(), "not-a-slug!")
	wantStatus(t, err, codes.InvalidArgument, "slug")
	_, err = e.get(anonymous(), "Zz0Zz0Zz0Zz")
	wantStatus(t, err, codes.NotFound)
}

// A share stops answering at its expiry (and stops counting as shared).
func TestExpiry(t *testing.T) {
	e := newEnv(t, testConfig())
	owner := e.user(t, "red")
	slug := e.create(t, owner, &sharev1.CreateShareRequest{Snapshot: true, ExpiresInSec: 60})
	e.clock.Add(59 * time.Second)
	if _, err := e.get(anonymous(), slug); err != nil {
		t.Fatalf("before expiry: %v", err)
	}
	e.clock.Add(time.Second)
	_, err := e.get(anonymous(), slug)
	wantStatus(t, err, codes.NotFound)
	_, err = e.svc.GetSharePage(anonymous(), &sharev1.GetSharePageRequest{Slug: slug})
	wantStatus(t, err, codes.NotFound)
	if ok, err := e.store.HasActiveShare(context.Background(), userID(owner), e.clock.Now()); err != nil || ok {
		t.Fatalf("HasActiveShare after expiry = %v, %v", ok, err)
	}
}

// Only the owner (or an admin) revokes, and a revoked share stops
// answering at once, even where it was cached.
func TestRevoke(t *testing.T) {
	e := newEnv(t, testConfig())
	owner := e.user(t, "red")
	slug := e.create(t, owner, &sharev1.CreateShareRequest{Snapshot: true})
	if _, err := e.get(anonymous(), slug); err != nil { // fills the cache
		t.Fatal(err)
	}

	_, err := e.svc.RevokeShare(e.user(t, "blue"), &sharev1.RevokeShareRequest{Slug: slug})
	wantStatus(t, err, codes.PermissionDenied)
	if _, err := e.get(anonymous(), slug); err != nil {
		t.Fatalf("after a refused revoke: %v", err)
	}
	_, err = e.svc.RevokeShare(owner, &sharev1.RevokeShareRequest{Slug: "bad slug"})
	wantStatus(t, err, codes.InvalidArgument, "slug")
	_, err = e.svc.RevokeShare(owner, &sharev1.RevokeShareRequest{Slug: "Zz0Zz0Zz0Zz"})
	wantStatus(t, err, codes.NotFound)

	if _, err := e.svc.RevokeShare(owner, &sharev1.RevokeShareRequest{Slug: slug}); err != nil {
		t.Fatal(err)
	}
	_, err = e.get(anonymous(), slug)
	wantStatus(t, err, codes.NotFound)
	_, err = e.svc.GetSharePage(anonymous(), &sharev1.GetSharePageRequest{Slug: slug})
	wantStatus(t, err, codes.NotFound)
	stored, err := e.store.GetShare(context.Background(), slug)
	if err != nil || !stored.RevokedAt.Equal(e.clock.Now()) {
		t.Fatalf("stored %+v, %v; want revoked at %v", stored, err, e.clock.Now())
	}
	list, err := e.svc.ListShares(owner, &sharev1.ListSharesRequest{})
	if err != nil || len(list.GetShares()) != 1 || !list.GetShares()[0].GetRevoked() {
		t.Fatalf("owner's list = %v, %v; want the share marked revoked", list, err)
	}
	// Revoking again is harmless.
	if _, err := e.svc.RevokeShare(owner, &sharev1.RevokeShareRequest{Slug: slug}); err != nil {
		t.Fatalf("second revoke: %v", err)
	}

	other := e.create(t, owner, &sharev1.CreateShareRequest{})
	admin := auth.WithPrincipal(context.Background(), auth.Principal{UserID: uuid.NewString(), Admin: true})
	if _, err := e.svc.RevokeShare(admin, &sharev1.RevokeShareRequest{Slug: other}); err != nil {
		t.Fatalf("admin revoke: %v", err)
	}
	_, err = e.get(anonymous(), other)
	wantStatus(t, err, codes.NotFound)
}

// Every answered view counts one hit. Hits are batched in memory (the
// owner sees them at once) and stored on flush; refused views count none.
func TestHitCounting(t *testing.T) {
	e := newEnv(t, testConfig())
	owner := e.user(t, "red")
	slug := e.create(t, owner, &sharev1.CreateShareRequest{Snapshot: true})
	gone := e.create(t, owner, &sharev1.CreateShareRequest{Snapshot: true})
	if _, err := e.svc.RevokeShare(owner, &sharev1.RevokeShareRequest{Slug: gone}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := e.get(anonymous(), slug); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.svc.GetSharePage(anonymous(), &sharev1.GetSharePageRequest{Slug: slug}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.get(anonymous(), gone); err == nil {
		t.Fatal("revoked share answered")
	}

	// The owner's own look is the fifth.
	mine, err := e.get(owner, slug)
	if err != nil || mine.GetHits() != 5 {
		t.Fatalf("owner sees %v hits (%v), want 5", mine.GetHits(), err)
	}
	if stored, _ := e.store.GetShare(context.Background(), slug); stored.Hits != 0 {
		t.Fatalf("stored hits %d before a flush: the view path wrote to the store", stored.Hits)
	}
	e.close()
	for _, c := range []struct {
		slug string
		hits int64
	}{{slug, 5}, {gone, 0}} {
		if stored, err := e.store.GetShare(context.Background(), c.slug); err != nil || stored.Hits != c.hits {
			t.Errorf("stored hits of %s after close = %d (%v), want %d", c.slug, stored.Hits, err, c.hits)
		}
	}
}

// The page carries a content ETag and a public max-age; a matching
// If-None-Match (weak, listed or *) is a 304 with no body, and a changed
// live colour changes the ETag.
func TestSharePageETag(t *testing.T) {
	e := newEnv(t, testConfig())
	owner := e.user(t, "red")
	slug := e.create(t, owner, &sharev1.CreateShareRequest{})
	page := func(ifNoneMatch string) ([]byte, *headers) {
		t.Helper()
		ctx, h := recording(anonymous(ifNoneMatch))
		body, err := e.svc.GetSharePage(ctx, &sharev1.GetSharePageRequest{Slug: slug})
		if err != nil {
			t.Fatal(err)
		}
		if body.GetContentType() != "text/html; charset=utf-8" {
			t.Fatalf("content type %q", body.GetContentType())
		}
		return body.GetData(), h
	}
	body, h := page("")
	etag := h.get("etag")
	if len(etag) < 3 || etag[0] != '"' || etag[len(etag)-1] != '"' || len(body) == 0 || h.get(wire.StatusKey) != "" {
		t.Fatalf("first answer: etag %q, %d bytes, headers %v", etag, len(body), h.md)
	}
	if cc := h.get("cache-control"); cc != "public, max-age=60" {
		t.Fatalf("cache-control %q", cc)
	}
	for _, inm := range []string{etag, "W/" + etag, `"other", ` + etag, "*"} {
		body, h := page(inm)
		if h.get(wire.StatusKey) != "304" || len(body) != 0 || h.get("etag") != etag {
			t.Errorf("If-None-Match %s: status %q, %d bytes, etag %q; want 304, empty, %s", inm, h.get(wire.StatusKey), len(body), h.get("etag"), etag)
		}
	}
	if body, h := page(`"stale"`); h.get(wire.StatusKey) != "" || len(body) == 0 {
		t.Errorf("non-matching If-None-Match: status %q, %d bytes", h.get(wire.StatusKey), len(body))
	}

	e.setColour(t, owner, "blue")
	body, h = page(etag)
	if h.get(wire.StatusKey) == "304" || h.get("etag") == etag || !bytes.Contains(body, []byte("#0000FF")) {
		t.Fatalf("after the colour changed: status %q etag %q (old %q)", h.get(wire.StatusKey), h.get("etag"), etag)
	}
}
