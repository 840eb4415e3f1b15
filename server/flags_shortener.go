package main

import (
	"strings"

	"github.com/apiplatform/platform/server/shortener"
)

// shortenerFlags registers the shortener service's flags.
func shortenerFlags(fs flags, cfg *shortener.Config) {
	d := shortener.DefaultConfig()
	fs.Var(listValue{&cfg.OwnHosts}, "shortener-own-hosts", "comma-separated further host names of this shortener, refused as link targets (env SHORTENER_OWN_HOSTS)")
	fs.fromEnv("shortener-own-hosts", "SHORTENER_OWN_HOSTS")
	fs.boolean(&cfg.AllowPrivateTargets, "shortener-allow-private-targets", "SHORTENER_ALLOW_PRIVATE_TARGETS", "let links point at private-network hosts (intranet deployments); loopback, link-local and metadata addresses stay refused")
	fs.str(&cfg.GeoIPFile, "shortener-geoip-db", "SHORTENER_GEOIP_DB", "", "MaxMind DB file (e.g. GeoLite2-Country.mmdb) for click countries without a CDN header")
	intFlag(fs, &cfg.MaxInFlight, "shortener-max-in-flight", "SHORTENER_MAX_IN_FLIGHT", d.MaxInFlight, "concurrent shortener calls before shedding load with 503")
	intFlag(fs, &cfg.LocalCacheSize, "shortener-local-cache-size", "SHORTENER_LOCAL_CACHE_SIZE", d.LocalCacheSize, "entries of the per-process hot-key cache")
	fs.duration(&cfg.LocalCacheTTL, "shortener-local-cache-ttl", "SHORTENER_LOCAL_CACHE_TTL", d.LocalCacheTTL, "lifetime of hot-key cache entries (the staleness bound if an invalidation broadcast is lost)")
	fs.duration(&cfg.CacheTTL, "shortener-cache-ttl", "SHORTENER_CACHE_TTL", d.CacheTTL, "lifetime of links in the shared cache")
	intFlag(fs, &cfg.ClickBuffer, "shortener-click-buffer", "SHORTENER_CLICK_BUFFER", d.ClickBuffer, "clicks held in memory before new ones are dropped (and counted)")
	intFlag(fs, &cfg.FlushBatch, "shortener-flush-batch", "SHORTENER_FLUSH_BATCH", d.FlushBatch, "clicks written per batch; a full batch is flushed at once")
	fs.duration(&cfg.FlushInterval, "shortener-flush-interval", "SHORTENER_FLUSH_INTERVAL", d.FlushInterval, "how often buffered clicks are written (at most this much is lost if the process is killed)")
	intFlag(fs, &cfg.IDBlock, "shortener-id-block", "SHORTENER_ID_BLOCK", d.IDBlock, "code ids reserved from the database at a time")
	fs.duration(&cfg.PermanentMaxAge, "shortener-permanent-max-age", "SHORTENER_PERMANENT_MAX_AGE", d.PermanentMaxAge, "Cache-Control max-age of 301 redirects")
}

// intFlag is an int flag whose default comes from env when set.
func intFlag(fs flags, p *int, name, env string, def int, usage string) {
	fs.IntVar(p, name, def, usage+" (env "+env+")")
	fs.fromEnv(name, env)
}

// listValue is a comma-separated list flag.
type listValue struct{ p *[]string }

func (l listValue) String() string {
	if l.p == nil {
		return ""
	}
	return strings.Join(*l.p, ",")
}

func (l listValue) Set(s string) error {
	*l.p = nil
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
		*l.p = append(*l.p, f)
	}
	return nil
}
