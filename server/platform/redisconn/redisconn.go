// Package redisconn turns --redis-url into a go-redis UniversalClient, so one
// flag reaches a single node, a Sentinel-managed primary or a Cluster:
//
//	redis://[user:pass@]host:6379/0                     single node
//	redis://host:26379?master_name=mymaster&addr=h2:26379  Sentinel
//	redis://host:7000?cluster=true&addr=h2:7000           Cluster
//
// rediss:// enables TLS. Other query parameters are go-redis's own
// (dial_timeout, pool_size, ...; dialer_retries on Sentinel and Cluster).
package redisconn

import (
	"fmt"
	"net/url"

	"github.com/redis/go-redis/v9"
)

// dialerRetries is one dial attempt per connection. go-redis's default is
// 5 attempts 100 ms apart, paid again on each of a command's retries, so
// with Redis down every call waited a second or more per Redis command (a
// favorite save took 8 s), where degraded must mean fast. Commands still
// retry (max_retries), and once pool_size dials have failed the pool
// answers at once until a background dial succeeds.
const dialerRetries = 1

// New connects lazily (go-redis dials on first use).
func New(rawURL string) (redis.UniversalClient, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("redis url: %w", err)
	}
	q := u.Query()
	switch {
	case q.Has("master_name"):
		o, err := redis.ParseFailoverURL(rawURL)
		if err != nil {
			return nil, fmt.Errorf("redis sentinel url: %w", err)
		}
		if !q.Has("dialer_retries") {
			o.DialerRetries = dialerRetries
		}
		return redis.NewFailoverClient(o), nil
	case q.Get("cluster") == "true":
		q.Del("cluster")
		u.RawQuery = q.Encode()
		o, err := redis.ParseClusterURL(u.String())
		if err != nil {
			return nil, fmt.Errorf("redis cluster url: %w", err)
		}
		if !q.Has("dialer_retries") {
			o.DialerRetries = dialerRetries
		}
		return redis.NewClusterClient(o), nil
	default:
		o, err := redis.ParseURL(rawURL)
		if err != nil {
			return nil, fmt.Errorf("redis url: %w", err)
		}
		o.DialerRetries = dialerRetries // ParseURL has no dialer_retries
		return redis.NewClient(o), nil
	}
}
