package app_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	identityv1 "github.com/apiplatform/platform/gen/go/identity/v1"
	"github.com/apiplatform/platform/server/app"
	"github.com/apiplatform/platform/server/identity"
	"github.com/apiplatform/platform/server/platform/ratelimit"
)

// withDefaultAddrLimits undoes testConfig's roomy per-address identity
// limits: these tests prove the defaults, from addresses of their own.
func withDefaultAddrLimits(cfg *app.Config) {
	addrConfig(cfg)
	d := identity.DefaultConfig()
	cfg.Identity.GuestLimit, cfg.Identity.RegisterLimit, cfg.Identity.LoginAddrLimit = d.GuestLimit, d.RegisterLimit, d.LoginAddrLimit
}

// perAddress checks the 31st attempt from one client key is refused (as
// refused checks) while another key still gets through: from one IPv4
// address, or from 31 different hosts of one IPv6 /64.
func perAddress(t *testing.T, v6 bool, attempt func(from string) error, refused func(error)) {
	t.Helper()
	from, other := func(int) string { return randomV4() }, randomV4()
	if v6 {
		from, other = randomV6Net(), randomV6Net()(0)
	} else {
		x := randomV4()
		from = func(int) string { return x }
	}
	for i := range 30 {
		if err := attempt(from(i)); err != nil {
			t.Fatalf("attempt %d from %s: %v", i+1, from(i), err)
		}
	}
	refused(attempt(from(30)))
	if err := attempt(other); err != nil {
		t.Fatalf("another address was refused too: %v", err)
	}
}

// Sign-up and guests are limited per address by default (30 an hour), an
// IPv6 /64 counting as one address; other addresses are unaffected.
func TestRegistrationLimitedPerAddress(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		p := start(t, b, withDefaultAddrLimits)
		for _, c := range idClients(p) {
			t.Run(c.name(), func(t *testing.T) {
				limited := func(err error) {
					if d := retryInfo(t, err); d <= 0 {
						t.Fatalf("31st attempt: retry delay %v", d)
					}
				}
				// Each surface proves one kind of key for each (hashing 31
				// passwords is what makes this test slow).
				v6 := c.name() == "grpc"
				perAddress(t, v6, func(from string) error {
					_, err := c.register(t, from, randomName("u"), "a long enough password")
					return err
				}, limited)
				perAddress(t, !v6, func(from string) error { return c.guest(t, from) }, limited)
			})
		}
	})
}

// The register-and-vote loop from one address stops at the 31st account
// (per IPv4 address or IPv6 /64) by default; another address still votes.
func TestVoteAccountsPerAddressByDefault(t *testing.T) {
	voteClients(t, addrConfig, func(t *testing.T, env *voteEnv, c voteAPI) {
		e := env.openElection(t)
		perAddress(t, c.name() == "grpc", func(from string) error {
			_, tok := env.voter(t)
			_, err := c.cast(t, tok, e.GetElectionId(), "red", castOpts{addr: from})
			return err
		}, func(err error) { wantReason(t, err, codes.PermissionDenied, "TOO_MANY_ACCOUNTS_PER_IP") })
		if r, err := c.results(t, "", e.GetElectionId()); err != nil || r.GetTotalVotes() != 31 {
			t.Fatalf("results = %v, %v; want 31 votes", r, err)
		}
	})
}

// Wrong passwords from address X exhaust X's attempts at that account
// only: the owner still logs in from Y (admins included), and X stays
// refused.
func TestLoginThrottleIsPerAccountAndAddress(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		admin := randomName("ops")
		p := start(t, b, func(cfg *app.Config) {
			withDefaultAddrLimits(cfg)
			// The default burst (10), without its refill of one every 6 s:
			// hashing 12 passwords may take longer than that here.
			cfg.Identity.LoginLimit = ratelimit.Limit{Rate: 10, Period: time.Hour, Burst: 10}
			cfg.AdminUser, cfg.AdminPassword = admin, "admin-password-1"
		})
		for _, c := range idClients(p) {
			t.Run(c.name(), func(t *testing.T) {
				bob := randomName("bob")
				if _, err := c.register(t, randomV4(), bob, "bob's password"); err != nil {
					t.Fatal(err)
				}
				for user, pw := range map[string]string{bob: "bob's password", admin: "admin-password-1"} {
					x, y := randomV4(), randomV4()
					for range 10 {
						_, err := c.login(t, x, user, "wrong password")
						wantCode(t, err, codes.Unauthenticated)
					}
					_, err := c.login(t, x, user, "wrong password")
					retryInfo(t, err)
					if _, err := c.login(t, y, user, pw); err != nil {
						t.Fatalf("%s locked out from another address: %v", user, err)
					}
					_, err = c.login(t, x, user, pw)
					retryInfo(t, err)
				}
			})
		}
	})
}

// A refresh token used twice means a copy is out there: the whole family
// of sessions refreshed from that login dies, other logins stay.
func TestRefreshReuseRevokesFamily(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		p := start(t, b, nil)
		for _, c := range idClients(p) {
			t.Run(c.name(), func(t *testing.T) {
				user := randomName("eve")
				first, err := c.register(t, "", user, "a long enough password")
				if err != nil {
					t.Fatal(err)
				}
				second, err := c.refresh(t, first.GetRefreshToken())
				if err != nil {
					t.Fatal(err)
				}
				third, err := c.refresh(t, second.GetRefreshToken())
				if err != nil {
					t.Fatal(err)
				}
				other, err := c.login(t, "", user, "a long enough password")
				if err != nil {
					t.Fatal(err)
				}
				if _, err := c.me(t, third.GetAccessToken()); err != nil {
					t.Fatal(err)
				}
				_, err = c.refresh(t, first.GetRefreshToken()) // the stolen copy
				wantCode(t, err, codes.Unauthenticated)
				_, err = c.me(t, third.GetAccessToken())
				wantCode(t, err, codes.Unauthenticated)
				_, err = c.refresh(t, third.GetRefreshToken())
				wantCode(t, err, codes.Unauthenticated)
				if _, err := c.me(t, other.GetAccessToken()); err != nil {
					t.Fatalf("another login died too: %v", err)
				}
			})
		}
	})
}

// Restarting with --admin-user promotes an existing account and ends its
// sessions: tokens issued to the ordinary user never carry admin rights.
func TestAdminPromotionEndsSessions(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		cfg := testConfig(t)
		b.setup(t, &cfg)
		p := startConfig(t, cfg)
		name := randomName("opsadmin")
		var before []*identityv1.Session
		for _, c := range idClients(p) {
			if c.name() == "grpc" {
				s, err := c.register(t, "", name, "a long enough password")
				if err != nil {
					t.Fatal(err)
				}
				before = append(before, s)
			}
			s, err := c.login(t, "", name, "a long enough password")
			if err != nil {
				t.Fatal(err)
			}
			before = append(before, s)
		}
		if err := p.srv.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		cfg.AdminUser, cfg.AdminPassword = name, "the admin password"
		p = startConfig(t, cfg)
		for _, c := range idClients(p) {
			t.Run(c.name(), func(t *testing.T) {
				for _, s := range before {
					_, err := c.me(t, s.GetAccessToken())
					wantCode(t, err, codes.Unauthenticated)
				}
				_, err := c.refresh(t, before[len(before)-1].GetRefreshToken())
				wantCode(t, err, codes.Unauthenticated)
				s, err := c.login(t, "", name, "the admin password")
				if err != nil {
					t.Fatal(err)
				}
				u, err := c.me(t, s.GetAccessToken())
				if err != nil || u.GetRole() != identityv1.Role_ROLE_ADMIN {
					t.Fatalf("me = %v, %v; want an admin", u, err)
				}
			})
		}
	})
}
