package gateway

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/status"

	"github.com/apiplatform/platform/server/platform/apierr"
)

// A stream refused before its first message (too many open streams, a
// rate limit) is answered by grpc-gateway's stream error path, which skips
// errorHandler: Retry-After would be missing from the 429. The stream error
// handler notes the delay in a holder the handler middleware put in the
// request's context, and the middleware's writer adds the header when the
// status goes out.

type retryKey struct{}

type retryHolder struct{ after time.Duration }

// streamErrorStatus is grpc-gateway's default conversion, noting RetryInfo.
func streamErrorStatus(ctx context.Context, err error) *status.Status {
	st := runtime.DefaultStreamErrorHandler(ctx, err)
	if h, ok := ctx.Value(retryKey{}).(*retryHolder); ok {
		if d, ok := apierr.RetryAfter(st); ok {
			h.after = d
		}
	}
	return st
}

// retryMiddleware carries the holder for streamErrorStatus.
func retryMiddleware(next runtime.HandlerFunc) runtime.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, params map[string]string) {
		h := &retryHolder{}
		next(&retryWriter{ResponseWriter: w, h: h}, r.WithContext(context.WithValue(r.Context(), retryKey{}, h)), params)
	}
}

type retryWriter struct {
	http.ResponseWriter
	h *retryHolder
}

func (w *retryWriter) WriteHeader(code int) {
	if w.h.after > 0 && w.Header().Get("Retry-After") == "" {
		secs := int((w.h.after + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *retryWriter) Flush() {
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *retryWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
