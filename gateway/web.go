package gateway

import (
	"embed"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
)

// The web client: plain HTML, CSS and ES modules, embedded so that one
// binary serves everything and no build step stands between a change and a
// run. It talks to the platform only through the public REST API.
//
//go:embed web
var webFS embed.FS

// WebPrefix is where the web client is mounted.
const WebPrefix = "/app/"

// webCSP allows nothing but this origin: no inline script or style (the
// client styles elements through the CSSOM, which CSP permits), no eval, no
// third-party fetches, no framing. QR codes come from our own API.
const webCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

type webHandler struct{ files map[string]*staticFile }

// WebHandler serves the web client under /app/ (mount it with
// `mux.Handle("/app/", WebHandler())`). Files are compressed and hashed once
// at start and revalidate (staticFile).
func WebHandler() http.Handler {
	h := &webHandler{files: map[string]*staticFile{}}
	err := fs.WalkDir(webFS, "web", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := webFS.ReadFile(p)
		if err != nil {
			return err
		}
		h.files[strings.TrimPrefix(p, "web/")] = newStaticFile(body, webContentType(p))
		return nil
	})
	if err != nil {
		panic("gateway: embedded web client unreadable: " + err.Error()) // cannot happen: go:embed checked it
	}
	return h
}

func webContentType(p string) string {
	switch path.Ext(p) {
	case ".js", ".mjs":
		return "text/javascript; charset=utf-8"
	case ".webmanifest":
		return "application/manifest+json"
	}
	if t := mime.TypeByExtension(path.Ext(p)); t != "" {
		return t
	}
	return "application/octet-stream"
}

func (h *webHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if r.URL.Path == strings.TrimSuffix(WebPrefix, "/") {
		http.Redirect(w, r, WebPrefix, http.StatusMovedPermanently)
		return
	}
	name, ok := strings.CutPrefix(r.URL.Path, WebPrefix)
	if !ok {
		http.NotFound(w, r)
		return
	}
	// Routes live in the fragment (#/links/abc), so only real files and the
	// root exist; nothing to fall back to.
	if name == "" {
		name = "index.html"
	}
	f, ok := h.files[name]
	if !ok {
		http.NotFound(w, r)
		return
	}
	staticHeaders(w.Header(), webCSP)
	f.serve(w, r)
}
