package vision

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sort"
	"sync"
	"time"

	"flowwatch/internal/store"
)

// Heatmap defaults.
const (
	// DefaultHeatmapCols is the width of a heatmap grid in cells when the
	// configuration leaves it out.
	DefaultHeatmapCols = 64
	// DefaultHeatmapHalfLife is how long a frame takes to lose half its
	// weight in a live heatmap when the configuration leaves it out.
	DefaultHeatmapHalfLife = 30 * time.Second
	// HeatmapBucketSpan is the length of a historical heatmap bucket.
	// Buckets start at multiples of it since the Unix epoch.
	HeatmapBucketSpan = 5 * time.Minute
)

// HeatmapGrid is a heatmap over one camera's picture: the average number of
// people in each cell of a fixed grid over a time span. It is also the JSON
// form the console serves.
type HeatmapGrid struct {
	// Camera names the camera.
	Camera string `json:"camera"`
	// From and To bound the time the grid covers.
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// Cols and Rows are the grid size; the grid spans the whole picture.
	Cols int `json:"cols"`
	Rows int `json:"rows"`
	// Frames is the number of frames averaged.
	Frames int64 `json:"frames"`
	// Max is the largest value in Data.
	Max float32 `json:"max"`
	// Data holds Rows rows of Cols values: people per cell, on average.
	Data []float32 `json:"data"`
}

// heatmapGridSize returns the grid for a frame of frameW x frameH: cols
// (DefaultHeatmapCols when 0) by rows, where rows 0 keeps the frame's aspect
// ratio.
func heatmapGridSize(cols, rows, frameW, frameH int) (int, int) {
	if cols <= 0 {
		cols = DefaultHeatmapCols
	}
	if rows <= 0 {
		rows = max(1, int(math.Round(float64(cols)*float64(frameH)/float64(frameW))))
	}
	return cols, rows
}

// heatSpan is the share frac of a source cell's mass that lands in target
// cell idx.
type heatSpan struct {
	idx  int
	frac float64
}

// heatSpans splits each of n source cells of size cell along one axis over
// m target cells that tile [0, extent). Each source cell's shares sum to 1:
// a cell partly outside the extent gives all of its mass to the part
// inside, and a cell wholly outside gives it to the nearest target cell.
func heatSpans(n int, cell, extent float64, m int) [][]heatSpan {
	tw := extent / float64(m)
	out := make([][]heatSpan, n)
	for i := range n {
		lo := max(float64(i)*cell, 0)
		hi := min(float64(i+1)*cell, extent)
		if hi <= lo {
			j := int(math.Floor((float64(i) + 0.5) * cell / tw))
			out[i] = []heatSpan{{idx: min(max(j, 0), m-1), frac: 1}}
			continue
		}
		j0 := min(max(int(math.Floor(lo/tw)), 0), m-1)
		j1 := min(max(int(math.Ceil(hi/tw))-1, j0), m-1)
		spans := make([]heatSpan, 0, j1-j0+1)
		var total float64
		for j := j0; j <= j1; j++ {
			ov := min(hi, float64(j+1)*tw) - max(lo, float64(j)*tw)
			if ov > 0 {
				spans = append(spans, heatSpan{idx: j, frac: ov})
				total += ov
			}
		}
		if total == 0 {
			spans = append(spans[:0], heatSpan{idx: j0, frac: 1})
			total = 1
		}
		for k := range spans {
			spans[k].frac /= total
		}
		out[i] = spans
	}
	return out
}

// ResampleMass spreads density map m, laid over a frame of frameW x frameH
// pixels, onto a grid of cols x rows cells covering that frame, by the area
// each map cell shares with each grid cell. Mass is preserved: the grid sums
// to m.Sum() (up to float32 rounding). Map cells reaching past the frame
// give their mass to the part inside it.
func ResampleMass(m *DensityMap, frameW, frameH, cols, rows int) ([]float32, error) {
	switch {
	case m == nil:
		return nil, errors.New("vision: resample density: no map")
	case m.Cols <= 0 || m.Rows <= 0 || len(m.Data) != m.Cols*m.Rows:
		return nil, fmt.Errorf("vision: resample density: map %dx%d holds %d values", m.Cols, m.Rows, len(m.Data))
	case !(m.CellW > 0) || !(m.CellH > 0):
		return nil, fmt.Errorf("vision: resample density: map cell %gx%g is not positive", m.CellW, m.CellH)
	case frameW <= 0 || frameH <= 0:
		return nil, fmt.Errorf("vision: resample density: frame %dx%d is not positive", frameW, frameH)
	case cols <= 0 || rows <= 0:
		return nil, fmt.Errorf("vision: resample density: grid %dx%d is not positive", cols, rows)
	}
	sx := heatSpans(m.Cols, m.CellW, float64(frameW), cols)
	sy := heatSpans(m.Rows, m.CellH, float64(frameH), rows)
	// Along x first, into one row of the grid per map row, then along y.
	tmp := make([]float64, m.Rows*cols)
	for r := range m.Rows {
		src := m.Data[r*m.Cols : (r+1)*m.Cols]
		dst := tmp[r*cols : (r+1)*cols]
		for c, v := range src {
			if v == 0 {
				continue
			}
			for _, s := range sx[c] {
				dst[s.idx] += float64(v) * s.frac
			}
		}
	}
	acc := make([]float64, rows*cols)
	for r := range m.Rows {
		src := tmp[r*cols : (r+1)*cols]
		for _, s := range sy[r] {
			dst := acc[s.idx*cols : (s.idx+1)*cols]
			for i, v := range src {
				dst[i] += v * s.frac
			}
		}
	}
	out := make([]float32, len(acc))
	for i, v := range acc {
		out[i] = float32(v)
	}
	return out, nil
}

// LiveHeatmapConfig configures a LiveHeatmap.
type LiveHeatmapConfig struct {
	// Camera names the camera, for the grid and errors.
	Camera string
	// HalfLife is how long a frame takes to lose half its weight.
	// Default DefaultHeatmapHalfLife.
	HalfLife time.Duration
	// Cols and Rows size the grid. Cols 0 means DefaultHeatmapCols; Rows 0
	// keeps the aspect ratio of the first frame.
	Cols, Rows int
}

// LiveHeatmap is a camera's recent density: per cell, a time-weighted
// average of the frames' densities in which each frame counts for the time
// until the next frame, and that weight halves every half-life. Since the
// weights are times, the result does not depend on the frame rate: after a
// long steady density D, one half-life of empty frames leaves D/2 whether
// it took one frame or a hundred; and since the average is normalised by
// the weight seen so far, a young heatmap is the plain time average of its
// frames rather than its first frame. It is safe for concurrent use.
type LiveHeatmap struct {
	cfg LiveHeatmapConfig

	mu          sync.Mutex
	cols, rows  int       // fixed by the first frame
	sum         []float64 // decayed, time-weighted sum per cell of held frames
	weight      float64   // the same sum of weights: 1 - 2^(-held time/half-life)
	held        []float64 // the latest frame, which counts once the next arrives
	first, last time.Time
	frames      int64
}

// NewLiveHeatmap checks cfg and returns an empty live heatmap.
func NewLiveHeatmap(cfg LiveHeatmapConfig) (*LiveHeatmap, error) {
	if cfg.HalfLife == 0 {
		cfg.HalfLife = DefaultHeatmapHalfLife
	}
	if cfg.HalfLife < 0 || cfg.Cols < 0 || cfg.Rows < 0 {
		return nil, fmt.Errorf("vision: live heatmap of camera %q: half-life %s and grid %dx%d must not be negative",
			cfg.Camera, cfg.HalfLife, cfg.Cols, cfg.Rows)
	}
	return &LiveHeatmap{cfg: cfg}, nil
}

// Add folds the density m of a frame of frameW x frameH pixels, seen at
// time at, into the heatmap: the previous frame now counts for the time
// between the two. A frame stamped no later than the previous one replaces
// it without the previous one counting.
func (h *LiveHeatmap) Add(at time.Time, m *DensityMap, frameW, frameH int) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	cols, rows := h.cols, h.rows
	if h.held == nil && frameW > 0 && frameH > 0 {
		cols, rows = heatmapGridSize(h.cfg.Cols, h.cfg.Rows, frameW, frameH)
	}
	cells, err := ResampleMass(m, frameW, frameH, cols, rows)
	if err != nil {
		return fmt.Errorf("live heatmap of camera %q: %w", h.cfg.Camera, err)
	}
	if h.held == nil {
		h.cols, h.rows = cols, rows
		h.sum = make([]float64, len(cells))
		h.held = make([]float64, len(cells))
		h.first, h.last = at, at
	} else if dt := at.Sub(h.last); dt > 0 {
		// The held frame's weight, 1 - 2^(-dt/half-life), kept precise
		// for intervals much shorter than the half-life.
		w := -math.Expm1(-math.Ln2 * dt.Seconds() / h.cfg.HalfLife.Seconds())
		for i, v := range h.held {
			h.sum[i] = h.sum[i]*(1-w) + v*w
		}
		h.weight = h.weight*(1-w) + w
		h.last = at
	}
	for i, v := range cells {
		h.held[i] = float64(v)
	}
	h.frames++
	return nil
}

// Grid returns a copy of the heatmap: the average so far, or the only
// frame while no time has passed; a grid of no cells before the first
// frame.
func (h *LiveHeatmap) Grid() HeatmapGrid {
	h.mu.Lock()
	defer h.mu.Unlock()
	g := HeatmapGrid{Camera: h.cfg.Camera, From: h.first, To: h.last, Cols: h.cols, Rows: h.rows,
		Frames: h.frames, Data: make([]float32, len(h.held))}
	for i := range g.Data {
		v := h.held[i]
		if h.weight > 0 {
			v = h.sum[i] / h.weight
		}
		g.Data[i] = float32(v)
		g.Max = max(g.Max, g.Data[i])
	}
	return g
}

// HeatmapWriter stores parts of heatmap buckets, adding each to what the
// bucket already holds (*store.Store implements it).
type HeatmapWriter interface {
	AddHeatmapBucket(ctx context.Context, b store.HeatmapBucket) error
}

// HeatmapReader sums stored heatmap buckets over a time range
// (*store.Store implements it).
type HeatmapReader interface {
	SumHeatmap(ctx context.Context, camera string, from, to time.Time) (store.HeatmapSum, error)
}

// HeatmapHistoryConfig configures a HeatmapHistory.
type HeatmapHistoryConfig struct {
	// Store receives the buckets. Required.
	Store HeatmapWriter
	// Cols and Rows size every camera's grid. Cols 0 means
	// DefaultHeatmapCols; Rows 0 keeps the aspect ratio of the camera's
	// first frame. A camera's stored buckets must keep one grid size to be
	// summed, so a deployment should not change these once it has history.
	Cols, Rows int
	// FlushEvery is how often Run writes what was gathered. Default one
	// minute.
	FlushEvery time.Duration
	// MaxPending bounds the buckets a camera keeps in memory while the
	// store fails; beyond it the oldest bucket is dropped (and logged).
	// Default 12 (an hour).
	MaxPending int
	// Logger receives flush failures and dropped buckets; nil means
	// slog.Default().
	Logger *slog.Logger
}

// HeatmapHistory gathers every camera's density per HeatmapBucketSpan
// bucket in memory and writes it to the store in parts (Flush, or Run
// periodically); the store adds the parts up. Add never touches the store,
// so it is cheap enough for the path that delivers estimates. It is safe
// for concurrent use.
type HeatmapHistory struct {
	cfg HeatmapHistoryConfig
	log *slog.Logger

	flushMu sync.Mutex // one Flush at a time

	mu      sync.Mutex
	cams    map[string]*heatCamera
	dropped int64
}

// heatCamera is one camera's unwritten buckets.
type heatCamera struct {
	cols, rows int
	buckets    []*heatBucket // oldest first, distinct starts
}

// heatBucket is the unwritten part of one bucket.
type heatBucket struct {
	start  time.Time
	frames int64
	sum    []float64
}

// NewHeatmapHistory checks cfg and returns an empty history.
func NewHeatmapHistory(cfg HeatmapHistoryConfig) (*HeatmapHistory, error) {
	if cfg.Store == nil {
		return nil, errors.New("vision: heatmap history: no store")
	}
	if cfg.Cols < 0 || cfg.Rows < 0 || cfg.FlushEvery < 0 || cfg.MaxPending < 0 {
		return nil, fmt.Errorf("vision: heatmap history: grid %dx%d, flush interval %s and pending bound %d must not be negative",
			cfg.Cols, cfg.Rows, cfg.FlushEvery, cfg.MaxPending)
	}
	if cfg.FlushEvery == 0 {
		cfg.FlushEvery = time.Minute
	}
	if cfg.MaxPending == 0 {
		cfg.MaxPending = 12
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &HeatmapHistory{cfg: cfg, log: log, cams: make(map[string]*heatCamera)}, nil
}

// HeatmapBucketStart returns the start of the bucket holding t.
func HeatmapBucketStart(t time.Time) time.Time {
	span := int64(HeatmapBucketSpan / time.Second)
	s := t.Unix()
	return time.Unix(s-((s%span)+span)%span, 0)
}

// Add sums the density m of a frame of camera, frameW x frameH pixels seen
// at time at, into the bucket holding at.
func (h *HeatmapHistory) Add(camera string, at time.Time, m *DensityMap, frameW, frameH int) error {
	if camera == "" {
		return errors.New("vision: heatmap history: empty camera name")
	}
	h.mu.Lock()
	cam := h.cams[camera]
	h.mu.Unlock()
	var cols, rows int
	if cam != nil {
		cols, rows = cam.cols, cam.rows
	} else if frameW > 0 && frameH > 0 {
		cols, rows = heatmapGridSize(h.cfg.Cols, h.cfg.Rows, frameW, frameH)
	}
	cells, err := ResampleMass(m, frameW, frameH, max(cols, 1), max(rows, 1))
	if err != nil {
		return fmt.Errorf("heatmap history of camera %q: %w", camera, err)
	}
	start := HeatmapBucketStart(at)
	h.mu.Lock()
	defer h.mu.Unlock()
	if cam = h.cams[camera]; cam == nil {
		cam = &heatCamera{cols: cols, rows: rows}
		h.cams[camera] = cam
	} else if cam.cols != cols || cam.rows != rows {
		// Another Add created the camera with another grid meanwhile.
		return fmt.Errorf("vision: heatmap history of camera %q: the camera's grid is %dx%d, this frame was resampled to %dx%d",
			camera, cam.cols, cam.rows, cols, rows)
	}
	b := h.bucketLocked(camera, cam, start)
	for i, v := range cells {
		b.sum[i] += float64(v)
	}
	b.frames++
	return nil
}

// bucketLocked returns cam's unwritten bucket starting at start, creating
// it in order and dropping the oldest beyond MaxPending.
func (h *HeatmapHistory) bucketLocked(camera string, cam *heatCamera, start time.Time) *heatBucket {
	i := sort.Search(len(cam.buckets), func(i int) bool { return !cam.buckets[i].start.Before(start) })
	if i < len(cam.buckets) && cam.buckets[i].start.Equal(start) {
		return cam.buckets[i]
	}
	b := &heatBucket{start: start, sum: make([]float64, cam.cols*cam.rows)}
	cam.buckets = append(cam.buckets, nil)
	copy(cam.buckets[i+1:], cam.buckets[i:])
	cam.buckets[i] = b
	for len(cam.buckets) > h.cfg.MaxPending {
		old := cam.buckets[0]
		cam.buckets = cam.buckets[1:]
		h.dropped++
		h.log.Warn("heatmap bucket dropped unwritten", "camera", camera,
			"bucket", old.start.UTC().Format(time.RFC3339), "frames", old.frames, "pending_max", h.cfg.MaxPending)
	}
	return b
}

// Dropped returns how many buckets were dropped unwritten because the store
// kept failing.
func (h *HeatmapHistory) Dropped() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.dropped
}

// Flush writes everything gathered so far. Parts the store refuses stay
// gathered for the next Flush; the error names the first of them.
func (h *HeatmapHistory) Flush(ctx context.Context) error {
	h.flushMu.Lock()
	defer h.flushMu.Unlock()
	type part struct {
		camera     string
		cols, rows int
		b          *heatBucket
	}
	var parts []part
	h.mu.Lock()
	for name, cam := range h.cams {
		for _, b := range cam.buckets {
			if b.frames > 0 {
				parts = append(parts, part{name, cam.cols, cam.rows, b})
			}
		}
		cam.buckets = nil
	}
	h.mu.Unlock()
	var errs []error
	for _, p := range parts {
		data := make([]float32, len(p.b.sum))
		for i, v := range p.b.sum {
			data[i] = float32(v)
		}
		err := h.cfg.Store.AddHeatmapBucket(ctx, store.HeatmapBucket{Camera: p.camera, Start: p.b.start,
			Cols: p.cols, Rows: p.rows, Frames: p.b.frames, Data: data})
		if err == nil {
			continue
		}
		errs = append(errs, err)
		// Keep the part: add it back into whatever gathered meanwhile.
		h.mu.Lock()
		cam := h.cams[p.camera]
		b := h.bucketLocked(p.camera, cam, p.b.start)
		for i, v := range p.b.sum {
			b.sum[i] += v
		}
		b.frames += p.b.frames
		h.mu.Unlock()
	}
	if len(errs) > 0 {
		return fmt.Errorf("vision: heatmap history: %d of %d bucket parts not written: %w", len(errs), len(parts), errs[0])
	}
	return nil
}

// Run flushes every FlushEvery until ctx ends, then flushes once more
// (with up to ten seconds for it) and returns that last flush's error.
// Failed flushes before that are logged and retried at the next tick.
func (h *HeatmapHistory) Run(ctx context.Context) error {
	tick := time.NewTicker(h.cfg.FlushEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			return h.Flush(fctx)
		case <-tick.C:
			if err := h.Flush(ctx); err != nil && ctx.Err() == nil {
				h.log.Warn("heatmap flush failed", "err", err)
			}
		}
	}
}

// HeatmapRange reads camera's stored heatmap for the buckets starting in
// [from, to) and returns the average people per cell over those frames.
// With no frames stored it returns a grid of no cells.
func HeatmapRange(ctx context.Context, r HeatmapReader, camera string, from, to time.Time) (HeatmapGrid, error) {
	sum, err := r.SumHeatmap(ctx, camera, from, to)
	if err != nil {
		return HeatmapGrid{}, fmt.Errorf("vision: heatmap of camera %q: %w", camera, err)
	}
	g := HeatmapGrid{Camera: camera, From: from, To: to, Frames: sum.Frames, Data: []float32{}}
	if sum.Frames <= 0 || len(sum.Data) == 0 {
		return g, nil
	}
	g.Cols, g.Rows = sum.Cols, sum.Rows
	g.Data = make([]float32, len(sum.Data))
	for i, v := range sum.Data {
		g.Data[i] = float32(v / float64(sum.Frames))
		g.Max = max(g.Max, g.Data[i])
	}
	return g, nil
}
