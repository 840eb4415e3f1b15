package gateway_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/apiplatform/platform/gateway"
	sharev1 "github.com/apiplatform/platform/gen/go/share/v1"
)

const client = "192.0.2.10:50000"

// Error statuses become the HTTP status their code means, RetryInfo becomes
// Retry-After (whole seconds, rounded up, at least 1), and a service's
// error-class status intent (410 for what existed and is gone) wins over
// the code's.
func TestErrorStatusMapping(t *testing.T) {
	h := newHarness(t, gateway.Config{})
	for _, c := range []struct {
		slug       string
		status     int
		retryAfter string
	}{
		{"limited", http.StatusTooManyRequests, "2"},
		{"brief", http.StatusTooManyRequests, "1"},
		{"down", http.StatusServiceUnavailable, "2"},
		{"missing", http.StatusNotFound, ""},
		{"gone", http.StatusGone, ""},
		{"created-then-failed", http.StatusNotFound, ""},
		{"bad", http.StatusBadRequest, ""},
		{"private", http.StatusForbidden, ""},
		{"nobody", http.StatusUnauthorized, ""},
		{"internal", http.StatusInternalServerError, ""},
		{"fine", http.StatusOK, ""},
	} {
		res := h.do("GET", "/api/v1/shares/"+c.slug, client, "")
		if res.StatusCode != c.status || res.Header.Get("Retry-After") != c.retryAfter {
			t.Errorf("%s: %d Retry-After %q, want %d %q", c.slug, res.StatusCode, res.Header.Get("Retry-After"), c.status, c.retryAfter)
		}
	}
}

// The error body is the status as JSON, details included, so REST clients
// learn which field was wrong.
func TestErrorBodyCarriesDetails(t *testing.T) {
	h := newHarness(t, gateway.Config{})
	res := h.do("GET", "/api/v1/shares/bad", client, "")
	var body struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Details []struct {
			Type            string `json:"@type"`
			FieldViolations []struct {
				Field, Description string
			} `json:"fieldViolations"`
		} `json:"details"`
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if body.Code != 3 || len(body.Details) != 1 || body.Details[0].Type != "type.googleapis.com/google.rpc.BadRequest" ||
		len(body.Details[0].FieldViolations) != 1 || body.Details[0].FieldViolations[0].Field != "slug" {
		t.Fatalf("error body = %+v", body)
	}
}

// A service's chosen status is answered: 201 for creations, 301/302 with
// Location for redirects (HEAD too), 304 with no body for a matching
// If-None-Match, and 410 for an expired link.
func TestSuccessStatusMapping(t *testing.T) {
	h := newHarness(t, gateway.Config{})

	res := h.do("POST", "/api/v1/shares", client, `{"snapshot": true}`)
	if res.StatusCode != http.StatusCreated {
		t.Errorf("create: %d, want 201", res.StatusCode)
	}
	if _, req := h.seen.last(); !req.(*sharev1.CreateShareRequest).GetSnapshot() {
		t.Errorf("create request reached the service as %v", req)
	}

	for _, c := range []struct {
		method, code string
		status       int
	}{
		{"GET", "temp", http.StatusFound},
		{"GET", "perm", http.StatusMovedPermanently},
		{"HEAD", "temp", http.StatusFound},
	} {
		res := h.do(c.method, "/"+c.code, client, "")
		if res.StatusCode != c.status || res.Header.Get("Location") != "https://example.com/"+c.code {
			t.Errorf("%s /%s: %d Location %q, want %d", c.method, c.code, res.StatusCode, res.Header.Get("Location"), c.status)
		}
	}
	if res := h.do("GET", "/gone", client, ""); res.StatusCode != http.StatusGone {
		t.Errorf("expired link: %d, want 410", res.StatusCode)
	}

	res = h.do("GET", "/s/abc", client, "")
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK || res.Header.Get("ETag") != `"v1"` || res.Header.Get("Cache-Control") != "public, max-age=60" ||
		res.Header.Get("Content-Type") != "text/html; charset=utf-8" || string(body) != "<p>#FF0000</p>" {
		t.Errorf("page: %d %v %q", res.StatusCode, res.Header, body)
	}
	res = h.do("GET", "/s/abc", client, "", `If-None-Match: "v1"`)
	body, _ = io.ReadAll(res.Body)
	if res.StatusCode != http.StatusNotModified || len(body) != 0 || res.Header.Get("ETag") != `"v1"` {
		t.Errorf("revalidation: %d, %d bytes, ETag %q; want 304, empty", res.StatusCode, len(body), res.Header.Get("ETag"))
	}
}

// Response metadata reaches clients only when allowlisted: no
// Grpc-Metadata-* headers or trailers leak.
func TestOutgoingHeaderAllowlist(t *testing.T) {
	h := newHarness(t, gateway.Config{})
	res := h.do("POST", "/api/v1/auth/guest", client, "{}")
	if res.StatusCode != http.StatusOK || res.Header.Get("X-Region") != "eu-test" {
		t.Fatalf("%d X-Region %q", res.StatusCode, res.Header.Get("X-Region"))
	}
	for k := range res.Header {
		if strings.HasPrefix(strings.ToLower(k), "grpc-") || strings.Contains(strings.ToLower(k), "detail") {
			t.Errorf("header %s leaked: %v", k, res.Header[k])
		}
	}
	for k := range res.Trailer {
		t.Errorf("trailer %s leaked", k)
	}
}

// A password form posts url-encoded; the gateway decodes it into the
// FollowShortUrl request. JSON labelled as a form still decodes as JSON.
func TestPasswordForm(t *testing.T) {
	h := newHarness(t, gateway.Config{})
	for _, body := range []string{"password=s%C3%A9same+ouvre", `{"password": "sésame ouvre"}`} {
		res := h.do("POST", "/locked", client, body, "Content-Type: application/x-www-form-urlencoded")
		got, _ := io.ReadAll(res.Body)
		if res.StatusCode != http.StatusOK || string(got) != "password=sésame ouvre" {
			t.Errorf("body %q: %d %q", body, res.StatusCode, got)
		}
	}
}

// Bodies over the limit are refused before any service sees them.
func TestBodyLimit(t *testing.T) {
	h := newHarness(t, gateway.Config{MaxBodyBytes: 64})
	res := h.do("POST", "/api/v1/auth/login", client, `{"username": "`+strings.Repeat("a", 100)+`", "password": "right"}`)
	if res.StatusCode != http.StatusBadRequest {
		t.Fatalf("oversized body: %d, want 400", res.StatusCode)
	}
	if md, _ := h.seen.last(); md != nil {
		t.Fatal("an oversized body reached the service")
	}
	if res := h.do("POST", "/api/v1/auth/login", client, `{"username": "a", "password": "right"}`); res.StatusCode != http.StatusOK {
		t.Fatalf("small body: %d", res.StatusCode)
	}
}

// /readyz follows the server's health service; /healthz (liveness) only
// asks that the server answers, whatever it reports.
func TestHealthz(t *testing.T) {
	h := newHarness(t, gateway.Config{})
	h.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	for _, p := range []string{"/healthz", "/readyz"} {
		if res := h.do("GET", p, client, ""); res.StatusCode != http.StatusOK {
			t.Fatalf("serving: %s %d", p, res.StatusCode)
		}
	}
	h.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	if res := h.do("GET", "/readyz", client, ""); res.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("not serving: /readyz %d", res.StatusCode)
	}
	if res := h.do("GET", "/healthz", client, ""); res.StatusCode != http.StatusOK {
		t.Fatalf("not serving but alive: /healthz %d", res.StatusCode)
	}
}
