package console

import (
	"context"
	"encoding/csv"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"flowwatch/ingest"
	"flowwatch/internal/config"
	"flowwatch/internal/event"
	"flowwatch/internal/store"
	"flowwatch/vision"
)

// Bounds of the history endpoints.
const (
	// defaultHistorySpan is the period read when from and to are left out:
	// the last hour.
	defaultHistorySpan = time.Hour
	// autoSecondsUpTo is the longest period step=auto answers with
	// one-second points; longer ones get one-minute rollups.
	autoSecondsUpTo = time.Hour
	// maxCountPoints bounds the points one counts request may cover: the
	// period divided by the step, times the targets.
	maxCountPoints = 100_000
	// maxCountTargets bounds the targets of one counts request.
	maxCountTargets = 50
	// maxHeatmapSpan bounds the period of one heatmap.
	maxHeatmapSpan = 31 * 24 * time.Hour
)

// historyAPI serves planners' history: GET /api/v1/counts (JSON or CSV)
// and GET /api/v1/heatmaps/{camera} (PNG or JSON).
type historyAPI struct {
	auth *Auth
	db   *store.Store
	site *config.Config
	// snaps gives heatmaps their background picture: in a server, each
	// camera's latest stored snapshot (storedBackgrounds), never the live
	// picture. It may be nil: heatmaps are then drawn over grey.
	snaps Snapshots
}

// contextSnapshots is a Snapshots that also reads with a context, as the
// store-backed storedBackgrounds does.
type contextSnapshots interface {
	SnapshotContext(ctx context.Context, camera string) (*ingest.Frame, error)
}

// historyReaders are the roles that read history and export it.
var historyReaders = []string{RoleAdmin, RoleOperator, RolePlanner}

// newHistoryAPI makes the history endpoints over db for the cameras, zones
// and areas of site; snaps (which may be nil) gives heatmaps their
// background picture. Wire it with newHistoryAPI(cfg.Auth, cfg.Store,
// cfg.Site, storedBackgrounds{cfg.Store}).register(mux, cfg.Auth).
func newHistoryAPI(auth *Auth, db *store.Store, site *config.Config, snaps Snapshots) *historyAPI {
	return &historyAPI{auth: auth, db: db, site: site, snaps: snaps}
}

// register adds the history routes to mux, guarded by auth: each needs
// the role admin, operator or planner.
func (h *historyAPI) register(mux *http.ServeMux, auth *Auth) {
	mux.Handle("GET /api/v1/counts", auth.Require(historyReaders, http.HandlerFunc(h.counts)))
	mux.Handle("GET /api/v1/heatmaps/{camera}", auth.Require(historyReaders, http.HandlerFunc(h.heatmap)))
}

// countPoint is one point of a counts series, as served.
type countPoint struct {
	Time    time.Time `json:"time"`
	Count   float64   `json:"count"`
	Min     float64   `json:"min"`
	Max     float64   `json:"max"`
	Samples int       `json:"samples"`
}

// countSeries is one target's points, oldest first.
type countSeries struct {
	Target event.Target `json:"target"`
	Title  string       `json:"title"`
	Points []countPoint `json:"points"`
}

// countsAnswer is the JSON answer of GET /api/v1/counts.
type countsAnswer struct {
	// Step is "1s" or "1m": the resolution of every series.
	Step string `json:"step"`
	// From and To are the period read, defaults filled in.
	From   time.Time     `json:"from"`
	To     time.Time     `json:"to"`
	Series []countSeries `json:"series"`
}

// stepName is the step's name in queries and answers.
func stepName(res time.Duration) string {
	if res == time.Second {
		return "1s"
	}
	return "1m"
}

// historyPeriod reads from and to, defaulting to the last hour (to: now;
// from: an hour before to), and checks that to comes after from and,
// when longest is positive, at most that long after.
func historyPeriod(q url.Values, longest time.Duration) (from, to time.Time, err error) {
	if from, to, _, err = rangeQuery(url.Values{"from": q["from"], "to": q["to"]}); err != nil {
		return from, to, err
	}
	if to.IsZero() {
		to = time.Now().UTC().Truncate(time.Second)
	}
	if from.IsZero() {
		from = to.Add(-defaultHistorySpan)
	}
	switch {
	case !to.After(from):
		return from, to, fmt.Errorf("to (%s) must come after from (%s)", to.Format(time.RFC3339), from.Format(time.RFC3339))
	case longest > 0 && to.Sub(from) > longest:
		return from, to, fmt.Errorf("the period %s to %s is longer than %s; ask for a shorter one",
			from.Format(time.RFC3339), to.Format(time.RFC3339), fmtSpan(longest))
	}
	return from.UTC(), to.UTC(), nil
}

// fmtSpan writes d in days when it is a whole number of them.
func fmtSpan(d time.Duration) string {
	if d >= 24*time.Hour && d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%d days", d/(24*time.Hour))
	}
	return d.String()
}

// countTitles returns the title of every target the site counts: each
// area ("area:<name>": its title or name) and each zone
// ("zone:<camera>/<zone>": "<camera title> / <zone>"), as the alerting
// engine titles them.
func countTitles(site *config.Config) map[event.Target]string {
	out := map[event.Target]string{}
	for _, cam := range site.Cameras {
		title := firstNonEmpty(cam.Title, cam.Name)
		for _, z := range cam.Zones {
			out[event.ZoneTarget(cam.Name, z.Name)] = title + " / " + z.Name
		}
	}
	for _, a := range site.Areas {
		out[event.AreaTarget(a.Name)] = firstNonEmpty(a.Title, a.Name)
	}
	return out
}

// firstNonEmpty returns the first of its arguments that is not empty.
func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// countsQuery is a parsed GET /api/v1/counts.
type countsQuery struct {
	targets  []event.Target
	from, to time.Time
	res      time.Duration
	auto     bool
	csv      bool
}

// parseCounts reads and checks the query of GET /api/v1/counts.
func (h *historyAPI) parseCounts(q url.Values) (countsQuery, error) {
	var cq countsQuery
	switch f := q.Get("format"); f {
	case "", "json":
	case "csv":
		cq.csv = true
	default:
		return cq, fmt.Errorf("format: want json or csv, got %q", f)
	}
	titles := countTitles(h.site)
	seen := map[event.Target]bool{}
	for _, v := range q["target"] {
		t := event.Target(strings.TrimSpace(v))
		if _, ok := titles[t]; !ok {
			return cq, fmt.Errorf("target: unknown target %q: want area:<area> or zone:<camera>/<zone> of the site's config", v)
		}
		if !seen[t] {
			seen[t] = true
			cq.targets = append(cq.targets, t)
		}
	}
	if len(cq.targets) == 0 {
		// Every area, in the config's order.
		for _, a := range h.site.Areas {
			cq.targets = append(cq.targets, event.AreaTarget(a.Name))
		}
	}
	if len(cq.targets) > maxCountTargets {
		return cq, fmt.Errorf("target: %d targets asked for; at most %d at once", len(cq.targets), maxCountTargets)
	}
	var err error
	if cq.from, cq.to, err = historyPeriod(q, 0); err != nil {
		return cq, err
	}
	points := func(res time.Duration) int64 {
		span := cq.to.Sub(cq.from) // saturates rather than overflows
		n := int64(span / res)
		if span%res != 0 {
			n++
		}
		return n * int64(len(cq.targets))
	}
	switch s := q.Get("step"); s {
	case "", "auto":
		cq.auto = true
		cq.res = time.Minute
		if cq.to.Sub(cq.from) <= autoSecondsUpTo && points(time.Second) <= maxCountPoints {
			cq.res = time.Second
		}
	case "1s":
		cq.res = time.Second
	case "1m":
		cq.res = time.Minute
	default:
		return cq, fmt.Errorf("step: want auto, 1s or 1m, got %q", s)
	}
	if n := points(cq.res); n > maxCountPoints {
		return cq, fmt.Errorf("too much at once: %s to %s at step %s is up to %d points over %d targets, at most %d are served; "+
			"shorten the period, ask for fewer targets or use step=1m",
			cq.from.Format(time.RFC3339), cq.to.Format(time.RFC3339), stepName(cq.res), n, len(cq.targets), maxCountPoints)
	}
	return cq, nil
}

// readSeries reads every target's points at cq's step.
func (h *historyAPI) readSeries(r *http.Request, cq countsQuery, titles map[event.Target]string) ([]countSeries, error) {
	out := make([]countSeries, 0, len(cq.targets))
	for _, t := range cq.targets {
		pts, err := h.db.Counts(r.Context(), t, cq.from, cq.to, cq.res)
		if err != nil {
			return nil, err
		}
		s := countSeries{Target: t, Title: titles[t], Points: make([]countPoint, 0, len(pts))}
		for _, p := range pts {
			s.Points = append(s.Points, countPoint{Time: p.Time.UTC(), Count: p.Count, Min: p.Min, Max: p.Max, Samples: p.Samples})
		}
		out = append(out, s)
	}
	return out, nil
}

// counts serves GET /api/v1/counts: the stored counts of targets (every
// area by default) over a period (the last hour by default), at one-second
// points or one-minute rollups, as JSON or, with format=csv, as an audited
// CSV attachment. step=auto (the default) gives seconds for periods up to
// an hour, minutes beyond, and minutes too when no second but some minute
// is stored (the one-second history is kept for less long than the
// rollups).
func (h *historyAPI) counts(w http.ResponseWriter, r *http.Request) {
	cq, err := h.parseCounts(r.URL.Query())
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	titles := countTitles(h.site)
	series, err := h.readSeries(r, cq, titles)
	if err == nil && cq.auto && cq.res == time.Second && noPoints(series) {
		// The seconds may be past their retention: try the rollups.
		byMinute := cq
		byMinute.res = time.Minute
		var rollups []countSeries
		if rollups, err = h.readSeries(r, byMinute, titles); err == nil && !noPoints(rollups) {
			cq, series = byMinute, rollups
		}
	}
	if err != nil {
		h.auth.log.Error("counts unreadable", "err", err)
		writeError(w, http.StatusInternalServerError, "counts from %s to %s unreadable", cq.from.Format(time.RFC3339), cq.to.Format(time.RFC3339))
		return
	}
	if !cq.csv {
		writeJSON(w, http.StatusOK, countsAnswer{Step: stepName(cq.res), From: cq.from, To: cq.to, Series: series})
		return
	}
	rows := 0
	for _, s := range series {
		rows += len(s.Points)
	}
	names := make([]string, len(cq.targets))
	for i, t := range cq.targets {
		names[i] = string(t)
	}
	h.auth.Audit(r, principal(r), "export.counts", strings.Join(names, ","),
		fmt.Sprintf("csv, %s to %s, step %s, %d rows", cq.from.Format(time.RFC3339), cq.to.Format(time.RFC3339), stepName(cq.res), rows))
	cw := csvAttachment(w, fmt.Sprintf("flowwatch-counts-%s-%s.csv", fileTime(cq.from), fileTime(cq.to)))
	_ = cw.Write([]string{"time", "target", "count", "min", "max", "samples"})
	num := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	for _, s := range series {
		for _, p := range s.Points {
			_ = cw.Write([]string{p.Time.UTC().Format(time.RFC3339), string(s.Target), num(p.Count), num(p.Min), num(p.Max), strconv.Itoa(p.Samples)})
		}
	}
	cw.Flush()
}

// noPoints tells whether no series has a point.
func noPoints(series []countSeries) bool {
	for _, s := range series {
		if len(s.Points) > 0 {
			return false
		}
	}
	return true
}

// fileTime writes t for file names: 20060102T150405Z.
func fileTime(t time.Time) string { return t.UTC().Format("20060102T150405Z") }

// downloadAs marks the answer as a download named filename.
func downloadAs(w http.ResponseWriter, filename string) {
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": filename}))
}

// csvAttachment answers 200 with a CSV attachment named filename and returns
// the writer of its rows; the caller flushes it.
func csvAttachment(w http.ResponseWriter, filename string) *csv.Writer {
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	downloadAs(w, filename)
	w.WriteHeader(http.StatusOK)
	return csv.NewWriter(w)
}

// csvText guards a free-text CSV cell against spreadsheet formula
// injection: a cell starting with = + - @ or a tab or carriage return gets
// a leading apostrophe (OWASP's advice), so that a spreadsheet shows it as
// text rather than running it.
func csvText(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// heatmap serves GET /api/v1/heatmaps/{camera}: the camera's stored
// heatmap over a period (the last hour by default, at most 31 days) as a
// PNG drawn over the camera's latest stored snapshot (or over grey when
// there is none), or with format=json as the vision.HeatmapGrid. download=1 makes it
// an attachment and audits the export.
func (h *historyAPI) heatmap(w http.ResponseWriter, r *http.Request) {
	camera := r.PathValue("camera")
	if !h.knownCamera(camera) {
		writeError(w, http.StatusNotFound, "unknown camera %q", camera)
		return
	}
	q := r.URL.Query()
	format := q.Get("format")
	switch format {
	case "", "png":
		format = "png"
	case "json":
	default:
		writeError(w, http.StatusBadRequest, "format: want png or json, got %q", format)
		return
	}
	download := false
	if v := q.Get("download"); v != "" {
		var err error
		if download, err = strconv.ParseBool(v); err != nil {
			writeError(w, http.StatusBadRequest, "download: want 1 or 0, got %q", v)
			return
		}
	}
	from, to, err := historyPeriod(q, maxHeatmapSpan)
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	g, err := vision.HeatmapRange(r.Context(), h.db, camera, from, to)
	if err != nil {
		h.auth.log.Error("heatmap unreadable", "camera", camera, "err", err)
		writeError(w, http.StatusInternalServerError, "heatmap of camera %q from %s to %s unreadable", camera,
			from.Format(time.RFC3339), to.Format(time.RFC3339))
		return
	}
	if g.Frames <= 0 || g.Cols <= 0 {
		writeError(w, http.StatusNotFound, "no heatmap data for camera %s between %s and %s", camera,
			from.Format(time.RFC3339), to.Format(time.RFC3339))
		return
	}
	filename := fmt.Sprintf("flowwatch-heatmap-%s-%s-%s.%s", camera, fileTime(from), fileTime(to), format)
	audit := func() {
		h.auth.Audit(r, principal(r), "export.heatmap", "camera "+camera,
			fmt.Sprintf("%s, %s to %s, %d frames", format, from.Format(time.RFC3339), to.Format(time.RFC3339), g.Frames))
	}
	if format == "json" {
		if download {
			audit()
			downloadAs(w, filename)
		}
		writeJSON(w, http.StatusOK, g)
		return
	}
	png, err := h.renderHeatmap(r.Context(), g)
	if err != nil {
		h.auth.log.Error("heatmap picture failed", "camera", camera, "err", err)
		writeError(w, http.StatusInternalServerError, "heatmap picture of camera %q could not be drawn", camera)
		return
	}
	if download {
		audit()
		downloadAs(w, filename)
	}
	w.Header().Set("Content-Type", "image/png")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Length", strconv.Itoa(len(png)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(png)
}

// renderHeatmap draws g over the camera's background picture when there
// is one, and over grey when there is none or it cannot be drawn on.
func (h *historyAPI) renderHeatmap(ctx context.Context, g vision.HeatmapGrid) ([]byte, error) {
	if h.snaps != nil {
		var frame *ingest.Frame
		var err error
		if cs, ok := h.snaps.(contextSnapshots); ok {
			frame, err = cs.SnapshotContext(ctx, g.Camera)
		} else {
			frame, err = h.snaps.Snapshot(g.Camera)
		}
		if err == nil && frame != nil {
			png, err := vision.RenderHeatmapPNG(g, frame, vision.HeatmapRenderOptions{})
			if err == nil {
				return png, nil
			}
			h.auth.log.Warn("heatmap drawn without the snapshot", "camera", g.Camera, "err", err)
		} else if err != nil {
			h.auth.log.Debug("heatmap drawn without a snapshot", "camera", g.Camera, "err", err)
		}
	}
	return vision.RenderHeatmapPNG(g, nil, vision.HeatmapRenderOptions{})
}

// knownCamera tells whether the site's config has the camera.
func (h *historyAPI) knownCamera(name string) bool {
	for _, c := range h.site.Cameras {
		if c.Name == name {
			return true
		}
	}
	return false
}
