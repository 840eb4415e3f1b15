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

	SignedLinkStore
}

// SignedLink as stored: the owner's record of a signed share link. A view
// does not read it (the token carries what the page shows); revocation,
// single use, listing and account deletion do.
type SignedLink struct {
	ID        string
	OwnerID   string // empty once the owner's account is forgotten
	Hex       string // empty once forgotten
	SingleUse bool
	CreatedAt time.Time
	ExpiresAt time.Time // always set: signed links always expire
	RevokedAt time.Time // zero: not revoked
	UsedAt    time.Time // zero: not used (single-use links only)
}

// SignedLinkStore keeps signed share links and the key ring that signs
// them. Store includes it.
type SignedLinkStore interface {
	// CreateSignedLink returns storage.ErrConflict when the id exists.
	CreateSignedLink(ctx context.Context, l SignedLink) error
	// GetSignedLink returns the link whatever its state (ErrNotFound if
	// unknown).
	GetSignedLink(ctx context.Context, id string) (SignedLink, error)
	// ListSignedLinks returns up to limit links of owner ordered by
	// (CreatedAt, ID) descending, strictly after the cursor when one is
	// given (Cursor.Slug holds the id).
	ListSignedLinks(ctx context.Context, ownerID string, after *Cursor, limit int) ([]SignedLink, error)
	// RevokeSignedLink marks a link revoked at the given time (idempotent;
	// the first time is kept; ErrNotFound if unknown).
	RevokeSignedLink(ctx context.Context, id string, at time.Time) error
	// UseSignedLink marks a single-use link used at the given time, in one
	// atomic conditional write, and reports whether this call did: false
	// when it was used, revoked or expired already (or is unknown), so two
	// views racing on two replicas cannot both see the page.
	UseSignedLink(ctx context.Context, id string, at time.Time) (bool, error)
	// RevokedSignedLinks returns the ids of the links revoked (forgotten
	// ones included) that expire after now, with their expiry: what a
	// replica must refuse although their tokens verify.
	RevokedSignedLinks(ctx context.Context, now time.Time) (map[string]time.Time, error)
	// ForgetSignedLinks revokes every link of owner and clears its owner
	// and colour, and returns the ids it revoked with their expiry. The
	// rows stay, anonymous, so that their still validly signed tokens are
	// refused until they expire. Idempotent.
	ForgetSignedLinks(ctx context.Context, ownerID string, at time.Time) (map[string]time.Time, error)
	// LinkKeys returns the stored signing key ring, first storing
	// candidate as its only key when there is none: replicas starting
	// together each propose one and all get the one that was stored first.
	LinkKeys(ctx context.Context, candidate []byte) ([][]byte, error)
}
