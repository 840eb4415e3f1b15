// Package apierr builds the gRPC statuses the platform answers with, always
// carrying the standard google.rpc details clients can act on: BadRequest
// field violations for bad input, RetryInfo for limits and cooldowns,
// ErrorInfo with a machine-readable reason. The gateway turns them into HTTP
// statuses and headers (RetryInfo becomes Retry-After).
package apierr

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/apiplatform/platform/server/platform/logthrottle"
	"github.com/apiplatform/platform/server/platform/storeerr"
)

// Domain names the error space in ErrorInfo details.
const Domain = "apiplatform.dev"

// FieldViolation names a request field and why its value was refused.
type FieldViolation struct{ Field, Description string }

// InvalidArgument is INVALID_ARGUMENT with one BadRequest field violation.
func InvalidArgument(field, description string) error {
	return InvalidArguments(FieldViolation{field, description})
}

// InvalidArguments is INVALID_ARGUMENT listing every offending field.
// Fields are named as in proto (`long_url`, `candidates[1].name`) and
// reported by their JSON names (`longUrl`), the names REST bodies use and
// protojson accepts from gRPC clients too.
func InvalidArguments(vs ...FieldViolation) error {
	br := &errdetails.BadRequest{}
	msg := "invalid request"
	for i, v := range vs {
		field := JSONPath(v.Field)
		br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{Field: field, Description: v.Description})
		if i == 0 {
			msg = field + ": " + v.Description
		}
	}
	return with(codes.InvalidArgument, msg, br)
}

// JSONPath turns a proto field path into its JSON (lowerCamelCase) form the
// way protoc derives json_name: each `_` is dropped and the next letter
// upper-cased. Indexes and dots are kept.
func JSONPath(field string) string {
	if !strings.Contains(field, "_") {
		return field
	}
	var b strings.Builder
	upper := false
	for _, r := range field {
		switch {
		case r == '_':
			upper = true
			continue
		case upper && r >= 'a' && r <= 'z':
			r -= 'a' - 'A'
		}
		upper = false
		b.WriteRune(r)
	}
	return b.String()
}

// Validator collects field violations so a request reports all of them.
type Validator struct{ vs []FieldViolation }

// Check records a violation of field when ok is false.
func (v *Validator) Check(ok bool, field, description string) {
	if !ok {
		v.vs = append(v.vs, FieldViolation{field, description})
	}
}

// Err is nil when every check passed.
func (v *Validator) Err() error {
	if len(v.vs) == 0 {
		return nil
	}
	return InvalidArguments(v.vs...)
}

// Unauthenticated: no valid credentials.
func Unauthenticated(msg string) error {
	return with(codes.Unauthenticated, msg, info("UNAUTHENTICATED"))
}

// PermissionDenied: the caller may not do this.
func PermissionDenied(msg string) error {
	return with(codes.PermissionDenied, msg, info("PERMISSION_DENIED"))
}

// NotFound: what was named does not exist (or is not visible to the caller).
func NotFound(msg string) error { return with(codes.NotFound, msg, info("NOT_FOUND")) }

// AlreadyExists with a reason such as "USERNAME_TAKEN".
func AlreadyExists(msg, reason string) error {
	return with(codes.AlreadyExists, msg, info(reason))
}

// FailedPrecondition with a reason such as "NO_FAVORITE".
func FailedPrecondition(msg, reason string) error {
	return with(codes.FailedPrecondition, msg, info(reason))
}

// ResourceExhausted tells the caller when to try again.
func ResourceExhausted(msg, reason string, retryAfter time.Duration) error {
	return with(codes.ResourceExhausted, msg, info(reason), retry(retryAfter))
}

// Unavailable tells the caller to retry after a while.
func Unavailable(msg string, retryAfter time.Duration) error {
	return with(codes.Unavailable, msg, info("UNAVAILABLE"), retry(retryAfter))
}

// unavailableLogs keeps a database outage, which fails every request the
// same way, to one log line per interval.
var unavailableLogs = logthrottle.Throttle{Every: 10 * time.Second}

// FromStorage maps a store error to a status. Unknown errors become
// INTERNAL with a generic message: the cause is logged, never sent.
func FromStorage(ctx context.Context, err error, notFoundMsg string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, storeerr.ErrNotFound):
		return NotFound(notFoundMsg)
	case errors.Is(err, storeerr.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		if n, ok := unavailableLogs.Allow(); ok {
			slog.WarnContext(ctx, "storage unavailable", "err", err, "suppressed_since_last_log", n)
		}
		return Unavailable("storage is temporarily unavailable", 2*time.Second)
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "request canceled")
	}
	return Internal(ctx, err)
}

// Internal logs err and returns a status that reveals nothing of it.
func Internal(ctx context.Context, err error) error {
	slog.ErrorContext(ctx, "internal error", "err", err)
	return status.Error(codes.Internal, "internal error")
}

// RetryAfter extracts the RetryInfo delay of a status, if any.
func RetryAfter(st *status.Status) (time.Duration, bool) {
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok && ri.GetRetryDelay() != nil {
			return ri.GetRetryDelay().AsDuration(), true
		}
	}
	return 0, false
}

func info(reason string) *errdetails.ErrorInfo {
	return &errdetails.ErrorInfo{Reason: reason, Domain: Domain}
}

func retry(d time.Duration) *errdetails.RetryInfo {
	return &errdetails.RetryInfo{RetryDelay: durationpb.New(d)}
}

func with(c codes.Code, msg string, details ...protoadapt.MessageV1) error {
	st, err := status.New(c, msg).WithDetails(details...)
	if err != nil { // only fails for unmarshalable details: a programming error
		panic(err)
	}
	return st.Err()
}
