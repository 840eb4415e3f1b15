package sqlstore

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/apiplatform/platform/server/platform/storeerr"
	"github.com/apiplatform/platform/server/share"
)

const signedLinkColumns = `id, COALESCE(owner_id::TEXT, ''), COALESCE(hex, ''), single_use, created_at, expires_at, revoked_at, used_at`

func scanSignedLink(row pgx.Row) (share.SignedLink, error) {
	var l share.SignedLink
	var revoked, used *time.Time
	if err := row.Scan(&l.ID, &l.OwnerID, &l.Hex, &l.SingleUse, &l.CreatedAt, &l.ExpiresAt, &revoked, &used); err != nil {
		return share.SignedLink{}, err
	}
	l.CreatedAt, l.ExpiresAt = l.CreatedAt.UTC(), l.ExpiresAt.UTC()
	l.RevokedAt, l.UsedAt = timeOf(revoked), timeOf(used)
	return l, nil
}

// CreateSignedLink implements share.Store.
func (s *Store) CreateSignedLink(ctx context.Context, l share.SignedLink) error {
	if err := requireUUID("owner id", l.OwnerID); err != nil {
		return err
	}
	return mapErr(s.do(ctx, func() error {
		_, err := s.pool.Exec(ctx, `
			INSERT INTO share_signed_links (id, owner_id, hex, single_use, created_at, expires_at, revoked_at, used_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			l.ID, l.OwnerID, l.Hex, l.SingleUse, l.CreatedAt, l.ExpiresAt, nullTime(l.RevokedAt), nullTime(l.UsedAt))
		return err
	}))
}

// GetSignedLink implements share.Store.
func (s *Store) GetSignedLink(ctx context.Context, id string) (l share.SignedLink, err error) {
	err = s.do(ctx, func() (err error) {
		l, err = scanSignedLink(s.pool.QueryRow(ctx, `SELECT `+signedLinkColumns+` FROM share_signed_links WHERE id = $1`, id))
		return err
	})
	return l, mapErr(err)
}

// ListSignedLinks implements share.Store: a keyset page over the owner key.
func (s *Store) ListSignedLinks(ctx context.Context, ownerID string, after *share.Cursor, limit int) (out []share.SignedLink, err error) {
	if !isUUID(ownerID) || limit <= 0 {
		return nil, nil
	}
	query := `SELECT ` + signedLinkColumns + ` FROM share_signed_links WHERE owner_id = $1`
	args := []any{ownerID, limit}
	if after != nil {
		query += ` AND (created_at, id) < ($3::TIMESTAMPTZ, $4::TEXT)`
		args = append(args, after.CreatedAt, after.Slug)
	}
	query += ` ORDER BY created_at DESC, id DESC LIMIT $2`
	err = s.do(ctx, func() error {
		rows, err := s.pool.Query(ctx, query, args...)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (share.SignedLink, error) { return scanSignedLink(r) })
		return err
	})
	if err != nil {
		return nil, mapErr(err)
	}
	return out, nil
}

// RevokeSignedLink implements share.Store; the first revocation time is kept.
func (s *Store) RevokeSignedLink(ctx context.Context, id string, at time.Time) error {
	return mapErr(s.do(ctx, func() error {
		tag, err := s.pool.Exec(ctx, `UPDATE share_signed_links SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1`, id, at)
		if err == nil && tag.RowsAffected() == 0 {
			return storeerr.ErrNotFound
		}
		return err
	}))
}

// UseSignedLink implements share.Store: one conditional UPDATE, so of two
// views racing on two replicas only one matches the row.
func (s *Store) UseSignedLink(ctx context.Context, id string, at time.Time) (used bool, err error) {
	err = s.do(ctx, func() error {
		tag, err := s.pool.Exec(ctx, `
			UPDATE share_signed_links SET used_at = $2
			WHERE id = $1 AND single_use AND used_at IS NULL AND revoked_at IS NULL AND expires_at > $2`, id, at)
		used = err == nil && tag.RowsAffected() == 1
		return err
	})
	return used, mapErr(err)
}

// RevokedSignedLinks implements share.Store. It scans the table: it runs
// when a replica starts or has lost track of revocations, not per view, and
// the table holds links of at most the longest lifetime.
func (s *Store) RevokedSignedLinks(ctx context.Context, now time.Time) (out map[string]time.Time, err error) {
	err = s.do(ctx, func() error {
		out = map[string]time.Time{}
		rows, err := s.pool.Query(ctx, `SELECT id, expires_at FROM share_signed_links WHERE revoked_at IS NOT NULL AND expires_at > $1`, now)
		if err != nil {
			return err
		}
		var id string
		var exp time.Time
		_, err = pgx.ForEachRow(rows, []any{&id, &exp}, func() error {
			out[id] = exp.UTC()
			return nil
		})
		return err
	})
	if err != nil {
		return nil, mapErr(err)
	}
	return out, nil
}

// ForgetSignedLinks implements share.Store.
func (s *Store) ForgetSignedLinks(ctx context.Context, ownerID string, at time.Time) (out map[string]time.Time, err error) {
	if !isUUID(ownerID) {
		return map[string]time.Time{}, nil
	}
	err = s.do(ctx, func() error {
		out = map[string]time.Time{}
		rows, err := s.pool.Query(ctx, `
			UPDATE share_signed_links SET owner_id = NULL, hex = NULL, revoked_at = COALESCE(revoked_at, $2)
			WHERE owner_id = $1 RETURNING id, expires_at`, ownerID, at)
		if err != nil {
			return err
		}
		var id string
		var exp time.Time
		_, err = pgx.ForEachRow(rows, []any{&id, &exp}, func() error {
			out[id] = exp.UTC()
			return nil
		})
		return err
	})
	if err != nil {
		return nil, mapErr(err)
	}
	return out, nil
}

// LinkKeys implements share.Store: insert-if-absent on a fixed id, then
// read back, so concurrent first starts agree on one key.
func (s *Store) LinkKeys(ctx context.Context, candidate []byte) (keys [][]byte, err error) {
	err = s.do(ctx, func() error {
		if _, err := s.pool.Exec(ctx, `INSERT INTO share_link_keys (id, secret) VALUES (1, $1) ON CONFLICT (id) DO NOTHING`, candidate); err != nil {
			return err
		}
		rows, err := s.pool.Query(ctx, `SELECT secret FROM share_link_keys ORDER BY id`)
		if err != nil {
			return err
		}
		keys, err = pgx.CollectRows(rows, pgx.RowTo[[]byte])
		return err
	})
	return keys, mapErr(err)
}
