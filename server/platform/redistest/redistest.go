// Package redistest connects tests to the Redis named by TEST_REDIS_URL
// (which .ci/with-services exports, and .ci/with-redis overrides with a
// Cluster or a Sentinel URL) and keeps their keys apart.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/apiplatform/platform/server/platform/redisconn"
)

// Client connects to TEST_REDIS_URL, or skips the test when it is unset.
// Each call is a client of its own, the way each replica has one.
func Client(t testing.TB) redis.UniversalClient {
	t.Helper()
	url := os.Getenv("TEST_REDIS_URL")
	if url == "" {
		t.Skip("TEST_REDIS_URL not set (run through .ci/with-services); skipping the Redis engine")
	}
	// The URL goes through the production parser, so the suites run on
	// whatever topology it names.
	c, err := redisconn.New(url)
	if err != nil {
		t.Fatalf("TEST_REDIS_URL: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("TEST_REDIS_URL=%s: %v", url, err)
	}
	return c
}

// Topology is TEST_REDIS_TOPOLOGY: "cluster", "sentinel", or "" (one node).
func Topology() string { return os.Getenv("TEST_REDIS_TOPOLOGY") }

// Prefix is a key prefix no other test uses.
func Prefix(kind string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "test:" + kind + ":" + hex.EncodeToString(b[:]) + ":"
}

// DeleteMatching deletes the keys matching pattern on every node that holds
// keys: KEYS asks one node only, and a Cluster spreads keys over masters.
func DeleteMatching(t testing.TB, c redis.UniversalClient, pattern string) {
	t.Helper()
	ctx := context.Background()
	del := func(ctx context.Context, n redis.UniversalClient) error {
		keys, err := n.Keys(ctx, pattern).Result()
		if err != nil {
			return err
		}
		for _, k := range keys { // one at a time: they may sit in different slots
			if err := n.Del(ctx, k).Err(); err != nil {
				return err
			}
		}
		return nil
	}
	var err error
	if cc, ok := c.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error { return del(ctx, n) })
	} else {
		err = del(ctx, c)
	}
	if err != nil {
		t.Logf("redistest: deleting %s: %v", pattern, err)
	}
}

// NumSub is how many subscriptions channel has. PUBSUB NUMSUB counts one
// node's subscribers only, so on a Cluster every master is asked.
func NumSub(ctx context.Context, c redis.UniversalClient, channel string) (int64, error) {
	cc, ok := c.(*redis.ClusterClient)
	if !ok {
		n, err := c.PubSubNumSub(ctx, channel).Result()
		return n[channel], err
	}
	var mu sync.Mutex
	var total int64
	err := cc.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		n, err := m.PubSubNumSub(ctx, channel).Result()
		mu.Lock()
		total += n[channel]
		mu.Unlock()
		return err
	})
	return total, err
}
