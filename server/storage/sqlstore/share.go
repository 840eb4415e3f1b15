package sqlstore

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/apiplatform/platform/server/platform/storeerr"
	"github.com/apiplatform/platform/server/share"
)

const shareColumns = `slug, owner_id, snapshot, COALESCE(hex, ''), created_at, expires_at, revoked_at, hits`

func scanShare(row pgx.Row) (share.Share, error) {
	var sh share.Share
	var expires, revoked *time.Time
	if err := row.Scan(&sh.Slug, &sh.OwnerID, &sh.Snapshot, &sh.Hex, &sh.CreatedAt, &expires, &revoked, &sh.Hits); err != nil {
		return share.Share{}, err
	}
	sh.CreatedAt = sh.CreatedAt.UTC()
	sh.ExpiresAt, sh.RevokedAt = timeOf(expires), timeOf(revoked)
	return sh, nil
}

// CreateShare implements share.Store.
func (s *Store) CreateShare(ctx context.Context, sh share.Share) error {
	if err := requireUUID("owner id", sh.OwnerID); err != nil {
		return err
	}
	return mapErr(s.do(ctx, func() error {
		_, err := s.pool.Exec(ctx, `
			INSERT INTO shares (slug, owner_id, snapshot, hex, created_at, expires_at, revoked_at, hits)
			VALUES ($1, $2, $3, NULLIF($4, ''), COALESCE($5, now()), $6, $7, $8)`,
			sh.Slug, sh.OwnerID, sh.Snapshot, sh.Hex, nullTime(sh.CreatedAt), nullTime(sh.ExpiresAt), nullTime(sh.RevokedAt), sh.Hits)
		return err
	}))
}

// GetShare implements share.Store.
func (s *Store) GetShare(ctx context.Context, slug string) (sh share.Share, err error) {
	err = s.do(ctx, func() (err error) {
		sh, err = scanShare(s.pool.QueryRow(ctx, `SELECT `+shareColumns+` FROM shares`+s.asOf(ctx)+` WHERE slug = $1`, slug))
		return err
	})
	return sh, mapErr(err)
}

// ListShares implements share.Store: a keyset page over the owner index.
func (s *Store) ListShares(ctx context.Context, ownerID string, after *share.Cursor, limit int) (out []share.Share, err error) {
	if !isUUID(ownerID) || limit <= 0 {
		return nil, nil
	}
	query := `SELECT ` + shareColumns + ` FROM shares WHERE owner_id = $1`
	args := []any{ownerID, limit}
	if after != nil {
		query += ` AND (created_at, slug) < ($3::TIMESTAMPTZ, $4::TEXT)`
		args = append(args, after.CreatedAt, after.Slug)
	}
	query += ` ORDER BY created_at DESC, slug DESC LIMIT $2`
	err = s.do(ctx, func() error {
		out = out[:0]
		rows, err := s.pool.Query(ctx, query, args...)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (share.Share, error) { return scanShare(r) })
		return err
	})
	if err != nil {
		return nil, mapErr(err)
	}
	return out, nil
}

// RevokeShare implements share.Store; the first revocation time is kept.
func (s *Store) RevokeShare(ctx context.Context, slug string, at time.Time) error {
	return mapErr(s.do(ctx, func() error {
		tag, err := s.pool.Exec(ctx, `UPDATE shares SET revoked_at = COALESCE(revoked_at, $2) WHERE slug = $1`, slug, at)
		if err == nil && tag.RowsAffected() == 0 {
			return storeerr.ErrNotFound
		}
		return err
	}))
}

// AddHits implements share.Store. The increment happens in the database, so
// concurrent hits add up (a conflict re-runs the whole UPDATE).
func (s *Store) AddHits(ctx context.Context, slug string, n int64) error {
	return mapErr(s.do(ctx, func() error {
		tag, err := s.pool.Exec(ctx, `UPDATE shares SET hits = hits + $2 WHERE slug = $1`, slug, n)
		if err == nil && tag.RowsAffected() == 0 {
			return storeerr.ErrNotFound
		}
		return err
	}))
}

// HasActiveShare implements share.Store.
func (s *Store) HasActiveShare(ctx context.Context, ownerID string, now time.Time) (active bool, err error) {
	if !isUUID(ownerID) {
		return false, nil
	}
	err = s.do(ctx, func() error {
		return s.pool.QueryRow(ctx, `
			SELECT EXISTS (
				SELECT 1 FROM shares
				WHERE owner_id = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2))`,
			ownerID, now).Scan(&active)
	})
	return active, mapErr(err)
}
