package gateway

import (
	"mime"
	"net/http"
	"strings"

	"github.com/klauspost/compress/gzhttp"
)

// Response compression, negotiated by Accept-Encoding (gzip or zstd) with
// klauspost/compress's gzhttp: JSON answers and the binary canvas snapshot
// shrink a lot (an empty board is a few hundred bytes instead of 500 KB).
//
// Not compressed: images (PNG is compressed already), answers that carry
// their own Content-Encoding (the web client's files), and streams
// (NDJSON, Server-Sent Events): each message must reach the client when it
// is flushed, not when a compressor's window fills.
//
// ETags: an answer may go out compressed or not depending on the request,
// so a strong ETag would name two different byte sequences. For clients
// that accept compression, strong tags become weak (RFC 9110 8.8.1: the
// representations are semantically equivalent); services compare
// If-None-Match weakly, so W/"x" revalidates "x" and 304s carry the same
// weak tag the client holds.
func withCompression(next http.Handler) (http.Handler, error) {
	wrap, err := gzhttp.NewWrapper(
		gzhttp.MinSize(512),
		gzhttp.ContentTypeFilter(compressible),
	)
	if err != nil {
		return nil, err
	}
	return wrap(weakETags(next)), nil
}

func compressible(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	switch {
	case mt == "text/event-stream", mt == "application/x-ndjson", strings.HasPrefix(mt, "image/") && mt != "image/svg+xml":
		return false
	}
	return gzhttp.DefaultContentTypeFilter(ct)
}

// weakETags weakens strong ETags on answers to requests that accept a
// compressed encoding, and keeps streams uncompressed.
func weakETags(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ae := strings.ToLower(r.Header.Get("Accept-Encoding"))
		next.ServeHTTP(&etagWriter{ResponseWriter: w, weaken: strings.Contains(ae, "gzip") || strings.Contains(ae, "zstd")}, r)
	})
}

type etagWriter struct {
	http.ResponseWriter
	weaken, wrote bool
}

func (e *etagWriter) WriteHeader(code int) {
	if !e.wrote {
		e.wrote = true
		h := e.Header()
		if t := h.Get("ETag"); e.weaken && strings.HasPrefix(t, `"`) && h.Get("Content-Encoding") == "" {
			h.Set("ETag", "W/"+t)
		}
		if isStream(h) {
			h.Set(gzhttp.HeaderNoCompression, "1") // gzhttp removes it from the answer
		}
	}
	e.ResponseWriter.WriteHeader(code)
}

// isStream tells a streamed answer by its header: grpc-gateway marks its
// server-streaming answers chunked before the first message; NDJSON and
// Server-Sent Events are streams by type.
func isStream(h http.Header) bool {
	if h.Get("Transfer-Encoding") == "chunked" {
		return true
	}
	// The media type alone, without mime.ParseMediaType's parameter map:
	// every answer asks.
	mt, _, _ := strings.Cut(h.Get("Content-Type"), ";")
	mt = strings.TrimSpace(mt)
	return strings.EqualFold(mt, "text/event-stream") || strings.EqualFold(mt, "application/x-ndjson")
}

func (e *etagWriter) Write(b []byte) (int, error) {
	if !e.wrote {
		e.WriteHeader(http.StatusOK)
	}
	return e.ResponseWriter.Write(b)
}

func (e *etagWriter) Flush() {
	if !e.wrote {
		e.WriteHeader(http.StatusOK)
	}
	if f, ok := e.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (e *etagWriter) Unwrap() http.ResponseWriter { return e.ResponseWriter }
