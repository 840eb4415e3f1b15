package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/apiplatform/platform/server/vote"
)

// testListElections checks the public list: newest first with the id
// breaking ties, only the states asked for, keyset pages that neither skip
// nor repeat, and every election with its candidates in display order.
func testListElections(t *testing.T, s vote.Store) {
	base := now().Add(-time.Hour)
	var want []vote.Election // newest first, open and closed only
	add := func(state vote.State, at time.Time) vote.Election {
		e := vote.Election{
			ID: uuid.NewString(), Title: "List " + at.Format(time.RFC3339Nano), State: state, HomeRegion: region,
			CreatedBy: uuid.NewString(), CreatedAt: at,
			Candidates: []vote.Candidate{{ID: "z", Name: "Zed"}, {ID: "a", Name: "Ay"}, {ID: "m", Name: "Em"}},
		}
		if state != vote.StateDraft {
			e.OpensAt = at.Add(time.Second)
		}
		if state == vote.StateClosed {
			e.ClosesAt = at.Add(time.Minute)
		}
		must(t, s.CreateElection(ctx, e))
		return e
	}
	for i := range 7 {
		state := []vote.State{vote.StateOpen, vote.StateClosed, vote.StateDraft}[i%3]
		e := add(state, base.Add(time.Duration(i)*time.Second))
		if state != vote.StateDraft {
			want = append(want, e)
		}
	}
	// Two created in the same microsecond: the id orders them.
	same := base.Add(10 * time.Second)
	want = append(want, add(vote.StateOpen, same), add(vote.StateOpen, same))
	slices.SortFunc(want, func(a, b vote.Election) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		if a.ID > b.ID {
			return -1
		}
		return 1
	})

	both := []vote.State{vote.StateOpen, vote.StateClosed}
	var got []vote.Election
	var after *vote.ElectionCursor
	for pages := 0; ; pages++ {
		if pages > len(want) {
			t.Fatal("paging does not end")
		}
		page, err := s.ListElections(ctx, both, after, 3)
		must(t, err)
		if len(page) > 3 {
			t.Fatalf("page of %d, limit 3", len(page))
		}
		got = append(got, page...)
		if len(page) < 3 {
			break
		}
		last := page[len(page)-1]
		after = &vote.ElectionCursor{CreatedAt: last.CreatedAt, ID: last.ID}
	}
	if len(got) != len(want) {
		t.Fatalf("listed %d elections, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.ID != w.ID || g.State != w.State || !g.CreatedAt.Equal(w.CreatedAt) || g.Title != w.Title ||
			!g.OpensAt.Equal(w.OpensAt) || !g.ClosesAt.Equal(w.ClosesAt) || !slices.Equal(g.Candidates, w.Candidates) {
			t.Fatalf("election %d = %+v, want %+v", i, g, w)
		}
	}

	closed, err := s.ListElections(ctx, []vote.State{vote.StateClosed}, nil, 100)
	must(t, err)
	if len(closed) != 2 {
		t.Fatalf("closed: %d elections, want 2", len(closed))
	}
	for _, e := range closed {
		if e.State != vote.StateClosed {
			t.Fatalf("closed filter listed %+v", e)
		}
	}
	if none, err := s.ListElections(ctx, both, &vote.ElectionCursor{CreatedAt: base, ID: uuid.Nil.String()}, 10); err != nil || len(none) != 0 {
		t.Fatalf("after the oldest: %v, %v", none, err)
	}
}
