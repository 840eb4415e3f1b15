package identity

import (
	"crypto/sha256"
	"testing"
	"time"

	"github.com/apiplatform/platform/server/platform/auth"
)

func th(s string) tokenHash { return sha256.Sum256([]byte(s)) }

var t0 = time.Unix(1_700_000_000, 0)

// A database answer read before a revocation was applied is not cached
// after it: the revocation cannot be undone by a racing fill.
func TestSessionCacheFillRacingRevocation(t *testing.T) {
	c := newSessionCache(10, time.Minute, 5)
	p := auth.Principal{UserID: "u", SessionID: "s"}
	if _, hit, fillable := c.get(th("a"), 5, t0); hit || !fillable {
		t.Fatalf("hit=%v fillable=%v on an empty current cache", hit, fillable)
	}
	c.apply(revocation{Epoch: 6, Sessions: []string{"s"}}) // lands during the read
	c.add(th("a"), p, t0.Add(time.Hour), 5, t0)
	if _, hit, _ := c.get(th("a"), 6, t0); hit {
		t.Fatal("a fill from before the revocation was cached")
	}
	c.add(th("a"), p, t0.Add(time.Hour), 6, t0)
	if got, hit, _ := c.get(th("a"), 6, t0); !hit || got != p {
		t.Fatalf("get = %v, %v", got, hit)
	}
	// Entries age out at maxAge even without a revocation.
	if _, hit, _ := c.get(th("a"), 6, t0.Add(time.Minute)); hit {
		t.Fatal("entry outlived maxAge")
	}
}

// The cache answers only for the epoch it applied everything up to;
// revocations arriving out of order are counted once the gap fills, and a
// gap that never fills (a lost message) empties the cache at the second
// resync.
func TestSessionCacheEpochs(t *testing.T) {
	c := newSessionCache(10, time.Hour, 1)
	c.add(th("a"), auth.Principal{UserID: "u", SessionID: "s1"}, t0.Add(time.Hour), 1, t0)
	c.add(th("b"), auth.Principal{UserID: "u", SessionID: "s2"}, t0.Add(time.Hour), 1, t0)
	c.add(th("c"), auth.Principal{UserID: "v", SessionID: "s3"}, t0.Add(time.Hour), 1, t0)
	c.apply(revocation{Epoch: 3, User: "u"})
	if _, hit, _ := c.get(th("c"), 3, t0); hit {
		t.Fatal("answered for epoch 3 with epoch 2 missing")
	}
	c.apply(revocation{Epoch: 2})
	if _, hit, _ := c.get(th("c"), 3, t0); !hit {
		t.Fatal("not current once the gap filled")
	}
	for _, h := range []tokenHash{th("a"), th("b")} {
		if _, hit, _ := c.get(h, 3, t0); hit {
			t.Fatal("a revoked user's session is still cached")
		}
	}
	c.resync(5) // epoch 4 and 5 never arrive
	if _, hit, _ := c.get(th("c"), 5, t0); hit {
		t.Fatal("answered while behind")
	}
	c.resync(5)
	if _, hit, fillable := c.get(th("c"), 5, t0); hit || !fillable {
		t.Fatalf("after resync: hit=%v fillable=%v; want an empty, current cache", hit, fillable)
	}
	c.unsure()
	if _, _, fillable := c.get(th("c"), 5, t0); fillable {
		t.Fatal("trusted after losing the bus")
	}
	c.resync(2) // a counter that went back (Redis lost its data)
	if _, _, fillable := c.get(th("c"), 2, t0); !fillable {
		t.Fatal("not current after resync")
	}
}
