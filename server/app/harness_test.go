package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	favoritev1 "github.com/apiplatform/platform/gen/go/favorite/v1"
	identityv1 "github.com/apiplatform/platform/gen/go/identity/v1"
	sharev1 "github.com/apiplatform/platform/gen/go/share/v1"
	"github.com/apiplatform/platform/server/app"
	"github.com/apiplatform/platform/server/identity"
	"github.com/apiplatform/platform/server/platform/ratelimit"
	"github.com/apiplatform/platform/server/share"
	"github.com/apiplatform/platform/server/storage/sqlstore"
	"github.com/apiplatform/platform/server/storage/sqlstore/sqltest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	sqltest.DropTemplates()
	os.Exit(code)
}

// migratedDatabaseURL is a fresh database with the schema in place, copied
// from a template migrated once per test process: a PostgreSQL-backed case
// takes about half as long (the server's own migrations find nothing to do).
// The sqlstore tests cover migrating an empty database.
func migratedDatabaseURL(t testing.TB) string {
	return sqltest.MigratedDatabaseURL(t, func(ctx context.Context, url string) error {
		return sqlstore.Migrate(ctx, sqlstore.Config{URL: url})
	})
}

// platform is one running server process, reached over real sockets.
type platform struct {
	srv  *app.Server
	conn *grpc.ClientConn
	base string // http://host:port of the gateway
}

// backend is a storage configuration the suites run against: the embedded
// default, and (under .ci/with-services) PostgreSQL with Redis, the
// production shape.
type backend struct {
	name  string
	setup func(t testing.TB, cfg *app.Config)
}

var embeddedBackend = backend{name: "embedded", setup: func(t testing.TB, cfg *app.Config) {}}

func backends() []backend {
	bs := []backend{embeddedBackend}
	if os.Getenv("TEST_REDIS_TOPOLOGY") != "" {
		// A Cluster or Sentinel pass (.ci/with-redis) reruns the suites for
		// the Redis-backed engine only; the embedded one ran already.
		bs = nil
	}
	if os.Getenv("TEST_DATABASE_URL") != "" {
		bs = append(bs, backend{name: "postgres+redis", setup: func(t testing.TB, cfg *app.Config) {
			cfg.DatabaseURL = migratedDatabaseURL(t)
			cfg.RedisURL = os.Getenv("TEST_REDIS_URL")
		}})
	}
	return bs
}

// forBackends runs a test once per backend.
func forBackends(t *testing.T, run func(t *testing.T, b backend)) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) { run(t, b) })
	}
}

// replicaConfigs returns one configuration per region over one fresh
// database and the shared Redis (skipping without them): replicas of one
// deployment, to be started with startConfig.
func replicaConfigs(t *testing.T, regions ...string) []app.Config {
	t.Helper()
	dbURL := migratedDatabaseURL(t)
	redisURL := os.Getenv("TEST_REDIS_URL")
	if redisURL == "" {
		t.Skip("TEST_REDIS_URL is not set")
	}
	var out []app.Config
	for _, region := range regions {
		cfg := testConfig(t)
		cfg.DatabaseURL, cfg.RedisURL, cfg.Region = dbURL, redisURL, region
		out = append(out, cfg)
	}
	return out
}

// testConfig is a server on loopback ports. Limits keyed by client address
// are raised: every test client is 127.0.0.1, and with Redis they would be
// shared by every test of the run.
func testConfig(t testing.TB) app.Config {
	cfg := app.Config{
		GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", DataDir: t.TempDir(), Region: "test-region",
		Logger:   slog.New(slog.NewTextHandler(t.Output(), nil)), // shown only for failing tests
		Identity: identity.DefaultConfig(),
		Share:    share.DefaultConfig(),
	}
	roomy := ratelimit.Limit{Rate: 10_000, Period: time.Minute, Burst: 10_000}
	cfg.Identity.GuestLimit, cfg.Share.AddrLimit = roomy, roomy
	cfg.Identity.RegisterLimit, cfg.Identity.LoginAddrLimit = roomy, roomy
	// Every REST answer of a test is checked against the OpenAPI document
	// (benchmarks measure the server alone).
	if _, isTest := t.(*testing.T); isTest {
		cfg.HTTPMiddleware = contractCheck(t)
	}
	return cfg
}

// start runs a server on b; configure may adjust the configuration first.
func start(t testing.TB, b backend, configure func(*app.Config)) *platform {
	t.Helper()
	cfg := testConfig(t)
	b.setup(t, &cfg)
	if configure != nil {
		configure(&cfg)
	}
	return startConfig(t, cfg)
}

func startConfig(t testing.TB, cfg app.Config) *platform {
	t.Helper()
	split := splitGateway(t, &cfg)
	srv, err := app.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve() }()
	t.Cleanup(func() {
		// A connection the client dialled but never sent a request on
		// counts as busy to http.Server.Shutdown for its first 5 s (the
		// request may be on its way); the clients here are done, so their
		// spare connections go first and the stop does not wait them out.
		http.DefaultTransport.(*http.Transport).CloseIdleConnections()
		_ = srv.Shutdown(context.Background())
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	base := "http://" + srv.HTTPAddr()
	if split != nil {
		base = split(srv.GRPCAddr())
	}
	conn, err := grpc.NewClient(srv.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &platform{srv: srv, conn: conn, base: base}
}

// api is what the end-to-end cases need from a client; grpcAPI and restAPI
// implement it over the two public surfaces, so every case runs on both.
// Errors are gRPC statuses on both (REST errors are decoded from the
// gateway's JSON after checking the HTTP status matches the code).
type api interface {
	guest(t *testing.T) (userID, token string)
	register(t *testing.T, token, username, password string) (userID, newToken string, err error)
	setFavorite(t *testing.T, token, color, idemKey string) (*favoritev1.Favorite, error)
	getFavorite(t *testing.T, token string) (*favoritev1.Favorite, error)
	getUserFavorite(t *testing.T, token, userID string) (*favoritev1.Favorite, error)
	createShare(t *testing.T, token string, snapshot bool, expiresInSec int64) (*sharev1.Share, error)
	getShare(t *testing.T, token, slug string) (*sharev1.Share, error)
	revokeShare(t *testing.T, token, slug string) error
	logout(t *testing.T, token string) error
}

// ---- gRPC ----

type grpcAPI struct{ p *platform }

func (g grpcAPI) ctx(token string, kv ...string) context.Context {
	ctx := context.Background()
	if token != "" {
		kv = append(kv, "authorization", "Bearer "+token)
	}
	return metadata.AppendToOutgoingContext(ctx, kv...)
}

func (g grpcAPI) guest(t *testing.T) (string, string) {
	t.Helper()
	res, err := identityv1.NewIdentityServiceClient(g.p.conn).CreateGuest(g.ctx(""), &identityv1.CreateGuestRequest{})
	if err != nil {
		t.Fatal(err)
	}
	return res.GetUser().GetId(), res.GetSession().GetAccessToken()
}

func (g grpcAPI) register(t *testing.T, token, username, password string) (string, string, error) {
	res, err := identityv1.NewIdentityServiceClient(g.p.conn).Register(g.ctx(token), &identityv1.RegisterRequest{Username: username, Password: password})
	return res.GetUser().GetId(), res.GetSession().GetAccessToken(), err
}

func (g grpcAPI) setFavorite(t *testing.T, token, color, key string) (*favoritev1.Favorite, error) {
	var kv []string
	if key != "" {
		kv = []string{"idempotency-key", key}
	}
	res, err := favoritev1.NewFavoriteServiceClient(g.p.conn).SetFavorite(g.ctx(token, kv...), &favoritev1.SetFavoriteRequest{Color: color})
	return res.GetFavorite(), err
}

func (g grpcAPI) getFavorite(t *testing.T, token string) (*favoritev1.Favorite, error) {
	res, err := favoritev1.NewFavoriteServiceClient(g.p.conn).GetFavorite(g.ctx(token), &favoritev1.GetFavoriteRequest{})
	return res.GetFavorite(), err
}

func (g grpcAPI) getUserFavorite(t *testing.T, token, userID string) (*favoritev1.Favorite, error) {
	res, err := favoritev1.NewFavoriteServiceClient(g.p.conn).GetUserFavorite(g.ctx(token), &favoritev1.GetUserFavoriteRequest{UserId: userID})
	return res.GetFavorite(), err
}

func (g grpcAPI) createShare(t *testing.T, token string, snapshot bool, exp int64) (*sharev1.Share, error) {
	res, err := sharev1.NewShareServiceClient(g.p.conn).CreateShare(g.ctx(token), &sharev1.CreateShareRequest{Snapshot: snapshot, ExpiresInSec: exp})
	return res.GetShare(), err
}

func (g grpcAPI) getShare(t *testing.T, token, slug string) (*sharev1.Share, error) {
	res, err := sharev1.NewShareServiceClient(g.p.conn).GetShare(g.ctx(token), &sharev1.GetShareRequest{Slug: slug})
	return res.GetShare(), err
}

func (g grpcAPI) revokeShare(t *testing.T, token, slug string) error {
	_, err := sharev1.NewShareServiceClient(g.p.conn).RevokeShare(g.ctx(token), &sharev1.RevokeShareRequest{Slug: slug})
	return err
}

func (g grpcAPI) logout(t *testing.T, token string) error {
	_, err := identityv1.NewIdentityServiceClient(g.p.conn).Logout(g.ctx(token), &identityv1.LogoutRequest{})
	return err
}

// ---- REST ----

type restAPI struct {
	p      *platform
	client *http.Client
}

// newREST is an API client that sends only the tokens it is given.
func newREST(p *platform) restAPI {
	return restAPI{p: p, client: &http.Client{Timeout: 10 * time.Second}}
}

// newBrowser keeps cookies, like a browser.
func newBrowser(p *platform) restAPI {
	jar, _ := cookiejar.New(nil)
	return restAPI{p: p, client: &http.Client{Jar: jar, Timeout: 10 * time.Second}}
}

// do sends a request and returns the response with its body read. A token
// is sent as a bearer header; headers come in pairs.
func (r restAPI) do(t *testing.T, method, path, token string, body any, headers ...string) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, r.p.base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		// As browsers' fetch and API clients label it; the gateway refuses
		// unlabelled bodies on cookie-authenticated calls (CSRF).
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := r.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, b
}

// call decodes a 2xx answer into out, or turns an error answer back into
// the gRPC status it was made from.
func (r restAPI) call(t *testing.T, method, path, token string, body any, out any, headers ...string) (*http.Response, error) {
	t.Helper()
	res, b := r.do(t, method, path, token, body, headers...)
	if res.StatusCode/100 == 2 {
		if out != nil && len(b) > 0 {
			if err := json.Unmarshal(b, out); err != nil {
				t.Fatalf("%s %s: %v in %s", method, path, err, b)
			}
		}
		return res, nil
	}
	return res, restError(t, res, b)
}

func restError(t *testing.T, res *http.Response, b []byte) error {
	t.Helper()
	var st spb.Status
	if err := protojson.Unmarshal(b, &st); err != nil {
		t.Fatalf("HTTP %d with a body that is not a status: %v: %s", res.StatusCode, err, b)
	}
	if want := runtime.HTTPStatusFromCode(codes.Code(st.GetCode())); res.StatusCode != want {
		t.Fatalf("HTTP %d for %s, want %d", res.StatusCode, codes.Code(st.GetCode()), want)
	}
	return status.ErrorProto(&st)
}

type restUser struct {
	ID string `json:"id"`
}
type restSession struct {
	AccessToken string `json:"accessToken"`
}
type restAuth struct {
	User    restUser    `json:"user"`
	Session restSession `json:"session"`
}

func (r restAPI) guest(t *testing.T) (string, string) {
	t.Helper()
	var out restAuth
	if _, err := r.call(t, "POST", "/api/v1/auth/guest", "", map[string]any{}, &out); err != nil {
		t.Fatal(err)
	}
	return out.User.ID, out.Session.AccessToken
}

func (r restAPI) register(t *testing.T, token, username, password string) (string, string, error) {
	var out restAuth
	_, err := r.call(t, "POST", "/api/v1/auth/register", token, map[string]any{"username": username, "password": password}, &out)
	return out.User.ID, out.Session.AccessToken, err
}

func decodeProto[T any, P interface {
	*T
	proto.Message
}](t *testing.T, raw json.RawMessage) P {
	t.Helper()
	var m T
	if len(raw) == 0 {
		return nil
	}
	if err := protojson.Unmarshal(raw, P(&m)); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
	return &m
}

func (r restAPI) setFavorite(t *testing.T, token, color, key string) (*favoritev1.Favorite, error) {
	var raw json.RawMessage
	var h []string
	if key != "" {
		h = []string{"Idempotency-Key", key}
	}
	_, err := r.call(t, "PUT", "/api/v1/favorite", token, map[string]any{"color": color}, &raw, h...)
	return decodeProto[favoritev1.Favorite](t, raw), err
}

func (r restAPI) getFavorite(t *testing.T, token string) (*favoritev1.Favorite, error) {
	var raw json.RawMessage
	_, err := r.call(t, "GET", "/api/v1/favorite", token, nil, &raw)
	return decodeProto[favoritev1.Favorite](t, raw), err
}

func (r restAPI) getUserFavorite(t *testing.T, token, userID string) (*favoritev1.Favorite, error) {
	var raw json.RawMessage
	_, err := r.call(t, "GET", "/api/v1/users/"+userID+"/favorite", token, nil, &raw)
	return decodeProto[favoritev1.Favorite](t, raw), err
}

func (r restAPI) createShare(t *testing.T, token string, snapshot bool, exp int64) (*sharev1.Share, error) {
	var raw json.RawMessage
	res, err := r.call(t, "POST", "/api/v1/shares", token, map[string]any{"snapshot": snapshot, "expiresInSec": exp}, &raw)
	if err == nil && res.StatusCode != http.StatusCreated {
		t.Fatalf("create share answered %d, want 201", res.StatusCode)
	}
	return decodeProto[sharev1.Share](t, raw), err
}

func (r restAPI) getShare(t *testing.T, token, slug string) (*sharev1.Share, error) {
	var raw json.RawMessage
	_, err := r.call(t, "GET", "/api/v1/shares/"+slug, token, nil, &raw)
	return decodeProto[sharev1.Share](t, raw), err
}

func (r restAPI) revokeShare(t *testing.T, token, slug string) error {
	_, err := r.call(t, "DELETE", "/api/v1/shares/"+slug, token, nil, nil)
	return err
}

func (r restAPI) logout(t *testing.T, token string) error {
	_, err := r.call(t, "POST", "/api/v1/auth/logout", token, map[string]any{}, nil)
	return err
}

// ---- assertions ----

func wantCode(t *testing.T, err error, want codes.Code) *status.Status {
	t.Helper()
	st, _ := status.FromError(err)
	if st.Code() != want {
		t.Fatalf("got %v (%q), want %v", st.Code(), st.Message(), want)
	}
	return st
}

// wantField checks an INVALID_ARGUMENT names field in a BadRequest detail.
func wantField(t *testing.T, err error, field string) {
	t.Helper()
	st := wantCode(t, err, codes.InvalidArgument)
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				if v.GetField() == field && v.GetDescription() != "" {
					return
				}
			}
		}
	}
	t.Fatalf("no BadRequest violation for %q in %v", field, st.Details())
}

func retryInfo(t *testing.T, err error) time.Duration {
	t.Helper()
	st := wantCode(t, err, codes.ResourceExhausted)
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			return ri.GetRetryDelay().AsDuration()
		}
	}
	t.Fatalf("no RetryInfo in %v", st.Details())
	return 0
}

// noLeak fails when an answer carries internal detail.
func noLeak(t *testing.T, body string) {
	t.Helper()
	for _, bad := range []string{"storage:", "bolt", "pgx", "SQLSTATE", "goroutine", os.TempDir()} {
		if strings.Contains(body, bad) {
			t.Fatalf("answer leaks %q: %s", bad, body)
		}
	}
}
