package app_test

import (
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	canvasv1 "github.com/apiplatform/platform/gen/go/canvas/v1"
	favoritev1 "github.com/apiplatform/platform/gen/go/favorite/v1"
	identityv1 "github.com/apiplatform/platform/gen/go/identity/v1"
	sharev1 "github.com/apiplatform/platform/gen/go/share/v1"
	shortenerv1 "github.com/apiplatform/platform/gen/go/shortener/v1"
	votev1 "github.com/apiplatform/platform/gen/go/vote/v1"
	"github.com/apiplatform/platform/server/app"
	"github.com/apiplatform/platform/server/canvas"
)

func deleteAccount(t *testing.T, p *platform, surface, token, password string) error {
	t.Helper()
	if surface == "grpc" {
		_, err := identityv1.NewIdentityServiceClient(p.conn).DeleteAccount(grpcAPI{p}.ctx(token), &identityv1.DeleteAccountRequest{Password: password})
		return err
	}
	res, err := newREST(p).call(t, "POST", "/api/v1/auth/me:delete", token, map[string]any{"password": password}, nil)
	if err == nil {
		// Browsers lose their cookies with the account.
		cleared := 0
		for _, c := range res.Cookies() {
			if (c.Name == "session" || c.Name == "refresh") && c.Value == "" && c.MaxAge < 0 {
				cleared++
			}
		}
		if cleared != 2 {
			t.Errorf("REST delete set cookies %v, want both cleared", res.Header.Values("Set-Cookie"))
		}
	}
	return err
}

func deleteConfig(cfg *app.Config) {
	voteConfig(cfg)
	cfg.Canvas = canvasConfig()
}

// Deleting an account, through gRPC and REST on both engines (on
// PostgreSQL + Redis, with the account's second session and its API key
// used on another replica): the favorite, shares and links are gone, the
// vote still counts but the audit no longer names the person, the canvas
// pixel stays without its author, and every session and key is refused at
// the very next call. Refused attempts (an API key, no password, a wrong
// one) change nothing.
func TestDeleteAccount(t *testing.T) {
	t.Run("embedded", func(t *testing.T) {
		p := start(t, embeddedBackend, deleteConfig)
		testDeleteAccount(t, p, p)
	})
	t.Run("postgres+redis replicas", func(t *testing.T) {
		cfgs := replicaConfigs(t, "region-a", "region-b")
		for i := range cfgs {
			deleteConfig(&cfgs[i])
		}
		testDeleteAccount(t, startConfig(t, cfgs[0]), startConfig(t, cfgs[1]))
	})
}

func testDeleteAccount(t *testing.T, a, b *platform) {
	env := newVoteEnv(t, a)
	ga, gb := grpcAPI{a}, grpcAPI{b}
	ida, idb := identityv1.NewIdentityServiceClient(a.conn), identityv1.NewIdentityServiceClient(b.conn)
	e := env.openElection(t, "red", "blue")
	_, other := env.voter(t)
	if _, err := votev1.NewVoteServiceClient(a.conn).CastVote(ga.ctx(other), &votev1.CastVoteRequest{ElectionId: e.GetElectionId(), CandidateId: "blue"}); err != nil {
		t.Fatal(err)
	}

	for i, surface := range []string{"grpc", "rest"} {
		t.Run(surface, func(t *testing.T) {
			name, pw := randomName("gone"), "a long enough password"
			reg, err := ida.Register(ga.ctx(""), &identityv1.RegisterRequest{Username: name, Password: pw})
			if err != nil {
				t.Fatal(err)
			}
			userID, s1 := reg.GetUser().GetId(), reg.GetSession().GetAccessToken()
			login, err := idb.Login(gb.ctx(""), &identityv1.LoginRequest{Username: name, Password: pw})
			if err != nil {
				t.Fatal(err)
			}
			s2 := login.GetSession()
			key, err := ida.CreateApiKey(ga.ctx(s1), &identityv1.CreateApiKeyRequest{Name: "backend", Scopes: []string{"*:write"}})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ga.setFavorite(t, s1, "#123456", ""); err != nil {
				t.Fatal(err)
			}
			var slugs []string
			for _, snapshot := range []bool{false, true} {
				sh, err := ga.createShare(t, s1, snapshot, 0)
				if err != nil {
					t.Fatal(err)
				}
				slugs = append(slugs, sh.GetSlug())
			}
			links := shortenerv1.NewShortenerServiceClient(a.conn)
			var codes_ []string
			for _, u := range []string{"https://example.com/one", "https://example.com/two"} {
				res, err := links.CreateShortUrl(ga.ctx(s1), &shortenerv1.CreateShortUrlRequest{LongUrl: u})
				if err != nil {
					t.Fatal(err)
				}
				codes_ = append(codes_, res.GetShortUrl().GetCode())
			}
			votes := votev1.NewVoteServiceClient(a.conn)
			if _, err := votes.CastVote(ga.ctx(s1), &votev1.CastVoteRequest{ElectionId: e.GetElectionId(), CandidateId: "red"}); err != nil {
				t.Fatal(err)
			}
			board := canvasv1.NewCanvasServiceClient(a.conn)
			x, y := int32(1+i), int32(1)
			placed, err := board.PlacePixel(ga.ctx(s1), &canvasv1.PlacePixelRequest{X: x, Y: y, Color: 3})
			if err != nil {
				t.Fatal(err)
			}
			// Both sessions and the key are in use on the second replica
			// (and so in its session cache).
			for _, tok := range []string{s1, s2.GetAccessToken(), key.GetSecret()} {
				if _, err := gb.getFavorite(t, tok); err != nil {
					t.Fatalf("before the deletion: %v", err)
				}
			}

			// Refused attempts change nothing.
			wantCode(t, deleteAccount(t, a, surface, key.GetSecret(), pw), codes.PermissionDenied)
			wantField(t, deleteAccount(t, a, surface, s1, ""), "password")
			wantCode(t, deleteAccount(t, a, surface, s1, "not the password"), codes.Unauthenticated)
			wantCode(t, deleteAccount(t, a, surface, "", pw), codes.Unauthenticated)
			if f, err := gb.getFavorite(t, s2.GetAccessToken()); err != nil || f.GetHex() != "#123456" {
				t.Fatalf("after refused deletions: %v, %v", f, err)
			}

			if err := deleteAccount(t, a, surface, s1, pw); err != nil {
				t.Fatal(err)
			}

			// Every session and the key, on both replicas, at once.
			for _, tok := range []string{s1, s2.GetAccessToken(), key.GetSecret()} {
				for _, g := range []grpcAPI{ga, gb} {
					_, err := g.getFavorite(t, tok)
					wantCode(t, err, codes.Unauthenticated)
				}
			}
			_, err = idb.Refresh(gb.ctx(""), &identityv1.RefreshRequest{RefreshToken: s2.GetRefreshToken()})
			wantCode(t, err, codes.Unauthenticated)
			_, err = idb.Login(gb.ctx(""), &identityv1.LoginRequest{Username: name, Password: pw})
			wantCode(t, err, codes.Unauthenticated)

			// The favorite, shares and links are gone.
			_, err = favoritev1.NewFavoriteServiceClient(b.conn).GetUserFavorite(gb.ctx(env.admin), &favoritev1.GetUserFavoriteRequest{UserId: userID})
			wantCode(t, err, codes.NotFound)
			for _, slug := range slugs {
				_, err := sharev1.NewShareServiceClient(b.conn).GetShare(gb.ctx(""), &sharev1.GetShareRequest{Slug: slug})
				wantCode(t, err, codes.NotFound)
				if res, _ := newREST(b).do(t, "GET", "/s/"+slug, "", nil); res.StatusCode != http.StatusNotFound {
					t.Errorf("share page %s after the deletion: %d", slug, res.StatusCode)
				}
			}
			for _, code := range codes_ {
				if res, _ := newREST(b).do(t, "GET", "/"+code, "", nil); res.StatusCode != http.StatusGone {
					t.Errorf("link %s after the deletion: %d", code, res.StatusCode)
				}
			}

			// The vote still counts; the audit no longer names the person.
			res, err := votes.GetResults(ga.ctx(""), &votev1.GetResultsRequest{ElectionId: e.GetElectionId()})
			if err != nil {
				t.Fatal(err)
			}
			if got := res.GetTally().GetTotalVotes(); got != int64(2+i) {
				t.Errorf("total votes after deleting voter %d: %d, want %d", i+1, got, 2+i)
			}
			audit, err := grpcVote{ga}.audit(t, env.admin, e.GetElectionId())
			if err != nil {
				t.Fatal(err)
			}
			red := 0
			for _, r := range audit {
				if r.GetUserId() == userID {
					t.Errorf("the audit still names the deleted user: %v", r)
				}
				if r.GetOutcome() == votev1.AuditOutcome_AUDIT_OUTCOME_ACCEPTED && r.GetCandidateId() == "red" {
					red++
				}
			}
			if red != i+1 {
				t.Errorf("accepted red votes in the audit: %d, want %d", red, i+1)
			}

			// The pixel stays, without its author.
			hist, err := board.ListPixelHistory(ga.ctx(env.admin), &canvasv1.ListPixelHistoryRequest{X: x, Y: y})
			if err != nil {
				t.Fatal(err)
			}
			if ps := hist.GetPlacements(); len(ps) != 1 || ps[0].GetSeq() != placed.GetSeq() || ps[0].GetColor() != 3 || ps[0].GetUserId() != canvas.NoAuthor {
				t.Errorf("pixel history after the deletion: %v", ps)
			}

			// The name is free again.
			if _, err := ida.Register(ga.ctx(""), &identityv1.RegisterRequest{Username: strings.ToUpper(name), Password: pw}); err != nil {
				t.Errorf("registering the deleted name again: %v", err)
			}
		})
	}

	// A guest has no password to give.
	_, guest := ga.guest(t)
	if _, err := ga.setFavorite(t, guest, "#abcdef", ""); err != nil {
		t.Fatal(err)
	}
	if err := deleteAccount(t, a, "rest", guest, ""); err != nil {
		t.Fatal(err)
	}
	_, err := gb.getFavorite(t, guest)
	wantCode(t, err, codes.Unauthenticated)
}
