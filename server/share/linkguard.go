package share

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/apiplatform/platform/server/platform/bus"
	"github.com/apiplatform/platform/server/platform/epoch"
)

// A signed link's token stays valid until it expires, so revocation is a
// list every replica keeps in memory: the ids revoked and not yet expired
// (bounded by maxSignedExpiry), loaded from the store when the replica
// starts and kept current over the bus, the way sessions are
// (server/identity/sessioncache.go): every revocation is committed to the
// store, then bumps a revocation epoch (platform/epoch: in Redis, shared by
// every replica) and publishes its ids with the new epoch. A view reads the
// epoch; only when it equals the one this replica has applied every
// message up to is "not in the list" trusted. Otherwise (the bus was lost,
// a message is in flight or lost, Redis is down, the replica just started)
// the view reads the link's row. So a revocation is refused at the next
// view on every replica, and the steady-state cost of a view is one
// (coalesced) Redis GET.

// linkRevocationTopic carries revoked link ids to every replica.
const linkRevocationTopic = "share.signed.revocations"

var signedLinkChecks = promauto.NewCounterVec(prometheus.CounterOpts{
	Name: "share_signed_link_checks_total",
	Help: "Revocation checks of signed share link views by outcome: memory (no database read), database (memory not trusted, or a single-use link).",
}, []string{"result"})

// linkRevocation is one bus message: links revoked, and its epoch.
type linkRevocation struct {
	Epoch uint64           `json:"e,omitempty"`
	IDs   map[string]int64 `json:"l"` // id -> expiry, Unix milliseconds
}

// revokedLinks is this replica's list of revoked links.
type revokedLinks struct {
	mu  sync.Mutex
	ids map[string]time.Time // id -> when its token expires anyway
	// applied is the epoch whose revocations, and all before it, are in
	// ids; pending holds later ones that arrived out of order. trusted is
	// false until the list is loaded, and again when the bus was lost.
	applied   uint64
	pending   map[uint64]bool
	lagTarget uint64
	trusted   bool
	pruned    time.Time // when expired ids were last forgotten
}

// pruneEvery: adding ids also forgets expired ones, at most this often, so
// the list stays bounded while the periodic check (which prunes too) cannot
// read the epoch: with Redis down, revocations are still applied locally.
const pruneEvery = time.Minute

func newRevokedLinks() *revokedLinks {
	return &revokedLinks{ids: map[string]time.Time{}, pending: map[uint64]bool{}}
}

// check tells whether id is revoked, and whether that answer is sure at
// epoch (a revoked id is always sure: ids are never removed before expiry).
func (r *revokedLinks) check(id string, epoch uint64) (revoked, sure bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.ids[id]; ok {
		return true, true
	}
	return false, r.trusted && epoch == r.applied
}

// apply adds a revocation (epoch 0: the epoch could not be bumped; the ids
// still hold locally).
func (r *revokedLinks) apply(m linkRevocation) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, ms := range m.IDs {
		r.ids[id] = time.UnixMilli(ms)
	}
	if now := time.Now(); now.Sub(r.pruned) >= pruneEvery {
		r.pruneLocked(now)
	}
	if m.Epoch > r.applied {
		r.pending[m.Epoch] = true
		r.advance()
	}
}

func (r *revokedLinks) advance() {
	if !r.trusted {
		return
	}
	for r.pending[r.applied+1] {
		delete(r.pending, r.applied+1)
		r.applied++
	}
	for e := range r.pending {
		if e <= r.applied {
			delete(r.pending, e)
		}
	}
}

// stale tells, at the periodic check with the current epoch, whether the
// list must be loaded again: never loaded, the bus was lost, behind for a
// whole period (a message was lost), or ahead (the counter was reset).
func (r *revokedLinks) stale(epoch uint64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case !r.trusted, epoch < r.applied, r.lagTarget != 0 && r.applied < r.lagTarget:
		return true
	case epoch == r.applied:
		r.lagTarget = 0
	default:
		r.lagTarget = epoch
	}
	return false
}

// loaded merges the list read from the store after reading epoch, and
// declares it current to epoch (messages applied meanwhile are kept).
func (r *revokedLinks) loaded(epoch uint64, ids map[string]time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, exp := range ids {
		r.ids[id] = exp
	}
	r.applied, r.lagTarget, r.trusted = epoch, 0, true
	r.advance()
}

// unsure distrusts the list until it is loaded again: the bus subscription
// was lost, so messages may have been missed.
func (r *revokedLinks) unsure() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.trusted = false
}

// prune forgets ids whose tokens have expired (refused for that anyway).
func (r *revokedLinks) prune(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pruneLocked(now)
}

func (r *revokedLinks) pruneLocked(now time.Time) {
	r.pruned = now
	for id, exp := range r.ids {
		if !now.Before(exp) {
			delete(r.ids, id)
		}
	}
}

// followLinkRevocations applies revocations from the bus and reloads the
// list when it cannot be trusted. sub is subscribed already (before the
// first load, so nothing published after it is missed), or nil.
func (s *Service) followLinkRevocations(ctx context.Context, sub *bus.Subscription) {
	if e, err := s.linkEpochs.Current(ctx); err == nil {
		s.resyncLinks(ctx, e)
	}
	epoch.Follower{Bus: s.bus, Topic: linkRevocationTopic, Sub: sub, Counter: s.linkEpochs, Every: s.cfg.LinkResync, Log: s.log,
		Apply: func(m []byte) {
			var r linkRevocation
			if json.Unmarshal(m, &r) == nil {
				s.revoked.apply(r)
			}
		},
		Unsure: s.revoked.unsure,
		Resync: func(e uint64) { s.resyncLinks(ctx, e) }}.Run(ctx)
}

// resyncLinks reloads the list from the store when it is stale at epoch
// e. The epoch is read before the load: a revocation committed after the
// load bumps the epoch past it and arrives on the bus (or makes the next
// check stale).
//
// It runs on the wall clock, not s.now: it starts with the service, before
// a test could set that clock.
func (s *Service) resyncLinks(ctx context.Context, e uint64) {
	now := time.Now()
	s.revoked.prune(now)
	if !s.revoked.stale(e) {
		return
	}
	ids, err := s.store.RevokedSignedLinks(ctx, now)
	if err != nil {
		return
	}
	s.revoked.loaded(e, ids)
}

// broadcastRevoked tells every replica that ids (revoked in the store
// already) are refused: bump the epoch, apply locally, publish. A failure
// to bump or publish leaves the other replicas unsure (their epoch read
// fails, or does not match what they applied), so they ask the database.
func (s *Service) broadcastRevoked(ctx context.Context, ids map[string]time.Time) {
	if len(ids) == 0 {
		return
	}
	m := linkRevocation{IDs: make(map[string]int64, len(ids))}
	for id, exp := range ids {
		m.IDs[id] = exp.UnixMilli()
	}
	e, err := s.linkEpochs.Next(ctx)
	if err != nil {
		s.log.Warn("share: revocation epoch not bumped; replicas check signed links in the database", "err", err)
	}
	m.Epoch = e
	s.revoked.apply(m)
	msg, _ := json.Marshal(m)
	if err := s.bus.Publish(ctx, linkRevocationTopic, msg); err != nil {
		s.log.Warn("share: revocation not broadcast; replicas check signed links in the database until they resync", "err", err)
	}
}
