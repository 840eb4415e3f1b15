package main

import (
	"net/http"
	"time"

	"github.com/apiplatform/platform/server/identity"
	"github.com/apiplatform/platform/server/vote"
)

// identityFlags registers the identity service's abuse limits, defaulting
// to identity.DefaultConfig; the returned finish builds what depends on
// several flags, after parse.
func identityFlags(fs flags, cfg *identity.Config) (finish func()) {
	d := identity.DefaultConfig()
	voteLimit(fs, &cfg.GuestLimit, "guest-addr-limit", "GUEST_ADDR_LIMIT", d.GuestLimit, "guest sessions created per IPv4 address or IPv6 /64: RATE/PERIOD,BURST")
	voteLimit(fs, &cfg.RegisterLimit, "register-addr-limit", "REGISTER_ADDR_LIMIT", d.RegisterLimit, "registrations per IPv4 address or IPv6 /64: RATE/PERIOD,BURST")
	voteLimit(fs, &cfg.LoginLimit, "login-limit", "LOGIN_LIMIT", d.LoginLimit, "login attempts per account and address: RATE/PERIOD,BURST")
	voteLimit(fs, &cfg.LoginAddrLimit, "login-addr-limit", "LOGIN_ADDR_LIMIT", d.LoginAddrLimit, "login attempts per address, any account: RATE/PERIOD,BURST")
	voteLimit(fs, &cfg.APIKeyLimit, "api-key-limit", "API_KEY_LIMIT", d.APIKeyLimit, "calls per API key: RATE/PERIOD,BURST")
	var url, secret string
	fs.str(&url, "register-captcha-url", "REGISTER_CAPTCHA_URL", "", "siteverify endpoint checking a CAPTCHA token on every registration (empty: none)")
	fs.str(&secret, "register-captcha-secret", "REGISTER_CAPTCHA_SECRET", "", "secret key for --register-captcha-url")
	return func() {
		if url != "" {
			cfg.Captcha = &vote.SiteVerify{URL: url, Secret: secret, Client: &http.Client{Timeout: 3 * time.Second}}
		}
	}
}
