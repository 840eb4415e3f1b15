package sqlstore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/apiplatform/platform/server/identity"
	"github.com/apiplatform/platform/server/platform/storeerr"
)

const apiKeyColumns = `k.id, k.user_id, k.name, k.prefix, k.key_hash, k.scopes, k.expires_at, k.created_at, k.last_used_at`

func scanAPIKey(row pgx.Row, extra ...any) (identity.APIKey, error) {
	var k identity.APIKey
	var scopes string
	var expires, used *time.Time
	dest := append([]any{&k.ID, &k.UserID, &k.Name, &k.Prefix, &k.Hash, &scopes, &expires, &k.CreatedAt, &used}, extra...)
	if err := row.Scan(dest...); err != nil {
		return identity.APIKey{}, err
	}
	k.Scopes = strings.Fields(scopes)
	k.ExpiresAt, k.LastUsedAt, k.CreatedAt = timeOf(expires), timeOf(used), k.CreatedAt.UTC()
	return k, nil
}

// CreateAPIKey implements identity.Store.
func (s *Store) CreateAPIKey(ctx context.Context, k identity.APIKey) error {
	if err := requireUUID("api key id", k.ID); err != nil {
		return err
	}
	if err := requireUUID("user id", k.UserID); err != nil {
		return err
	}
	if len(k.Hash) == 0 {
		return fmt.Errorf("sqlstore: api key %s has an empty hash", k.ID)
	}
	return mapErr(s.do(ctx, func() error {
		_, err := s.pool.Exec(ctx, `
			INSERT INTO api_keys (id, user_id, name, prefix, key_hash, scopes, expires_at, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, COALESCE($8, now()))`,
			k.ID, k.UserID, k.Name, k.Prefix, k.Hash, strings.Join(k.Scopes, " "), nullTime(k.ExpiresAt), nullTime(k.CreatedAt))
		return err
	}))
}

// APIKeyByHash implements identity.Store.
func (s *Store) APIKeyByHash(ctx context.Context, hash []byte) (k identity.APIKey, u identity.User, err error) {
	err = s.do(ctx, func() error {
		var uerr error
		row := s.pool.QueryRow(ctx, `
			SELECT `+userColumns+`, `+apiKeyColumns+`
			FROM api_keys k JOIN users u ON u.id = k.user_id
			WHERE k.key_hash = $1 AND k.revoked_at IS NULL`, hash)
		var scopes string
		var expires, used *time.Time
		u, uerr = scanUser(row, &k.ID, &k.UserID, &k.Name, &k.Prefix, &k.Hash, &scopes, &expires, &k.CreatedAt, &used)
		k.Scopes = strings.Fields(scopes)
		k.ExpiresAt, k.LastUsedAt, k.CreatedAt = timeOf(expires), timeOf(used), k.CreatedAt.UTC()
		return uerr
	})
	if err != nil {
		return identity.APIKey{}, identity.User{}, mapErr(err)
	}
	return k, u, nil
}

// ListAPIKeys implements identity.Store.
func (s *Store) ListAPIKeys(ctx context.Context, userID string) (keys []identity.APIKey, err error) {
	if !isUUID(userID) {
		return nil, nil
	}
	err = s.do(ctx, func() error {
		keys = nil
		rows, err := s.pool.Query(ctx, `
			SELECT `+apiKeyColumns+` FROM api_keys k
			WHERE k.user_id = $1 AND k.revoked_at IS NULL
			ORDER BY k.created_at DESC, k.id`, userID)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			k, err := scanAPIKey(rows)
			if err != nil {
				return err
			}
			keys = append(keys, k)
		}
		return rows.Err()
	})
	return keys, mapErr(err)
}

// RevokeAPIKey implements identity.Store.
func (s *Store) RevokeAPIKey(ctx context.Context, userID, id string) error {
	if !isUUID(id) || (userID != "" && !isUUID(userID)) {
		return storeerr.ErrNotFound
	}
	return mapErr(s.do(ctx, func() error {
		tag, err := s.pool.Exec(ctx, `
			UPDATE api_keys SET revoked_at = now()
			WHERE id = $1 AND ($2 = '' OR user_id::TEXT = $2) AND revoked_at IS NULL`, id, userID)
		if err == nil && tag.RowsAffected() == 0 {
			return storeerr.ErrNotFound
		}
		return err
	}))
}

// TouchAPIKey implements identity.Store.
func (s *Store) TouchAPIKey(ctx context.Context, id string, t time.Time) error {
	if !isUUID(id) {
		return nil
	}
	return mapErr(s.do(ctx, func() error {
		_, err := s.pool.Exec(ctx, `UPDATE api_keys SET last_used_at = $2 WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $2)`, id, t)
		return err
	}))
}
