package gateway

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"time"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// Health over REST, for probes and load balancers that speak only HTTP:
//   - GET /healthz (liveness): 200 while the server behind answers its
//     health service at all, whatever it says; a wedged server (or no
//     server) fails it. Dependencies are left out on purpose: restarting a
//     process does not bring a database back.
//   - GET /readyz (readiness): 200 only while the server reports the whole
//     process SERVING (started, migrated, caches and boards loaded, every
//     dependency up, not draining); otherwise 503 listing the services that
//     are not serving.
//
// Both answer text/plain and are never cached.

const healthTimeout = 2 * time.Second

func registerHealth(root *http.ServeMux, conn grpc.ClientConnInterface) {
	health := healthpb.NewHealthClient(conn)
	root.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), healthTimeout)
		defer cancel()
		if _, err := health.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
			plain(w, http.StatusServiceUnavailable, "not alive: the server does not answer")
			return
		}
		plain(w, http.StatusOK, "ok")
	})
	root.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), healthTimeout)
		defer cancel()
		res, err := health.List(ctx, &healthpb.HealthListRequest{})
		if err != nil {
			plain(w, http.StatusServiceUnavailable, "not ready: the server does not answer")
			return
		}
		var down []string
		for name, st := range res.GetStatuses() {
			if st.GetStatus() != healthpb.HealthCheckResponse_SERVING {
				if name == "" {
					name = "(process)"
				}
				down = append(down, fmt.Sprintf("%s %s", name, st.GetStatus()))
			}
		}
		if len(down) > 0 || res.GetStatuses()[""] == nil {
			slices.Sort(down)
			plain(w, http.StatusServiceUnavailable, fmt.Sprintf("not ready: %v", down))
			return
		}
		plain(w, http.StatusOK, "ready")
	})
}

func plain(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	fmt.Fprintln(w, msg)
}
