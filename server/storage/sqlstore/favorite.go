package sqlstore

import (
	"bytes"
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/apiplatform/platform/server/favorite"
	"github.com/apiplatform/platform/server/favorite/color"
	"github.com/apiplatform/platform/server/platform/storeerr"
)

// GetFavorite implements favorite.Store.
func (s *Store) GetFavorite(ctx context.Context, userID string) (f favorite.Favorite, err error) {
	if !isUUID(userID) {
		return f, storeerr.ErrNotFound
	}
	var space string
	err = s.do(ctx, func() error {
		return s.pool.QueryRow(ctx, `
			SELECT user_id, hex, color_space, color_value, updated_at FROM favorites WHERE user_id = $1`,
			userID).Scan(&f.UserID, &f.Hex, &space, &f.Value, &f.UpdatedAt)
	})
	if err != nil {
		return favorite.Favorite{}, mapErr(err)
	}
	f.Space = color.Space(space)
	f.UpdatedAt = f.UpdatedAt.UTC()
	return f, nil
}

const upsertFavorite = `
	INSERT INTO favorites (user_id, hex, color_space, color_value, updated_at)
	VALUES ($1, $2, $3, $4, COALESCE($5, now()))
	ON CONFLICT (user_id) DO UPDATE SET
		hex = excluded.hex, color_space = excluded.color_space,
		color_value = excluded.color_value, updated_at = excluded.updated_at`

func favoriteArgs(f favorite.Favorite) []any {
	return []any{f.UserID, f.Hex, string(f.Space), f.Value, nullTime(f.UpdatedAt)}
}

// SaveFavorite implements favorite.Store. With idem, one transaction reads
// the key's record, then either replays it (fresh, same request), refuses
// (fresh, other request) or writes the favorite and (re)writes the record.
// Concurrent first uses of one key conflict at SERIALIZABLE; the losers
// re-run, find the winner's record and replay it.
func (s *Store) SaveFavorite(ctx context.Context, f favorite.Favorite, idem *storeerr.Idempotency, ttl time.Duration) (replayed []byte, err error) {
	if err := requireUUID("user id", f.UserID); err != nil {
		return nil, err
	}
	if idem == nil {
		return nil, mapErr(s.do(ctx, func() error {
			_, err := s.pool.Exec(ctx, upsertFavorite, favoriteArgs(f)...)
			return err
		}))
	}
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		replayed = nil // a previous run of this closure may have set it
		var reqHash, resp []byte
		var fresh bool
		// Freshness is judged by the database's clock, the one that stamped
		// created_at, so replicas with skewed clocks agree.
		err := tx.QueryRow(ctx, `
			SELECT request_hash, response, created_at > now() - $4::INT8 * INTERVAL '1 microsecond'
			FROM idempotency_keys WHERE user_id = $1 AND scope = $2 AND idem_key = $3`,
			f.UserID, idem.Scope, idem.Key, ttl.Microseconds()).Scan(&reqHash, &resp, &fresh)
		switch {
		case err == nil && fresh:
			if !bytes.Equal(reqHash, idem.RequestHash) {
				return storeerr.ErrIdempotencyMismatch
			}
			if resp == nil {
				resp = []byte{} // non-nil: nil means "not replayed"
			}
			replayed = resp
			return nil
		case err != nil && !errors.Is(err, pgx.ErrNoRows):
			return err
		}
		// Absent or expired: take the key.
		if _, err := tx.Exec(ctx, `
			INSERT INTO idempotency_keys (user_id, scope, idem_key, request_hash, response, created_at)
			VALUES ($1, $2, $3, $4, $5, now())
			ON CONFLICT (user_id, scope, idem_key) DO UPDATE SET
				request_hash = excluded.request_hash, response = excluded.response, created_at = excluded.created_at`,
			f.UserID, idem.Scope, idem.Key, nonNil(idem.RequestHash), nonNil(idem.Response)); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, upsertFavorite, favoriteArgs(f)...)
		return err
	})
	if err != nil {
		return nil, mapErr(err)
	}
	return replayed, nil
}

// nonNil keeps NOT NULL bytea columns happy with empty values.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// DeleteFavorite implements favorite.Store. Both statements are
// idempotent, so a retried call is safe.
func (s *Store) DeleteFavorite(ctx context.Context, userID string) error {
	if !isUUID(userID) {
		return nil
	}
	return mapErr(s.do(ctx, func() error {
		if _, err := s.pool.Exec(ctx, `DELETE FROM idempotency_keys WHERE user_id = $1`, userID); err != nil {
			return err
		}
		_, err := s.pool.Exec(ctx, `DELETE FROM favorites WHERE user_id = $1`, userID)
		return err
	}))
}
