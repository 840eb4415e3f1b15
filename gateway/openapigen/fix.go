package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/getkin/kin-openapi/openapi2"
	"github.com/getkin/kin-openapi/openapi3"
)

// The names the plugin gives the Google types (openapi_naming_strategy=simple).
const (
	statusSchema   = "Status"
	httpBodySchema = "HttpBody"
)

// Security scheme names, as in options.yaml.
const (
	bearerScheme = "BearerAuth"
	apiKeyScheme = "ApiKeyAuth"
	cookieScheme = "SessionCookie"
)

// emptySchema is what the plugin writes for a response declared without one.
func emptySchema(s *openapi2.SchemaRef) bool {
	return s == nil || (s.Ref == "" && (s.Value == nil || s.Value.Type == nil && len(s.Value.Properties) == 0))
}

func isRef(s *openapi2.SchemaRef, name string) bool {
	return s != nil && strings.HasSuffix(s.Ref, "/"+name)
}

// fixV2 corrects what the plugin writes but the server does not do, and
// returns the operations (by operationId) answering a raw google.api.HttpBody
// with the media types they produce.
//
//   - The plugin always describes a 200; an operation whose options name
//     another 2xx (201) answers that instead: it takes over the 200's schema.
//   - An empty security list cannot be written in the options, so a public
//     operation says `security: [{}]` there; here that becomes `[]`.
func fixV2(doc *openapi2.T) map[string][]string {
	httpBody := map[string][]string{}
	for _, item := range doc.Paths {
		for _, op := range item.Operations() {
			ok := op.Responses.Value("200")
			for code, r := range op.Responses.Map() {
				if code != "200" && strings.HasPrefix(code, "2") && ok != nil {
					if emptySchema(r.Schema) {
						r.Schema = ok.Schema
					}
					op.Responses.Delete("200")
					ok = r
				}
			}
			if ok != nil && isRef(ok.Schema, httpBodySchema) {
				httpBody[op.OperationID] = op.Produces
			}
			if op.Security != nil && len(*op.Security) == 1 && len((*op.Security)[0]) == 0 {
				*op.Security = openapi2.SecurityRequirements{}
			}
		}
	}
	return httpBody
}

// fixV3 adds what OpenAPI 2 cannot express.
func fixV3(doc *openapi3.T, httpBody map[string][]string) error {
	doc.Servers = openapi3.Servers{
		{URL: "/", Description: "The server that serves this document (at /openapi.json)."},
	}
	fixSecurity(doc)
	if err := typeStatusDetails(doc); err != nil {
		return err
	}
	region := &openapi3.HeaderRef{Value: &openapi3.Header{Parameter: openapi3.Parameter{
		Description: "The region of the replica that answered.",
		Schema:      openapi3.NewStringSchema().NewRef(),
	}}}
	doc.Components.Headers = openapi3.Headers{"X-Region": region}
	for _, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			produces, raw := httpBody[op.OperationID]
			keyRefusals(doc, op)
			for code, r := range op.Responses.Map() {
				fixResponse(code, r.Value, raw, produces)
				if r.Value.Headers == nil {
					r.Value.Headers = openapi3.Headers{}
				}
				r.Value.Headers["X-Region"] = &openapi3.HeaderRef{Ref: "#/components/headers/X-Region", Value: region.Value}
			}
			csrfRefusal(doc, method, op)
			if op.Security != nil {
				addCookie(op.Security)
			}
			if op.Extensions[anonymousExt] == true {
				*op.Security = append(openapi3.SecurityRequirements{{}}, *op.Security...)
				delete(op.Extensions, anonymousExt)
			}
			optionalBody(doc, op)
			if isStream(op) {
				streamAnswers(doc, op)
			}
		}
	}
	health(doc)
	delete(doc.Components.Schemas, httpBodySchema)
	return dropUnused(doc)
}

// csrfRefusal documents the gateway's CSRF guard (gateway/csrf.go): a
// state-changing call authenticated by cookie is refused with 403 when it
// comes from another origin or without a JSON body. The answer is the
// same Status as the operation's 400.
func csrfRefusal(doc *openapi3.T, method string, op *openapi3.Operation) {
	switch method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
	default:
		return
	}
	status := &openapi3.SchemaRef{Ref: "#/components/schemas/" + statusSchema, Value: doc.Components.Schemas[statusSchema].Value}
	if f := op.Responses.Status(http.StatusForbidden); f != nil && f.Value != nil {
		// An operation with a 403 of its own (e.g. the link-password
		// form's HTML page) may also meet the guard's JSON answer.
		if f.Value.Content == nil {
			f.Value.Content = openapi3.Content{}
		}
		if f.Value.Content["application/json"] == nil {
			f.Value.Content["application/json"] = openapi3.NewMediaType().WithSchemaRef(status)
		}
		return
	}
	bad := op.Responses.Status(http.StatusBadRequest)
	if bad == nil || bad.Value == nil {
		return
	}
	r := *bad.Value
	r.Content = openapi3.NewContentWithJSONSchemaRef(&openapi3.SchemaRef{
		Ref: "#/components/schemas/" + statusSchema, Value: doc.Components.Schemas[statusSchema].Value,
	})
	desc := "Refused: a call authenticated by cookie must come from this site's origin and send a JSON body."
	r.Description = &desc
	op.Responses.Set("403", &openapi3.ResponseRef{Value: &r})
}

// keyRefusals documents what the server answers an API key on any
// operation that requires a credential (server/platform/auth): 403 when the
// key's scopes do not allow the operation, 429 with Retry-After over the
// key's own rate limit. Operations open to anonymous callers treat such a
// key as no credential, so they are left alone.
func keyRefusals(doc *openapi3.T, op *openapi3.Operation) {
	srs := doc.Security
	if op.Security != nil {
		srs = *op.Security
	}
	takesKey := false
	for _, sr := range srs {
		if len(sr) == 0 {
			return
		}
		_, ok := sr[apiKeyScheme]
		takesKey = takesKey || ok
	}
	if !takesKey || op.Extensions[anonymousExt] == true {
		return
	}
	status := openapi3.NewContentWithJSONSchemaRef(&openapi3.SchemaRef{
		Ref: "#/components/schemas/" + statusSchema, Value: doc.Components.Schemas[statusSchema].Value,
	})
	if op.Responses.Status(http.StatusTooManyRequests) == nil {
		r := openapi3.NewResponse().WithDescription("RESOURCE_EXHAUSTED. A rate limit (an API key's own included); RetryInfo says when to retry.").WithContent(status)
		r.Headers = openapi3.Headers{"Retry-After": &openapi3.HeaderRef{Value: &openapi3.Header{Parameter: openapi3.Parameter{
			Description: "Seconds to wait before retrying.", Schema: openapi3.NewIntegerSchema().NewRef(),
		}}}}
		op.Responses.Set("429", &openapi3.ResponseRef{Value: r})
	}
	if op.Responses.Status(http.StatusForbidden) == nil {
		r := openapi3.NewResponse().WithDescription("PERMISSION_DENIED. The caller may not do this (e.g. an API key whose scopes do not allow the operation).").WithContent(status)
		op.Responses.Set("403", &openapi3.ResponseRef{Value: r})
	}
}

// dropUnused removes the schemas no operation reaches: the plugin writes a
// definition for every response message, also those an operation answers
// only a field of (`response_body`).
func dropUnused(doc *openapi3.T) error {
	for {
		b, err := json.Marshal(doc)
		if err != nil {
			return err
		}
		dropped := false
		for name := range doc.Components.Schemas {
			if !bytes.Contains(b, []byte(`"#/components/schemas/`+name+`"`)) {
				delete(doc.Components.Schemas, name)
				dropped = true
			}
		}
		if !dropped {
			return nil
		}
	}
}

// isStream: the plugin describes a server stream's 200 as "Stream result
// of" its message, one JSON object a line.
func isStream(op *openapi3.Operation) bool {
	ok := op.Responses.Status(200)
	if ok == nil || ok.Value == nil {
		return false
	}
	for _, mt := range ok.Value.Content {
		if mt.Schema != nil && mt.Schema.Value != nil && strings.HasPrefix(mt.Schema.Value.Title, "Stream result of") {
			return true
		}
	}
	return false
}

// eventStreamExt marks, in options.yaml, a resumable stream: it also
// answers Server-Sent Events and resumes from Last-Event-ID.
const eventStreamExt = "x-event-stream"

// streamAnswers describes a server stream as the gateway sends it
// (gateway/streams.go): newline-delimited JSON (`application/x-ndjson`),
// each line a message as `{"result": ...}` or, last, the Status that ended
// the stream as `{"error": ...}`; for the streams of eventStreamExt also
// Server-Sent Events and the Last-Event-ID header. An error before the
// first message is answered like a unary call's, so the error responses
// stay the plain Status the plugin describes.
func streamAnswers(doc *openapi3.T, op *openapi3.Operation) {
	sse := op.Extensions[eventStreamExt] == true
	delete(op.Extensions, eventStreamExt)
	ok := op.Responses.Status(http.StatusOK).Value
	var line *openapi3.SchemaRef
	for _, mt := range ok.Content {
		line = mt.Schema // the plugin's {"result": message}, titled "Stream result of"
	}
	line.Value.Properties["error"] = statusRef(doc)
	line.Value.MinProps = 1
	one := uint64(1)
	line.Value.MaxProps = &one
	line.Value.Description = "One line of the stream: `result`, a message, or `error`, the Status that ended the stream (its last line)."
	ok.Content = openapi3.Content{"application/x-ndjson": openapi3.NewMediaType().WithSchemaRef(line)}
	desc := "The stream, as newline-delimited JSON."
	if !sse {
		ok.Description = &desc
		return
	}
	desc = "The stream: newline-delimited JSON, or with `Accept: text/event-stream` Server-Sent Events. " +
		"Each event is named after the message's set field (e.g. `batch`, `heartbeat`, `resync`, `tally`), " +
		"its `data` is the message as JSON (the `result` of the NDJSON line) and its `id` the resume position " +
		"after it (cleared by a resync); an `error` event, last, carries the Status that ended the stream. " +
		"Both are sent uncompressed and flushed message by message."
	ok.Description = &desc
	events := described(openapi3.NewStringSchema(), "Server-Sent Events (text/event-stream framing).")
	ok.Content["text/event-stream"] = openapi3.NewMediaType().WithSchema(events)
	ok.Headers["Cache-Control"] = &openapi3.HeaderRef{Value: &openapi3.Header{Parameter: openapi3.Parameter{
		Description: "`no-store`.", Schema: openapi3.NewStringSchema().NewRef(),
	}}}
	last := openapi3.NewHeaderParameter("Last-Event-ID").WithSchema(
		described(openapi3.NewStringSchema().WithPattern(`^[0-9]+$`), ""))
	last.Description = "The `id` of the last event received, sent by an EventSource when it reconnects: " +
		"the stream resumes right after that position and takes it in place of the query's. " +
		"Anything but a non-negative integer is refused (400)."
	op.Parameters = append(op.Parameters, &openapi3.ParameterRef{Value: last})
}

func statusRef(doc *openapi3.T) *openapi3.SchemaRef {
	return &openapi3.SchemaRef{Ref: "#/components/schemas/" + statusSchema, Value: doc.Components.Schemas[statusSchema].Value}
}

// health documents the gateway's HTTP health endpoints (gateway/health.go),
// which are no RPC of their own: they read grpc.health.v1.Health.
func health(doc *openapi3.T) {
	// Added after the loop over the plugin's operations: these answers
	// come from the gateway itself and carry no X-Region.
	text := func(d string) *openapi3.ResponseRef {
		r := openapi3.NewResponse().WithDescription(d).
			WithContent(openapi3.Content{"text/plain": openapi3.NewMediaType().WithSchema(openapi3.NewStringSchema())})
		r.Headers = openapi3.Headers{"Cache-Control": &openapi3.HeaderRef{Value: &openapi3.Header{Parameter: openapi3.Parameter{
			Description: "`no-store`.", Schema: openapi3.NewStringSchema().NewRef(),
		}}}}
		return &openapi3.ResponseRef{Value: r}
	}
	op := func(id, summary, desc, ok, down string) *openapi3.PathItem {
		rs := openapi3.NewResponses()
		rs.Delete("default")
		rs.Set("200", text(ok))
		rs.Set("400", &openapi3.ResponseRef{Value: openapi3.NewResponse().
			WithDescription("INVALID_ARGUMENT: the URL's query is not valid UTF-8 (the edge refuses such URLs on every path).").
			WithContent(openapi3.NewContentWithJSONSchemaRef(statusRef(doc)))})
		rs.Set("503", text(down))
		return &openapi3.PathItem{Get: &openapi3.Operation{
			OperationID: id, Summary: summary, Description: desc, Tags: []string{"Health"},
			Security: &openapi3.SecurityRequirements{}, Responses: rs,
		}}
	}
	doc.Paths.Set("/healthz", op("Health_Live", "Liveness: whether the server answers at all. Public.",
		"200 while the gRPC server behind the gateway answers its health service, whatever it reports: "+
			"dependencies are left out on purpose (restarting the process does not bring a database back).",
		"`ok`: alive.", "The server does not answer."))
	doc.Paths.Set("/readyz", op("Health_Ready", "Readiness: whether the server should get traffic. Public.",
		"200 only while the server reports the whole process SERVING in grpc.health.v1.Health/List: started, "+
			"migrated, caches and boards loaded, every dependency up, not draining. Otherwise 503 naming the "+
			"services that are not serving (one entry per service, by its full gRPC name).",
		"`ready`.", "Not ready: the services not serving, e.g. `not ready: [canvas.v1.CanvasService NOT_SERVING]`."))
	doc.Tags = append(doc.Tags, &openapi3.Tag{Name: "Health", Description: "The gateway's HTTP health probes."})
}

// anonymousExt marks, in options.yaml, a public operation whose answer
// depends on the credential when one is sent.
const anonymousExt = "x-anonymous-allowed"

// optionalBody: the gateway reads an empty body as an empty message, so a
// body is required only when its message has required fields.
func optionalBody(doc *openapi3.T, op *openapi3.Operation) {
	if op.RequestBody == nil || op.RequestBody.Value == nil {
		return
	}
	for _, mt := range op.RequestBody.Value.Content {
		s := mt.Schema
		if s != nil && s.Value == nil && s.Ref != "" {
			s = doc.Components.Schemas[strings.TrimPrefix(s.Ref, "#/components/schemas/")]
		}
		if s == nil || s.Value == nil || len(s.Value.Required) == 0 {
			op.RequestBody.Value.Required = false
		}
	}
}

// fixResponse gives raw answers their media types: an error is always a
// JSON Status; a success or the password form of an HttpBody operation is
// the bytes of the type it produces; a 304 has no body.
func fixResponse(code string, r *openapi3.Response, raw bool, produces []string) {
	status, _ := strconv.Atoi(code)
	if r.Content != nil {
		for _, mt := range r.Content {
			if mt.Schema != nil && strings.HasSuffix(mt.Schema.Ref, "/"+statusSchema) {
				r.Content = openapi3.NewContentWithJSONSchemaRef(mt.Schema)
				// Browser routes answer a browser's 400, 404 and 410 as
				// a small HTML page (gateway/security_headers.go), others
				// as JSON.
				if raw && (status == 400 || status == 404 || status == 410) && slices.Contains(produces, "text/html") {
					r.Content["text/html"] = openapi3.NewMediaType().WithSchema(openapi3.NewStringSchema())
				}
				return
			}
		}
	}
	// The plugin canonicalises header names (Etag); keep the usual spelling.
	if h, ok := r.Headers["Etag"]; ok {
		delete(r.Headers, "Etag")
		r.Headers["ETag"] = h
	}
	if h, ok := r.Headers["Location"]; ok {
		h.Value.Required = true
	}
	if !raw || status == 304 {
		if status == 304 {
			r.Content = nil
		}
		return
	}
	r.Content = openapi3.Content{}
	for _, mt := range produces {
		s := openapi3.NewStringSchema()
		if !strings.HasPrefix(mt, "text/") {
			s.Format = "binary"
		}
		r.Content[mt] = openapi3.NewMediaType().WithSchema(s)
	}
}

// fixSecurity makes the two Authorization schemes HTTP bearer schemes and
// adds the browser's session cookie, which the gateway accepts wherever a
// bearer token is (OpenAPI 2 has no cookie parameters).
func fixSecurity(doc *openapi3.T) {
	for _, name := range []string{bearerScheme, apiKeyScheme} {
		s := doc.Components.SecuritySchemes[name].Value
		format := "opaque session token"
		if name == apiKeyScheme {
			format = "API key"
		}
		doc.Components.SecuritySchemes[name].Value = &openapi3.SecurityScheme{
			Type: "http", Scheme: "bearer", BearerFormat: format, Description: s.Description,
		}
	}
	doc.Components.SecuritySchemes[cookieScheme] = &openapi3.SecuritySchemeRef{Value: &openapi3.SecurityScheme{
		Type: "apiKey", In: "cookie", Name: "session",
		Description: "The HttpOnly `session` cookie the gateway sets for browsers whenever an identity operation returns a session.",
	}}
	addCookie(&doc.Security)
}

func addCookie(srs *openapi3.SecurityRequirements) {
	for _, sr := range *srs {
		if _, ok := sr[bearerScheme]; ok {
			*srs = append(*srs, openapi3.SecurityRequirement{cookieScheme: {}})
			return
		}
	}
}

// detail is one google.rpc error detail the server sends.
type detail struct {
	name, doc string
	props     openapi3.Schemas
}

// typeStatusDetails replaces Status.details' untyped Any with the details
// the server sends (server/platform/apierr), told apart by `@type`.
func typeStatusDetails(doc *openapi3.T) error {
	st := doc.Components.Schemas[statusSchema]
	if st == nil || st.Value.Properties["details"] == nil {
		return fmt.Errorf("no %s schema with details in the plugin's output", statusSchema)
	}
	str := func(d string) *openapi3.SchemaRef { return described(openapi3.NewStringSchema(), d).NewRef() }
	violation := described(openapi3.NewObjectSchema(), "One bad field.").
		WithProperty("field", described(openapi3.NewStringSchema(), "The field's path in the JSON body or query, e.g. `longUrl` or `candidates[1].name`.")).
		WithProperty("description", described(openapi3.NewStringSchema(), "Why its value was refused."))
	violation.Required = []string{"field", "description"}
	details := []detail{
		{"ErrorInfo", "A machine-readable reason (domain `apiplatform`), with metadata for some reasons.", openapi3.Schemas{
			"reason": str("e.g. `NOT_FOUND`, `GONE`, `ALREADY_VOTED`, `RATE_LIMITED`."),
			"domain": str("Always `apiplatform`."),
			"metadata": described(openapi3.NewObjectSchema(), "Details of the reason, e.g. `voteId` of ALREADY_VOTED.").
				WithAdditionalProperties(openapi3.NewStringSchema()).NewRef(),
		}},
		{"BadRequest", "The fields of the request that were refused.", openapi3.Schemas{
			"fieldViolations": openapi3.NewArraySchema().WithItems(violation).NewRef(),
		}},
		{"RetryInfo", "When to retry (also sent as the Retry-After header).", openapi3.Schemas{
			"retryDelay": str("A duration in seconds with an `s` suffix, e.g. `1.500s`."),
		}},
	}
	var oneOf openapi3.SchemaRefs
	mapping := map[string]openapi3.MappingRef{}
	for _, d := range details {
		typeURL := "type.googleapis.com/google.rpc." + d.name
		s := described(openapi3.NewObjectSchema(), d.doc)
		s.Properties = maps.Clone(d.props)
		s.Properties["@type"] = openapi3.NewStringSchema().WithEnum(typeURL).NewRef()
		s.Required = slices.Sorted(maps.Keys(s.Properties))
		doc.Components.Schemas[d.name] = s.NewRef()
		ref := "#/components/schemas/" + d.name
		oneOf = append(oneOf, openapi3.NewSchemaRef(ref, s))
		mapping[typeURL] = openapi3.MappingRef{Ref: ref}
	}
	items := &openapi3.Schema{OneOf: oneOf, Discriminator: &openapi3.Discriminator{PropertyName: "@type", Mapping: mapping}}
	st.Value.Properties["details"] = described(openapi3.NewArraySchema().WithItems(items),
		"Standard details: BadRequest, ErrorInfo, RetryInfo.").NewRef()
	st.Value.Required = []string{"code", "message"}
	delete(doc.Components.Schemas, "Any")
	return nil
}

func described(s *openapi3.Schema, doc string) *openapi3.Schema {
	s.Description = doc
	return s
}
