package embedded

import (
	"context"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/apiplatform/platform/server/identity"
	"github.com/apiplatform/platform/server/platform/storeerr"
)

var (
	bAPIKeys    = []byte("api_keys")     // id -> APIKey (live keys only)
	bAPIKeyHash = []byte("api_key_hash") // sha256(secret) -> id
)

func init() { allBuckets = append(allBuckets, bAPIKeys, bAPIKeyHash) }

// CreateAPIKey implements identity.Store.
func (s *Store) CreateAPIKey(ctx context.Context, k identity.APIKey) error {
	return s.update(ctx, func(tx *bolt.Tx) error {
		if tx.Bucket(bUsers).Get([]byte(k.UserID)) == nil {
			return storeerr.ErrNotFound
		}
		if tx.Bucket(bAPIKeys).Get([]byte(k.ID)) != nil || tx.Bucket(bAPIKeyHash).Get(k.Hash) != nil {
			return storeerr.ErrConflict
		}
		if err := tx.Bucket(bAPIKeyHash).Put(k.Hash, []byte(k.ID)); err != nil {
			return err
		}
		return put(tx, bAPIKeys, []byte(k.ID), k)
	})
}

// APIKeyByHash implements identity.Store.
func (s *Store) APIKeyByHash(ctx context.Context, hash []byte) (k identity.APIKey, u identity.User, err error) {
	err = s.view(ctx, func(tx *bolt.Tx) error {
		id := tx.Bucket(bAPIKeyHash).Get(hash)
		if id == nil {
			return storeerr.ErrNotFound
		}
		if k, err = get[identity.APIKey](tx, bAPIKeys, id); err != nil {
			return err
		}
		u, err = get[identity.User](tx, bUsers, []byte(k.UserID))
		return err
	})
	return k, u, err
}

// ListAPIKeys implements identity.Store. Keys are not indexed by user: a
// scan is fine for the one-process store.
func (s *Store) ListAPIKeys(ctx context.Context, userID string) (keys []identity.APIKey, err error) {
	err = s.view(ctx, func(tx *bolt.Tx) error {
		keys = nil
		return tx.Bucket(bAPIKeys).ForEach(func(id, _ []byte) error {
			k, err := get[identity.APIKey](tx, bAPIKeys, id)
			if err == nil && k.UserID == userID {
				keys = append(keys, k)
			}
			return err
		})
	})
	slices.SortFunc(keys, func(a, b identity.APIKey) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return compareStrings(a.ID, b.ID)
	})
	return keys, err
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// RevokeAPIKey implements identity.Store.
func (s *Store) RevokeAPIKey(ctx context.Context, userID, id string) error {
	return s.update(ctx, func(tx *bolt.Tx) error {
		k, err := get[identity.APIKey](tx, bAPIKeys, []byte(id))
		if err != nil {
			return err
		}
		if userID != "" && k.UserID != userID {
			return storeerr.ErrNotFound
		}
		if err := tx.Bucket(bAPIKeyHash).Delete(k.Hash); err != nil {
			return err
		}
		return tx.Bucket(bAPIKeys).Delete([]byte(id))
	})
}

// TouchAPIKey implements identity.Store.
func (s *Store) TouchAPIKey(ctx context.Context, id string, t time.Time) error {
	return s.update(ctx, func(tx *bolt.Tx) error {
		k, err := get[identity.APIKey](tx, bAPIKeys, []byte(id))
		if err != nil {
			return nil // revoked meanwhile
		}
		if !k.LastUsedAt.Before(t) {
			return nil
		}
		k.LastUsedAt = t.UTC()
		return put(tx, bAPIKeys, []byte(id), k)
	})
}
