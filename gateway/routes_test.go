package gateway

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// Every one-segment route of the API that is not the shortener's `/{code}`
// is in otherOneSegmentRoutes (else the shortener would answer it), and
// nothing else is.
func TestOneSegmentRoutes(t *testing.T) {
	// Served by the root mux (gateway.go), before grpc-gateway is asked.
	rootRoutes := map[string]bool{"/healthz": true, "/readyz": true}
	b, err := os.ReadFile("../gen/openapi/platform.openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for p := range doc.Paths {
		if strings.Count(p, "/") == 1 && p != "/{code}" && !rootRoutes[p] {
			found[p] = true
			if !otherOneSegmentRoutes[p] {
				t.Errorf("%s is a one-segment route missing from otherOneSegmentRoutes: the shortener would answer it", p)
			}
		}
	}
	if _, ok := doc.Paths["/{code}"]; !ok {
		t.Error("no /{code} route in the API: route() is out of date")
	}
	for p := range otherOneSegmentRoutes {
		if !found[p] {
			t.Errorf("%s is in otherOneSegmentRoutes but not a route of the API", p)
		}
	}
}
