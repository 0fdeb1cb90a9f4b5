package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"flowwatch/alerting"
	"flowwatch/internal/config"
	"flowwatch/internal/store"
)

// The fuzz targets of this file drive the console's JSON bodies and query
// strings through the real HTTP handlers, on loopback, over a real SQLite
// store and a real Auth (cheapArgon). Each target builds its site once
// and checks every answer: never a 5xx, every answer other than 2xx a JSON
// {"error": …}, and a refused request changes nothing in the store.

// fuzzSite is the apiSiteYAML site with every API route the console
// serves (sessions, users, alerts with a running alerting service,
// history, cameras and zones with cameraViews), one user per role holding
// an API token (ada admin, otto operator, gina guard of gate, pia
// planner, vic viewer) and "temp", a viewer to be changed.
type fuzzSite struct {
	*apiSite
	auth  *Auth
	views *cameraViews

	alertOnce sync.Once
	alertID   int64
}

// newFuzzSite builds a fuzzSite that lives as long as the fuzz target.
// Logins are not rate-limited and never lock an account, so that every
// input reaches the handlers.
//
// It takes testing.TB, which the site helpers of the other test files
// (newAPISite, newCameraSite, newSiteParts) do not yet: a fuzz target has
// only its *testing.F outside f.Fuzz. Once they take testing.TB this
// becomes a call of theirs.
func newFuzzSite(tb testing.TB) *fuzzSite {
	tb.Helper()
	cfg, err := config.Parse("site.yaml", []byte(apiSiteYAML))
	if err != nil {
		tb.Fatal(err)
	}
	// a fuzzer sends thousands of requests a second from one address:
	// the per-client limit would answer most of them 429, rightly, and
	// hide the handlers under test
	cfg.Console.RateLimitPerSecond, cfg.Console.RateLimitBurst = 1e6, 1e6
	db, err := store.Open(filepath.Join(tb.TempDir(), "flowwatch.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc, err := alerting.NewService(context.Background(), alerting.ServiceConfig{Config: cfg, Store: db, Logger: log})
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = svc.Run(ctx) }()
	tb.Cleanup(func() { cancel(); <-done })
	argon := cheapArgon
	auth, err := NewAuth(AuthConfig{Store: db, Logger: log, argon: &argon, LoginsPerMinute: 1 << 30, MaxFailures: 1 << 30})
	if err != nil {
		tb.Fatal(err)
	}
	views := &cameraViews{}
	srv := New(Config{Listen: "127.0.0.1:0", Areas: svc.Engine(), Auth: auth, Store: db, Desk: svc, Site: cfg,
		Cameras: views, Snapshots: views, LiveDensity: views, Zones: views, Logger: log})
	if err := srv.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { srv.Close() })
	s := &fuzzSite{apiSite: &apiSite{base: srv.URL(), tokens: map[string]string{}, svc: svc, db: db}, auth: auth, views: views}
	for name, role := range cameraSiteUsers {
		var posts []string
		if role == RoleGuard {
			posts = []string{"gate"}
		}
		if err := auth.CreateUser(ctx, name, role, posts, testPassword(name)); err != nil {
			tb.Fatal(err)
		}
		if s.tokens[name], err = auth.CreateAPIToken(ctx, name, "fuzz"); err != nil {
			tb.Fatal(err)
		}
	}
	if err := auth.CreateUser(ctx, "temp", RoleViewer, nil, testPassword("temp")); err != nil {
		tb.Fatal(err)
	}
	return s
}

// alert returns the id of an alert of the gate area, raising it the first
// time.
func (s *fuzzSite) alert(t *testing.T) int64 {
	s.alertOnce.Do(func() { s.alertID = s.raise(t).ID })
	if s.alertID == 0 {
		t.Fatal("no alert raised")
	}
	return s.alertID
}

// checkAnswer fails t when a is a 5xx, or an answer other than 2xx that
// is no JSON object with an "error" string.
func checkAnswer(t *testing.T, what string, a rawAnswer) {
	t.Helper()
	if a.code >= 500 {
		t.Fatalf("%s: %d %s", what, a.code, a.body)
	}
	if a.code < 300 {
		return
	}
	var e struct {
		Error *string `json:"error"`
	}
	if ct := a.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("%s: %d with Content-Type %q, want a JSON error: %q", what, a.code, ct, a.body)
	}
	if err := json.Unmarshal([]byte(a.body), &e); err != nil || e.Error == nil || *e.Error == "" {
		t.Fatalf("%s: %d answer is no {\"error\": …}: %q", what, a.code, a.body)
	}
}

// mustEqual fails t when a refused request (answer a) changed the state
// read before and after it.
func mustEqual(t *testing.T, what string, a rawAnswer, before, after any) {
	t.Helper()
	if !reflect.DeepEqual(before, after) {
		t.Fatalf("%s was refused (%d %s) but changed the store:\nbefore %+v\nafter  %+v", what, a.code, a.body, before, after)
	}
}

// FuzzLoginBody posts arbitrary bodies to POST /api/v1/session. A login
// succeeds only for a user's own password; a successful one is logged out
// again.
func FuzzLoginBody(f *testing.F) {
	good := fmt.Sprintf(`{"username":"ada","password":%q}`, testPassword("ada"))
	for _, b := range []string{
		good, `{"username":"ada","password":"wrong"}`, `{"username":"nobody","password":"x"}`, `{"username":"ada"}`,
		`{}`, ``, `[]`, `null`, `{"username":5}`, strings.TrimSuffix(good, "}") + `,"extra":1}`, good + ` {}`, good + `x`,
		strings.ToUpper(good), `{"username":"ada","password":"` + strings.Repeat("a", 5000) + `"}`,
		`{"username":"a\u0000","password":"\ud800"}`,
	} {
		f.Add(b)
	}
	s := newFuzzSite(f)
	f.Fuzz(func(t *testing.T, body string) {
		a := s.raw(t, "", "POST", "/api/v1/session", body)
		checkAnswer(t, "login", a)
		if a.code != http.StatusOK {
			return
		}
		var ok struct{ Token, User string }
		if err := json.Unmarshal([]byte(a.body), &ok); err != nil || ok.Token == "" {
			t.Fatalf("login: 200 without a token: %q", a.body)
		}
		var req loginRequest
		if err := json.Unmarshal([]byte(body), &req); err != nil || req.Username != ok.User || req.Password != testPassword(ok.User) {
			t.Fatalf("login with %q let %q in", body, ok.User)
		}
		s.tokens["fuzz-session"] = ok.Token
		if out := s.raw(t, "fuzz-session", "DELETE", "/api/v1/session", ""); out.code != http.StatusOK && out.code != http.StatusNoContent {
			t.Fatalf("logout: %d %s", out.code, out.body)
		}
	})
}

// FuzzAlertLifecycleBody posts arbitrary bodies to an open alert's ack,
// notes and handover routes as the operator. A refused body leaves the
// alert and its history as they were.
func FuzzAlertLifecycleBody(f *testing.F) {
	for _, b := range []string{
		`{"note":"seen"}`, `{"to":"otto","note":"shift"}`, `{"note":"two guards at the gate"}`, `{}`, `{"note": 5}`,
		`{"note":"` + strings.Repeat("n", 2001) + `"}`, `{"note":" "}`, `{"to":"nobody"}`, `{"note":"x","extra":true}`, ``,
		`{"note":"x"}{"note":"y"}`, `{"to":"\u0000"}`,
	} {
		for action := range uint8(3) {
			f.Add(action, b)
		}
	}
	s := newFuzzSite(f)
	actions := []string{"ack", "notes", "handover"}
	f.Fuzz(func(t *testing.T, action uint8, body string) {
		id := s.alert(t)
		ctx := context.Background()
		read := func() any {
			al, err := s.db.Alert(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			chs, err := s.db.AlertChanges(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			return []any{al, chs}
		}
		before := read()
		path := fmt.Sprintf("/api/v1/alerts/%d/%s", id, actions[int(action)%len(actions)])
		a := s.raw(t, "otto", "POST", path, body)
		checkAnswer(t, path, a)
		if a.code >= 300 {
			mustEqual(t, "POST "+path, a, before, read())
		}
	})
}

// FuzzUserBody sends arbitrary bodies to POST /api/v1/users and PUT
// /api/v1/users/temp as the admin. A refused body changes no user; a
// created user is deleted again; a password given is never answered.
func FuzzUserBody(f *testing.F) {
	for _, b := range []string{
		`{"username":"newbie","role":"viewer"}`, `{"role":"planner","posts":[]}`, `{"role":"guard","posts":["gate"]}`,
		`{"role":"guard","posts":["gate","gate"]}`, `{"role":"guard","posts":["nowhere"]}`, `{"role":"king"}`,
		`{"username":"ada","role":"viewer"}`, `{"username":" pad","role":"viewer"}`, `{"username":"a/b","role":"viewer"}`,
		`{"username":"x\u0007","role":"viewer"}`, `{"username":"pw","role":"viewer","password":"long-enough-pass-1","must_change":true}`,
		`{"username":"pw2","role":"viewer","password":"short"}`, `{"username":"pw3","role":"viewer","password":"Zq-Tp-New-0123456789"}`, `{"username":"` + strings.Repeat("u", 65) + `","role":"viewer"}`,
		`{"role":"admin","posts":null}`, `{"posts":{}}`, ``, `{}`,
	} {
		f.Add(false, b)
		f.Add(true, b)
	}
	s := newFuzzSite(f)
	f.Fuzz(func(t *testing.T, put bool, body string) {
		ctx := context.Background()
		read := func() []store.User {
			us, err := s.db.Users(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return us
		}
		before := read()
		method, path := "POST", "/api/v1/users"
		if put {
			method, path = "PUT", "/api/v1/users/temp"
		}
		a := s.raw(t, "ada", method, path, body)
		checkAnswer(t, method+" "+path, a)
		if a.code >= 300 {
			mustEqual(t, method+" "+path, a, before, read())
			return
		}
		if put {
			return
		}
		var req newUserBody
		_ = json.Unmarshal([]byte(body), &req)
		if len(req.Password) >= 8 && !strings.Contains(req.Username+req.Role+strings.Join(req.Posts, ""), req.Password) &&
			strings.Contains(a.body, req.Password) {
			t.Fatalf("POST %s answered the password given: %q", path, a.body)
		}
		var created struct {
			User userInfo `json:"user"`
		}
		if err := json.Unmarshal([]byte(a.body), &created); err != nil || created.User.Username == "" {
			t.Fatalf("POST %s: %d %q names no user", path, a.code, a.body)
		}
		del := "/api/v1/users/" + url.PathEscape(created.User.Username)
		if d := s.raw(t, "ada", "DELETE", del, ""); d.code != http.StatusOK {
			t.Fatalf("DELETE %s: %d %s", del, d.code, d.body)
		}
		mustEqual(t, "a user created and deleted again", a, usernames(before), usernames(read()))
	})
}

// usernames returns the users' names.
func usernames(us []store.User) []string {
	out := make([]string, len(us))
	for i, u := range us {
		out[i] = u.Username
	}
	return out
}

// FuzzZonesBody sends arbitrary layouts to PUT
// /api/v1/cameras/cam/zones as the admin. A refused layout changes neither
// the stored layout nor the one applied; an accepted one is stored and
// applied as answered.
func FuzzZonesBody(f *testing.F) {
	for _, b := range []string{
		`{"zones":[{"name":"gate","polygon":[[0,0],[1,0],[1,1]],"capacity":12},{"name":"yard","polygon":[[0,0],[1,1],[0,1]]}]}`,
		`{"zones":[{"name":"gate","polygon":[[0,0],[1,0],[1,1]]}]}`, `{"zones":[]}`, `{}`, `{"zones":null}`,
		`{"zones":[{"name":"gate","polygon":[[0,0],[1,0],[1,1]]},{"name":"yard","polygon":[[0,0],[1,1],[0,1]]},{"name":"all","polygon":[[0,0],[1,0],[1,1]]}]}`,
		`{"zones":[{"name":"gate","polygon":[[0,0],[1,0],[1,1]],"capacity":-1},{"name":"yard","polygon":[[0,0],[1,1],[0,1]]}]}`,
		`{"zones":[{"name":"gate","polygon":[[0,0],[2,0],[1,1]]},{"name":"yard","polygon":[[0,0],[1,1],[0,1]]}]}`,
		`{"zones":[{"name":"gate","polygon":[[0,0],[1,1],[1,0],[0,1]]},{"name":"yard","polygon":[[0,0],[1,1],[0,1]]}]}`,
		`{"zones":[{"name":"gate","polygon":[[0,0],[1,0],[1,1]]},{"name":"yard","polygon":[[0,0],[1,1],[0,1]]}],"calibration":{"image":[[0,0],[1,0],[1,1],[0,1]],"ground":[[0,0],[10,0],[10,10],[0,10]]}}`,
		`{"zones":[{"name":"gate","polygon":[[0,0],[1,0],[1,1]]},{"name":"yard","polygon":[[0,0],[1,1],[0,1]]}],"calibration":{"image":[[0,0],[0,0],[0,0],[0,0]],"ground":[[0,0],[0,0],[0,0],[0,0]]}}`,
		`{"zones":[{"name":"gate","polygon":[[0,0],[1,0],[1,1]]},{"name":"yard","polygon":[[0,0],[1,1],[0,1]]}],"calibration":{}}`,
		`{"zones":[{"name":"gate","polygon":[[0,0],[1,0],[1,1]],"colour":"red"}]}`, ``,
	} {
		f.Add(b)
	}
	s := newFuzzSite(f)
	f.Fuzz(func(t *testing.T, body string) {
		ctx := context.Background()
		read := func() []any {
			l, err := s.db.ZoneLayout(ctx, "cam")
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				t.Fatal(err)
			}
			s.views.mu.Lock()
			applied, ok := s.views.applied["cam"]
			s.views.mu.Unlock()
			return []any{l, applied, ok}
		}
		before := read()
		const path = "/api/v1/cameras/cam/zones"
		a := s.raw(t, "ada", "PUT", path, body)
		checkAnswer(t, "PUT "+path, a)
		if a.code >= 300 {
			mustEqual(t, "PUT "+path, a, before, read())
			return
		}
		var put, got zoneLayoutAnswer
		if err := json.Unmarshal([]byte(a.body), &put); err != nil {
			t.Fatalf("PUT %s: %v: %q", path, err, a.body)
		}
		if g := s.raw(t, "ada", "GET", path, ""); g.code != http.StatusOK || json.Unmarshal([]byte(g.body), &got) != nil {
			t.Fatalf("GET %s after a save: %d %s", path, g.code, g.body)
		}
		if !reflect.DeepEqual(put.Zones, got.Zones) || !reflect.DeepEqual(put.Calibration, got.Calibration) || got.Source != zonesFromConsole {
			t.Fatalf("PUT %s answered %+v, GET reads %+v", path, put, got)
		}
	})
}

// FuzzBacktestBody posts arbitrary bodies to POST /api/v1/rules/backtest
// as the planner: a period and candidate rules, checked like a rules file.
// No body may make it fail with a 5xx.
func FuzzBacktestBody(f *testing.F) {
	from := time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)
	to := from.Add(time.Hour)
	period := fmt.Sprintf(`"from":%q,"to":%q`, from.Format(time.RFC3339), to.Format(time.RFC3339))
	for _, b := range []string{
		`{` + period + `}`, `{` + period + `,"rules":{"yellow":0.5,"min_duration":"1s","smoothing":"1s"}}`,
		`{` + period + `,"rules":{"yellow":0.95}}`, `{` + period + `,"rules":null}`, `{` + period + `,"rules":[]}`,
		`{` + period + `,"rules":"x"}`, `{` + period + `,"rules":{"surge_per_minute":-1,"forecast_horizon":"-1s"}}`,
		`{` + period + `,"rules":{"smoothing":"0s"}}`, `{` + period + `,"rules":{"nope":1}}`,
		`{"from":"2026-03-02T08:00:00Z","to":"2026-03-02T08:00:00Z"}`, `{"from":"2026-03-02T08:00:00Z","to":"2026-05-02T08:00:00Z"}`,
		`{"from":"yesterday"}`, `{}`, ``,
	} {
		f.Add(b)
	}
	s := newFuzzSite(f)
	f.Fuzz(func(t *testing.T, body string) {
		a := s.raw(t, "pia", "POST", "/api/v1/rules/backtest", body)
		checkAnswer(t, "POST /api/v1/rules/backtest", a)
	})
}

// FuzzRangeQuery sends arbitrary from, to, limit, step, target, format and
// state parameters to GET /api/v1/counts and GET /api/v1/alerts as the
// admin: each is answered 2xx or a JSON 4xx.
func FuzzRangeQuery(f *testing.F) {
	hourAgo := time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)
	for _, q := range [][7]string{
		{hourAgo.Format(time.RFC3339), hourAgo.Add(time.Hour).Format(time.RFC3339), "", "", "area:gate", "", ""},
		{"", "", "", "1m", "zone:cam/gate", "csv", "open"},
		{"yesterday", "", "", "", "", "", ""},
		{"", "", "-1", "auto", "gate", "xml", "acknowledged"},
		{"2026-03-02T09:00:00Z", "2026-03-02T08:00:00Z", "10", "1s", "area:nope", "json", "resolved"},
		{"0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "99999999999999999999", "1s", "area:yard", "", ""},
		{"2026-03-02T08:00:00+14:00", "2026-03-02T08:00:00-12:00", "0", "1h", " area:gate ", "", "x"},
	} {
		f.Add(q[0], q[1], q[2], q[3], q[4], q[5], q[6])
	}
	s := newFuzzSite(f)
	f.Fuzz(func(t *testing.T, from, to, limit, step, target, format, state string) {
		q := url.Values{}
		for k, v := range map[string]string{"from": from, "to": to, "limit": limit, "step": step, "target": target, "format": format, "state": state} {
			if v != "" {
				q.Set(k, v)
			}
		}
		for _, path := range []string{"/api/v1/counts", "/api/v1/alerts"} {
			path += "?" + q.Encode()
			checkAnswer(t, "GET "+path, s.raw(t, "ada", "GET", path, ""))
		}
	})
}
