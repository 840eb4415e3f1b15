// Package redistest connects tests to the Redis named by TEST_REDIS_URL
// (which .ci/with-services exports) and keeps their keys apart.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Client connects to TEST_REDIS_URL, or skips the test when it is unset.
func Client(t testing.TB) redis.UniversalClient {
	t.Helper()
	url := os.Getenv("TEST_REDIS_URL")
	if url == "" {
		t.Skip("TEST_REDIS_URL not set (run through .ci/with-services); skipping the Redis engine")
	}
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatalf("TEST_REDIS_URL: %v", err)
	}
	c := redis.NewClient(opt)
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("TEST_REDIS_URL=%s: %v", url, err)
	}
	return c
}

// Prefix is a key prefix no other test uses.
func Prefix(kind string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "test:" + kind + ":" + hex.EncodeToString(b[:]) + ":"
}
