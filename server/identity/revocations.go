package identity

import (
	"context"
	"encoding/json"
	"time"

	"github.com/apiplatform/platform/server/platform/bus"
	"github.com/apiplatform/platform/server/platform/epoch"
)

// revocationTopic carries revocations to every replica.
const revocationTopic = "identity.revocations"

// revocation names sessions that no longer authenticate: some by id, or
// every session of a user. Epoch is its place in the revocation order.
type revocation struct {
	Epoch    uint64   `json:"e,omitempty"`
	Sessions []string `json:"s,omitempty"`
	User     string   `json:"u,omitempty"`
}

// SessionCacheConfig tunes the session cache (zero fields: the defaults).
type SessionCacheConfig struct {
	// MaxEntries bounds the cache (100,000 sessions).
	MaxEntries int
	// MaxAge bounds how long an entry is trusted even with no revocation
	// (30s): the bound on damage if Redis is reachable from some replicas
	// and not from the one revoking.
	MaxAge time.Duration
	// Resync is how often the epoch is compared with what was applied, to
	// recover from lost messages (250ms).
	Resync time.Duration
}

// enableSessionCache makes Authenticate answer from memory, kept current
// through the bus and the revocation epoch ep (nil: in process, for the
// embedded default). stop ends it.
func (s *Service) enableSessionCache(b bus.Bus, ep epoch.Counter, cfg SessionCacheConfig) (stop func() error) {
	if ep == nil {
		ep = epoch.NewMemory()
	}
	c := newSessionCache(cfg.MaxEntries, cfg.MaxAge, 0)
	c.unsure() // until the first resync reads the epoch
	s.epochs, s.cache, s.bus = ep, c, b
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	follow := epoch.Follower{Bus: b, Topic: revocationTopic, Counter: ep, Every: cfg.Resync, Log: s.log,
		Apply: func(m []byte) {
			var r revocation
			if json.Unmarshal(m, &r) == nil {
				c.apply(r)
			}
		},
		Unsure: c.unsure, Resync: c.resync}
	go func() {
		defer close(done)
		follow.Run(ctx)
	}()
	if e, err := ep.Current(ctx); err == nil {
		c.resync(e)
	}
	return func() error { cancel(); <-done; return nil }
}

// revoke tells every replica that r's sessions (already revoked in the
// store) are gone: bump the epoch, apply locally, publish. A failure to
// bump or publish leaves the other replicas unsure (their epoch read
// fails, or does not match what they applied), so they ask the database.
func (s *Service) revoke(ctx context.Context, r revocation) {
	if s.cache == nil {
		return
	}
	e, err := epoch.Bump(ctx, s.epochs)
	if err != nil {
		s.log.Warn("identity: revocation epoch not bumped; replicas read sessions from the database", "err", err)
	}
	r.Epoch = e
	s.cache.apply(r)
	msg, _ := json.Marshal(r)
	if err := s.bus.Publish(ctx, revocationTopic, msg); err != nil {
		s.log.Warn("identity: revocation not broadcast; replicas read sessions from the database until they resync", "err", err)
	}
}
