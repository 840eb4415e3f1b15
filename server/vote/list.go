package vote

import (
	"context"
	"time"

	votev1 "github.com/apiplatform/platform/gen/go/vote/v1"
	"github.com/apiplatform/platform/server/platform/apierr"
	"github.com/apiplatform/platform/server/platform/page"
)

// ListElections implements VoteService: the public list of open and closed
// elections, newest first. Drafts stay with the admins who made them.
func (s *Service) ListElections(ctx context.Context, req *votev1.ListElectionsRequest) (*votev1.ListElectionsResponse, error) {
	size, err := page.Size(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	var states []State
	switch req.GetState() {
	case votev1.ElectionState_ELECTION_STATE_UNSPECIFIED:
		states = []State{StateOpen, StateClosed}
	case votev1.ElectionState_ELECTION_STATE_OPEN:
		states = []State{StateOpen}
	case votev1.ElectionState_ELECTION_STATE_CLOSED:
		states = []State{StateClosed}
	default:
		return nil, apierr.InvalidArgument("state", "must be OPEN, CLOSED or unset (drafts are not listed)")
	}
	at, id, ok, err := page.Parse(req.GetPageToken(), canonicalUUID)
	if err != nil {
		return nil, err
	}
	var after *ElectionCursor
	if ok {
		after = &ElectionCursor{CreatedAt: at, ID: id}
	}
	rows, err := s.store.ListElections(ctx, states, after, size+1)
	if err != nil {
		return nil, apierr.FromStorage(ctx, err, "")
	}
	resp := &votev1.ListElectionsResponse{}
	rows, resp.NextPageToken = page.Trim(rows, size, func(e Election) (time.Time, string) { return e.CreatedAt, e.ID })
	for _, e := range rows {
		resp.Elections = append(resp.Elections, electionProto(e))
	}
	return resp, nil
}
