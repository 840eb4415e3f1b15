package app_test

import (
	"context"
	"testing"

	"google.golang.org/grpc/codes"

	identityv1 "github.com/apiplatform/platform/gen/go/identity/v1"
)

// A revocation on replica A is refused on replica B at the very next call,
// although B verifies sessions from memory in the steady state: with the
// bus up, and with Redis killed between the two calls (B then asks the
// database). Logout and refresh-token reuse, through gRPC and REST.
func TestRevocationReachesEveryReplica(t *testing.T) {
	for _, redisDown := range []bool{false, true} {
		name := map[bool]string{false: "bus", true: "redis killed"}[redisDown]
		t.Run(name, func(t *testing.T) {
			rs := startRedis(t)
			cfgs := replicaConfigs(t, "region-a", "region-b")
			for i := range cfgs {
				cfgs[i].RedisURL = rs.url
			}
			cfgs[1].MetricsAddr = "127.0.0.1:0"
			a, b := startConfig(t, cfgs[0]), startConfig(t, cfgs[1])
			for i, onA := range idClients(a) {
				onB := idClients(b)[i]
				t.Run(onA.name(), func(t *testing.T) {
					// warm makes B answer token from its cache (once B has
					// caught up again after an outage).
					warm := func(token string) {
						t.Helper()
						untilCounted(t, b, `session_cache_requests_total{result="hit"}`, "B did not answer from its session cache", func() {
							for range 2 {
								if _, err := onB.me(t, token); err != nil {
									t.Fatal(err)
								}
							}
						})
					}
					between := func() {
						if redisDown {
							rs.stop(t)
						}
					}
					after := func() {
						if redisDown {
							rs.start(t)
						}
					}

					user := randomName("rep")
					s, err := onA.register(t, "", user, "a long enough password")
					if err != nil {
						t.Fatal(err)
					}
					warm(s.GetAccessToken())
					between()
					if err := logoutOn(t, a, onA.name(), s.GetAccessToken()); err != nil {
						t.Fatalf("logout on A: %v", err)
					}
					_, err = onB.me(t, s.GetAccessToken())
					wantCode(t, err, codes.Unauthenticated)
					after()

					first, err := onA.login(t, "", user, "a long enough password")
					if err != nil {
						t.Fatal(err)
					}
					second, err := onA.refresh(t, first.GetRefreshToken())
					if err != nil {
						t.Fatal(err)
					}
					warm(second.GetAccessToken())
					between()
					_, err = onA.refresh(t, first.GetRefreshToken()) // reuse
					wantCode(t, err, codes.Unauthenticated)
					_, err = onB.me(t, second.GetAccessToken())
					wantCode(t, err, codes.Unauthenticated)
					after()
				})
			}
		})
	}
}

func logoutOn(t *testing.T, p *platform, surface, token string) error {
	if surface == "grpc" {
		return grpcAPI{p}.logout(t, token)
	}
	return newREST(p).logout(t, token)
}

// A promotion by a replica restarting with --admin-user ends the account's
// sessions on the replicas still running.
func TestPromotionReachesEveryReplica(t *testing.T) {
	cfgs := replicaConfigs(t, "region-a", "region-b")
	cfgs[1].MetricsAddr = "127.0.0.1:0"
	a, b := startConfig(t, cfgs[0]), startConfig(t, cfgs[1])
	name := randomName("promoted")
	s, err := idGRPC{a}.register(t, "", name, "a long enough password")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range idClients(b) {
		if u, err := c.me(t, s.GetAccessToken()); err != nil || u.GetRole() != identityv1.Role_ROLE_USER {
			t.Fatalf("me on B = %v, %v", u, err)
		}
	}
	if err := a.srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	cfgs[0].AdminUser, cfgs[0].AdminPassword = name, "the admin password"
	startConfig(t, cfgs[0])
	for _, c := range idClients(b) {
		_, err := c.me(t, s.GetAccessToken())
		wantCode(t, err, codes.Unauthenticated)
	}
}
