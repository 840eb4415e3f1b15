package app_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"

	sharev1 "github.com/apiplatform/platform/gen/go/share/v1"
	"github.com/apiplatform/platform/server/app"
)

// signedAPI is the signed share operations over one public surface.
type signedAPI interface {
	name() string
	create(t *testing.T, token string, expiresInSec int64, singleUse bool) (*sharev1.SignedShare, error)
	list(t *testing.T, token string, size int32, pageToken string) (*sharev1.ListSignedSharesResponse, error)
	revoke(t *testing.T, token, id string) error
	// page opens a signed link's page: its HTML, or the error (over REST
	// with the HTTP status it came with).
	page(t *testing.T, tok string) (html string, httpStatus int, err error)
}

type signedGRPC struct{ p *platform }

func (signedGRPC) name() string { return "grpc" }

func (g signedGRPC) client() sharev1.ShareServiceClient {
	return sharev1.NewShareServiceClient(g.p.conn)
}

func (g signedGRPC) create(t *testing.T, token string, exp int64, single bool) (*sharev1.SignedShare, error) {
	res, err := g.client().CreateSignedShare(grpcAPI{g.p}.ctx(token), &sharev1.CreateSignedShareRequest{ExpiresInSec: exp, SingleUse: single})
	return res.GetSignedShare(), err
}

func (g signedGRPC) list(t *testing.T, token string, size int32, pageToken string) (*sharev1.ListSignedSharesResponse, error) {
	return g.client().ListSignedShares(grpcAPI{g.p}.ctx(token), &sharev1.ListSignedSharesRequest{PageSize: size, PageToken: pageToken})
}

func (g signedGRPC) revoke(t *testing.T, token, id string) error {
	_, err := g.client().RevokeSignedShare(grpcAPI{g.p}.ctx(token), &sharev1.RevokeSignedShareRequest{Id: id})
	return err
}

func (g signedGRPC) page(t *testing.T, tok string) (string, int, error) {
	body, err := g.client().GetSignedSharePage(grpcAPI{g.p}.ctx(""), &sharev1.GetSignedSharePageRequest{Token: tok})
	return string(body.GetData()), 0, err
}

type signedREST struct{ r restAPI }

func (signedREST) name() string { return "rest" }

func (s signedREST) create(t *testing.T, token string, exp int64, single bool) (*sharev1.SignedShare, error) {
	var raw json.RawMessage
	res, err := s.r.call(t, "POST", "/api/v1/signed-shares", token, map[string]any{"expiresInSec": exp, "singleUse": single}, &raw)
	if err == nil && res.StatusCode != http.StatusCreated {
		t.Fatalf("create signed share answered %d, want 201", res.StatusCode)
	}
	return decodeProto[sharev1.SignedShare](t, raw), err
}

func (s signedREST) list(t *testing.T, token string, size int32, pageToken string) (*sharev1.ListSignedSharesResponse, error) {
	var raw json.RawMessage
	q := url.Values{"pageSize": {fmt.Sprint(size)}, "pageToken": {pageToken}}
	_, err := s.r.call(t, "GET", "/api/v1/signed-shares?"+q.Encode(), token, nil, &raw)
	out := decodeProto[sharev1.ListSignedSharesResponse](t, raw)
	if out == nil {
		out = &sharev1.ListSignedSharesResponse{}
	}
	return out, err
}

func (s signedREST) revoke(t *testing.T, token, id string) error {
	_, err := s.r.call(t, "DELETE", "/api/v1/signed-shares/"+url.PathEscape(id), token, nil, nil)
	return err
}

func (s signedREST) page(t *testing.T, tok string) (string, int, error) {
	res, b := s.r.do(t, "GET", "/s/t/"+url.PathEscape(tok), "", nil)
	if res.StatusCode == http.StatusOK {
		if cc := res.Header.Get("Cache-Control"); cc != "no-store" {
			t.Fatalf("signed page Cache-Control = %q, want no-store", cc)
		}
		if !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") || res.Header.Get("Content-Security-Policy") == "" {
			t.Fatalf("signed page headers: %v", res.Header)
		}
		return string(b), res.StatusCode, nil
	}
	// A 410 is a NOT_FOUND status: decode it as such.
	var st struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal(b, &st); err != nil || st.Code == 0 {
		t.Fatalf("HTTP %d with a body that is not a status: %s", res.StatusCode, b)
	}
	if res.StatusCode == http.StatusGone {
		if codes.Code(st.Code) != codes.NotFound {
			t.Fatalf("410 carries %v", codes.Code(st.Code))
		}
		return "", res.StatusCode, restGone(t, b)
	}
	return "", res.StatusCode, restError(t, res, b)
}

// restGone turns a 410 body back into its status (restError insists on the
// code's default HTTP status).
func restGone(t *testing.T, b []byte) error {
	t.Helper()
	res := &http.Response{StatusCode: http.StatusNotFound}
	return restError(t, res, b)
}

func signedClients(p *platform) []signedAPI {
	return []signedAPI{signedGRPC{p}, signedREST{newREST(p)}}
}

// wantGone checks a page was refused as no longer available, for why.
func wantGone(t *testing.T, status int, err error, state string) {
	t.Helper()
	st := wantCode(t, err, codes.NotFound)
	if status != 0 && status != http.StatusGone {
		t.Fatalf("HTTP %d, want 410", status)
	}
	for _, d := range st.Details() {
		if ei, ok := d.(*errdetails.ErrorInfo); ok && ei.GetReason() == "GONE" && ei.GetMetadata()["state"] == state {
			return
		}
	}
	t.Fatalf("refusal %q lacks ErrorInfo GONE state=%s: %v", st.Message(), state, st.Details())
}

func wantPage(t *testing.T, c signedAPI, tok, hex string) {
	t.Helper()
	html, _, err := c.page(t, tok)
	if err != nil {
		t.Fatalf("page: %v", err)
	}
	if !strings.Contains(html, "<code>"+hex+"</code>") {
		t.Fatalf("page does not show %s: %.300s", hex, html)
	}
}

// Signed share links through gRPC and REST on both engines: created (201,
// the URL under /s/t/), the page shows the colour, listed in pages,
// revoked by the owner only, single-use links open once, expiry, bad
// input named, and account deletion takes the links with it.
func TestSignedShares(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		p := start(t, b, nil)
		for _, c := range signedClients(p) {
			t.Run(c.name(), func(t *testing.T) {
				r := newREST(p)
				_, owner := r.guest(t)
				if _, err := r.setFavorite(t, owner, "rebeccapurple", ""); err != nil {
					t.Fatal(err)
				}
				l, err := c.create(t, owner, 3600, false)
				if err != nil {
					t.Fatal(err)
				}
				if l.GetHex() != "#663399" || l.GetUrl() != p.srv.PublicBaseURL()+"/s/t/"+l.GetToken() || len(l.GetId()) != 22 ||
					l.GetSingleUse() || l.GetRevoked() || l.GetExpireTime().AsTime().Sub(l.GetCreateTime().AsTime()) != time.Hour {
					t.Fatalf("created %v", l)
				}
				for range 2 {
					wantPage(t, c, l.GetToken(), "#663399")
				}
				// The link keeps the colour it was made with.
				if _, err := r.setFavorite(t, owner, "teal", ""); err != nil {
					t.Fatal(err)
				}
				wantPage(t, c, l.GetToken(), "#663399")

				// Someone else may not revoke it.
				_, stranger := r.guest(t)
				wantCode(t, c.revoke(t, stranger, l.GetId()), codes.PermissionDenied)
				wantPage(t, c, l.GetToken(), "#663399")

				// Single use: the first view uses it up.
				once, err := c.create(t, owner, 0, true)
				if err != nil {
					t.Fatal(err)
				}
				if !once.GetSingleUse() || once.GetHex() != "#008080" || once.GetExpireTime().AsTime().Sub(once.GetCreateTime().AsTime()) != 24*time.Hour {
					t.Fatalf("single-use link %v", once)
				}
				wantPage(t, c, once.GetToken(), "#008080")
				_, code, err := c.page(t, once.GetToken())
				wantGone(t, code, err, "used")

				// Listing, newest first, in pages; the owner sees the state.
				third, err := c.create(t, owner, 60, false)
				if err != nil {
					t.Fatal(err)
				}
				first, err := c.list(t, owner, 2, "")
				if err != nil {
					t.Fatal(err)
				}
				if len(first.GetSignedShares()) != 2 || first.GetSignedShares()[0].GetId() != third.GetId() ||
					first.GetSignedShares()[1].GetId() != once.GetId() || first.GetSignedShares()[1].GetUseTime() == nil || first.GetNextPageToken() == "" {
					t.Fatalf("first page %v", first)
				}
				second, err := c.list(t, owner, 2, first.GetNextPageToken())
				if err != nil {
					t.Fatal(err)
				}
				if len(second.GetSignedShares()) != 1 || second.GetSignedShares()[0].GetId() != l.GetId() || second.GetNextPageToken() != "" {
					t.Fatalf("second page %v", second)
				}
				// A listed URL opens the same page.
				wantPage(t, c, second.GetSignedShares()[0].GetToken(), "#663399")
				if others, err := c.list(t, stranger, 0, ""); err != nil || len(others.GetSignedShares()) != 0 {
					t.Fatalf("stranger lists %v, %v", others, err)
				}

				// Revoked: refused at once; revoking again is fine.
				if err := c.revoke(t, owner, l.GetId()); err != nil {
					t.Fatal(err)
				}
				_, code, err = c.page(t, l.GetToken())
				wantGone(t, code, err, "revoked")
				if err := c.revoke(t, owner, l.GetId()); err != nil {
					t.Fatalf("second revoke: %v", err)
				}
				if got, _ := c.list(t, owner, 10, ""); !got.GetSignedShares()[2].GetRevoked() {
					t.Fatalf("listing does not show the revocation: %v", got)
				}

				// Expiry: a one-second link is refused from its expiry on.
				soon, err := c.create(t, owner, 1, false)
				if err != nil {
					t.Fatal(err)
				}
				expires := soon.GetExpireTime().AsTime()
				eventually(t, 10*time.Second, func() error {
					_, code, err := c.page(t, soon.GetToken())
					if err == nil {
						if time.Now().After(expires.Add(time.Second)) {
							t.Fatalf("page still served %v after its expiry", time.Since(expires))
						}
						return errors.New("not expired yet")
					}
					wantGone(t, code, err, "expired")
					return nil
				})

				// Bad input: named, nothing created.
				before, _ := c.list(t, owner, 100, "")
				for _, exp := range []int64{-1, 30*24*3600 + 1} {
					_, err := c.create(t, owner, exp, false)
					wantField(t, err, "expiresInSec")
				}
				if after, _ := c.list(t, owner, 100, ""); len(after.GetSignedShares()) != len(before.GetSignedShares()) {
					t.Fatal("a refused create stored a link")
				}
				wantField(t, c.revoke(t, owner, "not an id"), "id")
				wantCode(t, c.revoke(t, owner, strings.Repeat("A", 22)), codes.NotFound)
				_, _, err = c.page(t, "not-a-token")
				wantField(t, err, "token")
				// Well formed, not signed by this server: 404.
				payload, sig, _ := strings.Cut(third.GetToken(), ".")
				forged := payload + "." + strings.Repeat("A", len(sig))
				_, code, err = c.page(t, forged)
				wantCode(t, err, codes.NotFound)
				if code != 0 && code != http.StatusNotFound {
					t.Fatalf("forged token: HTTP %d, want 404", code)
				}
				_, err = c.create(t, "", 60, false)
				wantCode(t, err, codes.Unauthenticated)

				// Deleting the account revokes its links and forgets them.
				name := randomName("signed")
				_, member, err := r.register(t, "", name, "a long enough password")
				if err != nil {
					t.Fatal(err)
				}
				if _, err := r.setFavorite(t, member, "gold", ""); err != nil {
					t.Fatal(err)
				}
				kept, err := c.create(t, member, 3600, false)
				if err != nil {
					t.Fatal(err)
				}
				wantPage(t, c, kept.GetToken(), "#FFD700")
				if err := deleteAccount(t, p, c.name(), member, "a long enough password"); err != nil {
					t.Fatal(err)
				}
				_, code, err = c.page(t, kept.GetToken())
				wantGone(t, code, err, "revoked")
			})
		}
	})
}

// The page of a signed link for a browser: refusals are small pages with
// the right status, never JSON.
func TestSignedSharePageForPeople(t *testing.T) {
	p := start(t, embeddedBackend, nil)
	r := newREST(p)
	_, owner := r.guest(t)
	if _, err := r.setFavorite(t, owner, "coral", ""); err != nil {
		t.Fatal(err)
	}
	l, err := signedREST{r}.create(t, owner, 3600, true)
	if err != nil {
		t.Fatal(err)
	}
	accept := []string{"Accept", "text/html,application/xhtml+xml"}
	res, body := r.do(t, "GET", "/s/t/"+l.GetToken(), "", nil, accept...)
	if res.StatusCode != http.StatusOK || !strings.Contains(string(body), "#FF7F50") {
		t.Fatalf("first view: %d %.200s", res.StatusCode, body)
	}
	for _, tc := range []struct {
		path string
		want int
		text string
	}{
		{"/s/t/" + l.GetToken(), http.StatusGone, "No longer available"},
		{"/s/t/nonsense", http.StatusBadRequest, ""},
		{"/s/t/" + strings.Repeat("A", 20) + "." + strings.Repeat("B", 43), http.StatusNotFound, "Not found"},
	} {
		res, body := r.do(t, "GET", tc.path, "", nil, accept...)
		if res.StatusCode != tc.want || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") || !strings.Contains(string(body), tc.text) {
			t.Fatalf("%s: %d %s %.200s", tc.path, res.StatusCode, res.Header.Get("Content-Type"), body)
		}
	}
}

// signedMemoryChecks counts signed link views checked against revocations
// without a database read.
const signedMemoryChecks = `share_signed_link_checks_total{result="memory"}`

// A revocation on replica A is refused on replica B at the very next view,
// although B checks revocations from memory in the steady state: with the
// bus up, and with Redis killed between the two calls (B then reads the
// database). A single-use link opened on B is refused on A, and a replica
// started after the revocation refuses the link from memory.
func TestSignedShareRevokedOnEveryReplica(t *testing.T) {
	for _, redisDown := range []bool{false, true} {
		name := map[bool]string{false: "bus", true: "redis killed"}[redisDown]
		t.Run(name, func(t *testing.T) {
			rs := startRedis(t)
			cfgs := replicaConfigs(t, "region-a", "region-b")
			for i := range cfgs {
				cfgs[i].RedisURL = rs.url
			}
			cfgs[1].MetricsAddr = "127.0.0.1:0"
			a, b := startConfig(t, cfgs[0]), startConfig(t, cfgs[1])
			for i, onA := range signedClients(a) {
				onB := signedClients(b)[i]
				t.Run(onA.name(), func(t *testing.T) {
					r := newREST(a)
					_, owner := r.guest(t)
					if _, err := r.setFavorite(t, owner, "orchid", ""); err != nil {
						t.Fatal(err)
					}
					l, err := onA.create(t, owner, 3600, false)
					if err != nil {
						t.Fatal(err)
					}
					// B answers from memory (once it has caught up).
					untilCounted(t, b, signedMemoryChecks, "B did not check the link in memory", func() {
						wantPage(t, onB, l.GetToken(), "#DA70D6")
					})
					if redisDown {
						rs.stop(t)
					}
					if err := onA.revoke(t, owner, l.GetId()); err != nil {
						t.Fatalf("revoke on A: %v", err)
					}
					_, code, err := onB.page(t, l.GetToken())
					wantGone(t, code, err, "revoked")

					once, err := onA.create(t, owner, 3600, true)
					if err != nil {
						t.Fatal(err)
					}
					wantPage(t, onB, once.GetToken(), "#DA70D6")
					_, code, err = onA.page(t, once.GetToken())
					wantGone(t, code, err, "used")
					if redisDown {
						rs.start(t)
						return
					}

					// A replica started after the revocation loads it: it
					// refuses the link from memory.
					cfg := cfgs[0]
					cfg.Region, cfg.MetricsAddr = "region-c", "127.0.0.1:0"
					c := startConfig(t, cfg)
					onC := signedClients(c)[i]
					untilCounted(t, c, signedMemoryChecks, "C did not refuse the link from memory", func() {
						_, code, err := onC.page(t, l.GetToken())
						wantGone(t, code, err, "revoked")
					})
				})
			}
		})
	}
}

// Key rotation with --share-link-keys: a link signed with the old key opens
// while that key is still listed after the new one (which signs new
// links), and is refused as unknown (404) once it is dropped.
func TestSignedShareKeyRotation(t *testing.T) {
	oldKey, newKey := strings.Repeat("o", 32), strings.Repeat("n", 32)
	cfg := testConfig(t)
	cfg.Share.LinkKeys = []string{oldKey}
	p := startConfig(t, cfg)
	r := newREST(p)
	_, owner := r.guest(t)
	if _, err := r.setFavorite(t, owner, "navy", ""); err != nil {
		t.Fatal(err)
	}
	old, err := signedREST{r}.create(t, owner, 3600, false)
	if err != nil {
		t.Fatal(err)
	}
	restart := func(keys ...string) (*platform, restAPI) {
		t.Helper()
		if err := p.srv.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		cfg.Share.LinkKeys = keys
		p = startConfig(t, cfg)
		return p, newREST(p)
	}

	p, r = restart(newKey, oldKey)
	wantPage(t, signedREST{r}, old.GetToken(), "#000080")
	_, owner = r.guest(t)
	if _, err := r.setFavorite(t, owner, "navy", ""); err != nil {
		t.Fatal(err)
	}
	fresh, err := signedREST{r}.create(t, owner, 3600, false)
	if err != nil {
		t.Fatal(err)
	}
	p, r = restart(newKey)
	wantPage(t, signedREST{r}, fresh.GetToken(), "#000080")
	_, code, err := signedREST{r}.page(t, old.GetToken())
	wantCode(t, err, codes.NotFound)
	if code != http.StatusNotFound {
		t.Fatalf("token of a dropped key: HTTP %d, want 404", code)
	}

	// A key too short to be safe stops the server from starting.
	bad := testConfig(t)
	bad.Share.LinkKeys = []string{"short"}
	if _, err := app.New(context.Background(), bad); err == nil || !strings.Contains(err.Error(), "at least 32") {
		t.Fatalf("short key accepted: %v", err)
	}
}
