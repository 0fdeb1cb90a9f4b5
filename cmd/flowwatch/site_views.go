package main

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"flowwatch/console"
	"flowwatch/ingest"
	"flowwatch/internal/config"
	"flowwatch/internal/store"
	"flowwatch/vision"
)

// snapshotEvery is how often a camera's latest decoded frame is copied for
// the console: the copy is the only cost, and a snapshot a second old is
// fresh enough for a poster frame or a zone editor's canvas.
const snapshotEvery = time.Second

// What the zones in force of a camera do, as the console's zones API says
// ("applied").
const (
	appliedAll       = "counting and alerts"
	appliedCounting  = "counting now; alert capacities at next start"
	appliedNoCounter = "saved; counting is off (see the server log): used at next start"
	appliedNoCamera  = "saved; the camera is not running: used when it starts"
	countingOff      = "counting is off (see the server log)"
	cameraNotRunning = "the camera is not running"
)

// cameraView is what the console sees of one running camera beyond its
// streams: its latest picture, its live heatmap, and its zone counter.
type cameraView struct {
	name string
	live *vision.LiveHeatmap
	// counter is nil when counting is off.
	counter *cameraCounter
	// alerting is each zone's capacity as the alerting engine took them
	// at start: the engine cannot take new zones while running.
	alerting map[string]int

	// snap is the latest copy of a decoded frame; it is never written
	// once stored, so readers copy it without a lock.
	snap   atomic.Pointer[ingest.Frame]
	snapAt atomic.Int64 // unix nanoseconds of snap's copy

	mu sync.Mutex
	// applied says what the zones in force do.
	applied string
}

// newCameraView makes the view of camera cc, counted by counter (nil when
// counting is off); cc's zones are those the alerting engine started with.
func newCameraView(cc config.Camera, counter *cameraCounter) (*cameraView, error) {
	live, err := vision.NewLiveHeatmap(vision.LiveHeatmapConfig{Camera: cc.Name})
	if err != nil {
		return nil, err
	}
	v := &cameraView{name: cc.Name, live: live, counter: counter, alerting: map[string]int{}, applied: appliedAll}
	for _, z := range cc.Zones {
		v.alerting[z.Name] = z.Capacity
	}
	if counter == nil {
		v.applied = countingOff
	} else {
		counter.live = live
	}
	return v, nil
}

// offer keeps a copy of f, a frame being analysed, when the last copy is
// snapshotEvery old. f stays the caller's.
func (v *cameraView) offer(f *ingest.Frame) {
	now := time.Now()
	if now.UnixNano()-v.snapAt.Load() < int64(snapshotEvery) {
		return
	}
	v.snapAt.Store(now.UnixNano())
	v.snap.Store(copyFrame(f))
}

// copyFrame returns a copy of f's picture, rows packed, owned by no pool.
func copyFrame(f *ingest.Frame) *ingest.Frame {
	row := 3 * f.Width
	c := &ingest.Frame{Width: f.Width, Height: f.Height, Stride: row, Pix: make([]byte, row*f.Height),
		PTS: f.PTS, Index: f.Index, Key: f.Key, Received: f.Received}
	for y := range f.Height {
		copy(c.Pix[y*row:(y+1)*row], f.Pix[y*f.Stride:y*f.Stride+row])
	}
	return c
}

// applyZones makes the counter count l's zones now and says what took
// effect.
func (v *cameraView) applyZones(l store.ZoneLayout) (string, error) {
	if v.counter == nil {
		return appliedNoCounter, nil
	}
	zones := make([]vision.Zone, len(l.Zones))
	caps := make(map[string]int, len(l.Zones))
	for i, z := range l.Zones {
		zones[i] = vision.Zone{Name: z.Name, Polygon: z.Polygon}
		caps[z.Name] = z.Capacity
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if err := v.counter.SetZones(zones); err != nil {
		return "", err
	}
	// polygons alone change nothing the engine knows: it takes counts by
	// zone name and compares them with the capacities it started with
	v.applied = appliedAll
	if !maps.Equal(caps, v.alerting) {
		v.applied = appliedCounting
	}
	return v.applied, nil
}

// siteViews are the views of the running cameras, by name.
type siteViews struct {
	mu    sync.Mutex
	cams  map[string]*cameraView
	notes map[string]string // why a saved layout is not in force, by camera
}

// add registers a running camera's view.
func (sv *siteViews) add(v *cameraView) {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	if sv.cams == nil {
		sv.cams = map[string]*cameraView{}
	}
	sv.cams[v.name] = v
}

// view returns the view of the running camera called name.
func (sv *siteViews) view(name string) (*cameraView, bool) {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	v, ok := sv.cams[name]
	return v, ok
}

// Snapshot implements console.Snapshots: a copy of the camera's latest
// decoded frame, at most snapshotEvery old while the camera sends.
func (s *site) Snapshot(camera string) (*ingest.Frame, error) {
	v, ok := s.views.view(camera)
	if !ok {
		return nil, fmt.Errorf("camera %q is not running", camera)
	}
	f := v.snap.Load()
	if f == nil {
		return nil, fmt.Errorf("camera %q has given no picture yet", camera)
	}
	return copyFrame(f), nil
}

// LiveHeatmap implements console.LiveDensity: the camera's decaying live
// heatmap.
func (s *site) LiveHeatmap(camera string) (vision.HeatmapGrid, error) {
	v, ok := s.views.view(camera)
	if !ok {
		return vision.HeatmapGrid{}, fmt.Errorf("camera %q is not running", camera)
	}
	if v.counter == nil {
		return vision.HeatmapGrid{}, fmt.Errorf("camera %q: counting is off", camera)
	}
	g := v.live.Grid()
	if g.Frames == 0 {
		return vision.HeatmapGrid{}, fmt.Errorf("camera %q: nothing counted yet", camera)
	}
	return g, nil
}

// ApplyZones implements console.ZoneEditor: the camera's counter counts
// the layout's zones from its next frame; the alerting engine keeps the
// zones and capacities it started with until the next start.
func (s *site) ApplyZones(camera string, l store.ZoneLayout) (string, error) {
	v, ok := s.views.view(camera)
	if !ok {
		return appliedNoCamera, nil
	}
	applied, err := v.applyZones(l)
	if err != nil {
		return "", err
	}
	s.views.mu.Lock()
	delete(s.views.notes, camera)
	s.views.mu.Unlock()
	s.log.Info("zone layout applied", "camera", camera, "zones", len(l.Zones), "applied", applied)
	return applied, nil
}

// ZonesApplied implements console.ZoneEditor.
func (s *site) ZonesApplied(camera string) string {
	s.views.mu.Lock()
	note := s.views.notes[camera]
	s.views.mu.Unlock()
	if note != "" {
		return note
	}
	v, ok := s.views.view(camera)
	if !ok {
		return cameraNotRunning
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.applied
}

// withStoredZones returns cfg with each camera's zones replaced by the
// layout last saved in the console, when there is one that still fits the
// config (its areas' zones are all there); the engine, the counters and the
// console all start from it. A layout that does not fit is logged and left
// out, and notes says why, by camera.
func withStoredZones(ctx context.Context, cfg *config.Config, db *store.Store, log *slog.Logger) (*config.Config, map[string]string, error) {
	layouts, err := db.ZoneLayouts(ctx)
	if err != nil {
		return nil, nil, err
	}
	notes := map[string]string{}
	if len(layouts) == 0 {
		return cfg, notes, nil
	}
	eff := *cfg
	eff.Cameras = make([]config.Camera, len(cfg.Cameras))
	for i, cc := range cfg.Cameras {
		eff.Cameras[i] = cc
		l, ok := layouts[cc.Name]
		if !ok {
			continue
		}
		if err := console.CheckZoneLayout(cfg, cc.Name, l.Zones, l.Calibration); err != nil {
			log.Warn("zone layout saved in the console does not fit the config; the config's zones count",
				"camera", cc.Name, "saved_at", l.UpdatedAt.Format(time.RFC3339), "saved_by", l.UpdatedBy, "err", err)
			notes[cc.Name] = "not applied: " + err.Error() + "; the config's zones count"
			continue
		}
		zones := make([]config.Zone, len(l.Zones))
		for j, z := range l.Zones {
			zones[j] = config.Zone{Name: z.Name, Polygon: z.Polygon, Capacity: z.Capacity}
		}
		eff.Cameras[i].Zones = zones
		log.Info("zones from the console replace the config's", "camera", cc.Name, "zones", len(zones),
			"saved_at", l.UpdatedAt.Format(time.RFC3339), "saved_by", l.UpdatedBy)
	}
	return &eff, notes, nil
}

var (
	_ console.Snapshots   = (*site)(nil)
	_ console.LiveDensity = (*site)(nil)
	_ console.ZoneEditor  = (*site)(nil)
)
