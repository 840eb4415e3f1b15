package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// TestBrowser drives the web client in a real (headless) Chromium against a
// real server: every flow a person would use, checked through the page
// itself. Screenshots of each view go to $SCREENSHOT_DIR.
func TestBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("browser tests are not short")
	}
	forBackends(t, func(t *testing.T, b backend) {
		ws := startWeb(t, b, nil)
		t.Run("client", func(t *testing.T) { browserClientShell(t, ws) })
		t.Run("session and favorite colour", func(t *testing.T) { browserFavoriteColour(t, ws) })
		t.Run("share", func(t *testing.T) { browserShare(t, ws) })
		t.Run("signed share", func(t *testing.T) { browserSignedShare(t, ws) })
		t.Run("shortener", func(t *testing.T) { browserShortener(t, ws) })
		t.Run("shortener rules", func(t *testing.T) { browserShortenerRules(t, ws) })
		t.Run("vote", func(t *testing.T) { browserVote(t, ws) })
		t.Run("canvas", func(t *testing.T) { browserCanvas(t, ws) })
		t.Run("canvas touch", func(t *testing.T) { browserCanvasTouch(t, ws) })
		t.Run("layout and accessibility", func(t *testing.T) { browserLayoutAndAxe(t, ws) })
	})
}

// suffix makes names unique within a run (the PostgreSQL backend's
// database and every user live as long as the test).
var browserSeq atomic.Int64

func browserSuffix() string {
	return strconv.FormatInt(time.Now().UnixNano()%1e6, 36) + strconv.FormatInt(browserSeq.Add(1), 10)
}

// The client is served with its security headers, and the gateway root
// sends people to it.
func browserClientShell(t *testing.T, ws *webStack) {
	res, err := http.Get(ws.base + "/app/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	_ = res.Body.Close()
	csp := res.Header.Get("Content-Security-Policy")
	if res.StatusCode != 200 || !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") ||
		strings.Contains(csp, "unsafe-inline") || res.Header.Get("ETag") == "" || !strings.Contains(string(body), `src="js/main.js"`) {
		t.Fatalf("GET /app/: %d CSP %q ETag %q", res.StatusCode, csp, res.Header.Get("ETag"))
	}
	req, _ := http.NewRequest("GET", ws.base+"/app/", nil)
	req.Header.Set("If-None-Match", res.Header.Get("ETag"))
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != http.StatusNotModified {
		t.Fatalf("revalidation: %v %v", res, err)
	}
	if res, err := http.Get(ws.base + "/app/nope.js"); err != nil || res.StatusCode != 404 {
		t.Fatalf("unknown file: %v %v", res, err)
	}
	if res, err := http.Get(ws.base + "/app"); err != nil || res.Request.URL.Path != "/app/" {
		t.Fatalf("/app does not lead to /app/: %v %v", res, err)
	}
	js, err := http.Get(ws.base + "/app/js/main.js") // Go asks for gzip and unpacks it
	if err != nil {
		t.Fatal(err)
	}
	_ = js.Body.Close()
	if js.StatusCode != 200 || !js.Uncompressed || !strings.HasPrefix(js.Header.Get("Content-Type"), "text/javascript") {
		t.Fatalf("main.js: %d gzip %v type %q", js.StatusCode, js.Uncompressed, js.Header.Get("Content-Type"))
	}
	if res, err := http.Post(ws.base+"/app/", "text/plain", strings.NewReader("x")); err != nil || res.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST /app/: %v %v", res, err)
	}

	// The page loads with no CSP violation or script error (the tab's
	// cleanup checks), starts a guest session, and lands on a view.
	g := ws.user(t, "shell")
	g.do(chromedp.Navigate(ws.base + "/"))
	g.waitJS(`document.body.dataset.ready === 'true' && location.pathname === '/app/'`, "redirect to the client")
	g.waitJS(`document.querySelector('#account-chip').textContent.includes('Guest')`, "guest session")
	// A first visit makes one identity call: the guest session itself.
	if got := g.str(`performance.getEntriesByType('resource').filter((e) => e.name.includes('/api/v1/auth/')).map((e) => new URL(e.name).pathname).join(' ')`); got != "/api/v1/auth/guest" {
		t.Fatalf("identity calls on a first visit: %q, want only /api/v1/auth/guest", got)
	}
	g.reload()
	g.waitJS(`document.body.dataset.ready === 'true' && document.querySelector('#account-chip').textContent.includes('Guest')`, "the same guest after a reload")
	if got := g.str(`performance.getEntriesByType('resource').filter((e) => e.name.includes('/api/v1/auth/')).map((e) => new URL(e.name).pathname).join(' ')`); got != "/api/v1/auth/me" {
		t.Fatalf("identity calls on a return visit: %q, want only /api/v1/auth/me", got)
	}
	if got := g.str(`document.cookie`); strings.Contains(got, "session") {
		t.Fatalf("session cookie readable by scripts: %q", got)
	}
	// Keyboard users get a skip link first.
	g.press("\t")
	if got := g.str(`document.activeElement.className`); got != "skip" {
		t.Fatalf("first Tab focuses %q, want the skip link", got)
	}
}

func browserFavoriteColour(t *testing.T, ws *webStack) {
	g := ws.user(t, "colour")
	g.open("#/color")
	g.waitVisible("input[name=color]")
	g.shot("color-empty")

	// Bad input: the API's field violation is shown under the field.
	g.fill("input[name=color]", "not-a-colour")
	g.click("#save-color")
	g.waitJS(`document.querySelector('input[name=color]').getAttribute('aria-invalid') === 'true'`, "field marked invalid")
	msg := g.str(`document.querySelector('.field-error').textContent`)
	errID := g.str(`document.querySelector('.field-error').id`)
	if msg == "" || strings.Contains(msg, "Enter a colour") || !strings.Contains(g.str(`document.querySelector('input[name=color]').getAttribute('aria-describedby')`), errID) {
		t.Fatalf("inline error %q (id %s) not from the API or not tied to the field", msg, errID)
	}
	g.shot("color-invalid")

	// Keyboard alone: type a CSS name and press Enter.
	g.fill("input[name=color]", "rebeccapurple")
	g.press("\r")
	g.waitJS(`document.querySelector('#saved-hex').textContent === '#663399'`, "rebeccapurple saved")
	if g.str(`document.querySelector('input[name=color]').getAttribute('aria-invalid')`) != "null" {
		t.Fatal("field still marked invalid after a good save")
	}

	// The native picker fills the text field; save with the button.
	g.eval(`(() => { const p = document.querySelector('input[type=color]'); p.value = '#1e90ff'; p.dispatchEvent(new Event('input', {bubbles: true})); })()`)
	if v := g.str(`document.querySelector('input[name=color]').value`); v != "#1E90FF" {
		t.Fatalf("picker put %q in the text field", v)
	}
	g.click("#save-color")
	g.waitJS(`document.querySelector('#saved-hex').textContent === '#1E90FF' && document.querySelector('#color-status').textContent.includes('Saved')`, "picked colour saved")

	// Reload: still there, from the server.
	g.reload()
	g.waitJS(`document.querySelector('#saved-hex').textContent === '#1E90FF'`, "saved colour after reload")
	g.waitJS(`getComputedStyle(document.querySelector('.swatch-xl')).backgroundColor === 'rgb(30, 144, 255)'`, "swatch painted")
	if v := g.str(`document.querySelector('input[name=color]').value`); v != "#1E90FF" {
		t.Fatalf("text field after reload = %q", v)
	}
	g.shot("color")
	focusRingContrast(t, g, "light")
	g.dark(true)
	g.shot("color-dark")
	focusRingContrast(t, g, "dark")
	g.dark(false)

	// Phone-sized screen: nothing wider than the screen, controls reachable.
	g.viewport(390, 844, true)
	g.reload()
	g.waitJS(`document.querySelector('#saved-hex').textContent === '#1E90FF'`, "colour on a phone")
	if w := g.str(`document.documentElement.scrollWidth + ' ' + innerWidth`); func() bool { var a, b int; fmt.Sscan(w, &a, &b); return a > b }() {
		t.Fatalf("page wider than the phone screen: scrollWidth, innerWidth = %s", w)
	}
	if g.str(`(() => { const r = document.querySelector('#save-color').getBoundingClientRect(); return r.right <= innerWidth && r.width >= 44 && r.height >= 40; })()`) != "true" {
		t.Fatal("save button off screen or too small to tap on a phone")
	}
	g.shot("color-phone")
	g.viewport(1280, 900, false)

	// Register: the guest becomes an account and keeps the colour.
	name := "alice_" + browserSuffix()
	g.route("#/account", "#register")
	g.shot("account-guest")
	g.fill("form:has(#register) input[name=username]", name)
	g.fill("form:has(#register) input[name=password]", "correct-horse-1")
	g.click("#register")
	g.waitJS(fmt.Sprintf(`document.querySelector('#account-chip').textContent.includes(%q)`, name), "signed in after register")
	g.shot("account")
	g.route("#/color", "#saved-hex")
	g.waitJS(`document.querySelector('#saved-hex').textContent === '#1E90FF'`, "colour kept by the new account")

	// Sign out: a fresh guest with nothing saved.
	g.route("#/account", "#logout")
	g.click("#logout")
	g.waitJS(`document.querySelector('#account-chip').textContent.includes('Guest')`, "guest after sign out")
	g.route("#/color", "#saved-hex")
	g.waitJS(`document.querySelector('.view-color').dataset.loaded === 'true'`, "colour view asked the server")
	if v := g.text("#saved-hex"); v != "—" {
		t.Fatalf("a fresh guest sees colour %q", v)
	}

	// Sign in again (wrong password first): the colour is back.
	g.route("#/account", "#login")
	g.fill("form:has(#login) input[name=username]", name)
	g.fill("form:has(#login) input[name=password]", "wrong-password")
	g.click("#login")
	g.waitJS(`document.querySelector('form:has(#login) .status').textContent.includes('Wrong username or password')`, "login refused")
	g.fill("form:has(#login) input[name=password]", "correct-horse-1")
	g.click("#login")
	g.waitJS(fmt.Sprintf(`document.querySelector('#account-chip').textContent.includes(%q)`, name), "signed in")
	g.route("#/color", "#saved-hex")
	g.waitJS(`document.querySelector('#saved-hex').textContent === '#1E90FF'`, "colour after sign in")

	// The access token's cookie expires first: the next call renews the
	// session from the refresh cookie, invisibly, as the same user.
	g.do(chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, network.DeleteCookies, network.DeleteCookiesParams{Name: "session", URL: ws.base + "/"})
		return err
	}))
	g.fill("input[name=color]", "tomato")
	g.click("#save-color")
	g.waitJS(`document.querySelector('#saved-hex').textContent === '#FF6347'`, "saved after the session cookie expired")
	g.reload()
	g.waitJS(fmt.Sprintf(`document.querySelector('#account-chip').textContent.includes(%q) && document.querySelector('#saved-hex').textContent === '#FF6347'`, name), "still the same user")

	// Change the password (a wrong current one first); focus lands on the
	// result, not on <body>.
	g.route("#/account", "#change-password")
	g.fill("form:has(#change-password) input[name=current]", "wrong-password")
	g.fill("form:has(#change-password) input[name=next]", "correct-horse-2")
	g.click("#change-password")
	g.waitJS(`document.querySelector('form:has(#change-password) .status').textContent.includes('That password is wrong')`, "wrong current password refused")
	g.fill("form:has(#change-password) input[name=current]", "correct-horse-1")
	g.click("#change-password")
	g.waitJS(fmt.Sprintf(`document.activeElement && document.activeElement.textContent === %q`, "Signed in as "+name), "focus on the account after the change")

	// Delete the account (the first press only arms the button): a fresh
	// guest again, and the account no longer signs in.
	g.fill("form:has(#delete-account) input[name=password]", "correct-horse-2")
	g.click("#delete-account")
	g.waitJS(`document.querySelector('#delete-account').textContent === 'Confirm delete' && document.querySelector('#account-chip').textContent.includes('alice_')`, "delete armed, nothing deleted yet")
	g.click("#delete-account")
	g.waitJS(`document.querySelector('#account-chip').textContent.includes('Guest')`, "a guest after deleting the account")
	g.waitJS(`document.activeElement && document.activeElement.textContent === 'You are a guest'`, "focus on the result of the deletion")
	g.shot("account-deleted")
	g.fill("form:has(#login) input[name=username]", name)
	g.fill("form:has(#login) input[name=password]", "correct-horse-2")
	g.click("#login")
	g.waitJS(`document.querySelector('form:has(#login) .status').textContent.includes('Wrong username or password')`, "a deleted account cannot sign in")
}

func browserShare(t *testing.T, ws *webStack) {
	owner := ws.user(t, "share-owner")
	owner.open("#/color")
	owner.fill("input[name=color]", "#1E90FF")
	owner.click("#save-color")
	owner.waitJS(`document.querySelector('#saved-hex').textContent === '#1E90FF'`, "colour saved")

	owner.route("#/share", "#create-share")
	owner.eval(`(() => { const s = document.querySelector('select[name=expiry]'); s.value = '86400'; s.dispatchEvent(new Event('change')); })()`)
	owner.click("input[name=kind][value=live]")
	owner.click("#create-share")
	owner.waitJS(`(document.querySelector('#share-result input') || {}).value`, "share link shown")
	link := owner.str(`document.querySelector('#share-result input').value`)
	if !strings.HasPrefix(link, ws.base+"/s/") {
		t.Fatalf("share link %q not on %s", link, ws.base)
	}
	slug := strings.TrimPrefix(link, ws.base+"/s/")
	owner.click("#share-result button")
	owner.waitJS(`document.querySelector('#share-result .status').textContent === 'Copied'`, "copied")
	owner.waitJS(fmt.Sprintf(`document.querySelector('#share-list li[data-slug=%q]')`, slug), "link listed")
	if !strings.Contains(owner.text(fmt.Sprintf(`#share-list li[data-slug=%q]`, slug)), "expires") {
		t.Fatalf("listed link lacks its expiry: %q", owner.text("#share-list"))
	}
	owner.shot("share")

	// Someone else, in a separate browser context, opens the link.
	viewer := ws.user(t, "share-viewer")
	viewer.do(chromedp.Navigate(link))
	viewer.waitJS(`getComputedStyle(document.body).backgroundColor === 'rgb(30, 144, 255)' && document.querySelector('code').textContent === '#1E90FF'`, "shared colour shown")
	viewer.shot("share-page")

	// The link is live: the open page follows the owner's next save
	// without a reload.
	owner.open("#/color")
	owner.fill("input[name=color]", "#FF8C00")
	owner.click("#save-color")
	owner.waitJS(`document.querySelector('#saved-hex').textContent === '#FF8C00'`, "new colour saved")
	viewer.waitJS(`getComputedStyle(document.body).backgroundColor === 'rgb(255, 140, 0)' && document.querySelector('code').textContent === '#FF8C00'`, "open share page repainted")
	owner.route("#/share", "#create-share")
	owner.waitJS(fmt.Sprintf(`document.querySelector('#share-list li[data-slug=%q]')`, slug), "link listed again")

	// Revoke: the owner's list says so and the link stops working.
	owner.click(fmt.Sprintf(`#share-list li[data-slug=%q] button`, slug))
	owner.waitJS(fmt.Sprintf(`document.querySelector('#share-list li[data-slug=%q]').classList.contains('revoked')`, slug), "revoked in list")
	viewer.waitJS(`document.querySelector('main p').textContent === 'This link no longer works.'`, "open page told of the revocation")
	late := ws.user(t, "share-late")
	ctx, cancel := context.WithTimeout(late.ctx, 15*time.Second)
	defer cancel()
	res, err := chromedp.Run(ctx, chromedp.NavigateResponse(link))
	if err != nil || res.Status != http.StatusNotFound {
		t.Fatalf("revoked link answered %v, %v; want 404", res, err)
	}
}

// A signed link: made from the share view (expiry chosen), opens with the
// colour for someone else, and once revoked from the list answers the
// "no longer available" page, as one does once it has expired.
func browserSignedShare(t *testing.T, ws *webStack) {
	owner := ws.user(t, "signed-owner")
	owner.open("#/color")
	owner.fill("input[name=color]", "#2E8B57")
	owner.click("#save-color")
	owner.waitJS(`document.querySelector('#saved-hex').textContent === '#2E8B57'`, "colour saved")

	owner.route("#/share", "#create-signed")
	owner.eval(`(() => { const s = document.querySelector('select[name=signed-expiry]'); s.value = '3600'; s.dispatchEvent(new Event('change')); })()`)
	owner.click("#create-signed")
	owner.waitJS(`(document.querySelector('#signed-result input') || {}).value`, "signed link shown")
	link := owner.str(`document.querySelector('#signed-result input').value`)
	if !strings.HasPrefix(link, ws.base+"/s/t/") {
		t.Fatalf("signed link %q not under %s/s/t/", link, ws.base)
	}
	owner.waitJS(`document.querySelectorAll('#signed-list li.active').length === 1`, "signed link listed")
	if txt := owner.text("#signed-list li.active"); !strings.Contains(txt, "expires") || !strings.Contains(txt, "#2E8B57") {
		t.Fatalf("listed signed link: %q", txt)
	}
	owner.shot("signed-share")

	viewer := ws.user(t, "signed-viewer")
	viewer.do(chromedp.Navigate(link))
	viewer.waitJS(`getComputedStyle(document.body).backgroundColor === 'rgb(46, 139, 87)' && document.querySelector('code').textContent === '#2E8B57'`, "signed colour shown")
	viewer.shot("signed-share-page")

	owner.click("#signed-list li.active button")
	owner.waitJS(`document.querySelectorAll('#signed-list li.revoked').length === 1`, "revoked in list")
	ctx, cancel := context.WithTimeout(viewer.ctx, 15*time.Second)
	defer cancel()
	res, err := chromedp.Run(ctx, chromedp.NavigateResponse(link))
	if err != nil || res.Status != http.StatusGone {
		t.Fatalf("revoked signed link answered %v, %v; want 410", res, err)
	}
	viewer.waitJS(`document.querySelector('h1').textContent === 'No longer available'`, "revocation page shown")

	// An expiring link, made through the owner's page session to live one
	// second: the viewer opens it until its expiry has passed (the event
	// waited for), then gets the same page.
	expiring := webEval[string](owner, `(async () => {
		const r = await fetch('/api/v1/signed-shares', {method: 'POST', credentials: 'same-origin',
			headers: {'Content-Type': 'application/json'}, body: JSON.stringify({expiresInSec: 1})});
		return r.ok ? (await r.json()).url : 'HTTP ' + r.status;
	})()`)
	if !strings.HasPrefix(expiring, ws.base+"/s/t/") {
		t.Fatalf("expiring signed link: %q", expiring)
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		ctx, cancel := context.WithTimeout(viewer.ctx, 15*time.Second)
		res, err := chromedp.Run(ctx, chromedp.NavigateResponse(expiring))
		cancel()
		if err == nil && res.Status == http.StatusGone {
			break
		}
		if err != nil || res.Status != http.StatusOK || time.Now().After(deadline) {
			t.Fatalf("expiring signed link answered %v, %v; want 200 until it expires, then 410", res, err)
		}
	}
	viewer.waitJS(`document.querySelector('h1').textContent === 'No longer available'`, "expiry page shown")
}

func browserShortener(t *testing.T, ws *webStack) {
	var landed atomic.Int64
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/landing" {
			http.NotFound(w, r) // the browser's favicon request
			return
		}
		landed.Add(1)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<!doctype html><title>Landing</title><h1>You made it</h1>`)
	}))
	t.Cleanup(target.Close)
	// By name: the shortener refuses targets on its own host (127.0.0.1).
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(target.URL, "http://"))
	// Long, as tracking links are: the stats page must still fit a phone.
	long := "http://localhost:" + port + "/landing?from=browser&campaign=" + strings.Repeat("spring-sale-", 12)

	a := ws.user(t, "linker")
	a.open("#/links")
	alias := "go-" + browserSuffix()
	a.fill("input[name=longUrl]", long)
	a.click("details.more summary")
	a.fill("input[name=alias]", alias)
	a.click("#shorten")
	a.waitJS(`(document.querySelector('#link-result input') || {}).value`, "short link shown")
	short := a.str(`document.querySelector('#link-result input').value`)
	if short != ws.base+"/"+alias {
		t.Fatalf("short URL %q, want %s/%s", short, ws.base, alias)
	}
	a.waitJS(`document.querySelector('#link-result img.qr').complete && document.querySelector('#link-result img.qr').naturalWidth >= 64`, "QR code image loaded")
	a.waitJS(fmt.Sprintf(`document.querySelector('#link-list li[data-code=%q] .clicks')`, alias), "link listed with clicks")
	a.shot("links")

	// The alias is taken now, and "app" is reserved: both shown at the field.
	a.fill("input[name=longUrl]", long)
	a.fill("input[name=alias]", alias)
	a.click("#shorten")
	a.waitJS(`document.querySelector('input[name=alias]').getAttribute('aria-invalid') === 'true' && document.querySelector('input[name=alias] ~ .field-error').textContent.includes('taken')`, "alias taken")
	a.fill("input[name=alias]", "app")
	a.click("#shorten")
	a.waitJS(`document.querySelector('input[name=alias] ~ .field-error').textContent.includes('reserved')`, "reserved alias refused at the field")
	a.shot("links-errors")

	// A person follows the short link and lands on the target; so does a
	// headless browser, which the stats count apart as a bot.
	// The person comes from a link on another site: the stats name the
	// referrer (its origin, as Chromium's default referrer policy sends it)
	// and the browser.
	person := ws.user(t, "clicker")
	person.humanUA()
	person.do(chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, page.Navigate, page.NavigateParams{URL: short, Referrer: "http://news.example.com/post/1"})
		return err
	}))
	person.waitJS(`document.title === 'Landing' && location.pathname === '/landing'`, "redirected to the target")
	bot := ws.user(t, "headless-clicker")
	bot.do(chromedp.Navigate(short))
	bot.waitJS(`document.title === 'Landing'`, "bot redirected to the target")
	if landed.Load() != 2 {
		t.Fatalf("target reached %d times", landed.Load())
	}

	// The stats view counts both (analytics arrive asynchronously).
	a.route("#/links/"+alias, "#refresh-stats")
	deadline := time.Now().Add(20 * time.Second)
	for a.text("#total-human") != "1" || a.text("#total-bot") != "1" {
		if time.Now().After(deadline) {
			a.shot("FAILED-stats")
			t.Fatalf("stats count %q human and %q bot clicks, want 1 and 1", a.text("#total-human"), a.text("#total-bot"))
		}
		time.Sleep(300 * time.Millisecond)
		a.click("#refresh-stats")
	}
	today := time.Now().UTC().Format("2006-01-02")
	a.waitJS(fmt.Sprintf(`document.querySelector('#stats-chart g.bar[data-date=%q]').dataset.clicks === '2' && document.querySelector('#stats-chart rect.human') && document.querySelector('#stats-chart rect.bot')`, today), "today's bar drawn")
	a.waitJS(`document.querySelectorAll('#stats-countries li').length === 1`, "country listed")
	a.waitJS(`(document.querySelector('#stats-referrers li[data-value="news.example.com"]') || {dataset: {}}).dataset.human === '1'`, "referrer listed")
	a.waitJS(`(document.querySelector('#stats-browsers li[data-value="Chrome"]') || {dataset: {}}).dataset.human === '1'`, "browser listed")
	a.waitJS(`document.querySelector('#stats-devices li[data-value="desktop"]') && document.querySelector('#stats-devices li[data-value="bot"]')`, "device classes listed")
	a.waitJS(`document.querySelector('#stats-os li[data-value="Linux"]')`, "operating system listed")
	// Weeks: today's week holds both clicks in one bucket.
	a.eval(`(() => { const g = document.querySelector('select[name=granularity]'); g.value = 'STATS_GRANULARITY_WEEK'; g.dispatchEvent(new Event('change')); })()`)
	a.waitJS(`document.querySelector('#stats-chart svg').getAttribute('aria-label').startsWith('Clicks per week: 2 in ')`, "weekly chart")
	a.waitJS(`document.querySelector('#stats-qr').naturalWidth >= 64`, "stats QR code")
	a.waitJS(`document.querySelector('#click-count').textContent !== '0'`, "click count in details")
	a.shot("stats")

	// On a phone the stats page is no wider than the screen: the long
	// target is cut with an ellipsis, and Copy, Created and Expires stay on
	// screen.
	a.viewport(390, 844, true)
	a.reload()
	a.waitJS(`document.querySelector('#click-count')`, "stats on a phone")
	// With mobile emulation the layout viewport (innerWidth) grows to fit
	// what overflows: compare with the screen's 390 px.
	if w := a.str(`document.documentElement.scrollWidth`); w != "390" {
		a.shot("FAILED-stats-phone")
		t.Fatalf("stats page %s px wide on a 390 px phone; too wide: %s", w,
			a.str(`[...document.querySelectorAll('#link-details *')].filter((e) => e.getBoundingClientRect().right > 391).slice(0, 4).map((e) => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().width)).join(', ')`))
	}
	onScreen := `((el) => { const r = el.getBoundingClientRect(); return r.width > 0 && r.left >= 0 && r.right <= 390; })`
	for name, sel := range map[string]string{
		"Copy":    `[...document.querySelectorAll('#link-details button')].find((b) => b.textContent === 'Copy')`,
		"Created": `[...document.querySelectorAll('#link-details dt')].find((d) => d.textContent === 'Created')`,
		"Expires": `[...document.querySelectorAll('#link-details dt')].find((d) => d.textContent === 'Expires')`,
		"target":  `document.querySelector('#link-details p.ellipsis')`,
	} {
		if a.str(onScreen+`(`+sel+`)`) != "true" {
			a.shot("FAILED-stats-phone")
			t.Fatalf("%s off the phone screen on the stats page", name)
		}
	}
	if a.str(`(() => { const p = document.querySelector('#link-details p.ellipsis'); return p.scrollWidth > p.clientWidth; })()`) != "true" {
		t.Fatal("the long target is not cut on a phone")
	}
	a.shot("stats-phone")
	a.viewport(1280, 900, false)

	// The list counts people and bots apart and names the last click a
	// person's: no "0 clicks" beside a recent bot visit.
	a.route("#/links", "#link-list li")
	row := fmt.Sprintf(`#link-list li.link-row[data-code=%q]`, alias)
	a.waitJS(fmt.Sprintf(`document.querySelector(%q).textContent.includes('1 click · 1 bot') && document.querySelector(%q).textContent.includes('last click')`, row+" .clicks", row), "human and bot counts in the list")

	// Edit from the list: a bad target is refused at the field, a good one
	// and the redirect kind are saved in place.
	a.click(row + " button.edit")
	edit := fmt.Sprintf(`#link-list li.edit-row[data-code=%q]`, alias)
	a.fill(edit+" input[name=longUrl]", "ftp://nope.example")
	a.click(edit + " button.save")
	a.waitJS(fmt.Sprintf(`document.querySelector(%q).getAttribute('aria-invalid') === 'true'`, edit+" input[name=longUrl]"), "bad target refused at the field")
	edited := long + "&edited=1"
	a.fill(edit+" input[name=longUrl]", edited)
	a.eval(fmt.Sprintf(`document.querySelector(%q).value = 'REDIRECT_KIND_MOVED_PERMANENTLY'`, edit+" select[name=redirectKind]"))
	a.click(edit + " button.save")
	a.waitJS(fmt.Sprintf(`!document.querySelector(%q) && document.querySelector(%q).title === %q && document.querySelector(%q)`, edit, row+" .target", edited, row+" .badge.kind"), "edit saved in the row")
	if res, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Get(short); err != nil || res.StatusCode != http.StatusMovedPermanently || res.Header.Get("Location") != edited {
		t.Fatalf("after the edit the link answered %v, %v; want 301 to the new target", res, err)
	}

	// A password set from the list, then removed.
	a.click(row + " button.edit")
	a.fill(edit+" input[name=password]", "edit-pw-1")
	a.click(edit + " button.save")
	a.waitJS(fmt.Sprintf(`!document.querySelector(%q) && document.querySelector(%q)`, edit, row+" .badge.lock svg"), "password set from the list")
	a.click(row + " button.edit")
	a.click(edit + " input[name=removePassword]")
	a.click(edit + " button.save")
	a.waitJS(fmt.Sprintf(`!document.querySelector(%q) && !document.querySelector(%q)`, edit, row+" .badge.lock"), "password removed from the list")

	// Per-row copy and QR code.
	a.click(row + " button.copy")
	a.waitJS(fmt.Sprintf(`document.querySelector(%q).textContent === 'Copied'`, row+" .status"), "row copied")
	a.click(row + " button.qr-toggle")
	a.waitJS(fmt.Sprintf(`((img) => img && img.complete && img.naturalWidth >= 64)(document.querySelector(%q))`, row+" .row-qr img"), "row QR code shown")

	// Past the first page: 25 more links (made through the page's own API
	// module), then "Show more" brings the rest; a search narrows the list.
	a.eval(`import(new URL('js/api.js', document.baseURI).href).then((m) => m.post('/api/v1/shorten:batch', {requests: Array.from({length: 25}, (_, i) => ({longUrl: 'https://example.com/bulk/' + i}))})).then(() => { window.__bulk = 'done'; }, (e) => { window.__bulk = String(e); })`)
	a.waitJS(`window.__bulk`, "bulk links created")
	if v := a.str(`window.__bulk`); v != "done" {
		t.Fatalf("bulk create: %s", v)
	}
	a.reload()
	a.waitJS(`document.querySelectorAll('#link-list li.link-row').length === 20 && document.querySelector('#links-more').offsetParent !== null`, "first page and Show more")
	a.click("#links-more")
	a.waitJS(fmt.Sprintf(`document.querySelectorAll('#link-list li.link-row').length === 26 && document.querySelector(%q) && document.querySelector('#links-more').offsetParent === null`, row), "second page appended")
	a.fill("input[name=q]", "bulk/1")
	a.waitJS(`[...document.querySelectorAll('#link-list li.link-row .target')].map((p) => p.title).sort().join() === ['https://example.com/bulk/1', 'https://example.com/bulk/10', 'https://example.com/bulk/11', 'https://example.com/bulk/12', 'https://example.com/bulk/13', 'https://example.com/bulk/14', 'https://example.com/bulk/15', 'https://example.com/bulk/16', 'https://example.com/bulk/17', 'https://example.com/bulk/18', 'https://example.com/bulk/19'].join()`, "search by target")
	a.fill("input[name=q]", alias)
	a.waitJS(fmt.Sprintf(`document.querySelectorAll('#link-list li.link-row').length === 1 && document.querySelector(%q) && document.querySelector('#links-more').offsetParent === null`, row), "search by code, nothing more to show")
	a.shot("links-search")

	// Delete asks twice; then the link is gone from the list and answers 410.
	del := fmt.Sprintf(`#link-list li[data-code=%q] button.delete`, alias)
	a.click(del)
	a.waitJS(fmt.Sprintf(`document.querySelector(%q).textContent === 'Confirm delete'`, del), "delete armed")
	a.click(del)
	a.waitJS(fmt.Sprintf(`!document.querySelector('#link-list li[data-code=%q]')`, alias), "link deleted")
	a.fill("input[name=q]", "")
	a.waitJS(`document.querySelectorAll('#link-list li.link-row').length === 20`, "search cleared")
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if res, err := noRedirect.Get(short); err != nil || res.StatusCode != http.StatusGone {
		t.Fatalf("deleted link answered %v, %v; want 410", res, err)
	}

	// A password-protected link is marked by an inline SVG lock with a
	// text alternative, not an emoji that needs a font.
	locked := "lock-" + browserSuffix()
	a.fill("input[name=longUrl]", long)
	if a.str(`document.querySelector('details.more').open`) != "true" {
		a.click("details.more summary")
	}
	a.fill("input[name=alias]", locked)
	a.fill("input[name=password]", "secret-pw-1")
	a.click("#shorten")
	badge := fmt.Sprintf(`#link-list li[data-code=%q] .badge.lock`, locked)
	a.waitJS(fmt.Sprintf(`document.querySelector(%q + ' svg') && document.querySelector(%q).textContent === 'Password protected'`, badge, badge), "lock drawn as SVG")
}

// browserShortenerRules: max visits and device targets set in the create
// form, refused at their fields when bad, and max visits edited from the
// list, which shows "n / max visits".
func browserShortenerRules(t *testing.T, ws *webStack) {
	a := ws.user(t, "rules")
	a.open("#/links")
	alias := "rules-" + browserSuffix()
	row := fmt.Sprintf(`#link-list li.link-row[data-code=%q]`, alias)
	a.click("details.more summary")
	// Bad first: a negative limit and a target that is not http(s).
	a.fill("input[name=longUrl]", "https://example.com/rules")
	a.fill("input[name=alias]", alias)
	a.fill("input[name=maxVisits]", "-1")
	a.fill("input[name=device-android]", "ftp://example.com/app")
	a.click("#shorten")
	a.waitJS(`document.querySelector('input[name=maxVisits]').getAttribute('aria-invalid') === 'true' && document.querySelector('input[name=maxVisits] ~ .field-error').textContent !== ''`, "negative max visits refused at the field")
	a.waitJS(`document.querySelector('input[name=device-android]').getAttribute('aria-invalid') === 'true' && document.querySelector('input[name=device-android] ~ .field-error').textContent.includes('http')`, "bad device target refused at the field")
	if a.str(fmt.Sprintf(`!!document.querySelector(%q)`, row)) != "false" {
		t.Fatal("a refused create was listed")
	}
	a.fill("input[name=maxVisits]", "2")
	a.fill("input[name=device-android]", "")
	a.fill("input[name=device-ios]", "https://example.com/ios")
	a.click("#shorten")
	a.waitJS(fmt.Sprintf(`document.querySelector(%q).textContent.includes('0 / 2 visits') && document.querySelector(%q).textContent.includes('iOS')`, row+" .clicks", row+" .devices"), "limit and device target in the list")

	// Edit the limit from the list: 2 becomes 3.
	a.click(row + " button.edit")
	edit := fmt.Sprintf(`#link-list li.edit-row[data-code=%q]`, alias)
	a.waitJS(fmt.Sprintf(`document.querySelector(%q).value === '2' && document.querySelector(%q).value === 'https://example.com/ios'`, edit+" input[name=maxVisits]", edit+" input[name=device-ios]"), "edit form holds the limit and the iOS target")
	a.fill(edit+" input[name=maxVisits]", "-5")
	a.click(edit + " button.save")
	a.waitJS(fmt.Sprintf(`document.querySelector(%q).getAttribute('aria-invalid') === 'true'`, edit+" input[name=maxVisits]"), "negative limit refused in the edit form")
	a.fill(edit+" input[name=maxVisits]", "3")
	a.click(edit + " button.save")
	a.waitJS(fmt.Sprintf(`!document.querySelector(%q) && document.querySelector(%q).textContent.includes('0 / 3 visits')`, edit, row+" .clicks"), "edited limit in the list")
	a.shot("links-max-visits")

	// The link serves three people, then answers 410; the list counts them.
	short := ws.base + "/" + alias
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for i := range 4 {
		req, _ := http.NewRequest("GET", short, nil)
		req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36")
		res, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = res.Body.Close()
		want := http.StatusFound
		if i == 3 {
			want = http.StatusGone
		}
		if res.StatusCode != want {
			t.Fatalf("visit %d answered %d, want %d", i+1, res.StatusCode, want)
		}
	}
	// Clicks are stored by the next flush: the page's API module polls for them.
	a.eval(fmt.Sprintf(`import(new URL('js/api.js', document.baseURI).href).then(async (m) => { for (let i = 0; i < 200; i++) { const su = await m.get('/api/v1/urls/%s'); if (Number(su.clickCount) === 3) { window.__visits = 'done'; return; } await new Promise((r) => setTimeout(r, 100)); } window.__visits = 'timeout'; }, (e) => { window.__visits = String(e); })`, alias))
	a.waitJSFor(`window.__visits`, "clicks stored", 30*time.Second)
	if v := a.str(`window.__visits`); v != "done" {
		t.Fatalf("waiting for the clicks: %s", v)
	}
	a.reload()
	a.waitJS(fmt.Sprintf(`document.querySelector(%q).textContent.includes('3 / 3 visits') && document.querySelector(%q)`, row+" .clicks", row+" .badge.expired"), "used-up link shown as expired")
}

func browserVote(t *testing.T, ws *webStack) {

	admin := ws.user(t, "vote-admin")
	admin.open("#/account")
	admin.fill("form:has(#login) input[name=username]", "admin")
	admin.fill("form:has(#login) input[name=password]", "admin-password-1")
	admin.click("#login")
	admin.waitJS(`document.querySelector('#account-chip .badge')`, "admin signed in")
	admin.route("#/vote", "#create-election")
	title := "Best colour " + browserSuffix()
	admin.fill("input[name=title]", title)
	admin.fill("textarea[name=candidates]", "Red\nGreen\nBlue")
	admin.shot("vote-create")
	admin.click("#create-election")
	admin.waitJS(`location.hash.startsWith('#/vote/') && document.querySelector('#election-state').textContent === 'Open'`, "election created and open")
	electionID := strings.TrimPrefix(admin.str(`location.hash`), "#/vote/")
	admin.waitJS(`document.querySelector('#live-state').dataset.state === 'live'`, "results stream live")

	// A guest may look but not vote.
	guest := ws.user(t, "vote-guest")
	guest.open("#/vote/" + electionID)
	guest.waitJS(`document.querySelector('#guest-note') && document.querySelectorAll('button.vote:disabled').length === 3`, "guest cannot vote")

	voter := ws.user(t, "voter")
	voter.open("#/account")
	voter.fill("form:has(#register) input[name=username]", "voter_"+browserSuffix())
	voter.fill("form:has(#register) input[name=password]", "correct-horse-2")
	voter.click("#register")
	voter.waitJS(`!document.querySelector('#account-chip').textContent.includes('Guest')`, "voter registered")
	// The voter finds the election in the public list, not by its id.
	voter.route("#/vote", `#election-list li[data-election="`+electionID+`"] a`)
	voter.click(`#election-list li[data-election="` + electionID + `"] a`)
	voter.waitJS(`location.hash === '#/vote/`+electionID+`' && document.querySelectorAll('button.vote').length === 3`, "election opened from the list")
	voter.waitJS(`document.querySelectorAll('button.vote:not(:disabled)').length === 3`, "ballot open")
	// The same person in a second tab, opened before voting.
	second := voter.another("voter-second-tab")
	second.open("#/vote/" + electionID)
	second.waitJS(`document.querySelectorAll('button.vote:not(:disabled)').length === 3`, "second tab ballot open")

	// The network fails as the second tab votes: the ballot says so, and
	// the message goes by itself once the server answers again.
	const netErr = `[...document.querySelectorAll('.status')].some((e) => e.textContent.startsWith('Network error'))`
	ws.streams.sever(true)
	defer ws.streams.sever(false) // a failure below must not leave the later subtests cut off
	second.click(`button.vote[data-candidate="red"]`)
	second.waitJS(netErr, "network error on the ballot")
	ws.streams.sever(false)
	second.waitJS(`!`+netErr, "network error cleared once the server answers")

	voter.click(`button.vote[data-candidate="green"]`)
	voter.waitJS(`document.querySelector('button.vote.chosen[data-candidate="green"]') && document.querySelector('button.vote.chosen').textContent.includes('Voted') && document.querySelectorAll('button.vote:disabled').length === 3`, "vote shown as done")

	// The admin's bars move live, from the stream (no reload).
	admin.waitJS(`document.querySelector('#result-bars li[data-candidate="green"]').dataset.votes === '1' && document.querySelector('#total-votes').textContent === '1'`, "live results on the admin's page")
	voter.waitJS(`document.querySelector('#result-bars li[data-candidate="green"]').dataset.votes === '1'`, "live results on the voter's page")
	voter.shot("vote-voted")

	// The stream drops: the page says so, reconnects by itself with
	// backoff, and catches up with a vote cast meanwhile.
	ws.streams.cut()
	admin.waitJS(`document.querySelector('#live-state').dataset.state === 'retry'`, "results stream reconnecting")
	admin.shot("vote-reconnecting")
	late := newBrowser(ws.p)
	if _, err := late.call(t, "POST", "/api/v1/auth/register", "", map[string]any{"username": "late_" + browserSuffix(), "password": "correct-horse-3"}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := late.call(t, "POST", "/api/v1/votes", "", map[string]any{"electionId": electionID, "candidateId": "blue"}, nil); err != nil {
		t.Fatal(err)
	}
	ws.streams.restore()
	admin.waitJS(`document.querySelector('#live-state').dataset.state === 'live' && document.querySelector('#result-bars li[data-candidate="blue"]').dataset.votes === '1' && document.querySelector('#total-votes').textContent === '2'`, "results caught up after reconnecting")
	admin.shot("vote-results")

	// A connection lost on the way: EventSource reconnects by itself with
	// the last version as Last-Event-ID and gets the newer count.
	mark := len(ws.streams.requests())
	ws.streams.drop()
	later := newBrowser(ws.p)
	if _, err := later.call(t, "POST", "/api/v1/auth/register", "", map[string]any{"username": "later_" + browserSuffix(), "password": "correct-horse-4"}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := later.call(t, "POST", "/api/v1/votes", "", map[string]any{"electionId": electionID, "candidateId": "red"}, nil); err != nil {
		t.Fatal(err)
	}
	admin.waitJS(`document.querySelector('#total-votes').textContent === '3' && document.querySelector('#live-state').dataset.state === 'live'`, "results after a lost connection")
	resumed := false
	for _, r := range ws.streams.requests()[mark:] {
		if r.accept != "text/event-stream" {
			t.Fatalf("the results stream was asked for as %q, not by an EventSource", r.accept)
		}
		resumed = resumed || r.lastEventID == "2"
	}
	if !resumed {
		t.Fatalf("no reconnection resumed after version 2: %+v", ws.streams.requests()[mark:])
	}

	// The second tab still offers the ballot; the server refuses, and the UI says so.
	second.click(`button.vote[data-candidate="red"]`)
	second.waitJS(`document.querySelector('#vote-status').textContent.includes('already voted') && document.querySelectorAll('button.vote:disabled').length === 3`, "second vote refused in the UI")
	second.shot("vote-second-refused")

	// After a reload the ballot knows it was used.
	voter.reload()
	voter.waitJS(`document.querySelectorAll('button.vote:disabled').length === 3 && document.querySelector('#vote-status').textContent.includes('You voted')`, "voted state after reload")

	// The admin closes (asked twice); the open pages show it at once,
	// without reload: badge Closed, every button disabled.
	second.waitJS(`document.querySelector('#live-state').dataset.state === 'live'`, "second tab live")
	admin.click("#close-election")
	admin.waitJS(`document.querySelector('#close-election').textContent === 'Confirm close' && document.querySelector('#election-state').textContent === 'Open'`, "close asks for confirmation")
	admin.click("#close-election")
	for _, b := range []*webTab{voter, second} {
		b.waitJS(`document.querySelector('#election-state').textContent === 'Closed' && document.querySelectorAll('button.vote:not(:disabled)').length === 0`, "close shown live")
	}
	second.shot("vote-closed-live")

	// The exact count agrees: one vote each from the three voters.
	res, err := http.Get(ws.base + "/api/v1/results/" + electionID)
	if err != nil {
		t.Fatal(err)
	}
	var tally struct {
		TotalVotes string `json:"totalVotes"`
	}
	_ = json.NewDecoder(res.Body).Decode(&tally)
	_ = res.Body.Close()
	if tally.TotalVotes != "3" {
		t.Fatalf("exact results count %q votes, want 3", tally.TotalVotes)
	}
}

// boardPixelIs is a JS condition: board pixel (x, y) has colour hex.
func boardPixelIs(x, y int, hex string) string {
	return fmt.Sprintf(`(() => { const d = document.querySelector('#board').getContext('2d').getImageData(%d, %d, 1, 1).data;
		return '#' + [d[0], d[1], d[2]].map((v) => v.toString(16).padStart(2, '0')).join('').toUpperCase() === %q; })()`, x, y, hex)
}

func browserCanvas(t *testing.T, ws *webStack) {
	res, err := http.Get(ws.base + "/api/v1/canvas/info")
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		Width, Height int
		Palette       []string
	}
	_ = json.NewDecoder(res.Body).Decode(&info)
	_ = res.Body.Close()
	if info.Width < 20 || info.Height < 20 || len(info.Palette) != 16 {
		t.Fatalf("canvas info %+v", info)
	}

	ready := `document.querySelector('#viewport').dataset.ready === 'true' && document.querySelector('#canvas-live').dataset.state === 'live'`
	a := ws.user(t, "painter-a")
	b := ws.user(t, "painter-b")
	// A has an account, so the pixel's author has a name; B stays a guest.
	aName := "painter_" + browserSuffix()
	a.open("#/account")
	a.fill("form:has(#register) input[name=username]", aName)
	a.fill("form:has(#register) input[name=password]", "correct-horse-3")
	a.click("#register")
	a.waitJS(`!document.querySelector('#account-chip').textContent.includes('Guest')`, "painter registered")
	a.route("#/canvas", "#viewport")
	b.open("#/canvas")
	a.waitJS(ready, "canvas live in A")
	b.waitJS(ready, "canvas live in B")
	// The first view shows a board pixel as at least 2 screen pixels.
	if z := a.str(`document.querySelector('#viewport').dataset.zoom`); func() bool { f, _ := strconv.ParseFloat(z, 64); return f < 2 }() {
		t.Fatalf("first view at zoom %s, want at least 2 screen pixels a board pixel", z)
	}

	// A zooms in by keyboard, picks a colour and clicks a pixel near the middle.
	x, y := info.Width/2+3, info.Height/2-2
	a.click(`.palette [data-color="5"]`)
	a.do(chromedp.Focus(chromedp.CSS("#viewport")))
	for range 4 {
		a.press("+")
	}
	cx, cy := boardPoint(a, x, y, info.Width, info.Height)
	a.do(chromedp.MouseClickXY(cx, cy))
	a.waitJS(fmt.Sprintf(`document.querySelector('input[name=x]').value === '%d' && document.querySelector('input[name=y]').value === '%d'`, x, y), "pixel selected by click")
	a.click("#place")
	placed := time.Now()
	a.waitJS(boardPixelIs(x, y, info.Palette[5]), "A's own pixel drawn")
	// B sees it live, within two seconds of the click.
	b.waitJSFor(boardPixelIs(x, y, info.Palette[5]), "A's pixel in B", 2*time.Second-time.Since(placed))
	a.waitJS(`document.querySelector('#cooldown').dataset.state === 'wait' && document.querySelector('#cooldown').textContent.includes('Next pixel in') && document.querySelector('#place').disabled`, "A's cooldown running")
	// The selected pixel says who placed it: A's own placement replaced
	// "never placed" as soon as it was made.
	a.waitJS(pixelInfoIs(x, y, aName, "AUTHOR_KIND_USER", "placed by "+aName), "A named as the author of the selected pixel")
	// Hovering another pixel asks after it: nobody placed it yet. The
	// answer stays shown, and is replaced once a placement there arrives.
	hx, hy := boardPoint(a, x+3, y, info.Width, info.Height)
	a.do(chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, hx, hy))
	a.waitJS(pixelInfoIs(x+3, y, "", "AUTHOR_KIND_UNSPECIFIED", "never placed"), "hover: pixel never placed")
	a.shot("canvas")

	// B places a pixel at the neighbouring (other nibble) position by keyboard alone.
	b.click(`.palette [data-color="12"]`)
	b.fill("input[name=x]", strconv.Itoa(x+1))
	b.fill("input[name=y]", strconv.Itoa(y))
	b.eval(`document.querySelector('input[name=y]').dispatchEvent(new Event('change'))`)
	b.do(chromedp.Focus(chromedp.CSS("#viewport")))
	b.press("\r")
	placed = time.Now()
	a.waitJSFor(boardPixelIs(x+1, y, info.Palette[12]), "B's pixel in A", 2*time.Second-time.Since(placed))

	// The streams drop; someone paints meanwhile. The pages reconnect by
	// themselves and resume from their last sequence number: the missed
	// pixel arrives without reloading the snapshot.
	snapshots := b.str(`document.querySelector('#board').dataset.snapshots`)
	ws.streams.cut()
	a.waitJS(`document.querySelector('#canvas-live').dataset.state === 'retry'`, "A reconnecting")
	b.waitJS(`document.querySelector('#canvas-live').dataset.state === 'retry'`, "B reconnecting")
	c := newBrowser(ws.p)
	c.guest(t)
	if _, err := c.call(t, "POST", "/api/v1/canvas/pixels", "", map[string]any{"x": x + 2, "y": y, "color": 9}, nil); err != nil {
		t.Fatal(err)
	}
	ws.streams.restore()
	b.waitJS(boardPixelIs(x+2, y, info.Palette[9])+` && document.querySelector('#canvas-live').dataset.state === 'live'`, "missed pixel after reconnecting")
	a.waitJS(boardPixelIs(x+2, y, info.Palette[9]), "missed pixel in A")
	if got := b.str(`document.querySelector('#board').dataset.snapshots`); got != snapshots {
		t.Fatalf("B reloaded the snapshot (%s loads, had %s) instead of resuming from its sequence", got, snapshots)
	}

	// A connection lost on the way (the server still there): the browser's
	// EventSource reconnects by itself, sending the last event id, and the
	// pixel painted meanwhile arrives, again without a snapshot.
	mark := len(ws.streams.requests())
	seq := b.str(`document.querySelector('#board').dataset.seq`)
	ws.streams.drop()
	d := newBrowser(ws.p)
	d.guest(t)
	if _, err := d.call(t, "POST", "/api/v1/canvas/pixels", "", map[string]any{"x": x + 3, "y": y, "color": 4}, nil); err != nil {
		t.Fatal(err)
	}
	b.waitJS(boardPixelIs(x+3, y, info.Palette[4])+` && document.querySelector('#canvas-live').dataset.state === 'live'`, "pixel painted while the stream was lost")
	a.waitJS(pixelInfoIs(x+3, y, "guest", "AUTHOR_KIND_GUEST", "placed by a guest"), "hovered pixel's author updated by the delta")
	if got := b.str(`document.querySelector('#board').dataset.snapshots`); got != snapshots {
		t.Fatalf("B reloaded the snapshot after a lost connection (%s loads, had %s)", got, snapshots)
	}
	resumed := false
	for _, r := range ws.streams.requests()[mark:] {
		if r.path != "/api/v1/canvas/stream" {
			continue
		}
		if r.accept != "text/event-stream" {
			t.Fatalf("the canvas stream was asked for as %q, not by an EventSource", r.accept)
		}
		if r.lastEventID != "" {
			resumed = true
			n, err := strconv.ParseInt(r.lastEventID, 10, 64)
			if s, _ := strconv.ParseInt(seq, 10, 64); err != nil || n < s {
				t.Fatalf("reconnected with Last-Event-ID %q, behind the page's seq %s", r.lastEventID, seq)
			}
		}
	}
	if !resumed {
		t.Fatalf("no reconnection carried Last-Event-ID: %+v", ws.streams.requests()[mark:])
	}

	// People paint elsewhere; a page opened now starts centred there (the
	// median of the latest placements), not on the board's centre.
	for i := range 5 {
		e := newBrowser(ws.p)
		e.guest(t)
		if _, err := e.call(t, "POST", "/api/v1/canvas/pixels", "", map[string]any{"x": info.Width*6/10 + i, "y": info.Height * 7 / 10, "color": 3}, nil); err != nil {
			t.Fatal(err)
		}
	}

	// A second tab of A does not know A's cooldown: its placement is drawn
	// at once, refused by the server, and rolled back; the timer starts.
	a2 := a.another("painter-a-second-tab")
	a2.open("#/canvas")
	a2.waitJS(ready+` && document.querySelector('#viewport').dataset.centred === 'recent'`, "canvas live in A's second tab, centred on recent placements")
	centre := a2.str(`(() => { const v = document.querySelector('#viewport').getBoundingClientRect(), r = document.querySelector('#board').getBoundingClientRect();
		return ((v.left + v.width / 2 - r.left) * ` + strconv.Itoa(info.Width) + ` / r.width) + ' ' + ((v.top + v.height / 2 - r.top) * ` + strconv.Itoa(info.Height) + ` / r.height); })()`)
	var mx, my float64
	fmt.Sscan(centre, &mx, &my)
	if wx, wy := float64(info.Width*6/10+2), float64(info.Height*7/10); mx < wx-3 || mx > wx+3 || my < wy-3 || my > wy+3 {
		t.Fatalf("first view centred on board point %s, want near the recent placements at (%v, %v)", centre, wx, wy)
	}
	a2.waitJS(boardPixelIs(x, y, info.Palette[5])+" && "+boardPixelIs(x+1, y, info.Palette[12])+" && "+boardPixelIs(x+2, y, info.Palette[9]), "snapshot shows every pixel")
	before := info.Palette[0]
	a2.waitJS(boardPixelIs(x, y+3, before), "target pixel still blank")
	// Hold the placement request a moment so the optimistic pixel is observable.
	a2.eval(`(() => { const f = window.fetch; window.fetch = (u, i) => String(u).includes('/canvas/pixels')
		? new Promise((r) => setTimeout(r, 400)).then(() => f(u, i)) : f(u, i); })()`)
	a2.click(`.palette [data-color="13"]`)
	a2.fill("input[name=x]", strconv.Itoa(x))
	a2.fill("input[name=y]", strconv.Itoa(y+3))
	a2.eval(`document.querySelector('input[name=y]').dispatchEvent(new Event('change'))`)
	a2.click("#place")
	a2.waitJS(boardPixelIs(x, y+3, info.Palette[13]), "optimistic pixel drawn")
	a2.waitJS(boardPixelIs(x, y+3, before)+` && document.querySelector('#canvas-status').textContent.includes('Too soon') && document.querySelector('#cooldown').dataset.state === 'wait'`, "refused pixel rolled back, cooldown shown")
	a2.shot("canvas-refused")
	if b.str(boardPixelIs(x, y+3, before)) != "true" {
		t.Fatal("a refused pixel reached another viewer")
	}
	b.shot("canvas-viewer")

	// On a phone the phone rule sizes the board (it used to lose to the
	// base rule), and an idle live page runs no endless animation.
	b.viewport(390, 844, true)
	b.waitJS(`(() => { const v = document.querySelector('#viewport');
		return Math.abs(v.getBoundingClientRect().height - Math.min(0.6 * innerHeight, 0.92 * innerWidth)) < 1; })()`, "phone board height from the phone rule")
	if got := b.str(`getComputedStyle(document.querySelector('#canvas-live'), '::before').animationName`); got != "none" {
		t.Fatalf("live dot animation %q, want none", got)
	}
	if got := b.str(`document.getAnimations().filter((a) => a.effect && a.effect.getTiming().iterations === Infinity).length`); got != "0" {
		t.Fatalf("%s endless animations on an idle canvas page", got)
	}

	// A tap on A's pixel (zoomed in around B's selection, next to it)
	// selects it and names its author, and Place is on the screen at once:
	// nothing scrolls between the tap and Place.
	b.do(chromedp.Focus(chromedp.CSS("#viewport")))
	for range 3 {
		b.press("+")
	}
	tx, ty := boardPoint(b, x, y, info.Width, info.Height)
	if got := b.str(fmt.Sprintf(`(() => { const el = document.elementFromPoint(%v, %v);
		return scrollY + ' ' + (el && el.closest('#viewport') ? 'board' : el ? el.tagName + '.' + el.className : 'nothing'); })()`, tx, ty)); !strings.HasSuffix(got, " board") {
		t.Fatalf("the pixel to tap at (%v, %v) is not on the visible board: scrollY and element %s", tx, ty, got)
	}
	scrollY := b.str(`scrollY`)
	b.do(chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		if _, err := cdp.Call(ctx, tg, input.DispatchTouchEvent, input.DispatchTouchEventParams{
			Type: input.DispatchTouchEventTypeTouchStart, TouchPoints: []*input.TouchPoint{{X: tx, Y: ty}},
		}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, tg, input.DispatchTouchEvent, input.DispatchTouchEventParams{
			Type: input.DispatchTouchEventTypeTouchEnd, TouchPoints: []*input.TouchPoint{},
		})
		return err
	}))
	b.waitJS(fmt.Sprintf(`document.querySelector('#place').textContent === 'Place at %d, %d'`, x, y), "tap selects the pixel")
	b.waitJS(pixelInfoIs(x, y, aName, "AUTHOR_KIND_USER", "placed by "+aName), "tap: A named as the pixel's author")
	if got := b.str(`(() => { const r = document.querySelector('#place').getBoundingClientRect(), h = innerHeight;
		return r.top >= 0 && r.bottom <= h && r.height >= 40 && document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2) === document.querySelector('#place') ? 'visible' : r.top + '..' + r.bottom + ' of ' + h; })()`); got != "visible" {
		t.Fatalf("after a tap on the phone, Place is not on the screen: %s", got)
	}
	if got := b.str(`scrollY`); got != scrollY {
		t.Fatalf("the page scrolled from %s to %s between the tap and Place", scrollY, got)
	}
	b.shot("canvas-phone")
	b.viewport(1280, 900, false)
}

// On a phone, with real touch events: one finger dragged pans the board
// and selects nothing, two fingers pinched apart zoom around their
// midpoint, and a tap selects the pixel under it; Place is then on the
// screen without scrolling, and a tap on it stores the pixel.
func browserCanvasTouch(t *testing.T, ws *webStack) {
	res, err := http.Get(ws.base + "/api/v1/canvas/info")
	if err != nil {
		t.Fatal(err)
	}
	var info struct{ Width, Height int }
	_ = json.NewDecoder(res.Body).Decode(&info)
	_ = res.Body.Close()

	p := ws.user(t, "phone-painter")
	p.viewport(390, 844, true)
	p.open("#/canvas")
	p.waitJS(`document.querySelector('#viewport').dataset.ready === 'true' && document.querySelector('#canvas-live').dataset.state === 'live'`, "canvas live on the phone")
	// A key press first: the view is the person's from then on (the first
	// view would otherwise recentre on recent placements mid-gesture).
	p.do(chromedp.Focus(chromedp.CSS("#viewport")))
	p.press("+")
	boardRect := func() (left, top, width float64) {
		fmt.Sscan(p.str(`(() => { const r = document.querySelector('#board').getBoundingClientRect(); return r.left + ' ' + r.top + ' ' + r.width; })()`), &left, &top, &width)
		return
	}
	nothingSelected := func(after string) {
		t.Helper()
		if got := p.str(`document.querySelector('#place').textContent + ' ' + document.querySelector('.cursor').hidden`); got != "Select a pixel true" {
			t.Fatalf("after %s: Place says / cursor hidden %q, want nothing selected", after, got)
		}
	}
	// The gestures start at the middle of the board's box, which must be
	// the board on screen (not the docked controls over it).
	cx, cy := 0.0, 0.0
	fmt.Sscan(p.str(`(() => { const r = document.querySelector('#viewport').getBoundingClientRect(); return (r.left + r.width / 2) + ' ' + (r.top + r.height / 2); })()`), &cx, &cy)
	if got := p.str(fmt.Sprintf(`(() => { const el = document.elementFromPoint(%v, %v); return el && el.closest('#viewport') ? 'board' : String(el && el.className); })()`, cx, cy)); got != "board" {
		t.Fatalf("the middle of the board (%v, %v) is covered by %q", cx, cy, got)
	}
	scrollY := p.str(`scrollY`)

	// One finger: the board follows it, and nothing is selected.
	l0, t0, _ := boardRect()
	p.touchGesture([][2]float64{{cx, cy}}, [][2]float64{{cx - 80, cy - 50}}, 8)
	p.waitJS(fmt.Sprintf(`(() => { const r = document.querySelector('#board').getBoundingClientRect(); return Math.abs(r.left - %v) < 1 && Math.abs(r.top - %v) < 1; })()`, l0-80, t0-50), "one-finger drag pans by the finger's path")
	nothingSelected("a one-finger drag")
	if got := p.str(`scrollY`); got != scrollY {
		t.Fatalf("a drag on the board scrolled the page from %s to %s", scrollY, got)
	}

	// Two fingers 60 px apart spread to 180 px while their midpoint moves
	// by (20, 10): three times the zoom, and the board point that was
	// between them is between them still.
	z0, _ := strconv.ParseFloat(p.str(`document.querySelector('#viewport').dataset.zoom`), 64)
	l1, t1, w1 := boardRect()
	bx, by := (cx-l1)/w1, (cy-t1)/w1 // board point under the midpoint, in board widths
	p.touchGesture([][2]float64{{cx - 30, cy}, {cx + 30, cy}}, [][2]float64{{cx + 20 - 90, cy + 10}, {cx + 20 + 90, cy + 10}}, 8)
	p.waitJS(fmt.Sprintf(`Math.abs(Number(document.querySelector('#viewport').dataset.zoom) / %v - 3) < 0.05`, z0), "pinch zooms by the fingers' spread")
	l2, t2, w2 := boardRect()
	if gx, gy := l2+bx*w2, t2+by*w2; math.Abs(gx-(cx+20)) > 2 || math.Abs(gy-(cy+10)) > 2 {
		t.Fatalf("after the pinch, the board point that was under the fingers' midpoint is at (%v, %v), want (%v, %v)", gx, gy, cx+20, cy+10)
	}
	nothingSelected("a pinch")

	// A tap on a colour and on the pixel under the middle selects it.
	sx, sy := 0.0, 0.0
	fmt.Sscan(p.str(`(() => { const r = document.querySelector('.palette [data-color="11"]').getBoundingClientRect(); return (r.left + r.width / 2) + ' ' + (r.top + r.height / 2); })()`), &sx, &sy)
	p.touchTap(sx, sy)
	p.waitJS(`document.querySelector('.palette [data-color="11"]').getAttribute('aria-checked') === 'true'`, "tap picks colour 11")
	x := int(math.Floor((cx - l2) * float64(info.Width) / w2))
	y := int(math.Floor((cy - t2) * float64(info.Width) / w2))
	px, py := boardPoint(p, x, y, info.Width, info.Height)
	p.touchTap(px, py)
	p.waitJS(fmt.Sprintf(`document.querySelector('#place').textContent === 'Place at %d, %d' && !document.querySelector('.cursor').hidden`, x, y), "tap selects the pixel")
	var bx0, by0, bw, bh float64
	fmt.Sscan(p.str(`(() => { const r = document.querySelector('#place').getBoundingClientRect(); return [r.left, r.top, r.width, r.height].join(' '); })()`), &bx0, &by0, &bw, &bh)
	if got := p.str(fmt.Sprintf(`(() => { const el = document.elementFromPoint(%v, %v); return %v >= 0 && %v <= innerHeight && el && el.closest('#place') ? 'visible' : 'covered by ' + (el && el.className); })()`, bx0+bw/2, by0+bh/2, by0, by0+bh)); got != "visible" {
		t.Fatalf("after the tap, Place is not on the screen: %s", got)
	}
	if got := p.str(`scrollY`); got != scrollY {
		t.Fatalf("the page scrolled from %s to %s between the gestures and Place", scrollY, got)
	}
	start := time.Now().Add(-time.Second)
	p.touchTap(bx0+bw/2, by0+bh/2)
	p.waitJS(fmt.Sprintf(`document.querySelector('#canvas-status').textContent.includes('Placed at %d, %d.')`, x, y), "Place tapped: placed")
	p.shot("canvas-touch")

	// The server has it: this guest's colour 11, just now.
	var px1 struct {
		Color      int
		Placed     bool
		Time       time.Time
		AuthorKind string
	}
	if _, err := newREST(ws.p).call(t, "GET", fmt.Sprintf("/api/v1/canvas/pixels/%d/%d", x, y), "", nil, &px1); err != nil {
		t.Fatal(err)
	}
	if !px1.Placed || px1.Color != 11 || px1.AuthorKind != "AUTHOR_KIND_GUEST" || px1.Time.Before(start) {
		t.Fatalf("pixel (%d, %d) on the server: %+v, want colour 11 placed by a guest just now", x, y, px1)
	}

	// Outside the board a finger still scrolls the page: only the board
	// takes the gestures for itself.
	if p.str(`document.documentElement.scrollHeight > innerHeight + 20`) == "true" {
		hx, hy := 0.0, 0.0
		fmt.Sscan(p.str(`(() => { const r = document.querySelector('h1').getBoundingClientRect(); return (r.left + 20) + ' ' + (r.top + r.height / 2); })()`), &hx, &hy)
		p.touchGesture([][2]float64{{hx, hy + 60}}, [][2]float64{{hx, hy - 40}}, 10)
		p.waitJS(`scrollY > 10`, "a swipe on the heading scrolls the page")
	} else {
		t.Logf("the canvas page fits the phone's screen: no page scroll to check")
	}

	// The mouse keeps its ways on a desktop: a drag pans and selects
	// nothing, the wheel zooms.
	p.viewport(1280, 900, false)
	p.reload()
	p.waitJS(`document.querySelector('#viewport').dataset.ready === 'true'`, "canvas ready on the desktop")
	p.do(chromedp.Focus(chromedp.CSS("#viewport")))
	p.press("+")
	fmt.Sscan(p.str(`(() => { const r = document.querySelector('#viewport').getBoundingClientRect(); return (r.left + r.width / 2) + ' ' + (r.top + r.height / 2); })()`), &cx, &cy)
	l3, t3, _ := boardRect()
	p.do(chromedp.MouseEvent(input.DispatchMouseEventTypeMousePressed, cx, cy, chromedp.ButtonLeft),
		chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, cx+20, cy+15, chromedp.ButtonLeft),
		chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, cx+40, cy+30, chromedp.ButtonLeft),
		chromedp.MouseEvent(input.DispatchMouseEventTypeMouseReleased, cx+40, cy+30, chromedp.ButtonLeft))
	p.waitJS(fmt.Sprintf(`(() => { const r = document.querySelector('#board').getBoundingClientRect(); return Math.abs(r.left - %v) < 1 && Math.abs(r.top - %v) < 1; })()`, l3+40, t3+30), "mouse drag pans")
	nothingSelected("a mouse drag")
	z3 := p.str(`document.querySelector('#viewport').dataset.zoom`)
	p.do(chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		// DeltaX 1, not 0: the params leave out a zero, and a wheel event
		// without deltaX is refused (the board ignores horizontal wheel).
		_, err := cdp.Call(ctx, tg, input.DispatchMouseEvent, input.DispatchMouseEventParams{Type: input.DispatchMouseEventTypeMouseWheel, X: cx, Y: cy, DeltaX: 1, DeltaY: -200})
		return err
	}))
	p.waitJS(fmt.Sprintf(`Number(document.querySelector('#viewport').dataset.zoom) > %s`, z3), "the wheel zooms in")
}

// focusRingContrast checks the keyboard focus ring of the colour field
// against the card it sits on: at least 3:1 (WCAG 1.4.11), in either
// colour scheme.
func focusRingContrast(t *testing.T, g *webTab, scheme string) {
	t.Helper()
	g.eval(`document.querySelector('input[name=color]').focus()`)
	got := g.str(`(() => {
		const rgb = (s) => (s.match(/rgba?\(([^)]+)\)/) || [, '0,0,0,0'])[1].split(',').map(Number);
		const lum = ([r, g, b]) => { const f = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; }; return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
		const el = document.querySelector('input[name=color]');
		let card = el.parentElement;
		while (card && rgb(getComputedStyle(card).backgroundColor)[3] === 0) card = card.parentElement;
		const bg = rgb(getComputedStyle(card || document.body).backgroundColor);
		const [r, g, b, a = 1] = rgb(getComputedStyle(el).boxShadow);
		const ring = [r, g, b].map((c, i) => c * a + bg[i] * (1 - a));
		const [hi, lo] = [lum(ring), lum(bg)].sort((x, y) => y - x);
		return ((hi + 0.05) / (lo + 0.05)).toFixed(2);
	})()`)
	var ratio float64
	fmt.Sscan(got, &ratio)
	if ratio < 3 {
		t.Errorf("focus ring contrast in the %s scheme: %s:1, want at least 3:1", scheme, got)
	}
}

// boardPoint is where board pixel (x, y) is on the tab's screen (its centre).
func boardPoint(tb *webTab, x, y, w, h int) (float64, float64) {
	tb.t.Helper()
	pt := tb.str(fmt.Sprintf(`(() => { const r = document.querySelector('#board').getBoundingClientRect();
		return (r.left + (%d + 0.5) * r.width / %d) + ' ' + (r.top + (%d + 0.5) * r.height / %d); })()`, x, w, y, h))
	var cx, cy float64
	fmt.Sscan(pt, &cx, &cy)
	return cx, cy
}

// pixelInfoIs: the canvas page names the author of pixel (x, y) (its
// display name and kind) in a text containing text.
func pixelInfoIs(x, y int, author, kind, text string) string {
	return fmt.Sprintf(`(() => { const p = document.querySelector('#pixel-info');
		return !p.hidden && p.dataset.pixel === '%d,%d' && p.dataset.author === %q && p.dataset.kind === %q && p.textContent.includes(%q); })()`,
		x, y, author, kind, text)
}

// axeSource is axe-core's script, pinned in .ci/openapi (AXE_JS names it;
// make test sets it, so a missing file fails there).
func axeSource(t *testing.T) string {
	t.Helper()
	path := os.Getenv("AXE_JS")
	if path == "" {
		path = "../../.ci/openapi/node_modules/axe-core/axe.min.js"
	}
	src, err := os.ReadFile(path)
	if err != nil {
		if os.Getenv("AXE_JS") != "" {
			t.Fatalf("axe-core: %v", err)
		}
		t.Logf("axe-core is not installed (.ci/openapi/run lint installs it): layout checked, accessibility rules not")
		return ""
	}
	return string(src)
}

// Every view at a small phone's 320 px, a phone's 390 px and a desktop's
// 1280 px: nothing wider than the screen, and no axe-core violation.
func browserLayoutAndAxe(t *testing.T, ws *webStack) {
	axe := axeSource(t)
	g := ws.user(t, "a11y")
	g.open("#/color")
	post := func(path, body, pick string) string {
		return webEval[string](g, fmt.Sprintf(`fetch(%q, {method: %q, headers: {'Content-Type': 'application/json'}, body: %q}).then((r) => r.json()).then((j) => %s)`,
			path, map[bool]string{true: "PUT", false: "POST"}[path == "/api/v1/favorite"], body, pick))
	}
	post("/api/v1/favorite", `{"color":"teal"}`, "j.hex")
	slug := post("/api/v1/shares", `{"snapshot":true}`, "j.slug")
	code := post("/api/v1/shorten", `{"longUrl":"https://example.com/a-rather-long-path/that/keeps/going/and/going?with=a&query=string"}`, "j.code")
	guarded := post("/api/v1/shorten", `{"longUrl":"https://example.com/guarded","password":"correct-horse-9"}`, "j.code")
	// The views, a share page, the password form, and the error pages a
	// browser gets for an unknown share or code.
	pages := []string{"/app/#/color", "/app/#/share", "/app/#/links", "/app/#/links/" + code, "/app/#/vote", "/app/#/canvas", "/app/#/account",
		"/s/" + slug, "/" + guarded, "/s/unknownshare0", "/unknowncode0"}
	for _, width := range []int64{320, 390, 1280} {
		g.viewport(width, 844, width < 820)
		for _, page := range pages {
			g.checkProblems()
			g.do(chromedp.Navigate(ws.base + page))
			g.waitJS(`document.querySelector('h1') && (!location.pathname.startsWith('/app/') || document.body.dataset.ready === 'true')`, page+" shown")
			if w := g.str(`document.documentElement.scrollWidth + ' ' + innerWidth`); func() bool { var a, b int; fmt.Sscan(w, &a, &b); return a > b }() {
				t.Errorf("%s at %d px: wider than the screen (scrollWidth, innerWidth = %s)", page, width, w)
			}
			if axe == "" {
				continue
			}
			webEval[bool](g, axe+"\n;true")
			if v := webEval[string](g, `axe.run(document, {resultTypes: ['violations']}).then((r) => JSON.stringify(r.violations.map((v) => ({id: v.id, impact: v.impact, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' '))}))))`); v != "[]" {
				t.Errorf("%s at %d px: axe violations %s", page, width, v)
			}
		}
	}
	g.viewport(1280, 900, false)
}
