package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/apiplatform/platform/server/canvas"
	"github.com/apiplatform/platform/server/platform/storeerr"
)

// CanvasMeta implements canvas.Store. The first server to start writes the
// row; every other one reads it, whoever won the race.
func (s *Store) CanvasMeta(ctx context.Context, want canvas.Meta) (m canvas.Meta, err error) {
	if err := requireUUID("canvas id", want.ID); err != nil {
		return m, err
	}
	err = s.do(ctx, func() error {
		if _, err := s.pool.Exec(ctx, `
			INSERT INTO canvas_meta (id, width, height, created_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (singleton) DO NOTHING`, want.ID, want.Width, want.Height, want.CreatedAt); err != nil {
			return err
		}
		return s.pool.QueryRow(ctx, `SELECT id::TEXT, width, height, created_at FROM canvas_meta`).
			Scan(&m.ID, &m.Width, &m.Height, &m.CreatedAt)
	})
	m.CreatedAt = m.CreatedAt.UTC()
	return m, mapErr(err)
}

// AppendPlacements implements canvas.Store: one statement for the whole
// batch, arrays unnested into rows.
func (s *Store) AppendPlacements(ctx context.Context, ps []canvas.Placement) error {
	if len(ps) == 0 {
		return nil
	}
	seqs := make([]int64, len(ps))
	xs, ys, colors := make([]int32, len(ps)), make([]int32, len(ps)), make([]int16, len(ps))
	users, times := make([]string, len(ps)), make([]time.Time, len(ps))
	for i, p := range ps {
		if err := requireUUID("user id", p.UserID); err != nil {
			return err
		}
		seqs[i], xs[i], ys[i], colors[i], users[i], times[i] = p.Seq, p.X, p.Y, int16(p.Color), p.UserID, p.PlacedAt
	}
	var taken int
	err := mapErr(s.do(ctx, func() error {
		if _, err := s.pool.Exec(ctx, `
			INSERT INTO canvas_placements (seq, x, y, color, user_id, placed_at)
			SELECT * FROM unnest($1::INT8[], $2::INT4[], $3::INT4[], $4::INT2[], $5::UUID[], $6::TIMESTAMPTZ[])
			ON CONFLICT (seq) DO NOTHING`, seqs, xs, ys, colors, users, times); err != nil {
			return err
		}
		// Read after the insert committed, so a row another replica wrote
		// meanwhile is seen: every seq now holds ours or someone else's. A
		// row whose author was forgotten since (ForgetAuthor) is still ours.
		return s.pool.QueryRow(ctx, `
			SELECT count(*) FROM unnest($1::INT8[], $2::INT4[], $3::INT4[], $4::INT2[], $5::UUID[]) AS n(seq, x, y, color, user_id)
			JOIN canvas_placements p ON p.seq = n.seq
			WHERE (p.x, p.y, p.color) IS DISTINCT FROM (n.x, n.y, n.color)
			   OR (p.user_id <> n.user_id AND p.user_id <> $6::UUID)`,
			seqs, xs, ys, colors, users, canvas.NoAuthor).Scan(&taken)
	}))
	if err == nil && taken > 0 {
		err = fmt.Errorf("%w: %d of %d", canvas.ErrSeqTaken, taken, len(ps))
	}
	return err
}

const placementColumns = `seq, x, y, color, user_id::TEXT, placed_at`

func scanPlacement(row pgx.CollectableRow) (canvas.Placement, error) {
	var p canvas.Placement
	var color int16
	err := row.Scan(&p.Seq, &p.X, &p.Y, &color, &p.UserID, &p.PlacedAt)
	p.Color, p.PlacedAt = int32(color), p.PlacedAt.UTC()
	return p, err
}

// PixelHistory implements canvas.Store: a keyset page over the pixel index.
func (s *Store) PixelHistory(ctx context.Context, x, y int32, beforeSeq int64, limit int) (out []canvas.Placement, err error) {
	if limit <= 0 {
		return nil, nil
	}
	query := `SELECT ` + placementColumns + ` FROM canvas_placements WHERE x = $1 AND y = $2`
	args := []any{x, y, limit}
	if beforeSeq > 0 {
		query += ` AND seq < $4`
		args = append(args, beforeSeq)
	}
	query += ` ORDER BY seq DESC LIMIT $3`
	err = s.do(ctx, func() error {
		rows, err := s.pool.Query(ctx, query, args...)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, scanPlacement)
		return err
	})
	return out, mapErr(err)
}

// LatestPixels implements canvas.Store, streaming the rows rather than
// holding them all.
func (s *Store) LatestPixels(ctx context.Context, fn func(canvas.Placement) error) error {
	return mapErr(s.do(ctx, func() error {
		rows, err := s.pool.Query(ctx, `
			SELECT DISTINCT ON (x, y) `+placementColumns+`
			FROM canvas_placements ORDER BY x, y, seq DESC`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			p, err := scanPlacement(rows)
			if err != nil {
				return err
			}
			if err := fn(p); err != nil {
				return fmt.Errorf("canvas: %w", err)
			}
		}
		return rows.Err()
	}))
}

// BanUser implements canvas.Store.
func (s *Store) BanUser(ctx context.Context, b canvas.Ban) error {
	if err := requireUUID("user id", b.UserID); err != nil {
		return err
	}
	if err := requireUUID("admin id", b.BannedBy); err != nil {
		return err
	}
	return mapErr(s.do(ctx, func() error {
		_, err := s.pool.Exec(ctx, `
			INSERT INTO canvas_bans (user_id, banned_by, reason, banned_at, expires_at) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (user_id) DO UPDATE SET banned_by = excluded.banned_by, reason = excluded.reason,
				banned_at = excluded.banned_at, expires_at = excluded.expires_at`,
			b.UserID, b.BannedBy, b.Reason, b.BannedAt, nullTime(b.ExpiresAt))
		return err
	}))
}

// UnbanUser implements canvas.Store.
func (s *Store) UnbanUser(ctx context.Context, userID string) error {
	if !isUUID(userID) {
		return storeerr.ErrNotFound
	}
	return mapErr(s.do(ctx, func() error {
		tag, err := s.pool.Exec(ctx, `DELETE FROM canvas_bans WHERE user_id = $1`, userID)
		if err == nil && tag.RowsAffected() == 0 {
			return storeerr.ErrNotFound
		}
		return err
	}))
}

// IsBanned implements canvas.Store.
func (s *Store) IsBanned(ctx context.Context, userID string, now time.Time) (banned bool, err error) {
	if !isUUID(userID) {
		return false, nil
	}
	err = s.do(ctx, func() error {
		return s.pool.QueryRow(ctx, `
			SELECT EXISTS (SELECT 1 FROM canvas_bans WHERE user_id = $1 AND (expires_at IS NULL OR expires_at > $2))`,
			userID, now).Scan(&banned)
	})
	return banned, mapErr(err)
}

// ForgetAuthor implements canvas.Store, over canvas_placements_user_idx.
// Both statements are idempotent, so a retried call is safe.
func (s *Store) ForgetAuthor(ctx context.Context, userID string) error {
	if !isUUID(userID) || userID == canvas.NoAuthor {
		return nil
	}
	return mapErr(s.do(ctx, func() error {
		if _, err := s.pool.Exec(ctx, `UPDATE canvas_placements SET user_id = $2 WHERE user_id = $1`, userID, canvas.NoAuthor); err != nil {
			return err
		}
		_, err := s.pool.Exec(ctx, `DELETE FROM canvas_bans WHERE user_id = $1`, userID)
		return err
	}))
}
