package vote

import (
	"context"
	"time"

	"google.golang.org/grpc"

	votev1 "github.com/apiplatform/platform/gen/go/vote/v1"
	"github.com/apiplatform/platform/server/platform/apierr"
)

// resyncAhead is the reason given to a client resuming after a version the
// election never had (another election's, or a made-up one).
const resyncAhead = "the resume version is newer than the election's count"

// resultsStart is where a StreamResults request starts: after after_version
// when set (0 included), after since_version when positive; resumed false
// means a new client, which gets the current tally first.
func resultsStart(req *votev1.StreamResultsRequest) (after int64, resumed bool, err error) {
	var v apierr.Validator
	v.Check(req.GetSinceVersion() >= 0, "since_version", "must not be negative")
	if req.AfterVersion != nil {
		v.Check(req.GetAfterVersion() >= 0, "after_version", "must not be negative")
		v.Check(req.GetSinceVersion() == 0, "since_version", "must not be set together with after_version")
	}
	if err := v.Err(); err != nil {
		return 0, false, err
	}
	if req.AfterVersion != nil {
		return req.GetAfterVersion(), true, nil
	}
	return req.GetSinceVersion(), req.GetSinceVersion() > 0, nil
}

// StreamResults implements VoteService.
func (s *Service) StreamResults(req *votev1.StreamResultsRequest, stream grpc.ServerStreamingServer[votev1.StreamResultsResponse]) error {
	ctx := stream.Context()
	if err := requireElectionID(req.GetElectionId()); err != nil {
		return err
	}
	last, resumed, err := resultsStart(req)
	if err != nil {
		return err
	}
	e, err := s.election(ctx, req.GetElectionId())
	if err != nil {
		return err
	}
	// Follow before reading the current tally and state, so nothing
	// published in between is missed.
	fo, err := s.follow(e.ID)
	if err != nil {
		return apierr.Unavailable("results are not available right now", time.Second)
	}
	defer s.unfollow(e.ID, fo)
	// The state the first message carries is read, not cached: a page
	// opened just after a close on another replica must show it closed.
	current, err := s.store.GetElection(ctx, e.ID)
	if err != nil {
		return apierr.FromStorage(ctx, err, "election not found")
	}
	s.elections.Add(current.ID, cachedElection{current, s.now()})
	first := electionProto(current)
	// Headers now, not with the first tally (which a reconnecting client
	// may wait for): the gateway answers the HTTP request only then.
	if err := stream.SendHeader(nil); err != nil {
		return err
	}
	streamSubscribers.Inc()
	defer streamSubscribers.Dec()

	period := s.cfg.StreamHeartbeat
	if period <= 0 {
		period = 15 * time.Second
	}
	beat := time.NewTimer(period)
	defer beat.Stop()
	send := func(m *votev1.StreamResultsResponse) error {
		beat.Reset(period)
		if m.Resync == nil && m.Election == nil {
			m.Election, first = first, nil
		}
		return stream.Send(m)
	}
	sendTally := func(tl *votev1.Tally, force bool) error {
		if tl.GetVersion() <= last && !force {
			return nil
		}
		last = max(last, tl.GetVersion())
		return send(&votev1.StreamResultsResponse{Tally: tl})
	}
	tl, err := s.startTally(ctx, e, last, resumed)
	if err != nil {
		return apierr.FromStorage(ctx, err, "")
	}
	if resumed && last > tl.GetVersion() {
		return send(&votev1.StreamResultsResponse{Resync: &votev1.ResultsResync{
			Reason: resyncAhead, CurrentVersion: tl.GetVersion(),
		}})
	}
	// A new client always gets the current count; a reconnecting one only
	// what is newer than the version it has, or else a heartbeat at once:
	// every stream opens with a message, so the gateway can answer the
	// HTTP request (and an error before it, like a unary call's).
	if resumed && tl.GetVersion() <= last {
		err = send(&votev1.StreamResultsResponse{Heartbeat: &votev1.ResultsHeartbeat{Version: last}})
	} else {
		err = sendTally(tl, true)
	}
	if err != nil {
		return err
	}
	refresh := time.NewTicker(streamRefresh)
	defer refresh.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case m, ok := <-fo.c:
			if !ok {
				s.feeds.mu.Lock()
				err := fo.err
				s.feeds.mu.Unlock()
				if err == nil {
					err = errFeedEnded
				}
				return err
			}
			if m.GetElection() != nil {
				first = nil // newer than what the first message would have said
				// Shared with the other streams: sent as it is.
				if err := send(m); err != nil {
					return err
				}
				continue
			}
			if err := sendTally(m.GetTally(), false); err != nil {
				return err
			}
		case <-refresh.C:
			tl, err := s.liveTally(ctx, e)
			if err != nil {
				continue // the bus may still deliver; the next tick retries
			}
			if err := sendTally(tl, false); err != nil {
				return err
			}
		case <-beat.C:
			if err := send(&votev1.StreamResultsResponse{Heartbeat: &votev1.ResultsHeartbeat{Version: last}}); err != nil {
				return err
			}
		}
	}
}

// startTally is the tally a stream starts from. A resume position ahead of
// this process's cached count may only be ahead of the cache (the client
// saw a newer tally through another replica): the store decides.
func (s *Service) startTally(ctx context.Context, e Election, after int64, resumed bool) (*votev1.Tally, error) {
	tl, err := s.liveTally(ctx, e)
	if err != nil || !resumed || after <= tl.GetVersion() {
		return tl, err
	}
	return s.readTally(ctx, e)
}
