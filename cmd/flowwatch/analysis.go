package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/VictoriaMetrics/metrics"

	"flowwatch/ingest"
	"flowwatch/internal/config"
)

// analysisQueue is how many access units the analysis subscription holds
// before it drops the oldest: about two seconds of a 25 fps camera.
const analysisQueue = 50

// analysis decodes one camera's main stream at its analysis rate and hands
// the frames to the camera's counter (when counting is on).
type analysis struct {
	camera   string
	counter  *cameraCounter
	pipeline *ingest.FramePipeline
	sub      *ingest.Subscription
	frames   *metrics.Counter
	log      *slog.Logger
	// view, when set before run, keeps a copy of a decoded frame now and
	// then for the console's snapshots.
	view *cameraView
}

func newAnalysis(cam *ingest.Camera, cc config.Camera, counter *cameraCounter, log *slog.Logger) (*analysis, error) {
	mode := ingest.DecodeMode(cc.Decode)
	// Decoding every picture needs an unbroken chain from a keyframe, so
	// an overflowing queue skips to the next keyframe; keyframes decode on
	// their own, so keyframes-only analysis simply drops the oldest.
	policy := ingest.DropUntilKeyframe
	if mode == ingest.DecodeKeyframes {
		policy = ingest.DropOldest
	}
	sub, err := cam.Main().Subscribe(ingest.SubscribeOptions{
		Name:            "analysis",
		QueueLen:        analysisQueue,
		Policy:          policy,
		KeyframesOnly:   mode == ingest.DecodeKeyframes,
		StartAtKeyframe: true,
	})
	if err != nil {
		return nil, fmt.Errorf("camera %q: analysis: %w", cc.Name, err)
	}
	main := cam.Main()
	p, err := ingest.NewFramePipeline(sub, ingest.PipelineConfig{
		Decoder: ingest.DecoderConfig{
			Mode:    mode,
			Rate:    cc.AnalysisFPS,
			Threads: 1,
			OnError: func(error) { main.AddDecodeErrors(1) },
		},
		Logger: log,
	})
	if err != nil {
		sub.Close()
		return nil, fmt.Errorf("camera %q: analysis: %w", cc.Name, err)
	}
	return &analysis{
		camera:   cc.Name,
		counter:  counter,
		pipeline: p,
		sub:      sub,
		frames:   cam.MetricsSet().GetOrCreateCounter(fmt.Sprintf(`flowwatch_analysis_frames_total{camera=%q}`, cc.Name)),
		log:      log,
	}, nil
}

// run decodes until ctx ends or the camera is closed.
func (a *analysis) run(ctx context.Context) {
	defer a.sub.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := a.pipeline.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			a.log.Warn("analysis stopped", "camera", a.camera, "err", err)
		}
	}()
	defer func() { <-done }()
	for {
		f, err := a.pipeline.Next(ctx)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, context.Canceled) {
				a.log.Warn("analysis frames ended", "camera", a.camera, "err", err)
			}
			return
		}
		a.frames.Inc()
		if a.view != nil {
			a.view.offer(f)
		}
		if a.counter != nil {
			a.counter.submit(f)
		} else {
			f.Release()
		}
	}
}
