package main

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"flowwatch/console"
	"flowwatch/internal/event"
	"flowwatch/internal/store"
)

func TestExportCommandWritesThePeriodOnly(t *testing.T) {
	dir := t.TempDir()
	db := openDataStore(t, dir)
	ctx := context.Background()
	base := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	// inside 2026-03-02: three seconds of counts, an audit entry, a
	// snapshot; outside: the same the day before and the day after
	for _, day := range []time.Duration{-24 * time.Hour, 0, 24 * time.Hour} {
		at := base.Add(day + 12*time.Hour)
		var vs []store.CountValue
		for i := range 3 {
			vs = append(vs, store.CountValue{Target: event.AreaTarget("plaza"), Time: at.Add(time.Duration(i) * time.Second), Count: float64(i)})
		}
		if err := db.AddCounts(ctx, vs); err != nil {
			t.Fatal(err)
		}
		if _, err := db.AppendAudit(ctx, store.AuditEntry{At: at, Actor: "ada", Role: "admin", Action: "login"}); err != nil {
			t.Fatal(err)
		}
		if _, err := db.SaveSnapshot(ctx, store.Snapshot{Camera: "gate", At: at, By: "ada", Blurred: true, Width: 1, Height: 1}, []byte("jpeg")); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	out := filepath.Join(t.TempDir(), "export.zip")
	var stdout bytes.Buffer
	if err := run(ctx, []string{"export", "--data", dir, "--from", "2026-03-02", "--to", "2026-03-03T00:00:00Z", "--out", out}, &stdout, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout.String(), "wrote "+out) || !strings.Contains(stdout.String(), "counts_1s.csv") {
		t.Fatalf("stdout: %s", stdout.String())
	}
	zr, err := zip.OpenReader(out)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	files := map[string]string{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		files[f.Name] = string(b)
	}
	var m console.ExportManifest
	if err := json.Unmarshal([]byte(files["manifest.json"]), &m); err != nil || !m.From.Equal(base) || !m.To.Equal(base.Add(24*time.Hour)) {
		t.Fatalf("manifest: %+v %v", m, err)
	}
	rows := map[string]int64{}
	for _, f := range m.Files {
		rows[f.Name] = f.Rows
	}
	for name, want := range map[string]int64{"counts_1s.csv": 3, "counts_1m.csv": 1, "audit.csv": 1, "snapshots.csv": 1, "snapshots/2-gate.jpg": 1, "alerts.json": 0} {
		if rows[name] != want {
			t.Errorf("%s: %d rows, want %d (manifest %+v)", name, rows[name], want, m.Files)
		}
	}
	for _, name := range []string{"counts_1s.csv", "counts_1m.csv"} {
		recs, err := csv.NewReader(strings.NewReader(files[name])).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		for _, rec := range recs[1:] {
			if !strings.HasPrefix(rec[0], "2026-03-02T12:00:0") {
				t.Errorf("%s: row %q outside the period", name, rec)
			}
		}
	}
	if _, ok := files["snapshots/1-gate.jpg"]; ok {
		t.Error("the day before's snapshot was exported")
	}
	// the export is audited, and no temporary file is left
	db = openDataStore(t, dir)
	defer db.Close()
	if entries, err := db.AuditEntries(ctx, store.AuditFilter{Action: "export.all"}); err != nil || len(entries) != 1 ||
		!strings.Contains(entries[0].Detail, "2026-03-02T00:00:00Z to 2026-03-03T00:00:00Z") {
		t.Fatalf("audit: %+v %v", entries, err)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(out), ".flowwatch-export-*")); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}

func TestExportCommandErrors(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "x.zip")
	for _, tc := range []struct {
		args []string
		says string
	}{
		{[]string{"--from", "2026-03-02", "--to", "2026-03-03"}, "--out"},
		{[]string{"--to", "2026-03-03", "--out", out}, "--from and --to"},
		{[]string{"--from", "yesterday", "--to", "2026-03-03", "--out", out}, `--from: want an RFC 3339 time, a date YYYY-MM-DD or a duration ago such as 24h, got "yesterday"`},
		{[]string{"--from", "2026-03-03", "--to", "2026-03-02", "--out", out}, "must come after"},
		{[]string{"--from", "2026-03-02", "--to", "2026-03-03", "--out", out, "extra"}, "unexpected"},
		{[]string{"--data", filepath.Join(dir, "none"), "--from", "2026-03-02", "--to", "2026-03-03", "--out", out}, "no stored data"},
	} {
		err := run(context.Background(), append([]string{"export"}, tc.args...), io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("export %q: %v, want an error saying %q", tc.args, err, tc.says)
		}
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Fatalf("a failed export left %s: %v", out, err)
	}
}
