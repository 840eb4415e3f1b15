package app_test

import (
	"net/http"
	"testing"
	"time"
)

// Every replica answers the share page from its own memory, yet a
// revocation on one replica takes the page down on the others within the
// bus's delivery, far inside the page's one-minute cache lifetime that a
// lost invalidation would fall back to.
func TestSharePageRevokedOnEveryReplica(t *testing.T) {
	var ps []*platform
	for _, cfg := range replicaConfigs(t, "region-a", "region-b") {
		ps = append(ps, startConfig(t, cfg))
	}
	a, b := ps[0], ps[1]
	ra, rb := newREST(a), newREST(b)
	_, owner := ra.guest(t)
	if _, err := ra.setFavorite(t, owner, "orchid", ""); err != nil {
		t.Fatal(err)
	}
	sh, err := ra.createShare(t, owner, true, 0)
	if err != nil {
		t.Fatal(err)
	}
	page := "/s/" + sh.GetSlug()
	for _, r := range []restAPI{ra, rb} { // both replicas now hold it in memory
		for range 2 {
			if res, _ := r.do(t, "GET", page, "", nil); res.StatusCode != http.StatusOK {
				t.Fatalf("page before revocation: %d", res.StatusCode)
			}
		}
	}
	if err := rb.revokeShare(t, owner, sh.GetSlug()); err != nil {
		t.Fatal(err)
	}
	if res, _ := rb.do(t, "GET", page, "", nil); res.StatusCode != http.StatusNotFound {
		t.Fatalf("revoking replica still serves the page: %d", res.StatusCode)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		res, _ := ra.do(t, "GET", page, "", nil)
		if res.StatusCode == http.StatusNotFound {
			break
		}
		if res.StatusCode != http.StatusOK || time.Now().After(deadline) {
			t.Fatalf("other replica after revocation: %d (the invalidation did not arrive)", res.StatusCode)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
