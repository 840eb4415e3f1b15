package app_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/apiplatform/platform/gateway"
	"github.com/apiplatform/platform/server/app"
)

// webStack is a running platform as a browser sees it: the web client and
// the REST API on one origin, and one headless Chromium to drive it.
//
// The browser reaches the platform's gateway (which serves the client
// under /app/ and the API on one origin) through a reverse proxy owned by
// the test, which can cut streams to test reconnection.
type webStack struct {
	p       *platform
	base    string          // origin the browser uses, e.g. http://127.0.0.1:1234
	browser context.Context // holds the browser process
	shots   string          // where screenshots go
	shoot   bool            // take review screenshots (failures are always shot)
	streams *streamCutter
}

// streamCutter lets a test drop every open stream (the connection dies
// mid-response, as when a network or a replica fails) and refuse new ones
// with 503 + Retry-After until restored.
type streamCutter struct {
	mu   sync.Mutex
	down bool
	// severed closes every other request's connection unanswered, as
	// when the network is gone: the page's fetch fails outright.
	severed bool
	cancels map[*http.Request]context.CancelFunc
	// seen records every stream request's Accept and Last-Event-ID, to
	// show the pages use EventSource and resume with its id.
	seen []streamRequest
}

type streamRequest struct{ path, accept, lastEventID string }

func (sc *streamCutter) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.Contains(r.URL.Path, "/stream") {
			sc.mu.Lock()
			severed := sc.severed
			sc.mu.Unlock()
			if severed {
				panic(http.ErrAbortHandler)
			}
			next.ServeHTTP(w, r)
			return
		}
		sc.mu.Lock()
		if sc.down {
			sc.mu.Unlock()
			w.Header().Set("Retry-After", "1")
			http.Error(w, "streams are down", http.StatusServiceUnavailable)
			return
		}
		ctx, cancel := context.WithCancel(r.Context())
		sc.cancels[r] = cancel
		sc.seen = append(sc.seen, streamRequest{r.URL.Path, r.Header.Get("Accept"), r.Header.Get("Last-Event-ID")})
		sc.mu.Unlock()
		defer func() {
			sc.mu.Lock()
			delete(sc.cancels, r)
			sc.mu.Unlock()
			cancel()
		}()
		next.ServeHTTP(w, r.WithContext(ctx))
		if ctx.Err() != nil && r.Context().Err() == nil {
			panic(http.ErrAbortHandler) // cut: no clean end of the chunked body
		}
	})
}

// cut drops every open stream and refuses new ones.
func (sc *streamCutter) cut() {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	sc.down = true
	for _, cancel := range sc.cancels {
		cancel()
	}
}

// drop ends every open stream mid-response, but lets clients reconnect at
// once (a connection lost on the way, not a server refusing).
func (sc *streamCutter) drop() {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	for _, cancel := range sc.cancels {
		cancel()
	}
}

// requests returns the stream requests seen so far.
func (sc *streamCutter) requests() []streamRequest {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return append([]streamRequest(nil), sc.seen...)
}

// sever makes every request but streams fail at the network level (on)
// or reach the server again (off).
func (sc *streamCutter) sever(on bool) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	sc.severed = on
}

// restore lets streams connect again.
func (sc *streamCutter) restore() {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	sc.down = false
}

// chromiumPath finds Debian's Chromium (or $CHROMIUM).
func chromiumPath() string {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// startWeb starts a platform on b (configure may adjust it), the same-origin
// front and a headless Chromium. It skips the test when no browser is
// installed.
func startWeb(t *testing.T, b backend, configure func(*app.Config)) *webStack {
	t.Helper()
	chromium := chromiumPath()
	if chromium == "" {
		t.Skip("chromium is not installed (apt-get install chromium); browser tests skipped")
	}

	// The front's address must be known before the platform starts: links
	// the platform hands out (share pages, short URLs) point at it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	cfg := testConfig(t)
	// The link the browser follows points at a landing page on this machine.
	cfg.Shortener.AllowTargetHosts = []string{"localhost"}
	b.setup(t, &cfg)
	cfg.PublicBaseURL = base
	cfg.AdminUser, cfg.AdminPassword = "admin", "admin-password-1"
	if configure != nil {
		configure(&cfg)
	}
	p := startConfig(t, cfg)

	upstream, _ := url.Parse(p.base)
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(upstream)
			r.Out.Host = r.In.Host
		},
		FlushInterval: -1, // streams (NDJSON) must reach the page line by line
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if r.Context().Err() == nil { // not a stream the test cut
				t.Logf("proxy %s: %v", r.URL, err)
				w.WriteHeader(http.StatusBadGateway)
			}
		},
	}
	streams := &streamCutter{cancels: map[*http.Request]context.CancelFunc{}}
	if !gatewayServesWeb(t, p.base) {
		t.Fatal("the gateway does not serve the web client under " + gateway.WebPrefix)
	}
	mux := http.NewServeMux()
	mux.Handle("/", streams.wrap(proxy))
	front := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = front.Serve(ln) }()
	t.Cleanup(func() { _ = front.Close() })

	shots := os.Getenv("SCREENSHOT_DIR")
	if shots == "" {
		shots = t.TempDir()
	} else if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-features", "Translate,MediaRouter,OptimizationHints"),
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("mute-audio", true),
		// Several tabs run at once, all but one in the background: keep
		// their timers and renderers at full speed.
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	browser, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(func() { cancelBrowser(); cancelAlloc() })
	// The first run starts the browser, bound to the context it is given:
	// it must be browser itself, not a derived one with a deadline.
	if err := chromedp.Do(browser); err != nil {
		t.Fatalf("start chromium %s: %v", chromium, err)
	}
	t.Logf("web client at %s/app/, screenshots in %s", base, shots)
	// The views look the same on every backend: one set of screenshots.
	shoot := b.name == embeddedBackend.name
	return &webStack{p: p, base: base, browser: browser, shots: shots, shoot: shoot, streams: streams}
}

// gatewayServesWeb tells whether the platform's gateway serves the web
// client, with its security headers.
func gatewayServesWeb(t *testing.T, base string) bool {
	res, err := http.Get(base + gateway.WebPrefix)
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	return res.StatusCode == http.StatusOK && res.Header.Get("Content-Security-Policy") != ""
}

// webProblemCollector runs in every page before its own scripts: it records
// CSP violations, uncaught errors and unhandled rejections, which the test
// then fails on.
const webProblemCollector = `(() => {
  const list = [];
  Object.defineProperty(window, '__problems', { value: list });
  addEventListener('securitypolicyviolation', (e) => list.push('CSP blocked ' + e.violatedDirective + ': ' + (e.blockedURI || 'inline') + ' at ' + e.sourceFile + ':' + e.lineNumber));
  addEventListener('error', (e) => list.push('uncaught: ' + e.message + ' at ' + e.filename + ':' + e.lineno));
  addEventListener('unhandledrejection', (e) => list.push('unhandled rejection: ' + (e.reason && e.reason.stack || e.reason)));
})();`

// tab is one page of one browser context.
type webTab struct {
	t    *testing.T
	ws   *webStack
	ctx  context.Context
	name string
}

// user opens a tab in a new browser context: its own cookies and storage,
// like another person on another machine.
func (ws *webStack) user(t *testing.T, name string) *webTab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(ws.browser, chromedp.WithNewBrowserContext())
	tb := &webTab{t: t, ws: ws, ctx: ctx, name: name}
	tb.init(cancel)
	return tb
}

// another opens a second tab in the same browser context (same cookies).
func (tb *webTab) another(name string) *webTab {
	tb.t.Helper()
	ctx, cancel := chromedp.NewContext(tb.ctx)
	other := &webTab{t: tb.t, ws: tb.ws, ctx: ctx, name: name}
	other.init(cancel)
	return other
}

func (tb *webTab) init(cancel context.CancelFunc) {
	tb.t.Helper()
	// The first run opens the tab, bound to the context it is given: it
	// must be the tab's own context, not one with a deadline.
	if err := chromedp.Do(tb.ctx); err != nil {
		tb.t.Fatalf("%s: open tab: %v", tb.name, err)
	}
	tb.do(chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: webProblemCollector})
		return err
	}))
	tb.dark(false)
	tb.t.Cleanup(func() {
		tb.checkProblems()
		cancel()
	})
}

// actionTimeout bounds one browser action (a click retried included).
const actionTimeout = 20 * time.Second

// do runs actions with a deadline, failing the test with the tab's name.
func (tb *webTab) do(actions ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, actionTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		tb.t.Fatalf("%s: %v", tb.name, err)
	}
}

// open loads a client route, e.g. open("#/color"), and waits until the app
// has its session and drew the view.
func (tb *webTab) open(route string) {
	tb.t.Helper()
	tb.checkProblems()
	tb.do(chromedp.Navigate(tb.ws.base + "/app/" + route))
	tb.waitJS(`document.body.dataset.ready === 'true'`, "app ready")
}

// reload reloads the page and waits for the app again.
func (tb *webTab) reload() {
	tb.t.Helper()
	tb.checkProblems()
	tb.do(chromedp.Reload())
	tb.waitJS(`document.body.dataset.ready === 'true'`, "app ready after reload")
}

// route changes the fragment in the page (no reload) and waits for the view.
func (tb *webTab) route(route, readySel string) {
	tb.t.Helper()
	tb.eval(fmt.Sprintf(`location.hash = %q`, route))
	tb.waitVisible(readySel)
}

func (tb *webTab) click(sel string) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, actionTimeout)
	defer cancel()
	for {
		err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible))
		// The view may redraw between finding the node and clicking it
		// (a live update replaces the ballot): find it again, as a user
		// clicks the button that is there now.
		if err != nil && strings.Contains(err.Error(), "Could not find node with given id") && ctx.Err() == nil {
			continue
		}
		if err != nil {
			tb.t.Fatalf("%s: %v", tb.name, err)
		}
		return
	}
}

func (tb *webTab) waitVisible(sel string) {
	tb.t.Helper()
	tb.do(chromedp.WaitVisible(chromedp.CSS(sel)))
}

// fill replaces a field's value by typing, as a user would.
func (tb *webTab) fill(sel, text string) {
	tb.t.Helper()
	tb.do(chromedp.WaitVisible(chromedp.CSS(sel)))
	tb.eval(fmt.Sprintf(`(() => { const el = document.querySelector(%q); el.focus(); el.select(); })()`, sel))
	tb.do(chromedp.KeyEvent(kb.Backspace), chromedp.SendKeys(chromedp.CSS(sel), text))
}

// press sends keys to the focused element (e.g. "\r" for Enter).
func (tb *webTab) press(keys string) {
	tb.t.Helper()
	tb.do(chromedp.KeyEvent(keys))
}

func webEval[T any](tb *webTab, expr string) T {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		tb.t.Fatalf("%s: eval %s: %v", tb.name, expr, err)
	}
	return v
}

func (tb *webTab) eval(expr string) { webEval[any](tb, `void (`+expr+`)`) }

func (tb *webTab) str(expr string) string { return webEval[string](tb, `String(`+expr+`)`) }

func (tb *webTab) text(sel string) string {
	tb.t.Helper()
	return tb.str(fmt.Sprintf(`(document.querySelector(%q) || {}).textContent || ''`, sel))
}

// waitJS polls a JavaScript condition from Go (the page's CSP forbids the
// eval that chromedp.Poll needs) until it holds, for at most 15 s.
func (tb *webTab) waitJS(cond, what string) {
	tb.t.Helper()
	tb.waitJSFor(cond, what, 15*time.Second)
}

func (tb *webTab) waitJSFor(cond, what string, limit time.Duration) time.Duration {
	tb.t.Helper()
	start := time.Now()
	deadline := start.Add(limit)
	expr := `(() => { try { return !!(` + cond + `); } catch (e) { return false; } })()`
	for {
		ctx, cancel := context.WithTimeout(tb.ctx, 5*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		cancel()
		if err == nil && ok {
			return time.Since(start)
		}
		if time.Now().After(deadline) {
			tb.shot("FAILED-" + strings.ReplaceAll(what, " ", "-"))
			tb.t.Fatalf("%s: waited %v for %s (%s); last error %v; page problems %v", tb.name, limit, what, cond, err, tb.problems())
		}
		if err != nil && errors.Is(err, context.Canceled) {
			tb.t.Fatalf("%s: %v", tb.name, err)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// shot saves a PNG of the whole page as <SCREENSHOT_DIR>/<name>.png.
func (tb *webTab) shot(name string) {
	tb.t.Helper()
	if !tb.ws.shoot && !strings.HasPrefix(name, "FAILED-") {
		return
	}
	ctx, cancel := context.WithTimeout(tb.ctx, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		tb.t.Logf("%s: screenshot %s: %v", tb.name, name, err)
		return
	}
	if err := os.WriteFile(filepath.Join(tb.ws.shots, name+".png"), png, 0o644); err != nil {
		tb.t.Errorf("save screenshot: %v", err)
	}
}

// humanUA makes the tab look like a person's browser: headless Chromium
// says so in its User-Agent, and the shortener counts it as a bot.
func (tb *webTab) humanUA() {
	tb.t.Helper()
	tb.do(chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetUserAgentOverride, emulation.SetUserAgentOverrideParams{
			UserAgent: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/148.0.0.0 Safari/537.36",
		})
		return err
	}))
}

// dark switches the page to the dark colour scheme (or light). Motion is
// always reduced: a tab in the background gets no animation frames, so an
// animation would freeze mid-way in screenshots.
func (tb *webTab) dark(on bool) {
	tb.t.Helper()
	scheme := "light"
	if on {
		scheme = "dark"
	}
	tb.do(chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{
				{Name: "prefers-color-scheme", Value: scheme},
				{Name: "prefers-reduced-motion", Value: "reduce"},
			},
		})
		return err
	}))
}

// touchGesture puts fingers down at from, moves them in steps to to (a
// straight line each), and lifts them: real touch events, as a phone's
// screen sends them.
func (tb *webTab) touchGesture(from, to [][2]float64, steps int) {
	tb.t.Helper()
	at := func(k int) []*input.TouchPoint {
		pts := make([]*input.TouchPoint, len(from))
		for i := range from {
			id := float64(i + 1)
			f := 0.0
			if steps > 0 {
				f = float64(k) / float64(steps)
			}
			pts[i] = &input.TouchPoint{X: from[i][0] + (to[i][0]-from[i][0])*f, Y: from[i][1] + (to[i][1]-from[i][1])*f, ID: &id}
		}
		return pts
	}
	tb.do(chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		send := func(typ input.DispatchTouchEventType, pts []*input.TouchPoint) error {
			_, err := cdp.Call(ctx, tg, input.DispatchTouchEvent, input.DispatchTouchEventParams{Type: typ, TouchPoints: pts})
			return err
		}
		if err := send(input.DispatchTouchEventTypeTouchStart, at(0)); err != nil {
			return err
		}
		for k := 1; k <= steps; k++ {
			if err := send(input.DispatchTouchEventTypeTouchMove, at(k)); err != nil {
				return err
			}
		}
		return send(input.DispatchTouchEventTypeTouchEnd, []*input.TouchPoint{})
	}))
}

// touchTap is one finger down and up at (x, y), without moving.
func (tb *webTab) touchTap(x, y float64) {
	tb.t.Helper()
	tb.touchGesture([][2]float64{{x, y}}, [][2]float64{{x, y}}, 0)
}

// viewport resizes the page (phone: 390×844, touch, mobile).
func (tb *webTab) viewport(w, h int64, mobile bool) {
	tb.t.Helper()
	if mobile {
		tb.do(chromedp.EmulateViewport(w, h, chromedp.EmulateMobile, chromedp.EmulateTouch, chromedp.EmulatePortrait, chromedp.EmulateScale(2)))
		return
	}
	tb.do(chromedp.EmulateViewport(w, h))
}

func (tb *webTab) problems() []string {
	ctx, cancel := context.WithTimeout(tb.ctx, 5*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`Array.from(window.__problems || [])`))
	if err != nil {
		return nil
	}
	return v
}

// checkProblems fails the test on CSP violations and uncaught errors seen
// by the current page.
func (tb *webTab) checkProblems() {
	tb.t.Helper()
	if ps := tb.problems(); len(ps) > 0 {
		tb.t.Errorf("%s: page problems:\n  %s", tb.name, strings.Join(ps, "\n  "))
	}
}
