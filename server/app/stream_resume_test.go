package app_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	sse "github.com/tmaxmax/go-sse"
	"google.golang.org/protobuf/encoding/protojson"

	canvasv1 "github.com/apiplatform/platform/gen/go/canvas/v1"
	votev1 "github.com/apiplatform/platform/gen/go/vote/v1"
	"github.com/apiplatform/platform/server/app"
	"github.com/apiplatform/platform/server/canvas"
)

// cutTransport is an HTTP transport whose connections the test can cut
// mid-response (as a network or a proxy does), and which records the
// Last-Event-ID of every request it sends.
type cutTransport struct {
	base  *http.Transport
	mu    sync.Mutex
	conns []net.Conn
	ids   []string // Last-Event-ID of each request ("" when absent)
}

func newCutTransport() *cutTransport {
	ct := &cutTransport{}
	var d net.Dialer
	ct.base = &http.Transport{DisableKeepAlives: true, DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err == nil {
			ct.mu.Lock()
			ct.conns = append(ct.conns, c)
			ct.mu.Unlock()
		}
		return c, err
	}}
	return ct
}

func (ct *cutTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	ct.mu.Lock()
	ct.ids = append(ct.ids, r.Header.Get("Last-Event-ID"))
	ct.mu.Unlock()
	return ct.base.RoundTrip(r)
}

// cut closes every connection made so far.
func (ct *cutTransport) cut() {
	ct.mu.Lock()
	defer ct.mu.Unlock()
	for _, c := range ct.conns {
		_ = c.Close()
	}
	ct.conns = nil
}

func (ct *cutTransport) lastEventIDs() []string {
	ct.mu.Lock()
	defer ct.mu.Unlock()
	return append([]string(nil), ct.ids...)
}

// eventSource follows url with go-sse's client, which reconnects by itself
// with Last-Event-ID like a browser's EventSource; events arrive on the
// returned channel.
func eventSource(t *testing.T, url string, tr *cutTransport) <-chan sse.Event {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	client := &sse.Client{
		HTTPClient: &http.Client{Transport: tr},
		Backoff:    sse.Backoff{InitialInterval: 20 * time.Millisecond, Multiplier: 1, Jitter: -1},
	}
	conn := client.NewConnection(req)
	events := make(chan sse.Event, 1000)
	conn.SubscribeToAll(func(e sse.Event) {
		if e.Data != "" { // go-sse also reports the stream's `retry:` alone
			events <- e
		}
	})
	done := make(chan struct{})
	go func() { defer close(done); _ = conn.Connect() }()
	t.Cleanup(func() { cancel(); <-done })
	return events
}

func nextEvent(t *testing.T, events <-chan sse.Event) sse.Event {
	t.Helper()
	select {
	case e := <-events:
		return e
	case <-time.After(20 * time.Second):
		t.Fatal("no event within 20s")
	}
	return sse.Event{}
}

// An EventSource client following the canvas is cut mid-stream; it
// reconnects by itself with Last-Event-ID and gets exactly the placements
// it missed: no gap, no duplicate, the board equal to the snapshot.
func TestCanvasEventSourceResume(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		p := startCanvas(t, b, func(cfg *app.Config) { cfg.Canvas.Cooldown = canvas.NoCooldown })
		g := canvasGRPC{grpcAPI{p}}
		snap, err := g.snapshot(t)
		if err != nil {
			t.Fatal(err)
		}
		pixels, pos, n := snap.GetPixels(), snap.GetSeq(), int(snap.GetWidth()*snap.GetHeight())
		tr := newCutTransport()
		events := eventSource(t, fmt.Sprintf("%s/api/v1/canvas/stream?afterSeq=%d", p.base, pos), tr)
		// follow applies events until the board is at seq upTo.
		follow := func(upTo int64) {
			t.Helper()
			for pos < upTo {
				ev := nextEvent(t, events)
				var m canvasv1.StreamPixelsResponse
				decodeEvent(t, ev, &m, ev.Type)
				switch {
				case m.GetHeartbeat() != nil:
					if m.GetHeartbeat().GetSeq() != pos || ev.Type != "heartbeat" || ev.LastEventID != strconv.FormatInt(pos, 10) {
						t.Fatalf("heartbeat %v (event %q, id %q) at seq %d", m.GetHeartbeat(), ev.Type, ev.LastEventID, pos)
					}
				case m.GetBatch() != nil:
					bt := m.GetBatch()
					if bt.GetFirstSeq() != pos+1 {
						t.Fatalf("batch %d..%d after seq %d: a gap or a duplicate", bt.GetFirstSeq(), bt.GetLastSeq(), pos)
					}
					if ev.Type != "batch" || ev.LastEventID != strconv.FormatInt(bt.GetLastSeq(), 10) {
						t.Fatalf("batch %d..%d as event %q with id %q", bt.GetFirstSeq(), bt.GetLastSeq(), ev.Type, ev.LastEventID)
					}
					canvas.ApplyDeltas(pixels, n, bt.GetDeltas())
					pos = bt.GetLastSeq()
				default:
					t.Fatalf("unexpected event %s %q", ev.Type, ev.Data)
				}
			}
		}
		_, tok := g.guest(t)
		place := func(from, count int32) {
			for i := from; i < from+count; i++ {
				if _, err := g.place(t, tok, i, i%48, i%16); err != nil {
					t.Fatal(err)
				}
			}
		}
		start := pos
		place(0, 5)
		follow(start + 5)
		tr.cut()
		place(5, 7) // while the client reconnects: some before, some after
		follow(start + 12)

		ids := tr.lastEventIDs()
		if len(ids) < 2 || ids[0] != "" || ids[1] != strconv.FormatInt(start+5, 10) {
			t.Fatalf("Last-Event-ID of the requests: %q, want none then %d", ids, start+5)
		}
		final, err := g.snapshot(t)
		if err != nil {
			t.Fatal(err)
		}
		if final.GetSeq() != pos || !bytes.Equal(final.GetPixels(), pixels) {
			t.Fatalf("board rebuilt from the events at %d differs from the snapshot at %d", pos, final.GetSeq())
		}
	})
}

// An EventSource client following live results is cut mid-stream; it
// reconnects with Last-Event-ID (the version) and gets only newer tallies.
func TestVoteEventSourceResume(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		env := startVote(t, b, nil)
		id := env.openElection(t).GetElectionId()
		g := grpcVote{env.g}
		cast := func(k int) {
			for range k {
				_, u := env.voter(t)
				if _, err := g.cast(t, u, id, "red", castOpts{}); err != nil {
					t.Fatal(err)
				}
			}
		}
		tr := newCutTransport()
		events := eventSource(t, env.p.base+"/api/v1/results/stream/"+id, tr)
		last := int64(-1)
		follow := func(version int64) {
			t.Helper()
			for last < version {
				ev := nextEvent(t, events)
				var m votev1.StreamResultsResponse
				decodeEvent(t, ev, &m, ev.Type)
				switch {
				case m.GetHeartbeat() != nil:
					if m.GetHeartbeat().GetVersion() != last || ev.Type != "heartbeat" {
						t.Fatalf("heartbeat %v as %q after version %d", m.GetHeartbeat(), ev.Type, last)
					}
				case m.GetTally() != nil:
					v := m.GetTally().GetVersion()
					if v <= last || ev.Type != "tally" || ev.LastEventID != strconv.FormatInt(v, 10) {
						t.Fatalf("tally version %d (event %q, id %q) after %d: a duplicate or out of order", v, ev.Type, ev.LastEventID, last)
					}
					if m.GetTally().GetTotalVotes() != v {
						t.Fatalf("tally %v", m.GetTally())
					}
					last = v
				default:
					t.Fatalf("unexpected event %s %q", ev.Type, ev.Data)
				}
			}
		}
		follow(0)
		cast(3)
		follow(3)
		tr.cut()
		cast(2)
		follow(5)
		ids := tr.lastEventIDs()
		if len(ids) < 2 || ids[0] != "" || ids[1] != "3" {
			t.Fatalf("Last-Event-ID of the requests: %q, want none then 3", ids)
		}
		// Nothing more than the newest tally arrives: the next event is a
		// heartbeat or a newer tally, never version 5 again.
		cast(1)
		follow(6)
	})
}

// A client whose snapshot is at seq 0 (a fresh board) resumes after 0
// while placements race its subscription: whichever lands first, it gets
// every placement from seq 1, in order. Fifty fresh boards, each client
// in turn.
func TestCanvasResumeFromZero(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		for i := range 50 {
			t.Run(strconv.Itoa(i), func(t *testing.T) {
				p := start(t, b, func(cfg *app.Config) { // no admin: its password hash costs more than the rest
					cfg.Canvas = canvasConfig()
					cfg.Canvas.Cooldown = canvas.NoCooldown
				})
				c := canvasClients(p)[i%3]
				g := canvasGRPC{grpcAPI{p}}
				snap, err := c.snapshot(t)
				if err != nil || snap.GetSeq() != 0 {
					t.Fatalf("fresh board at %d: %v", snap.GetSeq(), err)
				}
				_, tok := g.guest(t)
				const placed = 30
				done := make(chan error, 1)
				go func() {
					for j := range int32(placed) {
						if _, err := g.place(t, tok, j, j%48, 1+j%15); err != nil {
							done <- err
							return
						}
					}
					done <- nil
				}()
				f := &canvasFollower{t: t, api: c, pixels: snap.GetPixels(), n: int(snap.GetWidth() * snap.GetHeight())}
				f.resume() // after_seq 0, racing the placements
				f.until(placed, 20*time.Second)
				f.s.close()
				if err := <-done; err != nil {
					t.Fatal(err)
				}
				final, err := c.snapshot(t)
				if err != nil || final.GetSeq() != placed || !bytes.Equal(final.GetPixels(), f.pixels) || f.resyncs != 0 {
					t.Fatalf("follower at %d (%d resyncs) differs from the snapshot at %d: %v", f.seq, f.resyncs, final.GetSeq(), err)
				}
			})
		}
	})
}

// A resume position the server never sent answers a resync on both
// streams, over gRPC, NDJSON and SSE (as Last-Event-ID too); a malformed
// Last-Event-ID is a 400 naming it.
func TestStreamUnknownPositionResyncs(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		env := startVote(t, b, func(cfg *app.Config) { cfg.Canvas = canvasConfig() })
		id := env.openElection(t).GetElectionId()
		_, u := env.voter(t)
		if _, err := (grpcVote{env.g}).cast(t, u, id, "red", castOpts{}); err != nil {
			t.Fatal(err)
		}
		future := int64(1000)
		// gRPC
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		st, err := votev1.NewVoteServiceClient(env.p.conn).StreamResults(ctx, &votev1.StreamResultsRequest{ElectionId: id, AfterVersion: &future})
		if err != nil {
			t.Fatal(err)
		}
		if m, err := st.Recv(); err != nil || m.GetResync() == nil || m.GetResync().GetCurrentVersion() != 1 {
			t.Fatalf("gRPC after version %d: %v, %v", future, m, err)
		}
		if _, err := st.Recv(); err == nil {
			t.Fatal("the stream goes on after a resync")
		}
		// NDJSON
		s := restVote{newREST(env.p)}.streamAfter(t, id, future)
		if r, ok := s.refused(t).(resyncError); !ok || r.r.GetCurrentVersion() != 1 {
			t.Fatalf("NDJSON after version %d: %v", future, s.Err())
		}
		// SSE, from the query and from Last-Event-ID (which wins).
		for _, h := range [][]string{nil, {"Last-Event-ID", "1000"}} {
			q := "?afterVersion=1000"
			if h != nil {
				q = "?afterVersion=0"
			}
			ss, err := openSSE(t, env.p.base+"/api/v1/results/stream/"+id+q, h...)
			if err != nil {
				t.Fatal(err)
			}
			ev, err := ss.event()
			if err != nil {
				t.Fatal(err)
			}
			var m votev1.StreamResultsResponse
			decodeEvent(t, ev, &m, "resync")
			if m.GetResync().GetCurrentVersion() != 1 || ss.lastID != "" {
				t.Fatalf("SSE %v: %v with id %q", h, &m, ss.lastID)
			}
		}
		// The canvas, as Last-Event-ID (query positions: TestCanvasStream).
		cs, err := canvasSSE{canvasREST{newREST(env.p)}}.open(t, "afterSeq=0", "Last-Event-ID", "1000")
		if err != nil {
			t.Fatal(err)
		}
		if m, err := cs.next(); err != nil || m.GetResync() == nil || m.GetResync().GetCurrentSeq() != 0 {
			t.Fatalf("canvas Last-Event-ID 1000: %v, %v", m, err)
		}
		_, err = canvasSSE{canvasREST{newREST(env.p)}}.open(t, "", "Last-Event-ID", "soon")
		wantField(t, err, "Last-Event-ID")
		_, err = openSSE(t, env.p.base+"/api/v1/results/stream/"+id, "Last-Event-ID", "-3")
		wantField(t, err, "Last-Event-ID")
	})
}

// Both streams send a heartbeat after the configured period of silence:
// set small here, and waited for as an event.
func TestStreamHeartbeats(t *testing.T) {
	const period = 50 * time.Millisecond
	forBackends(t, func(t *testing.T, b backend) {
		env := startVote(t, b, func(cfg *app.Config) {
			cfg.Canvas = canvasConfig()
			cfg.Canvas.Heartbeat = period
			cfg.Vote.StreamHeartbeat = period
		})
		info, err := canvasGRPC{grpcAPI{env.p}}.info(t)
		if err != nil || info.GetHeartbeatIntervalMs() != 50 {
			t.Fatalf("info %v, %v", info, err)
		}
		// Canvas: the start, then heartbeats at the same position.
		for _, c := range canvasClients(env.p) {
			s, err := c.stream(t, 0)
			if err != nil {
				t.Fatal(err)
			}
			for i := range 3 {
				m, err := s.next()
				if err != nil || m.GetHeartbeat() == nil || m.GetHeartbeat().GetSeq() != 0 {
					t.Fatalf("%s: message %d of an idle stream: %v, %v", c.name(), i, m, err)
				}
			}
			s.close()
		}
		// Results: the tally, then heartbeats carrying its version.
		id := env.openElection(t).GetElectionId()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		st, err := votev1.NewVoteServiceClient(env.p.conn).StreamResults(ctx, &votev1.StreamResultsRequest{ElectionId: id})
		if err != nil {
			t.Fatal(err)
		}
		if m, err := st.Recv(); err != nil || m.GetTally() == nil {
			t.Fatalf("first message %v, %v", m, err)
		}
		for range 2 {
			if m, err := st.Recv(); err != nil || m.GetHeartbeat() == nil || m.GetHeartbeat().GetVersion() != 0 {
				t.Fatalf("idle results stream: %v, %v", m, err)
			}
		}
		ss, err := openSSE(t, env.p.base+"/api/v1/results/stream/"+id)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"tally", "heartbeat", "heartbeat"} {
			ev, err := ss.event()
			if err != nil {
				t.Fatal(err)
			}
			var m votev1.StreamResultsResponse
			decodeEvent(t, ev, &m, want)
			if ss.lastID != "0" {
				t.Fatalf("%s event with id %q, want 0", want, ss.lastID)
			}
		}
		res, cancelN, err := openStream(t, env.p.base+"/api/v1/results/stream/"+id, "application/x-ndjson")
		if err != nil {
			t.Fatal(err)
		}
		defer cancelN()
		lines := newLineReader(res)
		for _, want := range []string{"tally", "heartbeat"} {
			var m votev1.StreamResultsResponse
			if err := protojson.Unmarshal(lines.result(t), &m); err != nil {
				t.Fatal(err)
			}
			if (want == "tally") != (m.GetTally() != nil) || (want == "heartbeat") != (m.GetHeartbeat() != nil) {
				t.Fatalf("NDJSON: %v, want a %s", &m, want)
			}
		}
	})
}

// lineReader reads an NDJSON stream's result lines.
type lineReader struct{ sc *bufio.Scanner }

func newLineReader(res *http.Response) *lineReader {
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	return &lineReader{sc}
}

func (l *lineReader) result(t *testing.T) []byte {
	t.Helper()
	if !l.sc.Scan() {
		t.Fatalf("stream ended: %v", l.sc.Err())
	}
	var line ndjsonLine
	if err := json.Unmarshal(l.sc.Bytes(), &line); err != nil || line.Result == nil {
		t.Fatalf("line %q: %v", l.sc.Bytes(), err)
	}
	return line.Result
}
