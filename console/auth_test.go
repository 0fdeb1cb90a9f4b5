package console

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"flowwatch/internal/config"
	"flowwatch/internal/store"
)

// authTestClock is a clock that moves only when told.
type authTestClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *authTestClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *authTestClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// lockedBuffer is a log sink safe for the server's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// authFixture is an Auth on a real SQLite file, served on loopback with
// its session routes and three protected test routes:
//
//	GET  /t/read   every role
//	POST /t/write  admin and operator
//	GET  /t/admin  admin only
//
// each answering the principal from the request context.
type authFixture struct {
	t      *testing.T
	auth   *Auth
	db     *store.Store
	dbPath string
	clock  *authTestClock
	logs   *lockedBuffer
	srv    *httptest.Server
}

// cheapArgon keeps the tests fast; TestPasswordHashDefaultCost covers the
// real cost.
var cheapArgon = argonParams{time: 1, memoryKiB: 8 << 10, threads: 1}

func newAuthFixture(t *testing.T, tune func(*AuthConfig)) *authFixture {
	t.Helper()
	dbPath := filepath.Join(t.TempDir(), "flowwatch.db")
	db, err := store.Open(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	f := &authFixture{t: t, db: db, dbPath: dbPath, logs: &lockedBuffer{},
		clock: &authTestClock{t: time.Date(2025, 6, 1, 8, 0, 0, 0, time.UTC)}}
	argon := cheapArgon
	cfg := AuthConfig{
		Store:  db,
		Logger: slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:    f.clock.Now,
		argon:  &argon,
	}
	if tune != nil {
		tune(&cfg)
	}
	if f.auth, err = NewAuth(cfg); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	f.auth.Register(mux)
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := PrincipalFrom(r.Context())
		if !ok {
			http.Error(w, "no principal in the context", http.StatusInternalServerError)
			return
		}
		writeJSON(w, http.StatusOK, p)
	})
	all := []string{RoleAdmin, RoleOperator, RoleGuard, RolePlanner, RoleViewer}
	mux.Handle("GET /t/read", f.auth.Require(all, echo))
	mux.Handle("POST /t/write", f.auth.Require([]string{RoleAdmin, RoleOperator}, echo))
	mux.Handle("GET /t/admin", f.auth.Require([]string{RoleAdmin}, echo))
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

// user creates a user with a password.
func (f *authFixture) user(name, role, password string, posts ...string) {
	f.t.Helper()
	if err := f.auth.CreateUser(context.Background(), name, role, posts, password); err != nil {
		f.t.Fatal(err)
	}
}

// authReq is one request to the fixture.
type authReq struct {
	method, path string
	// body is sent as is when a string, else as JSON.
	body                 any
	contentType          string // default application/json with a body
	bearer, cookie, csrf string
}

// authResp is an answer, its body read.
type authResp struct {
	code   int
	header http.Header
	body   string
	json   map[string]any
}

func (r authResp) str(key string) string {
	s, _ := r.json[key].(string)
	return s
}

func (f *authFixture) do(q authReq) authResp {
	f.t.Helper()
	var body io.Reader
	if q.body != nil {
		if s, ok := q.body.(string); ok {
			body = strings.NewReader(s)
		} else {
			b, err := json.Marshal(q.body)
			if err != nil {
				f.t.Fatal(err)
			}
			body = bytes.NewReader(b)
		}
	}
	req, err := http.NewRequest(q.method, f.srv.URL+q.path, body)
	if err != nil {
		f.t.Fatal(err)
	}
	if q.body != nil {
		ct := q.contentType
		if ct == "" {
			ct = "application/json"
		}
		req.Header.Set("Content-Type", ct)
	}
	if q.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+q.bearer)
	}
	if q.cookie != "" {
		req.AddCookie(&http.Cookie{Name: SessionCookie, Value: q.cookie})
	}
	if q.csrf != "" {
		req.Header.Set(CSRFHeader, q.csrf)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	out := authResp{code: resp.StatusCode, header: resp.Header, body: string(b)}
	if len(b) > 0 {
		if err := json.Unmarshal(b, &out.json); err != nil {
			f.t.Fatalf("%s %s answered %d with a body that is no JSON object: %q", q.method, q.path, resp.StatusCode, b)
		}
	}
	return out
}

func (f *authFixture) login(user, password string) authResp {
	f.t.Helper()
	return f.do(authReq{method: "POST", path: "/api/v1/session", body: map[string]string{"username": user, "password": password}})
}

// mustLogin logs in and returns the token and CSRF token.
func (f *authFixture) mustLogin(user, password string) (token, csrf string) {
	f.t.Helper()
	r := f.login(user, password)
	if r.code != http.StatusOK || r.str("token") == "" || r.str("csrf") == "" {
		f.t.Fatalf("login of %q: %d %s", user, r.code, r.body)
	}
	return r.str("token"), r.str("csrf")
}

// wantError checks an error answer: its code and a JSON {"error": …}
// containing each of words.
func wantError(t *testing.T, what string, r authResp, code int, words ...string) {
	t.Helper()
	if r.code != code {
		t.Errorf("%s: %d %s, want %d", what, r.code, r.body, code)
		return
	}
	msg := r.str("error")
	if msg == "" || r.header.Get("Content-Type") != "application/json" {
		t.Errorf("%s: %d answer is not a JSON error: %s %q", what, code, r.header.Get("Content-Type"), r.body)
	}
	for _, w := range words {
		if !strings.Contains(msg, w) {
			t.Errorf("%s: error %q does not say %q", what, msg, w)
		}
	}
}

func TestLoginTokenWorksAsBearerAndCookie(t *testing.T) {
	f := newAuthFixture(t, nil)
	f.user("olga", RoleOperator, "Quiet-Harbor-71")

	r := f.login("olga", "Quiet-Harbor-71")
	if r.code != http.StatusOK {
		t.Fatalf("login: %d %s", r.code, r.body)
	}
	token, csrf := r.str("token"), r.str("csrf")
	if len(token) != 43 || csrf == "" || csrf == token || r.str("user") != "olga" || r.str("role") != RoleOperator ||
		r.str("kind") != "session" || r.json["must_change"] != false {
		t.Errorf("login answer: %s", r.body)
	}
	if exp, err := time.Parse(time.RFC3339, r.str("expires")); err != nil || !exp.Equal(f.clock.Now().Add(12*time.Hour)) {
		t.Errorf("login answer expires %q, want 12h from now", r.str("expires"))
	}
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("login answer Cache-Control %q, want no-store", cc)
	}
	var cookie *http.Cookie
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		if c.Name == SessionCookie {
			cookie = c
		}
	}
	if cookie == nil {
		t.Fatalf("login set no %s cookie: %v", SessionCookie, r.header["Set-Cookie"])
	}
	if cookie.Value != token || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || cookie.Path != "/" || cookie.Secure {
		t.Errorf("cookie %+v: want the token, HttpOnly, SameSite=Strict, Path=/, not Secure without SecureCookies", cookie)
	}

	for _, c := range []struct {
		name       string
		q          authReq
		wantCookie bool
	}{
		{"bearer", authReq{method: "GET", path: "/t/read", bearer: token}, false},
		{"cookie", authReq{method: "GET", path: "/t/read", cookie: token}, true},
	} {
		r := f.do(c.q)
		if r.code != http.StatusOK || r.str("User") != "olga" || r.str("Role") != RoleOperator || r.json["Cookie"] != c.wantCookie {
			t.Errorf("%s: %d %s, want olga the operator with Cookie=%v", c.name, r.code, r.body, c.wantCookie)
		}
	}

	me := f.do(authReq{method: "GET", path: "/api/v1/session", cookie: token})
	if me.code != http.StatusOK || me.str("user") != "olga" || me.str("role") != RoleOperator || me.str("csrf") != csrf ||
		me.str("kind") != "session" || me.str("token") != "" {
		t.Errorf("GET /api/v1/session: %d %s, want olga with the same csrf and no token", me.code, me.body)
	}
	if strings.Contains(me.body, token) {
		t.Errorf("GET /api/v1/session repeats the session secret: %s", me.body)
	}

	g := newAuthFixture(t, func(c *AuthConfig) { c.SecureCookies = true })
	g.user("olga", RoleOperator, "Quiet-Harbor-71")
	r = g.login("olga", "Quiet-Harbor-71")
	if !strings.Contains(r.header.Get("Set-Cookie"), "Secure") {
		t.Errorf("with SecureCookies the cookie is not Secure: %q", r.header.Get("Set-Cookie"))
	}
}

func TestLoginRefusesWrongCredentialsAndBadBodies(t *testing.T) {
	f := newAuthFixture(t, func(c *AuthConfig) { c.LoginsPerMinute = 100 })
	f.user("olga", RoleOperator, "Quiet-Harbor-71")

	wrongPass := f.login("olga", "not-her-password")
	wrongUser := f.login("olaf", "Quiet-Harbor-71")
	wantError(t, "wrong password", wrongPass, http.StatusUnauthorized, "wrong user name or password")
	wantError(t, "unknown user", wrongUser, http.StatusUnauthorized)
	if wrongPass.body != wrongUser.body {
		t.Errorf("wrong password and unknown user answer differently: %q vs %q", wrongPass.body, wrongUser.body)
	}
	if c := wrongPass.header.Get("Set-Cookie"); c != "" {
		t.Errorf("a failed login set a cookie: %q", c)
	}

	login := func(body any, ct string) authResp {
		return f.do(authReq{method: "POST", path: "/api/v1/session", body: body, contentType: ct})
	}
	wantError(t, "bad JSON", login(`{"username": "olga", "password": `, ""), http.StatusBadRequest, "bad request body")
	wantError(t, "not an object", login(`["olga"]`, ""), http.StatusBadRequest, "bad request body")
	wantError(t, "two objects", login(`{"username":"olga","password":"x"} {}`, ""), http.StatusBadRequest, "bad request body")
	wantError(t, "unknown field", login(`{"username":"olga","password":"x","remember":true}`, ""), http.StatusBadRequest, "remember")
	wantError(t, "number password", login(`{"username":"olga","password":123}`, ""), http.StatusBadRequest, "password")
	big := fmt.Sprintf(`{"username":"olga","password":%q}`, strings.Repeat("p", 5000))
	wantError(t, "body over 4 KiB", login(big, ""), http.StatusBadRequest, "4096 bytes")
	wantError(t, "no password", login(map[string]string{"username": "olga"}, ""), http.StatusBadRequest, "required")
	wantError(t, "form body", login("username=olga&password=Quiet-Harbor-71", "application/x-www-form-urlencoded"),
		http.StatusUnsupportedMediaType, "application/json")
	// A charset parameter is fine.
	if r := login(map[string]string{"username": "olga", "password": "Quiet-Harbor-71"}, "application/json; charset=utf-8"); r.code != http.StatusOK {
		t.Errorf("login with a charset: %d %s", r.code, r.body)
	}
	if u, _ := f.db.User(context.Background(), "olga"); u.FailedLogins != 0 {
		t.Errorf("failed logins after a success: %d, want 0", u.FailedLogins)
	}
	wantError(t, "PUT on the session", f.do(authReq{method: "PUT", path: "/api/v1/session"}), http.StatusMethodNotAllowed, "PUT")
}

func TestLoginLocksOutAfterMaxFailures(t *testing.T) {
	f := newAuthFixture(t, nil)
	f.user("olga", RoleOperator, "Quiet-Harbor-71")
	for i := 1; i <= 4; i++ {
		wantError(t, fmt.Sprintf("failure %d", i), f.login("olga", "guess-"+strconv.Itoa(i)), http.StatusUnauthorized)
	}
	until := f.clock.Now().Add(15 * time.Minute).UTC().Format(time.RFC3339)
	r := f.login("olga", "guess-5")
	wantError(t, "fifth failure", r, http.StatusLocked, "locked", until)
	if r.str("locked_until") != until || r.header.Get("Retry-After") != "900" {
		t.Errorf("lock answer: locked_until %q, Retry-After %q; want %q and 900", r.str("locked_until"), r.header.Get("Retry-After"), until)
	}
	if !strings.Contains(f.logs.String(), "account locked") || !strings.Contains(f.logs.String(), "user=olga") {
		t.Errorf("the lock-out was not logged:\n%s", f.logs.String())
	}

	wantError(t, "right password while locked", f.login("olga", "Quiet-Harbor-71"), http.StatusLocked, until)
	f.clock.Advance(15*time.Minute - time.Second)
	r = f.login("olga", "Quiet-Harbor-71")
	wantError(t, "right password a second before the end", r, http.StatusLocked, until)
	if r.header.Get("Retry-After") != "1" {
		t.Errorf("Retry-After a second before the end: %q", r.header.Get("Retry-After"))
	}
	f.clock.Advance(time.Second)
	if r := f.login("olga", "Quiet-Harbor-71"); r.code != http.StatusOK {
		t.Fatalf("right password after the lock: %d %s", r.code, r.body)
	}
	// The count starts afresh: four more failures do not lock.
	for i := 1; i <= 4; i++ {
		wantError(t, fmt.Sprintf("failure %d after the lock", i), f.login("olga", "again-"+strconv.Itoa(i)), http.StatusUnauthorized)
	}
	// A success clears the count, so four more do not lock either.
	f.clock.Advance(time.Minute)
	f.mustLogin("olga", "Quiet-Harbor-71")
	for i := 1; i <= 4; i++ {
		wantError(t, fmt.Sprintf("failure %d after a success", i), f.login("olga", "more-"+strconv.Itoa(i)), http.StatusUnauthorized)
	}
}

func TestSessionIdleTimeoutAndMaxLength(t *testing.T) {
	f := newAuthFixture(t, func(c *AuthConfig) { c.MaxSession = time.Hour })
	f.user("olga", RoleOperator, "Quiet-Harbor-71")
	ctx := context.Background()
	read := func(token string) authResp { return f.do(authReq{method: "GET", path: "/t/read", bearer: token}) }

	token, _ := f.mustLogin("olga", "Quiet-Harbor-71")
	id := sha256Hex(token)
	login := f.clock.Now()

	// last_seen moves at most once a minute.
	f.clock.Advance(30 * time.Second)
	if r := read(token); r.code != http.StatusOK {
		t.Fatalf("use after 30 s: %d %s", r.code, r.body)
	}
	if s, _ := f.db.Session(ctx, id); !s.LastSeen.Equal(login) {
		t.Errorf("last seen moved to %v after 30 s; it moves at most once a minute", s.LastSeen)
	}
	f.clock.Advance(40 * time.Second)
	read(token)
	if s, _ := f.db.Session(ctx, id); !s.LastSeen.Equal(f.clock.Now()) {
		t.Errorf("last seen %v after 70 s, want %v", s.LastSeen, f.clock.Now())
	}

	// Used every 14 minutes it lives on, until its hour is up.
	for f.clock.Now().Add(14 * time.Minute).Before(login.Add(time.Hour)) {
		f.clock.Advance(14 * time.Minute)
		if r := read(token); r.code != http.StatusOK {
			t.Fatalf("use at +%v: %d %s", f.clock.Now().Sub(login), r.code, r.body)
		}
	}
	f.clock.Advance(login.Add(time.Hour).Sub(f.clock.Now()))
	wantError(t, "use at the end of the maximum length", read(token), http.StatusUnauthorized, "expired")
	if _, err := f.db.Session(ctx, id); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("an expired session stays stored: %v", err)
	}

	// Idle 15 minutes, it ends.
	token, _ = f.mustLogin("olga", "Quiet-Harbor-71")
	f.clock.Advance(15*time.Minute - time.Second)
	if r := read(token); r.code != http.StatusOK {
		t.Fatalf("use after 14:59 idle: %d %s", r.code, r.body)
	}
	f.clock.Advance(15 * time.Minute)
	r := read(token)
	wantError(t, "use after 15 min idle", r, http.StatusUnauthorized, "expired")
	if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("401 without WWW-Authenticate: Bearer: %q", r.header.Get("WWW-Authenticate"))
	}
	wantError(t, "cookie of the idle session", f.do(authReq{method: "GET", path: "/t/read", cookie: token}), http.StatusUnauthorized)
}

func TestCSRFTokenNeededForCookieChangesOnly(t *testing.T) {
	f := newAuthFixture(t, nil)
	f.user("olga", RoleOperator, "Quiet-Harbor-71")
	token, csrf := f.mustLogin("olga", "Quiet-Harbor-71")
	other, _ := f.mustLogin("olga", "Quiet-Harbor-71")
	otherCSRF := csrfToken(other)

	wantError(t, "cookie POST without CSRF", f.do(authReq{method: "POST", path: "/t/write", cookie: token}),
		http.StatusForbidden, CSRFHeader)
	wantError(t, "cookie POST with a wrong CSRF", f.do(authReq{method: "POST", path: "/t/write", cookie: token, csrf: "x" + csrf}),
		http.StatusForbidden, CSRFHeader)
	wantError(t, "cookie POST with another session's CSRF", f.do(authReq{method: "POST", path: "/t/write", cookie: token, csrf: otherCSRF}),
		http.StatusForbidden, CSRFHeader)
	if r := f.do(authReq{method: "POST", path: "/t/write", cookie: token, csrf: csrf}); r.code != http.StatusOK || r.json["Cookie"] != true {
		t.Errorf("cookie POST with the CSRF token: %d %s", r.code, r.body)
	}
	if r := f.do(authReq{method: "POST", path: "/t/write", bearer: token}); r.code != http.StatusOK || r.json["Cookie"] != false {
		t.Errorf("bearer POST without CSRF: %d %s", r.code, r.body)
	}
	if r := f.do(authReq{method: "GET", path: "/t/read", cookie: token}); r.code != http.StatusOK {
		t.Errorf("cookie GET without CSRF: %d %s", r.code, r.body)
	}
}

func TestRequireRoles(t *testing.T) {
	f := newAuthFixture(t, nil)
	roles := []string{RoleAdmin, RoleOperator, RoleGuard, RolePlanner, RoleViewer}
	for _, role := range roles {
		f.user("u-"+role, role, testPassword("u-"+role), "post-of-"+role)
	}
	for _, role := range roles {
		token, _ := f.mustLogin("u-"+role, testPassword("u-"+role))
		r := f.do(authReq{method: "GET", path: "/t/read", bearer: token})
		if r.code != http.StatusOK || r.str("User") != "u-"+role || r.str("Role") != role ||
			fmt.Sprint(r.json["Posts"]) != "[post-of-"+role+"]" {
			t.Errorf("%s reading: %d %s", role, r.code, r.body)
		}
		for _, c := range []struct {
			q       authReq
			allowed bool
		}{
			{authReq{method: "GET", path: "/t/admin", bearer: token}, role == RoleAdmin},
			{authReq{method: "POST", path: "/t/write", bearer: token}, role == RoleAdmin || role == RoleOperator},
		} {
			r := f.do(c.q)
			if c.allowed && r.code != http.StatusOK {
				t.Errorf("%s on %s %s: %d %s, want 200", role, c.q.method, c.q.path, r.code, r.body)
			}
			if !c.allowed {
				wantError(t, role+" on "+c.q.path, r, http.StatusForbidden, role)
			}
		}
	}

	token, _ := f.mustLogin("u-admin", testPassword("u-admin"))
	noAuth := f.do(authReq{method: "GET", path: "/t/read"})
	wantError(t, "no credentials", noAuth, http.StatusUnauthorized, "login required")
	if !strings.HasPrefix(noAuth.header.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("401 without WWW-Authenticate: %q", noAuth.header.Get("WWW-Authenticate"))
	}
	wantError(t, "unknown bearer", f.do(authReq{method: "GET", path: "/t/read", bearer: "x" + token}), http.StatusUnauthorized)
	wantError(t, "unknown cookie", f.do(authReq{method: "GET", path: "/t/read", cookie: "x" + token}), http.StatusUnauthorized)
	// A bad Authorization header is not rescued by a good cookie.
	wantError(t, "bad bearer with a good cookie", f.do(authReq{method: "GET", path: "/t/read", bearer: "nope", cookie: token}), http.StatusUnauthorized)
	req, _ := http.NewRequest("GET", f.srv.URL+"/t/read", nil)
	req.SetBasicAuth("u-admin", testPassword("u-admin"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("basic auth: %d, want 401", resp.StatusCode)
	}

	// Authenticate itself.
	req = httptest.NewRequest("GET", "/", nil)
	if _, err := f.auth.Authenticate(req); !errors.Is(err, ErrNoCredentials) {
		t.Errorf("Authenticate without credentials: %v", err)
	}
	req.Header.Set("Authorization", "bearer "+token)
	if p, err := f.auth.Authenticate(req); err != nil || p.User != "u-admin" || p.Cookie {
		t.Errorf("Authenticate with a lowercase bearer: %+v, %v", p, err)
	}

	// A role change takes effect on the next request.
	if err := f.db.SetUserRole(context.Background(), "u-admin", RoleViewer, nil, f.clock.Now()); err != nil {
		t.Fatal(err)
	}
	wantError(t, "demoted admin", f.do(authReq{method: "GET", path: "/t/admin", bearer: token}), http.StatusForbidden, RoleViewer)
}

func TestLogoutEndsTheSession(t *testing.T) {
	f := newAuthFixture(t, nil)
	f.user("olga", RoleOperator, "Quiet-Harbor-71")
	token, csrf := f.mustLogin("olga", "Quiet-Harbor-71")
	other, _ := f.mustLogin("olga", "Quiet-Harbor-71")

	wantError(t, "cookie logout without CSRF", f.do(authReq{method: "DELETE", path: "/api/v1/session", cookie: token}),
		http.StatusForbidden, CSRFHeader)
	r := f.do(authReq{method: "DELETE", path: "/api/v1/session", cookie: token, csrf: csrf})
	if r.code != http.StatusOK || r.json["logged_out"] != true {
		t.Fatalf("logout: %d %s", r.code, r.body)
	}
	if c := r.header.Get("Set-Cookie"); !strings.Contains(c, SessionCookie+"=;") || !strings.Contains(c, "Max-Age=0") {
		t.Errorf("logout does not clear the cookie: %q", c)
	}
	wantError(t, "bearer after logout", f.do(authReq{method: "GET", path: "/t/read", bearer: token}), http.StatusUnauthorized)
	wantError(t, "cookie after logout", f.do(authReq{method: "GET", path: "/t/read", cookie: token}), http.StatusUnauthorized)
	wantError(t, "whoami after logout", f.do(authReq{method: "GET", path: "/api/v1/session", cookie: token}), http.StatusUnauthorized)

	// The other session lives on, and a bearer logs out without CSRF.
	if r := f.do(authReq{method: "GET", path: "/t/read", bearer: other}); r.code != http.StatusOK {
		t.Fatalf("other session after the first logged out: %d %s", r.code, r.body)
	}
	if r := f.do(authReq{method: "DELETE", path: "/api/v1/session", bearer: other}); r.code != http.StatusOK {
		t.Fatalf("bearer logout: %d %s", r.code, r.body)
	}
	wantError(t, "bearer after its logout", f.do(authReq{method: "GET", path: "/t/read", bearer: other}), http.StatusUnauthorized)
	wantError(t, "logout without a session", f.do(authReq{method: "DELETE", path: "/api/v1/session"}), http.StatusUnauthorized)
	r = f.do(authReq{method: "DELETE", path: "/api/v1/session", cookie: token, csrf: csrf})
	wantError(t, "logout with an ended session's cookie", r, http.StatusUnauthorized)
	if c := r.header.Get("Set-Cookie"); !strings.Contains(c, "Max-Age=0") {
		t.Errorf("logout with a dead cookie does not clear it: %q", c)
	}
}

func TestAPITokenWorksUntilRevoked(t *testing.T) {
	f := newAuthFixture(t, nil)
	ctx := context.Background()
	if err := f.auth.EnsureUsers(ctx, []config.User{{Username: "wall-bot", Role: RoleViewer}}); err != nil {
		t.Fatal(err)
	}
	token, err := f.auth.CreateAPIToken(ctx, "wall-bot", "lobby display")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(token, apiTokenPrefix) || len(token) != len(apiTokenPrefix)+43 {
		t.Errorf("token %q: want %s and 43 base64url characters", token, apiTokenPrefix)
	}
	toks, err := f.db.APITokens(ctx, "wall-bot")
	if err != nil || len(toks) != 1 || toks[0].Hash != sha256Hex(token) || toks[0].Name != "lobby display" {
		t.Fatalf("stored tokens: %+v, %v", toks, err)
	}

	r := f.do(authReq{method: "GET", path: "/t/read", bearer: token})
	if r.code != http.StatusOK || r.str("User") != "wall-bot" || r.str("Role") != RoleViewer || r.json["Cookie"] != false {
		t.Fatalf("API token as bearer: %d %s", r.code, r.body)
	}
	if toks, _ := f.db.APITokens(ctx, "wall-bot"); !toks[0].LastUsed.Equal(f.clock.Now()) {
		t.Errorf("last used %v, want %v", toks[0].LastUsed, f.clock.Now())
	}
	me := f.do(authReq{method: "GET", path: "/api/v1/session", bearer: token})
	if me.code != http.StatusOK || me.str("kind") != "api_token" || me.str("csrf") != "" || me.json["expires"] != nil {
		t.Errorf("whoami with an API token: %d %s", me.code, me.body)
	}
	wantError(t, "API token as a cookie", f.do(authReq{method: "GET", path: "/t/read", cookie: token}), http.StatusUnauthorized)
	wantError(t, "logout with an API token", f.do(authReq{method: "DELETE", path: "/api/v1/session", bearer: token}),
		http.StatusBadRequest, "revoke")
	wantError(t, "viewer token writing", f.do(authReq{method: "POST", path: "/t/write", bearer: token}), http.StatusForbidden)

	if err := f.auth.RevokeAPIToken(ctx, toks[0].ID); err != nil {
		t.Fatal(err)
	}
	wantError(t, "revoked token", f.do(authReq{method: "GET", path: "/t/read", bearer: token}), http.StatusUnauthorized)

	if _, err := f.auth.CreateAPIToken(ctx, "nobody", "x"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("token for a missing user: %v", err)
	}
	if _, err := f.auth.CreateAPIToken(ctx, "wall-bot", ""); err == nil {
		t.Error("token without a name was made")
	}
}

// generatedLine matches EnsureAdmin's one line with the password.
var generatedLine = regexp.MustCompile(`^flowwatch: generated password of user "admin": ([A-Za-z0-9]{20}) \(shown only this once; it must be changed at first login\)\n$`)

func TestEnsureAdminWithGivenPassword(t *testing.T) {
	f := newAuthFixture(t, nil)
	ctx := context.Background()
	var out bytes.Buffer
	if err := f.auth.EnsureAdmin(ctx, "Given-Console-Pass-42", &out); err != nil {
		t.Fatal(err)
	}
	if out.Len() != 0 {
		t.Errorf("a given password printed %q", out.String())
	}
	r := f.login("admin", "Given-Console-Pass-42")
	if r.code != http.StatusOK || r.str("role") != RoleAdmin || r.json["must_change"] != false {
		t.Fatalf("admin login: %d %s", r.code, r.body)
	}
	if r := f.do(authReq{method: "GET", path: "/t/admin", bearer: r.str("token")}); r.code != http.StatusOK {
		t.Errorf("admin on an admin route: %d %s", r.code, r.body)
	}
	// Later starts leave the admin alone.
	if err := f.auth.EnsureAdmin(ctx, "Another-Console-Pass-43", &out); err != nil {
		t.Fatal(err)
	}
	if err := f.auth.EnsureAdmin(ctx, "", &out); err != nil {
		t.Fatal(err)
	}
	if out.Len() != 0 {
		t.Errorf("a later start printed %q", out.String())
	}
	wantError(t, "login with the later password", f.login("admin", "Another-Console-Pass-43"), http.StatusUnauthorized)
	f.mustLogin("admin", "Given-Console-Pass-42")

	g := newAuthFixture(t, nil)
	if err := g.auth.EnsureAdmin(ctx, "tiny1", &out); err == nil || !strings.Contains(err.Error(), "FLOWWATCH_ADMIN_PASSWORD") ||
		!strings.Contains(err.Error(), "too short") || strings.Contains(err.Error(), "tiny1") {
		t.Errorf("a short admin password: %v, want an error naming FLOWWATCH_ADMIN_PASSWORD, not the password", err)
	}
	if _, err := g.db.User(ctx, "admin"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("admin created despite a refused password: %v", err)
	}
}

func TestEnsureAdminGeneratesPasswordToChange(t *testing.T) {
	f := newAuthFixture(t, nil)
	ctx := context.Background()
	var out bytes.Buffer
	if err := f.auth.EnsureAdmin(ctx, "", &out); err != nil {
		t.Fatal(err)
	}
	m := generatedLine.FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("EnsureAdmin printed %q, want one line with a 20-character password", out.String())
	}
	generated := m[1]
	if strings.Contains(f.logs.String(), generated) {
		t.Fatalf("the generated password was logged:\n%s", f.logs.String())
	}
	out.Reset()
	if err := f.auth.EnsureAdmin(ctx, "", &out); err != nil || out.Len() != 0 {
		t.Errorf("second start: %v, printed %q; the password is printed once", err, out.String())
	}

	r := f.login("admin", generated)
	if r.code != http.StatusOK || r.json["must_change"] != true {
		t.Fatalf("login with the generated password: %d %s", r.code, r.body)
	}
	token, csrf := r.str("token"), r.str("csrf")
	wantError(t, "API before the password change", f.do(authReq{method: "GET", path: "/t/read", bearer: token}),
		http.StatusForbidden, "must be changed", "/api/v1/session/password")
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	if _, err := f.auth.Authenticate(req); !errors.Is(err, ErrPasswordChangeRequired) {
		t.Errorf("Authenticate before the change: %v, want ErrPasswordChangeRequired", err)
	}
	if me := f.do(authReq{method: "GET", path: "/api/v1/session", cookie: token}); me.code != http.StatusOK || me.json["must_change"] != true {
		t.Errorf("whoami before the change: %d %s", me.code, me.body)
	}

	change := func(q authReq) authResp {
		q.method, q.path = "PUT", "/api/v1/session/password"
		return f.do(q)
	}
	wantError(t, "change without CSRF", change(authReq{cookie: token, body: map[string]string{"password": generated, "new_password": "Own-Console-Pass-44"}}),
		http.StatusForbidden, CSRFHeader)
	wantError(t, "change with a wrong current password", change(authReq{cookie: token, csrf: csrf,
		body: map[string]string{"password": "wrong-wrong", "new_password": "Own-Console-Pass-44"}}), http.StatusUnauthorized)
	wantError(t, "change to a short password", change(authReq{cookie: token, csrf: csrf,
		body: map[string]string{"password": generated, "new_password": "short"}}), http.StatusBadRequest, "too short")
	wantError(t, "change to the same password", change(authReq{cookie: token, csrf: csrf,
		body: map[string]string{"password": generated, "new_password": generated}}), http.StatusBadRequest, "differ")
	r = change(authReq{cookie: token, csrf: csrf, body: map[string]string{"password": generated, "new_password": "Own-Console-Pass-44"}})
	if r.code != http.StatusOK || r.json["must_change"] != false || r.str("token") == "" || r.str("token") == token {
		t.Fatalf("password change: %d %s", r.code, r.body)
	}
	wantError(t, "old session after the change", f.do(authReq{method: "GET", path: "/t/read", bearer: token}), http.StatusUnauthorized)
	if rr := f.do(authReq{method: "GET", path: "/t/admin", bearer: r.str("token")}); rr.code != http.StatusOK {
		t.Errorf("new session after the change: %d %s", rr.code, rr.body)
	}
	wantError(t, "generated password after the change", f.login("admin", generated), http.StatusUnauthorized)
	f.mustLogin("admin", "Own-Console-Pass-44")
	if strings.Contains(f.logs.String(), generated) || strings.Contains(f.logs.String(), "Own-Console-Pass-44") {
		t.Errorf("a password was logged:\n%s", f.logs.String())
	}

	if err := newAuthFixture(t, nil).auth.EnsureAdmin(ctx, "", nil); err == nil {
		t.Error("a generated password with nowhere to print it was accepted")
	}
}

func TestEnsureUsersCreatesThemWithoutPassword(t *testing.T) {
	f := newAuthFixture(t, nil)
	ctx := context.Background()
	users := []config.User{
		{Username: "admin", Role: RoleAdmin},
		{Username: "gina", Role: RoleGuard, Posts: []string{"north-gate", "lake"}},
	}
	if err := f.auth.EnsureUsers(ctx, users); err != nil {
		t.Fatal(err)
	}
	if err := f.auth.EnsureUsers(ctx, users); err != nil {
		t.Fatalf("second run: %v", err)
	}
	if all, _ := f.db.Users(ctx); len(all) != 2 {
		t.Fatalf("users after two runs: %+v", all)
	}
	if !strings.Contains(f.logs.String(), "user=gina") || !strings.Contains(f.logs.String(), "without a password") {
		t.Errorf("the user without password was not logged:\n%s", f.logs.String())
	}
	// No password matches, not even the marker stored for "none".
	for _, pw := range []string{"", "!", "anything-at-all"} {
		if r := f.login("gina", pw); r.code != http.StatusUnauthorized && r.code != http.StatusBadRequest {
			t.Errorf("login of a user without password with %q: %d %s", pw, r.code, r.body)
		}
	}
	// The configured admin has no password yet: EnsureAdmin gives it one.
	var out bytes.Buffer
	if err := f.auth.EnsureAdmin(ctx, "", &out); err != nil {
		t.Fatal(err)
	}
	m := generatedLine.FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("EnsureAdmin after EnsureUsers printed %q", out.String())
	}
	if r := f.login("admin", m[1]); r.code != http.StatusOK {
		t.Errorf("admin login: %d %s", r.code, r.body)
	}

	if err := f.auth.SetPassword(ctx, "gina", "Lake-Gate-Pass-45", false); err != nil {
		t.Fatal(err)
	}
	token, _ := f.mustLogin("gina", "Lake-Gate-Pass-45")
	r := f.do(authReq{method: "GET", path: "/t/read", bearer: token})
	if r.code != http.StatusOK || fmt.Sprint(r.json["Posts"]) != "[north-gate lake]" {
		t.Errorf("gina: %d %s", r.code, r.body)
	}
	// Setting a password ends the user's sessions.
	if err := f.auth.SetPassword(ctx, "gina", "Lake-Gate-Pass-46", true); err != nil {
		t.Fatal(err)
	}
	wantError(t, "session after the password was set", f.do(authReq{method: "GET", path: "/t/read", bearer: token}), http.StatusUnauthorized)

	if err := f.auth.EnsureUsers(ctx, []config.User{{Username: "x", Role: "superuser"}}); err == nil || !strings.Contains(err.Error(), "superuser") {
		t.Errorf("unknown role: %v", err)
	}
	if err := f.auth.SetPassword(ctx, "nobody", "Long-Enough-Pass-47", false); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("password of a missing user: %v", err)
	}
}

func TestLoginRateLimitPerClient(t *testing.T) {
	f := newAuthFixture(t, nil)
	f.user("olga", RoleOperator, "Quiet-Harbor-71")
	for i := 1; i <= 10; i++ {
		wantError(t, fmt.Sprintf("attempt %d", i), f.login("nobody-"+strconv.Itoa(i), "x"), http.StatusUnauthorized)
		f.clock.Advance(time.Second)
	}
	r := f.login("olga", "Quiet-Harbor-71")
	wantError(t, "eleventh attempt", r, http.StatusTooManyRequests, "too many")
	if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra != 50 {
		t.Errorf("Retry-After %q, want 50 (the window started 50 s ago... of 60)", r.header.Get("Retry-After"))
	}
	if !strings.Contains(f.logs.String(), "rate-limited") {
		t.Errorf("the rate limit was not logged:\n%s", f.logs.String())
	}
	f.clock.Advance(50 * time.Second)
	if r := f.login("olga", "Quiet-Harbor-71"); r.code != http.StatusOK {
		t.Errorf("login after the window: %d %s", r.code, r.body)
	}

	// Clients are counted apart; an IPv6 client by its /64.
	l := loginLimiter{per: 2, windows: map[string]loginWindow{}}
	now := f.clock.Now()
	for i, c := range []struct {
		client string
		want   bool
	}{{"a", true}, {"a", true}, {"a", false}, {"b", true}} {
		if _, ok := l.allow(c.client, now); ok != c.want {
			t.Errorf("attempt %d of %s: allowed %v", i, c.client, ok)
		}
	}
	for addr, want := range map[string]string{
		"192.0.2.7:5000":              "192.0.2.7",
		"[2001:db8:1:2:3:4:5:6]:5000": "2001:db8:1:2::/64",
		"[2001:db8:1:2:9:9:9:9]:5000": "2001:db8:1:2::/64",
		"[::ffff:192.0.2.7]:5000":     "192.0.2.7",
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = addr
		if got := clientKey(r); got != want {
			t.Errorf("client of %s = %q, want %q", addr, got, want)
		}
	}
}

// TestAuthLeaksNoSecrets runs logins, failures, a lock-out, a password
// change, tokens and a generated admin password through a logger writing
// to a buffer, and checks that no secret reaches the log, an answer other
// than its own login answer, or the database file.
func TestAuthLeaksNoSecrets(t *testing.T) {
	f := newAuthFixture(t, nil)
	ctx := context.Background()
	secrets := map[string]string{}
	add := func(what, s string) { secrets[what] = s }

	var out bytes.Buffer
	if err := f.auth.EnsureAdmin(ctx, "", &out); err != nil {
		t.Fatal(err)
	}
	m := generatedLine.FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("EnsureAdmin printed %q", out.String())
	}
	add("generated admin password", m[1])
	add("olga's password", "Harbor-Secret-Pass-11")
	add("olga's new password", "Harbor-Secret-Pass-22")
	add("a password typed as the user name", "typed-in-Wrong-Field-33")
	add("a wrong password", "wrong-Guess-Pass-44")
	f.user("olga", RoleOperator, secrets["olga's password"])

	var answers []authResp
	keep := func(r authResp) authResp { answers = append(answers, r); return r }
	keep(f.login(secrets["a password typed as the user name"], secrets["olga's password"]))
	keep(f.login("olga", secrets["a wrong password"]))
	token, csrf := f.mustLogin("olga", secrets["olga's password"])
	add("session secret", token)
	add("csrf token", csrf)
	add("session id", sha256Hex(token))
	keep(f.do(authReq{method: "GET", path: "/api/v1/session", cookie: token}))
	keep(f.do(authReq{method: "POST", path: "/t/write", cookie: token}))
	keep(f.do(authReq{method: "POST", path: "/t/write", cookie: token, csrf: csrf}))
	r := f.do(authReq{method: "PUT", path: "/api/v1/session/password", cookie: token, csrf: csrf,
		body: map[string]string{"password": secrets["olga's password"], "new_password": secrets["olga's new password"]}})
	if r.code != http.StatusOK {
		t.Fatalf("password change: %d %s", r.code, r.body)
	}
	token2 := r.str("token")
	add("second session secret", token2)
	keep(f.do(authReq{method: "GET", path: "/t/read", bearer: token}))
	keep(f.do(authReq{method: "DELETE", path: "/api/v1/session", bearer: token2}))

	apiToken, err := f.auth.CreateAPIToken(ctx, "olga", "exporter")
	if err != nil {
		t.Fatal(err)
	}
	add("API token", apiToken)
	add("API token hash", sha256Hex(apiToken))
	keep(f.do(authReq{method: "GET", path: "/t/read", bearer: apiToken}))
	toks, _ := f.db.APITokens(ctx, "olga")
	f.auth.RevokeAPIToken(ctx, toks[0].ID)
	keep(f.do(authReq{method: "GET", path: "/t/read", bearer: apiToken}))

	f.clock.Advance(time.Minute) // a fresh rate-limit window
	for i := 0; i < 5; i++ {
		keep(f.login("olga", secrets["a wrong password"]+strconv.Itoa(i)))
		add("wrong password "+strconv.Itoa(i), secrets["a wrong password"]+strconv.Itoa(i))
	}
	keep(f.login("olga", secrets["olga's new password"]))

	logs := f.logs.String()
	if !strings.Contains(logs, "account locked") || !strings.Contains(logs, "login") {
		t.Fatalf("the sweep saw too little to mean anything:\n%s", logs)
	}
	dbBytes := readDatabaseFiles(t, f.dbPath)
	for what, s := range secrets {
		if strings.Contains(logs, s) {
			t.Errorf("the %s reached the log:\n%s", what, logs)
		}
		for _, a := range answers {
			if what == "csrf token" && a.str("kind") == "session" {
				continue // GET /api/v1/session gives the session its CSRF token again, by design
			}
			if strings.Contains(a.body, s) || strings.Contains(fmt.Sprint(a.header), s) {
				t.Errorf("the %s reached an answer: %d %v %s", what, a.code, a.header, a.body)
			}
		}
		if what != "session id" && what != "API token hash" && bytes.Contains(dbBytes, []byte(s)) {
			t.Errorf("the %s is stored in clear", what)
		}
	}
}

// readDatabaseFiles returns the bytes of the database file and its WAL.
func readDatabaseFiles(t *testing.T, path string) []byte {
	t.Helper()
	var all []byte
	for _, p := range []string{path, path + "-wal"} {
		b, err := os.ReadFile(p)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	if len(all) == 0 {
		t.Fatal("the database files are empty")
	}
	return all
}

func TestPasswordHashDefaultCost(t *testing.T) {
	db, err := store.Open(filepath.Join(t.TempDir(), "flowwatch.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	a, err := NewAuth(AuthConfig{Store: db, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	h1, err := a.hash(ctx, "correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	h2, _ := a.hash(ctx, "correct horse battery staple")
	if !strings.HasPrefix(h1, "$argon2id$v=19$m=65536,t=1,p=2$") || h1 == h2 {
		t.Fatalf("hashes %q and %q: want argon2id PHC strings with 64 MiB, t=1, p=2 and their own salts", h1, h2)
	}
	p, err := parsePHC(h1)
	if err != nil || len(p.salt) != 16 || len(p.key) != 32 {
		t.Fatalf("parse %q: %+v, %v", h1, p, err)
	}
	for pw, want := range map[string]bool{"correct horse battery staple": true, "correct horse battery stapl": false, "": false} {
		if ok, err := a.verify(ctx, h1, pw); err != nil || ok != want {
			t.Errorf("verify %q: %v, %v; want %v", pw, ok, err, want)
		}
	}
	for _, bad := range []string{"", "!", "$argon2i$v=19$m=65536,t=1,p=2$c2FsdHNhbHRzYWx0c2FsdA$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=16$m=65536,t=1,p=2$c2FsdHNhbHRzYWx0c2FsdA$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=19$m=999999999,t=1,p=2$c2FsdHNhbHRzYWx0c2FsdA$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=19$m=65536,t=1,p=0$c2FsdHNhbHRzYWx0c2FsdA$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=19$m=65536,t=1,p=2,x=1$c2FsdHNhbHRzYWx0c2FsdA$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=19$m=65536,t=1,p=2$!!$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5"} {
		if _, err := parsePHC(bad); err == nil {
			t.Errorf("parsed %q", bad)
		}
		if ok, err := a.verify(ctx, bad, ""); ok || err != nil {
			t.Errorf("verify against %q: %v, %v", bad, ok, err)
		}
	}
}

func TestNewAuthChecksConfig(t *testing.T) {
	if _, err := NewAuth(AuthConfig{}); err == nil {
		t.Error("no store accepted")
	}
	db, err := store.Open(filepath.Join(t.TempDir(), "flowwatch.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for name, cfg := range map[string]AuthConfig{
		"negative idle":     {Store: db, IdleTimeout: -time.Second},
		"negative failures": {Store: db, MaxFailures: -1},
	} {
		if _, err := NewAuth(cfg); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
	a, err := NewAuth(AuthConfig{Store: db})
	if err != nil {
		t.Fatal(err)
	}
	c := a.cfg
	if c.IdleTimeout != 15*time.Minute || c.MaxSession != 12*time.Hour || c.MaxFailures != 5 || c.LockFor != 15*time.Minute ||
		c.LoginsPerMinute != 10 || c.Now == nil || c.Logger == nil || a.argon != defaultArgon {
		t.Errorf("defaults: %+v", c)
	}
}

func TestPasswordRules(t *testing.T) {
	for _, c := range []struct {
		user, password, rule string
	}{
		{"olga", "Sh0rt-pw", RulePasswordLength},
		{"olga", "Exactly-12ch", ""},
		{"olga", "Á-Twelve-runes", ""},
		{"olga", strings.Repeat("Aa1-", 65), RulePasswordLength},
		{"olga", "alllowercaseletters", RulePasswordClasses},
		{"olga", "lowercase-and-symbols", RulePasswordClasses},
		{"olga", "lowercase4and5digits", RulePasswordClasses},
		{"olga", "Lower-and-Upper", ""},
		{"olga", "My-OLGA-password-1", RulePasswordUsername},
		{"olga", "My-olga-password-1", RulePasswordUsername},
		{"al", "My-al-password-1", ""}, // a two-letter name is not looked for
		{"olga", "bad-utf8-\xff-Pass1", RulePasswordEncoding},
	} {
		err := checkPasswordRules(c.user, c.password)
		var pe *PasswordPolicyError
		switch {
		case c.rule == "" && err != nil:
			t.Errorf("%q for %s: %v, want it taken", c.password, c.user, err)
		case c.rule != "" && (!errors.As(err, &pe) || pe.Rule != c.rule):
			t.Errorf("%q for %s: %v, want the rule %q broken", c.password, c.user, err, c.rule)
		case err != nil && strings.Contains(err.Error(), c.password):
			t.Errorf("%q: the error quotes the password: %v", c.password, err)
		case err != nil && !strings.Contains(err.Error(), `"`+c.rule+`"`):
			t.Errorf("%q: the error %q does not name the rule %q", c.password, err, c.rule)
		}
	}
	// Generated passwords keep the rules, every time.
	for range 300 {
		if p := generatePassword("ABC"); checkPasswordRules("ABC", p) != nil || len(p) != generatedPasswordLen {
			t.Fatalf("generated %q breaks the rules: %v", p, checkPasswordRules("ABC", p))
		}
	}
}

// passwordChanger is olga (an operator, password "Quiet-Harbor-71")
// logged in, changing her own password through the API.
type passwordChanger struct {
	f                    *authFixture
	current, token, csrf string
}

func newPasswordChanger(f *authFixture) *passwordChanger {
	pc := &passwordChanger{f: f, current: "Quiet-Harbor-71"}
	f.user("olga", RoleOperator, pc.current)
	pc.token, pc.csrf = f.mustLogin("olga", pc.current)
	return pc
}

// change asks to change the password to next.
func (pc *passwordChanger) change(next string) authResp {
	return pc.f.do(authReq{method: "PUT", path: "/api/v1/session/password", cookie: pc.token, csrf: pc.csrf,
		body: map[string]string{"password": pc.current, "new_password": next}})
}

// took records that the change to next succeeded with answer r, which
// holds the new session.
func (pc *passwordChanger) took(next string, r authResp) {
	pc.current, pc.token, pc.csrf = next, r.str("token"), r.str("csrf")
}

func TestPasswordPolicyOnChangeCreateAndAdmin(t *testing.T) {
	f := newAuthFixture(t, func(c *AuthConfig) { c.LoginsPerMinute = 1000 })
	ctx := context.Background()
	pc := newPasswordChanger(f)
	change := pc.change
	for _, c := range []struct{ next, rule string }{
		{"Sh0rt-pw", RulePasswordLength},
		{"lowercase-and-symbols", RulePasswordClasses},
		{"Olga-Harbor-Pass-1", RulePasswordUsername},
	} {
		r := change(c.next)
		wantError(t, "change to "+c.next, r, http.StatusBadRequest, "new password", `password rule "`+c.rule+`"`)
		if strings.Contains(r.body, c.next) {
			t.Errorf("the refusal echoes the password: %s", r.body)
		}
	}
	// Five changes; each of the last five passwords is refused, the sixth
	// last is taken again.
	var used []string
	for i := range 6 {
		used = append(used, pc.current)
		next := fmt.Sprintf("Harbor-Change-%02d", i)
		r := change(next)
		if r.code != http.StatusOK {
			t.Fatalf("change %d: %d %s", i, r.code, r.body)
		}
		pc.took(next, r)
	}
	// used: the first and five more; the current one is the sixth change.
	// (The current one is refused as such; SetPassword below checks it
	// against the history.)
	for _, old := range used[len(used)-4:] {
		r := change(old)
		wantError(t, "reuse of "+old, r, http.StatusBadRequest, `password rule "history"`, "last 5")
		if strings.Contains(r.body, old) {
			t.Errorf("the refusal echoes the password: %s", r.body)
		}
	}
	if r := change(used[1]); r.code != http.StatusOK {
		t.Errorf("the sixth last password again: %d %s", r.code, r.body)
	}
	if err := f.auth.SetPassword(ctx, "olga", used[1], false); !isPolicyError(err) || !strings.Contains(err.Error(), "history") {
		t.Errorf("SetPassword to the current one: %v", err)
	}
	if err := f.auth.CreateUser(ctx, "pat", RolePlanner, nil, "pat-is-short"); !isPolicyError(err) {
		t.Errorf("CreateUser with a weak password: %v", err)
	}
	if err := f.auth.EnsureAdmin(ctx, "Admin-Console-Pass-1", io.Discard); !isPolicyError(err) ||
		!strings.Contains(err.Error(), "user name") || strings.Contains(err.Error(), "Admin-Console-Pass-1") {
		t.Errorf("EnsureAdmin with the user name in the password: %v", err)
	}
	if lines := auditActions(t, f.db, "Sh0rt-pw", "Olga-Harbor-Pass-1", used[2]); !hasAudit(lines, "password.change.refused olga", "history") {
		t.Errorf("no audit of the refused reuse:\n%s", strings.Join(lines, "\n"))
	}

	// The history rule can be turned off.
	g := newAuthFixture(t, func(c *AuthConfig) { c.PasswordHistory = -1 })
	g.user("olga", RoleOperator, "Quiet-Harbor-71")
	if err := g.auth.SetPassword(ctx, "olga", "Quiet-Harbor-71", false); err != nil {
		t.Errorf("same password without the history rule: %v", err)
	}
}

func TestPasswordChangeRefusalsCarryTheirRule(t *testing.T) {
	f := newAuthFixture(t, func(c *AuthConfig) { c.LoginsPerMinute = 1000 })
	pc := newPasswordChanger(f)
	change := pc.change
	for _, c := range []struct {
		next string
		want map[string]any
	}{
		{"Sh0rt-pw", map[string]any{"rule": RulePasswordLength, "min_length": MinPasswordLen}},
		{strings.Repeat("Aa1-", 65), map[string]any{"rule": RulePasswordLength, "max_bytes": MaxPasswordBytes}},
		{"lowercase-and-symbols", map[string]any{"rule": RulePasswordClasses, "min_classes": MinPasswordClasses, "classes": 2}},
		{"Olga-Harbor-Pass-1", map[string]any{"rule": RulePasswordUsername}},
		{pc.current, map[string]any{"rule": RulePasswordUnchanged}},
	} {
		r := change(c.next)
		wantPolicyAnswer(t, "change to "+c.next, r.code, r.body, c.next, c.want)
		wantError(t, "change to "+c.next, r, http.StatusBadRequest, "new password: ")
	}
	// A password of the history: checked once the current one is.
	old := pc.current
	r := change("Harbor-Change-00")
	if r.code != http.StatusOK {
		t.Fatalf("change: %d %s", r.code, r.body)
	}
	pc.took("Harbor-Change-00", r)
	r = change(old)
	wantPolicyAnswer(t, "back to the old password", r.code, r.body, old, map[string]any{"rule": RulePasswordHistory, "history": DefaultPasswordHistory})
	// A wrong current password is no policy refusal.
	r = f.do(authReq{method: "PUT", path: "/api/v1/session/password", cookie: pc.token, csrf: pc.csrf,
		body: map[string]string{"password": "Wrong-Current-1", "new_password": "Fresh-Harbor-Pass-2"}})
	if r.code != http.StatusUnauthorized || r.json["rule"] != nil {
		t.Errorf("wrong current password: %d %s", r.code, r.body)
	}
}

func TestSessionExpiryIsConfigurableAndAudited(t *testing.T) {
	f := newAuthFixture(t, func(c *AuthConfig) { c.IdleTimeout = 2 * time.Minute; c.MaxSession = 5 * time.Minute })
	f.user("olga", RoleOperator, "Quiet-Harbor-71")
	read := func(token string) authResp { return f.do(authReq{method: "GET", path: "/t/read", bearer: token}) }

	token, _ := f.mustLogin("olga", "Quiet-Harbor-71")
	f.clock.Advance(2*time.Minute - time.Second)
	if r := read(token); r.code != http.StatusOK {
		t.Fatalf("use before the idle timeout: %d %s", r.code, r.body)
	}
	f.clock.Advance(2 * time.Minute)
	wantError(t, "use after the idle timeout", read(token), http.StatusUnauthorized, "expired")
	lines := auditActions(t, f.db, token)
	if !hasAudit(lines, "session.expired olga", "idle timeout 2m0s") {
		t.Errorf("no session.expired entry for the idle session:\n%s", strings.Join(lines, "\n"))
	}

	// Used every minute, it still ends at MaxSession.
	token, _ = f.mustLogin("olga", "Quiet-Harbor-71")
	for range 4 {
		f.clock.Advance(time.Minute)
		if r := read(token); r.code != http.StatusOK {
			t.Fatalf("use at +%v: %d", time.Minute, r.code)
		}
	}
	f.clock.Advance(time.Minute)
	wantError(t, "use at the maximum length", read(token), http.StatusUnauthorized, "expired")
	lines = auditActions(t, f.db, token)
	if !hasAudit(lines, "session.expired olga", "maximum length 5m0s") {
		t.Errorf("no session.expired entry for the session at its maximum length:\n%s", strings.Join(lines, "\n"))
	}
	n := 0
	for _, l := range lines {
		if strings.HasPrefix(l, "session.expired") {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d session.expired entries, want one per session", n)
	}
}

func TestEveryRefusalIsAudited(t *testing.T) {
	f := newAuthFixture(t, nil)
	f.user("vic", RoleViewer, testPassword("vic"))
	token, _ := f.mustLogin("vic", testPassword("vic"))
	var out bytes.Buffer
	if err := f.auth.EnsureAdmin(context.Background(), "", &out); err != nil {
		t.Fatal(err)
	}
	generated := generatedLine.FindStringSubmatch(out.String())[1]
	admin := f.login("admin", generated).str("token")
	for _, c := range []struct {
		what       string
		q          authReq
		code       int
		action     string
		actor      string
		detailWord string
	}{
		{"no credentials", authReq{method: "GET", path: "/t/read"}, 401, "request.refused", "", "login required"},
		{"unknown token", authReq{method: "GET", path: "/t/read", bearer: "fwt_nope"}, 401, "request.refused", "", "invalid"},
		{"no CSRF", authReq{method: "POST", path: "/t/write", cookie: token}, 403, "request.forbidden", "vic", CSRFHeader},
		{"role", authReq{method: "GET", path: "/t/admin", bearer: token}, 403, "request.forbidden", "vic", "role viewer"},
		{"password to change", authReq{method: "GET", path: "/t/read", bearer: admin}, 403, "request.forbidden", "admin", "changed first"},
	} {
		before, _ := f.db.AuditEntries(context.Background(), store.AuditFilter{Limit: 1})
		r := f.do(c.q)
		if r.code != c.code {
			t.Errorf("%s: %d %s, want %d", c.what, r.code, r.body, c.code)
			continue
		}
		after, _ := f.db.AuditEntries(context.Background(), store.AuditFilter{Limit: 1})
		if len(after) == 0 || (len(before) > 0 && after[0].ID == before[0].ID) {
			t.Errorf("%s: no audit entry", c.what)
			continue
		}
		e := after[0]
		if e.Action != c.action || e.Actor != c.actor || e.Target != c.q.method+" "+c.q.path || !strings.Contains(e.Detail, c.detailWord) ||
			e.Remote != "127.0.0.1" {
			t.Errorf("%s: audit entry %+v, want %s by %q of %s %s saying %q", c.what, e, c.action, c.actor, c.q.method, c.q.path, c.detailWord)
		}
	}
}

func TestNewAuthChecksSecurityConfig(t *testing.T) {
	db, err := store.Open(filepath.Join(t.TempDir(), "flowwatch.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for name, c := range map[string]struct {
		cfg  AuthConfig
		word string
	}{
		"unknown TOTP role":          {AuthConfig{Store: db, TOTPRoles: []string{"boss"}}, `"boss"`},
		"history too long":           {AuthConfig{Store: db, PasswordHistory: store.MaxPasswordHistory + 2}, "password history"},
		"max session below the idle": {AuthConfig{Store: db, IdleTimeout: time.Hour, MaxSession: time.Minute}, "shorter than the idle"},
	} {
		if _, err := NewAuth(c.cfg); err == nil || !strings.Contains(err.Error(), c.word) {
			t.Errorf("%s: %v, want an error saying %q", name, err, c.word)
		}
	}
	a, err := NewAuth(AuthConfig{Store: db, IdleTimeout: time.Minute, MaxSession: time.Hour, TOTPRoles: []string{RoleAdmin}})
	if err != nil {
		t.Fatal(err)
	}
	if a.cfg.IdleTimeout != time.Minute || a.cfg.MaxSession != time.Hour || a.cfg.PasswordHistory != DefaultPasswordHistory ||
		!a.totpRequired(RoleAdmin) || a.totpRequired(RoleViewer) {
		t.Errorf("config: %+v", a.cfg)
	}
}

// TestEveryRouteRefusalIsAudited calls every route of the alerts and of the
// cameras, zones and users role tables without login (401) and as each
// user not allowed (403), and checks that each refusal left an audit
// entry naming the route, the user and the reason.
func TestEveryRouteRefusalIsAudited(t *testing.T) {
	alerts := newAPISite(t)
	id := alerts.raise(t).ID
	cameras, _, _ := newCameraSite(t)
	for _, c := range []struct {
		site   *apiSite
		routes []apiRoute
	}{{alerts, alertsAPIRoutes(id)}, {cameras, cameraZoneUserRoutes()}} {
		for _, rt := range c.routes {
			users := []string{""}
			for user := range c.site.tokens {
				if !slices.Contains(rt.allowed, user) {
					users = append(users, user)
				}
			}
			for _, user := range users {
				last, err := c.site.db.AuditEntries(context.Background(), store.AuditFilter{Limit: 1})
				if err != nil {
					t.Fatal(err)
				}
				last = append(last, store.AuditEntry{}) // an empty log
				code := c.site.call(t, user, rt.method, rt.path, rt.body, nil)
				action := "request.forbidden"
				switch {
				case code == http.StatusUnauthorized && user == "":
					action = "request.refused"
				case code == http.StatusNotFound:
					continue // another post's alert: none of the guard's business
				case code != http.StatusForbidden:
					t.Errorf("%s %s as %q: %d, want a refusal", rt.method, rt.path, user, code)
					continue
				}
				entries, err := c.site.db.AuditEntries(context.Background(), store.AuditFilter{Action: action, From: last[0].At})
				if err != nil {
					t.Fatal(err)
				}
				found := false
				for _, e := range entries {
					found = found || (e.ID > last[0].ID && e.Actor == user && e.Target == rt.method+" "+rt.path && e.Detail != "" &&
						e.Remote == "127.0.0.1")
				}
				if !found {
					t.Errorf("%s %s as %q answered %d without a %s audit entry", rt.method, rt.path, user, code, action)
				}
			}
		}
	}
}
