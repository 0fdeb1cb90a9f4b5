package vision

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"flowwatch/ingest"
)

// pixelSumEstimator is a deterministic test double for the scheduler's
// batching, not a model: each frame's Count is the mean of its pixel
// bytes, so a test that fills a frame with one value can tell which frame
// a result belongs to. It records the size of every batch and the counts
// it saw, can hold each call until released, and can fail.
type pixelSumEstimator struct {
	backend string
	hold    chan struct{} // when set, each call waits for a receive
	fail    error

	mu      sync.Mutex
	batches []int
	seen    [][]float64
}

func (p *pixelSumEstimator) Estimate(ctx context.Context, frames []*ingest.Frame) ([]Estimate, error) {
	if p.hold != nil {
		select {
		case <-p.hold:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	out := make([]Estimate, len(frames))
	counts := make([]float64, len(frames))
	for i, f := range frames {
		var s float64
		for y := range f.Height {
			for _, b := range f.Pix[y*f.Stride : y*f.Stride+3*f.Width] {
				s += float64(b)
			}
		}
		counts[i] = s / float64(3*f.Width*f.Height)
		out[i] = Estimate{Count: counts[i]}
	}
	p.mu.Lock()
	p.batches = append(p.batches, len(frames))
	p.seen = append(p.seen, counts)
	p.mu.Unlock()
	if p.fail != nil {
		return nil, p.fail
	}
	return out, nil
}

func (p *pixelSumEstimator) Info() EstimatorInfo {
	return EstimatorInfo{Backend: p.backend, Task: TaskDensity}
}

func (p *pixelSumEstimator) Close() error { return nil }

func (p *pixelSumEstimator) batchSizes() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]int(nil), p.batches...)
}

// schedFrame returns a 4x2 frame from pool filled with v.
func schedFrame(pool *ingest.FramePool, v byte) *ingest.Frame {
	f := pool.Get(4, 2)
	for i := range f.Pix {
		f.Pix[i] = v
	}
	return f
}

// schedReleased reports whether f went back to its pool: a released pool
// frame has its size cleared.
func schedReleased(f *ingest.Frame) bool { return f.Width == 0 && f.Height == 0 }

// schedCollector gathers results per camera.
type schedCollector struct {
	mu  sync.Mutex
	got map[string][]Result
	all []Result
	n   chan struct{} // one send per result
}

func newSchedCollector() *schedCollector {
	return &schedCollector{got: make(map[string][]Result), n: make(chan struct{}, 1000)}
}

func (c *schedCollector) done(r Result) {
	// The frame is only valid during the call: keep what it said.
	r.Frame = nil
	c.mu.Lock()
	c.got[r.Camera] = append(c.got[r.Camera], r)
	c.all = append(c.all, r)
	c.mu.Unlock()
	c.n <- struct{}{}
}

func (c *schedCollector) wait(t *testing.T, n int) {
	t.Helper()
	for i := range n {
		select {
		case <-c.n:
		case <-time.After(10 * time.Second):
			t.Fatalf("got %d results of %d", i, n)
		}
	}
}

// schedMetric returns the value of the series named name in s's set, or
// "" when there is none.
func schedMetric(s *Scheduler, name string) string {
	var buf bytes.Buffer
	s.MetricsSet().WritePrometheus(&buf)
	for _, line := range strings.Split(buf.String(), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	return ""
}

// schedNoLeaks checks, after the test's other cleanups, that the test left
// no goroutine behind.
func schedNoLeaks(t *testing.T) {
	t.Helper()
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
}

// schedRun runs s in a goroutine. The returned function (also called when
// the test ends) stops Run and waits for it, after which every frame Run
// handled has been released.
func schedRun(t *testing.T, s *Scheduler) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(func() {
		stop()
		s.Close()
	})
	return stop
}

func TestSchedulerBatchesAcrossCameras(t *testing.T) {
	schedNoLeaks(t)
	est := &pixelSumEstimator{backend: "pixelsum"}
	s, err := NewScheduler(est, SchedulerConfig{BatchSize: 4, QueuePerCamera: 4})
	if err != nil {
		t.Fatal(err)
	}
	pool := ingest.NewFramePool()
	col := newSchedCollector()
	var frames []*ingest.Frame
	for ci, name := range []string{"a", "b", "c"} {
		cam, err := s.AddCamera(CameraConfig{Name: name})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 4 {
			f := schedFrame(pool, byte(10*ci+i))
			frames = append(frames, f)
			if err := cam.SubmitWait(context.Background(), f, col.done); err != nil {
				t.Fatal(err)
			}
		}
	}
	stop := schedRun(t, s)
	col.wait(t, 12)
	stop()
	if got := est.batchSizes(); fmt.Sprint(got) != "[4 4 4]" {
		t.Fatalf("batch sizes %v, want [4 4 4]", got)
	}
	// Round-robin: the first batch takes a, b, c, then a again.
	if got := fmt.Sprint(est.seen[0]); got != "[0 10 20 1]" {
		t.Fatalf("first batch holds frames %s, want [0 10 20 1] (a0 b0 c0 a1)", got)
	}
	for ci, name := range []string{"a", "b", "c"} {
		rs := col.got[name]
		if len(rs) != 4 {
			t.Fatalf("camera %s: %d results, want 4", name, len(rs))
		}
		for i, r := range rs {
			if r.Err != nil || r.Estimate.Count != float64(10*ci+i) || r.BatchSize != 4 {
				t.Fatalf("camera %s result %d: %+v, want count %d from a batch of 4", name, i, r, 10*ci+i)
			}
		}
		if v := schedMetric(s, fmt.Sprintf(`%s{camera=%q}`, MetricVisionFrames, name)); v != "4" {
			t.Fatalf("camera %s: frames metric %q, want 4", name, v)
		}
	}
	for i, f := range frames {
		if !schedReleased(f) {
			t.Fatalf("frame %d not released after its result", i)
		}
	}
	if v := schedMetric(s, MetricVisionBatchSize+`_count`); v != "3" {
		t.Fatalf("batch size histogram count %q, want 3", v)
	}
	if v := schedMetric(s, MetricVisionInference+`_count{backend="pixelsum"}`); v != "3" {
		t.Fatalf("inference histogram count %q, want 3", v)
	}
}

func TestSchedulerDropsOldest(t *testing.T) {
	schedNoLeaks(t)
	est := &pixelSumEstimator{backend: "pixelsum"}
	s, err := NewScheduler(est, SchedulerConfig{BatchSize: 4, QueuePerCamera: 2})
	if err != nil {
		t.Fatal(err)
	}
	cam, err := s.AddCamera(CameraConfig{Name: "gate"})
	if err != nil {
		t.Fatal(err)
	}
	pool := ingest.NewFramePool()
	col := newSchedCollector()
	// All frames exist before any is released, so the pool reuses none.
	var frames []*ingest.Frame
	for i := range 5 {
		frames = append(frames, schedFrame(pool, byte(i)))
	}
	for _, f := range frames {
		cam.Submit(f, col.done)
	}
	// Without Run, frames 0, 1, 2 were pushed out by 3 and 4, in order.
	col.wait(t, 3)
	for i, r := range col.got["gate"] {
		if !errors.Is(r.Err, ErrFrameDropped) {
			t.Fatalf("result %d: %v, want ErrFrameDropped", i, r.Err)
		}
		if !schedReleased(frames[i]) {
			t.Fatalf("dropped frame %d not released", i)
		}
	}
	if n := cam.Waiting(); n != 2 {
		t.Fatalf("%d frames waiting, want 2", n)
	}
	if v := schedMetric(s, MetricVisionDropped+`{camera="gate"}`); v != "3" {
		t.Fatalf("dropped metric %q, want 3", v)
	}
	schedRun(t, s)
	col.wait(t, 2)
	rs := col.got["gate"][3:]
	if rs[0].Estimate.Count != 3 || rs[1].Estimate.Count != 4 || rs[0].Err != nil {
		t.Fatalf("estimated %+v, want the two newest frames 3 and 4", rs)
	}
}

func TestSchedulerFairness(t *testing.T) {
	schedNoLeaks(t)
	est := &pixelSumEstimator{backend: "pixelsum"}
	s, err := NewScheduler(est, SchedulerConfig{BatchSize: 2, QueuePerCamera: 8})
	if err != nil {
		t.Fatal(err)
	}
	busy, _ := s.AddCamera(CameraConfig{Name: "busy"})
	quiet, _ := s.AddCamera(CameraConfig{Name: "quiet"})
	pool := ingest.NewFramePool()
	col := newSchedCollector()
	for i := range 8 {
		busy.Submit(schedFrame(pool, byte(i)), col.done)
	}
	quiet.Submit(schedFrame(pool, 100), col.done)
	quiet.Submit(schedFrame(pool, 101), col.done)
	schedRun(t, s)
	col.wait(t, 10)
	// The quiet camera's two frames go out in the first two batches, not
	// after the busy camera's eight.
	var order []string
	for _, r := range col.all {
		order = append(order, fmt.Sprintf("%s%.0f", r.Camera[:1], r.Estimate.Count))
	}
	if got := strings.Join(order, " "); got != "b0 q100 b1 q101 b2 b3 b4 b5 b6 b7" {
		t.Fatalf("delivery order %q, want the cameras alternating while both have frames", got)
	}
}

func TestSchedulerBatchWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		est := &pixelSumEstimator{backend: "pixelsum"}
		s, err := NewScheduler(est, SchedulerConfig{BatchSize: 4, BatchWait: 100 * time.Millisecond, QueuePerCamera: 4})
		if err != nil {
			t.Fatal(err)
		}
		a, _ := s.AddCamera(CameraConfig{Name: "a"})
		b, _ := s.AddCamera(CameraConfig{Name: "b"})
		ctx, cancel := context.WithCancel(context.Background())
		runErr := make(chan error, 1)
		go func() { runErr <- s.Run(ctx) }()
		pool := ingest.NewFramePool()
		results := make(chan Result, 10)
		done := func(r Result) { results <- r }

		// A lone frame waits BatchWait for company, then goes alone.
		start := time.Now()
		a.Submit(schedFrame(pool, 1), done)
		r := <-results
		if waited := time.Since(start); waited != 100*time.Millisecond || r.BatchSize != 1 || r.Latency != waited {
			t.Fatalf("lone frame: delivered after %s in a batch of %d (latency %s), want 100ms, 1", waited, r.BatchSize, r.Latency)
		}
		// A second frame arriving within the wait joins the first.
		start = time.Now()
		a.Submit(schedFrame(pool, 2), done)
		time.Sleep(60 * time.Millisecond)
		b.Submit(schedFrame(pool, 3), done)
		r1, r2 := <-results, <-results
		if waited := time.Since(start); waited != 100*time.Millisecond || r1.BatchSize != 2 || r2.BatchSize != 2 {
			t.Fatalf("two frames 60ms apart: delivered after %s in batches of %d and %d, want 100ms, 2", waited, r1.BatchSize, r2.BatchSize)
		}
		// A full batch goes at once.
		start = time.Now()
		for i := range 2 {
			a.Submit(schedFrame(pool, byte(10+i)), done)
			b.Submit(schedFrame(pool, byte(20+i)), done)
		}
		for range 4 {
			if r := <-results; r.BatchSize != 4 {
				t.Fatalf("full batch: a result from a batch of %d, want 4", r.BatchSize)
			}
		}
		if waited := time.Since(start); waited != 0 {
			t.Fatalf("full batch waited %s, want no wait", waited)
		}
		cancel()
		if err := <-runErr; !errors.Is(err, context.Canceled) {
			t.Fatalf("Run after cancel: %v", err)
		}
		s.Close()
	})
}

func TestSchedulerCloseDeliversEverything(t *testing.T) {
	schedNoLeaks(t)
	est := &pixelSumEstimator{backend: "pixelsum", hold: make(chan struct{})}
	s, err := NewScheduler(est, SchedulerConfig{BatchSize: 1, QueuePerCamera: 4})
	if err != nil {
		t.Fatal(err)
	}
	cam, _ := s.AddCamera(CameraConfig{Name: "hall"})
	pool := ingest.NewFramePool()
	col := newSchedCollector()
	var frames []*ingest.Frame
	for i := range 3 {
		f := schedFrame(pool, byte(i))
		frames = append(frames, f)
		cam.Submit(f, col.done)
	}
	runErr := make(chan error, 1)
	go func() { runErr <- s.Run(context.Background()) }()
	// Let the first batch start, then close while it is held.
	for cam.Waiting() != 2 {
		time.Sleep(time.Millisecond)
	}
	closed := make(chan struct{})
	go func() { s.Close(); close(closed) }()
	select {
	case <-closed:
		t.Fatal("Close returned while a batch was still running")
	case <-time.After(50 * time.Millisecond):
	}
	est.hold <- struct{}{}
	<-closed
	if err := <-runErr; err != nil {
		t.Fatalf("Run after Close: %v", err)
	}
	col.wait(t, 3)
	rs := col.got["hall"]
	if rs[0].Err != nil || rs[0].Estimate.Count != 0 {
		t.Fatalf("the running batch's frame: %+v, want its estimate", rs[0])
	}
	for _, r := range rs[1:] {
		if !errors.Is(r.Err, ErrSchedulerClosed) {
			t.Fatalf("a waiting frame got %v, want ErrSchedulerClosed", r.Err)
		}
	}
	for i, f := range frames {
		if !schedReleased(f) {
			t.Fatalf("frame %d not released", i)
		}
	}
	// Later submissions are refused and released.
	late := schedFrame(pool, 9)
	cam.Submit(late, col.done)
	col.wait(t, 1)
	if r := col.all[len(col.all)-1]; !errors.Is(r.Err, ErrSchedulerClosed) || !schedReleased(late) {
		t.Fatalf("submission after Close: %v, released %v", r.Err, schedReleased(late))
	}
	if err := cam.SubmitWait(context.Background(), schedFrame(pool, 9), nil); !errors.Is(err, ErrSchedulerClosed) {
		t.Fatalf("SubmitWait after Close: %v", err)
	}
	if err := s.Run(context.Background()); !errors.Is(err, ErrSchedulerClosed) {
		t.Fatalf("Run after Close: %v", err)
	}
	// The camera's series left the set.
	for _, name := range s.MetricsSet().ListMetricNames() {
		if strings.Contains(name, `camera="hall"`) {
			t.Fatalf("series %s still registered after Close", name)
		}
	}
}

func TestSchedulerSubmitWaitBlocksUntilRoom(t *testing.T) {
	schedNoLeaks(t)
	est := &pixelSumEstimator{backend: "pixelsum"}
	s, err := NewScheduler(est, SchedulerConfig{BatchSize: 2, QueuePerCamera: 1})
	if err != nil {
		t.Fatal(err)
	}
	cam, _ := s.AddCamera(CameraConfig{Name: "file"})
	pool := ingest.NewFramePool()
	col := newSchedCollector()
	if err := cam.SubmitWait(context.Background(), schedFrame(pool, 0), col.done); err != nil {
		t.Fatal(err)
	}
	// The queue is full and nothing runs: the wait ends with the context.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	held := schedFrame(pool, 1)
	if err := cam.SubmitWait(ctx, held, col.done); !errors.Is(err, context.DeadlineExceeded) || schedReleased(held) {
		t.Fatalf("SubmitWait on a full queue: %v (frame released %v), want the deadline and the frame left to the caller", err, schedReleased(held))
	}
	schedRun(t, s)
	for i := range 20 {
		if err := cam.SubmitWait(context.Background(), schedFrame(pool, byte(i+1)), col.done); err != nil {
			t.Fatal(err)
		}
	}
	col.wait(t, 21)
	for i, r := range col.got["file"] {
		if r.Err != nil || r.Estimate.Count != float64(i) {
			t.Fatalf("result %d: %+v; SubmitWait must lose no frame", i, r)
		}
	}
}

func TestSchedulerEstimatorError(t *testing.T) {
	schedNoLeaks(t)
	boom := errors.New("device lost")
	est := &pixelSumEstimator{backend: "pixelsum", fail: boom}
	s, err := NewScheduler(est, SchedulerConfig{BatchSize: 2, QueuePerCamera: 2,
		Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := s.AddCamera(CameraConfig{Name: "north"})
	b, _ := s.AddCamera(CameraConfig{Name: "south"})
	pool := ingest.NewFramePool()
	col := newSchedCollector()
	a.Submit(schedFrame(pool, 1), col.done)
	b.Submit(schedFrame(pool, 2), col.done)
	schedRun(t, s)
	col.wait(t, 2)
	for _, r := range col.all {
		if !errors.Is(r.Err, boom) || !strings.Contains(r.Err.Error(), "north, south") || !strings.Contains(r.Err.Error(), "pixelsum") {
			t.Fatalf("result error %v, want the estimator's error naming the cameras and backend", r.Err)
		}
	}
	if v := schedMetric(s, MetricVisionErrors+`{camera="north"}`); v != "1" {
		t.Fatalf("errors metric %q, want 1", v)
	}
}

func TestSchedulerPerCameraEstimators(t *testing.T) {
	schedNoLeaks(t)
	shared := &pixelSumEstimator{backend: "shared"}
	own := &pixelSumEstimator{backend: "own"}
	s, err := NewScheduler(shared, SchedulerConfig{BatchSize: 8, QueuePerCamera: 4})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := s.AddCamera(CameraConfig{Name: "a"})
	b, _ := s.AddCamera(CameraConfig{Name: "b", Estimator: shared})
	c, _ := s.AddCamera(CameraConfig{Name: "c", Estimator: own})
	if _, err := s.AddCamera(CameraConfig{Name: "a"}); err == nil {
		t.Fatal("a second camera named a was accepted")
	}
	pool := ingest.NewFramePool()
	col := newSchedCollector()
	for i := range 3 {
		a.Submit(schedFrame(pool, byte(10+i)), col.done)
		b.Submit(schedFrame(pool, byte(20+i)), col.done)
		c.Submit(schedFrame(pool, byte(30+i)), col.done)
	}
	schedRun(t, s)
	col.wait(t, 9)
	// a and b share an estimator and batch together; c never joins them.
	for _, batch := range shared.seen {
		for _, v := range batch {
			if v >= 30 {
				t.Fatalf("the shared estimator saw camera c's frame %v", v)
			}
		}
	}
	for _, batch := range own.seen {
		for _, v := range batch {
			if v < 30 {
				t.Fatalf("camera c's estimator saw frame %v of another camera", v)
			}
		}
	}
	if fmt.Sprint(shared.batchSizes()) != "[6]" || fmt.Sprint(own.batchSizes()) != "[3]" {
		t.Fatalf("batches: shared %v, own %v; want [6] and [3]", shared.batchSizes(), own.batchSizes())
	}

	noDefault, err := NewScheduler(nil, SchedulerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer noDefault.Close()
	if _, err := noDefault.AddCamera(CameraConfig{Name: "x"}); err == nil || !strings.Contains(err.Error(), `"x"`) {
		t.Fatalf("camera without an estimator: %v", err)
	}
}

func TestSchedulerConfigErrors(t *testing.T) {
	for _, cfg := range []SchedulerConfig{{BatchSize: -1}, {QueuePerCamera: -2}, {BatchWait: -time.Second}} {
		if _, err := NewScheduler(&pixelSumEstimator{}, cfg); err == nil {
			t.Errorf("config %+v accepted", cfg)
		}
	}
}
