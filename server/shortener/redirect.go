package shortener

import (
	"bytes"
	"context"
	_ "embed"
	"html"
	"html/template"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/skip2/go-qrcode"
	"google.golang.org/genproto/googleapis/api/httpbody"

	shortenerv1 "github.com/apiplatform/platform/gen/go/shortener/v1"
	"github.com/apiplatform/platform/server/platform/apierr"
	"github.com/apiplatform/platform/server/platform/password"
	"github.com/apiplatform/platform/server/platform/wire"
)

//go:embed form.html
var formHTML string

// html/template escapes the code in the text and in the form's action.
var formTemplate = template.Must(template.New("form").Parse(formHTML))

// FollowShortUrl implements ShortenerService.
func (s *Service) FollowShortUrl(ctx context.Context, req *shortenerv1.FollowShortUrlRequest) (*httpbody.HttpBody, error) {
	code := req.GetCode()
	e, refused, err := s.live(ctx, code)
	if err != nil {
		if refused != 0 {
			redirectCounter(refused).Inc()
		}
		return nil, err
	}
	now := s.now()
	if e.PasswordHash != "" {
		pw := req.GetPassword()
		if pw == "" {
			return s.passwordForm(ctx, code, http.StatusOK, "")
		}
		if err := s.limitGuesses(ctx, code); err != nil {
			return nil, err
		}
		ok := false
		if len(pw) <= MaxPasswordBytes {
			if ok, err = password.Check(ctx, e.PasswordHash, pw); err != nil {
				return nil, password.Status(ctx, err)
			}
		}
		if !ok {
			return s.passwordForm(ctx, code, http.StatusForbidden, "Wrong password.")
		}
	}
	target := e.Target
	// Only links with device targets or a visit limit look at the agent.
	if e.Devices != nil || e.MaxVisits > 0 {
		var err error
		if target, err = s.ruled(ctx, code, e); err != nil {
			return nil, err
		}
	}
	s.clicks.add(s.clickOf(ctx, code, now))
	cc := "private, no-store" // a 302 must come back to us: every click counts
	if e.Kind == http.StatusMovedPermanently && e.MaxVisits == 0 {
		// A shared cache would serve a limited link past its limit.
		cc = "public, max-age=" + strconv.Itoa(int(s.cfg.PermanentMaxAge.Seconds()))
	}
	if e.Devices != nil {
		wire.SetResponse(ctx, e.Kind, "location", target, "cache-control", cc, "vary", "User-Agent")
	} else {
		wire.SetResponse(ctx, e.Kind, "location", target, "cache-control", cc)
	}
	redirectCounter(e.Kind).Inc()
	body := `<!doctype html><meta charset="utf-8"><title>Redirecting</title><a href="` +
		html.EscapeString(target) + `">` + html.EscapeString(target) + "</a>\n"
	return &httpbody.HttpBody{ContentType: "text/html; charset=utf-8", Data: []byte(body)}, nil
}

// ruled applies a link's device targets and visit limit: it returns the
// visitor's target, or the expired link's answer once the link served its
// visits (people use visits up; bots are only refused once none is left).
// A counter that cannot answer refuses the redirect (503): a limited link
// must not be served past its limit.
func (s *Service) ruled(ctx context.Context, code string, e *entry) (string, error) {
	a := s.agents.describe(cut(wire.FromContext(ctx).UserAgent, maxHeaderBytes))
	target := e.Target
	if e.Devices != nil {
		if t := e.Devices.pick(a); t != "" {
			target = t
		}
	}
	if e.MaxVisits == 0 {
		return target, nil
	}
	var ok bool
	var err error
	if a.class == AgentHuman {
		ok, err = s.visits.take(ctx, code, e)
	} else {
		ok, err = s.visits.left(ctx, code, e)
	}
	switch {
	case err != nil:
		s.log.Warn("shortener: visit counter unavailable", "err", err)
		return "", apierr.Unavailable("the visit counter is unavailable; retry", time.Second)
	case !ok:
		redirectCounter(http.StatusGone).Inc()
		return "", gone(ctx, "expired")
	}
	return target, nil
}

// redirectCounters are shortener_redirects_total's series for every
// status FollowShortUrl answers, resolved once: looking a label set up
// hashes and allocates on every redirect.
var redirectCounters = func() map[int]prometheus.Counter {
	m := map[int]prometheus.Counter{}
	for _, code := range []int{http.StatusOK, http.StatusMovedPermanently, http.StatusFound, http.StatusForbidden, http.StatusNotFound, http.StatusGone} {
		m[code] = redirectsTotal.WithLabelValues(strconv.Itoa(code))
	}
	return m
}()

func redirectCounter(status int) prometheus.Counter {
	if c, ok := redirectCounters[status]; ok {
		return c
	}
	return redirectsTotal.WithLabelValues(strconv.Itoa(status))
}

func (s *Service) passwordForm(ctx context.Context, code string, status int, msg string) (*httpbody.HttpBody, error) {
	var buf bytes.Buffer
	if err := formTemplate.Execute(&buf, struct{ Code, Error string }{code, msg}); err != nil {
		return nil, apierr.Internal(ctx, err)
	}
	wire.SetResponse(ctx, status, "cache-control", "private, no-store")
	redirectCounter(status).Inc()
	return &httpbody.HttpBody{ContentType: "text/html; charset=utf-8", Data: buf.Bytes()}, nil
}

// clickOf copies what the click needs from the call (the country is the
// one the gateway vouches for, see wire).
func (s *Service) clickOf(ctx context.Context, code string, now time.Time) rawClick {
	e := wire.FromContext(ctx)
	return rawClick{
		code: code, at: now.UTC(), addr: e.Addr,
		agent: cut(e.UserAgent, maxHeaderBytes), referer: cut(e.Referer, maxHeaderBytes), country: cut(e.Country, 8),
	}
}

// enrich runs in the flusher: the costly parts of a click.
func (s *Service) enrich(r rawClick) Click {
	a := s.agents.describe(r.agent)
	c := Click{Code: r.code, At: r.at, Agent: a.class, Referer: refererHost(r.referer), Browser: a.browser, OS: a.os, Device: a.device}
	c.Country = normCountry(r.country)
	if c.Country == "" && s.geo != nil && r.addr.IsValid() {
		c.Country = normCountry(s.geo.country(r.addr))
	}
	if c.Country == "" {
		c.Country = UnknownCountry
	}
	return c
}

// GetQrCode implements ShortenerService.
func (s *Service) GetQrCode(ctx context.Context, req *shortenerv1.GetQrCodeRequest) (*httpbody.HttpBody, error) {
	size := int(req.GetSize())
	if size == 0 {
		size = 256
	}
	if size < 64 || size > 1024 {
		return nil, apierr.InvalidArgument("size", "must be 0 (256) or 64 to 1024 pixels")
	}
	code := req.GetCode()
	if _, _, err := s.live(ctx, code); err != nil {
		return nil, err
	}
	png, err := qrcode.Encode(s.shortURL(code), qrcode.Medium, size)
	if err != nil {
		return nil, apierr.Internal(ctx, err)
	}
	wire.SetHeader(ctx, "cache-control", "public, max-age=3600")
	return &httpbody.HttpBody{ContentType: "image/png", Data: png}, nil
}
