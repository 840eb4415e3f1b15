package app_test

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	favoritev1 "github.com/apiplatform/platform/gen/go/favorite/v1"
	identityv1 "github.com/apiplatform/platform/gen/go/identity/v1"
	"github.com/apiplatform/platform/server/app"
	"github.com/apiplatform/platform/server/platform/ratelimit"
)

// keyClient manages API keys and calls a read and a write RPC, over one
// surface.
type keyClient interface {
	name() string
	create(t *testing.T, session, name string, scopes ...string) (id, secret string, err error)
	list(t *testing.T, session string) ([]*identityv1.ApiKey, error)
	revoke(t *testing.T, session, id string) error
	write(t *testing.T, token, color string) error
	read(t *testing.T, token string) (string, error)
}

func keyClients(p *platform) []keyClient { return []keyClient{keyGRPC{p}, keyREST{newREST(p)}} }

type keyGRPC struct{ p *platform }

func (g keyGRPC) name() string { return "grpc" }
func (g keyGRPC) id() identityv1.IdentityServiceClient {
	return identityv1.NewIdentityServiceClient(g.p.conn)
}
func (g keyGRPC) fav() favoritev1.FavoriteServiceClient {
	return favoritev1.NewFavoriteServiceClient(g.p.conn)
}

func (g keyGRPC) create(t *testing.T, session, name string, scopes ...string) (string, string, error) {
	res, err := g.id().CreateApiKey(grpcAPI{g.p}.ctx(session), &identityv1.CreateApiKeyRequest{Name: name, Scopes: scopes})
	return res.GetApiKey().GetKeyId(), res.GetSecret(), err
}

func (g keyGRPC) list(t *testing.T, session string) ([]*identityv1.ApiKey, error) {
	res, err := g.id().ListApiKeys(grpcAPI{g.p}.ctx(session), &identityv1.ListApiKeysRequest{})
	return res.GetApiKeys(), err
}

func (g keyGRPC) revoke(t *testing.T, session, id string) error {
	_, err := g.id().RevokeApiKey(grpcAPI{g.p}.ctx(session), &identityv1.RevokeApiKeyRequest{KeyId: id})
	return err
}

func (g keyGRPC) write(t *testing.T, token, color string) error {
	_, err := g.fav().SetFavorite(grpcAPI{g.p}.ctx(token), &favoritev1.SetFavoriteRequest{Color: color})
	return err
}

func (g keyGRPC) read(t *testing.T, token string) (string, error) {
	res, err := g.fav().GetFavorite(grpcAPI{g.p}.ctx(token), &favoritev1.GetFavoriteRequest{})
	return res.GetFavorite().GetHex(), err
}

type keyREST struct{ r restAPI }

func (r keyREST) name() string { return "rest" }

func (r keyREST) create(t *testing.T, session, name string, scopes ...string) (string, string, error) {
	var out struct {
		APIKey struct {
			KeyID string `json:"keyId"`
		} `json:"apiKey"`
		Secret string `json:"secret"`
	}
	res, err := r.r.call(t, "POST", "/api/v1/auth/keys", session, map[string]any{"name": name, "scopes": scopes}, &out)
	if err == nil && res.StatusCode != 201 {
		t.Fatalf("create key: HTTP %d, want 201", res.StatusCode)
	}
	return out.APIKey.KeyID, out.Secret, err
}

func (r keyREST) list(t *testing.T, session string) ([]*identityv1.ApiKey, error) {
	var out struct {
		APIKeys []struct {
			KeyID  string   `json:"keyId"`
			Name   string   `json:"name"`
			Prefix string   `json:"prefix"`
			Scopes []string `json:"scopes"`
		} `json:"apiKeys"`
	}
	_, err := r.r.call(t, "GET", "/api/v1/auth/keys", session, nil, &out)
	var keys []*identityv1.ApiKey
	for _, k := range out.APIKeys {
		keys = append(keys, &identityv1.ApiKey{KeyId: k.KeyID, Name: k.Name, Prefix: k.Prefix, Scopes: k.Scopes})
	}
	return keys, err
}

func (r keyREST) revoke(t *testing.T, session, id string) error {
	_, err := r.r.call(t, "DELETE", "/api/v1/auth/keys/"+id, session, nil, nil)
	return err
}

func (r keyREST) write(t *testing.T, token, color string) error {
	_, err := r.r.call(t, "PUT", "/api/v1/favorite", token, map[string]any{"color": color}, nil)
	return err
}

func (r keyREST) read(t *testing.T, token string) (string, error) {
	var out struct {
		Hex string `json:"hex"`
	}
	_, err := r.r.call(t, "GET", "/api/v1/favorite", token, nil, &out)
	return out.Hex, err
}

// An API key, over gRPC and REST: created with a session, it calls a read
// and a write RPC as `authorization: Bearer ak_...`; a read-only key is
// refused the write; the list shows both without secrets; a key cannot
// mint keys; revoked on replica A, the key is refused (401) at the very
// next call on replica B, which had it in its cache (on the embedded
// store, one server plays both).
func TestAPIKeyLifecycle(t *testing.T) {
	t.Run("embedded", func(t *testing.T) {
		p := start(t, embeddedBackend, nil)
		testAPIKeyLifecycle(t, p, p)
	})
	t.Run("postgres+redis replicas", func(t *testing.T) {
		cfgs := replicaConfigs(t, "region-a", "region-b")
		testAPIKeyLifecycle(t, startConfig(t, cfgs[0]), startConfig(t, cfgs[1]))
	})
}

func testAPIKeyLifecycle(t *testing.T, a, b *platform) {
	for i, onA := range keyClients(a) {
		onB := keyClients(b)[i]
		t.Run(onA.name(), func(t *testing.T) {
			session, err := idClients(a)[i].register(t, "", randomName("key"), "a long enough password")
			if err != nil {
				t.Fatal(err)
			}
			tok := session.GetAccessToken()
			rwID, rw, err := onA.create(t, tok, "deploy bot", "favorite:write")
			if err != nil {
				t.Fatal(err)
			}
			roID, ro, err := onA.create(t, tok, "dashboard", "favorite:read")
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(rw, "ak_") || !strings.HasPrefix(ro, "ak_") || rw == ro {
				t.Fatalf("secrets %q, %q: want distinct ak_ keys", rw, ro)
			}

			if err := onA.write(t, rw, "#123456"); err != nil {
				t.Fatalf("write with a read-write key: %v", err)
			}
			if c, err := onB.read(t, rw); err != nil || c != "#123456" {
				t.Fatalf("read with a read-write key on B = %q, %v", c, err)
			}
			if c, err := onA.read(t, ro); err != nil || c != "#123456" {
				t.Fatalf("read with a read-only key = %q, %v", c, err)
			}
			wantCode(t, onA.write(t, ro, "#654321"), codes.PermissionDenied)
			wantCode(t, onA.write(t, rw+"x", "#654321"), codes.Unauthenticated)
			if _, _, err := onA.create(t, rw, "minted", "favorite:write"); err == nil {
				t.Fatal("an API key created a key")
			}
			_, _, err = onA.create(t, tok, "bad", "favorite:admin")
			wantCode(t, err, codes.InvalidArgument)

			keys, err := onA.list(t, tok)
			if err != nil || len(keys) != 2 {
				t.Fatalf("list = %v, %v; want 2 keys", keys, err)
			}
			for _, k := range keys {
				want := map[string]string{rwID: rw, roID: ro}[k.GetKeyId()]
				if want == "" || !strings.HasPrefix(want, k.GetPrefix()) || len(k.GetPrefix()) != 11 {
					t.Fatalf("listed key %v does not match a created one", k)
				}
			}

			if err := onA.revoke(t, tok, rwID); err != nil {
				t.Fatal(err)
			}
			_, err = onB.read(t, rw)
			wantCode(t, err, codes.Unauthenticated)
			wantCode(t, onA.write(t, rw, "#000000"), codes.Unauthenticated)
			if c, err := onB.read(t, ro); err != nil || c != "#123456" {
				t.Fatalf("the other key after the revocation = %q, %v", c, err)
			}
			wantCode(t, onA.revoke(t, tok, rwID), codes.NotFound)
		})
	}
}

// Each API key has a rate limit of its own: over it, calls are refused
// with RESOURCE_EXHAUSTED (429 with Retry-After) while another key of the
// same account still works.
func TestAPIKeyRateLimit(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		p := start(t, b, func(cfg *app.Config) {
			cfg.Identity.APIKeyLimit = ratelimit.Limit{Rate: 1, Period: time.Hour, Burst: 3}
		})
		for i, c := range keyClients(p) {
			t.Run(c.name(), func(t *testing.T) {
				session, err := idClients(p)[i].register(t, "", randomName("lim"), "a long enough password")
				if err != nil {
					t.Fatal(err)
				}
				_, busy, err := c.create(t, session.GetAccessToken(), "busy", "favorite:read")
				if err != nil {
					t.Fatal(err)
				}
				_, calm, err := c.create(t, session.GetAccessToken(), "calm", "favorite:read")
				if err != nil {
					t.Fatal(err)
				}
				for range 3 {
					if _, err := c.read(t, busy); status.Code(err) != codes.NotFound {
						t.Fatalf("within the limit: %v, want NotFound (no favorite yet)", err)
					}
				}
				_, err = c.read(t, busy)
				if d := retryInfo(t, err); d <= 0 {
					t.Fatalf("over the limit: retry delay %v", d)
				}
				if _, err := c.read(t, calm); status.Code(err) != codes.NotFound {
					t.Fatalf("another key: %v", err)
				}
			})
		}
	})
}
