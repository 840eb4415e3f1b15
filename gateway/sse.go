package gateway

import (
	"net/http"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	sse "github.com/tmaxmax/go-sse"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// Server-Sent Events (https://html.spec.whatwg.org/multipage/server-sent-events.html),
// framed by go-sse. Each message is one event: `event:` names it (batch,
// heartbeat, resync, tally), `data:` is the message as JSON (the same JSON
// as the NDJSON line's result), `id:` is the resume position after it. The
// browser keeps the last id and sends it as Last-Event-ID when it
// reconnects, so a plain EventSource resumes where it left off. A resync
// clears the id (`id:` with no value) so that a reconnect never repeats
// the position the server just refused. An error after the first message
// is an `error` event whose data is the google.rpc.Status a unary call
// would answer.

// sseRetry is the reconnect delay browsers are told to use: soon enough
// that a replica's restart shows as a short pause.
const sseRetry = time.Second

// sseEvent is how one message goes out as an event.
type sseEvent struct {
	name string
	id   *string // nil: leave the client's last id as it is
}

type sseWriter struct {
	w     http.ResponseWriter
	json  *runtime.JSONPb
	event func(proto.Message) sseEvent
}

func (s sseWriter) start() {
	h := s.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: do not hold events back
	s.w.WriteHeader(http.StatusOK)
	_, _ = (&sse.Message{Retry: sseRetry}).WriteTo(s.w)
}

func (s sseWriter) message(m proto.Message) error {
	return s.write(s.event(m), m)
}

func (s sseWriter) failure(st *status.Status) error {
	return s.write(sseEvent{name: "error"}, st.Proto())
}

func (s sseWriter) write(ev sseEvent, m proto.Message) error {
	data, err := s.json.Marshal(m)
	if err != nil {
		return err
	}
	msg := &sse.Message{Type: sse.Type(ev.name)}
	if ev.id != nil {
		msg.ID = sse.ID(*ev.id)
	}
	msg.AppendData(string(data))
	_, err = msg.WriteTo(s.w)
	return err
}
