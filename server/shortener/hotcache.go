package shortener

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/apiplatform/platform/server/platform/cache"
	"github.com/apiplatform/platform/server/platform/storeerr"
)

// entry is a link as the redirect path needs it; cached as JSON in the
// shared cache and decoded in the hot-key cache. The shared cache holds
// live and deleted links only: unknown codes are remembered only in the
// hot-key cache (creates broadcast their codes to drop those entries).
type entry struct {
	Missing      bool   `json:"-"`
	Target       string `json:"t,omitempty"`
	Kind         int    `json:"k,omitempty"`
	ExpiresAt    int64  `json:"e,omitempty"` // unix µs; 0: never
	PasswordHash string `json:"p,omitempty"`
	Deleted      bool   `json:"d,omitempty"`
	// Devices are the device targets; nil for most links, which then do
	// not look at the User-Agent.
	Devices *deviceTargets `json:"v,omitempty"`
	// With a visit limit (0: none): the limit, the visits known served when
	// the entry was loaded (the counter's seed) and the creation time (unix
	// µs, part of the counter's key).
	MaxVisits int64 `json:"m,omitempty"`
	Seen      int64 `json:"s,omitempty"`
	Created   int64 `json:"c,omitempty"`
}

func entryOf(l Link) *entry {
	e := &entry{Target: l.Target, Kind: l.Kind, PasswordHash: l.PasswordHash, Deleted: !l.DeletedAt.IsZero(), Devices: deviceTargetsOf(l.DeviceTargets)}
	if !l.ExpiresAt.IsZero() {
		e.ExpiresAt = l.ExpiresAt.UnixMicro()
	}
	if l.MaxVisits > 0 {
		e.MaxVisits, e.Seen, e.Created = l.MaxVisits, max(l.Clicks, l.Visits), l.CreatedAt.UnixMicro()
	}
	return e
}

func (e *entry) expired(now time.Time) bool {
	return e.ExpiresAt != 0 && now.UnixMicro() >= e.ExpiresAt
}

func cacheKey(code string) string { return "short:" + code }

// resolve reads a link through the hot-key cache, the shared cache and the
// store.
func (s *Service) resolve(ctx context.Context, code string) (*entry, error) {
	if e, ok := s.local.Get(code); ok {
		localHit.Inc()
		return e, nil
	}
	localMiss.Inc()
	epoch := s.local.Epoch(code)
	raw, err := cache.GetOrLoad(ctx, s.cache, &s.loads, cacheKey(code), s.cfg.CacheTTL, func(ctx context.Context) ([]byte, error) {
		l, err := s.store.GetLink(ctx, code)
		if err != nil {
			return nil, err
		}
		return json.Marshal(entryOf(l))
	})
	var e *entry
	switch {
	case errors.Is(err, storeerr.ErrNotFound):
		e = &entry{Missing: true}
	case err != nil:
		return nil, err
	default:
		e = new(entry)
		if err := json.Unmarshal(raw, e); err != nil {
			return nil, err
		}
	}
	s.local.Fill(code, epoch, e)
	return e, nil
}

// invalidate runs after a write committed: the shared cache first, then
// every replica's hot-key cache (this one's included). A client that gave
// up must not stop it, hence WithoutCancel.
func (s *Service) invalidate(ctx context.Context, shared bool, codes ...string) {
	if len(codes) == 0 {
		return
	}
	ctx = context.WithoutCancel(ctx)
	if shared {
		keys := make([]string, len(codes))
		for i, c := range codes {
			keys[i] = cacheKey(c)
		}
		_ = s.cache.Delete(ctx, keys...)
	}
	s.local.Drop(ctx, codes...)
}
