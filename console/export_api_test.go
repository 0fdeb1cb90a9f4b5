package console

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"strings"
	"testing"
	"time"

	"flowwatch/internal/event"
	"flowwatch/internal/store"
)

// seedExportAlert raises an alert on target at at and acknowledges it a
// minute later, and returns its id.
func seedExportAlert(t *testing.T, db *store.Store, target event.Target, at time.Time) int64 {
	t.Helper()
	ctx := context.Background()
	a := event.Alert{Key: "capacity|" + string(target), Rule: event.RuleCapacity, Target: target, Level: event.LevelYellow,
		State: event.AlertOpen, OpenedAt: at, UpdatedAt: at}
	saved, err := db.SaveAlertChange(ctx, event.AlertChange{Kind: event.AlertRaised, At: at, By: "system", Alert: a}, nil)
	if err != nil {
		t.Fatal(err)
	}
	saved.State, saved.UpdatedAt, saved.AckedAt, saved.AckedBy = event.AlertAcknowledged, at.Add(time.Minute), at.Add(time.Minute), "otto"
	if _, err := db.SaveAlertChange(ctx, event.AlertChange{Kind: event.AlertAcked, At: at.Add(time.Minute), By: "otto", Alert: saved}, nil); err != nil {
		t.Fatal(err)
	}
	return saved.ID
}

// seedExport stores, for every class, rows inside [historyBase,
// historyBase+1h) and rows just outside it, and returns the ids of the
// inside alert, audit entry and snapshot.
func seedExport(t *testing.T, db *store.Store) (alertID, auditID, snapID int64) {
	t.Helper()
	ctx := context.Background()
	seedHistory(t, db) // inside: 121 seconds, 3 minutes, one heatmap bucket
	out := []time.Time{historyBase.Add(-time.Second), historyBase.Add(time.Hour)}
	for _, at := range out {
		if err := db.AddCounts(ctx, []store.CountValue{{Target: event.AreaTarget("gate"), Time: at, Count: 99}}); err != nil {
			t.Fatal(err)
		}
		if err := db.AddHeatmapBucket(ctx, store.HeatmapBucket{Camera: "cam", Start: at.Truncate(time.Minute), Cols: 4, Rows: 3, Frames: 1,
			Data: make([]float32, 12)}); err != nil {
			t.Fatal(err)
		}
	}
	alertID = seedExportAlert(t, db, event.AreaTarget("gate"), historyBase.Add(10*time.Minute))
	seedExportAlert(t, db, event.AreaTarget("yard"), historyBase.Add(-time.Hour))
	for _, at := range []time.Time{historyBase.Add(-time.Minute), historyBase.Add(5 * time.Minute), historyBase.Add(time.Hour)} {
		e, err := db.AppendAudit(ctx, store.AuditEntry{At: at, Actor: "otto", Role: RoleOperator, Action: "alert.ack", Detail: "=cmd()"})
		if err != nil {
			t.Fatal(err)
		}
		if at.Equal(historyBase.Add(5 * time.Minute)) {
			auditID = e.ID
		}
	}
	for _, at := range []time.Time{historyBase.Add(-24 * time.Hour), historyBase.Add(20 * time.Minute), historyBase.Add(2 * time.Hour)} {
		if _, err := db.SaveZoneLayout(ctx, store.ZoneLayout{Camera: "cam", UpdatedAt: at, UpdatedBy: "ada",
			Zones: []store.LayoutZone{{Name: "gate", Polygon: [][2]float64{{0, 0}, {1, 0}, {1, 1}}}}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, at := range []time.Time{historyBase.Add(-time.Minute), historyBase.Add(30 * time.Minute)} {
		sn, err := db.SaveSnapshot(ctx, store.Snapshot{Camera: "cam", At: at, By: "ada", Blurred: true, Width: 2, Height: 2},
			[]byte(fmt.Sprintf("jpeg of %s", at.Format(time.RFC3339))))
		if err != nil {
			t.Fatal(err)
		}
		snapID = sn.ID
	}
	return alertID, auditID, snapID
}

// readExport opens an export archive and returns its manifest and files.
func readExport(t *testing.T, data []byte) (ExportManifest, map[string][]byte) {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatalf("not a zip: %v", err)
	}
	files := map[string][]byte{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
		files[f.Name] = b
	}
	var m ExportManifest
	if err := json.Unmarshal(files["manifest.json"], &m); err != nil {
		t.Fatalf("manifest: %v\n%s", err, files["manifest.json"])
	}
	return m, files
}

// csvRows parses a CSV file and returns its rows without the header.
func csvRows(t *testing.T, name string, data []byte) [][]string {
	t.Helper()
	rows, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
	if err != nil || len(rows) == 0 {
		t.Fatalf("%s: %v %q", name, err, data)
	}
	return rows[1:]
}

func TestExportAPIEverythingHeldAboutThePeriod(t *testing.T) {
	site, _, _ := newCameraSite(t)
	alertID, auditID, snapID := seedExport(t, site.db)
	resp, body := historyGet(t, site, "ada", "/api/v1/export?"+period(0, time.Hour))
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/zip" {
		t.Fatalf("export: %d %q %.300s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if _, params, _ := mime.ParseMediaType(resp.Header.Get("Content-Disposition")); params["filename"] != "flowwatch-export-20260302T080000Z-20260302T090000Z.zip" {
		t.Fatalf("Content-Disposition %q", resp.Header.Get("Content-Disposition"))
	}
	m, files := readExport(t, body)
	if m.Format != ExportFormat || !m.From.Equal(historyBase) || !m.To.Equal(historyBase.Add(time.Hour)) || m.MadeBy != "ada" ||
		time.Since(m.MadeAt) > time.Minute {
		t.Fatalf("manifest: %+v", m)
	}
	snapFile := fmt.Sprintf("snapshots/%d-cam.jpg", snapID)
	want := map[string]int64{"counts_1s.csv": 121, "counts_1m.csv": 3, "alerts.json": 1, "heatmaps.json": 1, "audit.csv": 1,
		"zones.json": 2, snapFile: 1, "snapshots.csv": 1}
	if len(m.Files) != len(want) || len(files) != len(want)+1 {
		t.Fatalf("files: manifest %+v, archive %d files", m.Files, len(files))
	}
	for _, f := range m.Files {
		if rows, ok := want[f.Name]; !ok || f.Rows != rows || f.Bytes != int64(len(files[f.Name])) || f.Content == "" {
			t.Errorf("manifest lists %+v, want %d rows and %d bytes", f, want[f.Name], len(files[f.Name]))
		}
	}

	// nothing outside the period: times in [from, to)
	inPeriod := func(what, v string) {
		at, err := time.Parse(time.RFC3339, v)
		if err != nil || at.Before(historyBase) || !at.Before(historyBase.Add(time.Hour)) {
			t.Errorf("%s: time %q outside the period", what, v)
		}
	}
	for _, name := range []string{"counts_1s.csv", "counts_1m.csv", "audit.csv", "snapshots.csv"} {
		col := 0
		if name == "audit.csv" || name == "snapshots.csv" {
			col = map[string]int{"audit.csv": 1, "snapshots.csv": 2}[name]
		}
		for _, row := range csvRows(t, name, files[name]) {
			inPeriod(name, row[col])
		}
	}
	audit := csvRows(t, "audit.csv", files["audit.csv"])
	if audit[0][0] != fmt.Sprint(auditID) || audit[0][6] != "'=cmd()" {
		t.Errorf("audit row %q: want entry %d with its detail guarded against formulas", audit[0], auditID)
	}
	if snap := csvRows(t, "snapshots.csv", files["snapshots.csv"]); snap[0][7] != snapFile ||
		string(files[snapFile]) != "jpeg of "+historyBase.Add(30*time.Minute).Format(time.RFC3339) {
		t.Errorf("snapshot row %q, picture %q", snap[0], files[snapFile])
	}
	var alerts []struct {
		Alert   event.Alert
		Changes []event.AlertChange
	}
	if err := json.Unmarshal(files["alerts.json"], &alerts); err != nil || len(alerts) != 1 || alerts[0].Alert.ID != alertID ||
		len(alerts[0].Changes) != 2 || alerts[0].Changes[1].Kind != event.AlertAcked {
		t.Errorf("alerts.json: %v %s", err, files["alerts.json"])
	}
	var buckets []struct {
		Camera string
		Start  time.Time
		Frames int64
		Data   []float32
	}
	if err := json.Unmarshal(files["heatmaps.json"], &buckets); err != nil || len(buckets) != 1 || !buckets[0].Start.Equal(historyBase) ||
		buckets[0].Frames != 2 || len(buckets[0].Data) != 12 {
		t.Errorf("heatmaps.json: %v %s", err, files["heatmaps.json"])
	}
	var zones []struct {
		Source    string
		UpdatedAt time.Time `json:"updated_at"`
	}
	if err := json.Unmarshal(files["zones.json"], &zones); err != nil || len(zones) != 2 || zones[0].Source != "stored" ||
		!zones[0].UpdatedAt.Equal(historyBase.Add(-24*time.Hour)) || !zones[1].UpdatedAt.Equal(historyBase.Add(20*time.Minute)) {
		t.Errorf("zones.json, want the layout in force at the start and the one saved in the period: %v %s", err, files["zones.json"])
	}

	entries, err := site.db.AuditEntries(context.Background(), store.AuditFilter{Action: "export.all"})
	if err != nil || len(entries) != 1 || entries[0].Actor != "ada" || entries[0].Detail != "zip, 2026-03-02T08:00:00Z to 2026-03-02T09:00:00Z" {
		t.Fatalf("export audit entries: %+v %v", entries, err)
	}

	for _, tc := range []struct{ query, says string }{
		{"from=2026-03-02T08:00:00Z", "both are needed"},
		{period(time.Hour, 0), "must come after"},
		{"from=yesterday&to=2026-03-02T08:00:00Z", "RFC 3339"},
	} {
		if a := site.raw(t, "ada", "GET", "/api/v1/export?"+tc.query, ""); a.code != 400 || !strings.Contains(a.body, tc.says) {
			t.Errorf("export?%s: %d %s, want 400 saying %q", tc.query, a.code, a.body, tc.says)
		}
	}
}

func TestWriteExportEmptyPeriodAndWriteErrors(t *testing.T) {
	sp := newSiteParts(t, cameraSiteYAML)
	var buf bytes.Buffer
	m, err := WriteExport(context.Background(), &buf, ExportOptions{Store: sp.db, Site: sp.cfg, From: historyBase, To: historyBase.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	got, files := readExport(t, buf.Bytes())
	if len(got.Files) != len(m.Files) {
		t.Fatalf("returned and written manifests differ: %+v %+v", m, got)
	}
	for _, f := range got.Files {
		want := int64(0)
		if f.Name == "zones.json" {
			want = 1 // the config's zones of cam, which has no stored layout
		}
		if f.Rows != want {
			t.Errorf("%s: %d rows, want %d", f.Name, f.Rows, want)
		}
	}
	if !strings.Contains(string(files["zones.json"]), `"source":"config"`) || string(files["alerts.json"]) != "[]\n" {
		t.Errorf("zones %s alerts %q", files["zones.json"], files["alerts.json"])
	}
	if _, err := WriteExport(context.Background(), failingWriter{}, ExportOptions{Store: sp.db, From: historyBase, To: historyBase.Add(time.Hour)}); err == nil ||
		!strings.Contains(err.Error(), "disk full") {
		t.Fatalf("export to a failing writer: %v", err)
	}
	if _, err := WriteExport(context.Background(), io.Discard, ExportOptions{Store: sp.db, From: historyBase, To: historyBase}); err == nil {
		t.Fatal("an empty period accepted")
	}
}

// failingWriter fails every write.
type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }
