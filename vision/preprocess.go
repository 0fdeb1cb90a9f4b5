package vision

import (
	"errors"
	"fmt"
	"image"

	"gocv.io/x/gocv"

	"flowwatch/ingest"
)

// Preprocessor turns frames into model inputs as a manifest says: resize
// (gocv), color order, scale, mean, std and layout. It keeps its buffers
// between frames, so frames of a steady size cost no allocation. A
// Preprocessor is used by one goroutine at a time; Close frees its Mats.
type Preprocessor struct {
	layout Layout
	// lut maps a byte of the source pixel to the value of tensor channel c.
	lut [3][256]float32
	// srcByte is the offset within a BGR pixel of tensor channel c.
	srcByte [3]int
	// pad is the value of tensor channel c in padding.
	pad [3]float32

	scaled gocv.Mat // the frame resized to the plan's scaled size
	packed []byte   // a copy of a frame whose stride gocv cannot wrap

	// The loaded frame: pix rows of stride bytes, scaled to the plan.
	plan   *Plan
	pix    []byte
	stride int
	loaded bool
}

// NewPreprocessor returns a Preprocessor for the manifest's input.
func NewPreprocessor(m *Manifest) *Preprocessor {
	in := m.Input
	p := &Preprocessor{layout: in.Layout, scaled: gocv.NewMat()}
	for c := 0; c < 3; c++ {
		// BGR bytes: blue at 0, red at 2.
		p.srcByte[c] = c
		if in.Color == RGB {
			p.srcByte[c] = 2 - c
		}
		for v := 0; v < 256; v++ {
			p.lut[c][v] = float32((float64(v)*in.Scale - in.Mean[c]) / in.Std[c])
		}
		p.pad[c] = p.lut[c][in.Pad]
	}
	return p
}

// Close frees the Preprocessor's Mats.
func (p *Preprocessor) Close() error {
	p.loaded = false
	p.pix = nil
	return p.scaled.Close()
}

// Load prepares f for plan, resizing it when the plan's scaled size is not
// the frame's own. The inputs are then written by Tile. f must stay valid
// until the next Load.
func (p *Preprocessor) Load(f *ingest.Frame, plan *Plan) error {
	p.loaded = false
	if f.Width != plan.FrameW || f.Height != plan.FrameH {
		return fmt.Errorf("preprocess: frame %d is %dx%d, the plan is for %dx%d", f.Index, f.Width, f.Height, plan.FrameW, plan.FrameH)
	}
	if f.Stride < 3*f.Width || len(f.Pix) < (f.Height-1)*f.Stride+3*f.Width {
		return fmt.Errorf("preprocess: frame %d (%dx%d) has stride %d and %d bytes of pixels, too few for packed BGR24", f.Index, f.Width, f.Height, f.Stride, len(f.Pix))
	}
	p.plan = plan
	if plan.ScaledW == f.Width && plan.ScaledH == f.Height {
		p.pix, p.stride, p.loaded = f.Pix, f.Stride, true
		return nil
	}
	src, err := p.wrap(f)
	if err != nil {
		return err
	}
	interp := gocv.InterpolationLinear
	if plan.ScaledW <= f.Width && plan.ScaledH <= f.Height {
		interp = gocv.InterpolationArea
	}
	gocv.Resize(src, &p.scaled, image.Pt(plan.ScaledW, plan.ScaledH), 0, 0, interp)
	src.Close()
	if p.scaled.Cols() != plan.ScaledW || p.scaled.Rows() != plan.ScaledH || p.scaled.Type() != gocv.MatTypeCV8UC3 {
		return fmt.Errorf("preprocess: resizing frame %d from %dx%d to %dx%d failed", f.Index, f.Width, f.Height, plan.ScaledW, plan.ScaledH)
	}
	pix, err := p.scaled.DataPtrUint8()
	if err != nil {
		return fmt.Errorf("preprocess: frame %d: %w", f.Index, err)
	}
	p.pix, p.stride, p.loaded = pix, 3*plan.ScaledW, true
	return nil
}

// wrap returns a Mat over f's pixels, to be closed by the caller. Frames
// whose stride is a whole number of pixels are wrapped without a copy;
// others are copied into a reused packed buffer.
func (p *Preprocessor) wrap(f *ingest.Frame) (gocv.Mat, error) {
	rowBytes := 3 * f.Width
	if f.Stride%3 == 0 && len(f.Pix) >= f.Height*f.Stride {
		whole, err := gocv.NewMatFromBytes(f.Height, f.Stride/3, gocv.MatTypeCV8UC3, f.Pix[:f.Height*f.Stride])
		if err != nil {
			return gocv.Mat{}, fmt.Errorf("preprocess: wrap frame %d: %w", f.Index, err)
		}
		if f.Stride == rowBytes {
			return whole, nil
		}
		region := whole.Region(image.Rect(0, 0, f.Width, f.Height))
		whole.Close()
		return region, nil
	}
	n := f.Height * rowBytes
	if cap(p.packed) < n {
		p.packed = make([]byte, n)
	}
	p.packed = p.packed[:n]
	for y := 0; y < f.Height; y++ {
		copy(p.packed[y*rowBytes:(y+1)*rowBytes], f.Pix[y*f.Stride:])
	}
	m, err := gocv.NewMatFromBytes(f.Height, f.Width, gocv.MatTypeCV8UC3, p.packed)
	if err != nil {
		return gocv.Mat{}, fmt.Errorf("preprocess: wrap frame %d: %w", f.Index, err)
	}
	return m, nil
}

// Tile writes the input of the loaded frame's tile i into dst, which must
// hold at least the plan's InputLen values.
func (p *Preprocessor) Tile(i int, dst []float32) error {
	if !p.loaded {
		return errors.New("preprocess: no frame loaded")
	}
	plan := p.plan
	if i < 0 || i >= len(plan.Tiles) {
		return fmt.Errorf("preprocess: tile %d of a plan with %d", i, len(plan.Tiles))
	}
	n := plan.InputLen()
	if len(dst) < n {
		return fmt.Errorf("preprocess: %d values of room for a %dx%d input of %d", len(dst), plan.InputW, plan.InputH, n)
	}
	dst = dst[:n]
	r := plan.Tiles[i].Rect
	w, h := plan.InputW, plan.InputH
	cw, ch := min(r.Dx(), w), min(r.Dy(), h)
	if p.layout == NHWC {
		for y := 0; y < h; y++ {
			row := dst[y*w*3 : (y+1)*w*3]
			x := 0
			if y < ch {
				src := p.pix[(r.Min.Y+y)*p.stride+r.Min.X*3:]
				for ; x < cw; x++ {
					px := src[x*3 : x*3+3]
					row[x*3] = p.lut[0][px[p.srcByte[0]]]
					row[x*3+1] = p.lut[1][px[p.srcByte[1]]]
					row[x*3+2] = p.lut[2][px[p.srcByte[2]]]
				}
			}
			for ; x < w; x++ {
				row[x*3], row[x*3+1], row[x*3+2] = p.pad[0], p.pad[1], p.pad[2]
			}
		}
		return nil
	}
	for c := 0; c < 3; c++ {
		plane := dst[c*w*h : (c+1)*w*h]
		lut := &p.lut[c]
		off, pad := p.srcByte[c], p.pad[c]
		for y := 0; y < h; y++ {
			row := plane[y*w : (y+1)*w]
			x := 0
			if y < ch {
				src := p.pix[(r.Min.Y+y)*p.stride+r.Min.X*3+off:]
				for ; x < cw; x++ {
					row[x] = lut[src[x*3]]
				}
			}
			for ; x < w; x++ {
				row[x] = pad
			}
		}
	}
	return nil
}

// Frame writes all of f's inputs under plan into dst, one after another.
func (p *Preprocessor) Frame(f *ingest.Frame, plan *Plan, dst []float32) error {
	if err := p.Load(f, plan); err != nil {
		return err
	}
	n := plan.InputLen()
	if len(dst) < n*len(plan.Tiles) {
		return fmt.Errorf("preprocess: %d values of room for %d inputs of %d", len(dst), len(plan.Tiles), n)
	}
	for i := range plan.Tiles {
		if err := p.Tile(i, dst[i*n:]); err != nil {
			return err
		}
	}
	return nil
}

// Batch writes the inputs of frames, all of plan's size, into dst as one
// batch: frame by frame, tile by tile. dst must hold
// len(frames)*len(plan.Tiles)*plan.InputLen() values.
func (p *Preprocessor) Batch(frames []*ingest.Frame, plan *Plan, dst []float32) error {
	per := plan.InputLen() * len(plan.Tiles)
	if len(dst) < per*len(frames) {
		return fmt.Errorf("preprocess: %d values of room for %d frames of %d", len(dst), len(frames), per)
	}
	for i, f := range frames {
		if err := p.Frame(f, plan, dst[i*per:(i+1)*per]); err != nil {
			return err
		}
	}
	return nil
}

// InputShape returns the shape of a batch of n inputs under plan in the
// manifest's layout.
func (m *Manifest) InputShape(n int, plan *Plan) []int64 {
	if m.Input.Layout == NHWC {
		return []int64{int64(n), int64(plan.InputH), int64(plan.InputW), 3}
	}
	return []int64{int64(n), 3, int64(plan.InputH), int64(plan.InputW)}
}
