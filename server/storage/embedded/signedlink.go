package embedded

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/apiplatform/platform/server/platform/storeerr"
	"github.com/apiplatform/platform/server/share"
)

var (
	bSignedLinks        = []byte("share_signed_links")          // id -> SignedLink
	bSignedLinksByOwner = []byte("share_signed_links_by_owner") // ownerKey -> nil
	bLinkKeys           = []byte("share_link_keys")             // big-endian id -> secret
)

func init() { allBuckets = append(allBuckets, bSignedLinks, bSignedLinksByOwner, bLinkKeys) }

// CreateSignedLink implements share.Store.
func (s *Store) CreateSignedLink(ctx context.Context, l share.SignedLink) error {
	return s.update(ctx, func(tx *bolt.Tx) error {
		if tx.Bucket(bSignedLinks).Get([]byte(l.ID)) != nil {
			return storeerr.ErrConflict
		}
		if err := tx.Bucket(bSignedLinksByOwner).Put(ownerKey(l.OwnerID, l.CreatedAt, l.ID), nil); err != nil {
			return err
		}
		return put(tx, bSignedLinks, []byte(l.ID), l)
	})
}

// GetSignedLink implements share.Store.
func (s *Store) GetSignedLink(ctx context.Context, id string) (l share.SignedLink, err error) {
	err = s.view(ctx, func(tx *bolt.Tx) error {
		l, err = get[share.SignedLink](tx, bSignedLinks, []byte(id))
		return err
	})
	return l, err
}

// ListSignedLinks implements share.Store: a reverse scan of the owner index.
func (s *Store) ListSignedLinks(ctx context.Context, ownerID string, after *share.Cursor, limit int) (out []share.SignedLink, err error) {
	if ownerID == "" {
		return nil, nil
	}
	prefix := append([]byte(ownerID), 0)
	err = s.view(ctx, func(tx *bolt.Tx) error {
		c := tx.Bucket(bSignedLinksByOwner).Cursor()
		var k []byte
		if after != nil {
			if k, _ = c.Seek(ownerKey(ownerID, after.CreatedAt, after.Slug)); k == nil {
				k, _ = c.Last()
			} else {
				k, _ = c.Prev()
			}
		} else if k, _ = c.Seek(append([]byte(ownerID), 1)); k == nil {
			k, _ = c.Last()
		} else {
			k, _ = c.Prev()
		}
		for ; k != nil && bytes.HasPrefix(k, prefix) && len(out) < limit; k, _ = c.Prev() {
			l, err := get[share.SignedLink](tx, bSignedLinks, k[len(prefix)+8:])
			if err != nil {
				return err
			}
			out = append(out, l)
		}
		return nil
	})
	return out, err
}

// RevokeSignedLink implements share.Store.
func (s *Store) RevokeSignedLink(ctx context.Context, id string, at time.Time) error {
	return s.update(ctx, func(tx *bolt.Tx) error {
		l, err := get[share.SignedLink](tx, bSignedLinks, []byte(id))
		if err != nil || !l.RevokedAt.IsZero() {
			return err
		}
		l.RevokedAt = at
		return put(tx, bSignedLinks, []byte(id), l)
	})
}

// UseSignedLink implements share.Store; bbolt serialises writers, so the
// check and the write are one atomic step.
func (s *Store) UseSignedLink(ctx context.Context, id string, at time.Time) (used bool, err error) {
	err = s.update(ctx, func(tx *bolt.Tx) error {
		l, err := get[share.SignedLink](tx, bSignedLinks, []byte(id))
		if err != nil {
			if errors.Is(err, storeerr.ErrNotFound) {
				return nil
			}
			return err
		}
		if !l.SingleUse || !l.UsedAt.IsZero() || !l.RevokedAt.IsZero() || !at.Before(l.ExpiresAt) {
			return nil
		}
		l.UsedAt, used = at, true
		return put(tx, bSignedLinks, []byte(id), l)
	})
	return used, err
}

// RevokedSignedLinks implements share.Store (a scan: it runs at start and
// when a replica lost track, not per view).
func (s *Store) RevokedSignedLinks(ctx context.Context, now time.Time) (out map[string]time.Time, err error) {
	err = s.view(ctx, func(tx *bolt.Tx) error {
		out = map[string]time.Time{}
		return tx.Bucket(bSignedLinks).ForEach(func(id, _ []byte) error {
			l, err := get[share.SignedLink](tx, bSignedLinks, id)
			if err == nil && !l.RevokedAt.IsZero() && now.Before(l.ExpiresAt) {
				out[l.ID] = l.ExpiresAt
			}
			return err
		})
	})
	return out, err
}

// ForgetSignedLinks implements share.Store.
func (s *Store) ForgetSignedLinks(ctx context.Context, ownerID string, at time.Time) (out map[string]time.Time, err error) {
	err = s.update(ctx, func(tx *bolt.Tx) error {
		out = map[string]time.Time{}
		if ownerID == "" {
			return nil
		}
		prefix := append([]byte(ownerID), 0)
		idx := tx.Bucket(bSignedLinksByOwner)
		var keys [][]byte
		c := idx.Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			keys = append(keys, bytes.Clone(k))
		}
		for _, k := range keys {
			id := k[len(prefix)+8:]
			l, err := get[share.SignedLink](tx, bSignedLinks, id)
			if err != nil {
				return err
			}
			l.OwnerID, l.Hex = "", ""
			if l.RevokedAt.IsZero() {
				l.RevokedAt = at
			}
			out[l.ID] = l.ExpiresAt
			if err := put(tx, bSignedLinks, id, l); err != nil {
				return err
			}
			if err := idx.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

// LinkKeys implements share.Store.
func (s *Store) LinkKeys(ctx context.Context, candidate []byte) (keys [][]byte, err error) {
	err = s.update(ctx, func(tx *bolt.Tx) error {
		keys = nil
		b := tx.Bucket(bLinkKeys)
		if k, _ := b.Cursor().First(); k == nil {
			if err := b.Put(binary.BigEndian.AppendUint64(nil, 1), bytes.Clone(candidate)); err != nil {
				return err
			}
		}
		return b.ForEach(func(_, v []byte) error {
			keys = append(keys, bytes.Clone(v))
			return nil
		})
	})
	return keys, err
}
