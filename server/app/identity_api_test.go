package app_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/netip"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	identityv1 "github.com/apiplatform/platform/gen/go/identity/v1"
	"github.com/apiplatform/platform/server/app"
)

// testGatewaySecret lets gRPC tests speak for any client address, as the
// gateway does (x-client-addr is believed only with the secret).
const testGatewaySecret = "test-gateway-secret"

// addrConfig lets tests choose their client address: over REST through
// X-Forwarded-For from a trusted proxy (the test client, 127.0.0.1), over
// gRPC through x-client-addr with the gateway secret.
func addrConfig(cfg *app.Config) {
	cfg.GatewaySecret = testGatewaySecret
	cfg.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
}

func grpcFrom(addr string) []string {
	if addr == "" {
		return nil
	}
	return []string{"x-client-addr", addr, "x-gateway-secret", testGatewaySecret}
}

func restFrom(addr string) []string {
	if addr == "" {
		return nil
	}
	return []string{"X-Forwarded-For", addr}
}

// randomV4 is an address no other test (or earlier run on the same
// Redis) uses.
func randomV4() string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("10.%d.%d.%d", b[0], b[1], b[2])
}

// randomV6Net returns host addresses of one random /64.
func randomV6Net() func(host int) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return func(host int) string {
		return fmt.Sprintf("2001:db8:%x%02x:%x%02x::%x", b[0], b[1], b[2], b[3], host+1)
	}
}

func randomName(prefix string) string {
	var b [5]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s%x", prefix, b)
}

// idClient is identity over one public surface, from a chosen address.
type idClient interface {
	name() string
	guest(t *testing.T, from string) error
	register(t *testing.T, from, user, pw string) (*identityv1.Session, error)
	login(t *testing.T, from, user, pw string) (*identityv1.Session, error)
	refresh(t *testing.T, refreshToken string) (*identityv1.Session, error)
	me(t *testing.T, token string) (*identityv1.User, error)
}

func idClients(p *platform) []idClient { return []idClient{idGRPC{p}, idREST{newREST(p)}} }

type idGRPC struct{ p *platform }

func (g idGRPC) name() string { return "grpc" }
func (g idGRPC) c() identityv1.IdentityServiceClient {
	return identityv1.NewIdentityServiceClient(g.p.conn)
}
func (g idGRPC) ctx(token, from string) context.Context {
	return grpcAPI{g.p}.ctx(token, grpcFrom(from)...)
}

func (g idGRPC) guest(t *testing.T, from string) error {
	_, err := g.c().CreateGuest(g.ctx("", from), &identityv1.CreateGuestRequest{})
	return err
}

func (g idGRPC) register(t *testing.T, from, user, pw string) (*identityv1.Session, error) {
	res, err := g.c().Register(g.ctx("", from), &identityv1.RegisterRequest{Username: user, Password: pw})
	return res.GetSession(), err
}

func (g idGRPC) login(t *testing.T, from, user, pw string) (*identityv1.Session, error) {
	res, err := g.c().Login(g.ctx("", from), &identityv1.LoginRequest{Username: user, Password: pw})
	return res.GetSession(), err
}

func (g idGRPC) refresh(t *testing.T, rt string) (*identityv1.Session, error) {
	res, err := g.c().Refresh(g.ctx("", ""), &identityv1.RefreshRequest{RefreshToken: rt})
	return res.GetSession(), err
}

func (g idGRPC) me(t *testing.T, token string) (*identityv1.User, error) {
	res, err := g.c().GetMe(g.ctx(token, ""), &identityv1.GetMeRequest{})
	return res.GetUser(), err
}

type idREST struct{ r restAPI }

func (r idREST) name() string { return "rest" }

type restSessionOut struct {
	Session struct {
		AccessToken  string `json:"accessToken"`
		RefreshToken string `json:"refreshToken"`
	} `json:"session"`
	User struct {
		ID   string `json:"id"`
		Role string `json:"role"`
	} `json:"user"`
}

// post calls an identity route; a refusal for load must say when to retry.
func (r idREST) post(t *testing.T, path, token, from string, body any) (restSessionOut, error) {
	t.Helper()
	var out restSessionOut
	res, err := r.r.call(t, "POST", path, token, body, &out, restFrom(from)...)
	if status.Code(err) == codes.ResourceExhausted && res.Header.Get("Retry-After") == "" {
		t.Fatalf("%s: 429 without Retry-After", path)
	}
	return out, err
}

func (o restSessionOut) session() *identityv1.Session {
	return &identityv1.Session{AccessToken: o.Session.AccessToken, RefreshToken: o.Session.RefreshToken}
}

func (r idREST) guest(t *testing.T, from string) error {
	_, err := r.post(t, "/api/v1/auth/guest", "", from, map[string]any{})
	return err
}

func (r idREST) register(t *testing.T, from, user, pw string) (*identityv1.Session, error) {
	out, err := r.post(t, "/api/v1/auth/register", "", from, map[string]any{"username": user, "password": pw})
	return out.session(), err
}

func (r idREST) login(t *testing.T, from, user, pw string) (*identityv1.Session, error) {
	out, err := r.post(t, "/api/v1/auth/login", "", from, map[string]any{"username": user, "password": pw})
	return out.session(), err
}

func (r idREST) refresh(t *testing.T, rt string) (*identityv1.Session, error) {
	out, err := r.post(t, "/api/v1/auth/refresh", "", "", map[string]any{"refreshToken": rt})
	return out.session(), err
}

func (r idREST) me(t *testing.T, token string) (*identityv1.User, error) {
	var out restSessionOut
	_, err := r.r.call(t, "GET", "/api/v1/auth/me", token, nil, &out)
	role := identityv1.Role_ROLE_USER
	if out.User.Role == "ROLE_ADMIN" {
		role = identityv1.Role_ROLE_ADMIN
	}
	return &identityv1.User{Id: out.User.ID, Role: role}, err
}
