package gateway

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"sync/atomic"
	"time"
)

// Per-request deadlines. net/http's server-wide ReadTimeout and
// WriteTimeout would cut the long-lived result and pixel streams, so the
// server sets only ReadHeaderTimeout and IdleTimeout, and each request gets
// its own deadlines here through http.ResponseController:
//
//   - the body must arrive within BodyTimeout (a client dripping a byte
//     every few seconds is cut off); the deadline is lifted once the body
//     is read, so a handler's own time is not counted against it;
//   - the answer must be written within WriteTimeout, unless it turns out
//     to be a stream (NDJSON or Server-Sent Events), whose deadline is
//     lifted when its header goes out.
func withDeadlines(body, write time.Duration, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		if body > 0 && r.Body != nil && r.Body != http.NoBody {
			if rc.SetReadDeadline(time.Now().Add(body)) == nil {
				cut := new(atomic.Bool)
				r = r.WithContext(context.WithValue(r.Context(), bodyCutKey{}, cut))
				r.Body = &deadlineBody{ReadCloser: r.Body, rc: rc, cut: cut}
			}
		}
		if write > 0 && rc.SetWriteDeadline(time.Now().Add(write)) == nil {
			w = &streamWriter{ResponseWriter: w, rc: rc}
		}
		next.ServeHTTP(w, r)
	})
}

// deadlineBody lifts the read deadline once the body is read to its end,
// and notes when the deadline cut the body off.
type deadlineBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	cut  *atomic.Bool
	done bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF && !b.done {
		b.done = true
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		b.cut.Store(true)
	}
	return n, err
}

type bodyCutKey struct{}

// bodyCutOff reports whether the body deadline cut the request's body off.
// net/http then cancels the request's context as if the client had left,
// but the client is still there and gets its answer (400).
func bodyCutOff(ctx context.Context) bool {
	cut, _ := ctx.Value(bodyCutKey{}).(*atomic.Bool)
	return cut != nil && cut.Load()
}

// streamWriter lifts the write deadline when the answer is a stream.
type streamWriter struct {
	http.ResponseWriter
	rc    *http.ResponseController
	wrote bool
}

func (s *streamWriter) WriteHeader(code int) {
	if !s.wrote {
		s.wrote = true
		if isStream(s.Header()) {
			_ = s.rc.SetWriteDeadline(time.Time{})
		}
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *streamWriter) Write(b []byte) (int, error) {
	if !s.wrote {
		s.WriteHeader(http.StatusOK)
	}
	return s.ResponseWriter.Write(b)
}

func (s *streamWriter) Flush() {
	if !s.wrote {
		s.WriteHeader(http.StatusOK)
	}
	_ = http.NewResponseController(s.ResponseWriter).Flush()
}

func (s *streamWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }
