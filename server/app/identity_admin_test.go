package app_test

import (
	"net/url"
	"slices"
	"strconv"
	"strings"
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
	// listUsers returns one page: the usernames and the next page token.
	listUsers(t *testing.T, token, query string, size int32, pageToken string) ([]string, string, error)
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

func (g adminGRPC) listUsers(t *testing.T, token, query string, size int32, tok string) ([]string, string, error) {
	res, err := g.c().ListUsers(grpcAPI{g.p}.ctx(token), &identityv1.ListUsersRequest{Query: query, PageSize: size, PageToken: tok})
	var names []string
	for _, u := range res.GetUsers() {
		names = append(names, u.GetUsername())
	}
	return names, res.GetNextPageToken(), err
}

type adminREST struct{ r restAPI }

func (r adminREST) listUsers(t *testing.T, token, query string, size int32, tok string) ([]string, string, error) {
	var out struct {
		Users []struct {
			Username string `json:"username"`
		} `json:"users"`
		NextPageToken string `json:"nextPageToken"`
	}
	q := url.Values{"query": {query}, "pageSize": {strconv.Itoa(int(size))}, "pageToken": {tok}}
	_, err := r.r.call(t, "GET", "/api/v1/admin/users?"+q.Encode(), token, nil, &out)
	var names []string
	for _, u := range out.Users {
		names = append(names, u.Username)
	}
	return names, out.NextPageToken, err
}

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

// An admin lists accounts newest first, filtered by a username prefix in
// any case, and walks every page exactly once; others are refused, and a
// bad page size or token names its field.
func TestAdminListUsers(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		p := start(t, b, func(cfg *app.Config) { cfg.AdminUser, cfg.AdminPassword = adminName, adminPassword })
		for i, id := range idClients(p) {
			admin := adminClients(p)[i]
			t.Run(id.name(), func(t *testing.T) {
				boss, err := id.login(t, "", adminName, adminPassword)
				if err != nil {
					t.Fatal(err)
				}
				prefix := randomName("lu")
				var want []string // newest first
				var user *identityv1.Session
				for _, n := range []string{"a", "b", "c", "d", "e"} {
					if user, err = id.register(t, "", prefix+n, "a long enough password"); err != nil {
						t.Fatal(err)
					}
					want = append([]string{prefix + n}, want...)
				}
				if _, err := id.register(t, "", randomName("other"), "a long enough password"); err != nil {
					t.Fatal(err)
				}

				var got []string
				tok := ""
				for range len(want) + 1 {
					names, next, err := admin.listUsers(t, boss.GetAccessToken(), strings.ToUpper(prefix), 2, tok)
					if err != nil {
						t.Fatalf("list: %v", err)
					}
					if len(names) > 2 {
						t.Fatalf("page of %d, asked for 2", len(names))
					}
					got = append(got, names...)
					if tok = next; tok == "" {
						break
					}
				}
				if !slices.Equal(got, want) {
					t.Fatalf("pages = %q, want %q", got, want)
				}
				names, _, err := admin.listUsers(t, boss.GetAccessToken(), prefix+"c", 0, "")
				if err != nil || !slices.Equal(names, []string{prefix + "c"}) {
					t.Fatalf("query %sc = %q, %v", prefix, names, err)
				}
				names, _, err = admin.listUsers(t, boss.GetAccessToken(), "", 100, "")
				if err != nil || !slices.Contains(names, adminName) || !slices.Contains(names, prefix+"a") {
					t.Fatalf("unfiltered list = %q, %v", names, err)
				}

				_, _, err = admin.listUsers(t, user.GetAccessToken(), "", 0, "")
				wantCode(t, err, codes.PermissionDenied)
				_, _, err = admin.listUsers(t, boss.GetAccessToken(), "", 101, "")
				wantField(t, err, "pageSize")
				_, _, err = admin.listUsers(t, boss.GetAccessToken(), "", -1, "")
				wantField(t, err, "pageSize")
				_, _, err = admin.listUsers(t, boss.GetAccessToken(), "", 0, "not-a-token")
				wantField(t, err, "pageToken")
				_, _, err = admin.listUsers(t, boss.GetAccessToken(), strings.Repeat("x", 33), 0, "")
				wantField(t, err, "query")
			})
		}
	})
}
