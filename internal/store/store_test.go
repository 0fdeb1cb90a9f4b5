package store

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// openTemp opens a database in a file of the test's temporary folder.
func openTemp(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "flowwatch.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func TestStoreOpenMigratesAndUsesWAL(t *testing.T) {
	s, path := openTemp(t)
	ctx := context.Background()
	v, err := s.SchemaVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	steps := migrations()
	if want := steps[len(steps)-1].version; v != want {
		t.Fatalf("schema version %d, want %d", v, want)
	}
	for i, m := range steps {
		if m.version != i+1 {
			t.Fatalf("migration %d has version %d: versions must run 1, 2, 3… without gaps", i, m.version)
		}
	}
	var mode string
	if err := s.db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if mode != "wal" {
		t.Fatalf("journal mode %q, want wal", mode)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Opening again applies nothing twice.
	s2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	var n int
	if err := s2.db.QueryRowContext(ctx, "SELECT count(*) FROM schema_migrations").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != len(steps) {
		t.Fatalf("%d migrations recorded after reopening, want %d", n, len(steps))
	}
}

func TestStoreRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "newer.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.Exec("INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'from the future', 0)"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err = Open(path)
	if err == nil || !strings.Contains(err.Error(), "999") || !strings.Contains(err.Error(), path) {
		t.Fatalf("opening a newer schema: got %v, want an error naming the file and version 999", err)
	}
}

func TestStoreOpenErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-such-dir", "x.db")
	if _, err := Open(missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("open in a missing folder: got %v, want an error naming %q", err, missing)
	}
	if _, err := Open("a?b.db"); err == nil {
		t.Fatal("a path with '?' was accepted")
	}
	if _, err := Open(""); err == nil {
		t.Fatal("an empty path was accepted")
	}
}

func TestStoreHeatmapRoundTripAndUpsertAdd(t *testing.T) {
	s, path := openTemp(t)
	ctx := context.Background()
	t0 := time.Date(2025, 5, 1, 10, 0, 0, 0, time.UTC)
	b := HeatmapBucket{Camera: "gate-east", Start: t0, Cols: 3, Rows: 2, Frames: 10,
		Data: []float32{0, 1.5, 2, 3.25, 4, 1e-3}}
	if err := s.AddHeatmapBucket(ctx, b); err != nil {
		t.Fatal(err)
	}
	// A second part of the same bucket adds up.
	part := b
	part.Frames = 5
	part.Data = []float32{1, 1, 1, 1, 1, 1}
	if err := s.AddHeatmapBucket(ctx, part); err != nil {
		t.Fatal(err)
	}
	// A grid of another size is refused, and the bucket stays as it was.
	bad := HeatmapBucket{Camera: "gate-east", Start: t0, Cols: 2, Rows: 2, Frames: 1, Data: make([]float32, 4)}
	if err := s.AddHeatmapBucket(ctx, bad); err == nil || !strings.Contains(err.Error(), "3x2") || !strings.Contains(err.Error(), "2x2") {
		t.Fatalf("adding a 2x2 part to a 3x2 bucket: got %v, want an error naming both grids", err)
	}
	// Another camera's bucket at the same time is separate.
	other := HeatmapBucket{Camera: "hall-2", Start: t0, Cols: 1, Rows: 1, Frames: 7, Data: []float32{9}}
	if err := s.AddHeatmapBucket(ctx, other); err != nil {
		t.Fatal(err)
	}
	s.Close()

	// Read back from the file with a fresh connection.
	s2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	got, err := s2.HeatmapBuckets(ctx, "gate-east", t0, t0.Add(5*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("%d buckets, want 1", len(got))
	}
	g := got[0]
	if !g.Start.Equal(t0) || g.Cols != 3 || g.Rows != 2 || g.Frames != 15 {
		t.Fatalf("bucket %+v, want start %s, 3x2, 15 frames", g, t0)
	}
	want := []float32{1, 2.5, 3, 4.25, 5, 1.001}
	for i := range want {
		if g.Data[i] != want[i] {
			t.Fatalf("cell %d = %v, want %v (all %v)", i, g.Data[i], want[i], g.Data)
		}
	}
}

func TestStoreHeatmapRangeSums(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	t0 := time.Date(2025, 5, 1, 10, 0, 0, 0, time.UTC)
	for i := range 6 {
		b := HeatmapBucket{Camera: "plaza", Start: t0.Add(time.Duration(i) * 5 * time.Minute), Cols: 2, Rows: 1,
			Frames: int64(10 * (i + 1)), Data: []float32{float32(i), 1}}
		if err := s.AddHeatmapBucket(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	// Buckets 1, 2, 3 start in [10:05, 10:20); 10:02:30.5 excludes 10:00.
	sum, err := s.SumHeatmap(ctx, "plaza", t0.Add(150*time.Second+500*time.Millisecond), t0.Add(20*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if sum.Buckets != 3 || sum.Frames != 20+30+40 || sum.Cols != 2 || sum.Rows != 1 {
		t.Fatalf("sum %+v, want 3 buckets, 90 frames, 2x1", sum)
	}
	if sum.Data[0] != 1+2+3 || sum.Data[1] != 3 {
		t.Fatalf("sum data %v, want [6 3]", sum.Data)
	}
	// An empty range is no error and no grid.
	empty, err := s.SumHeatmap(ctx, "plaza", t0.Add(-time.Hour), t0)
	if err != nil || empty.Frames != 0 || empty.Data != nil {
		t.Fatalf("empty range: %+v, %v", empty, err)
	}
	// Mixed grids in a range are an error naming both.
	if err := s.AddHeatmapBucket(ctx, HeatmapBucket{Camera: "plaza", Start: t0.Add(time.Hour), Cols: 4, Rows: 2, Frames: 1, Data: make([]float32, 8)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SumHeatmap(ctx, "plaza", t0, t0.Add(2*time.Hour)); err == nil || !strings.Contains(err.Error(), "4x2") || !strings.Contains(err.Error(), "2x1") {
		t.Fatalf("summing mixed grids: got %v, want an error naming 4x2 and 2x1", err)
	}
	n, err := s.DeleteHeatmapBefore(ctx, t0.Add(10*time.Minute))
	if err != nil || n != 2 {
		t.Fatalf("delete before 10:10: %d deleted, %v; want 2", n, err)
	}
}

func TestStoreHeatmapRejectsBadBuckets(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	t0 := time.Unix(1_700_000_100, 0)
	nan := float32(0)
	nan = nan / nan
	for name, b := range map[string]HeatmapBucket{
		"no camera":  {Start: t0, Cols: 1, Rows: 1, Data: []float32{1}},
		"zero grid":  {Camera: "c", Start: t0, Cols: 0, Rows: 1},
		"short data": {Camera: "c", Start: t0, Cols: 2, Rows: 2, Data: []float32{1}},
		"neg frames": {Camera: "c", Start: t0, Cols: 1, Rows: 1, Frames: -1, Data: []float32{1}},
		"not finite": {Camera: "c", Start: t0, Cols: 1, Rows: 1, Frames: 1, Data: []float32{nan}},
	} {
		if err := s.AddHeatmapBucket(ctx, b); err == nil {
			t.Errorf("%s: accepted %+v", name, b)
		}
	}
	// A corrupt blob is reported, naming the bucket.
	if _, err := s.db.Exec("INSERT INTO heatmap_buckets VALUES ('c', ?, 2, 2, 1, x'0000')", t0.Unix()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SumHeatmap(ctx, "c", t0, t0.Add(time.Minute)); err == nil || !strings.Contains(err.Error(), "2 bytes") {
		t.Fatalf("corrupt blob: got %v", err)
	}
}

func TestStoreConcurrentWritersAddUp(t *testing.T) {
	s, path := openTemp(t)
	ctx := context.Background()
	// A second handle on the same file, as a second process would have.
	s2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	t0 := time.Unix(1_700_000_100, 0)
	errs := make(chan error, 2)
	for _, st := range []*Store{s, s2} {
		go func() {
			for range 50 {
				if err := st.AddHeatmapBucket(ctx, HeatmapBucket{Camera: "c", Start: t0, Cols: 1, Rows: 1, Frames: 1, Data: []float32{1}}); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	sum, err := s.SumHeatmap(ctx, "c", t0, t0.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if sum.Frames != 100 || sum.Data[0] != 100 {
		t.Fatalf("after 100 concurrent adds: %d frames, sum %v", sum.Frames, sum.Data)
	}
	if _, err := os.Stat(path + "-wal"); err != nil {
		t.Fatalf("no WAL file beside the database: %v", err)
	}
}
