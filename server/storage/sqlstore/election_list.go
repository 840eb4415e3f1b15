package sqlstore

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/apiplatform/platform/server/vote"
)

// listElections pages over elections_list_idx first, then joins the
// candidates of that page only; one row per candidate, in page order.
const listElections = `
	WITH page AS (
		SELECT id, created_at FROM elections
		WHERE state = ANY($1::INT2[]) AND ($3::TIMESTAMPTZ IS NULL OR (created_at, id) < ($3::TIMESTAMPTZ, $4::UUID))
		ORDER BY created_at DESC, id DESC
		LIMIT $2)
	SELECT ` + electionColumns + `, c.id, c.name
	FROM page p JOIN elections e ON e.id = p.id JOIN candidates c ON c.election_id = e.id
	ORDER BY p.created_at DESC, p.id DESC, c.sort_order, c.id`

// ListElections implements vote.Store.
func (s *Store) ListElections(ctx context.Context, states []vote.State, after *vote.ElectionCursor, limit int) (out []vote.Election, err error) {
	if limit <= 0 || len(states) == 0 {
		return nil, nil
	}
	codes := make([]int16, len(states))
	for i, st := range states {
		codes[i] = int16(st)
	}
	var at, id any
	if after != nil {
		if !isUUID(after.ID) {
			return nil, nil
		}
		at, id = after.CreatedAt, after.ID
	}
	err = s.do(ctx, func() error {
		out = out[:0]
		rows, err := s.pool.Query(ctx, listElections, codes, limit, at, id)
		if err != nil {
			return err
		}
		out, err = scanElectionList(rows)
		return err
	})
	if err != nil {
		return nil, mapErr(err)
	}
	return out, nil
}

// scanElectionList groups rows of consecutive candidates into elections.
func scanElectionList(rows pgx.Rows) ([]vote.Election, error) {
	defer rows.Close()
	var out []vote.Election
	for rows.Next() {
		var e vote.Election
		var opens, closes *time.Time
		var c vote.Candidate
		if err := rows.Scan(&e.ID, &e.Title, &e.HomeRegion, &e.State, &opens, &closes, &e.CreatedBy, &e.CreatedAt, &c.ID, &c.Name); err != nil {
			return nil, err
		}
		if n := len(out); n > 0 && out[n-1].ID == e.ID {
			out[n-1].Candidates = append(out[n-1].Candidates, c)
			continue
		}
		e.OpensAt, e.ClosesAt, e.CreatedAt = timeOf(opens), timeOf(closes), e.CreatedAt.UTC()
		e.Candidates = []vote.Candidate{c}
		out = append(out, e)
	}
	return out, rows.Err()
}
