package gateway

import (
	"net/http"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
)

// otherOneSegmentRoutes are the routes of one path segment that belong to
// a service other than the shortener: they win over its `/{code}`.
// TestOneSegmentRoutes keeps the list equal to the OpenAPI document.
var otherOneSegmentRoutes = map[string]bool{
	"/canvas.png": true,
}

// route picks the mux for a request. grpc-gateway tries every pattern of
// the method in turn, and the shortener's `/{code}` is tried last (see
// handlers), so a redirect — the busiest request of all — would first fail
// to match every other GET route, allocating at each. A one-segment path
// that is no other service's route can only be the shortener's, so it goes
// to a mux holding the shortener alone; everything else to the full one.
func route(all, shortener *runtime.ServeMux, r *http.Request) *runtime.ServeMux {
	p := r.URL.Path
	if len(p) > 1 && !strings.Contains(p[1:], "/") && !otherOneSegmentRoutes[p] {
		return shortener
	}
	return all
}
