package gateway

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"net/http"
	"strings"

	"github.com/apiplatform/platform/gen/openapi"
	"github.com/apiplatform/platform/server/platform/wire"
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
			h := w.Header()
			h.Set("Content-Security-Policy", docsCSP)
			h.Set("X-Content-Type-Options", "nosniff")
			h.Set("Referrer-Policy", "same-origin")
			h.Set("Cross-Origin-Opener-Policy", "same-origin")
			h.Set("X-Frame-Options", "DENY")
			h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
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

// staticFile is one embedded file, gzipped and hashed once; answers
// revalidate with a strong ETag per encoding, as the web client's do.
type staticFile struct{ webFile }

func newStaticFile(body []byte, ctype string) *staticFile {
	sum := sha256.Sum256(body)
	f := &staticFile{webFile{body: body, ctype: ctype, etag: `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`}}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	_, _ = zw.Write(body)
	_ = zw.Close()
	if buf.Len() < len(body) {
		f.gz = buf.Bytes()
	}
	return f
}

func (f *staticFile) serve(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-cache")
	h.Set("Vary", "Accept-Encoding")
	h.Set("Content-Type", f.ctype)
	body, etag := f.body, f.etag
	if f.gz != nil && webAcceptsGzip(r) {
		body, etag = f.gz, strings.TrimSuffix(f.etag, `"`)+`-gz"`
		h.Set("Content-Encoding", "gzip")
	}
	h.Set("ETag", etag)
	if wire.ETagMatches(r.Header.Get("If-None-Match"), etag) {
		h.Del("Content-Encoding")
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(body)
}
