package vote

import (
	"context"
	"errors"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	votev1 "github.com/apiplatform/platform/gen/go/vote/v1"
	"github.com/apiplatform/platform/server/platform/apierr"
	"github.com/apiplatform/platform/server/platform/auth"
	"github.com/apiplatform/platform/server/platform/storeerr"
)

// GetVoteStatus implements VoteService.
func (s *Service) GetVoteStatus(ctx context.Context, req *votev1.GetVoteStatusRequest) (*votev1.GetVoteStatusResponse, error) {
	p, err := auth.Require(ctx)
	if err != nil {
		return nil, err
	}
	var v apierr.Validator
	v.Check(canonicalUUID(req.GetUserId()), "user_id", "must be a user id (a lower-case UUID)")
	v.Check(canonicalUUID(req.GetElectionId()), "election_id", "must be an election id (a lower-case UUID)")
	if err := v.Err(); err != nil {
		return nil, err
	}
	if req.GetUserId() != p.UserID && !p.Admin {
		return nil, apierr.PermissionDenied("only the user themself or an admin may see whether they voted")
	}
	e, err := s.election(ctx, req.GetElectionId())
	if err != nil {
		return nil, err
	}
	vt, err := s.store.GetVote(ctx, e.HomeRegion, e.ID, req.GetUserId())
	if errors.Is(err, storeerr.ErrNotFound) {
		return &votev1.GetVoteStatusResponse{}, nil
	}
	if err != nil {
		return nil, apierr.FromStorage(ctx, err, "")
	}
	return &votev1.GetVoteStatusResponse{Voted: true, VoteId: vt.ID, AcceptedAt: timestamppb.New(vt.CastAt)}, nil
}

// ---- results ----

func tallyProto(e Election, counts Counts, at time.Time) *votev1.Tally {
	t := &votev1.Tally{ElectionId: e.ID, AsOf: timestamppb.New(at)}
	for _, c := range e.Candidates {
		n := counts[c.ID]
		t.Counts = append(t.Counts, &votev1.CandidateCount{CandidateId: c.ID, Votes: n})
		t.TotalVotes += n
	}
	// Votes are only ever added (erasing a user keeps theirs), so the
	// total orders tallies across replicas and reads.
	t.Version = t.TotalVotes
	return t
}

// GetResults implements VoteService: a count of the stored votes.
func (s *Service) GetResults(ctx context.Context, req *votev1.GetResultsRequest) (*votev1.GetResultsResponse, error) {
	if err := requireElectionID(req.GetElectionId()); err != nil {
		return nil, err
	}
	e, err := s.election(ctx, req.GetElectionId())
	if err != nil {
		return nil, err
	}
	at := s.now()
	counts, err := s.store.ExactCounts(ctx, e.HomeRegion, e.ID)
	if err != nil {
		return nil, apierr.FromStorage(ctx, err, "")
	}
	return &votev1.GetResultsResponse{Tally: tallyProto(e, counts, at)}, nil
}

// GetLiveResults implements VoteService.
func (s *Service) GetLiveResults(ctx context.Context, req *votev1.GetLiveResultsRequest) (*votev1.GetLiveResultsResponse, error) {
	if err := requireElectionID(req.GetElectionId()); err != nil {
		return nil, err
	}
	e, err := s.election(ctx, req.GetElectionId())
	if err != nil {
		return nil, err
	}
	t, err := s.liveTally(ctx, e)
	if err != nil {
		return nil, apierr.FromStorage(ctx, err, "")
	}
	return &votev1.GetLiveResultsResponse{Tally: t}, nil
}
