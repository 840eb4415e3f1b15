package app_test

import (
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/apiplatform/platform/gateway"
	"github.com/apiplatform/platform/gen/openapi"
	"github.com/apiplatform/platform/server/app"
)

// TestOpenAPIServed: the document and the API reference are served, the
// document byte for byte as generated, the page with a policy that lets
// only this origin's scripts run.
func TestOpenAPIServed(t *testing.T) {
	p := start(t, embeddedBackend, nil)
	res, err := http.Get(p.base + gateway.OpenAPIPath)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/json" || string(body) != string(openapi.JSON) {
		t.Fatalf("%s: %d %q, %d bytes", gateway.OpenAPIPath, res.StatusCode, res.Header.Get("Content-Type"), len(body))
	}
	if !strings.Contains(string(body), `"openapi": "3.`) {
		t.Fatalf("%s is not OpenAPI 3", gateway.OpenAPIPath)
	}
	for _, path := range []string{gateway.DocsPath, gateway.DocsPath + "/", gateway.DocsPath + "/redoc.standalone.js"} {
		res, err := http.Get(p.base + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		csp := res.Header.Get("Content-Security-Policy")
		if res.StatusCode != 200 || len(b) == 0 || !strings.Contains(csp, "script-src 'self';") || !strings.Contains(csp, "frame-ancestors 'none'") ||
			res.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Fatalf("%s: %d, CSP %q", path, res.StatusCode, csp)
		}
	}
}

// TestOpenAPIGeneratedClient runs the main flows with a TypeScript client
// generated from the served document (openapi-typescript + openapi-fetch,
// pinned in .ci/openapi) against a live server, every status checked
// exactly. Needs Node.js and npm (the npm registry on first run).
func TestOpenAPIGeneratedClient(t *testing.T) {
	if testing.Short() {
		t.Skip("installs and runs the Node.js client")
	}
	if _, err := exec.LookPath("npm"); err != nil {
		t.Skip("npm is not installed")
	}
	forBackends(t, func(t *testing.T, b backend) {
		p := start(t, b, func(cfg *app.Config) {
			cfg.AdminUser, cfg.AdminPassword = "flows-admin", "flows-admin-password"
		})
		// The client is generated from what the server serves.
		res, err := http.Get(p.base + gateway.OpenAPIPath)
		if err != nil {
			t.Fatal(err)
		}
		doc, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if string(doc) != string(openapi.JSON) {
			t.Fatal("served document differs from gen/openapi")
		}
		run := func(args ...string) {
			t.Helper()
			cmd := exec.Command("../../.ci/openapi/run", args...)
			cmd.Env = append(os.Environ(), "ADMIN_USER=flows-admin", "ADMIN_PASSWORD=flows-admin-password")
			out, err := cmd.CombinedOutput()
			t.Logf("%s", out)
			if err != nil {
				t.Fatalf(".ci/openapi/run %s: %v", strings.Join(args, " "), err)
			}
		}
		run("client")
		run("flows", p.base)
	})
}
