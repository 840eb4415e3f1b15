package vote

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	votev1 "github.com/apiplatform/platform/gen/go/vote/v1"
	"github.com/apiplatform/platform/server/platform/apierr"
	"github.com/apiplatform/platform/server/platform/auth"
	"github.com/apiplatform/platform/server/platform/text"
	"github.com/apiplatform/platform/server/platform/wire"
)

var candidateIDRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// canonicalUUID accepts ids in the form this API hands out.
func canonicalUUID(s string) bool {
	u, err := uuid.Parse(s)
	return err == nil && u.String() == s
}

func requireElectionID(id string) error {
	if !canonicalUUID(id) {
		return apierr.InvalidArgument("election_id", "must be an election id (a lower-case UUID)")
	}
	return nil
}

// ---- elections ----

// election returns an election for the vote path and the result RPCs,
// from a per-process cache. What the cache may hold stale is safe there:
// title, candidates and home region never change, an election that is
// Over stays over, and any other state is checked again by the store when
// the vote is inserted.
func (s *Service) election(ctx context.Context, id string) (Election, error) {
	if c, ok := s.elections.Get(id); ok && s.now().Sub(c.at) < time.Minute {
		return c.e, nil
	}
	v, err, _ := s.electionLoads.Do(id, func() (any, error) {
		e, err := s.store.GetElection(context.WithoutCancel(ctx), id)
		if err != nil {
			return nil, err
		}
		s.elections.Add(id, cachedElection{e, s.now()})
		return e, nil
	})
	if err != nil {
		return Election{}, apierr.FromStorage(ctx, err, "election not found")
	}
	return v.(Election), nil
}

func stateProto(st State) votev1.ElectionState {
	switch st {
	case StateDraft:
		return votev1.ElectionState_ELECTION_STATE_DRAFT
	case StateOpen:
		return votev1.ElectionState_ELECTION_STATE_OPEN
	case StateClosed:
		return votev1.ElectionState_ELECTION_STATE_CLOSED
	}
	return votev1.ElectionState_ELECTION_STATE_UNSPECIFIED
}

func optionalTime(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func electionProto(e Election) *votev1.Election {
	out := &votev1.Election{
		ElectionId: e.ID, Title: e.Title, State: stateProto(e.State),
		StartTime: optionalTime(e.OpensAt), EndTime: optionalTime(e.ClosesAt),
		CreateTime: timestamppb.New(e.CreatedAt), HomeRegion: e.HomeRegion,
	}
	for _, c := range e.Candidates {
		out.Candidates = append(out.Candidates, &votev1.Candidate{CandidateId: c.ID, Name: c.Name})
	}
	return out
}

// CreateElection implements VoteService.
func (s *Service) CreateElection(ctx context.Context, req *votev1.CreateElectionRequest) (*votev1.CreateElectionResponse, error) {
	p, err := auth.Require(ctx)
	if err != nil {
		return nil, err
	}
	now := s.now()
	var v apierr.Validator
	p200 := text.Display(req.GetTitle(), 200)
	v.Check(p200 == "", "title", p200)
	cs := req.GetCandidates()
	v.Check(len(cs) >= 2 && len(cs) <= 100, "candidates", "must list 2 to 100 candidates")
	seen := map[string]bool{}
	for i, c := range cs {
		if i >= 100 {
			break
		}
		id := c.GetCandidateId()
		v.Check(candidateIDRE.MatchString(id), fmt.Sprintf("candidates[%d].candidate_id", i), "must be 1 to 64 letters, digits, '-' or '_'")
		v.Check(!seen[id], fmt.Sprintf("candidates[%d].candidate_id", i), "repeats another candidate's id")
		seen[id] = true
		pn := text.Display(c.GetName(), 100)
		v.Check(pn == "", fmt.Sprintf("candidates[%d].name", i), pn)
	}
	var opens, closes time.Time
	if t := req.GetStartTime(); t != nil {
		v.Check(t.CheckValid() == nil, "start_time", "is not a valid timestamp")
		opens = t.AsTime().UTC().Truncate(time.Microsecond)
	}
	if t := req.GetEndTime(); t != nil {
		v.Check(t.CheckValid() == nil, "end_time", "is not a valid timestamp")
		closes = t.AsTime().UTC().Truncate(time.Microsecond)
		v.Check(closes.After(now), "end_time", "must be in the future")
		v.Check(opens.IsZero() || closes.After(opens), "end_time", "must be after start_time")
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	e := Election{
		ID: uuid.NewString(), Title: req.GetTitle(), State: StateDraft, OpensAt: opens, ClosesAt: closes,
		HomeRegion: s.region, CreatedBy: p.UserID, CreatedAt: now,
	}
	for _, c := range cs {
		e.Candidates = append(e.Candidates, Candidate{ID: c.GetCandidateId(), Name: c.GetName()})
	}
	if err := s.store.CreateElection(ctx, e); err != nil {
		return nil, apierr.FromStorage(ctx, err, "")
	}
	wire.SetStatus(ctx, http.StatusCreated)
	return &votev1.CreateElectionResponse{Election: electionProto(e)}, nil
}

// GetElection implements VoteService. It reads the store: the state shown
// is current, not cached.
func (s *Service) GetElection(ctx context.Context, req *votev1.GetElectionRequest) (*votev1.GetElectionResponse, error) {
	if err := requireElectionID(req.GetElectionId()); err != nil {
		return nil, err
	}
	e, err := s.store.GetElection(ctx, req.GetElectionId())
	if err != nil {
		return nil, apierr.FromStorage(ctx, err, "election not found")
	}
	s.elections.Add(e.ID, cachedElection{e, s.now()})
	return &votev1.GetElectionResponse{Election: electionProto(e)}, nil
}

var (
	errReopen      = apierr.FailedPrecondition("a closed election cannot be opened again", "ELECTION_CLOSED")
	errWindowEnded = apierr.FailedPrecondition("the election's voting window has already ended", "ELECTION_CLOSED")
)

func (s *Service) transition(ctx context.Context, id string, fn func(e *Election, now time.Time) error) (Election, error) {
	if err := requireElectionID(id); err != nil {
		return Election{}, err
	}
	now := s.now()
	var before State
	e, err := s.store.UpdateElection(ctx, id, func(e *Election) error { before = e.State; return fn(e, now) })
	switch {
	case errors.Is(err, errReopen), errors.Is(err, errWindowEnded):
		return Election{}, err
	case err != nil:
		return Election{}, apierr.FromStorage(ctx, err, "election not found")
	}
	s.elections.Add(e.ID, cachedElection{e, s.now()})
	if e.State != before {
		s.announce(e)
	}
	return e, nil
}

// OpenElection implements VoteService: a draft opens now (its window starts
// now unless it was given a start); opening an open election changes
// nothing.
func (s *Service) OpenElection(ctx context.Context, req *votev1.OpenElectionRequest) (*votev1.OpenElectionResponse, error) {
	e, err := s.transition(ctx, req.GetElectionId(), func(e *Election, now time.Time) error {
		switch {
		case e.State == StateOpen:
			return nil
		case e.State == StateClosed:
			return errReopen
		case !e.ClosesAt.IsZero() && !now.Before(e.ClosesAt):
			return errWindowEnded
		}
		e.State = StateOpen
		if e.OpensAt.IsZero() {
			e.OpensAt = now
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &votev1.OpenElectionResponse{Election: electionProto(e)}, nil
}

// CloseElection implements VoteService: votes are refused from now on
// (closing a closed election changes nothing). An election closed before
// its window began loses its start: it never opened.
func (s *Service) CloseElection(ctx context.Context, req *votev1.CloseElectionRequest) (*votev1.CloseElectionResponse, error) {
	e, err := s.transition(ctx, req.GetElectionId(), func(e *Election, now time.Time) error {
		if e.State == StateClosed {
			return nil
		}
		e.State = StateClosed
		if e.ClosesAt.IsZero() || now.Before(e.ClosesAt) {
			e.ClosesAt = now
		}
		if !e.OpensAt.IsZero() && !e.OpensAt.Before(e.ClosesAt) {
			e.OpensAt = time.Time{}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &votev1.CloseElectionResponse{Election: electionProto(e)}, nil
}

// ---- status ----
