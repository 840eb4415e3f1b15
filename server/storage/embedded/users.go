package embedded

import (
	"context"
	"encoding/json"
	"slices"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/apiplatform/platform/server/identity"
)

// ListUsers implements identity.Store. The one-process store holds few
// accounts: it reads them all and sorts; the SQL engine pages over an index.
func (s *Store) ListUsers(ctx context.Context, prefix string, after *identity.UserCursor, limit int) (out []identity.User, err error) {
	if limit <= 0 {
		return nil, nil
	}
	err = s.view(ctx, func(tx *bolt.Tx) error {
		out = nil
		return tx.Bucket(bUsers).ForEach(func(_, raw []byte) error {
			var u identity.User
			if err := json.Unmarshal(raw, &u); err != nil {
				return err
			}
			if prefix != "" && (u.Username == "" || !strings.HasPrefix(u.Username, prefix)) {
				return nil
			}
			if after != nil && !userAfter(*after, u) {
				return nil
			}
			out = append(out, u)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b identity.User) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
	return out[:min(limit, len(out))], nil
}

// userAfter reports whether u comes after the cursor in newest-first order.
func userAfter(c identity.UserCursor, u identity.User) bool {
	if !u.CreatedAt.Equal(c.CreatedAt) {
		return u.CreatedAt.Before(c.CreatedAt)
	}
	return u.ID < c.ID
}

// DeleteUser implements identity.Store, in one transaction. Sessions and
// keys are not indexed by user: each is a scan.
func (s *Store) DeleteUser(ctx context.Context, id string) error {
	return s.update(ctx, func(tx *bolt.Tx) error {
		u, err := get[identity.User](tx, bUsers, []byte(id))
		if err != nil {
			return err
		}
		if _, err := deleteSessionsWhere(tx, func(sess identity.Session) bool { return sess.UserID == id }); err != nil {
			return err
		}
		var keys []identity.APIKey
		err = tx.Bucket(bAPIKeys).ForEach(func(_, raw []byte) error {
			var k identity.APIKey
			if err := json.Unmarshal(raw, &k); err != nil {
				return err
			}
			if k.UserID == id {
				keys = append(keys, k)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range keys {
			if err := tx.Bucket(bAPIKeyHash).Delete(k.Hash); err != nil {
				return err
			}
			if err := tx.Bucket(bAPIKeys).Delete([]byte(k.ID)); err != nil {
				return err
			}
		}
		if u.Username != "" {
			if err := tx.Bucket(bUsernames).Delete([]byte(u.Username)); err != nil {
				return err
			}
		}
		return tx.Bucket(bUsers).Delete([]byte(id))
	})
}
