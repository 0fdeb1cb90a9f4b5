package vision

import (
	"bufio"
	"context"
	"errors"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"flowwatch/ingest"
)

// classicVtest is the sample clip the classic estimator is checked on.
const classicVtest = "/usr/share/doc/opencv-doc/examples/data/vtest.avi"

// classicVtestCounts is the hand count of people in some vtest frames,
// relative to this package's folder.
const classicVtestCounts = "../../shared/annotations/vtest_counts.csv"

// classicVtestConfig is the calibration of the vtest camera, measured on
// frame 150 by eye: a walker whose body centre is at row 272 of 576 is
// about 87 px tall and 32 px wide, about half of that box foreground
// (so ~1450 px at row 0.5); person heights at rows 128 and 315 put the
// horizon between 0.03 and 0.33 above the picture.
func classicVtestConfig() ClassicConfig {
	return ClassicConfig{Camera: "vtest", PixelsPerPerson: 1450, ReferenceRow: 0.5, HorizonRow: -0.15}
}

// classicEachVtestFrame decodes the first n frames of vtest and calls fn
// with each; fn must not keep the frame. It skips the test without the
// clip.
func classicEachVtestFrame(t *testing.T, n int, fn func(f *ingest.Frame)) {
	t.Helper()
	if _, err := os.Stat(classicVtest); err != nil {
		t.Skipf("sample clip missing: %v", err)
	}
	src, err := ingest.OpenFile(context.Background(), classicVtest, ingest.FileConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	for range n {
		f, err := src.Next(context.Background())
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		fn(f)
		f.Release()
	}
}

// classicFrame returns a w x h frame of uniform grey (with stride padding
// pad bytes per row) and, when rect is non-empty, a dark rectangle
// [x0, x1) x [y0, y1).
func classicFrame(w, h, pad int, rect [4]int) *ingest.Frame {
	f := &ingest.Frame{Width: w, Height: h, Stride: 3*w + pad, Pix: make([]byte, (3*w+pad)*h)}
	for y := range h {
		for x := range w {
			v := byte(150)
			if x >= rect[0] && x < rect[1] && y >= rect[2] && y < rect[3] {
				v = 30
			}
			p := f.Pix[y*f.Stride+3*x:]
			p[0], p[1], p[2] = v, v+10, v+20
		}
	}
	return f
}

// classicFeed estimates frames one call at a time and returns the last
// estimate.
func classicFeed(t *testing.T, e *ClassicEstimator, frames ...*ingest.Frame) Estimate {
	t.Helper()
	var last Estimate
	for _, f := range frames {
		got, err := e.Estimate(context.Background(), []*ingest.Frame{f})
		if err != nil {
			t.Fatal(err)
		}
		last = got[0]
	}
	return last
}

func TestClassicCalibratedBlob(t *testing.T) {
	for _, pad := range []int{0, 7} {
		// 640x480 frames shrunk to 320x240: the calibration is in frame
		// pixels, so the count must not depend on the working size.
		e, err := NewClassicEstimator(ClassicConfig{Camera: "blob", PixelsPerPerson: 1600, RowWeights: []float64{1}})
		if err != nil {
			t.Fatal(err)
		}
		bg := classicFrame(640, 480, pad, [4]int{})
		for range 30 {
			classicFeed(t, e, bg)
		}
		if got := classicFeed(t, e, bg); got.Count > 0.01 || !got.Classic {
			t.Fatalf("pad %d: static background counts %.3f people (classic %v), want 0", pad, got.Count, got.Classic)
		}
		// Two people's worth: 40x80 = 3200 frame pixels.
		got := classicFeed(t, e, classicFrame(640, 480, pad, [4]int{300, 340, 200, 280}))
		if math.Abs(got.Count-2) > 0.1 {
			t.Fatalf("pad %d: a 3200 px blob at 1600 px per person counts %.3f, want 2 ± 0.1", pad, got.Count)
		}
		if d := got.Density; d == nil || math.Abs(d.Sum()-got.Count) > 1e-3 || d.Cols != 40 || d.Rows != 30 || d.CellW != 16 || d.CellH != 16 {
			t.Fatalf("pad %d: density map %+v does not match the count %.3f or the 40x30 grid of 16 px cells", pad, d, got.Count)
		}
		// The mass lies in the cells the blob covers (x 300..340, y 200..280
		// → cells 18..21, 12..17).
		var inside float64
		for r := 12; r <= 17; r++ {
			for c := 18; c <= 21; c++ {
				inside += float64(got.Density.Data[r*got.Density.Cols+c])
			}
		}
		if inside < 0.99*got.Count {
			t.Fatalf("pad %d: only %.3f of %.3f people inside the blob's cells", pad, inside, got.Count)
		}
		if info := e.Info(); info.Backend != "classic" || info.Task != TaskClassic {
			t.Fatalf("info %+v", info)
		}
		e.Close()
		if _, err := e.Estimate(context.Background(), []*ingest.Frame{bg}); err == nil {
			t.Fatal("Estimate after Close succeeded")
		}
	}
}

func TestClassicPerspective(t *testing.T) {
	// Linear row model, horizon at the top edge, reference at mid-height:
	// the same blob higher up (farther away) counts as more people.
	const w, h, ppp = 320, 240, 400.0
	cfg := ClassicConfig{Camera: "persp", PixelsPerPerson: ppp, ReferenceRow: 0.5, HorizonRow: 0}
	expect := func(y0, y1 int) float64 {
		var s float64
		for y := y0; y < y1; y++ {
			v := (float64(y) + 0.5) / h
			s += 20 * (0.5 / v) * (0.5 / v) / ppp
		}
		return s
	}
	for _, tc := range []struct{ y0, y1 int }{{100, 140}, {40, 80}} {
		e, err := NewClassicEstimator(cfg)
		if err != nil {
			t.Fatal(err)
		}
		bg := classicFrame(w, h, 0, [4]int{})
		for range 30 {
			classicFeed(t, e, bg)
		}
		got := classicFeed(t, e, classicFrame(w, h, 0, [4]int{150, 170, tc.y0, tc.y1})).Count
		e.Close()
		// Opening trims the blob's four corner pixels.
		want := expect(tc.y0, tc.y1)
		if math.Abs(got-want) > 0.03*want {
			t.Errorf("blob at rows %d..%d counts %.3f, want %.3f ± 3%%", tc.y0, tc.y1, got, want)
		}
	}
}

func TestClassicCalibrationPerspective(t *testing.T) {
	// A plaza 10 m wide and 20 m deep seen from its near edge: the far
	// edge spans the middle 40% of the picture at row 0.2.
	cal, err := NewCalibration([4][2]float64{{0.3, 0.2}, {0.7, 0.2}, {1, 1}, {0, 1}},
		[4][2]float64{{0, 20}, {10, 20}, {10, 0}, {0, 0}})
	if err != nil {
		t.Fatal(err)
	}
	const w, h, ppp = 320, 240, 400.0
	// groundPerPixel measures the ground area of one pixel at normalized
	// (x, v) from the corners of a small square around it.
	groundPerPixel := func(x, v float64) float64 {
		const d = 0.5
		var p [4][2]float64
		for i, c := range [4][2]float64{{-d, -d}, {d, -d}, {d, d}, {-d, d}} {
			gx, gy, ok := cal.ToGround(x+c[0]/w, v+c[1]/h)
			if !ok {
				t.Fatalf("(%g, %g) is above the horizon", x, v)
			}
			p[i] = [2]float64{gx, gy}
		}
		var a float64
		for i := range p {
			j := (i + 1) % 4
			a += p[i][0]*p[j][1] - p[j][0]*p[i][1]
		}
		return math.Abs(a) / 2
	}
	ref := groundPerPixel(0.5, 0.5)
	for _, tc := range []struct{ y0, y1 int }{{110, 130}, {60, 80}, {180, 200}} {
		e, err := NewClassicEstimator(ClassicConfig{Camera: "cal", PixelsPerPerson: ppp, ReferenceRow: 0.5, Calibration: cal})
		if err != nil {
			t.Fatal(err)
		}
		bg := classicFrame(w, h, 0, [4]int{})
		for range 30 {
			classicFeed(t, e, bg)
		}
		got := classicFeed(t, e, classicFrame(w, h, 0, [4]int{150, 170, tc.y0, tc.y1})).Count
		e.Close()
		var want float64
		for y := tc.y0; y < tc.y1; y++ {
			want += 20 * groundPerPixel(160.0/w, (float64(y)+0.5)/h) / ref / ppp
		}
		if math.Abs(got-want) > 0.03*want {
			t.Errorf("blob at rows %d..%d counts %.3f, want %.3f ± 3%% (ground area per pixel relative to row 0.5)", tc.y0, tc.y1, got, want)
		}
	}
	// A reference row above the horizon is refused: with the far edge
	// spanning 20% at row 0.3, the sides meet at row 0.125.
	steep, err := NewCalibration([4][2]float64{{0.4, 0.3}, {0.6, 0.3}, {1, 1}, {0, 1}},
		[4][2]float64{{0, 20}, {10, 20}, {10, 0}, {0, 0}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewClassicEstimator(ClassicConfig{Camera: "cal", PixelsPerPerson: ppp, ReferenceRow: 0.1, Calibration: steep}); err == nil {
		t.Error("a reference row above the horizon was accepted")
	}
	e, err := NewClassicEstimator(ClassicConfig{Camera: "cal", PixelsPerPerson: ppp, ReferenceRow: 0.5, Calibration: steep})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	// Foreground above the horizon (a far head) takes the capped weight of
	// the pixels below it: finite, and at most 100 per pixel.
	bg := classicFrame(w, h, 0, [4]int{})
	for range 30 {
		classicFeed(t, e, bg)
	}
	got := classicFeed(t, e, classicFrame(w, h, 0, [4]int{150, 170, 5, 25})).Count
	if !(got > 0) || got > 400*classicMaxWeight/ppp {
		t.Errorf("blob above the horizon counts %v, want a positive count within the weight cap", got)
	}
}

func TestClassicConfigErrors(t *testing.T) {
	for name, cfg := range map[string]ClassicConfig{
		"no calibration":     {Camera: "x"},
		"horizon below ref":  {Camera: "x", PixelsPerPerson: 100, ReferenceRow: 0.5, HorizonRow: 0.6},
		"bad row weight":     {Camera: "x", PixelsPerPerson: 100, RowWeights: []float64{1, 0}},
		"reference past end": {Camera: "x", PixelsPerPerson: 100, ReferenceRow: 1.5},
	} {
		if _, err := NewClassicEstimator(cfg); err == nil || !strings.Contains(err.Error(), `"x"`) {
			t.Errorf("%s: got %v, want an error naming the camera", name, err)
		}
	}
}

// classicReadCounts reads the hand counts: frame index → people.
func classicReadCounts(t *testing.T) map[int64]float64 {
	t.Helper()
	f, err := os.Open(classicVtestCounts)
	if err != nil {
		return nil
	}
	defer f.Close()
	out := make(map[int64]float64)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "frame") {
			continue
		}
		a, b, ok := strings.Cut(line, ",")
		fi, err1 := strconv.ParseInt(a, 10, 64)
		n, err2 := strconv.ParseFloat(b, 64)
		if !ok || err1 != nil || err2 != nil {
			t.Fatalf("%s: bad line %q", classicVtestCounts, line)
		}
		out[fi] = n
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestClassicVtest(t *testing.T) {
	e, err := NewClassicEstimator(classicVtestConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	truth := classicReadCounts(t)
	counts := make(map[int64]float64)
	classicEachVtestFrame(t, 400, func(f *ingest.Frame) {
		est := classicFeed(t, e, f)
		counts[f.Index] = est.Count
	})
	if len(counts) < 400 {
		t.Fatalf("decoded %d frames, want 400", len(counts))
	}
	// After a few seconds of warm-up, people walk across the plaza in
	// every frame of the clip's first 40 s.
	for i := int64(50); i < 400; i += 10 {
		if counts[i] < 0.5 {
			t.Errorf("frame %d: %.2f people, want some", i, counts[i])
		}
	}
	if truth == nil {
		t.Logf("no hand counts at %s: MAE not measured", classicVtestCounts)
		return
	}
	var frames []int64
	for fi := range truth {
		if fi >= 50 && fi < 400 { // past warm-up, within what was decoded
			frames = append(frames, fi)
		}
	}
	slices.Sort(frames)
	if len(frames) == 0 {
		t.Fatalf("no hand-counted frames between 50 and 399 in %s", classicVtestCounts)
	}
	var sumAbs, sumErr float64
	for _, fi := range frames {
		got, want := counts[fi], truth[fi]
		t.Logf("frame %3d: classic %.2f, hand count %.0f", fi, got, want)
		sumAbs += math.Abs(got - want)
		sumErr += got - want
	}
	n := float64(len(frames))
	mae := sumAbs / n
	t.Logf("classic estimator on vtest: MAE %.2f people, mean error %+.2f, over %d hand-counted frames", mae, sumErr/n, len(frames))
	if mae > 3 {
		t.Errorf("MAE %.2f people, want at most 3 (counts are 5 to 8)", mae)
	}
}

func TestClassicScheduler(t *testing.T) {
	schedNoLeaks(t)
	// Each camera brings its own classic estimator; the scheduler has no
	// shared one.
	vt, err := NewClassicEstimator(classicVtestConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer vt.Close()
	still, err := NewClassicEstimator(ClassicConfig{Camera: "still", PixelsPerPerson: 500})
	if err != nil {
		t.Fatal(err)
	}
	defer still.Close()
	s, err := NewScheduler(nil, SchedulerConfig{BatchSize: 4, BatchWait: 10 * time.Millisecond, QueuePerCamera: 2})
	if err != nil {
		t.Fatal(err)
	}
	camV, err := s.AddCamera(CameraConfig{Name: "vtest", Estimator: vt})
	if err != nil {
		t.Fatal(err)
	}
	camS, err := s.AddCamera(CameraConfig{Name: "still", Estimator: still})
	if err != nil {
		t.Fatal(err)
	}
	stop := schedRun(t, s)

	type seen struct {
		index int64
		count float64
	}
	var mu sync.Mutex
	got := make(map[string][]seen)
	done := func(r Result) {
		if r.Err != nil {
			t.Errorf("camera %s: %v", r.Camera, r.Err)
			return
		}
		if !r.Estimate.Classic {
			t.Errorf("camera %s: estimate not marked classic", r.Camera)
		}
		mu.Lock()
		got[r.Camera] = append(got[r.Camera], seen{r.Frame.Index, r.Estimate.Count})
		mu.Unlock()
	}
	const n = 120
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range n {
			f := classicFrame(320, 240, 0, [4]int{})
			f.Index = int64(i)
			if err := camS.SubmitWait(context.Background(), f, done); err != nil {
				t.Error(err)
				return
			}
		}
	})
	// vtest frames come from the pool of the file source: copy each, as
	// the scheduler releases what it is given.
	classicEachVtestFrame(t, n, func(f *ingest.Frame) {
		c := &ingest.Frame{Width: f.Width, Height: f.Height, Stride: f.Stride, Index: f.Index, Pix: append([]byte(nil), f.Pix...)}
		if err := camV.SubmitWait(context.Background(), c, done); err != nil {
			t.Fatal(err)
		}
	})
	wg.Wait()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		mu.Lock()
		all := len(got["vtest"]) + len(got["still"])
		mu.Unlock()
		if all == 2*n || time.Now().After(deadline) {
			break
		}
	}
	stop()
	for _, name := range []string{"vtest", "still"} {
		rs := got[name]
		if len(rs) != n {
			t.Fatalf("camera %s: %d results, want %d", name, len(rs), n)
		}
		for i, r := range rs {
			if r.index != int64(i) {
				t.Fatalf("camera %s: result %d is frame %d: results out of order", name, i, r.index)
			}
		}
	}
	if c := got["vtest"][n-1].count; c < 0.5 {
		t.Fatalf("vtest frame %d: %.2f people, want some", n-1, c)
	}
	if c := got["still"][n-1].count; c > 0.01 {
		t.Fatalf("still camera: %.3f people, want none", c)
	}
}
