package app_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/apiplatform/platform/server/app"
	"github.com/apiplatform/platform/server/platform/ratelimit"
)

// Votes are rate limited per user and per address (per election), with
// RetryInfo (Retry-After over REST); every refusal is counted by reason.
func TestVoteRateLimits(t *testing.T) {
	tight := func(cfg *app.Config) {
		cfg.Vote.UserLimit = ratelimit.Limit{Rate: 1, Period: time.Hour, Burst: 2}
		cfg.Vote.AddrLimit = ratelimit.Limit{Rate: 1, Period: time.Hour, Burst: 3}
	}
	voteClients(t, tight, func(t *testing.T, env *voteEnv, c voteAPI) {
		// Per user: two attempts, the third waits.
		_, u := env.voter(t)
		e1, e2, e3 := env.openElection(t), env.openElection(t), env.openElection(t)
		for _, e := range []string{e1.GetElectionId(), e2.GetElectionId()} {
			if _, err := c.cast(t, u, e, "red", castOpts{}); err != nil {
				t.Fatal(err)
			}
		}
		_, err := c.cast(t, u, e3.GetElectionId(), "red", castOpts{})
		if d := retryInfo(t, err); d <= 0 || d > time.Hour {
			t.Fatalf("retry after %v", d)
		}

		// Per address in one election: three voters from 127.0.0.1, then no
		// more; another election has its own budget.
		e4 := env.openElection(t)
		for range 3 {
			_, v := env.voter(t)
			if _, err := c.cast(t, v, e4.GetElectionId(), "blue", castOpts{}); err != nil {
				t.Fatal(err)
			}
		}
		_, v := env.voter(t)
		_, err = c.cast(t, v, e4.GetElectionId(), "blue", castOpts{})
		retryInfo(t, err)
		e5 := env.openElection(t)
		if _, err := c.cast(t, v, e5.GetElectionId(), "blue", castOpts{}); err != nil {
			t.Fatalf("another election: %v", err)
		}

		for _, e := range []string{e3.GetElectionId(), e4.GetElectionId()} {
			eventually(t, 3*time.Second, func() error {
				st, err := c.statistics(t, env.admin, e)
				if err != nil || rejections(st)["RATE_LIMITED"] != 1 {
					return fmt.Errorf("statistics of %s = %v, %v", e, st, err)
				}
				return nil
			})
		}
	})
}

// fakeSiteverify answers like a CAPTCHA provider's siteverify endpoint:
// only "human" passes, and only with the right secret.
type fakeSiteverify struct {
	srv   *httptest.Server
	calls atomic.Int64
	mu    sync.Mutex
	down  bool
	seen  []string // remoteip of each call
}

func newFakeSiteverify(t *testing.T) *fakeSiteverify {
	f := &fakeSiteverify{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.calls.Add(1)
		f.mu.Lock()
		down := f.down
		f.seen = append(f.seen, r.PostFormValue("remoteip"))
		f.mu.Unlock()
		if down {
			http.Error(w, "overloaded", http.StatusServiceUnavailable)
			return
		}
		if r.Method != http.MethodPost || r.PostFormValue("secret") != "s3cret" {
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(map[string]any{"success": false, "error-codes": []string{"invalid-input-secret"}})
			return
		}
		ok := r.PostFormValue("response") == "human"
		res := map[string]any{"success": ok}
		if !ok {
			res["error-codes"] = []string{"invalid-input-response"}
		}
		_ = json.NewEncoder(w).Encode(res)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// With a verifier configured a vote needs a token it accepts (request field
// or x-captcha-token metadata); a verifier outage refuses votes rather than
// letting bots through.
func TestVoteCaptcha(t *testing.T) {
	fake := newFakeSiteverify(t)
	withCaptcha := func(cfg *app.Config) {
		cfg.Vote.CaptchaURL, cfg.Vote.CaptchaSecret = fake.srv.URL, "s3cret"
	}
	voteClients(t, withCaptcha, func(t *testing.T, env *voteEnv, c voteAPI) {
		e := env.openElection(t)
		id := e.GetElectionId()
		_, u := env.voter(t)
		_, err := c.cast(t, u, id, "red", castOpts{})
		wantField(t, err, "captchaToken")
		_, err = c.cast(t, u, id, "red", castOpts{captcha: "robot"})
		wantReason(t, err, codes.PermissionDenied, "CAPTCHA_FAILED")
		v, err := c.cast(t, u, id, "red", castOpts{captcha: "human", key: "k"})
		if err != nil {
			t.Fatal(err)
		}
		// A retry whose (single-use) token the verifier now refuses still
		// gets the original answer.
		retry, err := c.cast(t, u, id, "red", castOpts{captcha: "spent", key: "k"})
		if err != nil || retry.GetVoteId() != v.GetVoteId() {
			t.Fatalf("retry = %v, %v; want %v", retry, err, v)
		}
		if c.name() == "grpc" {
			_, w := env.voter(t)
			if _, err := c.cast(t, w, id, "green", castOpts{captchaMeta: "human"}); err != nil {
				t.Fatalf("token in metadata: %v", err)
			}
		}
		fake.mu.Lock()
		fake.down = true
		fake.mu.Unlock()
		_, x := env.voter(t)
		_, err = c.cast(t, x, id, "red", castOpts{captcha: "human"})
		wantCode(t, err, codes.Unavailable)
		fake.mu.Lock()
		fake.down = false
		if last := fake.seen[len(fake.seen)-1]; last != "127.0.0.1" {
			t.Errorf("verifier told remoteip %q, want 127.0.0.1", last)
		}
		fake.mu.Unlock()
		if r, err := c.results(t, "", id); err != nil || r.GetTotalVotes() != int64(map[string]int{"grpc": 2, "rest": 1}[c.name()]) {
			t.Fatalf("results = %v, %v", r, err)
		}
		eventually(t, 3*time.Second, func() error {
			st, err := c.statistics(t, env.admin, id)
			if r := rejections(st); err != nil || r["CAPTCHA_FAILED"] != 2 {
				return fmt.Errorf("statistics = %v, %v", st, err)
			}
			return nil
		})
	})
}

// Rule-based checks: accounts younger than the minimum age, and too many
// accounts voting from one address, are refused and counted by reason (in
// the election's statistics and in Prometheus).
func TestVoteRules(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		t.Run("account age", func(t *testing.T) {
			env := startVote(t, b, func(cfg *app.Config) {
				cfg.MetricsAddr = "127.0.0.1:0"
				cfg.Vote.MinAccountAge = time.Hour
			})
			before := scrape(t, env.p)
			e := env.openElection(t)
			for _, c := range []voteAPI{grpcVote{env.g}, restVote{newREST(env.p)}} {
				_, u := env.voter(t)
				_, err := c.cast(t, u, e.GetElectionId(), "red", castOpts{})
				wantReason(t, err, codes.PermissionDenied, "ACCOUNT_TOO_NEW")
			}
			eventually(t, 3*time.Second, func() error {
				st, err := grpcVote{env.g}.statistics(t, env.admin, e.GetElectionId())
				if r := rejections(st); err != nil || r["ACCOUNT_TOO_NEW"] != 2 || st.GetTotalVotes() != 0 {
					return fmt.Errorf("statistics = %v, %v", st, err)
				}
				return nil
			})
			after := scrape(t, env.p)
			name := `vote_rejections_total{reason="ACCOUNT_TOO_NEW"}`
			if after[name]-before[name] < 2 {
				t.Fatalf("%s moved from %v to %v", name, before[name], after[name])
			}
		})
		t.Run("accounts per address", func(t *testing.T) {
			env := startVote(t, b, func(cfg *app.Config) { cfg.Vote.MaxAccountsPerAddr = 2 })
			e := env.openElection(t)
			id := e.GetElectionId()
			for _, c := range []voteAPI{grpcVote{env.g}, restVote{newREST(env.p)}} {
				if c.name() == "grpc" {
					_, first := env.voter(t)
					_, second := env.voter(t)
					for _, tok := range []string{first, second} {
						if _, err := c.cast(t, tok, id, "red", castOpts{}); err != nil {
							t.Fatal(err)
						}
					}
					// An account already counted may come back: a duplicate,
					// not a rule refusal.
					_, err := c.cast(t, first, id, "red", castOpts{})
					wantCode(t, err, codes.AlreadyExists)
				}
				_, extra := env.voter(t)
				for range 2 { // its retry is refused too
					_, err := c.cast(t, extra, id, "red", castOpts{})
					wantReason(t, err, codes.PermissionDenied, "TOO_MANY_ACCOUNTS_PER_IP")
				}
			}
			eventually(t, 3*time.Second, func() error {
				st, err := grpcVote{env.g}.statistics(t, env.admin, id)
				if r := rejections(st); err != nil || r["TOO_MANY_ACCOUNTS_PER_IP"] != 4 || st.GetTotalVotes() != 2 {
					return fmt.Errorf("statistics = %v, %v", st, err)
				}
				return nil
			})
		})
	})
}
