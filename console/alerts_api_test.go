package console

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"flowwatch/alerting"
	"flowwatch/internal/event"
	"flowwatch/internal/store"
)

// apiSite is a console with auth, the alerts API and a live alerting
// service over a real store, with one user per role.
type apiSite struct {
	base   string
	tokens map[string]string // user → bearer token
	svc    *alerting.Service
	db     *store.Store
}

const apiSiteYAML = `
security: {allow_loopback: true}
cameras:
  - name: cam
    url: rtsp://127.0.0.1:8554/cam
    zones:
      - {name: gate, polygon: [[0,0],[1,0],[1,1]]}
      - {name: yard, polygon: [[0,0],[1,1],[0,1]]}
areas:
  - {name: gate, zones: [cam/gate], capacity: 10, links: [{to: yard, route: east path, walk_minutes: 2}]}
  - {name: yard, zones: [cam/yard], capacity: 100}
rules: {smoothing: 1s, min_duration: 1s, surge_per_minute: -1, forecast_horizon: -1s}
`

func newAPISite(t *testing.T) *apiSite {
	t.Helper()
	sp := newSiteParts(t, apiSiteYAML)
	cfg, db, log, auth := sp.cfg, sp.db, sp.log, sp.auth
	svc, err := alerting.NewService(context.Background(), alerting.ServiceConfig{Config: cfg, Store: db, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = svc.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	s := New(Config{Listen: "127.0.0.1:0", Areas: svc.Engine(), Auth: auth, Store: db, Desk: svc, Site: cfg, Logger: log})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	site := &apiSite{base: s.URL(), tokens: map[string]string{}, svc: svc, db: db}
	users := map[string]struct {
		role  string
		posts []string
	}{
		"ada": {RoleAdmin, nil}, "otto": {RoleOperator, nil}, "gina": {RoleGuard, []string{"gate"}},
		"yuri": {RoleGuard, []string{"yard"}}, "pia": {RolePlanner, nil}, "vic": {RoleViewer, nil},
	}
	for name, u := range users {
		site.login(t, auth, name, u.role, u.posts)
	}
	return site
}

// raise makes the gate area overflow so that a real alert is stored.
func (s *apiSite) raise(t *testing.T) event.Alert {
	t.Helper()
	start := time.Now().Add(-20 * time.Second)
	for i := range 6 {
		at := start.Add(time.Duration(i) * time.Second)
		s.svc.Observe(event.CountSample{Time: at, Camera: "cam", Zone: "gate", Count: 12})
		s.svc.Observe(event.CountSample{Time: at, Camera: "cam", Zone: "yard", Count: 20})
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		open, err := s.db.OpenAlerts(context.Background())
		if err == nil && len(open) > 0 {
			return open[0]
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("no alert raised")
	return event.Alert{}
}

// apiRoute is a route of a role table: who may call it, and the answer
// they get (ok; 0 means 200).
type apiRoute struct {
	method, path, body string
	allowed            []string // the others get 403 (and 401 without login)
	ok                 int
}

// alertsAPIRoutes are the routes of the alerts API with the users of
// newAPISite allowed on each; id is an alert of the gate.
func alertsAPIRoutes(id int64) []apiRoute {
	from := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	to := time.Now().Add(time.Minute).UTC().Format(time.RFC3339)
	return []apiRoute{
		{"GET", "/api/v1/alerts", "", []string{"ada", "otto", "gina", "yuri", "pia", "vic"}, 0},
		{"GET", fmt.Sprintf("/api/v1/alerts/%d", id), "", []string{"ada", "otto", "gina", "pia", "vic"}, 0}, // yuri: not his post (404)
		{"POST", fmt.Sprintf("/api/v1/alerts/%d/notes", id), `{"note":"seen"}`, []string{"ada", "otto", "gina"}, 0},
		{"POST", fmt.Sprintf("/api/v1/alerts/%d/handover", id), `{"to":"otto","note":"shift"}`, []string{"ada", "otto"}, 0},
		{"GET", "/api/v1/areas", "", []string{"ada", "otto", "gina", "yuri", "pia", "vic"}, 0},
		{"GET", "/api/v1/alert-deliveries/dead", "", []string{"ada"}, 0},
		{"GET", "/api/v1/audit", "", []string{"ada"}, 0},
		{"POST", "/api/v1/rules/backtest", fmt.Sprintf(`{"from":%q,"to":%q}`, from, to), []string{"ada", "pia"}, 0},
	}
}

func TestAlertsAPIEveryRouteEveryRole(t *testing.T) {
	site := newAPISite(t)
	alert := site.raise(t)
	for _, rt := range alertsAPIRoutes(alert.ID) {
		if code := site.call(t, "", rt.method, rt.path, rt.body, nil); code != http.StatusUnauthorized {
			t.Errorf("%s %s without login: %d, want 401", rt.method, rt.path, code)
		}
		for user := range site.tokens {
			code := site.call(t, user, rt.method, rt.path, rt.body, nil)
			allowed := false
			for _, a := range rt.allowed {
				allowed = allowed || a == user
			}
			switch {
			case allowed && code != http.StatusOK:
				t.Errorf("%s %s as %s: %d, want 200", rt.method, rt.path, user, code)
			case !allowed && code != http.StatusForbidden && code != http.StatusNotFound:
				t.Errorf("%s %s as %s: %d, want 403 (or 404 for another post's alert)", rt.method, rt.path, user, code)
			}
		}
	}
}

func TestAlertsAPILifecycleAndGuardScope(t *testing.T) {
	site := newAPISite(t)
	alert := site.raise(t)
	var list struct {
		Alerts []event.Alert `json:"alerts"`
	}
	site.call(t, "yuri", "GET", "/api/v1/alerts", "", &list)
	if len(list.Alerts) != 0 {
		t.Fatalf("the yard's guard sees the gate's alert: %+v", list.Alerts)
	}
	site.call(t, "gina", "GET", "/api/v1/alerts?state=open", "", &list)
	if len(list.Alerts) != 1 || list.Alerts[0].ID != alert.ID {
		t.Fatalf("the gate's guard: %+v", list.Alerts)
	}
	if !strings.Contains(list.Alerts[0].MessageEN, "via east path to yard") {
		t.Fatalf("the alert names no diversion: %q", list.Alerts[0].MessageEN)
	}
	// the viewer may not acknowledge; the gate's guard does, once
	path := fmt.Sprintf("/api/v1/alerts/%d/ack", alert.ID)
	if code := site.call(t, "vic", "POST", path, `{"note":"x"}`, nil); code != http.StatusForbidden {
		t.Fatalf("viewer ack: %d", code)
	}
	var acked struct {
		Alert event.Alert `json:"alert"`
	}
	if code := site.call(t, "gina", "POST", path, `{"note":"two guards at the gate"}`, &acked); code != 200 ||
		acked.Alert.AckedBy != "gina" || acked.Alert.State != event.AlertAcknowledged {
		t.Fatalf("guard ack: %d %+v", code, acked.Alert)
	}
	if code := site.call(t, "otto", "POST", path, `{}`, nil); code != http.StatusConflict {
		t.Fatalf("second ack: %d, want 409", code)
	}
	if code := site.call(t, "otto", "POST", path, `{"note": 5}`, nil); code != http.StatusBadRequest {
		t.Fatalf("bad body: %d, want 400", code)
	}
	var detail struct {
		Changes []event.AlertChange `json:"changes"`
	}
	site.call(t, "otto", "GET", fmt.Sprintf("/api/v1/alerts/%d", alert.ID), "", &detail)
	if len(detail.Changes) != 2 || detail.Changes[1].By != "gina" || detail.Changes[1].Note != "two guards at the gate" {
		t.Fatalf("stored history: %+v", detail.Changes)
	}
	// the acknowledgement and the viewer's refused try are in the audit
	// log, which admins read and nobody can change through the API
	var audit struct {
		Entries []struct {
			Actor, Action, Target, Detail, Remote string
		} `json:"entries"`
	}
	if code := site.call(t, "ada", "GET", "/api/v1/audit", "", &audit); code != 200 {
		t.Fatalf("audit log: %d", code)
	}
	var sawAck, sawRefusal bool
	for _, e := range audit.Entries {
		sawAck = sawAck || (e.Action == "alert.ack" && e.Actor == "gina" && e.Detail == "two guards at the gate" &&
			e.Target == fmt.Sprintf("alert %d", alert.ID) && e.Remote == "127.0.0.1")
		sawRefusal = sawRefusal || (e.Action == "request.forbidden" && e.Actor == "vic")
	}
	if !sawAck || !sawRefusal {
		t.Fatalf("audit log lacks the acknowledgement (%v) or the viewer's refusal (%v): %+v", sawAck, sawRefusal, audit.Entries)
	}
	for _, m := range []string{"PUT", "DELETE", "PATCH"} {
		if code := site.call(t, "ada", m, "/api/v1/audit", "{}", nil); code != http.StatusMethodNotAllowed {
			t.Fatalf("%s /api/v1/audit: %d, want 405", m, code)
		}
	}
	if n, err := site.db.VerifyAudit(context.Background()); err != nil || n < 8 {
		t.Fatalf("audit chain: %d entries, %v", n, err)
	}
	// resolved by hand, then not open any more
	if code := site.call(t, "otto", "POST", fmt.Sprintf("/api/v1/alerts/%d/resolve", alert.ID), `{"note":"cleared"}`, nil); code != 200 {
		t.Fatalf("resolve: %d", code)
	}
	site.call(t, "otto", "GET", "/api/v1/alerts?state=open", "", &list)
	if len(list.Alerts) != 0 {
		t.Fatalf("still open after resolve: %+v", list.Alerts)
	}
	// a planner's backtest with a candidate rule set
	from := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	to := time.Now().Add(time.Minute).UTC().Format(time.RFC3339)
	var res alerting.BacktestResult
	if code := site.call(t, "pia", "POST", "/api/v1/rules/backtest",
		fmt.Sprintf(`{"from":%q,"to":%q,"rules":{"yellow":0.5,"min_duration":"1s","smoothing":"1s"}}`, from, to), &res); code != 200 {
		t.Fatalf("backtest: %d", code)
	}
	if code := site.call(t, "pia", "POST", "/api/v1/rules/backtest",
		fmt.Sprintf(`{"from":%q,"to":%q,"rules":{"yellow":0.95}}`, from, to), nil); code != http.StatusBadRequest {
		t.Fatalf("backtest with yellow above orange: %d, want 400", code)
	}
}
