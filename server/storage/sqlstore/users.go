package sqlstore

import (
	"context"

	"github.com/apiplatform/platform/server/identity"
	"github.com/apiplatform/platform/server/platform/storeerr"
)

// listUsers walks users_list_idx; the prefix is compared with substr, not
// LIKE, so '_' in a username prefix matches only itself.
const listUsers = `
	SELECT ` + userColumns + ` FROM users u
	WHERE ($1 = '' OR substr(u.username, 1, length($1)) = $1)
	  AND ($3::TIMESTAMPTZ IS NULL OR (u.created_at, u.id) < ($3::TIMESTAMPTZ, $4::UUID))
	ORDER BY u.created_at DESC, u.id DESC
	LIMIT $2`

// ListUsers implements identity.Store.
func (s *Store) ListUsers(ctx context.Context, prefix string, after *identity.UserCursor, limit int) (out []identity.User, err error) {
	if limit <= 0 {
		return nil, nil
	}
	var at, id any
	if after != nil {
		if !isUUID(after.ID) {
			return nil, nil
		}
		at, id = after.CreatedAt, after.ID
	}
	err = s.do(ctx, func() error {
		out = nil
		rows, err := s.pool.Query(ctx, listUsers, prefix, limit, at, id)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			u, err := scanUser(rows)
			if err != nil {
				return err
			}
			out = append(out, u)
		}
		return rows.Err()
	})
	return out, mapErr(err)
}

// DeleteUser implements identity.Store: sessions and api_keys go with the
// row (ON DELETE CASCADE).
func (s *Store) DeleteUser(ctx context.Context, id string) error {
	if !isUUID(id) {
		return storeerr.ErrNotFound
	}
	return mapErr(s.do(ctx, func() error {
		tag, err := s.pool.Exec(ctx, `DELETE FROM users WHERE id = $1`, id)
		if err == nil && tag.RowsAffected() == 0 {
			return storeerr.ErrNotFound
		}
		return err
	}))
}
