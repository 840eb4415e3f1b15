package app_test

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	shortenerv1 "github.com/apiplatform/platform/gen/go/shortener/v1"
)

// Two replicas over one database and one Redis: an edit or a delete made
// on one is served by the other at once although the other holds the link
// in its hot-key cache (whose TTL here is far longer than the test), codes
// created on both never collide, and both replicas' clicks add up.
func TestShortenerTwoReplicas(t *testing.T) {
	var ps []*platform
	for _, cfg := range replicaConfigs(t, "region-a", "region-b") {
		shortConfig(&cfg)
		cfg.Shortener.LocalCacheTTL, cfg.Shortener.CacheTTL = time.Hour, time.Hour
		ps = append(ps, startConfig(t, cfg))
	}
	a, b := ps[0], ps[1]
	ra, rb := shortREST{a}, shortREST{b}
	ga, gb := &shortGRPC{p: a}, &shortGRPC{p: b}
	_, tok := grpcAPI{a}.guest(t)

	u := shortMustCreate(t, ra, tok, shortReq("https://example.com/v1"))
	// Both replicas now hold v1 in their hot-key caches.
	for _, c := range []shortAPI{ra, rb, ga, gb} {
		if f := c.follow(t, u.GetCode(), "", shortBrowserUA); f.location != "https://example.com/v1" {
			t.Fatalf("%s before the edit: %d %q", c.name(), f.status, f.location)
		}
	}
	// seenOn waits for the replica to serve want. The invalidation travels
	// over the bus, asynchronously: typically it is there before the next
	// request, and the deadline only absorbs a slow scheduler. Without the
	// broadcast the old value would be served for the hot-key TTL (an hour).
	seenOn := func(c shortAPI, code string, want func(shortFollowed) bool, what string) {
		t.Helper()
		deadline := time.Now().Add(3 * time.Second)
		for {
			f := c.follow(t, code, "", shortBrowserUA)
			if want(f) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %s not seen: %d %q", c.name(), what, f.status, f.location)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	v2 := "https://example.com/v2"
	if _, err := ra.update(t, tok, &shortenerv1.UpdateShortUrlRequest{Code: u.GetCode(), LongUrl: &v2}); err != nil {
		t.Fatal(err)
	}
	seenOn(rb, u.GetCode(), func(f shortFollowed) bool { return f.location == v2 }, "A's edit on B")
	seenOn(gb, u.GetCode(), func(f shortFollowed) bool { return f.location == v2 }, "A's edit on B over gRPC")
	if f := ra.follow(t, u.GetCode(), "", shortBrowserUA); f.location != v2 {
		t.Fatalf("A after its own edit: %q", f.location)
	}
	// A delete on B: A answers 410.
	if err := gb.del(t, tok, u.GetCode()); err != nil {
		t.Fatal(err)
	}
	seenOn(ra, u.GetCode(), func(f shortFollowed) bool { return f.status == http.StatusGone }, "B's delete on A")

	// A custom alias looked up (and missed) on B before it exists is served
	// by B once A creates it.
	if f := rb.follow(t, "later-alias", "", shortBrowserUA); f.status != http.StatusNotFound {
		t.Fatalf("before creation: %d", f.status)
	}
	shortMustCreate(t, ga, tok, &shortenerv1.CreateShortUrlRequest{LongUrl: "https://example.com/later", Alias: "later-alias"})
	seenOn(rb, "later-alias", func(f shortFollowed) bool { return f.location == "https://example.com/later" }, "A's new alias on B")

	// Codes created on both replicas at once never collide.
	var many []*shortenerv1.CreateShortUrlRequest
	for i := range 300 {
		many = append(many, shortReq(fmt.Sprintf("https://example.com/n/%d", i)))
	}
	var wg sync.WaitGroup
	results := make([][]*shortenerv1.BatchCreateShortUrlsResult, 4)
	for i, c := range []shortAPI{ra, rb, ga, gb} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := c.batch(t, tok, many...)
			if err != nil {
				t.Error(err)
			}
			results[i] = r
		}()
	}
	wg.Wait()
	seen := map[string]bool{}
	for _, rs := range results {
		for _, r := range rs {
			if r.GetErrorCode() != 0 || seen[r.GetShortUrl().GetCode()] {
				t.Fatalf("item %v failed or reused a code", r)
			}
			seen[r.GetShortUrl().GetCode()] = true
		}
	}
	if len(seen) != 1200 {
		t.Fatalf("%d codes, want 1200", len(seen))
	}

	// Clicks served by both replicas (regions) add up.
	w := shortMustCreate(t, gb, tok, shortReq("https://example.com/both"))
	for _, c := range []shortAPI{ra, rb, ga, gb, ra} {
		if f := c.follow(t, w.GetCode(), "", shortBrowserUA); f.status != http.StatusFound {
			t.Fatalf("follow on %s: %d", c.name(), f.status)
		}
	}
	shortWaitStats(t, ra, tok, w.GetCode(), 5, 0)
	if got, err := gb.get(t, tok, w.GetCode()); err != nil || got.GetClickCount() != 5 {
		t.Fatalf("details on B: %v, %v", got.GetClickCount(), err)
	}
}
