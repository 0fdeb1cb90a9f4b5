package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"flowwatch/ingest"
	"flowwatch/internal/config"
	"flowwatch/internal/event"
	"flowwatch/internal/store"
	"flowwatch/vision"
)

const viewsSiteYAML = `
security: {allow_loopback: true}
cameras:
  - name: cam
    url: rtsp://127.0.0.1:1/cam
    zones:
      - {name: left, polygon: [[0,0],[0.5,0],[0.5,1],[0,1]], capacity: 5}
      - {name: right, polygon: [[0.5,0],[1,0],[1,1],[0.5,1]]}
  - name: other
    url: rtsp://127.0.0.1:1/other
    zones:
      - {name: hall, polygon: [[0,0],[1,0],[1,1],[0,1]]}
areas:
  - {name: west, zones: [cam/left], capacity: 10}
  - {name: hall, zones: [other/hall], capacity: 10}
`

func openViewsStore(t *testing.T) *store.Store {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "flowwatch.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestWithStoredZonesReplacesTheConfigsWhereTheyFit(t *testing.T) {
	cfg, err := config.Parse("site.yaml", []byte(viewsSiteYAML))
	if err != nil {
		t.Fatal(err)
	}
	db := openViewsStore(t)
	ctx := context.Background()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	if eff, notes, err := withStoredZones(ctx, cfg, db, quiet); err != nil || eff != cfg || len(notes) != 0 {
		t.Fatalf("nothing stored: %p (config %p), %v, %v", eff, cfg, notes, err)
	}
	at := time.Now()
	for _, l := range []store.ZoneLayout{
		// fits: area west keeps cam/left, with a new capacity
		{Camera: "cam", UpdatedAt: at, UpdatedBy: "ada", Zones: []store.LayoutZone{
			{Name: "left", Polygon: [][2]float64{{0, 0}, {0.4, 0}, {0.4, 1}, {0, 1}}, Capacity: 7},
			{Name: "door", Polygon: [][2]float64{{0.4, 0}, {1, 0}, {1, 1}}, Capacity: 2},
		}},
		// does not fit: area hall needs other/hall
		{Camera: "other", UpdatedAt: at, UpdatedBy: "ada", Zones: []store.LayoutZone{}},
		// a camera no longer configured
		{Camera: "gone", UpdatedAt: at, UpdatedBy: "ada"},
	} {
		if _, err := db.SaveZoneLayout(ctx, l); err != nil {
			t.Fatal(err)
		}
	}
	var logs bytes.Buffer
	eff, notes, err := withStoredZones(ctx, cfg, db, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	cam, other := eff.Cameras[0], eff.Cameras[1]
	if len(cam.Zones) != 2 || cam.Zones[0].Capacity != 7 || cam.Zones[1].Name != "door" || cam.Zones[0].Polygon[1][0] != 0.4 {
		t.Errorf("cam's zones in force: %+v", cam.Zones)
	}
	if len(other.Zones) != 1 || other.Zones[0].Name != "hall" || !strings.Contains(notes["other"], `area "hall"`) {
		t.Errorf("other's zones in force: %+v, note %q", other.Zones, notes["other"])
	}
	if cfg.Cameras[0].Zones[0].Capacity != 5 || len(cfg.Cameras[0].Zones) != 2 || cfg.Cameras[0].Zones[1].Name != "right" {
		t.Errorf("the config itself changed: %+v", cfg.Cameras[0].Zones)
	}
	if !strings.Contains(logs.String(), "camera=cam") || !strings.Contains(logs.String(), "camera=other") {
		t.Errorf("the log names neither camera:\n%s", logs.String())
	}
}

// frameOf makes a w x h frame with padded rows, every byte v.
func frameOf(w, h int, v byte) *ingest.Frame {
	f := &ingest.Frame{Width: w, Height: h, Stride: 3*w + 5}
	f.Pix = bytes.Repeat([]byte{v}, f.Stride*h)
	return f
}

func TestCounterSwapsZonesAndFeedsTheLiveHeatmap(t *testing.T) {
	db := openViewsStore(t)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	history, err := vision.NewHeatmapHistory(vision.HeatmapHistoryConfig{Store: db, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var samples []event.CountSample
	set := metrics.NewSet()
	cnt := &cameraCounter{name: "cam", task: vision.TaskDensity, history: history, set: set, log: quiet,
		sink: func(s event.CountSample) { mu.Lock(); samples = append(samples, s); mu.Unlock() }}
	half := func(name string, x0, x1 float64) vision.Zone {
		return vision.Zone{Name: name, Polygon: [][2]float64{{x0, 0}, {x1, 0}, {x1, 1}, {x0, 1}}}
	}
	if err := cnt.SetZones([]vision.Zone{half("left", 0, 0.5), half("right", 0.5, 1)}); err != nil {
		t.Fatal(err)
	}
	cc := config.Camera{Name: "cam", Zones: []config.Zone{{Name: "left", Capacity: 5}, {Name: "right"}}}
	view, err := newCameraView(cc, cnt)
	if err != nil {
		t.Fatal(err)
	}
	// two people on the left, one on the right of a 40x20 frame
	dm := &vision.DensityMap{Cols: 4, Rows: 2, CellW: 10, CellH: 10, Data: []float32{1, 1, 0, 1, 0, 0, 0, 0}}
	count := func() map[string]float64 {
		mu.Lock()
		samples = nil
		mu.Unlock()
		cnt.done(vision.Result{Frame: frameOf(40, 20, 0), Estimate: vision.Estimate{Count: 3, Density: dm}})
		mu.Lock()
		defer mu.Unlock()
		out := map[string]float64{}
		for _, s := range samples {
			out[s.Zone] = s.Count
		}
		return out
	}
	if got := count(); len(got) != 2 || got["left"] != 2 || got["right"] != 1 {
		t.Fatalf("counts: %v", got)
	}
	site := &site{log: quiet}
	site.views.add(view)
	if g, err := site.LiveHeatmap("cam"); err != nil || g.Frames != 1 || g.Cols == 0 {
		t.Fatalf("live heatmap: %+v, %v", g, err)
	}
	if site.ZonesApplied("cam") != appliedAll {
		t.Errorf("before any change: %q", site.ZonesApplied("cam"))
	}

	// only polygons change: alerts take the counts at once
	moved := store.ZoneLayout{Camera: "cam", Zones: []store.LayoutZone{
		{Name: "left", Polygon: [][2]float64{{0, 0}, {0.25, 0}, {0.25, 1}, {0, 1}}, Capacity: 5},
		{Name: "right", Polygon: [][2]float64{{0.25, 0}, {1, 0}, {1, 1}, {0.25, 1}}},
	}}
	if applied, err := site.ApplyZones("cam", moved); err != nil || applied != appliedAll {
		t.Fatalf("moving polygons: %q, %v", applied, err)
	}
	if got := count(); got["left"] != 1 || got["right"] != 2 {
		t.Fatalf("counts after moving: %v", got)
	}
	// a new zone: counted now, its gauge made, the gone one's removed
	renamed := store.ZoneLayout{Camera: "cam", Zones: []store.LayoutZone{
		{Name: "left", Polygon: [][2]float64{{0, 0}, {0.5, 0}, {0.5, 1}, {0, 1}}, Capacity: 5},
		{Name: "queue", Polygon: [][2]float64{{0.5, 0}, {1, 0}, {1, 1}, {0.5, 1}}, Capacity: 3},
	}}
	if applied, err := site.ApplyZones("cam", renamed); err != nil || applied != appliedCounting {
		t.Fatalf("renaming: %q, %v", applied, err)
	}
	if got := count(); len(got) != 2 || got["queue"] != 1 || got["left"] != 2 {
		t.Fatalf("counts after renaming: %v", got)
	}
	var prom bytes.Buffer
	set.WritePrometheus(&prom)
	if !strings.Contains(prom.String(), `flowwatch_zone_people{camera="cam",zone="queue"} 1`) ||
		strings.Contains(prom.String(), `zone="right"`) || !strings.Contains(prom.String(), `zone="all"} 3`) {
		t.Errorf("gauges after renaming:\n%s", prom.String())
	}
	if site.ZonesApplied("cam") != appliedCounting {
		t.Errorf("after renaming: %q", site.ZonesApplied("cam"))
	}
	if applied, _ := site.ApplyZones("nope", renamed); applied != appliedNoCamera {
		t.Errorf("a camera not running: %q", applied)
	}
	if _, err := site.LiveHeatmap("nope"); err == nil {
		t.Error("live heatmap of a camera not running")
	}
}

func TestSnapshotsAreCopiesAtMostOnceASecond(t *testing.T) {
	view, err := newCameraView(config.Camera{Name: "cam"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	site := &site{}
	site.views.add(view)
	if _, err := site.Snapshot("cam"); err == nil || !strings.Contains(err.Error(), "no picture yet") {
		t.Fatalf("before any frame: %v", err)
	}
	f := frameOf(4, 3, 7)
	view.offer(f)
	f.Pix[0] = 99 // the pooled frame is reused: the snapshot must not see it
	view.offer(frameOf(4, 3, 8))
	snap, err := site.Snapshot("cam")
	if err != nil {
		t.Fatal(err)
	}
	if snap.Width != 4 || snap.Height != 3 || snap.Stride != 12 || len(snap.Pix) != 36 || !bytes.Equal(snap.Pix, bytes.Repeat([]byte{7}, 36)) {
		t.Fatalf("snapshot: %+v", snap)
	}
	snap.Pix[0] = 1 // the caller's own copy
	if again, _ := site.Snapshot("cam"); again.Pix[0] != 7 {
		t.Error("a snapshot shares its pixels with the next")
	}
	view.snapAt.Store(time.Now().Add(-2 * time.Second).UnixNano())
	view.offer(frameOf(4, 3, 8))
	if snap, _ := site.Snapshot("cam"); snap.Pix[0] != 8 {
		t.Error("no new snapshot a second later")
	}
	if _, err := site.Snapshot("nope"); err == nil {
		t.Error("snapshot of a camera not running")
	}
	if _, err := site.LiveHeatmap("cam"); err == nil || !strings.Contains(err.Error(), "counting is off") {
		t.Errorf("live heatmap without counting: %v", err)
	}
	if site.ZonesApplied("cam") != countingOff {
		t.Errorf("zones without counting: %q", site.ZonesApplied("cam"))
	}
}
