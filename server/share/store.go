package share

import (
	"context"
	"time"
)

// Share as stored.
type Share struct {
	Slug      string
	OwnerID   string
	Snapshot  bool
	Hex       string // frozen colour of a snapshot share; empty for live ones
	CreatedAt time.Time
	ExpiresAt time.Time // zero: never
	RevokedAt time.Time // zero: not revoked
	Hits      int64
}

// Cursor positions a listing after a share (newest first order).
type Cursor struct {
	CreatedAt time.Time
	Slug      string
}

// Store keeps share links.
type Store interface {
	// CreateShare returns storage.ErrConflict when the slug exists.
	CreateShare(ctx context.Context, s Share) error
	// GetShare returns the share whatever its state (storage.ErrNotFound if
	// unknown); callers decide what revoked or expired means.
	GetShare(ctx context.Context, slug string) (Share, error)
	// ListShares returns up to limit shares of owner ordered by (CreatedAt,
	// Slug) descending, strictly after the cursor when one is given.
	ListShares(ctx context.Context, ownerID string, after *Cursor, limit int) ([]Share, error)
	// RevokeShare marks a share revoked at the given time (idempotent).
	RevokeShare(ctx context.Context, slug string, at time.Time) error
	// AddHits adds n to a share's hit counter.
	AddHits(ctx context.Context, slug string, n int64) error
	// HasActiveShare tells whether owner has a share neither revoked nor
	// expired at now.
	HasActiveShare(ctx context.Context, ownerID string, now time.Time) (bool, error)
}
