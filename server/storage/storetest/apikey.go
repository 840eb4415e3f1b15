package storetest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/apiplatform/platform/server/identity"
	"github.com/apiplatform/platform/server/platform/storeerr"
)

// API keys are found by the hash of their secret while live, listed per
// user newest first, revoked by their owner (or anyone's by an empty
// owner) exactly once, and remember their last use.
func testAPIKeys(t *testing.T, st Stores) {
	s := st.Identity
	alice, bob := newUser(t, s, "alice"), newUser(t, s, "bob")
	now := time.Now().UTC().Truncate(time.Microsecond)
	key := func(owner string, age time.Duration, scopes ...string) identity.APIKey {
		return identity.APIKey{ID: uuid.NewString(), UserID: owner, Name: "ci " + owner[:4], Prefix: "ak_abcdefgh",
			Hash: []byte(uuid.NewString()), Scopes: scopes, CreatedAt: now.Add(-age)}
	}
	older, newer := key(alice.ID, time.Hour, "favorite:read"), key(alice.ID, 0, "favorite:write", "vote:read")
	newer.ExpiresAt = now.Add(24 * time.Hour)
	bobs := key(bob.ID, 0, "*:read")
	for _, k := range []identity.APIKey{older, newer, bobs} {
		must(t, s.CreateAPIKey(ctx, k))
	}
	dup := key(alice.ID, 0, "favorite:read")
	dup.Hash = older.Hash
	if err := s.CreateAPIKey(ctx, dup); !errors.Is(err, storeerr.ErrConflict) {
		t.Fatalf("duplicate hash: %v, want ErrConflict", err)
	}

	got, u, err := s.APIKeyByHash(ctx, newer.Hash)
	if err != nil || u.ID != alice.ID || got.ID != newer.ID || !slices.Equal(got.Scopes, newer.Scopes) ||
		!got.ExpiresAt.Equal(newer.ExpiresAt) || !got.LastUsedAt.IsZero() || got.Prefix != "ak_abcdefgh" {
		t.Fatalf("APIKeyByHash = %+v, %+v, %v", got, u, err)
	}
	if _, _, err := s.APIKeyByHash(ctx, []byte("unknown")); !errors.Is(err, storeerr.ErrNotFound) {
		t.Fatalf("unknown hash: %v", err)
	}
	list, err := s.ListAPIKeys(ctx, alice.ID)
	if err != nil || len(list) != 2 || list[0].ID != newer.ID || list[1].ID != older.ID || !list[1].ExpiresAt.IsZero() {
		t.Fatalf("ListAPIKeys = %+v, %v", list, err)
	}

	used := now.Add(time.Minute)
	must(t, s.TouchAPIKey(ctx, older.ID, used))
	must(t, s.TouchAPIKey(ctx, older.ID, now)) // an older touch does not go back
	if got, _, err := s.APIKeyByHash(ctx, older.Hash); err != nil || !got.LastUsedAt.Equal(used) {
		t.Fatalf("last used = %v, %v; want %v", got.LastUsedAt, err, used)
	}

	if err := s.RevokeAPIKey(ctx, bob.ID, older.ID); !errors.Is(err, storeerr.ErrNotFound) {
		t.Fatalf("bob revoking alice's key: %v, want ErrNotFound", err)
	}
	must(t, s.RevokeAPIKey(ctx, alice.ID, older.ID))
	if err := s.RevokeAPIKey(ctx, alice.ID, older.ID); !errors.Is(err, storeerr.ErrNotFound) {
		t.Fatalf("second revocation: %v, want ErrNotFound", err)
	}
	if _, _, err := s.APIKeyByHash(ctx, older.Hash); !errors.Is(err, storeerr.ErrNotFound) {
		t.Fatalf("revoked key still found: %v", err)
	}
	// A suspension is part of the user every lookup returns.
	alice.Suspended = true
	must(t, s.UpdateUser(ctx, alice))
	if _, u, err := s.APIKeyByHash(ctx, newer.Hash); err != nil || !u.Suspended {
		t.Fatalf("key of a suspended user: %+v, %v", u, err)
	}
	sess := newSession(alice.ID)
	must(t, s.CreateSession(ctx, sess))
	if _, u, err := s.SessionByAccessHash(ctx, sess.AccessHash); err != nil || !u.Suspended {
		t.Fatalf("session of a suspended user: %+v, %v", u, err)
	}
	alice.Suspended = false
	must(t, s.UpdateUser(ctx, alice))
	if u, err := s.GetUser(ctx, alice.ID); err != nil || u.Suspended {
		t.Fatalf("reinstated user: %+v, %v", u, err)
	}

	must(t, s.RevokeAPIKey(ctx, "", bobs.ID)) // an admin revokes anyone's
	if list, err := s.ListAPIKeys(ctx, bob.ID); err != nil || len(list) != 0 {
		t.Fatalf("bob's keys after revocation: %+v, %v", list, err)
	}
}
