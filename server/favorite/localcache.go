package favorite

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/apiplatform/platform/server/platform/bus"
	"github.com/apiplatform/platform/server/platform/epoch"
)

// Favorite reads are answered from process memory when it is provably
// current, the same way sessions are (server/identity/sessioncache.go):
// every save or erasure bumps a counter shared by every replica (the
// favorite epoch, read in the same Redis round trip as the revocation epoch
// each authenticated call reads anyway: epoch.NewRedisGroup) after its
// commit, and names the user on the bus with the new value. A replica
// answers from memory only when the epoch read for the call equals the one
// it has applied every message up to; otherwise (a message in flight, the
// bus lost, Redis down) it reads the shared cache and the store as before.
// So a read that starts after a save was acknowledged sees it on every
// replica, and a steady-state read costs no round trip of its own.
//
// A fill is kept only if no save was applied since the epoch read before
// the load, so a save racing with a load cannot be undone by it.

// invalidationTopic carries, for each save or erasure, the user and its
// favorite epoch.
const invalidationTopic = "favorite.invalidations"

type invalidation struct {
	Epoch uint64 `json:"e,omitempty"`
	User  string `json:"u"`
}

var localCacheTotal = promauto.NewCounterVec(prometheus.CounterOpts{
	Name: "favorite_local_cache_requests_total",
	Help: "Favorite reads by outcome: hit (from process memory), miss (loaded and kept), fallback (loaded, memory not trusted).",
}, []string{"result"})

type localEntry struct {
	f       Favorite
	expires time.Time
}

type localCache struct {
	maxEntries int
	maxAge     time.Duration

	mu      sync.Mutex
	entries map[string]localEntry
	track   epoch.Tracker
}

func newLocalCache(maxEntries int, maxAge time.Duration) *localCache {
	c := &localCache{maxEntries: maxEntries, maxAge: maxAge}
	c.unsure() // until the first resync reads the epoch
	return c
}

func (c *localCache) reset(e uint64) {
	c.entries = map[string]localEntry{}
	c.track.Reset(e)
}

// get returns the user's favorite when memory is current to e; fillable
// tells whether a loaded one may be added (with add).
func (c *localCache) get(user string, e uint64, now time.Time) (f Favorite, hit, fillable bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.track.Current(e) {
		return Favorite{}, false, false
	}
	entry, ok := c.entries[user]
	if ok && now.Before(entry.expires) {
		return entry.f, true, true
	}
	return Favorite{}, false, true
}

// add keeps f unless a save was applied since e was read.
func (c *localCache) add(f Favorite, e uint64, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.track.Current(e) {
		return
	}
	if len(c.entries) >= c.maxEntries {
		c.reset(e) // crude but safe: refilled from the shared cache
	}
	c.entries[f.UserID] = localEntry{f: f, expires: now.Add(c.maxAge)}
}

func (c *localCache) apply(inv invalidation) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, inv.User)
	c.track.Apply(inv.Epoch)
}

func (c *localCache) resync(e uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.track.Resync(e) {
		c.reset(e)
	}
}

func (c *localCache) unsure() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reset(0)
	c.track.Unsure()
}

// follow keeps c current until ctx ends; see epoch.Follower.
func (c *localCache) follow(ctx context.Context, b bus.Bus, ep epoch.Counter, every time.Duration, log *slog.Logger) {
	if e, err := ep.Current(ctx); err == nil {
		c.resync(e)
	}
	epoch.Follower{Bus: b, Topic: invalidationTopic, Counter: ep, Every: every, Log: log,
		Apply: func(m []byte) {
			var inv invalidation
			if json.Unmarshal(m, &inv) == nil {
				c.apply(inv)
			}
		},
		Unsure: c.unsure, Resync: c.resync}.Run(ctx)
}
