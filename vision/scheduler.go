package vision

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"flowwatch/ingest"
)

// The metrics a Scheduler exports. The per-camera ones carry
// camera="<name>" and leave the set when the camera is removed.
const (
	// MetricVisionFrames counts frames submitted per camera.
	MetricVisionFrames = "flowwatch_vision_frames_total"
	// MetricVisionDropped counts frames dropped per camera: the oldest
	// queued frame, when a new one arrived at a full queue.
	MetricVisionDropped = "flowwatch_vision_dropped_total"
	// MetricVisionErrors counts frames per camera whose estimation failed.
	MetricVisionErrors = "flowwatch_vision_errors_total"
	// MetricVisionBatchSize is a histogram of the frames per batch.
	MetricVisionBatchSize = "flowwatch_vision_batch_size"
	// MetricVisionInference is a histogram of the seconds one batch's
	// Estimate call took, labelled backend="<EstimatorInfo.Backend>".
	MetricVisionInference = "flowwatch_vision_inference_seconds"
)

// Scheduler defaults.
const (
	// DefaultBatchSize is the most frames in one batch when the
	// configuration leaves it out.
	DefaultBatchSize = 4
	// DefaultQueuePerCamera is how many frames a camera may have waiting
	// when the configuration leaves it out.
	DefaultQueuePerCamera = 2
)

// Errors a Result may carry instead of an estimate.
var (
	// ErrFrameDropped: the frame waited in a full queue and a newer frame
	// of the same camera took its place.
	ErrFrameDropped = errors.New("vision: frame dropped for a newer one")
	// ErrSchedulerClosed: the scheduler or the camera was closed before the
	// frame was estimated.
	ErrSchedulerClosed = errors.New("vision: scheduler closed")
)

// SchedulerConfig configures a Scheduler.
type SchedulerConfig struct {
	// BatchSize is the most frames estimated in one call. Default
	// DefaultBatchSize.
	BatchSize int
	// BatchWait is the longest the oldest waiting frame waits for a batch
	// to fill. 0 sends a batch as soon as the estimator is free, with
	// whatever is waiting then.
	BatchWait time.Duration
	// QueuePerCamera bounds each camera's waiting frames; a frame arriving
	// at a full queue drops the camera's oldest waiting frame. Default
	// DefaultQueuePerCamera.
	QueuePerCamera int
	// Metrics receives the scheduler's metrics; nil keeps them in a set of
	// the scheduler's own (see MetricsSet) that nothing exports.
	Metrics *metrics.Set
	// Logger receives one line per failed batch; nil means slog.Default().
	Logger *slog.Logger
}

// CameraConfig adds a camera to a Scheduler.
type CameraConfig struct {
	// Name identifies the camera; unique among the scheduler's cameras.
	Name string
	// Estimator, when set, estimates this camera's frames instead of the
	// scheduler's estimator. A stateful estimator made for one camera
	// stream (ClassicEstimator) goes here. Cameras sharing one Estimator
	// value are batched together; a batch never mixes estimators. The
	// scheduler does not close it.
	Estimator Estimator
}

// Result is the outcome for one submitted frame.
type Result struct {
	// Camera names the camera the frame came from.
	Camera string
	// Frame is the submitted frame. It is valid only until the done
	// function returns: the scheduler releases it then. Copy what must
	// outlive the call (a snapshot for a heatmap, say).
	Frame *ingest.Frame
	// Estimate is what the estimator found; zero when Err is set.
	Estimate Estimate
	// Err is why there is no estimate: ErrFrameDropped, ErrSchedulerClosed,
	// or the estimator's error.
	Err error
	// Latency is the time from the submission to the end of the
	// estimation.
	Latency time.Duration
	// BatchSize is the number of frames estimated together with this one
	// (itself included); 0 when the frame was not estimated.
	BatchSize int
}

// Scheduler estimates frames from many cameras in batches. Each camera has
// a bounded queue; Run takes frames from the cameras round-robin, one frame
// per camera per turn, so a busy camera cannot starve a quiet one, and
// hands a batch to the estimator when BatchSize frames wait or the oldest
// has waited BatchWait. One batch runs at a time, so each camera's results
// come in the order its frames were submitted.
//
// The owner calls Run in a goroutine of its own and Close when done. Every
// submitted frame gets exactly one call of its done function and is
// released after it returns. done runs on Run's goroutine for estimated
// frames and on the submitter's for dropped or refused ones, so it must be
// safe to call from both, and quick: Run waits for it.
type Scheduler struct {
	est   Estimator
	cfg   SchedulerConfig
	log   *slog.Logger
	set   *metrics.Set
	batch *metrics.PrometheusHistogram

	mu       sync.Mutex
	cams     []*CameraQueue // in the order they were added
	next     int            // index in cams where the next round starts
	groupSeq int            // the last estimator group number handed out
	closed   bool
	wake     chan struct{} // signalled when frames arrive; buffer 1
	closing  chan struct{} // closed by Close
	runDone  chan struct{} // closed when a running Run returns
	inferFor map[string]*metrics.PrometheusHistogram
}

// NewScheduler checks cfg and returns a scheduler whose cameras use est
// unless they bring their own estimator; est may be nil when every camera
// does. The scheduler does not close est.
func NewScheduler(est Estimator, cfg SchedulerConfig) (*Scheduler, error) {
	if cfg.BatchSize == 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	if cfg.QueuePerCamera == 0 {
		cfg.QueuePerCamera = DefaultQueuePerCamera
	}
	if cfg.BatchSize < 1 || cfg.BatchSize > 1024 || cfg.QueuePerCamera < 1 || cfg.BatchWait < 0 {
		return nil, fmt.Errorf("vision: scheduler: batch size %d must be 1 to 1024, queue per camera %d at least 1, batch wait %s not negative",
			cfg.BatchSize, cfg.QueuePerCamera, cfg.BatchWait)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	set := cfg.Metrics
	if set == nil {
		set = metrics.NewSet()
	}
	bounds := make([]float64, cfg.BatchSize)
	for i := range bounds {
		bounds[i] = float64(i + 1)
	}
	return &Scheduler{
		est:      est,
		cfg:      cfg,
		log:      log,
		set:      set,
		batch:    set.GetOrCreatePrometheusHistogramExt(MetricVisionBatchSize, bounds),
		wake:     make(chan struct{}, 1),
		closing:  make(chan struct{}),
		inferFor: make(map[string]*metrics.PrometheusHistogram),
	}, nil
}

// MetricsSet returns the set holding the scheduler's metrics.
func (s *Scheduler) MetricsSet() *metrics.Set { return s.set }

// AddCamera adds a camera and returns its queue.
func (s *Scheduler) AddCamera(cfg CameraConfig) (*CameraQueue, error) {
	if cfg.Name == "" || strings.ContainsAny(cfg.Name, "\"\\\n") {
		return nil, fmt.Errorf("vision: scheduler: camera name %q must be non-empty, without quotes, backslashes or newlines", cfg.Name)
	}
	est := cfg.Estimator
	if est == nil {
		est = s.est
	}
	if est == nil {
		return nil, fmt.Errorf("vision: scheduler: camera %q: no estimator (the scheduler has none and the camera brings none)", cfg.Name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fmt.Errorf("vision: scheduler: add camera %q: %w", cfg.Name, ErrSchedulerClosed)
	}
	for _, c := range s.cams {
		if c.name == cfg.Name {
			return nil, fmt.Errorf("vision: scheduler: camera %q added twice", cfg.Name)
		}
	}
	labels := fmt.Sprintf("{camera=%q}", cfg.Name)
	c := &CameraQueue{
		s:        s,
		name:     cfg.Name,
		est:      est,
		group:    s.groupLocked(est),
		room:     make(chan struct{}),
		names:    []string{MetricVisionFrames + labels, MetricVisionDropped + labels, MetricVisionErrors + labels},
		frames:   s.set.GetOrCreateCounter(MetricVisionFrames + labels),
		dropped:  s.set.GetOrCreateCounter(MetricVisionDropped + labels),
		failures: s.set.GetOrCreateCounter(MetricVisionErrors + labels),
	}
	s.cams = append(s.cams, c)
	return c, nil
}

// groupLocked returns the batching group of est: that of a camera already
// using est, else a new one. Estimators of a type that cannot be compared
// each form a group of their own.
func (s *Scheduler) groupLocked(est Estimator) int {
	if reflect.TypeOf(est).Comparable() {
		for _, c := range s.cams {
			if reflect.TypeOf(c.est).Comparable() && c.est == est {
				return c.group
			}
		}
	}
	s.groupSeq++
	return s.groupSeq
}

// CameraQueue is one camera's entry to a Scheduler: a bounded queue of
// frames waiting to be estimated. Its methods are safe for concurrent use.
type CameraQueue struct {
	s     *Scheduler
	name  string
	est   Estimator
	group int // cameras of one group share est and batch together

	// Guarded by s.mu.
	queue   []queued
	removed bool
	room    chan struct{} // closed and replaced when a frame leaves the queue

	names                     []string
	frames, dropped, failures *metrics.Counter
}

// queued is a frame waiting in a camera's queue.
type queued struct {
	f    *ingest.Frame
	done func(Result)
	at   time.Time
}

// Name returns the camera's name.
func (c *CameraQueue) Name() string { return c.name }

// Submit queues f for estimation; done (which may be nil) receives the
// result. It never blocks: when the queue is full, the oldest waiting frame
// is dropped (its done gets ErrFrameDropped, on this goroutine) and
// released. After the camera or scheduler was closed, f is refused the same
// way with ErrSchedulerClosed. Live cameras use Submit, so that analysis
// always works on the freshest frames.
func (c *CameraQueue) Submit(f *ingest.Frame, done func(Result)) {
	q := queued{f: f, done: done, at: time.Now()}
	s := c.s
	s.mu.Lock()
	if c.removed || s.closed {
		s.mu.Unlock()
		c.finish(q, Result{Err: ErrSchedulerClosed})
		return
	}
	c.frames.Inc()
	var drop []queued
	for len(c.queue) >= s.cfg.QueuePerCamera {
		drop = append(drop, c.queue[0])
		c.queue[0] = queued{}
		c.queue = c.queue[1:]
	}
	c.queue = append(c.queue, q)
	s.mu.Unlock()
	s.signal()
	for _, d := range drop {
		c.dropped.Inc()
		c.finish(d, Result{Err: ErrFrameDropped})
	}
}

// SubmitWait queues f for estimation, waiting for room in the queue rather
// than dropping a frame: for files, where every frame is to be analysed.
// If ctx ends first it returns ctx's error and f stays the caller's; after
// the camera or scheduler was closed it returns ErrSchedulerClosed, f
// likewise. Otherwise done (which may be nil) receives the result.
func (c *CameraQueue) SubmitWait(ctx context.Context, f *ingest.Frame, done func(Result)) error {
	s := c.s
	for {
		s.mu.Lock()
		if c.removed || s.closed {
			s.mu.Unlock()
			return fmt.Errorf("vision: camera %q: %w", c.name, ErrSchedulerClosed)
		}
		if len(c.queue) < s.cfg.QueuePerCamera {
			c.queue = append(c.queue, queued{f: f, done: done, at: time.Now()})
			s.mu.Unlock()
			c.frames.Inc()
			s.signal()
			return nil
		}
		room := c.room
		s.mu.Unlock()
		select {
		case <-room:
		case <-s.closing:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Waiting returns how many frames wait in the camera's queue.
func (c *CameraQueue) Waiting() int {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	return len(c.queue)
}

// Close removes the camera from the scheduler: its waiting frames get
// ErrSchedulerClosed and are released, later submissions are refused, and
// its metrics leave the set. A batch already running still delivers its
// results. Close is idempotent.
func (c *CameraQueue) Close() {
	s := c.s
	s.mu.Lock()
	if c.removed {
		s.mu.Unlock()
		return
	}
	c.removed = true
	for i, o := range s.cams {
		if o == c {
			s.cams = append(s.cams[:i], s.cams[i+1:]...)
			if s.next > i {
				s.next--
			}
			break
		}
	}
	waiting := c.queue
	c.queue = nil
	close(c.room)
	s.mu.Unlock()
	for _, q := range waiting {
		c.finish(q, Result{Err: ErrSchedulerClosed})
	}
	for _, n := range c.names {
		s.set.UnregisterMetric(n)
	}
}

// finish delivers r for q and releases q's frame.
func (c *CameraQueue) finish(q queued, r Result) {
	r.Camera = c.name
	r.Frame = q.f
	if r.Err != nil && r.Latency == 0 {
		r.Latency = time.Since(q.at)
	}
	if q.done != nil {
		q.done(r)
	}
	if q.f != nil {
		q.f.Release()
	}
}

// signal wakes Run.
func (s *Scheduler) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run forms and estimates batches until ctx ends or Close is called, then
// returns (nil after Close, ctx's error otherwise); a batch running then is
// finished first, with ctx's cancellation passed to the estimator. Frames
// still waiting stay queued until Close. Run may be called once.
func (s *Scheduler) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrSchedulerClosed
	}
	if s.runDone != nil {
		s.mu.Unlock()
		return errors.New("vision: scheduler: Run called twice")
	}
	s.runDone = make(chan struct{})
	s.mu.Unlock()
	defer close(s.runDone)
	for {
		b, ok := s.nextBatch(ctx)
		if !ok {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return nil
		}
		s.runBatch(ctx, b)
	}
}

// schedBatch is a batch taken from the queues.
type schedBatch struct {
	est   Estimator
	items []schedItem
}

// schedItem is one frame of a batch with its camera.
type schedItem struct {
	cam *CameraQueue
	q   queued
}

// nextBatch waits until a batch is due and takes it from the queues. It
// returns false when ctx ends or the scheduler is closed.
func (s *Scheduler) nextBatch(ctx context.Context) (schedBatch, bool) {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		s.mu.Lock()
		if s.closed || ctx.Err() != nil {
			s.mu.Unlock()
			return schedBatch{}, false
		}
		group, wait := s.dueLocked(time.Now())
		if group >= 0 {
			b := s.takeLocked(group)
			s.mu.Unlock()
			return b, true
		}
		s.mu.Unlock()
		var timeout <-chan time.Time
		if wait > 0 {
			if timer == nil {
				timer = time.NewTimer(wait)
			} else {
				timer.Reset(wait)
			}
			timeout = timer.C
		}
		select {
		case <-ctx.Done():
		case <-s.closing:
		case <-s.wake:
		case <-timeout:
		}
	}
}

// dueLocked returns the estimator group whose batch is due, the first in
// round-robin order from s.next; or -1 and how long until the earliest one
// is due (0: nothing waits).
func (s *Scheduler) dueLocked(now time.Time) (int, time.Duration) {
	type stat struct {
		n      int
		oldest time.Time
	}
	stats := make(map[int]*stat)
	var order []int
	for i := range s.cams {
		c := s.cams[(s.next+i)%len(s.cams)]
		if len(c.queue) == 0 {
			continue
		}
		st := stats[c.group]
		if st == nil {
			st = &stat{oldest: c.queue[0].at}
			stats[c.group] = st
			order = append(order, c.group)
		}
		st.n += len(c.queue)
		if c.queue[0].at.Before(st.oldest) {
			st.oldest = c.queue[0].at
		}
	}
	var wait time.Duration
	for _, g := range order {
		st := stats[g]
		left := s.cfg.BatchWait - now.Sub(st.oldest)
		if st.n >= s.cfg.BatchSize || left <= 0 {
			return g, 0
		}
		if wait == 0 || left < wait {
			wait = left
		}
	}
	return -1, wait
}

// takeLocked takes up to BatchSize frames of group's cameras, one per
// camera per turn starting at s.next, and moves s.next past the last
// camera served.
func (s *Scheduler) takeLocked(group int) schedBatch {
	var b schedBatch
	n := len(s.cams)
	last := -1
	for len(b.items) < s.cfg.BatchSize {
		took := false
		for i := 0; i < n && len(b.items) < s.cfg.BatchSize; i++ {
			idx := (s.next + i) % n
			c := s.cams[idx]
			if c.group != group || len(c.queue) == 0 {
				continue
			}
			b.est = c.est
			b.items = append(b.items, schedItem{cam: c, q: c.queue[0]})
			c.queue[0] = queued{}
			c.queue = c.queue[1:]
			close(c.room)
			c.room = make(chan struct{})
			last = idx
			took = true
		}
		if !took {
			break
		}
	}
	if last >= 0 {
		s.next = (last + 1) % n
	}
	return b
}

// runBatch estimates b and delivers its results.
func (s *Scheduler) runBatch(ctx context.Context, b schedBatch) {
	frames := make([]*ingest.Frame, len(b.items))
	for i, it := range b.items {
		frames[i] = it.q.f
	}
	info := b.est.Info()
	start := time.Now()
	ests, err := b.est.Estimate(ctx, frames)
	end := time.Now()
	s.inference(info.Backend).Update(end.Sub(start).Seconds())
	s.batch.Update(float64(len(frames)))
	if err == nil && len(ests) != len(frames) {
		err = fmt.Errorf("%d estimates for %d frames", len(ests), len(frames))
	}
	if err != nil {
		err = fmt.Errorf("vision: estimate a batch of %d frames (%s) with %s: %w", len(frames), batchCameras(b), info.Backend, err)
		if ctx.Err() == nil {
			s.log.Warn("estimation failed", "backend", info.Backend, "frames", len(frames), "err", err)
		}
	}
	for i, it := range b.items {
		r := Result{Latency: end.Sub(it.q.at), BatchSize: len(frames)}
		if err != nil {
			r.Err = err
			it.cam.failures.Inc()
		} else {
			r.Estimate = ests[i]
		}
		it.cam.finish(it.q, r)
	}
}

// inference returns the inference-time histogram of backend.
func (s *Scheduler) inference(backend string) *metrics.PrometheusHistogram {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.inferFor[backend]
	if h == nil {
		h = s.set.GetOrCreatePrometheusHistogram(fmt.Sprintf("%s{backend=%q}", MetricVisionInference, backend))
		s.inferFor[backend] = h
	}
	return h
}

// batchCameras lists the distinct cameras of b, for errors.
func batchCameras(b schedBatch) string {
	var names []string
	seen := make(map[string]bool)
	for _, it := range b.items {
		if !seen[it.cam.name] {
			seen[it.cam.name] = true
			names = append(names, it.cam.name)
		}
	}
	return "cameras " + strings.Join(names, ", ")
}

// Close stops the scheduler: Run returns after its running batch, every
// camera is closed (waiting frames get ErrSchedulerClosed and are
// released), and later submissions are refused. It does not close the
// estimators. Close is idempotent.
func (s *Scheduler) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.closing)
	runDone := s.runDone
	s.mu.Unlock()
	if runDone != nil {
		<-runDone
	}
	s.mu.Lock()
	cams := append([]*CameraQueue(nil), s.cams...)
	s.mu.Unlock()
	for _, c := range cams {
		c.Close()
	}
	return nil
}
