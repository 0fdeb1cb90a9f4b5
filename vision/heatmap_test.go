package vision

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image/png"
	"log/slog"
	"math"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"flowwatch/ingest"
	"flowwatch/internal/store"
)

// heatSum adds up v.
func heatSum(v []float32) float64 {
	var s float64
	for _, x := range v {
		s += float64(x)
	}
	return s
}

func TestHeatmapResampleKnownSplit(t *testing.T) {
	// A 2x2 map of 10 px cells over a 20x20 frame, onto 4x4 cells of 5 px:
	// each map cell splits evenly into the four grid cells it covers.
	m := &DensityMap{Cols: 2, Rows: 2, CellW: 10, CellH: 10, Data: []float32{4, 8, 12, 16}}
	got, err := ResampleMass(m, 20, 20, 4, 4)
	if err != nil {
		t.Fatal(err)
	}
	want := []float32{1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("grid %v, want %v", got, want)
		}
	}
	// A map reaching past the frame keeps its mass inside: the right
	// column of cells is half outside a 15 px wide frame, so its mass all
	// lands in the grid's right cell.
	got, err = ResampleMass(m, 15, 20, 3, 1)
	if err != nil {
		t.Fatal(err)
	}
	// Column 0 (4+12) covers grid cells 0 and 1 (5 px each); column 1
	// (8+16) covers [10, 15) inside the frame: cell 2.
	if got[0] != 8 || got[1] != 8 || got[2] != 24 {
		t.Fatalf("clipped grid %v, want [8 8 24]", got)
	}
}

func TestHeatmapResampleMassPreserved(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 200 {
		mc, mr := 1+rng.IntN(90), 1+rng.IntN(70)
		fw, fh := 16+rng.IntN(2000), 16+rng.IntN(1200)
		// Cells from a bit smaller to a bit larger than an exact fit,
		// as stride and padding make them.
		cw := float64(fw) / float64(mc) * (0.8 + 0.4*rng.Float64())
		ch := float64(fh) / float64(mr) * (0.8 + 0.4*rng.Float64())
		m := &DensityMap{Cols: mc, Rows: mr, CellW: cw, CellH: ch, Data: make([]float32, mc*mr)}
		for i := range m.Data {
			if rng.IntN(3) == 0 {
				m.Data[i] = float32(rng.ExpFloat64() * 0.05)
			}
		}
		cols, rows := 1+rng.IntN(100), 1+rng.IntN(60)
		got, err := ResampleMass(m, fw, fh, cols, rows)
		if err != nil {
			t.Fatal(err)
		}
		want := m.Sum()
		if diff := math.Abs(heatSum(got) - want); diff > 1e-5*max(want, 1) {
			t.Fatalf("trial %d: map %dx%d cells %.2fx%.2f over %dx%d onto %dx%d: mass %.6f, want %.6f",
				trial, mc, mr, cw, ch, fw, fh, cols, rows, heatSum(got), want)
		}
	}
	if _, err := ResampleMass(&DensityMap{Cols: 2, Rows: 2, CellW: 1, CellH: 1, Data: []float32{1}}, 2, 2, 2, 2); err == nil {
		t.Fatal("a map with too few values was accepted")
	}
}

// heatUniform returns a 4x3 map of 10 px cells over a 40x30 frame with v
// in every cell.
func heatUniform(v float32) *DensityMap {
	m := &DensityMap{Cols: 4, Rows: 3, CellW: 10, CellH: 10, Data: make([]float32, 12)}
	for i := range m.Data {
		m.Data[i] = v
	}
	return m
}

func TestHeatmapLiveHalfLife(t *testing.T) {
	const half = 10 * time.Second
	t0 := time.Unix(1_700_000_000, 0)
	for _, steps := range []int{1, 10, 100} {
		h, err := NewLiveHeatmap(LiveHeatmapConfig{Camera: "plaza", HalfLife: half, Cols: 8})
		if err != nil {
			t.Fatal(err)
		}
		// Twenty half-lives of 2 people per map cell (24 in all), one
		// frame a second.
		at := t0
		for range 200 {
			if err := h.Add(at, heatUniform(2), 40, 30); err != nil {
				t.Fatal(err)
			}
			at = at.Add(time.Second)
		}
		g := h.Grid()
		if g.Cols != 8 || g.Rows != 6 || math.Abs(heatSum(g.Data)-24) > 1e-4 {
			t.Fatalf("steady: %dx%d grid of mass %.4f, want 8x6 (aspect kept) holding 24", g.Cols, g.Rows, heatSum(g.Data))
		}
		// Empty frames from at to at+half, in however many steps, halve
		// it (up to the 2^-20 of weight not yet seen).
		for i := 0; i <= steps; i++ {
			if err := h.Add(at.Add(time.Duration(i)*half/time.Duration(steps)), heatUniform(0), 40, 30); err != nil {
				t.Fatal(err)
			}
		}
		if got := heatSum(h.Grid().Data); math.Abs(got-12) > 1e-4 {
			t.Fatalf("%d steps over one half-life: mass %.5f, want 12", steps, got)
		}
		// And a second half-life halves it again.
		if err := h.Add(at.Add(2*half), heatUniform(0), 40, 30); err != nil {
			t.Fatal(err)
		}
		g = h.Grid()
		if got := heatSum(g.Data); math.Abs(got-6) > 1e-4 {
			t.Fatalf("%d steps, two half-lives: mass %.5f, want 6", steps, got)
		}
		if g.Frames != int64(200+steps+2) || !g.From.Equal(t0) || !g.To.Equal(at.Add(2*half)) || g.Camera != "plaza" {
			t.Fatalf("grid header %+v", g)
		}
	}
}

func TestHeatmapLiveYoungIsTimeAverage(t *testing.T) {
	// With a half-life far longer than the frames seen, the heatmap is
	// their time average, not its first frame: 1, 0, 1, 0, 1 a second
	// apart, the last not yet held, average 2 of 4 seconds at 1.
	h, err := NewLiveHeatmap(LiveHeatmapConfig{Camera: "hall", HalfLife: time.Hour, Cols: 4, Rows: 3})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(1_700_000_000, 0)
	if err := h.Add(t0, heatUniform(1), 40, 30); err != nil {
		t.Fatal(err)
	}
	if g := h.Grid(); g.Max != 1 {
		t.Fatalf("one frame: max %v, want the frame itself (1)", g.Max)
	}
	for i := 1; i < 5; i++ {
		if err := h.Add(t0.Add(time.Duration(i)*time.Second), heatUniform(float32((i+1)%2)), 40, 30); err != nil {
			t.Fatal(err)
		}
	}
	if g := h.Grid(); math.Abs(float64(g.Max)-0.5) > 1e-3 {
		t.Fatalf("young heatmap max %v, want the time average 0.5", g.Max)
	}
}

// heatFlakyWriter writes to a real store but refuses while failing is set,
// as a store with a full disk would.
type heatFlakyWriter struct {
	st      *store.Store
	mu      sync.Mutex
	failing bool
}

func (w *heatFlakyWriter) AddHeatmapBucket(ctx context.Context, b store.HeatmapBucket) error {
	w.mu.Lock()
	failing := w.failing
	w.mu.Unlock()
	if failing {
		return errors.New("disk full")
	}
	return w.st.AddHeatmapBucket(ctx, b)
}

func (w *heatFlakyWriter) set(failing bool) {
	w.mu.Lock()
	w.failing = failing
	w.mu.Unlock()
}

func heatStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "heat.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestHeatmapHistoryBucketsAndRange(t *testing.T) {
	schedNoLeaks(t)
	st := heatStore(t)
	w := &heatFlakyWriter{st: st}
	h, err := NewHeatmapHistory(HeatmapHistoryConfig{Store: w, Cols: 4, Rows: 3})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	t0 := time.Date(2025, 5, 1, 10, 0, 0, 0, time.UTC)
	// Bucket 10:00: 3 frames of 1 per cell, written in two parts.
	for i := range 2 {
		if err := h.Add("plaza", t0.Add(time.Duration(i)*time.Second), heatUniform(1), 40, 30); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := h.Add("plaza", t0.Add(4*time.Minute+59*time.Second), heatUniform(1), 40, 30); err != nil {
		t.Fatal(err)
	}
	// Bucket 10:05: 1 frame of 4 per cell, and bucket 10:10: 2 frames of
	// 2; the store fails for a while, so they wait in memory.
	w.set(true)
	if err := h.Add("plaza", t0.Add(5*time.Minute), heatUniform(4), 40, 30); err != nil {
		t.Fatal(err)
	}
	if err := h.Flush(ctx); err == nil {
		t.Fatal("Flush to a failing store reported no error")
	}
	for i := range 2 {
		if err := h.Add("plaza", t0.Add(10*time.Minute+time.Duration(i)*time.Second), heatUniform(2), 40, 30); err != nil {
			t.Fatal(err)
		}
	}
	// Another camera's frames stay apart.
	if err := h.Add("hall", t0, heatUniform(9), 40, 30); err != nil {
		t.Fatal(err)
	}
	w.set(false)
	// Run flushes once more when its context ends.
	rctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := h.Run(rctx); err != nil {
		t.Fatal(err)
	}

	buckets, err := st.HeatmapBuckets(ctx, "plaza", t0, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(buckets) != 3 || buckets[0].Frames != 3 || buckets[1].Frames != 1 || buckets[2].Frames != 2 {
		t.Fatalf("stored buckets %+v, want 3 buckets of 3, 1 and 2 frames", buckets)
	}
	// Per bucket, the sum of every cell is frames × value: a 4x3 grid
	// over the whole frame, each grid cell holding one map cell.
	for i, want := range []float32{3, 4, 4} {
		for _, v := range buckets[i].Data {
			if math.Abs(float64(v-want)) > 1e-5 {
				t.Fatalf("bucket %d cells %v, want all %v", i, buckets[i].Data, want)
			}
		}
	}
	// The range 10:00–10:10 holds 4 frames summing 3+4 per cell: 1.75 on
	// average.
	g, err := HeatmapRange(ctx, st, "plaza", t0, t0.Add(10*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if g.Frames != 4 || g.Cols != 4 || g.Rows != 3 || math.Abs(float64(g.Max)-1.75) > 1e-6 {
		t.Fatalf("range grid %+v, want 4 frames, 4x3, max 1.75", g)
	}
	for _, v := range g.Data {
		if math.Abs(float64(v)-1.75) > 1e-6 {
			t.Fatalf("range grid data %v, want all 1.75", g.Data)
		}
	}
	// The whole hour: (3·1 + 1·4 + 2·2) / 6 frames.
	g, err = HeatmapRange(ctx, st, "plaza", t0, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if g.Frames != 6 || math.Abs(float64(g.Data[5])-11.0/6) > 1e-6 {
		t.Fatalf("hour grid: %d frames, cell %v, want 6 and %v", g.Frames, g.Data[5], 11.0/6)
	}
	hall, err := HeatmapRange(ctx, st, "hall", t0, t0.Add(time.Hour))
	if err != nil || hall.Frames != 1 || hall.Max != 9 {
		t.Fatalf("hall grid %+v, %v; want 1 frame of 9", hall, err)
	}
	none, err := HeatmapRange(ctx, st, "nobody", t0, t0.Add(time.Hour))
	if err != nil || none.Frames != 0 || none.Data == nil {
		t.Fatalf("empty range %+v, %v; want no frames and an empty (not null) data list", none, err)
	}
}

func TestHeatmapHistoryBoundsPending(t *testing.T) {
	w := &heatFlakyWriter{st: heatStore(t), failing: true}
	h, err := NewHeatmapHistory(HeatmapHistoryConfig{Store: w, Cols: 2, Rows: 2, MaxPending: 3,
		Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2025, 5, 1, 10, 0, 0, 0, time.UTC)
	for i := range 5 {
		if err := h.Add("gate", t0.Add(time.Duration(i)*HeatmapBucketSpan), heatUniform(1), 40, 30); err != nil {
			t.Fatal(err)
		}
	}
	if h.Dropped() != 2 {
		t.Fatalf("%d buckets dropped, want 2 (5 buckets, 3 kept)", h.Dropped())
	}
	w.set(false)
	if err := h.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	b, err := w.st.HeatmapBuckets(context.Background(), "gate", t0, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 3 || !b[0].Start.Equal(t0.Add(2*HeatmapBucketSpan)) {
		t.Fatalf("stored %d buckets from %v, want the newest 3 from 10:10", len(b), b[0].Start)
	}
}

func TestHeatmapBucketStart(t *testing.T) {
	for in, want := range map[int64]int64{0: 0, 299: 0, 300: 300, 1_700_000_123: 1_700_000_100, -1: -300} {
		if got := HeatmapBucketStart(time.Unix(in, 5)).Unix(); got != want {
			t.Errorf("bucket of %d: %d, want %d", in, got, want)
		}
	}
}

func TestHeatmapJSON(t *testing.T) {
	g := HeatmapGrid{Camera: "plaza", From: time.Unix(0, 0).UTC(), To: time.Unix(300, 0).UTC(), Cols: 2, Rows: 1,
		Frames: 10, Max: 0.5, Data: []float32{0.25, 0.5}}
	b, err := json.Marshal(g)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"camera":"plaza","from":"1970-01-01T00:00:00Z","to":"1970-01-01T00:05:00Z","cols":2,"rows":1,"frames":10,"max":0.5,"data":[0.25,0.5]}`
	if string(b) != want {
		t.Fatalf("JSON %s\nwant %s", b, want)
	}
}

// heatSnapshot returns a uniform grey w x h frame with stride padding.
func heatSnapshot(w, h int) *ingest.Frame {
	f := &ingest.Frame{Width: w, Height: h, Stride: 3*w + 4, Pix: make([]byte, (3*w+4)*h)}
	for i := range f.Pix {
		f.Pix[i] = 128
	}
	return f
}

func TestHeatmapRenderPNG(t *testing.T) {
	// An 8x6 grid over a 320x240 snapshot: cell (2, 2) hot, (5, 3) warm,
	// the rest empty.
	g := HeatmapGrid{Camera: "plaza", Cols: 8, Rows: 6, Data: make([]float32, 48)}
	g.Data[2*8+2] = 4
	g.Data[3*8+5] = 1
	g.Max = 4
	pngBytes, err := RenderHeatmapPNG(g, heatSnapshot(320, 240), HeatmapRenderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(pngBytes))
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != 320 || b.Dy() != 240 {
		t.Fatalf("picture %v, want the snapshot's 320x240", b)
	}
	// redness at the centre of cell (c, r): red minus blue.
	redness := func(c, r int) int {
		cr, _, cb, _ := img.At(c*40+20, r*40+20).RGBA()
		return int(cr>>8) - int(cb>>8)
	}
	hot, warm, cold := redness(2, 2), redness(5, 3), redness(0, 5)
	if !(hot > warm+30 && hot > cold+30) {
		t.Fatalf("redness hot %d, warm %d, cold %d: the hot cell must be clearly redder", hot, warm, cold)
	}
	// An empty cell leaves the snapshot as it was.
	if r, gg, b, _ := img.At(20, 220).RGBA(); r>>8 != 128 || gg>>8 != 128 || b>>8 != 128 {
		t.Fatalf("empty cell pixel %d,%d,%d, want the snapshot's grey", r>>8, gg>>8, b>>8)
	}

	// Without a snapshot: the size the options give, the grid's aspect.
	pngBytes, err = RenderHeatmapPNG(g, nil, HeatmapRenderOptions{Width: 400, NoLegend: true})
	if err != nil {
		t.Fatal(err)
	}
	img, err = png.Decode(bytes.NewReader(pngBytes))
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != 400 || b.Dy() != 300 {
		t.Fatalf("picture without snapshot %v, want 400x300", b)
	}
	if _, err := RenderHeatmapPNG(HeatmapGrid{Camera: "x", Cols: 2, Rows: 2}, nil, HeatmapRenderOptions{}); err == nil {
		t.Fatal("a grid without data was rendered")
	}
}
