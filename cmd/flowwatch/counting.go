package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"flowwatch/ingest"
	"flowwatch/internal/config"
	"flowwatch/internal/event"
	"flowwatch/internal/store"
	"flowwatch/vision"
)

// counting is serve's vision stage: one estimator shared by every camera
// through the batching scheduler, zone counts per camera handed to the
// alerting stage, and the heatmap history kept in the store.
type counting struct {
	est     vision.Estimator
	sched   *vision.Scheduler
	history *vision.HeatmapHistory
	sink    func(event.CountSample)
	log     *slog.Logger
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// startCounting opens the configured model and starts the scheduler and
// the heatmap history. They run until Close. Every zone count goes to sink.
func startCounting(cfg *config.Config, db *store.Store, sink func(event.CountSample), log *slog.Logger) (*counting, error) {
	est, err := vision.OpenModel(vision.OpenConfig{
		Model: cfg.Vision.Model,
		Runner: vision.RunnerConfig{
			Threads:  cfg.Vision.Threads,
			Provider: cfg.Vision.Provider,
			DeviceID: cfg.Vision.DeviceID,
			FP16:     cfg.Vision.FP16,
			Library:  cfg.Vision.ORTLibrary,
		},
	})
	if err != nil {
		return nil, err
	}
	sched, err := vision.NewScheduler(est, vision.SchedulerConfig{
		BatchSize: cfg.Vision.BatchSize,
		BatchWait: cfg.Vision.BatchWait,
		Logger:    log,
	})
	if err != nil {
		est.Close()
		return nil, err
	}
	metrics.RegisterSet(sched.MetricsSet())
	history, err := vision.NewHeatmapHistory(vision.HeatmapHistoryConfig{Store: db, Logger: log})
	if err != nil {
		metrics.UnregisterSet(sched.MetricsSet(), true)
		sched.Close()
		est.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &counting{est: est, sched: sched, history: history, sink: sink, log: log, cancel: cancel}
	c.wg.Go(func() {
		if err := sched.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			log.Error("vision scheduler stopped", "err", err)
		}
	})
	c.wg.Go(func() {
		if err := history.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			log.Error("heatmap history stopped", "err", err)
		}
	})
	info := est.Info()
	log.Info("counting people", "model", info.Model, "backend", info.Backend, "provider", info.Provider,
		"batch", cfg.Vision.BatchSize)
	return c, nil
}

// Close stops the scheduler, writes the heatmap buckets gathered so far
// and closes the model.
func (c *counting) Close() {
	c.cancel()
	c.sched.Close()
	c.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.history.Flush(ctx); err != nil {
		c.log.Warn("heatmap history: last flush failed", "err", err)
	}
	metrics.UnregisterSet(c.sched.MetricsSet(), true)
	c.est.Close()
}

// cameraCounter turns one camera's analysed frames into zone counts.
type cameraCounter struct {
	name    string
	queue   *vision.CameraQueue
	task    vision.Task
	history *vision.HeatmapHistory
	set     *metrics.Set // the camera's: where zone gauges are made
	sink    func(event.CountSample)
	log     *slog.Logger
	// zones are the zones counted now with their gauges; SetZones swaps
	// them while frames are being counted.
	zones atomic.Pointer[counterZones]
	// live, when set before the first frame is submitted, receives every
	// density map: the live wall's heat layer.
	live *vision.LiveHeatmap
}

// counterZones is a zone set with a gauge per zone, ZoneAll included.
// Neither changes once made.
type counterZones struct {
	set    *vision.ZoneSet
	gauges map[string]*metrics.Gauge
}

// addCamera registers a camera with the scheduler; its zone counts are
// published as gauges in set (the camera's metrics set, removed with it).
func (c *counting) addCamera(cc config.Camera, set *metrics.Set) (*cameraCounter, error) {
	zones := make([]vision.Zone, len(cc.Zones))
	for i, z := range cc.Zones {
		zones[i] = vision.Zone{Name: z.Name, Polygon: z.Polygon}
	}
	cnt := &cameraCounter{name: cc.Name, task: c.est.Info().Task, history: c.history, set: set, sink: c.sink, log: c.log}
	if err := cnt.SetZones(zones); err != nil {
		return nil, err
	}
	q, err := c.sched.AddCamera(vision.CameraConfig{Name: cc.Name})
	if err != nil {
		return nil, fmt.Errorf("camera %q: %w", cc.Name, err)
	}
	cnt.queue = q
	return cnt, nil
}

// SetZones makes the counter count zones from the next frame on. Gauges
// are made once per zone name, here, not per frame; those of zones that
// are gone are removed.
func (cc *cameraCounter) SetZones(zones []vision.Zone) error {
	zs, err := vision.NewZoneSet(zones)
	if err != nil {
		return fmt.Errorf("camera %q: zones: %w", cc.name, err)
	}
	next := &counterZones{set: zs, gauges: map[string]*metrics.Gauge{}}
	for _, name := range append([]string{vision.ZoneAll}, zoneNames(zones)...) {
		next.gauges[name] = cc.set.GetOrCreateGauge(zoneGauge(cc.name, name), nil)
	}
	if prev := cc.zones.Swap(next); prev != nil {
		for name := range prev.gauges {
			if next.gauges[name] == nil {
				cc.set.UnregisterMetric(zoneGauge(cc.name, name))
			}
		}
	}
	return nil
}

// zoneGauge names the gauge of a zone's people count.
func zoneGauge(camera, zone string) string {
	return fmt.Sprintf(`flowwatch_zone_people{camera=%q,zone=%q}`, camera, zone)
}

// submit hands a frame to the scheduler, which releases it.
func (cc *cameraCounter) submit(f *ingest.Frame) {
	cc.queue.Submit(f, cc.done)
}

func (cc *cameraCounter) done(r vision.Result) {
	if r.Err != nil {
		if !errors.Is(r.Err, vision.ErrFrameDropped) && !errors.Is(r.Err, vision.ErrSchedulerClosed) {
			cc.log.Warn("frame not counted", "camera", cc.name, "err", r.Err)
		}
		return
	}
	e := r.Estimate
	zones := cc.zones.Load()
	counts := zones.set.CountEstimate(e, cc.task, r.Frame.Width, r.Frame.Height)
	now := time.Now()
	if e.Density != nil {
		if err := cc.history.Add(cc.name, now, e.Density, r.Frame.Width, r.Frame.Height); err != nil {
			cc.log.Warn("heatmap not updated", "camera", cc.name, "err", err)
		}
		if cc.live != nil {
			if err := cc.live.Add(now, e.Density, r.Frame.Width, r.Frame.Height); err != nil {
				cc.log.Warn("live heatmap not updated", "camera", cc.name, "err", err)
			}
		}
	}
	// the count belongs to when the picture arrived: the start of the
	// glass-to-alert latency
	at := r.Frame.Received
	if at.IsZero() {
		at = now
	}
	for zone, n := range counts {
		if g := zones.gauges[zone]; g != nil {
			g.Set(n)
		}
		if zone != vision.ZoneAll && cc.sink != nil {
			cc.sink(event.CountSample{Time: at, Camera: cc.name, Zone: zone, Count: n})
		}
	}
}

func zoneNames(zones []vision.Zone) []string {
	names := make([]string, len(zones))
	for i, z := range zones {
		names[i] = z.Name
	}
	return names
}

// close removes the camera from the scheduler.
func (cc *cameraCounter) close() { cc.queue.Close() }
