package gateway

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"

	"github.com/apiplatform/platform/server/platform/wire"
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

type webFile struct {
	body, gz []byte
	ctype    string
	etag     string
}

type webHandler struct{ files map[string]*webFile }

// WebHandler serves the web client under /app/ (mount it with
// `mux.Handle("/app/", WebHandler())`). Files are compressed and hashed once
// at start; every answer revalidates with a strong ETag, so a deploy is
// picked up by the next page load while unchanged files cost a 304.
func WebHandler() http.Handler {
	h := &webHandler{files: map[string]*webFile{}}
	err := fs.WalkDir(webFS, "web", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := webFS.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		f := &webFile{
			body:  body,
			ctype: webContentType(p),
			etag:  `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`,
		}
		if webCompressible(f.ctype) && len(body) > 512 {
			var buf bytes.Buffer
			zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
			_, _ = zw.Write(body)
			_ = zw.Close()
			if buf.Len() < len(body) {
				f.gz = buf.Bytes()
			}
		}
		h.files[strings.TrimPrefix(p, "web/")] = f
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

func webCompressible(ctype string) bool {
	return strings.HasPrefix(ctype, "text/") || strings.Contains(ctype, "json") ||
		strings.Contains(ctype, "javascript") || strings.HasPrefix(ctype, "image/svg")
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
	hd := w.Header()
	hd.Set("Content-Security-Policy", webCSP)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "same-origin")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	hd.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
	// no-cache = store, but ask first: file names are not content-hashed,
	// so a longer max-age could mix modules of two deploys.
	hd.Set("Cache-Control", "no-cache")
	hd.Set("Vary", "Accept-Encoding")
	hd.Set("Content-Type", f.ctype)
	// Each encoding is its own representation, with its own strong ETag.
	body, etag := f.body, f.etag
	if f.gz != nil && webAcceptsGzip(r) {
		body, etag = f.gz, strings.TrimSuffix(f.etag, `"`)+`-gz"`
		hd.Set("Content-Encoding", "gzip")
	}
	hd.Set("ETag", etag)
	if wire.ETagMatches(r.Header.Get("If-None-Match"), etag) {
		hd.Del("Content-Encoding")
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(body)
}

func webAcceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(enc), "gzip") {
			continue
		}
		q, isQ := strings.CutPrefix(strings.TrimSpace(params), "q=")
		if v, err := strconv.ParseFloat(q, 64); isQ && err == nil && v == 0 {
			return false
		}
		return true
	}
	return false
}
