package app_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	sharev1 "github.com/apiplatform/platform/gen/go/share/v1"
)

// shareWatch is one WatchShare client: gRPC, or REST as Server-Sent Events.
type shareWatch interface {
	next() (string, error) // the next colour, or why the stream ended
}

type grpcShareWatch struct {
	st interface {
		Recv() (*sharev1.WatchShareResponse, error)
	}
}

func (w grpcShareWatch) next() (string, error) {
	m, err := w.st.Recv()
	return m.GetHex(), err
}

type sseShareWatch struct {
	t *testing.T
	s *sseStream
}

func (w sseShareWatch) next() (string, error) {
	ev, err := w.s.event()
	if err != nil {
		return "", err
	}
	var m sharev1.WatchShareResponse
	decodeEvent(w.t, ev, &m, "hex")
	return m.GetHex(), nil
}

func watchGRPC(t *testing.T, p *platform, slug string) shareWatch {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	st, err := sharev1.NewShareServiceClient(p.conn).WatchShare(ctx, &sharev1.WatchShareRequest{Slug: slug})
	if err != nil {
		t.Fatal(err)
	}
	return grpcShareWatch{st}
}

func watchSSE(t *testing.T, p *platform, slug string) shareWatch {
	s, err := openSSE(t, p.base+"/api/v1/shares/"+url.PathEscape(slug)+"/watch")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.close)
	return sseShareWatch{t, s}
}

// want reads the watcher's next colour; each read blocks on the stream's
// next event, and the server sends one only on a change.
func wantHex(t *testing.T, name string, w shareWatch, hex string) {
	t.Helper()
	got, err := w.next()
	if err != nil || got != hex {
		t.Fatalf("%s: got %q, %v; want %s", name, got, err, hex)
	}
}

func TestShareWatch(t *testing.T) { forBackends(t, testShareWatch) }

func testShareWatch(t *testing.T, b backend) {
	p := start(t, b, nil)
	r := newREST(p)
	_, owner := r.guest(t)
	if _, err := r.setFavorite(t, owner, "#112233", ""); err != nil {
		t.Fatal(err)
	}
	live, err := r.createShare(t, owner, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	// The live page loads its script, under a policy allowing it.
	res, body := r.do(t, "GET", "/s/"+live.GetSlug(), "", nil)
	if csp := res.Header.Get("Content-Security-Policy"); res.StatusCode != http.StatusOK ||
		!strings.Contains(string(body), `<script src="/app/js/share-live.js"`) || !strings.Contains(csp, "script-src 'self'") {
		t.Fatalf("live page: %d, CSP %q, body %s", res.StatusCode, csp, body)
	}
	watchers := map[string]shareWatch{
		"grpc": watchGRPC(t, p, live.GetSlug()),
		"sse":  watchSSE(t, p, live.GetSlug()),
	}
	for name, w := range watchers {
		wantHex(t, name, w, "#112233")
	}
	if _, err := r.setFavorite(t, owner, "#445566", ""); err != nil {
		t.Fatal(err)
	}
	for name, w := range watchers {
		wantHex(t, name, w, "#445566")
	}
	if err := r.revokeShare(t, owner, live.GetSlug()); err != nil {
		t.Fatal(err)
	}
	for name, w := range watchers {
		if _, err := w.next(); err == nil || errors.Is(err, io.EOF) {
			t.Fatalf("%s after revocation: %v, want NOT_FOUND", name, err)
		} else {
			wantCode(t, err, codes.NotFound)
		}
	}

	// A snapshot sends its colour and ends; unknown slugs are refused.
	snap, err := r.createShare(t, owner, true, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, body := r.do(t, "GET", "/s/"+snap.GetSlug(), "", nil); strings.Contains(string(body), "<script") {
		t.Fatalf("snapshot page loads a script: %s", body)
	}
	w := watchGRPC(t, p, snap.GetSlug())
	wantHex(t, "snapshot", w, "#445566")
	if _, err := w.next(); !errors.Is(err, io.EOF) {
		t.Fatalf("snapshot stream after its colour: %v, want its end", err)
	}
	if _, err := watchGRPC(t, p, "nosuchslug1").next(); err == nil {
		t.Fatal("unknown slug watched")
	} else {
		wantCode(t, err, codes.NotFound)
	}
	if _, err := openSSE(t, p.base+"/api/v1/shares/nosuchslug1/watch"); err == nil {
		t.Fatal("unknown slug watched over SSE")
	}
	if res, body := r.do(t, "GET", "/api/v1/shares/bad-slug/watch", "", nil); res.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "slug") {
		t.Fatalf("malformed slug: %d %s", res.StatusCode, body)
	}
}

// A watcher on another replica than the owner's save sees the change too:
// the favorite's change crosses the bus.
func TestShareWatchAcrossReplicas(t *testing.T) {
	var ps []*platform
	for _, cfg := range replicaConfigs(t, "region-a", "region-b") {
		ps = append(ps, startConfig(t, cfg))
	}
	a, b := ps[0], ps[1]
	ra := newREST(a)
	_, owner := ra.guest(t)
	if _, err := ra.setFavorite(t, owner, "#010203", ""); err != nil {
		t.Fatal(err)
	}
	live, err := ra.createShare(t, owner, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	watchers := map[string]shareWatch{
		"grpc on b": watchGRPC(t, b, live.GetSlug()),
		"sse on b":  watchSSE(t, b, live.GetSlug()),
	}
	for name, w := range watchers {
		wantHex(t, name, w, "#010203")
	}
	if _, err := ra.setFavorite(t, owner, "#0A0B0C", ""); err != nil {
		t.Fatal(err)
	}
	for name, w := range watchers {
		wantHex(t, name, w, "#0A0B0C")
	}
	if err := ra.revokeShare(t, owner, live.GetSlug()); err != nil {
		t.Fatal(err)
	}
	for name, w := range watchers {
		_, err := w.next()
		if err == nil || errors.Is(err, io.EOF) {
			t.Fatalf("%s after revocation: %v, want NOT_FOUND", name, err)
		}
		wantCode(t, err, codes.NotFound)
	}
}
