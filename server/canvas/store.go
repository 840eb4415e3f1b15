package canvas

import (
	"context"
	"errors"
	"time"
)

// ErrSeqTaken: history already holds another placement at that sequence
// number (see Store.AppendPlacements).
var ErrSeqTaken = errors.New("canvas: sequence number already holds another placement")

// Placement is one pixel placed, as history keeps it.
type Placement struct {
	Seq      int64
	X, Y     int32
	Color    int32
	UserID   string
	PlacedAt time.Time
}

// NoAuthor stands for the author of placements whose account was deleted:
// the pixels stay in history, the person does not.
const NoAuthor = "00000000-0000-0000-0000-000000000000"

// Ban keeps a user from placing pixels.
type Ban struct {
	UserID    string
	BannedBy  string
	Reason    string
	BannedAt  time.Time
	ExpiresAt time.Time // zero: permanent
}

// Meta identifies a canvas: its dimensions and a random id naming its live
// state in Redis, so that every replica over one database finds the same
// board and a board of another database is never mistaken for it.
type Meta struct {
	ID            string
	Width, Height int32
	CreatedAt     time.Time
}

// Store keeps what must survive every process: the placement history, the
// bans and the canvas's identity. The live board itself is a Board.
type Store interface {
	// CanvasMeta returns the stored identity, creating it from want (ID,
	// dimensions) when there is none yet. Callers compare the dimensions.
	CanvasMeta(ctx context.Context, want Meta) (Meta, error)
	// AppendPlacements stores placements; a seq already stored with the
	// same placement is left as it is, so a retried batch does not fail. A
	// seq stored with another placement fails the call with ErrSeqTaken
	// (the rest of the batch is stored): the live board handed out a number
	// twice, which happens when a Redis failover lost its newest writes.
	AppendPlacements(ctx context.Context, ps []Placement) error
	// PixelHistory returns up to limit placements of pixel (x, y) with seq
	// below beforeSeq (0: no bound), newest first.
	PixelHistory(ctx context.Context, x, y int32, beforeSeq int64, limit int) ([]Placement, error)
	// LatestPixels calls fn with the newest placement of every pixel ever
	// placed, from one consistent read; the board is rebuilt from it.
	LatestPixels(ctx context.Context, fn func(p Placement) error) error
	// BanUser bans (or re-bans, replacing the reason) a user.
	BanUser(ctx context.Context, b Ban) error
	// UnbanUser lifts a ban; storage.ErrNotFound when there is none.
	UnbanUser(ctx context.Context, userID string) error
	// IsBanned tells whether a ban of the user is in force at now.
	IsBanned(ctx context.Context, userID string, now time.Time) (bool, error)
	// ForgetAuthor, for a deleted account, replaces the user's id in their
	// placements with NoAuthor (the pixels stay) and drops their ban.
	// Forgetting a user with no placements is not an error.
	ForgetAuthor(ctx context.Context, userID string) error
}
