package shortener

import (
	"context"
	"log/slog"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/mileusna/useragent"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/x-way/crawlerdetect"
)

// # Analytics
//
// A redirect hands its click to the recorder and returns: add appends to an
// in-memory buffer under a mutex and never waits for anything else. A
// flusher goroutine writes the buffer to the store in batches, when it
// holds FlushBatch clicks or every FlushInterval, whichever comes first, and
// once more when the service closes (graceful shutdown). The work that
// costs (user-agent classification, referrer parsing, GeoIP lookups) is done
// by the flusher, off the redirect path.
//
// The buffer is bounded (ClickBuffer). When it is full — the database is
// down or slower than the click rate — new clicks are dropped and counted
// in shortener_clicks_total{result="dropped"}; the redirect itself is never
// refused or slowed for analytics. A batch the store refused is kept and
// retried with the next flush (within the same bound); if its commit had in
// fact succeeded, those clicks count twice.
//
// Loss: if the process is killed (SIGKILL, crash, power loss) the clicks of
// at most one flush interval (those still in the buffer) are lost. Links are
// never lost: they are written to the store before the create call answers.

var (
	clicksTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "shortener_clicks_total",
		Help: "Redirect clicks by outcome: recorded (stored), dropped (buffer full), failed (store refused a batch and it could not be kept for retry).",
	}, []string{"result"})
	clickBufferDepth = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "shortener_click_buffer",
		Help: "Clicks waiting in the analytics buffers of this process.",
	})
	flushLag = promauto.NewHistogram(prometheus.HistogramOpts{
		Name:    "shortener_click_flush_lag_seconds",
		Help:    "Age of the oldest click of each stored batch: how far analytics trail the redirects.",
		Buckets: []float64{.1, .25, .5, 1, 2, 5, 10, 30, 60, 300},
	})
	flushSeconds = promauto.NewHistogram(prometheus.HistogramOpts{
		Name:    "shortener_click_flush_seconds",
		Help:    "Time to write one batch of clicks to the store.",
		Buckets: prometheus.DefBuckets,
	})
	clicksRecorded = clicksTotal.WithLabelValues("recorded")
	clicksDropped  = clicksTotal.WithLabelValues("dropped")
	clicksFailed   = clicksTotal.WithLabelValues("failed")
)

// rawClick is what the redirect path records: only copies of what it has
// at hand, bounded in size.
type rawClick struct {
	code    string
	at      time.Time
	agent   string     // User-Agent, cut to maxHeaderBytes
	referer string     // Referer, cut to maxHeaderBytes
	addr    netip.Addr // client address (trusted-proxy aware)
	country string     // from the CDN header when a trusted gateway sent it
}

const maxHeaderBytes = 512

func cut(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// recorder buffers clicks and flushes them in batches.
type recorder struct {
	mu    sync.Mutex
	buf   []rawClick
	limit int

	batch    int
	interval time.Duration
	write    func(ctx context.Context, clicks []Click) error
	enrich   func(rawClick) Click
	log      *slog.Logger

	kick chan struct{}
	stop chan struct{}
	done chan struct{}
}

func newRecorder(limit, batch int, interval time.Duration, write func(context.Context, []Click) error, enrich func(rawClick) Click, log *slog.Logger) *recorder {
	r := &recorder{
		limit: limit, batch: batch, interval: interval, write: write, enrich: enrich, log: log,
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
	}
	go r.run()
	return r
}

// add records a click without waiting; a full buffer drops it.
func (r *recorder) add(c rawClick) {
	r.mu.Lock()
	if len(r.buf) >= r.limit {
		r.mu.Unlock()
		clicksDropped.Inc()
		return
	}
	r.buf = append(r.buf, c)
	n := len(r.buf)
	r.mu.Unlock()
	clickBufferDepth.Inc()
	if n >= r.batch {
		select {
		case r.kick <- struct{}{}:
		default:
		}
	}
}

func (r *recorder) take() []rawClick {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.buf
	r.buf = make([]rawClick, 0, min(len(out), r.limit))
	return out
}

func (r *recorder) run() {
	defer close(r.done)
	t := time.NewTicker(r.interval)
	defer t.Stop()
	var retry []Click // enriched clicks of batches the store refused
	for {
		final := false
		select {
		case <-t.C:
		case <-r.kick:
		case <-r.stop:
			final = true
		}
		retry = r.flush(retry, final)
		if final {
			if len(retry) > 0 {
				clicksFailed.Add(float64(len(retry)))
				r.log.Warn("shortener: clicks not stored at shutdown", "clicks", len(retry))
			}
			return
		}
	}
}

// flush writes what the buffer holds plus earlier failed batches, in
// batches; it returns what must be retried.
func (r *recorder) flush(retry []Click, final bool) []Click {
	raw := r.take()
	clickBufferDepth.Sub(float64(len(raw)))
	pending := retry
	for _, c := range raw {
		pending = append(pending, r.enrich(c))
	}
	var failed []Click
	for len(pending) > 0 {
		n := min(len(pending), r.batch)
		b := pending[:n]
		pending = pending[n:]
		timeout := 10 * time.Second
		if final {
			timeout = 5 * time.Second
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		start := time.Now()
		err := r.write(ctx, b)
		cancel()
		flushSeconds.Observe(time.Since(start).Seconds())
		if err != nil {
			r.log.Warn("shortener: storing clicks failed; will retry", "clicks", n, "err", err)
			failed = append(failed, b...)
			if final {
				failed = append(failed, pending...)
				break
			}
			continue
		}
		clicksRecorded.Add(float64(n))
		oldest := b[0].At
		for _, c := range b[1:] {
			if c.At.Before(oldest) {
				oldest = c.At
			}
		}
		flushLag.Observe(time.Since(oldest).Seconds())
	}
	// Keep failed clicks for the next flush within the buffer's bound; the
	// oldest go first.
	if over := len(failed) - r.limit; over > 0 {
		clicksFailed.Add(float64(over))
		failed = failed[over:]
	}
	return failed
}

// close flushes what is buffered and stops the flusher.
func (r *recorder) close() {
	close(r.stop)
	<-r.done
}

// # User-agent classes
//
// Link-preview crawlers (the fetchers of chat apps and social networks that
// unfurl a pasted link) are named by previewAgents, matched as lower-case
// substrings; other bots are what github.com/x-way/crawlerdetect (a Go port
// of the maintained Crawler-Detect patterns) recognises; a missing
// User-Agent is a bot too (every browser sends one). Everything else is a
// human click.
var previewAgents = []string{
	"facebookexternalhit", "facebookcatalog", "facebot", "meta-externalagent", "twitterbot",
	"slackbot", "slack-imgproxy", "discordbot", "telegrambot", "whatsapp", "linkedinbot",
	"skypeuripreview", "microsoftpreview", "teams", "iframely", "embedly", "redditbot",
	"pinterestbot", "vkshare", "viber", "snapchat", "mastodon", "bluesky", "cardyb",
	"google-pagerenderer", "googleother", "applebot", "bitlybot", "mattermost", "zulip",
}

// Browser, OS and device class come from github.com/mileusna/useragent:
// pure Go with no dependencies and no pattern files to ship or keep up to
// date, maintained, and fast enough for the flusher (uap-go, the other
// candidate, compiles hundreds of regexps from a YAML file and costs far
// more per agent). Results are cached per agent string with the class.

// agentInfo is what a User-Agent tells about a click.
type agentInfo struct{ class, browser, os, device string }

// maxAgentField bounds a parsed name: an unknown agent's "browser" is
// whatever its first token is.
const maxAgentField = 64

type classifier struct{ seen *lru.Cache[string, agentInfo] }

func newClassifier() *classifier {
	c, _ := lru.New[string, agentInfo](8192)
	return &classifier{seen: c}
}

func (c *classifier) classify(ua string) string { return c.describe(ua).class }

func (c *classifier) describe(ua string) agentInfo {
	ua = strings.TrimSpace(ua)
	if ua == "" {
		return agentInfo{class: AgentBot, device: DeviceBot}
	}
	if v, ok := c.seen.Get(ua); ok {
		return v
	}
	// gRPC libraries append their own token ("... grpc-go/1.70.0") to the
	// application's User-Agent; the parser would take it for the browser.
	if i := strings.LastIndexByte(ua, ' '); i > 0 && strings.HasPrefix(ua[i+1:], "grpc-") {
		v := c.describe(ua[:i])
		c.seen.Add(ua, v)
		return v
	}
	v := agentInfo{class: AgentHuman}
	lower := strings.ToLower(ua)
	for _, p := range previewAgents {
		if strings.Contains(lower, p) {
			v.class = AgentPreview
			break
		}
	}
	if v.class == AgentHuman && crawlerdetect.IsCrawler(ua) {
		v.class = AgentBot
	}
	p := useragent.Parse(ua)
	v.browser, v.os = cut(strings.TrimSpace(p.Name), maxAgentField), cut(strings.TrimSpace(p.OS), maxAgentField)
	switch {
	case v.class != AgentHuman || p.Bot:
		v.device = DeviceBot
	case p.Tablet:
		v.device = DeviceTablet
	case p.Mobile:
		v.device = DeviceMobile
	case p.Desktop:
		v.device = DeviceDesktop
	default:
		v.device = DeviceUnknown
	}
	c.seen.Add(ua, v)
	return v
}

// refererHost is the lower-cased host of a Referer, "" when there is none
// or it is not an absolute http(s) URL.
func refererHost(ref string) string {
	if ref == "" {
		return ""
	}
	u, err := url.Parse(ref)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return ""
	}
	h := strings.ToLower(u.Hostname())
	if len(h) > 253 {
		return ""
	}
	return h
}

// normCountry accepts ISO 3166-1 alpha-2 codes; CDNs' "unknown" markers
// (Cloudflare's XX and T1 for Tor) and anything else become ZZ.
func normCountry(c string) string {
	if len(c) != 2 {
		return ""
	}
	c = strings.ToUpper(c)
	if c[0] < 'A' || c[0] > 'Z' || c[1] < 'A' || c[1] > 'Z' || c == "XX" {
		return ""
	}
	return c
}

// UnknownCountry stands for clicks whose country is not known.
const UnknownCountry = "ZZ"
