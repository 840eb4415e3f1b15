package app

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	canvasv1 "github.com/apiplatform/platform/gen/go/canvas/v1"
	favoritev1 "github.com/apiplatform/platform/gen/go/favorite/v1"
	identityv1 "github.com/apiplatform/platform/gen/go/identity/v1"
	sharev1 "github.com/apiplatform/platform/gen/go/share/v1"
	shortenerv1 "github.com/apiplatform/platform/gen/go/shortener/v1"
	votev1 "github.com/apiplatform/platform/gen/go/vote/v1"
	"github.com/apiplatform/platform/server/platform/auth"
	"github.com/apiplatform/platform/server/storage/sqlstore"
)

// Health. grpc.health.v1 answers one entry per service, by its fully
// qualified name, plus "" for the whole process; each is SERVING only while
// every dependency that service cannot work without answers:
//   - the database holds every service's data: all six need it;
//   - Redis holds the live canvas board (when configured): the canvas
//     needs it. The others only degrade without Redis (limits fail open,
//     caches are bypassed, live results refresh from the database), so
//     they stay SERVING.
//
// "" is SERVING once the process is ready (storage opened and migrated,
// services built, so their caches and boards are loaded) and every
// dependency answers; it is what /readyz reports. Probes run in the
// background every HealthInterval, so a check never waits on a dependency.

// healthPolicies open health to everyone: load balancers and probes carry
// no credentials.
var healthPolicies = auth.Policies{
	healthpb.Health_Check_FullMethodName: auth.Public,
	healthpb.Health_Watch_FullMethodName: auth.Public,
	healthpb.Health_List_FullMethodName:  auth.Public,
}

// databasePing is the SQL store's ping; nil for the embedded store (a file
// in this process, up while the process is).
func databasePing(st any) func(context.Context) error {
	if p, ok := st.(*sqlstore.Store); ok {
		return p.Ping
	}
	return nil
}

// dependency is something services need, and how to ask whether it is up.
type dependency struct {
	name  string
	probe func(context.Context) error
}

// healthEntry is one service and the dependencies it needs.
type healthEntry struct {
	service string
	needs   []string
}

type healthChecker struct {
	srv      *health.Server
	deps     []dependency
	entries  []healthEntry
	interval time.Duration
	log      *slog.Logger

	// mu orders start and close: a server shut down while Serve is still
	// starting closes the checker before (or while) it starts.
	mu     sync.Mutex
	closed bool
	stop   chan struct{}
	wg     sync.WaitGroup
	down   map[string]bool // owned by run
}

// newHealthChecker builds the checker for this process's storage: db is
// the SQL store's ping (nil for the embedded store, which is a file in
// this process), rc the Redis client (nil without Redis).
func newHealthChecker(srv *health.Server, db func(context.Context) error, rc redis.UniversalClient, interval time.Duration, log *slog.Logger) *healthChecker {
	h := &healthChecker{srv: srv, interval: interval, log: log, stop: make(chan struct{}), down: map[string]bool{}}
	var all, canvas []string
	if db != nil {
		h.deps = append(h.deps, dependency{"database", db})
		all = append(all, "database")
	}
	canvas = append(canvas, all...)
	if rc != nil {
		h.deps = append(h.deps, dependency{"redis", func(ctx context.Context) error { return rc.Ping(ctx).Err() }})
		canvas = append(canvas, "redis")
	}
	for _, name := range []string{
		identityv1.IdentityService_ServiceDesc.ServiceName,
		favoritev1.FavoriteService_ServiceDesc.ServiceName,
		sharev1.ShareService_ServiceDesc.ServiceName,
		shortenerv1.ShortenerService_ServiceDesc.ServiceName,
		votev1.VoteService_ServiceDesc.ServiceName,
	} {
		h.entries = append(h.entries, healthEntry{name, all})
	}
	h.entries = append(h.entries, healthEntry{canvasv1.CanvasService_ServiceDesc.ServiceName, canvas})
	// Not ready until the first probe says so.
	srv.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	for _, e := range h.entries {
		srv.SetServingStatus(e.service, healthpb.HealthCheckResponse_NOT_SERVING)
	}
	return h
}

// start probes at once, then every interval, until close.
func (h *healthChecker) start() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.check()
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		t := time.NewTicker(h.interval)
		defer t.Stop()
		for {
			select {
			case <-h.stop:
				return
			case <-t.C:
				h.check()
			}
		}
	}()
}

func (h *healthChecker) close() {
	h.mu.Lock()
	if !h.closed {
		h.closed = true
		close(h.stop)
	}
	h.mu.Unlock()
	h.wg.Wait()
}

// check probes every dependency (in parallel, each bounded by the
// interval) and sets every entry.
func (h *healthChecker) check() {
	errs := make([]error, len(h.deps))
	var wg sync.WaitGroup
	for i, d := range h.deps {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), max(h.interval, time.Second))
			defer cancel()
			errs[i] = d.probe(ctx)
		})
	}
	wg.Wait()
	for i, d := range h.deps {
		if down := errs[i] != nil; down != h.down[d.name] {
			h.down[d.name] = down
			if down {
				h.log.Warn("health: dependency down; the services needing it are NOT_SERVING", "dependency", d.name, "err", errs[i])
			} else {
				h.log.Info("health: dependency back", "dependency", d.name)
			}
		}
	}
	ready := true
	for _, e := range h.entries {
		st := healthpb.HealthCheckResponse_SERVING
		for _, n := range e.needs {
			if h.down[n] {
				st, ready = healthpb.HealthCheckResponse_NOT_SERVING, false
			}
		}
		h.srv.SetServingStatus(e.service, st)
	}
	if ready {
		h.srv.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	} else {
		h.srv.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	}
}
