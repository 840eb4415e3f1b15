package identity

import (
	"crypto/sha256"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/apiplatform/platform/server/platform/auth"
	"github.com/apiplatform/platform/server/platform/epoch"
)

// Sessions are verified from an in-process cache, not from signed tokens.
// Why: our tokens are opaque and already out there (browsers, scripts); a
// cache keeps them, needs no key ring to rotate or leak, and its
// invalidations are the same few events whatever the token format. What
// makes it safe is a revocation epoch: a counter (in Redis, shared by every
// replica; in process on the embedded default) that every revocation bumps
// after it is committed to the store, and whose new value rides on the bus
// message that names what was revoked. A replica answers from its cache
// only when the epoch it reads at the start of the call is the one it has
// applied every message up to; otherwise (bus lost, messages in flight,
// Redis down, a restart) it asks the database. So a revocation is effective
// on the very next call on every replica, and the steady-state cost of a
// call is one Redis GET instead of a database join.
//
// Fills are guarded the same way: an entry read from the database is kept
// only if no revocation was applied since the epoch read before the read,
// so a revocation racing with a fill cannot be undone by it.

var sessionCacheTotal = promauto.NewCounterVec(prometheus.CounterOpts{
	Name: "session_cache_requests_total",
	Help: "Session verifications by outcome: hit (no database read), miss (read and cached), fallback (read, cache not trusted).",
}, []string{"result"})

type tokenHash = [sha256.Size]byte

type cachedSession struct {
	p       auth.Principal
	expires time.Time // the access token's expiry, bounded by maxAge
}

// sessionCache maps access-token hashes to principals.
type sessionCache struct {
	maxEntries int
	maxAge     time.Duration

	mu        sync.Mutex
	entries   map[tokenHash]cachedSession
	bySession map[string]tokenHash
	byUser    map[string]map[tokenHash]struct{}
	track     epoch.Tracker
}

func newSessionCache(maxEntries int, maxAge time.Duration, e uint64) *sessionCache {
	c := &sessionCache{maxEntries: maxEntries, maxAge: maxAge}
	c.reset(e)
	return c
}

// reset empties the cache and declares it current to epoch.
func (c *sessionCache) reset(e uint64) {
	c.entries = map[tokenHash]cachedSession{}
	c.bySession = map[string]tokenHash{}
	c.byUser = map[string]map[tokenHash]struct{}{}
	c.track.Reset(e)
}

// get returns the cached principal when the cache is current to epoch.
// fillable tells whether a database answer may be added (with add).
func (c *sessionCache) get(h tokenHash, e uint64, now time.Time) (p auth.Principal, hit, fillable bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.track.Current(e) {
		return auth.Principal{}, false, false
	}
	entry, ok := c.entries[h]
	if ok && now.Before(entry.expires) {
		return entry.p, true, true
	}
	return auth.Principal{}, false, true
}

// add caches p unless a revocation was applied since epoch was read.
func (c *sessionCache) add(h tokenHash, p auth.Principal, expires time.Time, e uint64, now time.Time) {
	if limit := now.Add(c.maxAge); expires.After(limit) {
		expires = limit
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.track.Current(e) {
		return
	}
	if len(c.entries) >= c.maxEntries {
		c.reset(e) // crude but safe: refilled from the database
	}
	c.entries[h] = cachedSession{p: p, expires: expires}
	c.bySession[p.SessionID] = h
	if c.byUser[p.UserID] == nil {
		c.byUser[p.UserID] = map[tokenHash]struct{}{}
	}
	c.byUser[p.UserID][h] = struct{}{}
}

func (c *sessionCache) drop(h tokenHash) {
	e, ok := c.entries[h]
	if !ok {
		return
	}
	delete(c.entries, h)
	delete(c.bySession, e.p.SessionID)
	if hs := c.byUser[e.p.UserID]; hs != nil {
		delete(hs, h)
		if len(hs) == 0 {
			delete(c.byUser, e.p.UserID)
		}
	}
}

// apply removes what r revokes and records its epoch (0: none, e.g. the
// epoch could not be bumped; the removal still holds locally).
func (c *sessionCache) apply(r revocation) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range r.Sessions {
		if h, ok := c.bySession[id]; ok {
			c.drop(h)
		}
	}
	if r.User != "" {
		for h := range c.byUser[r.User] {
			c.drop(h)
		}
	}
	c.track.Apply(r.Epoch)
}

// resync is called periodically with the current epoch (epoch.Tracker).
func (c *sessionCache) resync(e uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.track.Resync(e) {
		c.reset(e)
	}
}

// unsure forgets everything: the bus subscription was lost, so messages
// may have been missed; until resync every call asks the database.
func (c *sessionCache) unsure() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reset(0)
	c.track.Unsure()
}
