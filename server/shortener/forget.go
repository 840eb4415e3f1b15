package shortener

import (
	"context"
	"errors"
	"time"

	"github.com/apiplatform/platform/server/platform/storeerr"
)

// ForgetUser deletes every live link of a deleted account
// (identity.Eraser). The codes stay retired (their tombstones answer 410),
// so that a code once printed never leads somewhere new.
func (s *Service) ForgetUser(ctx context.Context, userID string) error {
	for {
		// Deleted links leave the listing, so the first page is always
		// the next one.
		links, err := s.store.ListLinks(ctx, userID, "", nil, 100)
		if err != nil || len(links) == 0 {
			return err
		}
		at := s.now().UTC().Truncate(time.Microsecond)
		codes := make([]string, 0, len(links))
		for _, l := range links {
			err := s.store.DeleteLink(ctx, l.Code, at)
			if err != nil && !errors.Is(err, ErrDeleted) && !errors.Is(err, storeerr.ErrNotFound) {
				s.invalidate(ctx, true, codes...)
				return err
			}
			codes = append(codes, l.Code)
		}
		s.invalidate(ctx, true, codes...)
	}
}
