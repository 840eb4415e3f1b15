package storetest

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/apiplatform/platform/server/identity"
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

// ListUsers pages newest first by (created_at, id), ties broken by id, and
// filters on a literal username prefix ('_' is not a wildcard; guests have
// no username and match no prefix).
func testListUsers(t *testing.T, st Stores) {
	s := st.Identity
	base := now().Add(-time.Hour)
	mk := func(name string, at time.Time) identity.User {
		u := identity.User{ID: uuid.NewString(), Username: name, Guest: name == "", Role: identity.RoleUser, CreatedAt: at}
		if name != "" {
			u.PasswordHash = "$argon2id$test"
		}
		must(t, s.CreateUser(ctx, u))
		return u
	}
	var all []identity.User // newest first once sorted below
	all = append(all, mk("a_b1", base), mk("axb2", base.Add(time.Second)), mk("a_b3", base.Add(time.Second)), mk("", base.Add(2*time.Second)), mk("zed", base.Add(3*time.Second)))
	slices.SortFunc(all, func(a, b identity.User) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
	ids := func(us []identity.User) []string {
		var out []string
		for _, u := range us {
			out = append(out, u.ID)
		}
		return out
	}

	var walked []identity.User
	var after *identity.UserCursor
	for range len(all) + 1 {
		got, err := s.ListUsers(ctx, "", after, 2)
		must(t, err)
		walked = append(walked, got...)
		if len(got) < 2 {
			break
		}
		last := got[len(got)-1]
		after = &identity.UserCursor{CreatedAt: last.CreatedAt, ID: last.ID}
	}
	if !slices.Equal(ids(walked), ids(all)) {
		t.Fatalf("pages walked %v, want %v", ids(walked), ids(all))
	}

	got, err := s.ListUsers(ctx, "a_b", nil, 10)
	must(t, err)
	var want []identity.User
	for _, u := range all {
		if strings.HasPrefix(u.Username, "a_b") {
			want = append(want, u)
		}
	}
	if !slices.Equal(ids(got), ids(want)) || len(want) != 2 {
		t.Fatalf("prefix a_b: %v, want %v", ids(got), ids(want))
	}
	if got[0].Username != "a_b3" || got[0].PasswordHash == "" || !got[0].CreatedAt.Equal(base.Add(time.Second)) {
		t.Fatalf("listed user = %+v", got[0])
	}
	if got, err := s.ListUsers(ctx, "nobody", nil, 10); err != nil || len(got) != 0 {
		t.Fatalf("unknown prefix = %v, %v", got, err)
	}
}

// DeleteUser takes the user's sessions and API keys with it, frees the
// username, and leaves other users alone.
func testDeleteUser(t *testing.T, st Stores) {
	s := st.Identity
	gone, kept := newUser(t, s, "gone"), newUser(t, s, "kept")
	sess, other := newSession(gone.ID), newSession(kept.ID)
	must(t, s.CreateSession(ctx, sess))
	must(t, s.CreateSession(ctx, other))
	key := identity.APIKey{ID: uuid.NewString(), UserID: gone.ID, Name: "ci", Prefix: "ak_abcdefgh", Hash: []byte(uuid.NewString()), Scopes: []string{"*:read"}, CreatedAt: now()}
	must(t, s.CreateAPIKey(ctx, key))

	must(t, s.DeleteUser(ctx, gone.ID))
	_, err := s.GetUser(ctx, gone.ID)
	wantErr(t, err, storeerr.ErrNotFound)
	_, err = s.GetUserByUsername(ctx, "gone")
	wantErr(t, err, storeerr.ErrNotFound)
	_, _, err = s.SessionByAccessHash(ctx, sess.AccessHash)
	wantErr(t, err, storeerr.ErrNotFound)
	_, err = s.SessionByRefreshHash(ctx, sess.RefreshHash)
	wantErr(t, err, storeerr.ErrNotFound)
	_, _, err = s.APIKeyByHash(ctx, key.Hash)
	wantErr(t, err, storeerr.ErrNotFound)
	wantErr(t, s.DeleteUser(ctx, gone.ID), storeerr.ErrNotFound)
	wantErr(t, s.DeleteUser(ctx, "not-a-uuid"), storeerr.ErrNotFound)

	if _, _, err := s.SessionByAccessHash(ctx, other.AccessHash); err != nil {
		t.Fatalf("another user's session: %v", err)
	}
	again := newUser(t, s, "gone") // the name is free again
	if again.ID == gone.ID {
		t.Fatal("same id")
	}
}
