package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"flowwatch/internal/event"
)

// seedEveryClass stores, for each data class, rows on both sides of the
// default retention as of now, and returns how many of each class a pass
// with the default policy deletes.
func seedEveryClass(t *testing.T, s *Store, now time.Time) map[DataClass]int64 {
	t.Helper()
	ctx := context.Background()
	day := 24 * time.Hour
	ago := func(d time.Duration) time.Time { return now.Add(-d).Truncate(time.Minute) }
	// counts: 400 and 8 days old go (7 days); the 400-day-old minute
	// goes from the rollups too (365 days)
	for _, at := range []time.Time{ago(400 * day), ago(8 * day), ago(day)} {
		if err := s.AddCounts(ctx, []CountValue{{Target: "area:plaza", Time: at, Count: 3}}); err != nil {
			t.Fatal(err)
		}
	}
	// alerts: resolved 400 days ago goes; resolved 10 days ago and open
	// since 400 days stay
	for i, tc := range []struct {
		opened  time.Time
		resolve bool
	}{{ago(400 * day), true}, {ago(10 * day), true}, {ago(400 * day), false}} {
		a, err := s.SaveAlertChange(ctx, raised(event.Target(fmt.Sprintf("area:a%d", i)), tc.opened), nil)
		if err != nil {
			t.Fatal(err)
		}
		if tc.resolve {
			if _, err := s.SaveAlertChange(ctx, follow(a, event.AlertCleared, event.AlertResolved, tc.opened.Add(time.Hour), "otto"), nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	// heatmaps: 100 days old goes (90 days)
	for _, at := range []time.Time{ago(100 * day), ago(10 * day)} {
		if err := s.AddHeatmapBucket(ctx, HeatmapBucket{Camera: "cam", Start: at, Cols: 1, Rows: 1, Frames: 1, Data: []float32{1}}); err != nil {
			t.Fatal(err)
		}
	}
	// snapshots: 31 days old goes (30 days)
	for _, at := range []time.Time{ago(31 * day), ago(29 * day)} {
		if _, err := s.SaveSnapshot(ctx, Snapshot{Camera: "cam", At: at, By: "ada", Width: 1, Height: 1}, []byte{1}); err != nil {
			t.Fatal(err)
		}
	}
	// audit: two entries 200 days old go (180 days)
	for _, at := range []time.Time{ago(200 * day), ago(200*day - time.Hour), ago(10 * day)} {
		if _, err := s.AppendAudit(ctx, AuditEntry{At: at, Actor: "ada", Role: "admin", Action: "login"}); err != nil {
			t.Fatal(err)
		}
	}
	return map[DataClass]int64{ClassCounts: 2, ClassRollups: 1, ClassAlerts: 1, ClassHeatmaps: 1, ClassSnapshots: 1, ClassAudit: 2}
}

func TestRetentionDeletesWhatIsDuePerClassAndLogsIt(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	now := time.Now().UTC()
	want := seedEveryClass(t, s, now)
	var logged bytes.Buffer
	r, err := NewRetention(RetentionConfig{Store: s, Logger: slog.New(slog.NewTextHandler(&logged, nil)),
		Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	results := r.RunOnce(ctx)
	if len(results) != len(DataClasses()) {
		t.Fatalf("%d results, want one per class: %+v", len(results), results)
	}
	lines := strings.Split(strings.TrimSpace(logged.String()), "\n")
	if len(lines) != len(DataClasses()) {
		t.Fatalf("%d log lines, want one per class:\n%s", len(lines), logged.String())
	}
	policy := DefaultRetentionPolicy()
	for i, res := range results {
		c := DataClasses()[i]
		before := now.Add(-policy.Keep(c)).UTC()
		if res.Class != c || res.Err != nil || res.Deleted != want[c] || !res.Before.Equal(before) {
			t.Errorf("%s: %+v, want %d deleted before %s", c, res, want[c], before)
		}
		for _, part := range []string{"retention deleted", "class=" + string(c), fmt.Sprintf("deleted=%d", want[c]),
			"before=" + before.Format(time.RFC3339)} {
			if !strings.Contains(lines[i], part) {
				t.Errorf("log line of %s lacks %q: %s", c, part, lines[i])
			}
		}
	}
	// what is left: exactly the young rows
	for _, tc := range []struct {
		table string
		want  int
	}{
		{"counts_1s", 1}, {"counts_1m", 2}, {"alerts", 2}, {"heatmap_buckets", 1}, {"snapshots", 1},
		// the young entry and the one recording the pruning
		{"audit", 2},
	} {
		if n := countRows(t, s, tc.table, "1=1"); n != tc.want {
			t.Errorf("%s: %d rows left, want %d", tc.table, n, tc.want)
		}
	}
	if n, err := s.VerifyAudit(ctx); err != nil || n != 2 {
		t.Errorf("audit chain after retention: %d entries, %v", n, err)
	}
	// a second pass finds nothing due, and says so
	logged.Reset()
	for _, res := range r.RunOnce(ctx) {
		if res.Deleted != 0 || res.Err != nil {
			t.Errorf("second pass: %+v", res)
		}
	}
	if n := strings.Count(logged.String(), "deleted=0"); n != len(DataClasses()) {
		t.Errorf("second pass logged:\n%s", logged.String())
	}
}

func TestRetentionPolicyDefaultsAndAuditMinimum(t *testing.T) {
	p := DefaultRetentionPolicy()
	day := 24 * time.Hour
	if p != (RetentionPolicy{Counts: 7 * day, Rollups: 365 * day, Alerts: 365 * day, Heatmaps: 90 * day, Snapshots: 30 * day, Audit: 180 * day}) {
		t.Fatalf("defaults: %+v", p)
	}
	if got := (RetentionPolicy{Snapshots: time.Hour}).WithDefaults(); got.Snapshots != time.Hour || got.Counts != 7*day {
		t.Fatalf("a set field kept, the others defaulted: %+v", got)
	}
	s, _ := openTemp(t)
	for _, bad := range []RetentionPolicy{{Audit: 179 * day}, {Heatmaps: -time.Hour}} {
		if _, err := NewRetention(RetentionConfig{Store: s, Policy: bad}); err == nil {
			t.Errorf("policy %+v accepted", bad)
		}
	}
	if err := (RetentionPolicy{Audit: 179 * day}).Check(); !errors.Is(err, ErrAuditRetention) || !strings.Contains(err.Error(), "audit") {
		t.Errorf("short audit retention: %v", err)
	}

	// RunRetention itself, given a short audit retention, refuses the
	// audit pass (PruneAudit's own guard), logs it, and runs the others
	ctx := context.Background()
	now := time.Now().UTC()
	seedEveryClass(t, s, now)
	var logged bytes.Buffer
	res := s.RunRetention(ctx, RetentionPolicy{Audit: 30 * day}, now, slog.New(slog.NewTextHandler(&logged, nil)), ClassSnapshots, ClassAudit)
	if len(res) != 2 || res[0].Deleted != 1 || res[0].Err != nil || !errors.Is(res[1].Err, ErrAuditRetention) || res[1].Deleted != 0 {
		t.Fatalf("results: %+v", res)
	}
	if !strings.Contains(logged.String(), "retention failed") || !strings.Contains(logged.String(), "class=audit") {
		t.Fatalf("the refused audit pass was not logged:\n%s", logged.String())
	}
	if n := countRows(t, s, "audit", "1=1"); n != 3 {
		t.Fatalf("%d audit entries left, want all 3", n)
	}
}

func TestRetentionRunStopsWithItsContext(t *testing.T) {
	s, _ := openTemp(t)
	var logged bytes.Buffer
	r, err := NewRetention(RetentionConfig{Store: s, Every: time.Millisecond, Logger: slog.New(slog.NewTextHandler(&logged, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := r.Run(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("run: %v", err)
	}
	if n := strings.Count(logged.String(), "class=counts"); n < 2 {
		t.Fatalf("%d passes in 50ms at 1ms", n)
	}
}
