package app_test

import (
	"testing"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
)

// A stream refused before its first message (here the admin-only audit
// export asked for by a guest) answers its own status over REST, whichever
// of the gateway's request and the server's refusal comes first: never a
// 500 "EOF". Asked many times, since the order is the scheduler's.
func TestStreamRefusedAtOnce(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		r := newREST(start(t, b, nil))
		_, tok := r.guest(t)
		for range 50 {
			_, err := restVote{r}.audit(t, tok, uuid.NewString())
			wantCode(t, err, codes.PermissionDenied)
		}
	})
}
