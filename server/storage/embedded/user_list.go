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
