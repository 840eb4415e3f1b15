package embedded

import (
	"context"
	"encoding/json"
	"slices"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/apiplatform/platform/server/vote"
)

// ListElections implements vote.Store. The embedded engine serves one
// process with few elections, so it reads them all and sorts; the SQL
// engine pages over an index.
func (s *Store) ListElections(ctx context.Context, states []vote.State, after *vote.ElectionCursor, limit int) (out []vote.Election, err error) {
	if limit <= 0 {
		return nil, nil
	}
	err = s.view(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bElections).ForEach(func(_, raw []byte) error {
			var e vote.Election
			if err := json.Unmarshal(raw, &e); err != nil {
				return err
			}
			if slices.Contains(states, e.State) && (after == nil || newer(*after, e)) {
				out = append(out, e)
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b vote.Election) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
	return out[:min(limit, len(out))], nil
}

// newer reports whether e comes after the cursor in newest-first order.
func newer(c vote.ElectionCursor, e vote.Election) bool {
	if !e.CreatedAt.Equal(c.CreatedAt) {
		return e.CreatedAt.Before(c.CreatedAt)
	}
	return e.ID < c.ID
}
