package app_test

import (
	"bytes"
	"errors"
	"image/png"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"

	canvasv1 "github.com/apiplatform/platform/gen/go/canvas/v1"
	"github.com/apiplatform/platform/server/app"
	"github.com/apiplatform/platform/server/canvas"
)

func TestCanvasInfo(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		p := startCanvas(t, b, nil)
		for _, c := range canvasClients(p) {
			info, err := c.info(t)
			if err != nil {
				t.Fatalf("%s: %v", c.name(), err)
			}
			if info.GetWidth() != 64 || info.GetHeight() != 48 || info.GetCooldownSeconds() != 300 || info.GetBatchIntervalMs() != 100 {
				t.Fatalf("%s: info %v", c.name(), info)
			}
			if pal := info.GetPalette(); len(pal) != 16 || pal[0] != "#FFFFFF" || pal[3] != "#222222" {
				t.Fatalf("%s: palette %v", c.name(), pal)
			}
		}
	})
}

// The default canvas is 1000×1000 with a five-minute cooldown; 2000×2000
// works too (its snapshot fits a default gRPC message).
func TestCanvasSizes(t *testing.T) {
	p := start(t, embeddedBackend, nil)
	info, err := canvasGRPC{grpcAPI{p}}.info(t)
	if err != nil || info.GetWidth() != 1000 || info.GetHeight() != 1000 || info.GetCooldownSeconds() != 300 {
		t.Fatalf("default canvas: %v, %v", info, err)
	}
	p = start(t, embeddedBackend, func(cfg *app.Config) {
		cfg.Canvas = canvas.DefaultConfig()
		cfg.Canvas.Width, cfg.Canvas.Height = 2000, 2000
	})
	c := canvasGRPC{grpcAPI{p}}
	_, tok := c.guest(t)
	if _, err := c.place(t, tok, 1999, 1999, 9); err != nil {
		t.Fatal(err)
	}
	snap, err := c.snapshot(t)
	if err != nil || len(snap.GetPixels()) != 2000*2000/2 || snap.GetPixels()[len(snap.GetPixels())-1] != 0x09 {
		t.Fatalf("2000×2000 snapshot: %d bytes, %v", len(snap.GetPixels()), err)
	}
}

func TestCanvasPlaceAndSnapshot(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		p := startCanvas(t, b, nil)
		for i, c := range canvasClients(p) {
			t.Run(c.name(), func(t *testing.T) {
				x, y, color := int32(3+i), int32(40), int32(5+i)
				_, tok := c.guest(t)
				before := time.Now()
				res, err := c.place(t, tok, x, y, color)
				if err != nil {
					t.Fatal(err)
				}
				next := res.GetNextPlacementTime().AsTime()
				if res.GetSeq() < 1 || next.Before(before.Add(299*time.Second)) || next.After(time.Now().Add(301*time.Second)) {
					t.Fatalf("placed: %v (next placement %v)", res, next)
				}
				snap, err := c.snapshot(t)
				if err != nil {
					t.Fatal(err)
				}
				if snap.GetSeq() != res.GetSeq() || snap.GetWidth() != 64 || snap.GetHeight() != 48 || len(snap.GetPixels()) != 64*48/2 {
					t.Fatalf("snapshot seq %d (placed %d), %dx%d, %d bytes", snap.GetSeq(), res.GetSeq(), snap.GetWidth(), snap.GetHeight(), len(snap.GetPixels()))
				}
				if got := canvas.PixelAt(snap.GetPixels(), int(y)*64+int(x)); got != byte(color) {
					t.Fatalf("pixel (%d,%d) = %d, want %d", x, y, got, color)
				}

				// The binary board: same bytes, cacheable, revalidated by ETag.
				board, err := c.board(t, "")
				if err != nil {
					t.Fatal(err)
				}
				if board.contentType != "application/octet-stream" || board.cacheCtl != "max-age=1, stale-while-revalidate=1" ||
					board.etag == "" || board.seq != snap.GetSeq() || !bytes.Equal(board.data, snap.GetPixels()) {
					t.Fatalf("board: type %q, cache %q, etag %q, seq %d, %d bytes", board.contentType, board.cacheCtl, board.etag, board.seq, len(board.data))
				}
				again, err := c.board(t, board.etag)
				if err != nil || !again.notModified || len(again.data) != 0 || again.etag != board.etag {
					t.Fatalf("revalidation with the current ETag: %+v, %v; want 304 without a body", again, err)
				}
				if other, err := c.board(t, `"stale"`); err != nil || other.notModified || len(other.data) != len(board.data) {
					t.Fatalf("revalidation with another ETag: %v, %v", other.notModified, err)
				}

				// The PNG shows the pixel in its palette colour.
				img, err := c.png(t)
				if err != nil || img.contentType != "image/png" || img.etag == "" || img.etag == board.etag {
					t.Fatalf("png: %q etag %q, %v", img.contentType, img.etag, err)
				}
				decoded, err := png.Decode(bytes.NewReader(img.data))
				if err != nil {
					t.Fatal(err)
				}
				if b := decoded.Bounds(); b.Dx() != 64 || b.Dy() != 48 {
					t.Fatalf("png is %v", b)
				}
				r, g, bl, _ := decoded.At(int(x), int(y)).RGBA()
				want := canvas.Palette[color]
				if uint8(r>>8) != want.R || uint8(g>>8) != want.G || uint8(bl>>8) != want.B {
					t.Fatalf("png pixel (%d,%d) = %d,%d,%d; want %v", x, y, r>>8, g>>8, bl>>8, want)
				}
				if r, _, _, _ := decoded.At(0, 0).RGBA(); r>>8 != 0xFF {
					t.Fatal("an untouched pixel is not white")
				}

				// One pixel per cooldown.
				_, err = c.place(t, tok, 0, 0, 1)
				if d := retryInfo(t, err); d < 290*time.Second || d > 300*time.Second {
					t.Fatalf("RetryInfo %v, want about 5 minutes", d)
				}
				if snap2, _ := c.snapshot(t); snap2.GetSeq() != snap.GetSeq() {
					t.Fatal("a refused placement moved the board")
				}
			})
		}
	})
}

func TestCanvasBadPlacements(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		p := startCanvas(t, b, nil)
		for _, c := range canvasClients(p) {
			t.Run(c.name(), func(t *testing.T) {
				_, tok := c.guest(t)
				before, err := c.snapshot(t)
				if err != nil {
					t.Fatal(err)
				}
				for _, tc := range []struct {
					x, y, color int32
					fields      []string
				}{
					{-1, 0, 0, []string{"x"}}, {64, 0, 0, []string{"x"}}, {0, -5, 0, []string{"y"}}, {0, 48, 0, []string{"y"}},
					{0, 0, 16, []string{"color"}}, {0, 0, -1, []string{"color"}}, {1 << 30, 1 << 30, 1 << 30, []string{"x", "y", "color"}},
					{-2147483648, 2147483647, 99, []string{"x", "y", "color"}},
				} {
					_, err := c.place(t, tok, tc.x, tc.y, tc.color)
					for _, f := range tc.fields {
						wantField(t, err, f)
					}
				}
				_, err = c.place(t, "", 1, 1, 1)
				wantCode(t, err, codes.Unauthenticated)
				_, err = c.place(t, "forged-token", 1, 1, 1)
				wantCode(t, err, codes.Unauthenticated)
				// Nothing was placed, and the caller's cooldown did not start.
				if snap, err := c.snapshot(t); err != nil || snap.GetSeq() != before.GetSeq() {
					t.Fatalf("after bad placements: seq %d (was %d), %v", snap.GetSeq(), before.GetSeq(), err)
				}
				if _, err := c.place(t, tok, 1, 1, 1); err != nil {
					t.Fatal(err)
				}
			})
		}
	})
}

// Bodies that are not a placement never reach the service.
func TestCanvasBadPlacementBodies(t *testing.T) {
	p := startCanvas(t, embeddedBackend, nil)
	r := newREST(p)
	_, tok := r.guest(t)
	for _, body := range []string{`{"x": "one", "y": 1, "color": 1}`, `{"x": 1.5}`, `{"x": 99999999999}`, `not json`,
		`{"x": 1, "colour": 2}`, `[1, 2, 3]`} {
		req, err := http.NewRequest("POST", p.base+"/api/v1/canvas/pixels", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusBadRequest {
			t.Fatalf("%s: %d %s", body, res.StatusCode, b)
		}
		noLeak(t, string(b))
	}
	if snap, err := (canvasREST{r}).snapshot(t); err != nil || snap.GetSeq() != 0 {
		t.Fatalf("after bad bodies: %v, %v", snap.GetSeq(), err)
	}
}

func TestCanvasModeration(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		p := startCanvas(t, b, func(cfg *app.Config) { cfg.Canvas.MaxClearArea = 100 })
		_, admin := adminLogin(t, p)
		for i, c := range canvasClients(p) {
			t.Run(c.name(), func(t *testing.T) {
				offset := int32(i * 20)
				g1, tok1 := c.guest(t)
				g2, tok2 := c.guest(t)
				if _, err := c.place(t, tok1, offset, 0, 2); err != nil {
					t.Fatal(err)
				}
				// Only admins moderate; bad input names its field.
				wantCode(t, c.ban(t, tok1, g2, "no"), codes.PermissionDenied)
				wantField(t, c.ban(t, admin, "not-a-user", ""), "userId")
				wantField(t, c.ban(t, admin, "'; DROP TABLE canvas_bans; --", ""), "userId")
				wantField(t, c.ban(t, admin, g2, strings.Repeat("é", 501)), "reason")
				wantCode(t, c.ban(t, admin, uuid.NewString(), ""), codes.NotFound)
				wantCode(t, c.unban(t, admin, g2), codes.NotFound)

				// A ban is in force on the very next call, before any cooldown.
				if err := c.ban(t, admin, g1, "griefing"); err != nil {
					t.Fatal(err)
				}
				if err := c.ban(t, admin, g2, "griefing"); err != nil {
					t.Fatal(err)
				}
				_, err := c.place(t, tok1, offset, 1, 3)
				wantCode(t, err, codes.PermissionDenied)
				_, err = c.place(t, tok2, offset, 1, 3)
				wantCode(t, err, codes.PermissionDenied)
				if err := c.unban(t, admin, g2); err != nil {
					t.Fatal(err)
				}
				if _, err := c.place(t, tok2, offset, 1, 3); err != nil {
					t.Fatalf("after unban: %v", err)
				}
				_, err = c.place(t, tok1, offset, 1, 3)
				wantCode(t, err, codes.PermissionDenied)
				wantCode(t, c.unban(t, tok2, g1), codes.PermissionDenied)

				// Clearing a rectangle: one placement per pixel, in history.
				before, _ := c.snapshot(t)
				res, err := c.clear(t, admin, offset+2, 10, 5, 4, 7)
				if err != nil {
					t.Fatal(err)
				}
				if res.GetLastSeq()-res.GetFirstSeq() != 19 || res.GetFirstSeq() != before.GetSeq()+1 {
					t.Fatalf("cleared 5×4 as seqs %d..%d (board was at %d)", res.GetFirstSeq(), res.GetLastSeq(), before.GetSeq())
				}
				snap, _ := c.snapshot(t)
				for y := int32(9); y <= 14; y++ {
					for x := offset + 1; x <= offset+7; x++ {
						inside := x >= offset+2 && x < offset+7 && y >= 10 && y < 14
						if got := canvas.PixelAt(snap.GetPixels(), int(y)*64+int(x)); (got == 7) != inside {
							t.Fatalf("pixel (%d,%d) = %d after clearing (%d,10) 5×4", x, y, got, offset+2)
						}
					}
				}
				h, err := c.history(t, admin, offset+6, 13, 0, "")
				if err != nil || len(h.GetPlacements()) != 1 || h.GetPlacements()[0].GetSeq() != res.GetLastSeq() || h.GetPlacements()[0].GetColor() != 7 {
					t.Fatalf("history of the rectangle's last pixel: %v, %v", h, err)
				}
				_, err = c.clear(t, tok2, 0, 0, 1, 1, 0)
				wantCode(t, err, codes.PermissionDenied)
				for _, tc := range []struct {
					x, y, w, h, color int32
					field             string
				}{
					{0, 0, 0, 1, 0, "width"}, {0, 0, 1, 0, 0, "height"}, {60, 0, 5, 1, 0, "width"}, {0, 45, 1, 4, 0, "height"},
					{-1, 0, 1, 1, 0, "x"}, {0, 48, 1, 1, 0, "y"}, {0, 0, 1, 1, 16, "color"}, {0, 0, 11, 10, 0, "width"},
					{1, 1, 2147483647, 2147483647, 0, "width"},
				} {
					_, err := c.clear(t, admin, tc.x, tc.y, tc.w, tc.h, tc.color)
					wantField(t, err, tc.field)
				}
				if after, _ := c.snapshot(t); after.GetSeq() != res.GetLastSeq() {
					t.Fatal("a refused clear changed the board")
				}
			})
		}
	})
}

func TestCanvasHistoryPages(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		p := startCanvas(t, b, nil)
		_, admin := adminLogin(t, p)
		var users []string
		var seqs []int64
		c0 := canvasClients(p)[0]
		for i := range 5 {
			id, tok := c0.guest(t)
			res, err := c0.place(t, tok, 20, 30, int32(i))
			if err != nil {
				t.Fatal(err)
			}
			users, seqs = append(users, id), append(seqs, res.GetSeq())
			if _, err := c0.place(t, admin, 30, 20, 1); err == nil && i > 0 { // another pixel, same admin: cooling down
				t.Fatal("admin placed twice within the cooldown")
			}
		}
		for _, c := range canvasClients(p) {
			t.Run(c.name(), func(t *testing.T) {
				var got []*canvasv1.Placement
				token := ""
				for pages := 0; ; pages++ {
					page, err := c.history(t, admin, 20, 30, 2, token)
					if err != nil {
						t.Fatal(err)
					}
					got = append(got, page.GetPlacements()...)
					if token = page.GetNextPageToken(); token == "" {
						break
					}
					if pages > 5 {
						t.Fatal("pages do not end")
					}
				}
				if len(got) != 5 {
					t.Fatalf("%d placements in history, want 5", len(got))
				}
				for i, pl := range got {
					j := 4 - i // newest first
					if pl.GetSeq() != seqs[j] || pl.GetUserId() != users[j] || pl.GetColor() != int32(j) || pl.GetX() != 20 || pl.GetY() != 30 || pl.GetTime() == nil {
						t.Fatalf("history[%d] = %v, want seq %d by %s", i, pl, seqs[j], users[j])
					}
				}
				if h, err := c.history(t, admin, 0, 0, 0, ""); err != nil || len(h.GetPlacements()) != 0 || h.GetNextPageToken() != "" {
					t.Fatalf("untouched pixel: %v, %v", h, err)
				}
				_, err := c.history(t, admin, 20, 30, 101, "")
				wantField(t, err, "pageSize")
				_, err = c.history(t, admin, 20, 30, 2, "bm90IGEgdG9rZW4")
				wantField(t, err, "pageToken")
				_, err = c.history(t, admin, 64, -1, 2, "")
				wantField(t, err, "x")
				wantField(t, err, "y")
				_, tok := c.guest(t)
				_, err = c.history(t, tok, 20, 30, 2, "")
				wantCode(t, err, codes.PermissionDenied)
			})
		}
	})
}

// canvasFollower rebuilds the board the way a client does: a snapshot,
// then every batch after its seq, in order.
type canvasFollower struct {
	t          *testing.T
	api        canvasAPI
	n          int
	pixels     []byte
	seq        int64
	s          canvasStream
	resyncs    int
	lastResync string // its reason
	received   int    // batches
	// streamFirst opens the stream (since_seq 0) before loading the
	// snapshot, as a client behind a CDN-cached snapshot would.
	streamFirst  bool
	pendingFirst []*canvasv1.PixelBatch
}

func newCanvasFollower(t *testing.T, api canvasAPI, streamFirst bool) *canvasFollower {
	f := &canvasFollower{t: t, api: api, n: 64 * 48, streamFirst: streamFirst}
	f.load()
	return f
}

func (f *canvasFollower) load() {
	f.t.Helper()
	var err error
	if f.streamFirst {
		if f.s, err = f.api.stream(f.t, 0); err != nil {
			f.t.Fatalf("%s: stream: %v", f.api.name(), err)
		}
	}
	snap, err := f.api.snapshot(f.t)
	if err != nil {
		f.t.Fatalf("%s: snapshot: %v", f.api.name(), err)
	}
	f.pixels, f.seq, f.n = snap.GetPixels(), snap.GetSeq(), int(snap.GetWidth()*snap.GetHeight())
	if !f.streamFirst {
		f.resume()
	}
}

// resume reconnects from the last applied seq.
func (f *canvasFollower) resume() {
	f.t.Helper()
	if f.s != nil {
		f.s.close()
	}
	var err error
	if f.s, err = f.api.streamAfter(f.t, f.seq); err != nil {
		f.t.Fatalf("%s: stream from %d: %v", f.api.name(), f.seq, err)
	}
}

// until applies messages until the board is at seq or later.
func (f *canvasFollower) until(seq int64, timeout time.Duration) {
	f.t.Helper()
	timer := time.AfterFunc(timeout, func() { f.s.close() })
	defer timer.Stop()
	for f.seq < seq {
		m, err := f.s.next()
		if err != nil {
			f.t.Fatalf("%s: at seq %d waiting for %d: %v", f.api.name(), f.seq, seq, err)
		}
		if hb := m.GetHeartbeat(); hb != nil {
			if !f.streamFirst && hb.GetSeq() != f.seq {
				f.t.Fatalf("%s: heartbeat at %d after seq %d", f.api.name(), hb.GetSeq(), f.seq)
			}
			continue
		}
		if r := m.GetResync(); r != nil {
			f.resyncs++
			f.lastResync = r.GetReason()
			if _, err := f.s.next(); !errors.Is(err, io.EOF) && err == nil {
				f.t.Fatalf("%s: stream goes on after a resync", f.api.name())
			}
			f.load()
			continue
		}
		b := m.GetBatch()
		f.received++
		first, last, deltas := b.GetFirstSeq(), b.GetLastSeq(), b.GetDeltas()
		if int64(len(deltas)) != (last-first+1)*canvas.DeltaSize {
			f.t.Fatalf("%s: batch %d..%d with %d bytes", f.api.name(), first, last, len(deltas))
		}
		if f.streamFirst && last <= f.seq {
			continue // older than the snapshot
		}
		if first > f.seq+1 {
			if !f.streamFirst {
				f.t.Fatalf("%s: batch starts at %d after seq %d: a gap", f.api.name(), first, f.seq)
			}
			f.resume() // the snapshot was older than the stream's start
			f.streamFirst = false
			continue
		}
		canvas.ApplyDeltas(f.pixels, f.n, deltas[(f.seq+1-first)*canvas.DeltaSize:])
		f.seq = last
		f.streamFirst = false
	}
}

func TestCanvasStream(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		p := startCanvas(t, b, nil)
		_, admin := adminLogin(t, p)
		for _, c := range canvasClients(p) {
			t.Run(c.name(), func(t *testing.T) {
				f := newCanvasFollower(t, c, false)
				start := f.seq
				for i := range 6 {
					_, tok := c.guest(t)
					if _, err := c.place(t, tok, int32(i), int32(i*2), int32(i+1)); err != nil {
						t.Fatal(err)
					}
				}
				f.until(start+6, 10*time.Second)
				t.Logf("6 placements arrived in %d messages", f.received)
				snap, _ := c.snapshot(t)
				if snap.GetSeq() != f.seq || !bytes.Equal(snap.GetPixels(), f.pixels) {
					t.Fatalf("rebuilt board at %d differs from the snapshot at %d", f.seq, snap.GetSeq())
				}

				// Disconnected, it misses a clear and placements; resuming
				// from its seq gets exactly those.
				f.s.close()
				if _, err := c.clear(t, admin, 30, 30, 8, 8, 12); err != nil {
					t.Fatal(err)
				}
				_, tok := c.guest(t)
				if _, err := c.place(t, tok, 31, 31, 4); err != nil {
					t.Fatal(err)
				}
				f.resume()
				f.until(start+6+64+1, 10*time.Second)
				snap, _ = c.snapshot(t)
				if f.resyncs != 0 || snap.GetSeq() != f.seq || !bytes.Equal(snap.GetPixels(), f.pixels) {
					t.Fatalf("after resuming: %d resyncs; board at %d vs snapshot at %d", f.resyncs, f.seq, snap.GetSeq())
				}

				// A position from the future gets a resync, as since_seq or
				// as after_seq.
				for _, open := range []func(*testing.T, int64) (canvasStream, error){c.stream, c.streamAfter} {
					since := snap.GetSeq() + 1000
					s, err := open(t, since)
					if err != nil {
						t.Fatal(err)
					}
					m, err := s.next()
					if err != nil || m.GetResync() == nil || m.GetResync().GetCurrentSeq() != snap.GetSeq() {
						t.Fatalf("since_seq %d: %v, %v", since, m, err)
					}
					if _, err := s.next(); !errors.Is(err, io.EOF) {
						t.Fatalf("after the resync: %v, want the end of the stream", err)
					}
				}
				s, err := c.stream(t, -1)
				if err == nil {
					_, err = s.next()
				}
				wantField(t, err, "sinceSeq")
				s, err = c.streamAfter(t, -1)
				if err == nil {
					_, err = s.next()
				}
				wantField(t, err, "afterSeq")
			})
		}
	})
}

// Deltas a server no longer keeps cannot be replayed: the client is told
// to reload.
func TestCanvasStreamTooOld(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		p := startCanvas(t, b, func(cfg *app.Config) { cfg.Canvas.RetainDeltas = 1000 })
		_, admin := adminLogin(t, p)
		for _, c := range canvasClients(p) {
			// (since_seq 0 means "from now", so the follower starts after a
			// placement.)
			_, tok := c.guest(t)
			if _, err := c.place(t, tok, 1, 1, 1); err != nil {
				t.Fatal(err)
			}
			f := newCanvasFollower(t, c, false)
			f.s.close()
			// A live follower shows when the server has batched each clear
			// (so they are separate batches, which is what the server
			// keeps or drops).
			live := newCanvasFollower(t, c, false)
			for range 3 {
				res, err := c.clear(t, admin, 0, 0, 40, 40, 3)
				if err != nil {
					t.Fatal(err)
				}
				live.until(res.GetLastSeq(), 10*time.Second)
			}
			live.s.close()
			f.resume()
			for {
				m, err := f.s.next()
				if err != nil {
					t.Fatalf("%s: resuming 4800 deltas back with 1000 kept: %v", c.name(), err)
				}
				if len(m.GetBatch().GetDeltas()) > 0 {
					t.Fatalf("%s: resuming 4800 deltas back with 1000 kept: got deltas %d..%d", c.name(), m.GetBatch().GetFirstSeq(), m.GetBatch().GetLastSeq())
				}
				if r := m.GetResync(); r != nil {
					if !strings.Contains(r.GetReason(), "older") {
						t.Fatalf("%s: resync %v", c.name(), r)
					}
					break
				}
			}
			// Reloading gets it going again.
			f.load()
			_, tok = c.guest(t)
			res, err := c.place(t, tok, 63, 47, 15)
			if err != nil {
				t.Fatal(err)
			}
			f.until(res.GetSeq(), 10*time.Second)
			if canvas.PixelAt(f.pixels, 64*48-1) != 15 {
				t.Fatalf("%s: the last pixel is not there", c.name())
			}
		}
	})
}
