package storetest

import (
	"bytes"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/apiplatform/platform/server/platform/storeerr"
	"github.com/apiplatform/platform/server/share"
)

// Signed links: create, get, list in pages, revoke (idempotent), the
// revoked set replicas load, and forgetting an owner (rows anonymised and
// revoked, gone from the listing, still in the revoked set).
func testSignedLinks(t *testing.T, st Stores) {
	s := st.Share
	owner, other := uuid.NewString(), uuid.NewString()
	n := now()
	first := share.SignedLink{ID: "sl-first", OwnerID: owner, Hex: "#112233", CreatedAt: n, ExpiresAt: n.Add(time.Hour)}
	must(t, s.CreateSignedLink(ctx, first))
	wantErr(t, s.CreateSignedLink(ctx, first), storeerr.ErrConflict)
	got, err := s.GetSignedLink(ctx, first.ID)
	must(t, err)
	if got != first {
		t.Fatalf("GetSignedLink = %+v, want %+v", got, first)
	}
	_, err = s.GetSignedLink(ctx, "missing")
	wantErr(t, err, storeerr.ErrNotFound)

	want := []string{first.ID}
	for i := range 6 {
		// Two links per timestamp: the id breaks the tie.
		l := share.SignedLink{ID: fmt.Sprintf("sl-list%02d", i), OwnerID: owner, Hex: "#445566", SingleUse: i%2 == 0,
			CreatedAt: n.Add(time.Duration(1+i/2) * time.Second), ExpiresAt: n.Add(time.Hour)}
		must(t, s.CreateSignedLink(ctx, l))
		want = append([]string{l.ID}, want...)
	}
	must(t, s.CreateSignedLink(ctx, share.SignedLink{ID: "sl-other", OwnerID: other, Hex: "#000000", CreatedAt: n, ExpiresAt: n.Add(time.Hour)}))
	var ids []string
	var after *share.Cursor
	for page := 0; ; page++ {
		rows, err := s.ListSignedLinks(ctx, owner, after, 3)
		must(t, err)
		for _, r := range rows {
			ids = append(ids, r.ID)
		}
		if len(rows) < 3 {
			break
		}
		last := rows[len(rows)-1]
		after = &share.Cursor{CreatedAt: last.CreatedAt, Slug: last.ID}
		if page > 5 {
			t.Fatal("pagination does not end")
		}
	}
	if fmt.Sprint(ids) != fmt.Sprint(want) {
		t.Fatalf("pages = %v, want %v", ids, want)
	}
	if rows, _ := s.ListSignedLinks(ctx, uuid.NewString(), nil, 10); len(rows) != 0 {
		t.Fatalf("stranger lists %d links", len(rows))
	}

	must(t, s.RevokeSignedLink(ctx, first.ID, n.Add(time.Minute)))
	must(t, s.RevokeSignedLink(ctx, first.ID, n.Add(2*time.Minute))) // keeps the first time
	got, _ = s.GetSignedLink(ctx, first.ID)
	if !got.RevokedAt.Equal(n.Add(time.Minute)) {
		t.Fatalf("RevokedAt = %v", got.RevokedAt)
	}
	wantErr(t, s.RevokeSignedLink(ctx, "missing", n), storeerr.ErrNotFound)
	revoked, err := s.RevokedSignedLinks(ctx, n)
	must(t, err)
	if len(revoked) != 1 || !revoked[first.ID].Equal(first.ExpiresAt) {
		t.Fatalf("revoked = %v, want only %s until %v", revoked, first.ID, first.ExpiresAt)
	}
	if revoked, _ := s.RevokedSignedLinks(ctx, first.ExpiresAt); len(revoked) != 0 {
		t.Fatalf("expired revocations still listed: %v", revoked)
	}

	forgotten, err := s.ForgetSignedLinks(ctx, owner, n.Add(3*time.Minute))
	must(t, err)
	if len(forgotten) != len(want) {
		t.Fatalf("forgot %d links, want %d", len(forgotten), len(want))
	}
	if rows, _ := s.ListSignedLinks(ctx, owner, nil, 100); len(rows) != 0 {
		t.Fatalf("forgotten owner still lists %d links", len(rows))
	}
	got, err = s.GetSignedLink(ctx, "sl-list00")
	must(t, err)
	if got.OwnerID != "" || got.Hex != "" || !got.RevokedAt.Equal(n.Add(3*time.Minute)) {
		t.Fatalf("forgotten row = %+v, want no owner, no colour, revoked", got)
	}
	if got, _ := s.GetSignedLink(ctx, first.ID); !got.RevokedAt.Equal(n.Add(time.Minute)) {
		t.Fatalf("forgetting moved an earlier revocation: %v", got.RevokedAt)
	}
	if revoked, _ := s.RevokedSignedLinks(ctx, n); len(revoked) != len(want) {
		t.Fatalf("revoked set after forgetting = %d ids, want %d", len(revoked), len(want))
	}
	again, err := s.ForgetSignedLinks(ctx, owner, n.Add(4*time.Minute))
	must(t, err)
	if len(again) != 0 {
		t.Fatalf("second forget revoked %d", len(again))
	}
	if _, err := s.ForgetSignedLinks(ctx, "not-a-uuid", n); err != nil {
		t.Fatal(err)
	}
	if rows, _ := s.ListSignedLinks(ctx, other, nil, 10); len(rows) != 1 {
		t.Fatalf("another owner's links were touched: %v", rows)
	}
}

// UseSignedLink succeeds for exactly one of many concurrent callers, never
// for a multi-use, revoked or expired link.
func testSignedLinkUseOnce(t *testing.T, st Stores) {
	s := st.Share
	n := now()
	once := share.SignedLink{ID: "sl-once", OwnerID: uuid.NewString(), Hex: "#ABCDEF", SingleUse: true, CreatedAt: n, ExpiresAt: n.Add(time.Hour)}
	must(t, s.CreateSignedLink(ctx, once))
	var wins atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := s.UseSignedLink(ctx, once.ID, n.Add(time.Second))
			if err != nil {
				t.Errorf("UseSignedLink: %v", err)
			}
			if ok {
				wins.Add(1)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d callers used a single-use link", wins.Load())
	}
	if got, _ := s.GetSignedLink(ctx, once.ID); !got.UsedAt.Equal(n.Add(time.Second)) {
		t.Fatalf("UsedAt = %v", got.UsedAt)
	}

	for _, l := range []share.SignedLink{
		{ID: "sl-multi", Hex: "#000001"},
		{ID: "sl-revoked", Hex: "#000002", SingleUse: true, RevokedAt: n},
		{ID: "sl-expired", Hex: "#000003", SingleUse: true, ExpiresAt: n.Add(time.Second)},
	} {
		l.OwnerID, l.CreatedAt = uuid.NewString(), n
		if l.ExpiresAt.IsZero() {
			l.ExpiresAt = n.Add(time.Hour)
		}
		must(t, s.CreateSignedLink(ctx, l))
		if ok, err := s.UseSignedLink(ctx, l.ID, n.Add(time.Second)); ok || err != nil {
			t.Fatalf("UseSignedLink(%s) = %v, %v", l.ID, ok, err)
		}
	}
	if ok, err := s.UseSignedLink(ctx, "missing", n); ok || err != nil {
		t.Fatalf("UseSignedLink(missing) = %v, %v", ok, err)
	}
}

// Replicas starting together each propose a key; all get the same ring.
func testLinkKeysOnce(t *testing.T, st Stores) {
	s := st.Share
	rings := make([][][]byte, 6)
	var wg sync.WaitGroup
	for i := range rings {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if rings[i], err = s.LinkKeys(ctx, []byte(fmt.Sprintf("candidate-key-%d-of-32-bytes....", i))); err != nil {
				t.Errorf("LinkKeys: %v", err)
			}
		}()
	}
	wg.Wait()
	for _, r := range rings {
		if len(r) != 1 || !bytes.Equal(r[0], rings[0][0]) {
			t.Fatalf("rings differ: %q", rings)
		}
	}
	again, err := s.LinkKeys(ctx, []byte("a later candidate"))
	must(t, err)
	if len(again) != 1 || !bytes.Equal(again[0], rings[0][0]) {
		t.Fatalf("a later start changed the ring: %q", again)
	}
}
