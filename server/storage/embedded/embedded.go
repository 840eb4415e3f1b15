// Package embedded is the one-command default store: a single bbolt file in
// the data directory. bbolt is pure Go (the binary stays static, nothing to
// install), transactional and crash-safe (a committed write survives a
// killed process), which is all a single process needs. It serialises
// writers, so it is for one replica; production uses sqlstore.
package embedded

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/apiplatform/platform/server/favorite"
	"github.com/apiplatform/platform/server/identity"
	"github.com/apiplatform/platform/server/platform/storeerr"
	"github.com/apiplatform/platform/server/share"
	"github.com/apiplatform/platform/server/storage"
)

// Buckets. Rows are JSON; index buckets map a key to a primary key.
var (
	bUsers         = []byte("users")
	bUsernames     = []byte("usernames")      // username -> user id
	bSessions      = []byte("sessions")       // id -> Session
	bAccess        = []byte("session_access") // sha256(access token) -> session id
	bRefresh       = []byte("session_refresh")
	bFavorites     = []byte("favorites")   // user id -> Favorite
	bIdempotency   = []byte("idempotency") // user \x00 scope \x00 key -> idemRecord
	bShares        = []byte("shares")      // slug -> Share
	bSharesByOwner = []byte("shares_by_owner")
	// allBuckets are created at Open; files for other services append
	// theirs in init.
	allBuckets = [][]byte{bUsers, bUsernames, bSessions, bAccess, bRefresh, bFavorites, bIdempotency, bShares, bSharesByOwner}
)

// Store is the embedded storage engine: every service's store in one bbolt
// file.
type Store struct{ db *bolt.DB }

var _ storage.Engine = (*Store)(nil)

// Open opens (creating if needed) the store in dir.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	// The timeout turns "another process holds the file" into an error
	// instead of a silent hang.
	db, err := bolt.Open(filepath.Join(dir, "platform.db"), 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open %s: %w (is another server using this data dir?)", dir, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	return &Store{db: db}, nil
}

// Close releases the file.
func (s *Store) Close() error { return s.db.Close() }

func (s *Store) view(ctx context.Context, fn func(*bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.View(fn)
}

func (s *Store) update(ctx context.Context, fn func(*bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.Update(fn)
}

func get[T any](tx *bolt.Tx, bucket, key []byte) (T, error) {
	var v T
	raw := tx.Bucket(bucket).Get(key)
	if raw == nil {
		return v, storeerr.ErrNotFound
	}
	return v, json.Unmarshal(raw, &v)
}

func put(tx *bolt.Tx, bucket, key []byte, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return tx.Bucket(bucket).Put(key, raw)
}

// ---- identity ----

// CreateUser implements identity.Store.
func (s *Store) CreateUser(ctx context.Context, u identity.User) error {
	return s.update(ctx, func(tx *bolt.Tx) error {
		if tx.Bucket(bUsers).Get([]byte(u.ID)) != nil {
			return storeerr.ErrConflict
		}
		if u.Username != "" {
			if tx.Bucket(bUsernames).Get([]byte(u.Username)) != nil {
				return storeerr.ErrConflict
			}
			if err := tx.Bucket(bUsernames).Put([]byte(u.Username), []byte(u.ID)); err != nil {
				return err
			}
		}
		return put(tx, bUsers, []byte(u.ID), u)
	})
}

// GetUser implements identity.Store.
func (s *Store) GetUser(ctx context.Context, id string) (u identity.User, err error) {
	err = s.view(ctx, func(tx *bolt.Tx) error {
		u, err = get[identity.User](tx, bUsers, []byte(id))
		return err
	})
	return u, err
}

// GetUserByUsername implements identity.Store.
func (s *Store) GetUserByUsername(ctx context.Context, username string) (u identity.User, err error) {
	err = s.view(ctx, func(tx *bolt.Tx) error {
		id := tx.Bucket(bUsernames).Get([]byte(username))
		if id == nil {
			return storeerr.ErrNotFound
		}
		u, err = get[identity.User](tx, bUsers, id)
		return err
	})
	return u, err
}

// UpdateUser implements identity.Store.
func (s *Store) UpdateUser(ctx context.Context, u identity.User) error {
	return s.update(ctx, func(tx *bolt.Tx) error {
		old, err := get[identity.User](tx, bUsers, []byte(u.ID))
		if err != nil {
			return err
		}
		names := tx.Bucket(bUsernames)
		if u.Username != old.Username {
			if u.Username != "" {
				if owner := names.Get([]byte(u.Username)); owner != nil && string(owner) != u.ID {
					return storeerr.ErrConflict
				}
				if err := names.Put([]byte(u.Username), []byte(u.ID)); err != nil {
					return err
				}
			}
			if old.Username != "" {
				if err := names.Delete([]byte(old.Username)); err != nil {
					return err
				}
			}
		}
		u.CreatedAt = old.CreatedAt
		return put(tx, bUsers, []byte(u.ID), u)
	})
}

// CreateSession implements identity.Store.
func (s *Store) CreateSession(ctx context.Context, sess identity.Session) error {
	return s.update(ctx, func(tx *bolt.Tx) error { return createSession(tx, sess) })
}

func createSession(tx *bolt.Tx, sess identity.Session) error {
	if sess.FamilyID == "" {
		sess.FamilyID = sess.ID
	}
	if tx.Bucket(bSessions).Get([]byte(sess.ID)) != nil ||
		tx.Bucket(bAccess).Get(sess.AccessHash) != nil ||
		tx.Bucket(bRefresh).Get(sess.RefreshHash) != nil {
		return storeerr.ErrConflict
	}
	if err := tx.Bucket(bAccess).Put(sess.AccessHash, []byte(sess.ID)); err != nil {
		return err
	}
	if err := tx.Bucket(bRefresh).Put(sess.RefreshHash, []byte(sess.ID)); err != nil {
		return err
	}
	return put(tx, bSessions, []byte(sess.ID), sess)
}

// SessionByAccessHash implements identity.Store.
func (s *Store) SessionByAccessHash(ctx context.Context, h []byte) (sess identity.Session, u identity.User, err error) {
	err = s.view(ctx, func(tx *bolt.Tx) error {
		id := tx.Bucket(bAccess).Get(h)
		if id == nil {
			return storeerr.ErrNotFound
		}
		if sess, err = get[identity.Session](tx, bSessions, id); err != nil {
			return err
		}
		u, err = get[identity.User](tx, bUsers, []byte(sess.UserID))
		return err
	})
	return sess, u, err
}

// SessionByRefreshHash implements identity.Store.
func (s *Store) SessionByRefreshHash(ctx context.Context, h []byte) (sess identity.Session, err error) {
	err = s.view(ctx, func(tx *bolt.Tx) error {
		id := tx.Bucket(bRefresh).Get(h)
		if id == nil {
			return storeerr.ErrNotFound
		}
		sess, err = get[identity.Session](tx, bSessions, id)
		return err
	})
	return sess, err
}

// RotateSession implements identity.Store.
func (s *Store) RotateSession(ctx context.Context, oldID string, next identity.Session) error {
	return s.update(ctx, func(tx *bolt.Tx) error {
		old, err := get[identity.Session](tx, bSessions, []byte(oldID))
		if err != nil {
			return err
		}
		if err := deleteSession(tx, oldID); err != nil {
			return err
		}
		if err := rememberUsedRefresh(tx, old); err != nil {
			return err
		}
		return createSession(tx, next)
	})
}

// DeleteSession implements identity.Store.
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	return s.update(ctx, func(tx *bolt.Tx) error { return deleteSession(tx, id) })
}

func deleteSession(tx *bolt.Tx, id string) error {
	sess, err := get[identity.Session](tx, bSessions, []byte(id))
	if err != nil {
		return err
	}
	if err := tx.Bucket(bAccess).Delete(sess.AccessHash); err != nil {
		return err
	}
	if err := tx.Bucket(bRefresh).Delete(sess.RefreshHash); err != nil {
		return err
	}
	return tx.Bucket(bSessions).Delete([]byte(id))
}

// DeleteUserSessions implements identity.Store. Sessions are not indexed by
// user: a scan is fine for the one-process store (this runs on upgrades and
// bans, not per request).
func (s *Store) DeleteUserSessions(ctx context.Context, userID string) error {
	return s.update(ctx, func(tx *bolt.Tx) error {
		_, err := deleteSessionsWhere(tx, func(sess identity.Session) bool { return sess.UserID == userID })
		return err
	})
}

// deleteSessionsWhere deletes the sessions match picks (a scan: sessions
// are indexed by token, not by user or family) and returns their ids.
func deleteSessionsWhere(tx *bolt.Tx, match func(identity.Session) bool) ([]string, error) {
	var ids []string
	err := tx.Bucket(bSessions).ForEach(func(k, v []byte) error {
		var sess identity.Session
		if err := json.Unmarshal(v, &sess); err != nil {
			return err
		}
		if match(sess) {
			ids = append(ids, string(k))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		if err := deleteSession(tx, id); err != nil {
			return nil, err
		}
	}
	return ids, nil
}

// ---- favorite ----

type idemRecord struct {
	RequestHash []byte
	Response    []byte
	CreatedAt   time.Time
}

// GetFavorite implements favorite.Store.
func (s *Store) GetFavorite(ctx context.Context, userID string) (f favorite.Favorite, err error) {
	err = s.view(ctx, func(tx *bolt.Tx) error {
		f, err = get[favorite.Favorite](tx, bFavorites, []byte(userID))
		return err
	})
	return f, err
}

// SaveFavorite implements favorite.Store.
func (s *Store) SaveFavorite(ctx context.Context, f favorite.Favorite, idem *storeerr.Idempotency, ttl time.Duration) (replayed []byte, err error) {
	err = s.update(ctx, func(tx *bolt.Tx) error {
		if idem != nil {
			key := []byte(f.UserID + "\x00" + idem.Scope + "\x00" + idem.Key)
			rec, err := get[idemRecord](tx, bIdempotency, key)
			switch {
			case err == nil && time.Since(rec.CreatedAt) < ttl:
				if !bytes.Equal(rec.RequestHash, idem.RequestHash) {
					return storeerr.ErrIdempotencyMismatch
				}
				replayed = rec.Response
				return nil
			case err != nil && !errors.Is(err, storeerr.ErrNotFound):
				return err
			}
			if err := put(tx, bIdempotency, key, idemRecord{idem.RequestHash, idem.Response, time.Now()}); err != nil {
				return err
			}
		}
		return put(tx, bFavorites, []byte(f.UserID), f)
	})
	return replayed, err
}

// DeleteFavorite implements favorite.Store. Idempotency records are keyed
// by user id first: one cursor range.
func (s *Store) DeleteFavorite(ctx context.Context, userID string) error {
	return s.update(ctx, func(tx *bolt.Tx) error {
		prefix := []byte(userID + "\x00")
		var keys [][]byte
		c := tx.Bucket(bIdempotency).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			keys = append(keys, bytes.Clone(k))
		}
		for _, k := range keys {
			if err := tx.Bucket(bIdempotency).Delete(k); err != nil {
				return err
			}
		}
		return tx.Bucket(bFavorites).Delete([]byte(userID))
	})
}

// ---- share ----

func ownerKey(owner string, createdAt time.Time, slug string) []byte {
	k := make([]byte, 0, len(owner)+1+8+len(slug))
	k = append(k, owner...)
	k = append(k, 0)
	k = binary.BigEndian.AppendUint64(k, uint64(createdAt.UnixMicro()))
	return append(k, slug...)
}

// CreateShare implements share.Store.
func (s *Store) CreateShare(ctx context.Context, sh share.Share) error {
	return s.update(ctx, func(tx *bolt.Tx) error {
		if tx.Bucket(bShares).Get([]byte(sh.Slug)) != nil {
			return storeerr.ErrConflict
		}
		if err := tx.Bucket(bSharesByOwner).Put(ownerKey(sh.OwnerID, sh.CreatedAt, sh.Slug), nil); err != nil {
			return err
		}
		return put(tx, bShares, []byte(sh.Slug), sh)
	})
}

// GetShare implements share.Store.
func (s *Store) GetShare(ctx context.Context, slug string) (sh share.Share, err error) {
	err = s.view(ctx, func(tx *bolt.Tx) error {
		sh, err = get[share.Share](tx, bShares, []byte(slug))
		return err
	})
	return sh, err
}

// ListShares implements share.Store: a reverse scan of the owner index.
func (s *Store) ListShares(ctx context.Context, ownerID string, after *share.Cursor, limit int) (out []share.Share, err error) {
	prefix := append([]byte(ownerID), 0)
	err = s.view(ctx, func(tx *bolt.Tx) error {
		c := tx.Bucket(bSharesByOwner).Cursor()
		var k []byte
		if after != nil {
			// Strictly before the cursor in key order (after it, newest first).
			start := ownerKey(ownerID, after.CreatedAt, after.Slug)
			if k, _ = c.Seek(start); k == nil {
				k, _ = c.Last()
			} else {
				k, _ = c.Prev() // Seek lands on start or the first key after it
			}
		} else {
			// The last key with this prefix: seek past it and step back.
			if k, _ = c.Seek(append([]byte(ownerID), 1)); k == nil {
				k, _ = c.Last()
			} else {
				k, _ = c.Prev()
			}
		}
		for ; k != nil && bytes.HasPrefix(k, prefix) && len(out) < limit; k, _ = c.Prev() {
			slug := k[len(prefix)+8:]
			sh, err := get[share.Share](tx, bShares, slug)
			if err != nil {
				return err
			}
			out = append(out, sh)
		}
		return nil
	})
	return out, err
}

// RevokeShare implements share.Store.
func (s *Store) RevokeShare(ctx context.Context, slug string, at time.Time) error {
	return s.update(ctx, func(tx *bolt.Tx) error {
		sh, err := get[share.Share](tx, bShares, []byte(slug))
		if err != nil {
			return err
		}
		if !sh.RevokedAt.IsZero() {
			return nil
		}
		sh.RevokedAt = at
		return put(tx, bShares, []byte(slug), sh)
	})
}

// AddHits implements share.Store.
func (s *Store) AddHits(ctx context.Context, slug string, n int64) error {
	return s.update(ctx, func(tx *bolt.Tx) error {
		sh, err := get[share.Share](tx, bShares, []byte(slug))
		if err != nil {
			return err
		}
		sh.Hits += n
		return put(tx, bShares, []byte(slug), sh)
	})
}

// HasActiveShare implements share.Store.
func (s *Store) HasActiveShare(ctx context.Context, ownerID string, now time.Time) (found bool, err error) {
	prefix := append([]byte(ownerID), 0)
	err = s.view(ctx, func(tx *bolt.Tx) error {
		c := tx.Bucket(bSharesByOwner).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			sh, err := get[share.Share](tx, bShares, k[len(prefix)+8:])
			if err != nil {
				return err
			}
			if sh.RevokedAt.IsZero() && (sh.ExpiresAt.IsZero() || now.Before(sh.ExpiresAt)) {
				found = true
				return nil
			}
		}
		return nil
	})
	return found, err
}
