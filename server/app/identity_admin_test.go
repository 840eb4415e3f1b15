package app_test

import (
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	identityv1 "github.com/apiplatform/platform/gen/go/identity/v1"
	"github.com/apiplatform/platform/server/app"
)

// adminOps are the admin's account operations over one surface.
type adminOps interface {
	suspend(t *testing.T, token, userID string) error
	reinstate(t *testing.T, token, userID string) error
	setRole(t *testing.T, token, userID string, role identityv1.Role) error
}

func adminClients(p *platform) []adminOps { return []adminOps{adminGRPC{p}, adminREST{newREST(p)}} }

type adminGRPC struct{ p *platform }

func (g adminGRPC) c() identityv1.IdentityServiceClient {
	return identityv1.NewIdentityServiceClient(g.p.conn)
}

func (g adminGRPC) suspend(t *testing.T, token, id string) error {
	_, err := g.c().SuspendUser(grpcAPI{g.p}.ctx(token), &identityv1.SuspendUserRequest{UserId: id})
	return err
}

func (g adminGRPC) reinstate(t *testing.T, token, id string) error {
	_, err := g.c().ReinstateUser(grpcAPI{g.p}.ctx(token), &identityv1.ReinstateUserRequest{UserId: id})
	return err
}

func (g adminGRPC) setRole(t *testing.T, token, id string, role identityv1.Role) error {
	_, err := g.c().SetUserRole(grpcAPI{g.p}.ctx(token), &identityv1.SetUserRoleRequest{UserId: id, Role: role})
	return err
}

type adminREST struct{ r restAPI }

func (r adminREST) suspend(t *testing.T, token, id string) error {
	_, err := r.r.call(t, "POST", "/api/v1/admin/users/"+id+":suspend", token, map[string]any{}, nil)
	return err
}

func (r adminREST) reinstate(t *testing.T, token, id string) error {
	_, err := r.r.call(t, "POST", "/api/v1/admin/users/"+id+":reinstate", token, map[string]any{}, nil)
	return err
}

func (r adminREST) setRole(t *testing.T, token, id string, role identityv1.Role) error {
	_, err := r.r.call(t, "POST", "/api/v1/admin/users/"+id+":setRole", token, map[string]any{"role": role.String()}, nil)
	return err
}

// An admin suspends an account on replica A: its session and its API key
// are refused at the very next call on replica B (which had both in its
// cache), and its login is refused; reinstated, it logs in again. A role
// granted on A ends the account's sessions on B; the new login carries the
// role. Only admins may do any of this. (On the embedded store one server
// plays both replicas.)
func TestAdminSuspendAndRole(t *testing.T) {
	t.Run("embedded", func(t *testing.T) {
		p := start(t, embeddedBackend, func(cfg *app.Config) { cfg.AdminUser, cfg.AdminPassword = adminName, adminPassword })
		testAdminSuspendAndRole(t, p, p)
	})
	t.Run("postgres+redis replicas", func(t *testing.T) {
		cfgs := replicaConfigs(t, "region-a", "region-b")
		for i := range cfgs {
			cfgs[i].AdminUser, cfgs[i].AdminPassword = adminName, adminPassword
		}
		testAdminSuspendAndRole(t, startConfig(t, cfgs[0]), startConfig(t, cfgs[1]))
	})
}

func testAdminSuspendAndRole(t *testing.T, a, b *platform) {
	for i, idA := range idClients(a) {
		idB, keysA, keysB, admin := idClients(b)[i], keyClients(a)[i], keyClients(b)[i], adminClients(a)[i]
		t.Run(idA.name(), func(t *testing.T) {
			boss, err := idA.login(t, "", adminName, adminPassword)
			if err != nil {
				t.Fatal(err)
			}
			name := randomName("sus")
			s, err := idA.register(t, "", name, "a long enough password")
			if err != nil {
				t.Fatal(err)
			}
			me, err := idB.me(t, s.GetAccessToken())
			if err != nil {
				t.Fatal(err)
			}
			_, key, err := keysA.create(t, s.GetAccessToken(), "reader", "favorite:read")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := keysB.read(t, key); status.Code(err) != codes.NotFound {
				t.Fatalf("key before the suspension: %v", err)
			}

			wantCode(t, admin.suspend(t, s.GetAccessToken(), me.GetId()), codes.PermissionDenied)
			if err := admin.suspend(t, boss.GetAccessToken(), me.GetId()); err != nil {
				t.Fatalf("suspend: %v", err)
			}
			_, err = idB.me(t, s.GetAccessToken())
			wantCode(t, err, codes.Unauthenticated)
			_, err = keysB.read(t, key)
			wantCode(t, err, codes.Unauthenticated)
			_, err = idB.login(t, "", name, "a long enough password")
			wantCode(t, err, codes.PermissionDenied)

			if err := admin.reinstate(t, boss.GetAccessToken(), me.GetId()); err != nil {
				t.Fatalf("reinstate: %v", err)
			}
			s, err = idB.login(t, "", name, "a long enough password")
			if err != nil {
				t.Fatalf("login after reinstatement: %v", err)
			}
			if u, err := idB.me(t, s.GetAccessToken()); err != nil || u.GetRole() != identityv1.Role_ROLE_USER {
				t.Fatalf("me = %v, %v", u, err)
			}

			if err := admin.setRole(t, boss.GetAccessToken(), me.GetId(), identityv1.Role_ROLE_ADMIN); err != nil {
				t.Fatalf("grant admin: %v", err)
			}
			_, err = idB.me(t, s.GetAccessToken())
			wantCode(t, err, codes.Unauthenticated)
			s, err = idB.login(t, "", name, "a long enough password")
			if err != nil {
				t.Fatal(err)
			}
			if u, err := idB.me(t, s.GetAccessToken()); err != nil || u.GetRole() != identityv1.Role_ROLE_ADMIN {
				t.Fatalf("me after the grant = %v, %v", u, err)
			}
			wantCode(t, admin.setRole(t, s.GetAccessToken(), me.GetId(), identityv1.Role_ROLE_USER), codes.FailedPrecondition)
			if err := admin.setRole(t, boss.GetAccessToken(), me.GetId(), identityv1.Role_ROLE_USER); err != nil {
				t.Fatalf("revoke admin: %v", err)
			}
			_, err = idB.me(t, s.GetAccessToken())
			wantCode(t, err, codes.Unauthenticated)
			wantCode(t, admin.suspend(t, boss.GetAccessToken(), "not-a-user"), codes.InvalidArgument)
		})
	}
}
