package app_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/klauspost/compress/zstd"

	"github.com/apiplatform/platform/gen/openapi"
	"github.com/apiplatform/platform/server/canvas"
	"github.com/apiplatform/platform/server/favorite"
	"github.com/apiplatform/platform/server/identity"
	"github.com/apiplatform/platform/server/platform/auth"
	"github.com/apiplatform/platform/server/share"
	"github.com/apiplatform/platform/server/shortener"
	"github.com/apiplatform/platform/server/vote"
)

// The OpenAPI document, loaded once for every server the tests start.
var contract = sync.OnceValues(func() (routers.Router, error) {
	doc, err := openapi3.NewLoader().LoadFromData(openapi.JSON)
	if err != nil {
		return nil, err
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, err
	}
	return gorillamux.NewRouter(doc)
})

// Paths the gateway serves beside the API (web client, the document
// itself): not operations of the document.
func outsideContract(path string) bool {
	for _, p := range []string{"/app", "/docs", "/openapi.json"} {
		if path == p || strings.HasPrefix(path, p+"/") {
			return true
		}
	}
	return path == "/"
}

// maxChecked bounds the bytes of one answer kept for checking; longer
// bodies (long-lived streams) are checked up to there.
const maxChecked = 8 << 20

// contractCheck wraps the gateway so that every answer the suite receives
// is validated against the OpenAPI document with kin-openapi's
// openapi3filter: an undocumented status, a missing documented header, a
// media type or body the document does not describe fails the test that
// started the server. Failures are reported when that test's servers are
// gone (the cleanup is registered before any server starts).
func contractCheck(t testing.TB) func(http.Handler) http.Handler {
	router, err := contract()
	if err != nil {
		t.Fatalf("OpenAPI document: %v", err)
	}
	var mu sync.Mutex
	var failures []string
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, f := range failures {
			t.Errorf("answer not in the OpenAPI document: %s", f)
		}
	})
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// OPTIONS (CORS preflight, Allow) is the gateway's, not an
			// operation of the document.
			if outsideContract(r.URL.Path) || r.Method == http.MethodOptions {
				next.ServeHTTP(w, r)
				return
			}
			rec := &recorder{ResponseWriter: w}
			req := r.Clone(context.WithoutCancel(r.Context()))
			next.ServeHTTP(rec, r)
			if rec.code == 0 && r.Context().Err() != nil {
				// The client left (a page navigating away, a timeout)
				// before anything was written: no answer to check.
				return
			}
			if err := checkAnswer(router, req, rec); err != nil {
				mu.Lock()
				failures = append(failures, fmt.Sprintf("%s %s -> %d: %v", r.Method, r.URL.RequestURI(), rec.status(), err))
				mu.Unlock()
			}
		})
	}
}

func checkAnswer(router routers.Router, req *http.Request, rec *recorder) error {
	route, params, err := router.FindRoute(req)
	if err != nil {
		// Not an operation of the document (an unknown path, or a method
		// the path does not have): it must not succeed.
		if rec.status()/100 == 2 {
			return fmt.Errorf("succeeded outside the document (%v)", err)
		}
		return nil
	}
	opts := &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts}
	status := rec.status()
	resp := route.Operation.Responses.Status(status)
	if resp == nil {
		return errors.New("status not documented")
	}
	// openapi3filter skips 301, 304, 307 and 308 entirely: check their
	// required headers here.
	for name, h := range resp.Value.Headers {
		if h.Value.Required && rec.Header().Get(name) == "" {
			return fmt.Errorf("required header %s missing", name)
		}
	}
	if rec.truncated {
		return nil
	}
	body, err := decoded(rec)
	if err != nil {
		return err
	}
	if isStream(route.Operation) && status == http.StatusOK {
		if mt, _, _ := mime.ParseMediaType(rec.Header().Get("Content-Type")); mt == "text/event-stream" {
			if resp.Value.Content.Get(mt) == nil {
				return errors.New("text/event-stream not documented")
			}
			return checkEvents(in, rec, body)
		}
		return checkLines(in, rec.Header(), body)
	}
	return openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in, Status: status, Header: rec.Header(), Body: io.NopCloser(bytes.NewReader(body)), Options: opts,
	})
}

// decoded is the answer's body as the client reads it: the gateway
// compresses answers for clients that accept it (Go's HTTP client always
// does), and the document describes what is inside the encoding.
func decoded(rec *recorder) ([]byte, error) {
	body := rec.body.Bytes()
	switch enc := rec.Header().Get("Content-Encoding"); enc {
	case "":
		return body, nil
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return nil, fmt.Errorf("gzip body: %w", err)
		}
		return io.ReadAll(zr)
	case "zstd":
		zr, err := zstd.NewReader(bytes.NewReader(body))
		if err != nil {
			return nil, fmt.Errorf("zstd body: %w", err)
		}
		defer zr.Close()
		return io.ReadAll(zr)
	default:
		return nil, fmt.Errorf("unexpected Content-Encoding %q", enc)
	}
}

// isStream: grpc-gateway streams a server-streaming RPC as one JSON object
// a line, which the plugin describes as "Stream result of" the message.
func isStream(op *openapi3.Operation) bool {
	ok := op.Responses.Status(http.StatusOK)
	if ok == nil {
		return false
	}
	for _, mt := range ok.Value.Content {
		if mt.Schema != nil && mt.Schema.Value != nil && strings.HasPrefix(mt.Schema.Value.Title, "Stream result of") {
			return true
		}
	}
	return false
}

// checkEvents validates each complete Server-Sent Event as the NDJSON line
// of the same message: the document says an event's data is the line's
// `result` (or, for an `error` event, its `error`).
func checkEvents(in *openapi3filter.RequestValidationInput, rec *recorder, body []byte) error {
	var lines bytes.Buffer
	for _, block := range strings.SplitAfter(string(body), "\n\n") {
		if !strings.HasSuffix(block, "\n\n") {
			break // cut by the client
		}
		name, data := "message", ""
		for _, l := range strings.Split(strings.TrimSuffix(block, "\n\n"), "\n") {
			field, value, _ := strings.Cut(l, ":")
			value = strings.TrimPrefix(value, " ")
			switch field {
			case "event":
				name = value
			case "data":
				data += value
			}
		}
		if data == "" {
			continue // retry or comment
		}
		key := "result"
		if name == "error" {
			key = "error"
		}
		fmt.Fprintf(&lines, "{%q:%s}\n", key, data)
	}
	h := rec.Header().Clone()
	h.Set("Content-Type", "application/x-ndjson")
	return checkLines(in, h, lines.Bytes())
}

// checkLines validates each complete line of a stream as one answer; a
// last line without its newline was cut by the client.
func checkLines(in *openapi3filter.RequestValidationInput, header http.Header, body []byte) error {
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, maxChecked)
	complete := bytes.HasSuffix(body, []byte("\n"))
	var lines [][]byte
	for sc.Scan() {
		lines = append(lines, append([]byte(nil), sc.Bytes()...))
	}
	if !complete && len(lines) > 0 {
		lines = lines[:len(lines)-1]
	}
	for i, line := range lines {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		err := openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
			RequestValidationInput: in, Status: http.StatusOK, Header: header, Body: io.NopCloser(bytes.NewReader(line)), Options: in.Options,
		})
		if err != nil {
			return fmt.Errorf("stream message %d: %w", i, err)
		}
	}
	return nil
}

// recorder passes the answer through and keeps a copy of it.
type recorder struct {
	http.ResponseWriter
	code      int
	body      bytes.Buffer
	truncated bool
}

func (r *recorder) status() int {
	if r.code == 0 {
		return http.StatusOK
	}
	return r.code
}

func (r *recorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	if r.body.Len()+len(b) <= maxChecked {
		r.body.Write(b)
	} else {
		r.truncated = true
	}
	return r.ResponseWriter.Write(b)
}

// Flush keeps streams flowing: grpc-gateway flushes after every message.
func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func init() {
	// HTML answers (share pages, the link-password form, redirect pages)
	// are checked as text against their `type: string` schema.
	openapi3filter.RegisterBodyDecoder("text/html", openapi3filter.PlainBodyDecoder)
	// Streams are checked a message at a time (checkLines).
	openapi3filter.RegisterBodyDecoder("application/x-ndjson", openapi3filter.JSONBodyDecoder)
}

// TestOpenAPISecurityMatchesPolicies: the security the document states for
// each operation is the policy the server enforces (server/<svc>.Policies):
// public operations need no credential, the others list the credentials
// and answer 401, and admin- or registered-only ones answer 403 too.
func TestOpenAPISecurityMatchesPolicies(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromData(openapi.JSON)
	if err != nil {
		t.Fatal(err)
	}
	// An RPC with additional bindings has one operation per binding
	// (ShortenerService_FollowShortUrl, ..._FollowShortUrl2).
	ops := map[string][]*openapi3.Operation{}
	count := 0
	for _, item := range doc.Paths.Map() {
		for _, op := range item.Operations() {
			id := strings.TrimRight(op.OperationID, "0123456789")
			ops[id] = append(ops[id], op)
			count++
		}
	}
	sets := []auth.Policies{identity.Policies, favorite.Policies, share.Policies, shortener.Policies, vote.Policies, canvas.Policies}
	seen := 0
	// The gateway's HTTP health probes read grpc.health.v1.Health, which
	// is public (server/app/health.go).
	for _, id := range []string{"Health_Live", "Health_Ready"} {
		if len(ops[id]) != 1 {
			t.Fatalf("no operation %s in the document", id)
		}
		seen++
		checkSecurity(t, doc, ops[id][0], auth.Public)
	}
	for _, set := range sets {
		for method, policy := range set {
			// "/share.v1.ShareService/CreateShare" is ShareService_CreateShare.
			svc, name, _ := strings.Cut(strings.TrimPrefix(method, "/"), "/")
			id := svc[strings.LastIndex(svc, ".")+1:] + "_" + name
			if len(ops[id]) == 0 {
				t.Errorf("%s: no operation %s in the document", method, id)
			}
			for _, op := range ops[id] {
				seen++
				checkSecurity(t, doc, op, policy)
			}
		}
	}
	if seen != count {
		t.Errorf("%d operations in the document, %d with a policy", count, seen)
	}
}

func checkSecurity(t *testing.T, doc *openapi3.T, op *openapi3.Operation, policy auth.Policy) {
	t.Helper()
	id := op.OperationID
	security := doc.Security
	if op.Security != nil {
		security = *op.Security
	}
	anonymous := len(security) == 0
	for _, req := range security {
		anonymous = anonymous || len(req) == 0
	}
	has := func(code int) bool { return op.Responses.Status(code) != nil }
	switch {
	case policy == auth.Public && !anonymous:
		t.Errorf("%s is public but the document requires a credential", id)
	case policy != auth.Public && (anonymous || !has(401)):
		t.Errorf("%s needs a session but the document says anonymous=%v, 401=%v", id, anonymous, has(401))
	case (policy == auth.Admin || policy == auth.Registered) && !has(403):
		t.Errorf("%s is admin- or registered-only but documents no 403", id)
	}
}
