package storetest

import (
	"slices"
	"testing"

	"github.com/apiplatform/platform/server/platform/storeerr"
)

// A used refresh token names its family: RevokeFamily then revokes every
// live session refreshed from the same login, and nothing else. A live
// token (never used) revokes nothing.
func testRefreshFamily(t *testing.T, st Stores) {
	s := st.Identity
	u := newUser(t, s, "grace")
	login := newSession(u.ID)
	must(t, s.CreateSession(ctx, login))
	second := newSession(u.ID)
	second.FamilyID = login.ID
	must(t, s.RotateSession(ctx, login.ID, second))
	if got, err := s.SessionByRefreshHash(ctx, second.RefreshHash); err != nil || got.FamilyID != login.ID {
		t.Fatalf("rotated session = %+v, %v; want family %s", got, err, login.ID)
	}
	third := newSession(u.ID)
	third.FamilyID = login.ID
	must(t, s.RotateSession(ctx, second.ID, third))
	otherLogin := newSession(u.ID) // the same user on another device
	must(t, s.CreateSession(ctx, otherLogin))
	if got, _, err := s.SessionByAccessHash(ctx, otherLogin.AccessHash); err != nil || got.FamilyID != otherLogin.ID {
		t.Fatalf("a login is its own family: %+v, %v", got, err)
	}

	if ids, err := s.RevokeFamily(ctx, third.RefreshHash); err != nil || len(ids) != 0 {
		t.Fatalf("RevokeFamily(live token) = %v, %v; want nothing revoked", ids, err)
	}
	if ids, err := s.RevokeFamily(ctx, []byte("unknown")); err != nil || len(ids) != 0 {
		t.Fatalf("RevokeFamily(unknown) = %v, %v", ids, err)
	}
	// The first token comes back: the family (now only third) dies.
	ids, err := s.RevokeFamily(ctx, login.RefreshHash)
	must(t, err)
	if !slices.Equal(ids, []string{third.ID}) {
		t.Fatalf("RevokeFamily revoked %v, want [%s]", ids, third.ID)
	}
	_, _, err = s.SessionByAccessHash(ctx, third.AccessHash)
	wantErr(t, err, storeerr.ErrNotFound)
	if _, _, err := s.SessionByAccessHash(ctx, otherLogin.AccessHash); err != nil {
		t.Fatalf("another login of the same user was revoked: %v", err)
	}
}
