package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	canvasv1 "github.com/apiplatform/platform/gen/go/canvas/v1"
	favoritev1 "github.com/apiplatform/platform/gen/go/favorite/v1"
	identityv1 "github.com/apiplatform/platform/gen/go/identity/v1"
	sharev1 "github.com/apiplatform/platform/gen/go/share/v1"
	shortenerv1 "github.com/apiplatform/platform/gen/go/shortener/v1"
	votev1 "github.com/apiplatform/platform/gen/go/vote/v1"
	"github.com/apiplatform/platform/server/app"
)

// The hostile-client suite: one table of requests a hostile or merely
// unusual client sends, run through REST (and gRPC where the RPC exists) on
// every backend. Each row asserts its status, that no answer is a 5xx, and
// that nothing stored changed (the owner's links, favourite and shares, the
// election, the canvas, and the accounts rows try to create).

// hostileFix is what the rows act on; paths and bodies name it with
// placeholders ({L} a public link, {P} a password-protected one, {D} a
// deleted one, {S} a live share, {R} a revoked one, {E} an election, {O}
// the owner's id, {BASE} the public base URL).
type hostileFix struct {
	p                *platform
	owner, admin     string // bearer tokens
	ownerID          string
	L, P, D, S, R, E string
	replace          *strings.Replacer
}

const (
	hostileOrigin   = "https://integrator.example"
	hostileVictim   = "csrf_victim"
	hostilePassword = "correct-horse"
)

type hostileRow struct {
	name         string
	method, path string
	auth         string // "", "bearer", "cookie", "admin", "admin-cookie"
	ctype, body  string
	headers      []string
	want         int
	wantHeaders  []string // name, substring pairs
	wantBody     string
	// grpc, when set, is the same input through gRPC; it gets a context
	// with the row's bearer token (cookie rows: the owner's).
	grpc     func(ctx context.Context, f *hostileFix) error
	grpcWant codes.Code
}

func js(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func TestHostileClients(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		p := startCanvas(t, b, func(cfg *app.Config) {
			shortConfig(cfg)
			cfg.Edge.CORSOrigins = []string{hostileOrigin}
		})
		f := hostileFixture(t, p)
		rows := hostileRows(f)
		if len(rows) < 150 {
			t.Fatalf("%d rows, want at least 150", len(rows))
		}
		seen := map[string]bool{}
		for _, r := range rows {
			if seen[r.name] {
				t.Fatalf("two rows named %q", r.name)
			}
			seen[r.name] = true
			t.Run(r.name, func(t *testing.T) {
				before := hostileState(t, f)
				hostileREST(t, f, r)
				if r.grpc != nil {
					err := r.grpc(f.grpcCtx(r.auth), f)
					if got := status.Code(err); got != r.grpcWant {
						t.Errorf("gRPC: %v (%v), want %v", got, err, r.grpcWant)
					}
					if c := status.Code(err); c == codes.Internal || c == codes.Unknown || c == codes.DataLoss {
						t.Errorf("gRPC answered %v: %v", c, err)
					}
				}
				if after := hostileState(t, f); after != before {
					t.Errorf("stored state changed:\nbefore %s\nafter  %s", before, after)
				}
			})
		}
	})
}

func (f *hostileFix) grpcCtx(auth string) context.Context {
	tok := ""
	switch auth {
	case "bearer", "cookie":
		tok = f.owner
	case "admin", "admin-cookie":
		tok = f.admin
	}
	ctx := context.Background()
	if tok != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok)
	}
	return ctx
}

func hostileREST(t *testing.T, f *hostileFix, r hostileRow) {
	t.Helper()
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(f.replace.Replace(r.body))
	}
	req, err := http.NewRequest(r.method, f.p.base+f.replace.Replace(r.path), body)
	if err != nil {
		t.Fatal(err)
	}
	if r.ctype != "" {
		req.Header.Set("Content-Type", r.ctype)
	}
	switch r.auth {
	case "bearer":
		req.Header.Set("Authorization", "Bearer "+f.owner)
	case "admin":
		req.Header.Set("Authorization", "Bearer "+f.admin)
	case "cookie":
		req.Header.Set("Cookie", "session="+f.owner+"; refresh=r")
	case "admin-cookie":
		req.Header.Set("Cookie", "session="+f.admin)
	}
	for i := 0; i+1 < len(r.headers); i += 2 {
		req.Header.Set(r.headers[i], f.replace.Replace(r.headers[i+1]))
	}
	res, err := rawClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode >= 500 {
		t.Fatalf("REST %s %s: %d %.300s", r.method, r.path, res.StatusCode, b)
	}
	if res.StatusCode != r.want {
		t.Errorf("REST %s %s: %d %.300s, want %d", r.method, r.path, res.StatusCode, b, r.want)
	}
	for i := 0; i+1 < len(r.wantHeaders); i += 2 {
		if got := strings.Join(res.Header.Values(r.wantHeaders[i]), ", "); !strings.Contains(got, r.wantHeaders[i+1]) {
			t.Errorf("header %s = %q, want it to contain %q", r.wantHeaders[i], got, r.wantHeaders[i+1])
		}
	}
	if r.wantBody != "" && !strings.Contains(string(b), r.wantBody) {
		t.Errorf("body %.300q does not contain %q", b, r.wantBody)
	}
	noLeak(t, string(b))
	for _, internal := range []string{"x-http-", "x-client-", "x-gateway-", "grpc-"} {
		if strings.Contains(strings.ToLower(string(b)), internal) {
			t.Errorf("answer names internal metadata %q: %.300s", internal, b)
		}
	}
}

func hostileFixture(t *testing.T, p *platform) *hostileFix {
	t.Helper()
	g := grpcAPI{p}
	_, guest := g.guest(t)
	ownerID, owner, err := g.register(t, guest, "hostile_owner", "owner-password-1")
	if err != nil {
		t.Fatal(err)
	}
	_, admin := adminLogin(t, p)
	f := &hostileFix{p: p, owner: owner, admin: admin, ownerID: ownerID}
	ctx := f.grpcCtx("bearer")
	sc := shortenerv1.NewShortenerServiceClient(p.conn)
	mk := func(req *shortenerv1.CreateShortUrlRequest) string {
		res, err := sc.CreateShortUrl(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		return res.GetShortUrl().GetCode()
	}
	f.L = mk(&shortenerv1.CreateShortUrlRequest{LongUrl: "https://example.com/public"})
	f.P = mk(&shortenerv1.CreateShortUrlRequest{LongUrl: "https://example.com/guarded", Password: hostilePassword})
	f.D = mk(&shortenerv1.CreateShortUrlRequest{LongUrl: "https://example.com/deleted"})
	if _, err := sc.DeleteShortUrl(ctx, &shortenerv1.DeleteShortUrlRequest{Code: f.D}); err != nil {
		t.Fatal(err)
	}
	if _, err := g.setFavorite(t, owner, "#123456", ""); err != nil {
		t.Fatal(err)
	}
	live, err := g.createShare(t, owner, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	revoked, err := g.createShare(t, owner, true, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.revokeShare(t, owner, revoked.GetSlug()); err != nil {
		t.Fatal(err)
	}
	f.S, f.R = live.GetSlug(), revoked.GetSlug()
	el, err := votev1.NewVoteServiceClient(p.conn).CreateElection(f.grpcCtx("admin"), &votev1.CreateElectionRequest{
		Title: "Hostile", Candidates: []*votev1.Candidate{{CandidateId: "a", Name: "A"}, {CandidateId: "b", Name: "B"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	f.E = el.GetElection().GetElectionId()
	f.replace = strings.NewReplacer("{L}", f.L, "{P}", f.P, "{D}", f.D, "{S}", f.S, "{R}", f.R, "{E}", f.E, "{O}", f.ownerID, "{BASE}", p.base)
	return f
}

// hostileState is everything a row might change, as one comparable string.
func hostileState(t *testing.T, f *hostileFix) string {
	t.Helper()
	ctx, admin := f.grpcCtx("bearer"), f.grpcCtx("admin")
	var sb strings.Builder
	links, err := shortenerv1.NewShortenerServiceClient(f.p.conn).ListShortUrls(ctx, &shortenerv1.ListShortUrlsRequest{PageSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range links.GetShortUrls() {
		fmt.Fprintf(&sb, "link %s %s pw=%v exp=%v; ", l.GetCode(), l.GetLongUrl(), l.GetPasswordProtected(), l.GetExpireTime())
	}
	fav, err := favoritev1.NewFavoriteServiceClient(f.p.conn).GetFavorite(ctx, &favoritev1.GetFavoriteRequest{})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&sb, "favorite %s; ", fav.GetFavorite().GetHex())
	shares, err := sharev1.NewShareServiceClient(f.p.conn).ListShares(ctx, &sharev1.ListSharesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range shares.GetShares() {
		fmt.Fprintf(&sb, "share %s revoked=%v; ", s.GetSlug(), s.GetRevoked())
	}
	el, err := votev1.NewVoteServiceClient(f.p.conn).GetElection(admin, &votev1.GetElectionRequest{ElectionId: f.E})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&sb, "election %s %v %v; ", el.GetElection().GetTitle(), el.GetElection().GetState(), el.GetElection().GetCandidates())
	snap, err := canvasv1.NewCanvasServiceClient(f.p.conn).GetSnapshot(ctx, &canvasv1.GetSnapshotRequest{})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&sb, "canvas seq %d; ", snap.GetSeq())
	me, err := identityv1.NewIdentityServiceClient(f.p.conn).GetMe(ctx, &identityv1.GetMeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&sb, "me %s; ", me.GetUser().GetUsername())
	_, err = identityv1.NewIdentityServiceClient(f.p.conn).Login(context.Background(),
		&identityv1.LoginRequest{Username: hostileVictim, Password: "victim-password"})
	fmt.Fprintf(&sb, "victim account %v", err == nil)
	return sb.String()
}
