package app_test

import (
	"context"
	"fmt"
	"io"
	"iter"
	"net/http"
	"strconv"
	"testing"

	sse "github.com/tmaxmax/go-sse"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	canvasv1 "github.com/apiplatform/platform/gen/go/canvas/v1"
)

// canvasSSE is the canvas over REST with the stream as Server-Sent Events
// (what a browser's EventSource reads), parsed by go-sse rather than by
// code of ours.
type canvasSSE struct{ canvasREST }

func (c canvasSSE) name() string { return "sse" }

func (c canvasSSE) stream(t *testing.T, since int64) (canvasStream, error) {
	return c.open(t, fmt.Sprintf("sinceSeq=%d", since))
}

func (c canvasSSE) streamAfter(t *testing.T, after int64) (canvasStream, error) {
	return c.open(t, fmt.Sprintf("afterSeq=%d", after))
}

func (c canvasSSE) open(t *testing.T, query string, headers ...string) (canvasStream, error) {
	s, err := openSSE(t, c.r.p.base+"/api/v1/canvas/stream?"+query, headers...)
	if err != nil {
		return nil, err
	}
	return &sseCanvasStream{s}, nil
}

// sseStream reads one Server-Sent Events response.
type sseStream struct {
	t      *testing.T
	body   io.ReadCloser
	next   func() (sse.Event, error, bool)
	stop   func()
	cancel context.CancelFunc
	lastID string // the last id the stream set, as an EventSource keeps it
}

// openSSE GETs url as an EventSource does.
func openSSE(t *testing.T, url string, headers ...string) (*sseStream, error) {
	res, cancel, err := openStream(t, url, "text/event-stream", headers...)
	if err != nil {
		return nil, err
	}
	// Batches of 32k deltas are ~175 KB of base64: beyond go-sse's default.
	next, stop := iter.Pull2(iter.Seq2[sse.Event, error](sse.Read(res.Body, &sse.ReadConfig{MaxEventSize: 4 << 20})))
	return &sseStream{t: t, body: res.Body, next: next, stop: stop, cancel: cancel}, nil
}

// event returns the next event carrying data; io.EOF at the end of the
// stream, and an `error` event as the status it carries.
func (s *sseStream) event() (sse.Event, error) {
	for {
		ev, err, ok := s.next()
		if !ok {
			return sse.Event{}, io.EOF
		}
		if err != nil {
			return sse.Event{}, err
		}
		s.lastID = ev.LastEventID
		if ev.Data == "" {
			continue // a retry: field alone
		}
		if ev.Type == "error" {
			var st spb.Status
			if err := protojson.Unmarshal([]byte(ev.Data), &st); err != nil {
				s.t.Fatalf("error event %q: %v", ev.Data, err)
			}
			return sse.Event{}, status.ErrorProto(&st)
		}
		return ev, nil
	}
}

func (s *sseStream) close() { s.cancel(); s.stop(); _ = s.body.Close() }

// decodeEvent parses an event's data into m, checking the event's name.
func decodeEvent(t *testing.T, ev sse.Event, m proto.Message, name string) {
	t.Helper()
	if err := protojson.Unmarshal([]byte(ev.Data), m); err != nil {
		t.Fatalf("event %s data %q: %v", ev.Type, ev.Data, err)
	}
	if ev.Type != name {
		t.Fatalf("event named %q for %v, want %q", ev.Type, m, name)
	}
}

type sseCanvasStream struct{ *sseStream }

// next checks that every event's id is the position after it, as the
// proto promises, so that Last-Event-ID resumes exactly.
func (s *sseCanvasStream) next() (*canvasv1.StreamPixelsResponse, error) {
	ev, err := s.event()
	if err != nil {
		return nil, err
	}
	m := &canvasv1.StreamPixelsResponse{}
	if err := protojson.Unmarshal([]byte(ev.Data), m); err != nil {
		s.t.Fatalf("event %q: %v", ev.Data, err)
	}
	var wantID, wantName string
	switch e := m.GetEvent().(type) {
	case *canvasv1.StreamPixelsResponse_Batch:
		wantName, wantID = "batch", strconv.FormatInt(e.Batch.GetLastSeq(), 10)
	case *canvasv1.StreamPixelsResponse_Heartbeat:
		wantName, wantID = "heartbeat", strconv.FormatInt(e.Heartbeat.GetSeq(), 10)
	case *canvasv1.StreamPixelsResponse_Resync:
		wantName, wantID = "resync", ""
	default:
		s.t.Fatalf("event %q carries no known message", ev.Data)
	}
	if ev.Type != wantName || s.lastID != wantID {
		s.t.Fatalf("event %q with id %q for %v, want %q with id %q", ev.Type, s.lastID, m, wantName, wantID)
	}
	return m, nil
}

// sseGet is a one-shot request for stream tests that only look at the
// answer's status and headers.
func sseGet(t *testing.T, url string, headers ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	return res
}
