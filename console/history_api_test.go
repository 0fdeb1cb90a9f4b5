package console

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"image/png"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"flowwatch/ingest"
	"flowwatch/internal/event"
	"flowwatch/internal/store"
	"flowwatch/vision"
)

// historyBase is when the seeded history starts: on a heatmap bucket's
// and a minute's boundary.
var historyBase = time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)

// historySnaps is a Snapshots giving one grey frame of the given size for
// the camera "cam", or failing.
type historySnaps struct {
	w, h int
	fail bool
}

func (s historySnaps) Snapshot(camera string) (*ingest.Frame, error) {
	if s.fail || camera != "cam" {
		return nil, errors.New("no picture yet")
	}
	f := &ingest.Frame{Width: s.w, Height: s.h, Stride: 3 * s.w, Pix: make([]byte, 3*s.w*s.h)}
	for i := range f.Pix {
		f.Pix[i] = 128
	}
	return f, nil
}

// newHistorySite serves the session routes, the audit log and the
// history API of the apiSiteYAML site over a real store, with one user per
// role (ada admin, otto operator, gina guard, pia planner, vic viewer).
func newHistorySite(t *testing.T, snaps Snapshots) *apiSite {
	t.Helper()
	sp := newSiteParts(t, apiSiteYAML)
	cfg, db, auth := sp.cfg, sp.db, sp.auth
	mux := http.NewServeMux()
	auth.Register(mux)
	mux.Handle("GET /api/v1/audit", auth.Require([]string{RoleAdmin}, http.HandlerFunc(auth.auditLog)))
	newHistoryAPI(auth, db, cfg, snaps).register(mux, auth)
	srv := httptest.NewServer(jsonMisses(mux))
	t.Cleanup(srv.Close)
	site := &apiSite{base: srv.URL, tokens: map[string]string{}, db: db}
	for name, role := range map[string]string{"ada": RoleAdmin, "otto": RoleOperator, "gina": RoleGuard, "pia": RolePlanner, "vic": RoleViewer} {
		var posts []string
		if role == RoleGuard {
			posts = []string{"gate"}
		}
		site.login(t, auth, name, role, posts)
	}
	return site
}

// historyGet makes a GET as user ("" for none) and returns the answer with
// its body read.
func historyGet(t *testing.T, s *apiSite, user, path string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest("GET", s.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s.do(t, user, req)
}

// seedHistory stores two minutes of the gate area (value i%10 at second
// i), two counts in one second of the gate zone, and one heatmap bucket of
// camera cam (a 4x3 grid over 2 frames, cell i summing to 2i).
func seedHistory(t *testing.T, db *store.Store) {
	t.Helper()
	var vs []store.CountValue
	for i := range 120 {
		vs = append(vs, store.CountValue{Target: event.AreaTarget("gate"), Time: historyBase.Add(time.Duration(i) * time.Second), Count: float64(i % 10)})
	}
	vs = append(vs,
		store.CountValue{Target: event.ZoneTarget("cam", "gate"), Time: historyBase.Add(30 * time.Second), Count: 3},
		store.CountValue{Target: event.ZoneTarget("cam", "gate"), Time: historyBase.Add(30*time.Second + 500*time.Millisecond), Count: 5})
	if err := db.AddCounts(context.Background(), vs); err != nil {
		t.Fatal(err)
	}
	data := make([]float32, 12)
	for i := range data {
		data[i] = float32(2 * i)
	}
	if err := db.AddHeatmapBucket(context.Background(), store.HeatmapBucket{Camera: "cam", Start: historyBase, Cols: 4, Rows: 3, Frames: 2, Data: data}); err != nil {
		t.Fatal(err)
	}
}

// period is the from and to query parameters of [base+a, base+b).
func period(a, b time.Duration) string {
	return "from=" + url.QueryEscape(historyBase.Add(a).Format(time.RFC3339)) + "&to=" + url.QueryEscape(historyBase.Add(b).Format(time.RFC3339))
}

func TestHistoryAPIEveryRouteEveryRole(t *testing.T) {
	site := newHistorySite(t, historySnaps{w: 64, h: 48})
	seedHistory(t, site.db)
	hour := period(0, time.Hour)
	planners := []string{"ada", "otto", "pia"}
	routes := []struct {
		path    string
		allowed []string
	}{
		{"/api/v1/counts?target=area:gate&" + hour, planners},
		{"/api/v1/counts?format=csv&" + hour, planners},
		{"/api/v1/heatmaps/cam?" + hour, planners},
		{"/api/v1/heatmaps/cam?format=json&" + hour, planners},
		{"/api/v1/heatmaps/cam?download=1&" + hour, planners},
		{"/api/v1/audit?format=csv", []string{"ada"}},
	}
	for _, rt := range routes {
		if resp, _ := historyGet(t, site, "", rt.path); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET %s without login: %d, want 401", rt.path, resp.StatusCode)
		}
		for user := range site.tokens {
			resp, body := historyGet(t, site, user, rt.path)
			allowed := false
			for _, a := range rt.allowed {
				allowed = allowed || a == user
			}
			switch {
			case allowed && resp.StatusCode != http.StatusOK:
				t.Errorf("GET %s as %s: %d %s, want 200", rt.path, user, resp.StatusCode, body)
			case !allowed && resp.StatusCode != http.StatusForbidden:
				t.Errorf("GET %s as %s: %d, want 403", rt.path, user, resp.StatusCode)
			}
		}
	}
}

// countsJSON is the JSON answer of GET /api/v1/counts.
type countsJSON struct {
	Step   string `json:"step"`
	From   time.Time
	To     time.Time
	Series []struct {
		Target string       `json:"target"`
		Title  string       `json:"title"`
		Points []countPoint `json:"points"`
	} `json:"series"`
}

func TestCountsSeriesAndStep(t *testing.T) {
	site := newHistorySite(t, nil)
	seedHistory(t, site.db)
	both := "target=area:gate&target=zone:cam/gate&"
	get := func(query string) countsJSON {
		t.Helper()
		var out countsJSON
		if code := site.call(t, "pia", "GET", "/api/v1/counts?"+query, "", &out); code != http.StatusOK {
			t.Fatalf("counts?%s: %d", query, code)
		}
		return out
	}

	// An hour: one-second points, the last count of each second.
	sec := get(both + period(0, time.Hour))
	if sec.Step != "1s" || len(sec.Series) != 2 {
		t.Fatalf("an hour at step auto: step %q, %d series; want 1s and 2", sec.Step, len(sec.Series))
	}
	gate, zone := sec.Series[0], sec.Series[1]
	if gate.Target != "area:gate" || gate.Title != "gate" || zone.Target != "zone:cam/gate" || zone.Title != "cam / gate" {
		t.Fatalf("series named %q (%q) and %q (%q)", gate.Target, gate.Title, zone.Target, zone.Title)
	}
	if len(gate.Points) != 120 || !gate.Points[13].Time.Equal(historyBase.Add(13*time.Second)) || gate.Points[13].Count != 3 || gate.Points[13].Samples != 1 {
		t.Fatalf("gate area: %d points, the 14th %+v; want 120, 3 people at 08:00:13", len(gate.Points), gate.Points[13])
	}
	if want := (countPoint{Time: historyBase.Add(30 * time.Second), Count: 5, Min: 3, Max: 5, Samples: 2}); len(zone.Points) != 1 || zone.Points[0] != want {
		t.Fatalf("gate zone: %+v, want [%+v]", zone.Points, want)
	}

	// Two hours: one-minute rollups, the mean with min and max.
	mins := get(both + period(0, 2*time.Hour))
	if mins.Step != "1m" {
		t.Fatalf("two hours at step auto: step %q, want 1m", mins.Step)
	}
	if want := (countPoint{Time: historyBase, Count: 4.5, Min: 0, Max: 9, Samples: 60}); len(mins.Series[0].Points) != 2 || mins.Series[0].Points[0] != want {
		t.Fatalf("gate area by minute: %+v, want 2 points starting %+v", mins.Series[0].Points, want)
	}
	if want := (countPoint{Time: historyBase, Count: 4, Min: 3, Max: 5, Samples: 2}); len(mins.Series[1].Points) != 1 || mins.Series[1].Points[0] != want {
		t.Fatalf("gate zone by minute: %+v, want [%+v]", mins.Series[1].Points, want)
	}

	// An explicit step wins; an empty series is [] with its title.
	if got := get("target=area:gate&step=1m&" + period(0, time.Hour)); got.Step != "1m" || len(got.Series[0].Points) != 2 {
		t.Fatalf("step=1m over an hour: %q with %d points", got.Step, len(got.Series[0].Points))
	}
	var raw map[string]any
	site.call(t, "pia", "GET", "/api/v1/counts?target=area:yard&"+period(0, time.Hour), "", &raw)
	if s := raw["series"].([]any)[0].(map[string]any); s["title"] != "yard" || s["points"] == nil || len(s["points"].([]any)) != 0 {
		t.Fatalf("an area without counts: %+v, want title yard and points []", s)
	}

	// Without targets: every area, in the config's order.
	all := get(period(0, time.Hour))
	if len(all.Series) != 2 || all.Series[0].Target != "area:gate" || all.Series[1].Target != "area:yard" {
		t.Fatalf("no target: %+v, want the areas gate and yard", all.Series)
	}

	// Once the seconds are gone, auto falls back to the rollups.
	if _, err := site.db.DeleteCountsBefore(context.Background(), historyBase.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got := get("target=area:gate&" + period(0, time.Hour)); got.Step != "1m" || len(got.Series[0].Points) != 2 {
		t.Fatalf("an hour whose seconds were deleted: step %q, %d points; want 1m and 2", got.Step, len(got.Series[0].Points))
	}
	if got := get("target=area:gate&step=1s&" + period(0, time.Hour)); got.Step != "1s" || len(got.Series[0].Points) != 0 {
		t.Fatalf("step=1s after the seconds were deleted: step %q, %d points; want 1s and none", got.Step, len(got.Series[0].Points))
	}
}

func TestCountsDefaultToTheLastHour(t *testing.T) {
	site := newHistorySite(t, nil)
	at := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
	old := time.Now().Add(-2 * time.Hour)
	if err := site.db.AddCounts(context.Background(), []store.CountValue{
		{Target: event.AreaTarget("yard"), Time: at, Count: 7},
		{Target: event.AreaTarget("yard"), Time: old, Count: 9},
	}); err != nil {
		t.Fatal(err)
	}
	var out countsJSON
	if code := site.call(t, "otto", "GET", "/api/v1/counts?target=area:yard", "", &out); code != http.StatusOK {
		t.Fatalf("counts without a period: %d", code)
	}
	if out.Step != "1s" || out.To.Sub(out.From) != time.Hour || time.Since(out.To) > time.Minute {
		t.Fatalf("default period %s to %s at %q, want the last hour at 1s", out.From, out.To, out.Step)
	}
	if p := out.Series[0].Points; len(p) != 1 || p[0].Count != 7 || !p[0].Time.Equal(at) {
		t.Fatalf("the last hour: %+v, want only 7 people at %s", p, at)
	}
}

// wantHistoryError checks an answer's status and that its JSON error
// names every word.
func wantHistoryError(t *testing.T, s *apiSite, path string, code int, words ...string) {
	t.Helper()
	var out struct {
		Error string `json:"error"`
	}
	if got := s.call(t, "pia", "GET", path, "", &out); got != code {
		t.Errorf("GET %s: %d (%q), want %d", path, got, out.Error, code)
		return
	}
	for _, w := range words {
		if !strings.Contains(out.Error, w) {
			t.Errorf("GET %s: error %q does not say %q", path, out.Error, w)
		}
	}
}

func TestCountsRefusesBadQueries(t *testing.T) {
	site := newHistorySite(t, nil)
	hour := period(0, time.Hour)
	wantHistoryError(t, site, "/api/v1/counts?target=area:gate&target=area:nope&"+hour, 400, `"area:nope"`, "unknown target")
	wantHistoryError(t, site, "/api/v1/counts?target=gate&"+hour, 400, `"gate"`, "area:<area>")
	wantHistoryError(t, site, "/api/v1/counts?from=yesterday", 400, "from", "RFC 3339", `"yesterday"`)
	wantHistoryError(t, site, "/api/v1/counts?to=2026-13-01T00:00:00Z", 400, "to", "RFC 3339")
	wantHistoryError(t, site, "/api/v1/counts?"+period(time.Hour, 0), 400, "to (2026-03-02T08:00:00Z) must come after from (2026-03-02T09:00:00Z)")
	wantHistoryError(t, site, "/api/v1/counts?step=5s", 400, "step", `"5s"`, "auto, 1s or 1m")
	wantHistoryError(t, site, "/api/v1/counts?format=xml", 400, "format", `"xml"`)
	// A day of seconds for two areas is too much; the answer says what
	// to do instead.
	wantHistoryError(t, site, "/api/v1/counts?step=1s&"+period(0, 24*time.Hour), 400,
		"too much", "step 1s", "172800 points over 2 targets", "at most 100000", "step=1m")
	// Two years of minutes too, even at step auto.
	wantHistoryError(t, site, "/api/v1/counts?target=area:gate&"+period(0, 2*365*24*time.Hour), 400, "too much", "step 1m")
	// Up to 100000 points pass: a day of seconds for one target.
	if code := site.call(t, "pia", "GET", "/api/v1/counts?target=area:gate&step=1s&"+period(0, 24*time.Hour), "", nil); code != 200 {
		t.Errorf("a day of seconds for one target: %d, want 200", code)
	}
}

func TestCountsCSVExportIsAudited(t *testing.T) {
	site := newHistorySite(t, nil)
	seedHistory(t, site.db)
	resp, body := historyGet(t, site, "pia", "/api/v1/counts?format=csv&target=area:gate&target=zone:cam/gate&step=1m&"+period(0, time.Hour))
	if resp.StatusCode != 200 {
		t.Fatalf("CSV export: %d %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/csv") {
		t.Fatalf("Content-Type %q, want text/csv", ct)
	}
	disp, params, err := mime.ParseMediaType(resp.Header.Get("Content-Disposition"))
	if err != nil || disp != "attachment" || params["filename"] != "flowwatch-counts-20260302T080000Z-20260302T090000Z.csv" {
		t.Fatalf("Content-Disposition %q", resp.Header.Get("Content-Disposition"))
	}
	rows, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		{"time", "target", "count", "min", "max", "samples"},
		{"2026-03-02T08:00:00Z", "area:gate", "4.5", "0", "9", "60"},
		{"2026-03-02T08:01:00Z", "area:gate", "4.5", "0", "9", "60"},
		{"2026-03-02T08:00:00Z", "zone:cam/gate", "4", "3", "5", "2"},
	}
	if fmt.Sprint(rows) != fmt.Sprint(want) {
		t.Fatalf("CSV rows:\n%v\nwant\n%v", rows, want)
	}
	entries, err := site.db.AuditEntries(context.Background(), store.AuditFilter{Action: "export.counts"})
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Actor != "pia" || entries[0].Role != RolePlanner || entries[0].Target != "area:gate,zone:cam/gate" ||
		!strings.Contains(entries[0].Detail, "3 rows") || !strings.Contains(entries[0].Detail, "2026-03-02T08:00:00Z") {
		t.Fatalf("audit entries of the export: %+v", entries)
	}
	// JSON reads are not exports.
	site.call(t, "pia", "GET", "/api/v1/counts?"+period(0, time.Hour), "", nil)
	if entries, _ = site.db.AuditEntries(context.Background(), store.AuditFilter{Action: "export.counts"}); len(entries) != 1 {
		t.Fatalf("%d export entries after a JSON read, want still 1", len(entries))
	}
}

func TestHeatmapPNGOverSnapshotOrGrey(t *testing.T) {
	hour := period(0, time.Hour)
	for _, tc := range []struct {
		name  string
		snaps Snapshots
		w, h  int
		grey  uint8 // the background where the heat is 0 (the top left cell)
	}{
		{"snapshot", historySnaps{w: 320, h: 240}, 320, 240, 128},
		{"snapshot fails", historySnaps{fail: true}, 640, 480, 40}, // 640 wide, the 4x3 grid's aspect
		{"no snapshots", nil, 640, 480, 40},
	} {
		t.Run(tc.name, func(t *testing.T) {
			site := newHistorySite(t, tc.snaps)
			seedHistory(t, site.db)
			resp, body := historyGet(t, site, "pia", "/api/v1/heatmaps/cam?"+hour)
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/png" {
				t.Fatalf("heatmap: %d %q %.200s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
			}
			if d := resp.Header.Get("Content-Disposition"); d != "" {
				t.Fatalf("an inline heatmap is an attachment: %q", d)
			}
			img, err := png.Decode(bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			if b := img.Bounds(); b.Dx() != tc.w || b.Dy() != tc.h {
				t.Fatalf("picture %dx%d, want %dx%d", b.Dx(), b.Dy(), tc.w, tc.h)
			}
			if r, g, b, _ := img.At(0, 0).RGBA(); r>>8 != uint32(tc.grey) || g>>8 != uint32(tc.grey) || b>>8 != uint32(tc.grey) {
				t.Fatalf("top left pixel %d,%d,%d, want the background grey %d", r>>8, g>>8, b>>8, tc.grey)
			}
		})
	}
}

func TestHeatmapJSONDownloadAndErrors(t *testing.T) {
	site := newHistorySite(t, historySnaps{w: 64, h: 48})
	seedHistory(t, site.db)
	hour := period(0, time.Hour)
	var g vision.HeatmapGrid
	if code := site.call(t, "otto", "GET", "/api/v1/heatmaps/cam?format=json&"+hour, "", &g); code != 200 {
		t.Fatalf("heatmap JSON: %d", code)
	}
	if g.Camera != "cam" || g.Cols != 4 || g.Rows != 3 || g.Frames != 2 || len(g.Data) != 12 || g.Data[5] != 5 || g.Max != 11 ||
		!g.From.Equal(historyBase) || !g.To.Equal(historyBase.Add(time.Hour)) {
		t.Fatalf("heatmap grid %+v", g)
	}
	entries, _ := site.db.AuditEntries(context.Background(), store.AuditFilter{Action: "export.heatmap"})
	if len(entries) != 0 {
		t.Fatalf("viewing a heatmap was audited as an export: %+v", entries)
	}

	for _, format := range []string{"png", "json"} {
		resp, body := historyGet(t, site, "pia", "/api/v1/heatmaps/cam?download=1&format="+format+"&"+hour)
		if resp.StatusCode != 200 {
			t.Fatalf("download %s: %d %s", format, resp.StatusCode, body)
		}
		disp, params, err := mime.ParseMediaType(resp.Header.Get("Content-Disposition"))
		if want := "flowwatch-heatmap-cam-20260302T080000Z-20260302T090000Z." + format; err != nil || disp != "attachment" || params["filename"] != want {
			t.Fatalf("download %s: Content-Disposition %q, want an attachment named %s", format, resp.Header.Get("Content-Disposition"), want)
		}
	}
	entries, _ = site.db.AuditEntries(context.Background(), store.AuditFilter{Action: "export.heatmap"})
	if len(entries) != 2 || entries[0].Actor != "pia" || entries[0].Target != "camera cam" || !strings.HasPrefix(entries[0].Detail, "json, 2026-03-02T08:00:00Z to 2026-03-02T09:00:00Z, 2 frames") {
		t.Fatalf("audit entries of the downloads: %+v", entries)
	}

	wantHistoryError(t, site, "/api/v1/heatmaps/nope?"+hour, 404, `unknown camera "nope"`)
	wantHistoryError(t, site, "/api/v1/heatmaps/cam?"+period(time.Hour, 2*time.Hour), 404,
		"no heatmap data for camera cam between 2026-03-02T09:00:00Z and 2026-03-02T10:00:00Z")
	wantHistoryError(t, site, "/api/v1/heatmaps/cam?format=json&"+period(time.Hour, 2*time.Hour), 404, "no heatmap data for camera cam")
	wantHistoryError(t, site, "/api/v1/heatmaps/cam?from=noon", 400, "from", `"noon"`)
	wantHistoryError(t, site, "/api/v1/heatmaps/cam?"+period(0, 40*24*time.Hour), 400, "longer than 31 days")
	wantHistoryError(t, site, "/api/v1/heatmaps/cam?format=gif&"+hour, 400, "format", `"gif"`)
	wantHistoryError(t, site, "/api/v1/heatmaps/cam?download=maybe&"+hour, 400, "download", `"maybe"`)
}

func TestAuditCSVExport(t *testing.T) {
	site := newHistorySite(t, nil)
	// A user name that a spreadsheet would run as a formula.
	if _, err := site.db.AppendAudit(context.Background(), store.AuditEntry{At: time.Now(), Actor: "=HYPERLINK(\"http://x\")",
		Action: "login.failed", Detail: "wrong password", Remote: "192.0.2.1"}); err != nil {
		t.Fatal(err)
	}
	resp, body := historyGet(t, site, "ada", "/api/v1/audit?format=csv&limit=3")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") {
		t.Fatalf("audit CSV: %d %q %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if disp, params, err := mime.ParseMediaType(resp.Header.Get("Content-Disposition")); err != nil || disp != "attachment" ||
		!strings.HasPrefix(params["filename"], "flowwatch-audit-") || !strings.HasSuffix(params["filename"], ".csv") {
		t.Fatalf("Content-Disposition %q", resp.Header.Get("Content-Disposition"))
	}
	rows, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 4 || strings.Join(rows[0], ",") != "id,at,actor,role,action,target,detail,remote,prev_hash,hash" {
		t.Fatalf("audit CSV with limit 3: %v", rows)
	}
	newest := rows[1]
	if newest[2] != `'=HYPERLINK("http://x")` || newest[4] != "login.failed" || newest[7] != "192.0.2.1" || len(newest[9]) != 64 {
		t.Fatalf("newest row %q: want the formula quoted as text and the hash as stored", newest)
	}
	entries, err := site.db.AuditEntries(context.Background(), store.AuditFilter{Action: "export.audit"})
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Actor != "ada" || !strings.Contains(entries[0].Detail, "3 entries") {
		t.Fatalf("audit entries of the export: %+v", entries)
	}
	wantAudit := func(path string, code int, word string) {
		t.Helper()
		var out struct {
			Error string `json:"error"`
		}
		if got := site.call(t, "ada", "GET", path, "", &out); got != code || !strings.Contains(out.Error, word) {
			t.Errorf("GET %s: %d %q, want %d naming %q", path, got, out.Error, code, word)
		}
	}
	wantAudit("/api/v1/audit?format=xml", 400, `"xml"`)
	wantAudit("/api/v1/audit?format=csv&from=monday", 400, "from")
	// The JSON answer is as before.
	var list struct {
		Entries []store.AuditEntry `json:"entries"`
	}
	if code := site.call(t, "ada", "GET", "/api/v1/audit?action=export.audit", "", &list); code != 200 || len(list.Entries) != 1 {
		t.Fatalf("audit JSON: %d, %d entries", code, len(list.Entries))
	}
}
