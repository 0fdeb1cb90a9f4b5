package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// chromiumPath is Debian's Chromium, which make setup installs.
const chromiumPath = "/usr/bin/chromium"

// screenshotsEnv names the directory the browser tests save their
// screenshots in; make test sets it to bin/screenshots.
const screenshotsEnv = "FLOWWATCH_SCREENSHOTS"

// alertOnPageWithin is how soon an alert must reach an open console page.
const alertOnPageWithin = 5 * time.Second

// TestConsoleInBrowser drives the console in Debian's Chromium against the
// demo site, its sample cameras and the default model: an operator's wall
// plays live video and takes a real alert within five seconds and
// acknowledges it with a click, which the audit log records; a guard on a
// phone-sized screen takes and acknowledges the alert of their post; a
// planner's page draws a chart and a heatmap; the public page needs no
// login; a viewer reaches no admin page or endpoint.
func TestConsoleInBrowser(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skipf("no Chromium at %s: run make setup (%v)", chromiumPath, err)
	}
	t.Setenv(adminPasswordEnv, "Browser-Console-Pw-2026")
	// The plaza gets a capacity its few walkers fill, so that both the
	// square (the operator's) and the plaza (the guard's post) raise an
	// alert; alerts wait 25 s so that every page is open before they come.
	base, _, _ := startDemo(t, func(y string) string {
		y = strings.Replace(y, "zones: [vtest/plaza]\n    capacity: 12", "zones: [vtest/plaza]\n    capacity: 4", 1)
		return strings.Replace(y, "min_duration: 10s", "min_duration: 25s", 1)
	})
	api := &consoleClient{t: t, base: base}
	api.waitUp()
	api.token = api.login("admin", "Browser-Console-Pw-2026")
	users := map[string]string{}
	for _, u := range []struct {
		name, role string
		posts      []string
	}{
		{"op1", "operator", nil}, {"guard1", "guard", []string{"plaza"}}, {"plan1", "planner", nil}, {"view1", "viewer", nil},
	} {
		users[u.name] = api.createUser(u.name, u.role, u.posts)
	}
	shots := screenshotDir(t)

	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		// loopback ICE candidates, so that the test needs no other interface
		chromedp.Flag("allow-loopback-in-peer-connection", true),
		chromedp.WindowSize(1400, 900),
	)...)
	defer cancelAlloc()
	browser, cancelBrowser := chromedp.NewContext(allocCtx)
	defer cancelBrowser()
	if err := chromedp.Do(browser); err != nil { // starts the browser
		t.Fatalf("start %s: %v", chromiumPath, err)
	}
	// each person has a browser context of their own: their own cookies
	person := func() context.Context {
		ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
		t.Cleanup(cancel)
		// the tab opens on the first run, which must have no deadline:
		// the tab lives as long as the context of that run
		if err := chromedp.Do(ctx); err != nil {
			t.Fatalf("open a tab: %v", err)
		}
		watchCSP(t, ctx)
		return ctx
	}
	operator, guard := person(), person()

	// The operator logs in; the wall plays live video.
	page := &browserPage{t: t, ctx: operator, base: base, shots: shots}
	page.login("op1", users["op1"])
	page.do(chromedp.Navigate(base+"/#/wall"),
		chromedp.WaitVisible(`[data-test=tile][data-camera=vtest] video`))
	frames := `(() => { const v = document.querySelector('[data-test=tile][data-camera=vtest] video');
		return v ? v.getVideoPlaybackQuality().totalVideoFrames : 0 })()`
	page.poll(frames+" > 5", 45*time.Second, "the vtest tile decodes video frames")
	n1 := page.number(frames)
	page.do(chromedp.Sleep(2 * time.Second))
	n2 := page.number(frames)
	if n2 <= n1 {
		t.Fatalf("the wall's vtest video decoded %v frames, then %v two seconds later: it is not playing", n1, n2)
	}
	t.Logf("wall: vtest tile decoded %v frames, %v two seconds later", n1, n2)
	page.shot("wall")

	// The guard opens the phone page.
	phone := &browserPage{t: t, ctx: guard, base: base, shots: shots}
	phone.do(chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(3), chromedp.EmulateMobile, chromedp.EmulateTouch))
	phone.login("guard1", users["guard1"])
	phone.do(chromedp.Navigate(base + "/#/guard"))
	ready := time.Now()

	// An alert on the square reaches the wall within five seconds of being
	// raised; the operator acknowledges it with a click.
	squareAlert := `[data-test=alert][data-target="area:square"]`
	page.poll(fmt.Sprintf(`document.querySelector('%s') !== null`, squareAlert), 2*time.Minute, "an alert on the square reaches the wall")
	seen := time.Now()
	id := page.attr(squareAlert, "data-alert-id")
	al := api.alert(id)
	if al.OpenedAt.Before(ready) {
		t.Fatalf("alert %s opened at %s, before the pages were ready at %s: the test cannot time it", id, al.OpenedAt, ready)
	}
	if lag := seen.Sub(al.OpenedAt); lag > alertOnPageWithin {
		t.Fatalf("alert %s reached the wall %s after it was raised, want within %s", id, lag.Round(time.Millisecond), alertOnPageWithin)
	} else {
		t.Logf("alert %s (%s on %s) reached the wall %s after it was raised", id, al.Level, al.Target, lag.Round(time.Millisecond))
	}
	page.shot("wall-alert")
	one := fmt.Sprintf(`[data-test=alert][data-alert-id="%s"]`, id)
	page.do(chromedp.Click(one+` [data-test=alert-ack]`),
		chromedp.WaitVisible(one+` [data-test=ack-note]`),
		chromedp.SendKeys(one+` [data-test=ack-note]`, "diverting at the north gate"),
		chromedp.Click(one+` [data-test=ack-confirm]`))
	page.poll(fmt.Sprintf(`(document.querySelector('%s') || {}).dataset?.state === 'acknowledged'`, one), 10*time.Second,
		"the wall shows the alert acknowledged")
	if al = api.alert(id); al.State != "acknowledged" || al.AckedBy != "op1" {
		t.Fatalf("after the click alert %s is %s by %q, want acknowledged by op1", id, al.State, al.AckedBy)
	}
	if !api.audited("alert.ack", "alert "+id, "op1") {
		t.Fatalf("the audit log has no alert.ack of alert %s by op1", id)
	}

	// The guard's phone takes the plaza's alert and acknowledges it with
	// one tap.
	phone.poll(`document.querySelector('[data-test=guard-alert]') !== null`, 2*time.Minute, "an alert of the guard's post reaches the phone")
	seen = time.Now()
	gid := phone.attr(`[data-test=guard-alert]`, "data-alert-id")
	gal := api.alert(gid)
	if gal.OpenedAt.After(ready) {
		if lag := seen.Sub(gal.OpenedAt); lag > alertOnPageWithin {
			t.Fatalf("alert %s reached the guard's phone %s after it was raised, want within %s", gid, lag.Round(time.Millisecond), alertOnPageWithin)
		}
	}
	if !slices.Contains(gal.Posts, "plaza") {
		t.Fatalf("the guard of the plaza was shown alert %s of posts %v", gid, gal.Posts)
	}
	phone.shot("guard-alert")
	card := fmt.Sprintf(`[data-test=guard-alert][data-alert-id="%s"]`, gid)
	phone.do(chromedp.Click(card + ` [data-test=guard-ack]`))
	phone.poll(fmt.Sprintf(`(() => { const c = document.querySelector('%s'); return c === null || c.dataset.state === 'acknowledged' })()`, card),
		10*time.Second, "the phone shows the alert acknowledged")
	if gal = api.alert(gid); gal.State != "acknowledged" || gal.AckedBy != "guard1" {
		t.Fatalf("after the tap alert %s is %s by %q, want acknowledged by guard1", gid, gal.State, gal.AckedBy)
	}
	phone.shot("guard-acknowledged")

	// The public page needs no login.
	public := &browserPage{t: t, ctx: person(), base: base, shots: shots}
	public.do(chromedp.Navigate(base + "/public"))
	public.poll(`document.querySelectorAll('[data-test=public-area]').length === 3`, 20*time.Second, "the public page lists the demo's three areas")
	public.shot("public")

	// A viewer reaches no admin page and no admin endpoint.
	viewer := &browserPage{t: t, ctx: person(), base: base, shots: shots}
	viewer.login("view1", users["view1"])
	viewer.do(chromedp.Navigate(base+"/#/admin/users"), chromedp.WaitVisible(`[data-test=forbidden]`))
	if n := viewer.number(`document.querySelectorAll('[data-test=admin-users] [data-test=user-row], [data-test=nav-admin]').length`); n != 0 {
		t.Fatalf("a viewer sees %v admin elements", n)
	}
	for _, path := range []string{"/api/v1/users", "/api/v1/audit"} {
		if code := viewer.number(fmt.Sprintf(`fetch('%s').then(r => r.status)`, path)); code != http.StatusForbidden {
			t.Fatalf("a viewer's GET %s answered %v, want 403", path, code)
		}
	}
	viewer.shot("viewer-forbidden")

	// The planner's page draws a chart of counts and a heatmap; heatmaps
	// are stored a minute at a time, so the first one comes after a minute.
	api.waitHeatmap("vtest", 2*time.Minute)
	planner := &browserPage{t: t, ctx: person(), base: base, shots: shots}
	planner.login("plan1", users["plan1"])
	planner.do(chromedp.Navigate(base + "/#/planner"))
	planner.poll(`document.querySelector('[data-test=chart] canvas') !== null`, 30*time.Second, "the planner's chart is drawn")
	planner.poll(`(() => { const s = document.querySelector('[data-test=heatmap-camera]'); if (s && s.value !== 'vtest') { s.value = 'vtest'; s.dispatchEvent(new Event('change')) } return true })()`,
		5*time.Second, "the heatmap camera is chosen")
	planner.poll(`(() => { const i = document.querySelector('[data-test=heatmap]'); return i !== null && i.complete && i.naturalWidth > 0 })()`,
		30*time.Second, "the planner's heatmap is drawn")
	planner.shot("planner")
}

// cspListener reports each Content-Security-Policy violation of a page
// on its console, where watchCSP hears it.
const cspListener = `document.addEventListener('securitypolicyviolation', e =>
	console.error('CSP violation: ' + e.violatedDirective + ' blocked ' + (e.blockedURI || 'inline') + ' at ' + e.sourceFile + ':' + e.lineNumber))`

// watchCSP fails the test, at its end, when Chromium reports a
// Content-Security-Policy violation on any page of the tab: the console's
// policy must let the app work.
func watchCSP(t *testing.T, ctx context.Context) {
	t.Helper()
	var mu sync.Mutex
	var seen []string
	err := chromedp.Listen(ctx, func(ev any) {
		text := ""
		switch e := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			for _, a := range e.Args {
				if strings.Contains(string(a.Value), "CSP violation") {
					text = string(a.Value)
				}
			}
		case *log.EventEntryAdded:
			if strings.Contains(e.Entry.Text, "Content Security Policy") {
				text = e.Entry.Text
			}
		}
		if text != "" {
			mu.Lock()
			seen = append(seen, text)
			mu.Unlock()
		}
	})
	if err != nil {
		t.Fatalf("listen for CSP violations: %v", err)
	}
	yes := true
	_, err = chromedp.Run(ctx, func(ctx context.Context, tg *chromedp.Target) (page.AddScriptToEvaluateOnNewDocumentResult, error) {
		return cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument,
			page.AddScriptToEvaluateOnNewDocumentParams{Source: cspListener, RunImmediately: &yes})
	})
	if err != nil {
		t.Fatalf("add the CSP violation listener: %v", err)
	}
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		if len(seen) > 0 {
			t.Errorf("Chromium reported %d Content-Security-Policy violations:\n%s", len(seen), strings.Join(seen, "\n"))
		}
	})
}

// browserPage is one person's tab in the browser tests.
type browserPage struct {
	t     *testing.T
	ctx   context.Context
	base  string
	shots string
}

// do runs steps, failing the test on an error.
func (p *browserPage) do(steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		p.shot("failed")
		p.t.Fatalf("browser: %v", err)
	}
}

// login signs in through the login form and waits for the console.
func (p *browserPage) login(user, password string) {
	p.t.Helper()
	p.do(chromedp.Navigate(p.base+"/#/login"),
		chromedp.WaitVisible(`[data-test=login-user]`),
		chromedp.SendKeys(`[data-test=login-user]`, user),
		chromedp.SendKeys(`[data-test=login-pass]`, password),
		chromedp.Click(`[data-test=login-submit]`))
	p.poll(`document.body.dataset.userRole !== undefined && document.body.dataset.userRole !== ''`, 15*time.Second,
		user+" is logged in")
}

// poll waits until the JavaScript expression is true.
func (p *browserPage) poll(expr string, within time.Duration, what string) time.Time {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, within+5*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(within),
		chromedp.WithPollingInterval(100*time.Millisecond)))
	if err != nil {
		p.shot("failed")
		p.t.Fatalf("waiting %s for %s: %v", within, what, err)
	}
	return time.Now()
}

// number evaluates a JavaScript expression (awaiting a promise) to a number.
func (p *browserPage) number(expr string) float64 {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[float64](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		p.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// attr reads an attribute of the first element matching sel.
func (p *browserPage) attr(sel, name string) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.AttributeValue(sel, name))
	if err != nil || !v.Exists {
		p.t.Fatalf("attribute %s of %s: %v", name, sel, err)
	}
	return v.Value
}

// shot saves a screenshot of the page as <name>.png in the screenshot
// directory.
func (p *browserPage) shot(name string) {
	ctx, cancel := context.WithTimeout(p.ctx, 15*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		p.t.Logf("screenshot %s: %v", name, err)
		return
	}
	path := filepath.Join(p.shots, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		p.t.Logf("screenshot %s: %v", name, err)
		return
	}
	p.t.Logf("screenshot: %s", path)
}

// screenshotDir is where the browser tests save screenshots: the
// directory FLOWWATCH_SCREENSHOTS names, else one under the system's
// temporary directory.
func screenshotDir(t *testing.T) string {
	dir := os.Getenv(screenshotsEnv)
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "flowwatch-screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// consoleClient calls the console's API as one user, for the browser
// tests' setup and checks.
type consoleClient struct {
	t     *testing.T
	base  string
	token string
}

// call sends a JSON request and decodes the JSON answer into out (when
// not nil), failing the test unless the status is want.
func (c *consoleClient) call(method, path string, body any, want int, out any) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = strings.NewReader(string(b))
	}
	req, _ := http.NewRequest(method, c.base+path, rd)
	req.Header.Set("Content-Type", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		c.t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, b, want)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			c.t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
}

// waitUp waits for the console to answer.
func (c *consoleClient) waitUp() {
	c.t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if strings.Contains(get(c.base+"/healthz"), `"ok"`) {
			return
		}
	}
	c.t.Fatal("the console did not answer /healthz within 30 s")
}

// login answers a session token for user.
func (c *consoleClient) login(user, password string) string {
	c.t.Helper()
	var ans struct {
		Token      string `json:"token"`
		MustChange bool   `json:"must_change"`
	}
	anon := &consoleClient{t: c.t, base: c.base}
	anon.call("POST", "/api/v1/session", map[string]string{"username": user, "password": password}, http.StatusOK, &ans)
	return ans.Token
}

// createUser makes a user through the admin API and answers a password it
// can log in with, having made the first change a one-time password
// requires.
func (c *consoleClient) createUser(name, role string, posts []string) string {
	c.t.Helper()
	var ans struct {
		Password string `json:"password"`
		User     struct {
			MustChange bool `json:"must_change"`
		} `json:"user"`
	}
	password := "Pw-Browser-Test-2026" // the rules: no user name in it
	c.call("POST", "/api/v1/users", map[string]any{"username": name, "role": role, "posts": posts, "password": password},
		http.StatusCreated, &ans)
	if ans.Password != "" {
		password = ans.Password
	}
	if ans.User.MustChange {
		own := &consoleClient{t: c.t, base: c.base, token: c.login(name, password)}
		next := password + "-changed"
		own.call("PUT", "/api/v1/session/password", map[string]string{"password": password, "new_password": next}, http.StatusOK, nil)
		password = next
	}
	return password
}

// testAlert is what the browser tests read of an alert.
type testAlert struct {
	ID       int64     `json:"id"`
	Target   string    `json:"target"`
	Level    string    `json:"level"`
	State    string    `json:"state"`
	OpenedAt time.Time `json:"opened_at"`
	AckedBy  string    `json:"acked_by"`
	Posts    []string  `json:"posts"`
}

// alert reads one alert.
func (c *consoleClient) alert(id string) testAlert {
	c.t.Helper()
	var ans struct {
		Alert testAlert `json:"alert"`
	}
	c.call("GET", "/api/v1/alerts/"+id, nil, http.StatusOK, &ans)
	return ans.Alert
}

// audited tells whether the audit log holds action on target by actor.
func (c *consoleClient) audited(action, target, actor string) bool {
	c.t.Helper()
	var ans struct {
		Entries []struct {
			Actor  string `json:"actor"`
			Action string `json:"action"`
			Target string `json:"target"`
		} `json:"entries"`
	}
	c.call("GET", "/api/v1/audit?limit=1000", nil, http.StatusOK, &ans)
	for _, e := range ans.Entries {
		if e.Action == action && e.Target == target && e.Actor == actor {
			return true
		}
	}
	return false
}

// waitHeatmap waits until the store holds a heatmap of camera.
func (c *consoleClient) waitHeatmap(camera string, within time.Duration) {
	c.t.Helper()
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(2 * time.Second) {
		req, _ := http.NewRequest("GET", c.base+"/api/v1/heatmaps/"+camera+"?format=json", nil)
		req.Header.Set("Authorization", "Bearer "+c.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			continue
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return
		}
	}
	c.t.Fatalf("no heatmap of %s stored within %s", camera, within)
}
