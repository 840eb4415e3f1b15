// Package gateway is the HTTP edge: the grpc-gateway mux generated from our
// contracts, plus the few HTTP-only concerns (cookies, status codes,
// allowlisted headers, health, Server-Sent Events).
//
// It reaches the services through a gRPC client interface that runs the
// server's whole interceptor chain and serves streams: a real connection when
// the gateway runs as its own process, an in-process channel when it shares
// the server's (grpc-gateway's in-process handlers would skip the server's
// interceptors — auth, limits, metrics — and cannot serve streams).
package gateway

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	canvasv1 "github.com/apiplatform/platform/gen/go/canvas/v1"
	favoritev1 "github.com/apiplatform/platform/gen/go/favorite/v1"
	identityv1 "github.com/apiplatform/platform/gen/go/identity/v1"
	sharev1 "github.com/apiplatform/platform/gen/go/share/v1"
	shortenerv1 "github.com/apiplatform/platform/gen/go/shortener/v1"
	votev1 "github.com/apiplatform/platform/gen/go/vote/v1"
	"github.com/apiplatform/platform/server/platform/apierr"
	"github.com/apiplatform/platform/server/platform/wire"
)

// Config of the gateway.
type Config struct {
	// GatewaySecret proves to the server that client addresses we forward
	// are ours to vouch for.
	GatewaySecret string
	// TrustedProxies are the load balancers / CDNs allowed to tell us the
	// client address in X-Forwarded-For. Empty: the peer address is the client.
	TrustedProxies []netip.Prefix
	// SecureCookies marks cookies Secure (set when served over HTTPS).
	SecureCookies bool
	// MaxBodyBytes bounds request bodies.
	MaxBodyBytes int64
	// CountryHeader is the CDN header carrying the client's country (default
	// CF-IPCountry). It is forwarded only from trusted proxies: anyone else
	// could write it.
	CountryHeader string
	// PublicOrigins are the origins browsers see this site at (e.g.
	// https://colors.example); state-changing browser calls from them are
	// same-origin even when a CDN rewrote Host.
	PublicOrigins []string
	// CORSOrigins may call the API from their pages with a bearer token
	// ("*": any); empty: none.
	CORSOrigins []string
	// BodyTimeout bounds the reading of a request body, WriteTimeout the
	// writing of a non-streaming answer (defaults DefaultBodyTimeout,
	// DefaultWriteTimeout; streams are not bounded).
	BodyTimeout, WriteTimeout time.Duration
}

// Cookie names.
const (
	SessionCookie = "session"
	RefreshCookie = "refresh"
)

// handlers is every service's generated REST registration, over one
// client channel. grpc-gateway tries patterns registered LATER first, so
// the shortener, whose `/{code}` catches every one-segment path, is
// registered first: any one-segment route of another service
// (`/canvas.png`) wins over it. `/healthz` and `/readyz` never reach
// grpc-gateway (the root mux serves them, as it serves the resumable
// streams: streams.go), and longer paths (`/s/{slug}`, `/api/...`) cannot
// match `/{code}`.
var handlers = []func(context.Context, *runtime.ServeMux, grpc.ClientConnInterface) error{
	over(shortenerv1.RegisterShortenerServiceHandlerClient, shortenerv1.NewShortenerServiceClient),
	over(identityv1.RegisterIdentityServiceHandlerClient, identityv1.NewIdentityServiceClient),
	over(favoritev1.RegisterFavoriteServiceHandlerClient, favoritev1.NewFavoriteServiceClient),
	over(sharev1.RegisterShareServiceHandlerClient, sharev1.NewShareServiceClient),
	over(votev1.RegisterVoteServiceHandlerClient, votev1.NewVoteServiceClient),
	over(canvasv1.RegisterCanvasServiceHandlerClient, canvasv1.NewCanvasServiceClient),
}

// over adapts a generated client registration to any client channel (the
// generated connection variant takes only a *grpc.ClientConn).
func over[C any](register func(context.Context, *runtime.ServeMux, C) error, client func(grpc.ClientConnInterface) C) func(context.Context, *runtime.ServeMux, grpc.ClientConnInterface) error {
	return func(ctx context.Context, mux *runtime.ServeMux, cc grpc.ClientConnInterface) error {
		return register(ctx, mux, client(cc))
	}
}

// New builds the HTTP handler in front of conn: a *grpc.ClientConn to
// remote servers, or an in-process channel to the services of this process.
func New(ctx context.Context, conn grpc.ClientConnInterface, cfg Config) (http.Handler, error) {
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = 1 << 20
	}
	if cfg.CountryHeader == "" {
		cfg.CountryHeader = "CF-IPCountry"
	}
	// Canonical once: Header.Get canonicalizes (and allocates) otherwise.
	cfg.CountryHeader = http.CanonicalHeaderKey(cfg.CountryHeader)
	if cfg.BodyTimeout == 0 {
		cfg.BodyTimeout = DefaultBodyTimeout
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	json := &runtime.JSONPb{
		// Zero values are part of the answer (e.g. "snapshot": false).
		MarshalOptions:   protojson.MarshalOptions{EmitDefaultValues: true},
		UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
	}
	opts := []runtime.ServeMuxOption{
		runtime.WithMarshalerOption(runtime.MIMEWildcard, &runtime.HTTPBodyMarshaler{Marshaler: json}),
		// HTML forms (the password form of protected short links) post
		// url-encoded bodies; answers stay JSON or the service's HttpBody.
		runtime.WithMarshalerOption(formMIME, &runtime.HTTPBodyMarshaler{Marshaler: formMarshaler{json}}),
		runtime.WithIncomingHeaderMatcher(incomingHeader),
		runtime.WithOutgoingHeaderMatcher(outgoingHeader),
		runtime.WithOutgoingTrailerMatcher(func(string) (string, bool) { return "", false }),
		runtime.WithMetadata(cfg.requestMetadata),
		runtime.WithForwardResponseOption(cfg.forwardResponse),
		runtime.WithErrorHandler(errorHandler),
		runtime.WithRoutingErrorHandler(routingError),
		// Server streams never reach grpc-gateway's stream handlers: the
		// root mux serves them (streams.go).
		runtime.WithMiddlewares(probeMiddleware),
	}
	mux := runtime.NewServeMux(opts...)
	for _, register := range handlers {
		if err := register(ctx, mux, conn); err != nil {
			return nil, err
		}
	}
	codes := runtime.NewServeMux(opts...)
	if err := handlers[0](ctx, codes, conn); err != nil {
		return nil, err
	}
	root := http.NewServeMux()
	registerHealth(root, conn)
	streams{mux: mux, conn: conn, json: json}.register(root)
	// The web client (files embedded in the binary) under /app/; the bare
	// root sends browsers there.
	root.Handle(WebPrefix, WebHandler())
	apiDocs(root)
	root.Handle("GET /{$}", http.RedirectHandler(WebPrefix, http.StatusFound))
	root.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// grpc-gateway routes no HEAD: answer it as the GET (net/http sends
		// no body for HEAD), so that link checkers and `curl -I` see
		// redirects and pages.
		if r.Method == http.MethodHead {
			r = r.Clone(r.Context())
			r.Method = http.MethodGet
		}
		route(mux, codes, r).ServeHTTP(w, r)
	}))
	forwarded := cfg.forwardedHeaders()
	return cfg.edge(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Made safe once for gRPC metadata (any byte of any client),
		// decoded once by the server's wire interceptor.
		wire.SafeHeaders(r.Header, forwarded...)
		root.ServeHTTP(w, r)
	}))
}

// incomingHeader forwards only the headers services read; everything else a
// client sends stays at the edge (Authorization is forwarded by grpc-gateway
// itself).
func incomingHeader(h string) (string, bool) {
	k, ok := wire.RequestHeaders[http.CanonicalHeaderKey(h)]
	return k, ok
}

// forwardedHeaders are every request header whose value reaches gRPC
// metadata: the ones services read, the ones the gateway vouches for, and
// the ones grpc-gateway forwards itself (Authorization, X-Forwarded-*).
func (cfg Config) forwardedHeaders() []string {
	names := []string{"User-Agent", "Referer", "Authorization", "X-Forwarded-Host", "X-Forwarded-For",
		cfg.CountryHeader}
	for h := range wire.RequestHeaders {
		names = append(names, h)
	}
	return names
}

// outgoingHeader lets only allowlisted response metadata become headers: no
// stray Grpc-Metadata-* reaches clients.
func outgoingHeader(k string) (string, bool) {
	h, ok := wire.Headers[k]
	return h, ok
}

// requestMetadata adds what the gateway vouches for: the client's address,
// the secret proving it came from us, and the tokens of browser cookies;
// and what the shortener's analytics read: the HTTP User-Agent (even when
// empty: the call's own user-agent is the gateway's), the Referer, and the
// CDN's country header when the peer is a trusted proxy.
func (cfg Config) requestMetadata(_ context.Context, r *http.Request) metadata.MD {
	// Every request pays for this: at most seven keys, one allocation
	// for all their values.
	md := wire.NewMD(7)
	md.Set(wire.SecretKey, wire.SendSecret(cfg.GatewaySecret))
	md.Set(wire.UserAgentKey, r.UserAgent())
	if a := cfg.clientAddr(r); a.IsValid() {
		md.Set(wire.AddrKey, a.String())
	}
	if ref := r.Referer(); ref != "" {
		md.Set(wire.RefererKey, ref)
	}
	if c := r.Header.Get(cfg.CountryHeader); c != "" && cfg.peerTrusted(r) {
		md.Set(wire.CountryKey, c)
	}
	if r.Header.Get("Authorization") == "" {
		if c, err := r.Cookie(SessionCookie); err == nil && c.Value != "" {
			md.Set("authorization", "Bearer "+wire.Encode(c.Value))
		}
	}
	if c, err := r.Cookie(RefreshCookie); err == nil && c.Value != "" {
		md.Set(wire.RefreshTokenKey, wire.Encode(c.Value))
	}
	return md.MD()
}

// clientAddr is the peer, unless the peer is a trusted proxy: then the
// right-most X-Forwarded-For entry not itself a trusted proxy. Entries left
// of that are written by the client and prove nothing.
func (cfg Config) clientAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	addr := ap.Addr().Unmap()
	if !cfg.trusted(addr) {
		return addr
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		addr = hop.Unmap()
		if !cfg.trusted(addr) {
			break
		}
	}
	return addr
}

// peerTrusted reports whether the connection comes from a trusted proxy.
func (cfg Config) peerTrusted(r *http.Request) bool {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	return err == nil && cfg.trusted(ap.Addr().Unmap())
}

func (cfg Config) trusted(a netip.Addr) bool {
	for _, p := range cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

type sessionResponse interface{ GetSession() *identityv1.Session }

// forwardResponse applies a service's chosen status code and keeps the
// browser's session cookies in step with the identity RPCs.
func (cfg Config) forwardResponse(ctx context.Context, w http.ResponseWriter, resp proto.Message) error {
	switch m := resp.(type) {
	case sessionResponse:
		if s := m.GetSession(); s != nil {
			cfg.setCookie(w, SessionCookie, s.GetAccessToken(), "/", s.GetAccessTokenExpireTime().AsTime())
			cfg.setCookie(w, RefreshCookie, s.GetRefreshToken(), "/api/v1/auth/", s.GetRefreshTokenExpireTime().AsTime())
		}
	case *identityv1.LogoutResponse, *identityv1.DeleteAccountResponse:
		cfg.setCookie(w, SessionCookie, "", "/", time.Unix(0, 0))
		cfg.setCookie(w, RefreshCookie, "", "/api/v1/auth/", time.Unix(0, 0))
	}
	if code, ok := statusIntent(ctx); ok {
		w.WriteHeader(code)
	}
	return nil
}

// statusIntent is the HTTP status the service asked for (wire.SetStatus),
// on answers and errors alike: the one place it is mapped.
func statusIntent(ctx context.Context) (int, bool) {
	md, ok := runtime.ServerMetadataFromContext(ctx)
	if !ok {
		return 0, false
	}
	return wire.Status(md.HeaderMD)
}

func (cfg Config) setCookie(w http.ResponseWriter, name, value, path string, expires time.Time) {
	c := &http.Cookie{Name: name, Value: value, Path: path, HttpOnly: true, Secure: cfg.SecureCookies, SameSite: http.SameSiteLaxMode}
	if value == "" {
		c.MaxAge = -1
	} else {
		c.Expires = expires
	}
	http.SetCookie(w, c)
}

// errorHandler adds Retry-After for statuses carrying RetryInfo and applies
// the service's status intent (410 for a deleted link), then answers like
// grpc-gateway's default (status JSON with details).
func errorHandler(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil && !bodyCutOff(r.Context()) {
		// The client went away (the call failed because of it): there is
		// no one to answer, and grpc-gateway's 499 is no status of the API.
		return
	}
	err = namePathParam(err)
	if st, ok := status.FromError(err); ok {
		if d, ok := apierr.RetryAfter(st); ok {
			secs := int((d + time.Second - 1) / time.Second)
			w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
		}
	}
	code := runtime.HTTPStatusFromCode(status.Code(err))
	if c, ok := statusIntent(ctx); ok && c >= 400 {
		code = c
		w = statusWriter{ResponseWriter: w, code: c}
	}
	if wantsPage(ctx, r) {
		writePage(w, code)
		return
	}
	runtime.DefaultHTTPErrorHandler(ctx, mux, m, w, r, err)
}

// pathParamMismatch is how grpc-gateway's generated code refuses a path
// parameter that does not parse (`/canvas/pixels/abc/1`).
const pathParamMismatch = "type mismatch, parameter: "

// namePathParam turns grpc-gateway's refusal of a path parameter into the
// API's own INVALID_ARGUMENT naming the field, as the service does for a
// value that parses but is out of range.
func namePathParam(err error) error {
	st, ok := status.FromError(err)
	if !ok || st.Code() != codes.InvalidArgument || len(st.Details()) > 0 {
		return err
	}
	rest, ok := strings.CutPrefix(st.Message(), pathParamMismatch)
	if !ok {
		return err
	}
	field, _, ok := strings.Cut(rest, ",")
	if !ok || field == "" {
		return err
	}
	return apierr.InvalidArgument(field, "is not a value of the field's type")
}

// statusWriter answers with code whatever status the handler writes.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w statusWriter) WriteHeader(int) { w.ResponseWriter.WriteHeader(w.code) }

func (w statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

const formMIME = "application/x-www-form-urlencoded"

// formMarshaler decodes url-encoded form bodies into FollowShortUrl
// requests (the password form of protected links). Anything else declared
// as a form is decoded as JSON, as it always was: clients such as `curl -d`
// label JSON that way. Answers are marshalled as JSON.
type formMarshaler struct{ *runtime.JSONPb }

func (f formMarshaler) NewDecoder(r io.Reader) runtime.Decoder {
	return runtime.DecoderFunc(func(v any) error {
		b, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		req, ok := v.(*shortenerv1.FollowShortUrlRequest)
		if !ok || bytes.HasPrefix(bytes.TrimSpace(b), []byte("{")) {
			if len(bytes.TrimSpace(b)) == 0 {
				return io.EOF
			}
			return f.JSONPb.Unmarshal(b, v)
		}
		vals, err := url.ParseQuery(string(b))
		if err != nil {
			return errors.New("malformed form body")
		}
		req.Password = vals.Get("password")
		return nil
	})
}

func (f formMarshaler) Unmarshal(data []byte, v any) error {
	return f.NewDecoder(bytes.NewReader(data)).Decode(v)
}
