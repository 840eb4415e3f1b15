package shortener

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// # Device targets
//
// A link may name other targets for device classes; the redirect picks the
// visitor's from its User-Agent, parsed by the classifier the click
// analytics use (mileusna/useragent, cached per agent string), and falls
// back to the link's target. Links without device targets never parse the
// agent on the redirect path.

// Device classes a link can have a target of.
const (
	TargetAndroid = "android"
	TargetIOS     = "ios"
	TargetDesktop = "desktop"
)

// DeviceClasses are the keys of device_long_urls, in the order they are
// tried: a phone's OS before the desktop class.
var DeviceClasses = []string{TargetAndroid, TargetIOS, TargetDesktop}

// deviceTargets is a link's device targets as the redirect path keeps them.
type deviceTargets struct {
	Android string `json:"a,omitempty"`
	IOS     string `json:"i,omitempty"`
	Desktop string `json:"d,omitempty"`
}

func deviceTargetsOf(m map[string]string) *deviceTargets {
	if len(m) == 0 {
		return nil
	}
	return &deviceTargets{Android: m[TargetAndroid], IOS: m[TargetIOS], Desktop: m[TargetDesktop]}
}

// pick is the target for a visitor described by a, "" for the default.
func (d *deviceTargets) pick(a agentInfo) string {
	switch {
	case d.Android != "" && a.os == "Android":
		return d.Android
	case d.IOS != "" && a.os == "iOS":
		return d.IOS
	case d.Desktop != "" && a.device == DeviceDesktop:
		return d.Desktop
	}
	return ""
}

// deviceProblems validates device targets; onUpdate accepts an empty value
// (which removes that device's target). It returns the normalised map and
// the violations, named device_long_urls.<device>.
func (s *Service) deviceProblems(in map[string]string, onUpdate bool, bad func(field, desc string)) map[string]string {
	if len(in) == 0 {
		return nil
	}
	out := make(map[string]string, len(in))
	for _, k := range slices.Sorted(maps.Keys(in)) {
		field := "device_long_urls." + k
		if !slices.Contains(DeviceClasses, k) {
			bad(field, "is not a device class (use "+strings.Join(DeviceClasses, ", ")+")")
			continue
		}
		if in[k] == "" && onUpdate {
			out[k] = ""
			continue
		}
		target, problem := s.targets.normalize(in[k])
		if problem != "" {
			bad(field, problem)
			continue
		}
		out[k] = target
	}
	return out
}

// # Maximum visits
//
// A link with max visits serves that many human redirects and then answers
// 410 like an expired link. Redirects are served from each replica's
// hot-key cache and clicks are counted late, in batches, so the limit needs
// a counter every replica increments atomically before redirecting: Redis
// when it is configured (one script call per redirect, on one key), the
// store otherwise (one conditional UPDATE). Links without a limit never
// touch it.
//
// The counter starts from the link's click count as the cache entry holds
// it (seed): visits before a limit was set count too, and a counter lost
// with Redis's data restarts from the clicks stored so far (those still in
// replicas' buffers, at most one flush interval's, are then served again).
// Bots and link previews do not use visits up; once a link has served its
// visits they are refused too.

// visitCounter takes visits of links with a limit.
type visitCounter interface {
	// take counts one visit of e's link if it has served fewer than its
	// maximum, and reports whether it did.
	take(ctx context.Context, code string, e *entry) (bool, error)
	// left reports whether e's link may still serve a visit.
	left(ctx context.Context, code string, e *entry) (bool, error)
}

// visitKeyTTL bounds an idle counter's life in Redis; a counter that
// expired starts again from the stored clicks.
const visitKeyTTL = 90 * 24 * time.Hour

// redisVisits keeps counters in Redis. The key holds the link's creation
// time as well as its code: codes are never reissued, but several
// deployments (or test databases) may share one Redis.
type redisVisits struct{ c redis.UniversalClient }

func visitKey(code string, e *entry) string {
	return "short:visits:" + code + ":" + strconv.FormatInt(e.Created, 36)
}

// takeVisit: KEYS[1] the counter; ARGV the maximum, the seed, the TTL (ms).
var takeVisit = redis.NewScript(`
local n = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), tonumber(ARGV[2]))
if n >= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], n + 1, 'PX', ARGV[3])
return 1`)

func (r redisVisits) take(ctx context.Context, code string, e *entry) (bool, error) {
	n, err := takeVisit.Run(ctx, r.c, []string{visitKey(code, e)}, e.MaxVisits, e.Seen, visitKeyTTL.Milliseconds()).Int64()
	if err != nil {
		return false, fmt.Errorf("shortener: visit counter: %w", err)
	}
	return n == 1, nil
}

func (r redisVisits) left(ctx context.Context, code string, e *entry) (bool, error) {
	n, err := r.c.Get(ctx, visitKey(code, e)).Int64()
	if err != nil && err != redis.Nil {
		return false, fmt.Errorf("shortener: visit counter: %w", err)
	}
	return max(n, e.Seen) < e.MaxVisits, nil
}

// storeVisits keeps counters in the store's rows (Store.TakeVisit).
type storeVisits struct{ st Store }

func (v storeVisits) take(ctx context.Context, code string, _ *entry) (bool, error) {
	return v.st.TakeVisit(ctx, code)
}

func (v storeVisits) left(ctx context.Context, code string, _ *entry) (bool, error) {
	l, err := v.st.GetLink(ctx, code)
	if err != nil {
		return false, err
	}
	return l.MaxVisits == 0 || max(l.Visits, l.Clicks) < l.MaxVisits, nil
}
