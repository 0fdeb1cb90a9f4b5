package vision

import (
	"context"
	"errors"
	"fmt"
	"image"
	"log/slog"
	"math"
	"sync"

	"gocv.io/x/gocv"

	"flowwatch/ingest"
)

// Classic estimator defaults.
const (
	// DefaultClassicWorkWidth is the width frames are shrunk to before
	// background subtraction.
	DefaultClassicWorkWidth = 320
	// DefaultClassicCellSize is the side of a density cell in pixels of
	// the shrunk frame.
	DefaultClassicCellSize = 8
	// DefaultClassicHistory is how many frames the background model
	// remembers.
	DefaultClassicHistory = 500
	// DefaultClassicVarThreshold is MOG2's threshold on the squared
	// Mahalanobis distance between a pixel and the background model.
	DefaultClassicVarThreshold = 16
	// classicMinScale bounds the linear row model: rows where a person
	// would be smaller than this fraction of their size at the reference
	// row (near or above the horizon) are weighted as if at this size.
	classicMinScale = 0.1
)

// ClassicConfig configures a ClassicEstimator for one camera.
//
// The estimator counts foreground pixels. A person covers PixelsPerPerson
// of them when standing at ReferenceRow; elsewhere a foreground pixel
// counts in proportion to the perspective weight of its row: the ratio of
// a person's pixel area at the reference row to their area at that row.
// The weights come, in this order of preference, from a ground-plane
// Calibration (the ground area a pixel covers, relative to that along
// ReferenceRow), from RowWeights, or from a linear row model: a person's
// pixel height is proportional to the distance of their row below
// HorizonRow, so the weight of row y is
// ((ReferenceRow-HorizonRow)/(y-HorizonRow))². Either way weights are
// capped at 100, where a person would be under a tenth of their reference
// size.
type ClassicConfig struct {
	// Camera names the camera, for logs and errors.
	Camera string
	// PixelsPerPerson is the calibration factor: how many foreground
	// pixels, in frame pixels, one person covers at ReferenceRow. Measure
	// it on a snapshot: a person's box area there times about 0.6.
	// Required.
	PixelsPerPerson float64
	// ReferenceRow is the normalized row (0 top, 1 bottom) where
	// PixelsPerPerson holds, in (0, 1]. 0 means 0.5.
	ReferenceRow float64
	// HorizonRow is the normalized row of the horizon for the linear row
	// model; negative when the horizon is above the picture. It must be
	// below ReferenceRow in value (above it in the picture). The default 0
	// puts the horizon at the top edge.
	HorizonRow float64
	// Calibration, when set, gives the perspective weights from its
	// perspective map (Calibration.PerspectiveMap): a pixel counts in
	// proportion to the ground area it covers, relative to the average
	// along ReferenceRow, which must lie below the horizon. Pixels at or
	// above the horizon take the weight of the nearest pixel below it in
	// their column.
	Calibration *Calibration
	// RowWeights, when set, replace the linear row model: the perspective
	// weights of len(RowWeights) equal horizontal bands from top to
	// bottom, interpolated linearly between band centres, 1 where
	// PixelsPerPerson holds. A single weight of 1 means no perspective
	// (a camera looking straight down).
	RowWeights []float64
	// WorkWidth is the width frames are shrunk to (never enlarged).
	// Default DefaultClassicWorkWidth.
	WorkWidth int
	// CellSize is the side of a density cell in pixels of the shrunk
	// frame. Default DefaultClassicCellSize.
	CellSize int
	// History is how many frames the background model remembers; a
	// person standing still longer than about that fades into the
	// background. Default DefaultClassicHistory.
	History int
	// VarThreshold is MOG2's foreground threshold. Default
	// DefaultClassicVarThreshold.
	VarThreshold float64
	// Logger receives a line when the background model starts afresh;
	// nil means slog.Default().
	Logger *slog.Logger
}

// ClassicEstimator estimates people without a model: MOG2 background
// subtraction on shrunk frames (shadows excluded), a morphological opening
// and closing to remove speckle and fill bodies, then foreground area per
// cell weighted by perspective and divided by the calibration factor.
// Its estimates say Classic: true.
//
// It keeps a background model of one camera stream, so each camera gets
// its own ClassicEstimator: Estimate takes its frames as that camera's
// next frames, in order. Give it to a Scheduler through
// CameraConfig.Estimator. A change of frame size starts the background
// model afresh.
//
// How rough it is: it counts moving foreground, not people. Anyone still
// for longer than the model's history disappears, groups that overlap
// count by their joint area, and the first frames after a start (or a
// size change) compare against a background that still holds whoever
// stood in the first frame. On the vtest clip, calibrated by eye from one
// frame, it is off by 1.2 people on average (overcounting by 1.0) on 7
// hand-counted frames of 5 to 8 people; TestClassicVtest measures it. Use
// it where no model fits, and calibrate it per camera.
type ClassicEstimator struct {
	cfg ClassicConfig
	log *slog.Logger

	mu       sync.Mutex
	closed   bool
	frameW   int // the frame size the model was built for; 0 before
	frameH   int
	workW    int
	workH    int
	cols     int
	rows     int
	rowW     []float64 // perspective weight per work row over pixels per person at work size
	pixW     []float64 // the same per work pixel, from a calibration; nil without one
	mog      gocv.BackgroundSubtractorMOG2
	hasMOG   bool
	small    gocv.Mat
	fg       gocv.Mat
	openK    gocv.Mat
	closeK   gocv.Mat
	packed   []byte
	cellSums []float64
}

// NewClassicEstimator checks cfg and returns an estimator for one camera.
func NewClassicEstimator(cfg ClassicConfig) (*ClassicEstimator, error) {
	if cfg.ReferenceRow == 0 {
		cfg.ReferenceRow = 0.5
	}
	if cfg.WorkWidth == 0 {
		cfg.WorkWidth = DefaultClassicWorkWidth
	}
	if cfg.CellSize == 0 {
		cfg.CellSize = DefaultClassicCellSize
	}
	if cfg.History == 0 {
		cfg.History = DefaultClassicHistory
	}
	if cfg.VarThreshold == 0 {
		cfg.VarThreshold = DefaultClassicVarThreshold
	}
	fail := func(format string, args ...any) (*ClassicEstimator, error) {
		return nil, fmt.Errorf("vision: classic estimator of camera %q: "+format, append([]any{cfg.Camera}, args...)...)
	}
	switch {
	case !(cfg.PixelsPerPerson > 0) || math.IsInf(cfg.PixelsPerPerson, 0):
		return fail("pixels per person %g must be positive", cfg.PixelsPerPerson)
	case !(cfg.ReferenceRow > 0 && cfg.ReferenceRow <= 1):
		return fail("reference row %g must be in (0, 1]", cfg.ReferenceRow)
	case cfg.Calibration != nil && !classicBelowHorizon(cfg.Calibration, cfg.ReferenceRow):
		return fail("reference row %g is not below the calibration's horizon all across the picture", cfg.ReferenceRow)
	case cfg.Calibration == nil && len(cfg.RowWeights) == 0 && (!(cfg.HorizonRow < cfg.ReferenceRow) || math.IsInf(cfg.HorizonRow, 0)):
		return fail("horizon row %g must be finite and above the reference row %g", cfg.HorizonRow, cfg.ReferenceRow)
	case cfg.WorkWidth < 16 || cfg.CellSize < 1 || cfg.CellSize > cfg.WorkWidth:
		return fail("work width %d must be at least 16 and cell size %d between 1 and it", cfg.WorkWidth, cfg.CellSize)
	case cfg.History < 1 || !(cfg.VarThreshold > 0):
		return fail("history %d and var threshold %g must be positive", cfg.History, cfg.VarThreshold)
	}
	for i, w := range cfg.RowWeights {
		if !(w > 0) || math.IsInf(w, 0) {
			return fail("row weight %d is %g, must be positive", i, w)
		}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &ClassicEstimator{
		cfg:    cfg,
		log:    log,
		small:  gocv.NewMat(),
		fg:     gocv.NewMat(),
		openK:  gocv.GetStructuringElement(gocv.MorphEllipse, image.Pt(3, 3)),
		closeK: gocv.GetStructuringElement(gocv.MorphEllipse, image.Pt(5, 5)),
	}, nil
}

// Info implements Estimator.
func (e *ClassicEstimator) Info() EstimatorInfo {
	return EstimatorInfo{Backend: "classic", Task: TaskClassic}
}

// Estimate implements Estimator: it takes frames as the camera's next
// frames, in order, updating the background model with each.
func (e *ClassicEstimator) Estimate(ctx context.Context, frames []*ingest.Frame) ([]Estimate, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, fmt.Errorf("vision: classic estimator of camera %q: closed", e.cfg.Camera)
	}
	out := make([]Estimate, len(frames))
	for i, f := range frames {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		est, err := e.one(f)
		if err != nil {
			return nil, fmt.Errorf("vision: classic estimator of camera %q: frame %d: %w", e.cfg.Camera, f.Index, err)
		}
		out[i] = est
	}
	return out, nil
}

// one estimates one frame.
func (e *ClassicEstimator) one(f *ingest.Frame) (Estimate, error) {
	if f == nil {
		return Estimate{}, errors.New("nil frame")
	}
	if f.Width <= 0 || f.Height <= 0 || f.Stride < 3*f.Width || len(f.Pix) < (f.Height-1)*f.Stride+3*f.Width {
		return Estimate{}, fmt.Errorf("%dx%d with stride %d and %d bytes is not packed BGR24", f.Width, f.Height, f.Stride, len(f.Pix))
	}
	if f.Width != e.frameW || f.Height != e.frameH {
		if err := e.reset(f.Width, f.Height); err != nil {
			return Estimate{}, err
		}
	}
	src, err := e.wrap(f)
	if err != nil {
		return Estimate{}, err
	}
	gocv.Resize(src, &e.small, image.Pt(e.workW, e.workH), 0, 0, gocv.InterpolationArea)
	src.Close()
	e.mog.Apply(e.small, &e.fg)
	// MOG2 marks shadows 127 and foreground 255: keep the foreground.
	gocv.Threshold(e.fg, &e.fg, 200, 255, gocv.ThresholdBinary)
	gocv.MorphologyEx(e.fg, &e.fg, gocv.MorphOpen, e.openK)
	gocv.MorphologyEx(e.fg, &e.fg, gocv.MorphClose, e.closeK)
	if e.fg.Cols() != e.workW || e.fg.Rows() != e.workH || e.fg.Type() != gocv.MatTypeCV8U {
		return Estimate{}, fmt.Errorf("foreground mask is %dx%d of type %v, want %dx%d 8-bit", e.fg.Cols(), e.fg.Rows(), e.fg.Type(), e.workW, e.workH)
	}
	mask, err := e.fg.DataPtrUint8()
	if err != nil {
		return Estimate{}, fmt.Errorf("foreground mask: %w", err)
	}
	clear(e.cellSums)
	cs := e.cfg.CellSize
	for y := range e.workH {
		row := mask[y*e.workW : (y+1)*e.workW]
		cells := e.cellSums[(y/cs)*e.cols : (y/cs+1)*e.cols]
		if e.pixW != nil {
			pw := e.pixW[y*e.workW : (y+1)*e.workW]
			for x, v := range row {
				if v != 0 {
					cells[x/cs] += pw[x]
				}
			}
			continue
		}
		w := e.rowW[y]
		for x, v := range row {
			if v != 0 {
				cells[x/cs] += w
			}
		}
	}
	dm := &DensityMap{
		Cols:  e.cols,
		Rows:  e.rows,
		CellW: float64(cs) * float64(e.frameW) / float64(e.workW),
		CellH: float64(cs) * float64(e.frameH) / float64(e.workH),
		Data:  make([]float32, len(e.cellSums)),
	}
	var count float64
	for i, v := range e.cellSums {
		dm.Data[i] = float32(v)
		count += v
	}
	return Estimate{Count: count, Density: dm, Classic: true}, nil
}

// reset starts the background model afresh for frames of w x h and
// recomputes the perspective weights.
func (e *ClassicEstimator) reset(w, h int) error {
	if e.frameW != 0 {
		e.log.Info("classic background model starts afresh", "camera", e.cfg.Camera,
			"from", fmt.Sprintf("%dx%d", e.frameW, e.frameH), "to", fmt.Sprintf("%dx%d", w, h))
	}
	if e.hasMOG {
		e.mog.Close()
	}
	e.mog = gocv.NewBackgroundSubtractorMOG2WithParams(e.cfg.History, e.cfg.VarThreshold, true)
	e.hasMOG = true
	e.frameW, e.frameH = w, h
	e.workW = min(e.cfg.WorkWidth, w)
	e.workH = max(1, int(math.Round(float64(h)*float64(e.workW)/float64(w))))
	cs := e.cfg.CellSize
	e.cols = (e.workW + cs - 1) / cs
	e.rows = (e.workH + cs - 1) / cs
	e.cellSums = make([]float64, e.cols*e.rows)
	// A person's foreground area shrinks with the frame by the area ratio.
	perPerson := e.cfg.PixelsPerPerson * float64(e.workW) / float64(w) * float64(e.workH) / float64(h)
	e.rowW, e.pixW = nil, nil
	if e.cfg.Calibration != nil {
		pix, err := e.calibratedWeights()
		if err != nil {
			e.frameW, e.frameH = 0, 0
			return err
		}
		for i := range pix {
			pix[i] /= perPerson
		}
		e.pixW = pix
		return nil
	}
	e.rowW = make([]float64, e.workH)
	for y := range e.rowW {
		e.rowW[y] = min(e.rowWeight((float64(y)+0.5)/float64(e.workH)), classicMaxWeight) / perPerson
	}
	return nil
}

// classicMaxWeight caps perspective weights: a person under a tenth of
// their reference size counts as if that size.
const classicMaxWeight = 1 / (classicMinScale * classicMinScale)

// classicBelowHorizon reports whether normalized row v lies below cal's
// horizon across the whole picture width.
func classicBelowHorizon(cal *Calibration, v float64) bool {
	_, _, left := cal.ToGround(0, v)
	_, _, right := cal.ToGround(1, v)
	return left && right
}

// calibratedWeights returns the perspective weight of every work pixel
// from the calibration's perspective map, relative to the average along
// the reference row.
func (e *ClassicEstimator) calibratedWeights() ([]float64, error) {
	pm, err := e.cfg.Calibration.PerspectiveMap(e.workW, e.workH, e.workW, e.workH)
	if err != nil {
		return nil, fmt.Errorf("perspective map: %w", err)
	}
	refY := min(e.workH-1, int(e.cfg.ReferenceRow*float64(e.workH)))
	var ref float64
	n := 0
	for _, v := range pm[refY*e.workW : (refY+1)*e.workW] {
		if v > 0 {
			ref += v
			n++
		}
	}
	if n == 0 {
		return nil, fmt.Errorf("reference row %g lies above the calibration's horizon", e.cfg.ReferenceRow)
	}
	ref /= float64(n)
	// From the bottom up, so that a pixel at or above the horizon can take
	// the weight of the one below it.
	for x := range e.workW {
		below := 0.0
		for y := e.workH - 1; y >= 0; y-- {
			i := y*e.workW + x
			if pm[i] > 0 {
				pm[i] = min(pm[i]/ref, classicMaxWeight)
				below = pm[i]
			} else {
				pm[i] = below
			}
		}
	}
	return pm, nil
}

// rowWeight returns the perspective weight at normalized row v.
func (e *ClassicEstimator) rowWeight(v float64) float64 {
	if n := len(e.cfg.RowWeights); n > 0 {
		p := v*float64(n) - 0.5
		i := int(math.Floor(p))
		if i < 0 {
			return e.cfg.RowWeights[0]
		}
		if i >= n-1 {
			return e.cfg.RowWeights[n-1]
		}
		t := p - float64(i)
		return e.cfg.RowWeights[i]*(1-t) + e.cfg.RowWeights[i+1]*t
	}
	ref := e.cfg.ReferenceRow - e.cfg.HorizonRow
	d := max(v-e.cfg.HorizonRow, classicMinScale*ref)
	return (ref / d) * (ref / d)
}

// wrap returns a Mat over f's pixels, to be closed by the caller: without
// a copy when the stride is a whole number of pixels, else through a
// packed copy.
func (e *ClassicEstimator) wrap(f *ingest.Frame) (gocv.Mat, error) {
	if f.Stride%3 == 0 && len(f.Pix) >= f.Height*f.Stride {
		whole, err := gocv.NewMatFromBytes(f.Height, f.Stride/3, gocv.MatTypeCV8UC3, f.Pix[:f.Height*f.Stride])
		if err != nil {
			return gocv.Mat{}, fmt.Errorf("wrap pixels: %w", err)
		}
		if f.Stride == 3*f.Width {
			return whole, nil
		}
		region := whole.Region(image.Rect(0, 0, f.Width, f.Height))
		whole.Close()
		return region, nil
	}
	row := 3 * f.Width
	n := row * f.Height
	if cap(e.packed) < n {
		e.packed = make([]byte, n)
	}
	e.packed = e.packed[:n]
	for y := range f.Height {
		copy(e.packed[y*row:(y+1)*row], f.Pix[y*f.Stride:])
	}
	m, err := gocv.NewMatFromBytes(f.Height, f.Width, gocv.MatTypeCV8UC3, e.packed)
	if err != nil {
		return gocv.Mat{}, fmt.Errorf("wrap pixels: %w", err)
	}
	return m, nil
}

// Close implements Estimator: it frees the background model and buffers.
// Later Estimate calls fail.
func (e *ClassicEstimator) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil
	}
	e.closed = true
	if e.hasMOG {
		e.mog.Close()
		e.hasMOG = false
	}
	e.small.Close()
	e.fg.Close()
	e.openK.Close()
	e.closeK.Close()
	return nil
}
