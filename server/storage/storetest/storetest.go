// Package storetest is the conformance suite every storage engine passes:
// the same cases, through the store interfaces the services own, run against
// the embedded store and against PostgreSQL (and CockroachDB when pointed at
// one).
package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/apiplatform/platform/server/favorite"
	"github.com/apiplatform/platform/server/favorite/color"
	"github.com/apiplatform/platform/server/identity"
	"github.com/apiplatform/platform/server/platform/storeerr"
	"github.com/apiplatform/platform/server/share"
)

// Stores is one engine's implementation of every store.
type Stores struct {
	Identity identity.Store
	Favorite favorite.Store
	Share    share.Store
}

// Run runs the suite; open returns empty stores (a fresh database).
func Run(t *testing.T, open func(t *testing.T) Stores) {
	t.Run("Users", func(t *testing.T) { testUsers(t, open(t)) })
	t.Run("Sessions", func(t *testing.T) { testSessions(t, open(t)) })
	t.Run("APIKeys", func(t *testing.T) { testAPIKeys(t, open(t)) })
	t.Run("RotateOnce", func(t *testing.T) { testRotateOnce(t, open(t)) })
	t.Run("RefreshFamily", func(t *testing.T) { testRefreshFamily(t, open(t)) })
	t.Run("ListUsers", func(t *testing.T) { testListUsers(t, open(t)) })
	t.Run("DeleteUser", func(t *testing.T) { testDeleteUser(t, open(t)) })
	t.Run("Favorites", func(t *testing.T) { testFavorites(t, open(t)) })
	t.Run("DeleteFavorite", func(t *testing.T) { testDeleteFavorite(t, open(t)) })
	t.Run("IdempotencyConcurrent", func(t *testing.T) { testIdempotencyConcurrent(t, open(t)) })
	t.Run("Shares", func(t *testing.T) { testShares(t, open(t)) })
	t.Run("ListSharesPages", func(t *testing.T) { testListShares(t, open(t)) })
	t.Run("HitsConcurrent", func(t *testing.T) { testHits(t, open(t)) })
	t.Run("SignedLinks", func(t *testing.T) { testSignedLinks(t, open(t)) })
	t.Run("SignedLinkUseOnce", func(t *testing.T) { testSignedLinkUseOnce(t, open(t)) })
	t.Run("LinkKeysOnce", func(t *testing.T) { testLinkKeysOnce(t, open(t)) })
}

var ctx = context.Background()

// now is truncated to what every engine stores (microseconds, UTC).
func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErr(t *testing.T, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("err = %v, want %v", err, want)
	}
}

func newUser(t *testing.T, s identity.Store, name string) identity.User {
	t.Helper()
	u := identity.User{ID: uuid.NewString(), Username: name, Guest: name == "", Role: identity.RoleUser, CreatedAt: now()}
	if name != "" {
		u.PasswordHash = "$argon2id$test"
	}
	must(t, s.CreateUser(ctx, u))
	return u
}

func newSession(userID string) identity.Session {
	id := uuid.New()
	n := now()
	return identity.Session{
		ID: id.String(), UserID: userID,
		AccessHash: append([]byte("a"), id[:]...), RefreshHash: append([]byte("r"), id[:]...),
		AccessExpiresAt: n.Add(time.Hour), RefreshExpiresAt: n.Add(24 * time.Hour), CreatedAt: n,
	}
}

func testUsers(t *testing.T, st Stores) {
	s := st.Identity
	alice := newUser(t, s, "alice")
	guest := newUser(t, s, "")
	got, err := s.GetUser(ctx, alice.ID)
	must(t, err)
	if got.Username != "alice" || got.Guest || got.Role != identity.RoleUser || !got.CreatedAt.Equal(alice.CreatedAt) || got.PasswordHash != alice.PasswordHash {
		t.Fatalf("GetUser = %+v, want %+v", got, alice)
	}
	if got, err := s.GetUserByUsername(ctx, "alice"); err != nil || got.ID != alice.ID {
		t.Fatalf("GetUserByUsername = %+v, %v", got, err)
	}
	_, err = s.GetUser(ctx, uuid.NewString())
	wantErr(t, err, storeerr.ErrNotFound)
	_, err = s.GetUserByUsername(ctx, "nobody")
	wantErr(t, err, storeerr.ErrNotFound)

	// Usernames are unique, including through UpdateUser; guests have none.
	dup := identity.User{ID: uuid.NewString(), Username: "alice", Role: identity.RoleUser, CreatedAt: now()}
	wantErr(t, s.CreateUser(ctx, dup), storeerr.ErrConflict)
	newUser(t, s, "") // a second guest: empty usernames never collide
	taken := guest
	taken.Username, taken.Guest = "alice", false
	wantErr(t, s.UpdateUser(ctx, taken), storeerr.ErrConflict)

	// Upgrading the guest keeps its id and frees nothing else.
	up := guest
	up.Username, up.Guest, up.PasswordHash, up.Role = "bob", false, "$argon2id$bob", identity.RoleAdmin
	must(t, s.UpdateUser(ctx, up))
	if got, err := s.GetUserByUsername(ctx, "bob"); err != nil || got.ID != guest.ID || got.Guest || got.Role != identity.RoleAdmin {
		t.Fatalf("after upgrade: %+v, %v", got, err)
	}
	// Renaming frees the old name.
	up.Username = "carol"
	must(t, s.UpdateUser(ctx, up))
	_, err = s.GetUserByUsername(ctx, "bob")
	wantErr(t, err, storeerr.ErrNotFound)
	newUser(t, s, "bob")
	wantErr(t, s.UpdateUser(ctx, identity.User{ID: uuid.NewString(), Username: "x", Role: identity.RoleUser}), storeerr.ErrNotFound)
}

func testSessions(t *testing.T, st Stores) {
	s := st.Identity
	u := newUser(t, s, "dave")
	a, b := newSession(u.ID), newSession(u.ID)
	must(t, s.CreateSession(ctx, a))
	must(t, s.CreateSession(ctx, b))
	wantErr(t, s.CreateSession(ctx, a), storeerr.ErrConflict)

	sess, user, err := s.SessionByAccessHash(ctx, a.AccessHash)
	must(t, err)
	if sess.ID != a.ID || user.ID != u.ID || !sess.AccessExpiresAt.Equal(a.AccessExpiresAt) {
		t.Fatalf("SessionByAccessHash = %+v %+v", sess, user)
	}
	if sess, err := s.SessionByRefreshHash(ctx, b.RefreshHash); err != nil || sess.ID != b.ID || !sess.RefreshExpiresAt.Equal(b.RefreshExpiresAt) {
		t.Fatalf("SessionByRefreshHash = %+v, %v", sess, err)
	}
	_, _, err = s.SessionByAccessHash(ctx, []byte("unknown"))
	wantErr(t, err, storeerr.ErrNotFound)

	must(t, s.DeleteSession(ctx, a.ID))
	_, _, err = s.SessionByAccessHash(ctx, a.AccessHash)
	wantErr(t, err, storeerr.ErrNotFound)
	_, err = s.SessionByRefreshHash(ctx, a.RefreshHash)
	wantErr(t, err, storeerr.ErrNotFound)
	wantErr(t, s.DeleteSession(ctx, a.ID), storeerr.ErrNotFound)
	if _, _, err := s.SessionByAccessHash(ctx, b.AccessHash); err != nil {
		t.Fatalf("other session revoked too: %v", err)
	}

	other := newUser(t, s, "erin")
	c := newSession(other.ID)
	must(t, s.CreateSession(ctx, c))
	must(t, s.DeleteUserSessions(ctx, u.ID))
	_, _, err = s.SessionByAccessHash(ctx, b.AccessHash)
	wantErr(t, err, storeerr.ErrNotFound)
	if _, _, err := s.SessionByAccessHash(ctx, c.AccessHash); err != nil {
		t.Fatalf("another user's session revoked: %v", err)
	}
}

// A refresh token works once, however many refreshes race.
func testRotateOnce(t *testing.T, st Stores) {
	s := st.Identity
	u := newUser(t, s, "frank")
	old := newSession(u.ID)
	must(t, s.CreateSession(ctx, old))
	const n = 8
	var wins atomic.Int32
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.RotateSession(ctx, old.ID, newSession(u.ID))
			switch {
			case err == nil:
				wins.Add(1)
			case !errors.Is(err, storeerr.ErrNotFound):
				t.Errorf("RotateSession: %v", err)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d rotations of one session succeeded, want exactly 1", wins.Load())
	}
	_, _, err := s.SessionByAccessHash(ctx, old.AccessHash)
	wantErr(t, err, storeerr.ErrNotFound)
}

func testFavorites(t *testing.T, st Stores) {
	s := st.Favorite
	u := uuid.NewString()
	_, err := s.GetFavorite(ctx, u)
	wantErr(t, err, storeerr.ErrNotFound)

	f := favorite.Favorite{UserID: u, Hex: "#FF0000", Space: color.SpaceHSL, Value: "hsl(0, 100%, 50%)", UpdatedAt: now()}
	replayed, err := s.SaveFavorite(ctx, f, nil, time.Hour)
	must(t, err)
	if replayed != nil {
		t.Fatal("save without a key replayed")
	}
	got, err := s.GetFavorite(ctx, u)
	must(t, err)
	if got != f {
		t.Fatalf("GetFavorite = %+v, want %+v", got, f)
	}

	idem := &storeerr.Idempotency{Scope: "favorite.set", Key: "k1", RequestHash: []byte("h1"), Response: []byte("first")}
	f2 := f
	f2.Hex, f2.Space, f2.Value = "#00FF00", color.SpaceHex, "#00FF00"
	replayed, err = s.SaveFavorite(ctx, f2, idem, time.Hour)
	must(t, err)
	if replayed != nil {
		t.Fatal("first use of a key replayed")
	}
	// A retry replays and writes nothing, even with a different favorite.
	f3 := f
	f3.Hex = "#0000FF"
	retry := *idem
	retry.Response = []byte("second")
	replayed, err = s.SaveFavorite(ctx, f3, &retry, time.Hour)
	must(t, err)
	if string(replayed) != "first" {
		t.Fatalf("retry replayed %q, want %q", replayed, "first")
	}
	if got, _ := s.GetFavorite(ctx, u); got.Hex != "#00FF00" {
		t.Fatalf("a replayed save wrote %s", got.Hex)
	}
	// Same key, other body: refused, nothing written.
	mismatch := *idem
	mismatch.RequestHash = []byte("h2")
	_, err = s.SaveFavorite(ctx, f3, &mismatch, time.Hour)
	wantErr(t, err, storeerr.ErrIdempotencyMismatch)
	if got, _ := s.GetFavorite(ctx, u); got.Hex != "#00FF00" {
		t.Fatalf("a refused save wrote %s", got.Hex)
	}
	// Keys are per user and per scope.
	other := uuid.NewString()
	of := f
	of.UserID = other
	if replayed, err := s.SaveFavorite(ctx, of, idem, time.Hour); err != nil || replayed != nil {
		t.Fatalf("another user's key collided: %q, %v", replayed, err)
	}
	scoped := *idem
	scoped.Scope = "other.scope"
	if replayed, err := s.SaveFavorite(ctx, f, &scoped, time.Hour); err != nil || replayed != nil {
		t.Fatalf("another scope's key collided: %q, %v", replayed, err)
	}
	// An expired key is a new request.
	time.Sleep(20 * time.Millisecond)
	stale := *idem
	stale.RequestHash, stale.Response = []byte("h3"), []byte("third")
	if replayed, err := s.SaveFavorite(ctx, f3, &stale, 10*time.Millisecond); err != nil || replayed != nil {
		t.Fatalf("expired key: %q, %v", replayed, err)
	}
	if got, _ := s.GetFavorite(ctx, u); got.Hex != "#0000FF" {
		t.Fatalf("save after expiry did not write: %s", got.Hex)
	}
}

// Concurrent saves under one key: exactly one writes, the rest replay it.
func testIdempotencyConcurrent(t *testing.T, st Stores) {
	s := st.Favorite
	u := uuid.NewString()
	const n = 8
	var fresh atomic.Int32
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f := favorite.Favorite{UserID: u, Hex: fmt.Sprintf("#0000%02X", i), Space: color.SpaceHex, Value: "x", UpdatedAt: now()}
			idem := &storeerr.Idempotency{Scope: "favorite.set", Key: "same", RequestHash: []byte("h"), Response: []byte(f.Hex)}
			replayed, err := s.SaveFavorite(ctx, f, idem, time.Hour)
			if err != nil {
				t.Errorf("SaveFavorite: %v", err)
				return
			}
			if replayed == nil {
				fresh.Add(1)
			}
		}()
	}
	wg.Wait()
	if fresh.Load() != 1 {
		t.Fatalf("%d saves under one key wrote, want exactly 1", fresh.Load())
	}
}

func testShares(t *testing.T, st Stores) {
	s := st.Share
	owner := uuid.NewString()
	n := now()
	snap := share.Share{Slug: "snapSLUG01", OwnerID: owner, Snapshot: true, Hex: "#112233", CreatedAt: n, ExpiresAt: n.Add(time.Hour)}
	must(t, s.CreateShare(ctx, snap))
	wantErr(t, s.CreateShare(ctx, snap), storeerr.ErrConflict)
	got, err := s.GetShare(ctx, snap.Slug)
	must(t, err)
	if got != snap {
		t.Fatalf("GetShare = %+v, want %+v", got, snap)
	}
	_, err = s.GetShare(ctx, "missing")
	wantErr(t, err, storeerr.ErrNotFound)

	active, err := s.HasActiveShare(ctx, owner, n)
	must(t, err)
	if !active {
		t.Fatal("owner with a live share is not active")
	}
	if active, _ := s.HasActiveShare(ctx, owner, n.Add(2*time.Hour)); active {
		t.Fatal("an expired share counts as active")
	}
	if active, _ := s.HasActiveShare(ctx, uuid.NewString(), n); active {
		t.Fatal("a stranger is active")
	}

	must(t, s.RevokeShare(ctx, snap.Slug, n.Add(time.Minute)))
	must(t, s.RevokeShare(ctx, snap.Slug, n.Add(2*time.Minute))) // idempotent: keeps the first time
	got, _ = s.GetShare(ctx, snap.Slug)
	if !got.RevokedAt.Equal(n.Add(time.Minute)) {
		t.Fatalf("RevokedAt = %v", got.RevokedAt)
	}
	if active, _ := s.HasActiveShare(ctx, owner, n); active {
		t.Fatal("a revoked share counts as active")
	}
	wantErr(t, s.RevokeShare(ctx, "missing", n), storeerr.ErrNotFound)

	live := share.Share{Slug: "liveSLUG01", OwnerID: owner, CreatedAt: n}
	must(t, s.CreateShare(ctx, live))
	if active, _ := s.HasActiveShare(ctx, owner, n.Add(100*365*24*time.Hour)); !active {
		t.Fatal("a share without expiry stopped being active")
	}
	wantErr(t, s.AddHits(ctx, "missing", 1), storeerr.ErrNotFound)
}

func testListShares(t *testing.T, st Stores) {
	s := st.Share
	owner, other := uuid.NewString(), uuid.NewString()
	base := now()
	var want []string // newest first
	for i := range 7 {
		// Two shares per timestamp: the slug breaks the tie.
		at := base.Add(time.Duration(i/2) * time.Second)
		slug := fmt.Sprintf("list%02d", i)
		must(t, s.CreateShare(ctx, share.Share{Slug: slug, OwnerID: owner, CreatedAt: at}))
		want = append([]string{slug}, want...)
	}
	must(t, s.CreateShare(ctx, share.Share{Slug: "notmine", OwnerID: other, CreatedAt: base}))

	var got []string
	var after *share.Cursor
	for page := 0; ; page++ {
		rows, err := s.ListShares(ctx, owner, after, 3)
		must(t, err)
		for _, r := range rows {
			got = append(got, r.Slug)
		}
		if len(rows) < 3 {
			break
		}
		last := rows[len(rows)-1]
		after = &share.Cursor{CreatedAt: last.CreatedAt, Slug: last.Slug}
		if page > 5 {
			t.Fatal("pagination does not end")
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("pages = %v, want %v", got, want)
	}
	if rows, _ := s.ListShares(ctx, uuid.NewString(), nil, 10); len(rows) != 0 {
		t.Fatalf("stranger lists %d shares", len(rows))
	}
}

func testHits(t *testing.T, st Stores) {
	s := st.Share
	sh := share.Share{Slug: "hitsSLUG01", OwnerID: uuid.NewString(), CreatedAt: now()}
	must(t, s.CreateShare(ctx, sh))
	const workers, each = 8, 10
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				if err := s.AddHits(ctx, sh.Slug, 1); err != nil {
					t.Errorf("AddHits: %v", err)
				}
			}
		}()
	}
	wg.Wait()
	got, err := s.GetShare(ctx, sh.Slug)
	must(t, err)
	if got.Hits != workers*each {
		t.Fatalf("hits = %d, want %d (lost updates)", got.Hits, workers*each)
	}
}

// DeleteFavorite removes the favorite and forgets the user's idempotency
// keys (a reused key is a fresh write), and leaves other users alone.
func testDeleteFavorite(t *testing.T, st Stores) {
	s := st.Favorite
	gone, kept := uuid.NewString(), uuid.NewString()
	idem := &storeerr.Idempotency{Scope: "favorite.set", Key: "k1", RequestHash: []byte("h1"), Response: []byte("first")}
	for _, u := range []string{gone, kept} {
		f := favorite.Favorite{UserID: u, Hex: "#FF0000", Space: color.SpaceHex, Value: "#FF0000", UpdatedAt: now()}
		_, err := s.SaveFavorite(ctx, f, idem, time.Hour)
		must(t, err)
	}
	must(t, s.DeleteFavorite(ctx, gone))
	must(t, s.DeleteFavorite(ctx, gone)) // nothing left: not an error
	must(t, s.DeleteFavorite(ctx, "not-a-uuid"))
	_, err := s.GetFavorite(ctx, gone)
	wantErr(t, err, storeerr.ErrNotFound)
	if _, err := s.GetFavorite(ctx, kept); err != nil {
		t.Fatalf("another user's favorite: %v", err)
	}
	other := *idem
	other.RequestHash = []byte("h2")
	f := favorite.Favorite{UserID: gone, Hex: "#00FF00", Space: color.SpaceHex, Value: "#00FF00", UpdatedAt: now()}
	if replayed, err := s.SaveFavorite(ctx, f, &other, time.Hour); err != nil || replayed != nil {
		t.Fatalf("the deleted user's old key still recorded: %q, %v", replayed, err)
	}
	f.UserID = kept
	if _, err := s.SaveFavorite(ctx, f, &other, time.Hour); !errors.Is(err, storeerr.ErrIdempotencyMismatch) {
		t.Fatalf("another user's key was forgotten too: %v", err)
	}
}
