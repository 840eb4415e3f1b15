package canvas

import "context"

// ForgetUser keeps a deleted account's pixels on the board and in the
// history, without an author (identity.Eraser). Its cooldown key in Redis
// expires by itself within one cooldown.
func (s *Service) ForgetUser(ctx context.Context, userID string) error {
	return s.store.ForgetAuthor(ctx, userID)
}
