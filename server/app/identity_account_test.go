package app_test

import (
	"testing"

	"google.golang.org/grpc/codes"

	identityv1 "github.com/apiplatform/platform/gen/go/identity/v1"
)

func changePassword(t *testing.T, p *platform, surface, token, current, next string) (*identityv1.Session, error) {
	t.Helper()
	if surface == "grpc" {
		res, err := identityv1.NewIdentityServiceClient(p.conn).ChangePassword(grpcAPI{p}.ctx(token),
			&identityv1.ChangePasswordRequest{CurrentPassword: current, NewPassword: next})
		return res.GetSession(), err
	}
	out, err := idREST{newREST(p)}.post(t, "/api/v1/auth/password", token, "", map[string]any{"currentPassword": current, "newPassword": next})
	return out.session(), err
}

// Changing the password ends every session of the account (the caller
// gets a fresh one); the old password stops working; bad input names its
// field and changes nothing.
func TestChangePasswordEndsOtherSessions(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		p := start(t, b, nil)
		for _, c := range idClients(p) {
			t.Run(c.name(), func(t *testing.T) {
				user := randomName("pw")
				mine, err := c.register(t, "", user, "the old password")
				if err != nil {
					t.Fatal(err)
				}
				other, err := c.login(t, "", user, "the old password")
				if err != nil {
					t.Fatal(err)
				}
				_, err = changePassword(t, p, c.name(), mine.GetAccessToken(), "the old password", "short")
				wantField(t, err, "newPassword")
				_, err = changePassword(t, p, c.name(), mine.GetAccessToken(), "not the password", "the new password")
				wantCode(t, err, codes.Unauthenticated)
				if _, err := c.me(t, other.GetAccessToken()); err != nil {
					t.Fatalf("a refused change ended sessions: %v", err)
				}
				fresh, err := changePassword(t, p, c.name(), mine.GetAccessToken(), "the old password", "the new password")
				if err != nil {
					t.Fatal(err)
				}
				for _, old := range []*identityv1.Session{mine, other} {
					_, err := c.me(t, old.GetAccessToken())
					wantCode(t, err, codes.Unauthenticated)
					_, err = c.refresh(t, old.GetRefreshToken())
					wantCode(t, err, codes.Unauthenticated)
				}
				if _, err := c.me(t, fresh.GetAccessToken()); err != nil {
					t.Fatalf("the fresh session: %v", err)
				}
				_, err = c.login(t, "", user, "the old password")
				wantCode(t, err, codes.Unauthenticated)
				if _, err := c.login(t, "", user, "the new password"); err != nil {
					t.Fatal(err)
				}
				_, guest := grpcAPI{p}.guest(t)
				_, err = changePassword(t, p, c.name(), guest, "whatever", "the new password")
				wantCode(t, err, codes.PermissionDenied)
			})
		}
	})
}
