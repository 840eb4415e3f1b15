package app_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/apiplatform/platform/server/app"
	"github.com/apiplatform/platform/server/storage"
	"github.com/apiplatform/platform/server/storage/embedded"
	"github.com/apiplatform/platform/server/storage/sqlstore"
	"github.com/apiplatform/platform/server/vote"
)

// phoneUA is what a real phone browser sends: UTF-8 beyond ASCII, which
// gRPC metadata cannot carry as is.
const phoneUA = "Mozilla/5.0 (Linux; Android 13) 小米浏览器"

// openEngine opens the store a stopped server of cfg used.
func openEngine(t *testing.T, cfg app.Config) storage.Engine {
	t.Helper()
	if cfg.DatabaseURL == "" {
		st, err := embedded.Open(cfg.DataDir)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		return st
	}
	st, err := sqlstore.Open(context.Background(), sqlstore.Config{URL: cfg.DatabaseURL, Region: cfg.Region})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// A REST vote's audit row records the voter's browser, not the gateway's
// own gRPC client, and a UTF-8 User-Agent reaches it intact.
func TestVoteAuditRecordsBrowserUserAgent(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		cfg := testConfig(t)
		b.setup(t, &cfg)
		voteConfig(&cfg)
		p := startConfig(t, cfg)
		env := newVoteEnv(t, p)
		e := env.openElection(t)
		rest := restVote{newREST(p)}
		for _, ua := range []string{"Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0", phoneUA} {
			_, token := env.voter(t)
			res, raw := rest.do(t, "POST", "/api/v1/votes", token,
				map[string]any{"electionId": e.GetElectionId(), "candidateId": "red"}, "User-Agent", ua)
			if res.StatusCode != http.StatusCreated {
				t.Fatalf("vote with User-Agent %q answered %d %s", ua, res.StatusCode, raw)
			}
		}
		_ = p.srv.Shutdown(context.Background()) // commits what is queued, frees the embedded file
		rows, err := openEngine(t, cfg).AuditPage(context.Background(), cfg.Region, e.GetElectionId(), "", 100)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]bool{}
		for _, r := range rows {
			if r.Outcome == vote.AuditAccepted {
				got[r.UserAgent] = true
			}
		}
		for _, want := range []string{"Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0", phoneUA} {
			if !got[want] {
				t.Errorf("no accepted audit row with User-Agent %q; rows have %v", want, got)
			}
		}
	})
}

// rawStatus sends one GET with a header written byte for byte (net/http's
// client would refuse some of these values) and returns the status code.
func rawStatus(t testing.TB, addr, path, name, value string) int {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\n%s: %s\r\nConnection: close\r\n\r\n", path, addr, name, value)
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("%s: %q: %v", name, value, err)
	}
	_ = res.Body.Close()
	return res.StatusCode
}

// forwardedHeaders are every request header whose value the gateway hands
// to the gRPC server.
var forwardedHeaders = []string{
	"User-Agent", "Referer", "CF-IPCountry", "Authorization", "Idempotency-Key", "If-None-Match",
	"X-Captcha-Token", "X-Forwarded-Host", "X-Forwarded-For",
}

// Any bytes in any forwarded header give an answer of the route, never a
// 5xx: the values are made safe once at the edge.
func FuzzForwardedHeaders(f *testing.F) {
	p := start(f, embeddedBackend, nil)
	addr := strings.TrimPrefix(p.base, "http://")
	for i := range forwardedHeaders {
		for _, v := range []string{phoneUA, "é", "\x7f", "\x01", "50%", "%ZZ", "\xff\xfe", "a\tb"} {
			f.Add(uint8(i), v)
		}
	}
	f.Fuzz(func(t *testing.T, which uint8, value string) {
		if strings.ContainsAny(value, "\r\n") {
			t.Skip() // would end the header line: another request, not another value
		}
		name := forwardedHeaders[int(which)%len(forwardedHeaders)]
		for _, path := range []string{"/api/v1/canvas/info", "/s/doesnotexist", "/nosuchcode1"} {
			if code := rawStatus(t, addr, path, name, value); code >= 500 {
				t.Errorf("GET %s with %s: %q answered %d", path, name, value, code)
			}
		}
	})
}
