package identity

import (
	"context"
	"time"
)

// Role of a user.
type Role string

const (
	RoleUser  Role = "user"
	RoleAdmin Role = "admin"
)

// User as stored. Username is kept in canonical (lower-case) form.
type User struct {
	ID           string
	Username     string // empty for guests
	Guest        bool
	Role         Role
	PasswordHash string // PHC-encoded argon2id; empty for guests
	CreatedAt    time.Time
	// Suspended accounts cannot log in; their sessions and keys are refused.
	Suspended bool
}

// UserCursor names the last user of a ListUsers page.
type UserCursor struct {
	CreatedAt time.Time
	ID        string
}

// Session is one login. Tokens are never stored, only their SHA-256.
type Session struct {
	ID               string
	UserID           string
	AccessHash       []byte
	RefreshHash      []byte
	AccessExpiresAt  time.Time
	RefreshExpiresAt time.Time
	CreatedAt        time.Time
	// FamilyID is the id of the login this session was refreshed from
	// (its own id for a login): refresh-token reuse revokes the family.
	FamilyID string
}

// Store keeps users and sessions. Implementations return storage.ErrNotFound
// and storage.ErrConflict (username taken, duplicate id).
type Store interface {
	CreateUser(ctx context.Context, u User) error
	GetUser(ctx context.Context, id string) (User, error)
	GetUserByUsername(ctx context.Context, username string) (User, error)
	// UpdateUser replaces username, guest, role, password hash and
	// suspension of an existing user (ErrNotFound otherwise; ErrConflict if
	// the username is taken by someone else).
	UpdateUser(ctx context.Context, u User) error
	// DeleteUser removes a user with its sessions and API keys, freeing
	// the username (ErrNotFound when there is no such user). The caller
	// ends cached sessions and removes the data other services keep.
	DeleteUser(ctx context.Context, id string) error
	// ListUsers returns up to limit users newest first (created_at, then id,
	// descending), after the cursor when it is not nil; a non-empty prefix
	// keeps the users whose username starts with it (guests have none).
	ListUsers(ctx context.Context, prefix string, after *UserCursor, limit int) ([]User, error)

	CreateSession(ctx context.Context, s Session) error
	// SessionByAccessHash returns a live (not revoked) session and its user.
	SessionByAccessHash(ctx context.Context, accessHash []byte) (Session, User, error)
	// SessionByRefreshHash returns a live session.
	SessionByRefreshHash(ctx context.Context, refreshHash []byte) (Session, error)
	// RotateSession revokes oldID and creates next atomically; ErrNotFound
	// when oldID is no longer live (so a refresh token works only once).
	RotateSession(ctx context.Context, oldID string, next Session) error
	// DeleteSession revokes one session (ErrNotFound if it is not live).
	DeleteSession(ctx context.Context, id string) error
	// DeleteUserSessions revokes every session of a user.
	DeleteUserSessions(ctx context.Context, userID string) error
	// RevokeFamily revokes every live session of the family of the session
	// whose refresh token hashes to refreshHash, when that token is no
	// longer live (already rotated or revoked), and returns the ids it
	// revoked: none for an unknown or still live token.
	RevokeFamily(ctx context.Context, refreshHash []byte) ([]string, error)

	// CreateAPIKey stores a key (ErrConflict on a duplicate id or hash).
	CreateAPIKey(ctx context.Context, k APIKey) error
	// APIKeyByHash returns a live (not revoked) key and its user.
	APIKeyByHash(ctx context.Context, hash []byte) (APIKey, User, error)
	// ListAPIKeys returns a user's live keys, newest first.
	ListAPIKeys(ctx context.Context, userID string) ([]APIKey, error)
	// RevokeAPIKey revokes a live key of userID (of anyone when userID is
	// empty); ErrNotFound when there is none.
	RevokeAPIKey(ctx context.Context, userID, id string) error
	// TouchAPIKey records that a key was used at t.
	TouchAPIKey(ctx context.Context, id string, t time.Time) error
}

// APIKey is a backend client's credential. Only the SHA-256 of the secret
// is stored.
type APIKey struct {
	ID     string
	UserID string
	Name   string
	// Prefix is the start of the secret, shown to recognise the key.
	Prefix string
	Hash   []byte
	Scopes []string
	// ExpiresAt is zero for a key that does not expire; LastUsedAt is zero
	// until first use.
	ExpiresAt  time.Time
	CreatedAt  time.Time
	LastUsedAt time.Time
}
