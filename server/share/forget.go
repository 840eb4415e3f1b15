package share

import (
	"context"
	"time"
)

// ForgetUser revokes every share of a deleted account (identity.Eraser):
// their pages answer 404 on every replica, as after RevokeShare. Its signed
// links are revoked on every replica too and stripped of owner and colour
// (their rows stay, anonymous, until the tokens expire: a token still
// verifies, so its id must stay refused).
func (s *Service) ForgetUser(ctx context.Context, userID string) error {
	ids, err := s.store.ForgetSignedLinks(ctx, userID, s.now().UTC().Truncate(time.Microsecond))
	if err != nil {
		return err
	}
	s.broadcastRevoked(ctx, ids)
	var after *Cursor
	for {
		rows, err := s.store.ListShares(ctx, userID, after, 100)
		if err != nil || len(rows) == 0 {
			return err
		}
		at := s.now().UTC().Truncate(time.Microsecond)
		for _, sh := range rows {
			if sh.RevokedAt.IsZero() {
				if err := s.store.RevokeShare(ctx, sh.Slug, at); err != nil {
					return err
				}
			}
			s.dropCached(ctx, sh.Slug)
		}
		last := rows[len(rows)-1]
		after = &Cursor{CreatedAt: last.CreatedAt, Slug: last.Slug}
	}
}
