package vote

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/redis/go-redis/v9"
)

// Verifier checks a CAPTCHA token (the hook: SiteVerify is the stock one).
type Verifier interface {
	// Verify reports whether token proves a human; err is for a verifier
	// that could not answer (the vote is then refused as UNAVAILABLE: an
	// outage must not let bots in).
	Verify(ctx context.Context, token string, remote netip.Addr) (bool, error)
}

// SiteVerify is the siteverify protocol shared by reCAPTCHA, hCaptcha and
// Cloudflare Turnstile: POST secret, response and remoteip as a form, read
// {"success": bool, "error-codes": [...]}.
type SiteVerify struct {
	URL    string
	Secret string
	Client *http.Client // with a timeout
}

// Verify implements Verifier.
func (v *SiteVerify) Verify(ctx context.Context, token string, remote netip.Addr) (bool, error) {
	form := url.Values{"secret": {v.Secret}, "response": {token}}
	if remote.IsValid() {
		form.Set("remoteip", remote.String())
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, v.URL, strings.NewReader(form.Encode()))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := v.Client.Do(req)
	if err != nil {
		return false, fmt.Errorf("captcha verifier: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return false, fmt.Errorf("captcha verifier: HTTP %d", res.StatusCode)
	}
	var out struct {
		Success    bool     `json:"success"`
		ErrorCodes []string `json:"error-codes"`
	}
	if err := json.NewDecoder(io.LimitReader(res.Body, 64<<10)).Decode(&out); err != nil {
		return false, fmt.Errorf("captcha verifier: %w", err)
	}
	return out.Success, nil
}

// accountSet remembers which accounts voted from one address in one
// election and window: the "too many accounts from one IP" rule.
type accountSet interface {
	// add records user under key for ttl and reports whether it was new
	// and how many accounts key and prev (the window before) hold now.
	// Counting the previous window too means a burst that straddles a
	// window boundary still meets the cap: a fixed window alone would let
	// twice the cap through. (An account votes once per election, so the
	// two sets do not overlap.)
	add(ctx context.Context, key, prev, user string, ttl time.Duration) (added bool, n int64, err error)
	remove(ctx context.Context, key, user string) error
}

// redisAccounts keeps the sets in Redis, shared by every replica (one key
// per set, so Cluster is fine).
type redisAccounts struct{ c redis.UniversalClient }

var addAccount = redis.NewScript(`
local added = redis.call('SADD', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {added, redis.call('SCARD', KEYS[1]) + redis.call('SCARD', KEYS[2])}`)

func (r redisAccounts) add(ctx context.Context, key, prev, user string, ttl time.Duration) (bool, int64, error) {
	res, err := addAccount.Run(ctx, r.c, []string{key, prev}, user, ttl.Milliseconds()).Int64Slice()
	if err != nil || len(res) != 2 {
		return false, 0, fmt.Errorf("vote: accounts per address: %w", err)
	}
	return res[0] == 1, res[1], nil
}

func (r redisAccounts) remove(ctx context.Context, key, user string) error {
	return r.c.SRem(ctx, key, user).Err()
}

// memoryAccounts is the in-process twin (one replica); the LRU bounds its
// memory, and a key's window is part of the key.
type memoryAccounts struct {
	mu   sync.Mutex
	sets *lru.Cache[string, map[string]struct{}]
}

func newMemoryAccounts() *memoryAccounts {
	c, _ := lru.New[string, map[string]struct{}](100_000)
	return &memoryAccounts{sets: c}
}

func (m *memoryAccounts) add(_ context.Context, key, prev, user string, _ time.Duration) (bool, int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	set, ok := m.sets.Get(key)
	if !ok {
		set = map[string]struct{}{}
		m.sets.Add(key, set)
	}
	_, had := set[user]
	set[user] = struct{}{}
	before, _ := m.sets.Peek(prev)
	return !had, int64(len(set) + len(before)), nil
}

func (m *memoryAccounts) remove(_ context.Context, key, user string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if set, ok := m.sets.Get(key); ok {
		delete(set, user)
	}
	return nil
}

// maskedNetwork is what the audit trail keeps of an address: its /24
// (IPv4) or /48 (IPv6).
func maskedNetwork(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	bits := 48
	if a.Is4() {
		bits = 24
	}
	p, _ := a.Prefix(bits)
	return p.String()
}

// accountsKeys are the sets of accounts seen from host in election during
// the fixed window containing now and the one before it; hash-tagged alike
// so that one script reads both on Redis Cluster.
func accountsKeys(electionID, host string, now time.Time, window time.Duration) (cur, prev string) {
	n := now.UnixNano() / int64(window)
	base := "vote:accounts:{" + electionID + ":" + host + "}:"
	return base + strconv.FormatInt(n, 10), base + strconv.FormatInt(n-1, 10)
}

// createdAtCache remembers account creation times (immutable) so the
// account-age rule costs a store read once per user and process.
type createdAtCache struct {
	users Users
	cache *lru.Cache[string, time.Time]
}

func (c *createdAtCache) get(ctx context.Context, userID string) (time.Time, error) {
	if t, ok := c.cache.Get(userID); ok {
		return t, nil
	}
	u, err := c.users.GetUser(ctx, userID)
	if err != nil {
		return time.Time{}, err
	}
	if u.CreatedAt.IsZero() {
		return time.Time{}, errors.New("vote: account without a creation time")
	}
	c.cache.Add(userID, u.CreatedAt)
	return u.CreatedAt, nil
}
