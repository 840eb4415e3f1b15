package wire

import (
	"context"
	"strconv"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// StatusKey is the response metadata key of a service's HTTP status intent
// (201, 301, 302, 304, 403, 410...), on answers and errors alike.
const StatusKey = "x-http-code"

// Headers maps response metadata keys to the HTTP headers they become;
// nothing else a service puts in metadata reaches an HTTP client.
var Headers = map[string]string{
	"etag":          "ETag",
	"cache-control": "Cache-Control",
	"location":      "Location",
	"vary":          "Vary",
	"x-region":      "X-Region",
	"x-canvas-seq":  "X-Canvas-Seq",
	"retry-after":   "Retry-After",
}

// SetStatus asks the gateway to answer with code (set before returning an
// error too: the gateway applies it to the error's answer).
func SetStatus(ctx context.Context, code int) {
	_ = grpc.SetHeader(ctx, metadata.MD{StatusKey: {strconv.Itoa(code)}})
}

// SetHeader asks the gateway to send an HTTP header (key must be in
// Headers).
func SetHeader(ctx context.Context, key, value string) {
	_ = grpc.SetHeader(ctx, metadata.MD{key: {value}})
}

// SetResponse asks for an HTTP status (when code is not 0) and headers
// (lower-case key, value pairs; keys in Headers) in one metadata: an
// answer on the hot path (a redirect) sets all of them at once.
func SetResponse(ctx context.Context, code int, kv ...string) {
	n := len(kv) / 2
	if code != 0 {
		n++
	}
	md := NewMD(n)
	if code != 0 {
		md.Set(StatusKey, strconv.Itoa(code))
	}
	for i := 0; i+1 < len(kv); i += 2 {
		md.Set(kv[i], kv[i+1])
	}
	_ = grpc.SetHeader(ctx, md.MD())
}

// Status is the HTTP status a service asked for in md, if any.
func Status(md metadata.MD) (int, bool) {
	v := md.Get(StatusKey)
	if len(v) != 1 {
		return 0, false
	}
	code, err := strconv.Atoi(v[0])
	return code, err == nil && code >= 200 && code < 600
}

// ETagMatches reports whether an If-None-Match header names etag (weak
// comparison, as RFC 9110 asks for If-None-Match).
func ETagMatches(header, etag string) bool {
	for rest, more := header, true; more; {
		var t string
		t, rest, more = strings.Cut(rest, ",")
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == etag {
			return true
		}
	}
	return false
}

// NotModified answers a conditional read: it sets the ETag, and the
// representation's other headers kv (as SetResponse takes them), and
// reports whether the caller's If-None-Match already holds it, asking for
// 304 then.
func NotModified(ctx context.Context, etag string, kv ...string) bool {
	kv = append(kv, "etag", etag)
	if ETagMatches(FromContext(ctx).IfNoneMatch, etag) {
		SetResponse(ctx, 304, kv...)
		return true
	}
	SetResponse(ctx, 0, kv...)
	return false
}
