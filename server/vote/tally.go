package vote

import (
	"context"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
	"google.golang.org/protobuf/proto"

	votev1 "github.com/apiplatform/platform/gen/go/vote/v1"
	"github.com/apiplatform/platform/server/platform/apierr"
	"github.com/apiplatform/platform/server/platform/bus"
)

// Live results. The live count is the sum of the counter shards, which the
// vote transactions keep equal to the stored votes; this process serves it
// from a cache at most LiveMaxAge old. A process that commits votes marks
// their elections dirty, and its publisher re-reads their counts and
// publishes the tallies on the bus (at once after a lull, then at most once
// per PublishEvery), which carries them to the feeds of every replica; a
// feed decodes each tally once and hands it to that process's streams.
// Versions are totals, so a stream forwards only tallies newer than what it
// sent, whichever replica read them.

func tallyTopic(electionID string) string { return "vote.tally." + electionID }

type liveEntry struct {
	t  *votev1.Tally
	at time.Time
}

type tallies struct {
	mu          sync.Mutex
	live        map[string]liveEntry
	dirty       map[string]struct{}
	published   map[string]int64     // version last published
	lastPublish map[string]time.Time // when
	loads       singleflight.Group
}

func (t *tallies) init() {
	t.live, t.dirty, t.published, t.lastPublish = map[string]liveEntry{}, map[string]struct{}{}, map[string]int64{}, map[string]time.Time{}
}

func (t *tallies) markDirty(electionID string) {
	t.mu.Lock()
	t.dirty[electionID] = struct{}{}
	t.mu.Unlock()
}

// remember keeps the newest tally read for an election.
func (t *tallies) remember(tl *votev1.Tally, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if cur, ok := t.live[tl.GetElectionId()]; !ok || cur.at.Before(at) {
		t.live[tl.GetElectionId()] = liveEntry{tl, at}
	}
}

// readTally reads the live count from the store.
func (s *Service) readTally(ctx context.Context, e Election) (*votev1.Tally, error) {
	at := s.now()
	counts, err := s.store.LiveCounts(ctx, e.HomeRegion, e.ID)
	if err != nil {
		return nil, err
	}
	tl := tallyProto(e, counts, at)
	s.tallies.remember(tl, at)
	return tl, nil
}

// liveTally is the live count at most LiveMaxAge old (one store read per
// election and period, however many callers).
func (s *Service) liveTally(ctx context.Context, e Election) (*votev1.Tally, error) {
	s.tallies.mu.Lock()
	cur, ok := s.tallies.live[e.ID]
	s.tallies.mu.Unlock()
	if ok && s.now().Sub(cur.at) < s.cfg.LiveMaxAge {
		return cur.t, nil
	}
	v, err, _ := s.tallies.loads.Do(e.ID, func() (any, error) {
		return s.readTally(context.WithoutCancel(ctx), e)
	})
	if err != nil {
		return nil, err
	}
	return v.(*votev1.Tally), nil
}

// publishTick is how often the publisher looks for changed tallies. An
// election that was quiet for PublishEvery is published on the next tick
// (the first vote after a lull shows within about publishTick); under
// continuous voting each election is published once per PublishEvery.
const publishTick = 25 * time.Millisecond

// publishLoop publishes the tallies of elections that took votes here.
func (s *Service) publishLoop() {
	defer s.wg.Done()
	t := time.NewTicker(min(publishTick, s.cfg.PublishEvery))
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			s.publishDirty(true) // the last votes' tally
			return
		case <-t.C:
			s.publishDirty(false)
		}
	}
}

// publishDirty publishes the changed elections not published within the
// last PublishEvery (all of them when final).
func (s *Service) publishDirty(final bool) {
	now := time.Now()
	var due []string
	s.tallies.mu.Lock()
	for id := range s.tallies.dirty {
		if final || now.Sub(s.tallies.lastPublish[id]) >= s.cfg.PublishEvery {
			due = append(due, id)
			delete(s.tallies.dirty, id)
			s.tallies.lastPublish[id] = now
		}
	}
	s.tallies.mu.Unlock()
	for _, id := range due {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := s.publish(ctx, id)
		cancel()
		if err != nil {
			s.log.Warn("vote: publish tally", "election", id, "err", err)
			s.tallies.markDirty(id) // try again
		}
	}
}

func (s *Service) publish(ctx context.Context, id string) error {
	e, err := s.election(ctx, id)
	if err != nil {
		return err
	}
	tl, err := s.readTally(ctx, e)
	if err != nil {
		return err
	}
	s.tallies.mu.Lock()
	if tl.Version <= s.tallies.published[id] {
		s.tallies.mu.Unlock()
		return nil
	}
	s.tallies.published[id] = tl.Version
	s.tallies.mu.Unlock()
	msg, err := proto.Marshal(tl)
	if err != nil {
		return err
	}
	tallyPublishes.Inc()
	// Local streams got it already even if Redis failed; other replicas
	// catch up through their own refresh (see StreamResults).
	return s.bus.Publish(ctx, tallyTopic(id), msg)
}

// streamRefresh is how often a stream also checks this process's live
// count, so a tally lost on the bus (Redis down) still arrives, late.
const streamRefresh = time.Second

// feeds fan an election's tallies out to this process's streams: one bus
// subscription and one decode per tally, however many streams watch it.
// Each stream has its own bounded buffer; one that falls behind is dropped
// (told to reconnect), never waited for.
type feeds struct {
	mu sync.Mutex
	m  map[string]*feed
}

type feed struct {
	sub       *bus.Subscription // tallies
	states    *bus.Subscription // the election after each open or close
	followers map[*follower]struct{}
}

type follower struct {
	c   chan *votev1.StreamResultsResponse // shared, read-only messages
	err error                              // why c was closed: errFellBehind or errFeedEnded
}

var (
	errFellBehind = apierr.Unavailable("this stream fell behind; reconnect with since_version", 0)
	errFeedEnded  = apierr.Unavailable("live results were interrupted; reconnect with since_version", 0)
)

// follow starts following an election's tallies.
func (s *Service) follow(electionID string) (*follower, error) {
	s.feeds.mu.Lock()
	defer s.feeds.mu.Unlock()
	f := s.feeds.m[electionID]
	if f == nil {
		// The feed only decodes and hands on, so a small bus buffer is
		// plenty; its own ctx, as it outlives the stream that started it.
		sub, err := s.bus.Subscribe(context.Background(), tallyTopic(electionID), 64)
		if err != nil {
			return nil, err
		}
		states, err := s.bus.Subscribe(context.Background(), electionTopic(electionID), 4)
		if err != nil {
			sub.Close()
			return nil, err
		}
		f = &feed{sub: sub, states: states, followers: map[*follower]struct{}{}}
		s.feeds.m[electionID] = f
		go s.runFeed(electionID, f, f.sub, decodeTally)
		go s.runFeed(electionID, f, f.states, decodeElection)
	}
	fo := &follower{c: make(chan *votev1.StreamResultsResponse, s.cfg.StreamBuffer)}
	f.followers[fo] = struct{}{}
	return fo, nil
}

// unfollow ends a follower (if the feed has not ended it already) and the
// feed with its last follower.
func (s *Service) unfollow(electionID string, fo *follower) {
	s.feeds.mu.Lock()
	defer s.feeds.mu.Unlock()
	f := s.feeds.m[electionID]
	if f == nil {
		return
	}
	if _, ok := f.followers[fo]; ok {
		delete(f.followers, fo)
		close(fo.c)
	}
	if len(f.followers) == 0 {
		delete(s.feeds.m, electionID)
		f.sub.Close()
		f.states.Close()
	}
}

func decodeTally(msg []byte) (*votev1.StreamResultsResponse, error) {
	tl := &votev1.Tally{}
	return &votev1.StreamResultsResponse{Tally: tl}, proto.Unmarshal(msg, tl)
}

// runFeed hands one of the feed's subscriptions to its followers.
func (s *Service) runFeed(electionID string, f *feed, sub *bus.Subscription, decode func([]byte) (*votev1.StreamResultsResponse, error)) {
	for msg := range sub.C {
		m, err := decode(msg)
		if err != nil {
			s.log.Warn("vote: undecodable message on the bus", "err", err)
			continue
		}
		s.feeds.mu.Lock()
		for fo := range f.followers {
			select {
			case fo.c <- m:
			default:
				delete(f.followers, fo)
				fo.err = errFellBehind
				close(fo.c)
			}
		}
		s.feeds.mu.Unlock()
	}
	// Closed: by the last unfollow (no followers left), or by the bus
	// (dropped as slow, or shutting down): the followers must resync.
	s.feeds.mu.Lock()
	defer s.feeds.mu.Unlock()
	if s.feeds.m[electionID] == f {
		delete(s.feeds.m, electionID)
		f.sub.Close()
		f.states.Close()
	}
	for fo := range f.followers {
		delete(f.followers, fo)
		fo.err = errFeedEnded
		close(fo.c)
	}
}
