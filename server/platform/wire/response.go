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
	_ = grpc.SetHeader(ctx, metadata.Pairs(StatusKey, strconv.Itoa(code)))
}

// SetHeader asks the gateway to send an HTTP header (key must be in
// Headers).
func SetHeader(ctx context.Context, key, value string) {
	_ = grpc.SetHeader(ctx, metadata.Pairs(key, value))
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
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == etag {
			return true
		}
	}
	return false
}

// NotModified answers a conditional read: it sets the ETag and reports
// whether the caller's If-None-Match already holds it, asking for 304 then.
func NotModified(ctx context.Context, etag string) bool {
	SetHeader(ctx, "etag", etag)
	if ETagMatches(FromContext(ctx).IfNoneMatch, etag) {
		SetStatus(ctx, 304)
		return true
	}
	return false
}
