package apierr

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/apiplatform/platform/server/platform/storeerr"
)

// details sorts a status's details by kind, failing on any the platform
// never sends.
type details struct {
	info  *errdetails.ErrorInfo
	retry *errdetails.RetryInfo
	bad   *errdetails.BadRequest
}

func detailsOf(t *testing.T, st *status.Status) details {
	t.Helper()
	var d details
	for _, x := range st.Details() {
		switch v := x.(type) {
		case *errdetails.ErrorInfo:
			d.info = v
		case *errdetails.RetryInfo:
			d.retry = v
		case *errdetails.BadRequest:
			d.bad = v
		default:
			t.Fatalf("unexpected detail %T (%v)", x, x)
		}
	}
	return d
}

// Storage errors reach clients as the status their meaning calls for, with
// the details a client can act on, and unknown causes never leak.
func TestFromStorage(t *testing.T) {
	secret := errors.New("pq: relation users_secret_table does not exist")
	for _, c := range []struct {
		name      string
		err       error
		code      codes.Code
		msg       string
		reason    string
		retry     time.Duration // 0: no RetryInfo
		noDetails bool
	}{
		{name: "not found", err: storeerr.ErrNotFound, code: codes.NotFound, msg: "share not found", reason: "NOT_FOUND"},
		{name: "wrapped not found", err: fmt.Errorf("get share: %w", storeerr.ErrNotFound), code: codes.NotFound, msg: "share not found", reason: "NOT_FOUND"},
		{name: "unavailable", err: fmt.Errorf("dial: %w", storeerr.ErrUnavailable), code: codes.Unavailable, msg: "storage is temporarily unavailable", reason: "UNAVAILABLE", retry: 2 * time.Second},
		{name: "deadline", err: fmt.Errorf("query: %w", context.DeadlineExceeded), code: codes.Unavailable, msg: "storage is temporarily unavailable", reason: "UNAVAILABLE", retry: 2 * time.Second},
		{name: "canceled", err: context.Canceled, code: codes.Canceled, msg: "request canceled", noDetails: true},
		{name: "conflict is not the client's business", err: storeerr.ErrConflict, code: codes.Internal, msg: "internal error", noDetails: true},
		{name: "unknown", err: secret, code: codes.Internal, msg: "internal error", noDetails: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := FromStorage(context.Background(), c.err, "share not found")
			st, ok := status.FromError(err)
			if !ok {
				t.Fatalf("FromStorage(%v) = %v, not a status", c.err, err)
			}
			if st.Code() != c.code || st.Message() != c.msg {
				t.Fatalf("FromStorage(%v) = %v %q, want %v %q", c.err, st.Code(), st.Message(), c.code, c.msg)
			}
			if strings.Contains(err.Error(), "users_secret_table") {
				t.Fatalf("cause leaked to the client: %v", err)
			}
			d := detailsOf(t, st)
			if c.noDetails {
				if len(st.Details()) != 0 {
					t.Fatalf("details %v, want none", st.Details())
				}
				return
			}
			if d.info.GetReason() != c.reason || d.info.GetDomain() != Domain {
				t.Errorf("ErrorInfo = %v, want reason %s domain %s", d.info, c.reason, Domain)
			}
			got, has := RetryAfter(st)
			if has != (c.retry > 0) || got != c.retry {
				t.Errorf("RetryAfter = %v, %v; want %v", got, has, c.retry)
			}
		})
	}
	if err := FromStorage(context.Background(), nil, "x"); err != nil {
		t.Errorf("FromStorage(nil) = %v, want nil", err)
	}
}

// A request with several bad fields hears about every one of them, in the
// order they were checked, and the message names the first.
func TestValidatorReportsEveryField(t *testing.T) {
	var v Validator
	v.Check(true, "ok_field", "never reported")
	v.Check(false, "username", "must be 3 to 32 characters")
	v.Check(false, "password", "must be 8 to 128 bytes")
	st := status.Convert(v.Err())
	if st.Code() != codes.InvalidArgument || st.Message() != "username: must be 3 to 32 characters" {
		t.Fatalf("status = %v %q", st.Code(), st.Message())
	}
	bad := detailsOf(t, st).bad
	var got []string
	for _, fv := range bad.GetFieldViolations() {
		got = append(got, fv.GetField()+"="+fv.GetDescription())
	}
	want := []string{"username=must be 3 to 32 characters", "password=must be 8 to 128 bytes"}
	if strings.Join(got, ";") != strings.Join(want, ";") {
		t.Fatalf("field violations = %q, want %q", got, want)
	}

	var clean Validator
	clean.Check(true, "a", "b")
	if err := clean.Err(); err != nil {
		t.Fatalf("Err with no violation = %v", err)
	}
}

func TestInvalidArgumentNamesTheField(t *testing.T) {
	st := status.Convert(InvalidArgument("Idempotency-Key", "was already used"))
	fv := detailsOf(t, st).bad.GetFieldViolations()
	if st.Code() != codes.InvalidArgument || len(fv) != 1 || fv[0].GetField() != "Idempotency-Key" || fv[0].GetDescription() != "was already used" {
		t.Fatalf("InvalidArgument = %v %q %v", st.Code(), st.Message(), fv)
	}
}

// Every constructor carries its code and a machine-readable reason; the
// ones a client should retry carry when.
func TestConstructors(t *testing.T) {
	for _, c := range []struct {
		err    error
		code   codes.Code
		reason string
		retry  time.Duration
	}{
		{Unauthenticated("no token"), codes.Unauthenticated, "UNAUTHENTICATED", 0},
		{PermissionDenied("admin only"), codes.PermissionDenied, "PERMISSION_DENIED", 0},
		{NotFound("gone"), codes.NotFound, "NOT_FOUND", 0},
		{AlreadyExists("taken", "USERNAME_TAKEN"), codes.AlreadyExists, "USERNAME_TAKEN", 0},
		{FailedPrecondition("save first", "NO_FAVORITE"), codes.FailedPrecondition, "NO_FAVORITE", 0},
		{ResourceExhausted("slow down", "RATE_LIMITED", 1500*time.Millisecond), codes.ResourceExhausted, "RATE_LIMITED", 1500 * time.Millisecond},
		{Unavailable("busy", 3*time.Second), codes.Unavailable, "UNAVAILABLE", 3 * time.Second},
	} {
		st := status.Convert(c.err)
		d := detailsOf(t, st)
		if st.Code() != c.code || d.info.GetReason() != c.reason || d.info.GetDomain() != Domain {
			t.Errorf("%v: code %v reason %q domain %q; want %v %q", c.err, st.Code(), d.info.GetReason(), d.info.GetDomain(), c.code, c.reason)
		}
		if got, ok := RetryAfter(st); ok != (c.retry > 0) || got != c.retry {
			t.Errorf("%v: RetryAfter = %v, %v; want %v", c.err, got, ok, c.retry)
		}
	}
}

func TestInternalHidesTheCause(t *testing.T) {
	st := status.Convert(Internal(context.Background(), errors.New("disk /var/lib/secret full")))
	if st.Code() != codes.Internal || st.Message() != "internal error" || len(st.Details()) != 0 {
		t.Fatalf("Internal = %v %q %v", st.Code(), st.Message(), st.Details())
	}
}
