// Package streamlimit bounds open stream subscriptions (live results,
// canvas deltas): per client address, so that one client cannot hold a
// replica's memory with thousands of idle streams, and in total per
// replica. A refused stream answers RESOURCE_EXHAUSTED (429 over REST)
// before it starts, and is counted.
package streamlimit

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"google.golang.org/grpc"

	"github.com/apiplatform/platform/server/platform/apierr"
	"github.com/apiplatform/platform/server/platform/clientaddr"
	"github.com/apiplatform/platform/server/platform/wire"
)

// Defaults.
const (
	DefaultPerClient = 50
	DefaultTotal     = 20_000
)

var (
	refusedTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "stream_subscriptions_refused_total",
		Help: "Stream calls refused because a per-client or per-replica cap on open streams was reached.",
	}, []string{"scope"})
	openStreams = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "stream_subscriptions_open",
		Help: "Stream calls open in this process (those counted against the caps).",
	})
	refusedClient, refusedTotalScope = refusedTotal.WithLabelValues("client"), refusedTotal.WithLabelValues("replica")
)

// Limiter counts open streams. Exempt names full methods not counted
// (health watches, reflection).
type Limiter struct {
	PerClient, Total int
	Exempt           map[string]bool

	mu     sync.Mutex
	open   int
	byAddr map[string]int
}

// New returns a limiter with the given caps (0: the default).
func New(perClient, total int, exempt ...string) *Limiter {
	if perClient <= 0 {
		perClient = DefaultPerClient
	}
	if total <= 0 {
		total = DefaultTotal
	}
	l := &Limiter{PerClient: perClient, Total: total, Exempt: map[string]bool{}, byAddr: map[string]int{}}
	for _, m := range exempt {
		l.Exempt[m] = true
	}
	return l
}

// acquire takes a slot for key, or says which cap refused it.
func (l *Limiter) acquire(key string) (release func(), err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open >= l.Total {
		refusedTotalScope.Inc()
		return nil, apierr.ResourceExhausted("this server holds as many streams as it can; retry later or on another replica", "STREAMS_EXHAUSTED", 5*time.Second)
	}
	if key != "" && l.byAddr[key] >= l.PerClient {
		refusedClient.Inc()
		return nil, apierr.ResourceExhausted("too many open streams from this address; close one first", "TOO_MANY_STREAMS", 5*time.Second)
	}
	l.open++
	if key != "" {
		l.byAddr[key]++
	}
	openStreams.Inc()
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.open--
			if key != "" {
				if l.byAddr[key]--; l.byAddr[key] <= 0 {
					delete(l.byAddr, key)
				}
			}
			openStreams.Dec()
		})
	}, nil
}

// Stream is the stream server interceptor; it must run after the wire
// interceptor (which resolves the client address).
func (l *Limiter) Stream() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		if l.Exempt[info.FullMethod] {
			return h(srv, ss)
		}
		release, err := l.acquire(clientaddr.Key(wire.FromContext(ss.Context()).Addr))
		if err != nil {
			return err
		}
		defer release()
		return h(srv, ss)
	}
}

// Open is the number of streams counted now (for tests and logs).
func (l *Limiter) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open
}
