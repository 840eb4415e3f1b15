package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/apiplatform/platform/server/platform/ratelimit"
	"github.com/apiplatform/platform/server/vote"
)

// voteFlags registers the vote service's flags, defaulting to
// vote.DefaultConfig.
func voteFlags(fs flags, cfg *vote.Config) {
	d := vote.DefaultConfig()
	voteCount(fs, &cfg.MaxBatch, "vote-max-batch", "VOTE_MAX_BATCH", d.MaxBatch, "most votes committed in one transaction")
	fs.duration(&cfg.MaxWait, "vote-max-wait", "VOTE_MAX_WAIT", d.MaxWait, "how long a vote batch waits to fill while another commits")
	voteCount(fs, &cfg.Committers, "vote-committers", "VOTE_COMMITTERS", d.Committers, "vote batch transactions in flight at once")
	voteCount(fs, &cfg.CounterShards, "vote-counter-shards", "VOTE_COUNTER_SHARDS", d.CounterShards, "rows each candidate's live counter is spread over")
	voteLimit(fs, &cfg.UserLimit, "vote-user-limit", "VOTE_USER_LIMIT", d.UserLimit, "vote attempts per user: RATE/PERIOD,BURST")
	voteLimit(fs, &cfg.AddrLimit, "vote-addr-limit", "VOTE_ADDR_LIMIT", d.AddrLimit, "vote attempts per client address and election: RATE/PERIOD,BURST")
	fs.duration(&cfg.MinAccountAge, "vote-min-account-age", "VOTE_MIN_ACCOUNT_AGE", d.MinAccountAge, "refuse votes of accounts younger than this (0: off)")
	capFlag(fs, &cfg.MaxAccountsPerAddr, "vote-max-accounts-per-ip", "VOTE_MAX_ACCOUNTS_PER_IP", d.MaxAccountsPerAddr, "refuse more accounts than this voting in one election from one IPv4 address or IPv6 /64 within --vote-accounts-window (0: off)")
	fs.duration(&cfg.AccountsWindow, "vote-accounts-window", "VOTE_ACCOUNTS_WINDOW", d.AccountsWindow, "window of --vote-max-accounts-per-ip")
	fs.str(&cfg.CaptchaURL, "vote-captcha-url", "VOTE_CAPTCHA_URL", d.CaptchaURL, "siteverify endpoint checking CAPTCHA tokens, e.g. https://challenges.cloudflare.com/turnstile/v0/siteverify (empty: no CAPTCHA)")
	fs.str(&cfg.CaptchaSecret, "vote-captcha-secret", "VOTE_CAPTCHA_SECRET", d.CaptchaSecret, "secret key for --vote-captcha-url")
	fs.duration(&cfg.CaptchaTimeout, "vote-captcha-timeout", "VOTE_CAPTCHA_TIMEOUT", d.CaptchaTimeout, "timeout of one CAPTCHA check")
}

// voteCount registers a non-negative int flag with an environment fallback.
func voteCount(fs flags, p *int, name, env string, def int, usage string) {
	*p = def
	fs.Func(name, fmt.Sprintf("%s (env %s) (default %d)", usage, env, def), func(s string) error {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return fmt.Errorf("want a non-negative integer")
		}
		*p = n
		return nil
	})
	fs.fromEnv(name, env)
}

// capFlag is voteCount for a cap whose 0 means off: the service's Config
// takes 0 as "the default" and a negative value as off.
func capFlag(fs flags, p *int, name, env string, def int, usage string) {
	set := func(n int) {
		*p = n
		if n == 0 {
			*p = -1
		}
	}
	set(def)
	fs.Func(name, fmt.Sprintf("%s (env %s) (default %d)", usage, env, def), func(s string) error {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return fmt.Errorf("want a non-negative integer")
		}
		set(n)
		return nil
	})
	fs.fromEnv(name, env)
}

// voteLimit registers a rate limit flag written RATE/PERIOD,BURST (10/1m,5).
func voteLimit(fs flags, p *ratelimit.Limit, name, env string, def ratelimit.Limit, usage string) {
	*p = def
	fs.Func(name, fmt.Sprintf("%s (env %s) (default %s)", usage, env, formatVoteLimit(def)), func(s string) error {
		l, err := parseVoteLimit(s)
		if err != nil {
			return err
		}
		*p = l
		return nil
	})
	fs.fromEnv(name, env)
}

// formatVoteLimit writes l as parseVoteLimit reads it.
func formatVoteLimit(l ratelimit.Limit) string {
	return fmt.Sprintf("%d/%s,%d", l.Rate, l.Period, l.Burst)
}

func parseVoteLimit(s string) (ratelimit.Limit, error) {
	bad := fmt.Errorf("%q: want RATE/PERIOD,BURST, e.g. 10/1m,5", s)
	rp, b, ok := strings.Cut(s, ",")
	r, per, ok2 := strings.Cut(rp, "/")
	if !ok || !ok2 {
		return ratelimit.Limit{}, bad
	}
	rate, err1 := strconv.Atoi(r)
	period, err2 := time.ParseDuration(per)
	burst, err3 := strconv.Atoi(b)
	if err1 != nil || err2 != nil || err3 != nil || rate <= 0 || period <= 0 || burst <= 0 {
		return ratelimit.Limit{}, bad
	}
	return ratelimit.Limit{Rate: rate, Period: period, Burst: burst}, nil
}
