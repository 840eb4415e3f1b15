package gateway

import (
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/grpc-ecosystem/grpc-gateway/v2/utilities"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	canvasv1 "github.com/apiplatform/platform/gen/go/canvas/v1"
	sharev1 "github.com/apiplatform/platform/gen/go/share/v1"
	votev1 "github.com/apiplatform/platform/gen/go/vote/v1"
	"github.com/apiplatform/platform/server/platform/apierr"
)

// The server streams are served by the gateway itself rather than by
// grpc-gateway's generated handlers, because those can speak only one
// framing and answer an error before the first message in a stream
// envelope. Here one handler per stream:
//   - answers `Accept: text/event-stream` with Server-Sent Events (sse.go)
//     whose id is the resume position (the resumable streams), and anything
//     else with newline-delimited JSON (`application/x-ndjson`, the same
//     lines grpc-gateway writes: `{"result": ...}`, a last `{"error": Status}`);
//   - takes `Last-Event-ID` as the resume position (an EventSource
//     reconnecting sends it), in place of the query's;
//   - waits for the first message before answering, so an error before it
//     is answered exactly like a unary call's (status code, Retry-After,
//     google.rpc.Status body) by the same error handler: one error envelope
//     for every call.
//
// The resumable streams send a first message at once (a heartbeat stating
// the position, or the current tally), so the wait is one round trip.

// streamRoute is one server-streaming RPC served over REST.
type streamRoute struct {
	pattern string // net/http pattern
	method  string // full gRPC method name
	// request builds the RPC's request from the HTTP request; resume is the
	// Last-Event-ID position when the client sent one.
	request func(r *http.Request, resume *int64) (proto.Message, error)
	newResp func() proto.Message
	// event names the SSE event of a message and its id: the resume
	// position after it, "" to clear it (a resync), or none (keep). Nil:
	// not resumable, NDJSON only.
	event func(proto.Message) sseEvent
}

var streamRoutes = []streamRoute{
	{
		pattern: "GET /api/v1/canvas/stream",
		method:  canvasv1.CanvasService_StreamPixels_FullMethodName,
		request: func(r *http.Request, resume *int64) (proto.Message, error) {
			req := &canvasv1.StreamPixelsRequest{}
			if err := runtime.PopulateQueryParameters(req, r.URL.Query(), utilities.NewDoubleArray(nil)); err != nil {
				return nil, status.Errorf(codes.InvalidArgument, "%v", err)
			}
			if resume != nil {
				req.SinceSeq, req.AfterSeq = 0, resume
			}
			return req, nil
		},
		newResp: func() proto.Message { return &canvasv1.StreamPixelsResponse{} },
		event: func(m proto.Message) sseEvent {
			switch e := m.(*canvasv1.StreamPixelsResponse).GetEvent().(type) {
			case *canvasv1.StreamPixelsResponse_Batch:
				return sseEvent{name: "batch", id: position(e.Batch.GetLastSeq())}
			case *canvasv1.StreamPixelsResponse_Heartbeat:
				return sseEvent{name: "heartbeat", id: position(e.Heartbeat.GetSeq())}
			case *canvasv1.StreamPixelsResponse_Resync:
				return sseEvent{name: "resync", id: position(-1)}
			}
			return sseEvent{name: "message"}
		},
	},
	{
		pattern: "GET /api/v1/results/stream/{election_id}",
		method:  votev1.VoteService_StreamResults_FullMethodName,
		request: func(r *http.Request, resume *int64) (proto.Message, error) {
			req := &votev1.StreamResultsRequest{}
			if err := runtime.PopulateQueryParameters(req, r.URL.Query(), utilities.NewDoubleArray([][]string{{"election_id"}})); err != nil {
				return nil, status.Errorf(codes.InvalidArgument, "%v", err)
			}
			req.ElectionId = r.PathValue("election_id")
			if resume != nil {
				req.SinceVersion, req.AfterVersion = 0, resume
			}
			return req, nil
		},
		newResp: func() proto.Message { return &votev1.StreamResultsResponse{} },
		event: func(m proto.Message) sseEvent {
			res := m.(*votev1.StreamResultsResponse)
			switch {
			case res.GetTally() != nil:
				return sseEvent{name: "tally", id: position(res.GetTally().GetVersion())}
			case res.GetHeartbeat() != nil:
				return sseEvent{name: "heartbeat", id: position(res.GetHeartbeat().GetVersion())}
			case res.GetResync() != nil:
				return sseEvent{name: "resync", id: position(-1)}
			case res.GetElection() != nil: // an open or close: the position stays
				return sseEvent{name: "election"}
			}
			return sseEvent{name: "message"}
		},
	},
	{
		// A live share's colour: every message is the whole state, so a
		// reconnecting client needs no position.
		pattern: "GET /api/v1/shares/{slug}/watch",
		method:  sharev1.ShareService_WatchShare_FullMethodName,
		request: func(r *http.Request, _ *int64) (proto.Message, error) {
			req := &sharev1.WatchShareRequest{}
			if err := runtime.PopulateQueryParameters(req, r.URL.Query(), utilities.NewDoubleArray([][]string{{"slug"}})); err != nil {
				return nil, status.Errorf(codes.InvalidArgument, "%v", err)
			}
			req.Slug = r.PathValue("slug")
			return req, nil
		},
		newResp: func() proto.Message { return &sharev1.WatchShareResponse{} },
		event:   func(proto.Message) sseEvent { return sseEvent{name: "hex"} },
	},
	{
		// The admin's audit export: finite, possibly empty, not resumable.
		pattern: "GET /api/v1/elections/{election_id}/audit",
		method:  votev1.VoteService_ExportAudit_FullMethodName,
		request: func(r *http.Request, _ *int64) (proto.Message, error) {
			req := &votev1.ExportAuditRequest{}
			if err := runtime.PopulateQueryParameters(req, r.URL.Query(), utilities.NewDoubleArray([][]string{{"election_id"}})); err != nil {
				return nil, status.Errorf(codes.InvalidArgument, "%v", err)
			}
			req.ElectionId = r.PathValue("election_id")
			return req, nil
		},
		newResp: func() proto.Message { return &votev1.ExportAuditResponse{} },
	},
}

// position is an SSE id: a resume position, or "" (clear it) when negative.
func position(p int64) *string {
	s := ""
	if p >= 0 {
		s = strconv.FormatInt(p, 10)
	}
	return &s
}

// streams serves the resumable streams in front of conn.
type streams struct {
	mux  *runtime.ServeMux
	conn grpc.ClientConnInterface
	json *runtime.JSONPb
}

func (s streams) register(root *http.ServeMux) {
	for _, rt := range streamRoutes {
		root.HandleFunc(rt.pattern, func(w http.ResponseWriter, r *http.Request) { s.serve(rt, w, r) })
	}
}

func (s streams) serve(rt streamRoute, w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	fail := func(err error) { errorHandler(ctx, s.mux, s.json, w, r, err) }
	var resume *int64
	if rt.event != nil {
		var err error
		if resume, err = lastEventID(r); err != nil {
			fail(err)
			return
		}
	}
	req, err := rt.request(r, resume)
	if err != nil {
		fail(err)
		return
	}
	ctx, err = runtime.AnnotateContext(ctx, s.mux, r, rt.method, runtime.WithHTTPPathPattern(strings.TrimPrefix(rt.pattern, "GET ")))
	if err != nil {
		fail(err)
		return
	}
	cs, err := s.conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, rt.method)
	if err == nil {
		// io.EOF: the server ended the call already (e.g. refused it in an
		// interceptor); RecvMsg tells how.
		if err = cs.SendMsg(req); errors.Is(err, io.EOF) {
			err = nil
		}
	}
	if err == nil {
		err = cs.CloseSend()
	}
	first := rt.newResp()
	if err == nil {
		err = cs.RecvMsg(first)
	}
	empty := errors.Is(err, io.EOF) && rt.event == nil // a finite stream with nothing in it
	if err != nil && !empty {
		if r.Context().Err() != nil {
			return // the client went away before the first message: no one to answer
		}
		if errors.Is(err, io.EOF) { // a live stream ended without a message: nothing to say
			err = status.Error(codes.Unavailable, "the stream ended before its first message; reconnect")
		}
		if md, herr := cs.Header(); herr == nil {
			ctx = runtime.NewServerMetadataContext(ctx, runtime.ServerMetadata{HeaderMD: md})
		}
		fail(err)
		return
	}
	md, _ := cs.Header()
	copyHeaders(w, md)
	var out frameWriter = ndjsonWriter{w: w, json: s.json}
	if rt.event != nil && acceptsEventStream(r) {
		out = sseWriter{w: w, json: s.json, event: rt.event}
	}
	rc := http.NewResponseController(w)
	out.start()
	if empty {
		return
	}
	for m := first; ; {
		if err := out.message(m); err != nil {
			return // the client went away
		}
		if err := rc.Flush(); err != nil {
			return
		}
		m = rt.newResp()
		err := cs.RecvMsg(m)
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			if ctx.Err() == nil {
				_ = out.failure(status.Convert(err))
				_ = rc.Flush()
			}
			return
		}
	}
}

// lastEventID is the resume position an EventSource sends when it
// reconnects (nil when absent).
func lastEventID(r *http.Request) (*int64, error) {
	v := strings.TrimSpace(r.Header.Get("Last-Event-ID"))
	if v == "" {
		return nil, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return nil, apierr.InvalidArgument("Last-Event-ID", "must be an id this stream sent (a non-negative integer)")
	}
	return &n, nil
}

// acceptsEventStream reports whether the client asked for Server-Sent
// Events (EventSource always sends `Accept: text/event-stream`).
func acceptsEventStream(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept") {
		for _, part := range strings.Split(v, ",") {
			if mt, _, err := mime.ParseMediaType(strings.TrimSpace(part)); err == nil && mt == "text/event-stream" {
				return true
			}
		}
	}
	return false
}

// copyHeaders turns the stream's allowlisted header metadata into HTTP
// headers (X-Region), as grpc-gateway does for every call.
func copyHeaders(w http.ResponseWriter, md metadata.MD) {
	for k, vs := range md {
		if h, ok := outgoingHeader(k); ok {
			for _, v := range vs {
				w.Header().Add(h, v)
			}
		}
	}
}

// frameWriter frames a stream's messages for one media type.
type frameWriter interface {
	start()
	message(proto.Message) error
	failure(*status.Status) error
}

// ndjsonWriter writes grpc-gateway's stream lines.
type ndjsonWriter struct {
	w    http.ResponseWriter
	json *runtime.JSONPb
}

func (n ndjsonWriter) start() {
	n.w.Header().Set("Content-Type", "application/x-ndjson")
	n.w.Header().Set("Cache-Control", "no-store")
	n.w.WriteHeader(http.StatusOK)
}

func (n ndjsonWriter) message(m proto.Message) error { return n.line("result", m) }

func (n ndjsonWriter) failure(st *status.Status) error { return n.line("error", st.Proto()) }

func (n ndjsonWriter) line(key string, m proto.Message) error {
	b, err := n.json.Marshal(m)
	if err != nil {
		return err
	}
	buf := make([]byte, 0, len(b)+len(key)+6)
	buf = append(append(append(append(buf, `{"`...), key...), `":`...), b...)
	_, err = n.w.Write(append(buf, "}\n"...))
	return err
}
