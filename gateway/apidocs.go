package gateway

import (
	"embed"
	"net/http"

	"github.com/apiplatform/platform/gen/openapi"
)

// The API reference: Redoc's standalone bundle (copied from the npm package
// pinned in .ci/openapi by `make generate`, checked current in CI) and a
// page that points it at /openapi.json.
//
//go:embed docs
var docsFS embed.FS

// OpenAPIPath and DocsPath are where the document and the reference are served.
const (
	OpenAPIPath = "/openapi.json"
	DocsPath    = "/docs"
)

// docsCSP is the web client's policy loosened only as far as Redoc needs:
// it injects its styles (styled-components) and runs its search index in a
// worker made from a blob. Scripts still come from this origin only.
const docsCSP = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
	"font-src 'self'; connect-src 'self'; worker-src blob:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// apiDocs serves the OpenAPI 3 document and the reference page.
func apiDocs(root *http.ServeMux) {
	doc := newStaticFile(openapi.JSON, "application/json")
	root.HandleFunc("GET "+OpenAPIPath, func(w http.ResponseWriter, r *http.Request) {
		// Integrators' tools (editors, client generators) fetch it from
		// other origins; it is public and carries no credentials.
		w.Header().Set("Access-Control-Allow-Origin", "*")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		doc.serve(w, r)
	})
	page := newStaticFile(mustRead("docs/index.html"), "text/html; charset=utf-8")
	bundle := newStaticFile(mustRead("docs/redoc.standalone.js"), "text/javascript; charset=utf-8")
	files := map[string]*staticFile{
		DocsPath: page, DocsPath + "/{$}": page, DocsPath + "/redoc.standalone.js": bundle,
	}
	for _, name := range []string{"redoc.LICENSE", "redoc.standalone.js.LICENSE.txt"} {
		files[DocsPath+"/"+name] = newStaticFile(mustRead("docs/"+name), "text/plain; charset=utf-8")
	}
	for pattern, f := range files {
		root.HandleFunc("GET "+pattern, func(w http.ResponseWriter, r *http.Request) {
			staticHeaders(w.Header(), docsCSP)
			f.serve(w, r)
		})
	}
}

func mustRead(name string) []byte {
	b, err := docsFS.ReadFile(name)
	if err != nil {
		panic("gateway: embedded API reference unreadable: " + err.Error()) // cannot happen: go:embed checked it
	}
	return b
}
