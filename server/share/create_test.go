package share_test

import (
	"context"
	"math/big"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"

	sharev1 "github.com/apiplatform/platform/gen/go/share/v1"
	"github.com/apiplatform/platform/server/platform/ratelimit"
	"github.com/apiplatform/platform/server/platform/wire"
	"github.com/apiplatform/platform/server/share"
)

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

var slugRE = regexp.MustCompile(`^[0-9A-Za-z]{11}$`)

// Slugs are 11 base62 characters carrying 64 random bits: far more than
// the 42 the spec asks for. Decoded back to numbers, every one of the 64
// bits is set in about half of the slugs (a generator with fewer random
// bits, or a biased one, leaves some bit far from half), and every base62
// character turns up in the low positions.
func TestSlugEntropy(t *testing.T) {
	const n = 4000
	seen := map[string]bool{}
	var ones [64]int
	used := map[byte]bool{}
	max64 := new(big.Int).Lsh(big.NewInt(1), 64)
	for range n {
		s, err := share.NewSlug()
		if err != nil {
			t.Fatal(err)
		}
		if !slugRE.MatchString(s) {
			t.Fatalf("slug %q is not 11 base62 characters", s)
		}
		if seen[s] {
			t.Fatalf("slug %q repeated within %d", s, n)
		}
		seen[s] = true
		v := new(big.Int)
		for i := range len(s) {
			v.Mul(v, big.NewInt(62)).Add(v, big.NewInt(int64(strings.IndexByte(base62, s[i]))))
		}
		if v.Cmp(max64) >= 0 {
			t.Fatalf("slug %q decodes above 2^64", s)
		}
		for b := range 64 {
			ones[b] += int(v.Bit(b))
		}
		used[s[10]], used[s[9]] = true, true
	}
	// Binomial(4000, 1/2) has a standard deviation of ~32: 40% and 60%
	// are 6 deviations out, never reached by chance.
	for b, c := range ones {
		if c < n*4/10 || c > n*6/10 {
			t.Errorf("bit %d set in %d of %d slugs", b, c, n)
		}
	}
	if len(used) != 62 {
		t.Errorf("%d distinct characters in the last positions, want all 62", len(used))
	}
}

// Creating a share answers 201 with a link under the public base URL; a
// snapshot freezes the colour, a live share stores none.
func TestCreateShare(t *testing.T) {
	e := newEnv(t, testConfig())
	owner := e.user(t, "red")
	for _, snapshot := range []bool{true, false} {
		ctx, h := recording(owner)
		res, err := e.svc.CreateShare(ctx, &sharev1.CreateShareRequest{Snapshot: snapshot, ExpiresInSec: 3600})
		if err != nil {
			t.Fatal(err)
		}
		sh := res.GetShare()
		if h.get(wire.StatusKey) != "201" {
			t.Errorf("status metadata %v, want x-http-code 201", h.md)
		}
		if !slugRE.MatchString(sh.GetSlug()) || sh.GetUrl() != "https://colors.example/s/"+sh.GetSlug() {
			t.Errorf("slug %q url %q", sh.GetSlug(), sh.GetUrl())
		}
		if sh.GetHex() != "#FF0000" || sh.GetSnapshot() != snapshot || sh.GetOwnerUserId() != userID(owner) || sh.GetRevoked() {
			t.Errorf("created %v", sh)
		}
		if got, want := sh.GetExpireTime().AsTime(), e.clock.Now().Add(time.Hour); !got.Equal(want) {
			t.Errorf("expires %v, want %v", got, want)
		}
		stored, err := e.store.GetShare(context.Background(), sh.GetSlug())
		if err != nil {
			t.Fatal(err)
		}
		wantHex := map[bool]string{true: "#FF0000", false: ""}[snapshot]
		if stored.OwnerID != userID(owner) || stored.Snapshot != snapshot || stored.Hex != wantHex || !stored.ExpiresAt.Equal(e.clock.Now().Add(time.Hour)) {
			t.Errorf("stored %+v", stored)
		}
	}
}

// Refused creations say why and store nothing.
func TestCreateShareRefusals(t *testing.T) {
	e := newEnv(t, testConfig())
	owner := e.user(t, "red")
	for _, exp := range []int64{-1, 1, 59, 365*24*3600 + 1} {
		_, err := e.svc.CreateShare(owner, &sharev1.CreateShareRequest{ExpiresInSec: exp})
		wantStatus(t, err, codes.InvalidArgument, "expiresInSec")
	}
	_, err := e.svc.CreateShare(as(uuid.NewString(), "192.0.2.1"), &sharev1.CreateShareRequest{Snapshot: true})
	if st := wantStatus(t, err, codes.FailedPrecondition); reason(st) != "NO_FAVORITE" {
		t.Fatalf("reason %q", reason(st))
	}
	_, err = e.svc.CreateShare(anonymous(), &sharev1.CreateShareRequest{})
	wantStatus(t, err, codes.Unauthenticated)
	if rows, err := e.store.ListShares(context.Background(), userID(owner), nil, 10); err != nil || len(rows) != 0 {
		t.Fatalf("refused creations stored %v (%v)", rows, err)
	}
	// The bounds themselves are fine.
	for _, exp := range []int64{60, 365 * 24 * 3600} {
		if _, err := e.svc.CreateShare(owner, &sharev1.CreateShareRequest{ExpiresInSec: exp}); err != nil {
			t.Fatalf("expires_in_sec %d: %v", exp, err)
		}
	}
}

// Creation is limited per user and, apart, per client address.
func TestCreateShareLimits(t *testing.T) {
	tight := ratelimit.Limit{Rate: 1, Period: time.Hour, Burst: 2}
	t.Run("per user", func(t *testing.T) {
		cfg := testConfig()
		cfg.UserLimit = tight
		e := newEnv(t, cfg)
		owner := e.user(t, "red")
		for range 2 {
			if _, err := e.svc.CreateShare(owner, &sharev1.CreateShareRequest{}); err != nil {
				t.Fatal(err)
			}
		}
		_, err := e.svc.CreateShare(owner, &sharev1.CreateShareRequest{})
		if st := wantStatus(t, err, codes.ResourceExhausted); reason(st) != "RATE_LIMITED" {
			t.Fatalf("reason %q", reason(st))
		}
		if _, err := e.svc.CreateShare(e.user(t, "blue"), &sharev1.CreateShareRequest{}); err != nil {
			t.Fatalf("another user from the same address: %v", err)
		}
	})
	t.Run("per address", func(t *testing.T) {
		cfg := testConfig()
		cfg.AddrLimit = tight
		e := newEnv(t, cfg)
		for range 2 {
			if _, err := e.svc.CreateShare(e.user(t, "red"), &sharev1.CreateShareRequest{}); err != nil {
				t.Fatal(err)
			}
		}
		_, err := e.svc.CreateShare(e.user(t, "red"), &sharev1.CreateShareRequest{})
		wantStatus(t, err, codes.ResourceExhausted)
		elsewhere := as(uuid.NewString(), "203.0.113.50")
		e.setColour(t, elsewhere, "red")
		if _, err := e.svc.CreateShare(elsewhere, &sharev1.CreateShareRequest{}); err != nil {
			t.Fatalf("another address: %v", err)
		}
	})
}

// An owner lists their own shares, newest first, a page at a time; live
// ones show the current colour.
func TestListShares(t *testing.T) {
	e := newEnv(t, testConfig())
	owner := e.user(t, "red")
	var slugs []string
	for i := range 3 {
		res, err := e.svc.CreateShare(owner, &sharev1.CreateShareRequest{Snapshot: i != 2})
		if err != nil {
			t.Fatal(err)
		}
		slugs = append(slugs, res.GetShare().GetSlug())
		e.clock.Add(time.Second)
	}
	if _, err := e.svc.CreateShare(e.user(t, "blue"), &sharev1.CreateShareRequest{}); err != nil {
		t.Fatal(err)
	}
	e.setColour(t, owner, "lime")

	p1, err := e.svc.ListShares(owner, &sharev1.ListSharesRequest{PageSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(p1.GetShares()) != 2 || p1.GetShares()[0].GetSlug() != slugs[2] || p1.GetShares()[1].GetSlug() != slugs[1] || p1.GetNextPageToken() == "" {
		t.Fatalf("page 1 = %v, want %s, %s and a token", p1, slugs[2], slugs[1])
	}
	if live, snap := p1.GetShares()[0], p1.GetShares()[1]; live.GetHex() != "#00FF00" || snap.GetHex() != "#FF0000" {
		t.Fatalf("live shows %s, snapshot %s; want #00FF00, #FF0000", live.GetHex(), snap.GetHex())
	}
	p2, err := e.svc.ListShares(owner, &sharev1.ListSharesRequest{PageSize: 2, PageToken: p1.GetNextPageToken()})
	if err != nil {
		t.Fatal(err)
	}
	if len(p2.GetShares()) != 1 || p2.GetShares()[0].GetSlug() != slugs[0] || p2.GetNextPageToken() != "" {
		t.Fatalf("page 2 = %v, want %s alone", p2, slugs[0])
	}
	_, err = e.svc.ListShares(owner, &sharev1.ListSharesRequest{PageToken: "not-a-token"})
	wantStatus(t, err, codes.InvalidArgument, "pageToken")
	_, err = e.svc.ListShares(owner, &sharev1.ListSharesRequest{PageSize: 101})
	wantStatus(t, err, codes.InvalidArgument, "pageSize")
}
