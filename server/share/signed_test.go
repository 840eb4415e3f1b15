package share_test

import (
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	sharev1 "github.com/apiplatform/platform/gen/go/share/v1"
)

// A signed link opens until the very instant it expires, on the service's
// clock, for a multi-use and a single-use link alike; a single-use link
// that expired unused stays refused.
func TestSignedExpiry(t *testing.T) {
	e := newEnv(t, testConfig())
	owner := e.user(t, "red")
	var toks []string
	for _, single := range []bool{false, true} {
		res, err := e.svc.CreateSignedShare(owner, &sharev1.CreateSignedShareRequest{ExpiresInSec: 60, SingleUse: single})
		if err != nil {
			t.Fatal(err)
		}
		toks = append(toks, res.GetSignedShare().GetToken())
	}
	e.clock.Add(59 * time.Second)
	if _, err := e.svc.GetSignedSharePage(anonymous(), &sharev1.GetSignedSharePageRequest{Token: toks[0]}); err != nil {
		t.Fatalf("before expiry: %v", err)
	}
	e.clock.Add(time.Second)
	for _, tok := range toks {
		_, err := e.svc.GetSignedSharePage(anonymous(), &sharev1.GetSignedSharePageRequest{Token: tok})
		if st := wantStatus(t, err, codes.NotFound); reason(st) != "GONE" {
			t.Fatalf("expired link refused with %q", reason(st))
		}
	}
}
