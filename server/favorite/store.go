package favorite

import (
	"context"
	"time"

	"github.com/apiplatform/platform/server/favorite/color"
	"github.com/apiplatform/platform/server/platform/storeerr"
)

// Favorite as stored.
type Favorite struct {
	UserID    string
	Hex       string      // "#RRGGBB"
	Space     color.Space // notation it was given in
	Value     string      // canonical form in that notation
	UpdatedAt time.Time
}

// Store keeps favorites.
type Store interface {
	// GetFavorite returns storeerr.ErrNotFound when the user has none.
	GetFavorite(ctx context.Context, userID string) (Favorite, error)
	// SaveFavorite upserts f. With idem set, the write and the idempotency
	// record commit together: if (f.UserID, idem.Scope, idem.Key) is already
	// recorded (and younger than ttl) nothing is written and the recorded
	// response is returned (replayed); a different RequestHash yields
	// storeerr.ErrIdempotencyMismatch.
	SaveFavorite(ctx context.Context, f Favorite, idem *storeerr.Idempotency, ttl time.Duration) (replayed []byte, err error)
	// DeleteFavorite removes a deleted account's favorite and its
	// idempotency records; a user with none is not an error.
	DeleteFavorite(ctx context.Context, userID string) error
}
