package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/apiplatform/platform/server/identity"
	"github.com/apiplatform/platform/server/platform/storeerr"
)

// isUUID tells whether s can be a key of a UUID column. A malformed id can
// name no row: lookups answer ErrNotFound instead of a type error.
func isUUID(s string) bool {
	_, err := uuid.Parse(s)
	return err == nil
}

func requireUUID(what, s string) error {
	if !isUUID(s) {
		return fmt.Errorf("sqlstore: %s %q is not a UUID", what, s)
	}
	return nil
}

// nullTime stores the zero time as NULL ("never", "not set").
func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

// timeOf reads a nullable timestamp back, UTC like everything the store
// returns.
func timeOf(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

const userColumns = `u.id, COALESCE(u.username, ''), u.guest, u.role, COALESCE(u.password_hash, ''), u.created_at, u.suspended`

func scanUser(row pgx.Row, extra ...any) (identity.User, error) {
	var u identity.User
	var role string
	dest := append([]any{&u.ID, &u.Username, &u.Guest, &role, &u.PasswordHash, &u.CreatedAt, &u.Suspended}, extra...)
	if err := row.Scan(dest...); err != nil {
		return identity.User{}, err
	}
	u.Role = identity.Role(role)
	u.CreatedAt = u.CreatedAt.UTC()
	return u, nil
}

// CreateUser implements identity.Store.
func (s *Store) CreateUser(ctx context.Context, u identity.User) error {
	if err := requireUUID("user id", u.ID); err != nil {
		return err
	}
	return mapErr(s.do(ctx, func() error {
		_, err := s.pool.Exec(ctx, `
			INSERT INTO users (id, username, guest, role, password_hash, created_at)
			VALUES ($1, NULLIF($2, ''), $3, $4, NULLIF($5, ''), COALESCE($6, now()))`,
			u.ID, u.Username, u.Guest, string(u.Role), u.PasswordHash, nullTime(u.CreatedAt))
		return err
	}))
}

// GetUser implements identity.Store.
func (s *Store) GetUser(ctx context.Context, id string) (u identity.User, err error) {
	if !isUUID(id) {
		return u, storeerr.ErrNotFound
	}
	err = s.do(ctx, func() (err error) {
		u, err = scanUser(s.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users u WHERE u.id = $1`, id))
		return err
	})
	return u, mapErr(err)
}

// GetUserByUsername implements identity.Store.
func (s *Store) GetUserByUsername(ctx context.Context, username string) (u identity.User, err error) {
	if username == "" {
		return u, storeerr.ErrNotFound
	}
	err = s.do(ctx, func() (err error) {
		u, err = scanUser(s.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users u WHERE u.username = $1`, username))
		return err
	})
	return u, mapErr(err)
}

// UpdateUser implements identity.Store.
func (s *Store) UpdateUser(ctx context.Context, u identity.User) error {
	if !isUUID(u.ID) {
		return storeerr.ErrNotFound
	}
	return mapErr(s.do(ctx, func() error {
		tag, err := s.pool.Exec(ctx, `
			UPDATE users SET username = NULLIF($2, ''), guest = $3, role = $4, password_hash = NULLIF($5, ''), suspended = $6
			WHERE id = $1`,
			u.ID, u.Username, u.Guest, string(u.Role), u.PasswordHash, u.Suspended)
		if err == nil && tag.RowsAffected() == 0 {
			return storeerr.ErrNotFound
		}
		return err
	}))
}

const sessionColumns = `s.id, s.user_id, s.access_hash, s.refresh_hash, s.access_expires_at, s.refresh_expires_at, s.created_at, COALESCE(s.family_id, s.id)`

func sessionDest(sess *identity.Session) []any {
	return []any{&sess.ID, &sess.UserID, &sess.AccessHash, &sess.RefreshHash, &sess.AccessExpiresAt, &sess.RefreshExpiresAt, &sess.CreatedAt, &sess.FamilyID}
}

func utcSession(sess *identity.Session) {
	sess.AccessExpiresAt = sess.AccessExpiresAt.UTC()
	sess.RefreshExpiresAt = sess.RefreshExpiresAt.UTC()
	sess.CreatedAt = sess.CreatedAt.UTC()
}

// execer is a pool or a transaction.
type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

func insertSession(ctx context.Context, q execer, sess identity.Session) error {
	_, err := q.Exec(ctx, `
		INSERT INTO sessions (id, user_id, access_hash, refresh_hash, access_expires_at, refresh_expires_at, created_at, family_id)
		VALUES ($1, $2, $3, $4, $5, $6, COALESCE($7, now()), $8)`,
		sess.ID, sess.UserID, sess.AccessHash, sess.RefreshHash, sess.AccessExpiresAt, sess.RefreshExpiresAt, nullTime(sess.CreatedAt), familyOf(sess))
	return err
}

func validSession(sess identity.Session) error {
	if err := requireUUID("session id", sess.ID); err != nil {
		return err
	}
	if err := requireUUID("user id", sess.UserID); err != nil {
		return err
	}
	if sess.FamilyID != "" {
		if err := requireUUID("session family", sess.FamilyID); err != nil {
			return err
		}
	}
	if len(sess.AccessHash) == 0 || len(sess.RefreshHash) == 0 {
		return fmt.Errorf("sqlstore: session %s has an empty token hash", sess.ID)
	}
	return nil
}

// CreateSession implements identity.Store.
func (s *Store) CreateSession(ctx context.Context, sess identity.Session) error {
	if err := validSession(sess); err != nil {
		return err
	}
	return mapErr(s.do(ctx, func() error { return insertSession(ctx, s.pool, sess) }))
}

// SessionByAccessHash implements identity.Store.
func (s *Store) SessionByAccessHash(ctx context.Context, accessHash []byte) (sess identity.Session, u identity.User, err error) {
	err = s.do(ctx, func() (err error) {
		row := s.pool.QueryRow(ctx, `
			SELECT `+userColumns+`, `+sessionColumns+`
			FROM sessions s JOIN users u ON u.id = s.user_id
			WHERE s.access_hash = $1 AND s.revoked_at IS NULL`, accessHash)
		u, err = scanUser(row, sessionDest(&sess)...)
		return err
	})
	if err != nil {
		return identity.Session{}, identity.User{}, mapErr(err)
	}
	utcSession(&sess)
	return sess, u, nil
}

// SessionByRefreshHash implements identity.Store.
func (s *Store) SessionByRefreshHash(ctx context.Context, refreshHash []byte) (sess identity.Session, err error) {
	err = s.do(ctx, func() error {
		return s.pool.QueryRow(ctx, `
			SELECT `+sessionColumns+` FROM sessions s
			WHERE s.refresh_hash = $1 AND s.revoked_at IS NULL`, refreshHash).Scan(sessionDest(&sess)...)
	})
	if err != nil {
		return identity.Session{}, mapErr(err)
	}
	utcSession(&sess)
	return sess, nil
}

const revokeSession = `UPDATE sessions SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL`

// RotateSession implements identity.Store. The revocation is a
// check-and-set on revoked_at: of concurrent rotations of one session, the
// first to commit wins; the others conflict, re-run, find it revoked and
// answer ErrNotFound.
func (s *Store) RotateSession(ctx context.Context, oldID string, next identity.Session) error {
	if !isUUID(oldID) {
		return storeerr.ErrNotFound
	}
	if err := validSession(next); err != nil {
		return err
	}
	return mapErr(s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, revokeSession, oldID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return storeerr.ErrNotFound
		}
		return insertSession(ctx, tx, next)
	}))
}

// DeleteSession implements identity.Store.
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	if !isUUID(id) {
		return storeerr.ErrNotFound
	}
	return mapErr(s.do(ctx, func() error {
		tag, err := s.pool.Exec(ctx, revokeSession, id)
		if err == nil && tag.RowsAffected() == 0 {
			return storeerr.ErrNotFound
		}
		return err
	}))
}

// DeleteUserSessions implements identity.Store.
func (s *Store) DeleteUserSessions(ctx context.Context, userID string) error {
	if !isUUID(userID) {
		return nil // no such user, so no session to revoke
	}
	return mapErr(s.do(ctx, func() error {
		_, err := s.pool.Exec(ctx, `UPDATE sessions SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL`, userID)
		return err
	}))
}

// familyOf is a session's family; a login is its own.
func familyOf(sess identity.Session) string {
	if sess.FamilyID == "" {
		return sess.ID
	}
	return sess.FamilyID
}

// RevokeFamily implements identity.Store: only a refresh token that is no
// longer live (used or revoked) names a family here.
func (s *Store) RevokeFamily(ctx context.Context, refreshHash []byte) (ids []string, err error) {
	err = s.do(ctx, func() error {
		ids = ids[:0]
		rows, err := s.pool.Query(ctx, `
			UPDATE sessions SET revoked_at = now()
			WHERE family_id = (SELECT COALESCE(family_id, id) FROM sessions WHERE refresh_hash = $1 AND revoked_at IS NOT NULL)
			  AND revoked_at IS NULL
			RETURNING id`, refreshHash)
		if err != nil {
			return err
		}
		ids, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	return ids, mapErr(err)
}
