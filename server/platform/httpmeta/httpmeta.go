// Package httpmeta is the small contract between services and the gateway
// for HTTP-only concerns: a service sets gRPC header metadata, the gateway
// turns the allowlisted keys into an HTTP status and headers. Nothing else a
// service puts in metadata reaches an HTTP client.
package httpmeta

import (
	"context"
	"strconv"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// Response metadata keys understood by the gateway.
const (
	// StatusCode overrides the HTTP status of a successful call (201, 302, 304...).
	StatusCode = "x-http-code"
)

// Headers maps response metadata keys to the HTTP headers they become.
var Headers = map[string]string{
	"etag":          "ETag",
	"cache-control": "Cache-Control",
	"location":      "Location",
	"x-region":      "X-Region",
	"x-canvas-seq":  "X-Canvas-Seq",
	"retry-after":   "Retry-After",
}

// Request metadata keys the gateway forwards from HTTP headers.
var RequestHeaders = map[string]string{
	"Idempotency-Key": "idempotency-key",
	"If-None-Match":   "if-none-match",
	"X-Captcha-Token": "x-captcha-token",
}

// Request metadata the gateway sets itself on every call (not from a
// same-named client header, which it never forwards):
const (
	// UserAgentKey is the HTTP client's User-Agent, empty when it sent none
	// (the call's own user-agent metadata names the gateway's gRPC client).
	UserAgentKey = "x-http-user-agent"
	// RefererKey is the HTTP Referer, when sent.
	RefererKey = "x-http-referer"
	// CountryKey is the client's country as told by the CDN's country
	// header, set only when the request came from a trusted proxy; servers
	// believe it only alongside the gateway secret.
	CountryKey = "x-client-country"
)

// ReasonGone, as the ErrorInfo reason of a NOT_FOUND status, makes the
// gateway answer 410 Gone instead of 404: the resource existed and was
// deleted or expired.
const ReasonGone = "GONE"

// SetStatus asks the gateway to answer with code.
func SetStatus(ctx context.Context, code int) error {
	return grpc.SetHeader(ctx, metadata.Pairs(StatusCode, strconv.Itoa(code)))
}

// SetHeader asks the gateway to send an HTTP header (key must be in Headers).
func SetHeader(ctx context.Context, key, value string) error {
	return grpc.SetHeader(ctx, metadata.Pairs(key, value))
}

// Incoming returns the first value of a request metadata key.
func Incoming(ctx context.Context, key string) string {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get(key); len(v) > 0 {
		return v[0]
	}
	return ""
}
