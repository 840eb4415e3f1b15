package app_test

import (
	"fmt"
	"testing"
)

// Replica B answers favorite reads from process memory in the steady state,
// yet a save acknowledged by replica A is what B's very next read returns:
// with the bus up, and with Redis killed between the two calls (B then
// reads the store). Over gRPC and REST, the caller's own favorite and one
// shared with it.
func TestFavoriteMemoryAcrossReplicas(t *testing.T) {
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
			onA := []api{grpcAPI{a}, newREST(a)}
			onB := []api{grpcAPI{b}, newREST(b)}

			ownerID, owner := onA[0].guest(t)
			_, viewer := onA[1].guest(t)
			if _, err := onA[0].setFavorite(t, owner, "red", ""); err != nil {
				t.Fatal(err)
			}
			if _, err := onA[0].createShare(t, owner, false, 0); err != nil {
				t.Fatal(err)
			}
			want := "#FF0000"
			readsOnB := func(i int) []func() (string, error) {
				return []func() (string, error){
					func() (string, error) { f, err := onB[i].getFavorite(t, owner); return f.GetHex(), err },
					func() (string, error) { f, err := onB[i].getUserFavorite(t, viewer, ownerID); return f.GetHex(), err },
				}
			}
			// warm makes B answer from memory (once it has caught up again
			// after an outage).
			warm := func() {
				t.Helper()
				untilCounted(t, b, `favorite_local_cache_requests_total{result="hit"}`, "B did not answer from memory", func() {
					for i := range onB {
						for _, read := range readsOnB(i) {
							for range 2 {
								if hex, err := read(); err != nil || hex != want {
									t.Fatalf("B reads %q, %v; want %s", hex, err, want)
								}
							}
						}
					}
				})
			}
			// With Redis down, A cannot tell B about its save (nor drop the
			// shared cached copy): B's next read is fresh because it cannot
			// read the epoch either; once Redis is back, what B kept from
			// before is trusted for at most the cache TTL, as the shared
			// cache is. So one round there.
			rounds := 6
			if redisDown {
				rounds = 1
			}
			for round := range rounds {
				warm()
				if redisDown {
					rs.stop(t)
				}
				want = fmt.Sprintf("#%02X0000", 0x10+round)
				if _, err := onA[round%2].setFavorite(t, owner, want, ""); err != nil {
					t.Fatalf("save on A: %v", err)
				}
				for i := range onB {
					for j, read := range readsOnB(i) {
						if hex, err := read(); err != nil || hex != want {
							t.Fatalf("round %d, read %d on B (%T) right after A's save: %q, %v; want %s", round, j, onB[i], hex, err, want)
						}
					}
				}
				if redisDown {
					rs.start(t)
				}
			}

		})
	}
}
