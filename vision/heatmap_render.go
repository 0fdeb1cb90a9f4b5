package vision

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"math"
	"strconv"

	"gocv.io/x/gocv"

	"flowwatch/ingest"
)

// Heatmap picture defaults.
const (
	// DefaultHeatmapOpacity is how opaque the hottest cells are over the
	// snapshot when the options leave it out.
	DefaultHeatmapOpacity = 0.6
	// defaultHeatmapWidth is the picture width without a snapshot.
	defaultHeatmapWidth = 640
	// maxHeatmapSide bounds the picture's sides.
	maxHeatmapSide = 1 << 14
)

// HeatmapRenderOptions tune RenderHeatmapPNG.
type HeatmapRenderOptions struct {
	// Scale is the people per cell drawn in the hottest colour; larger
	// values are clipped to it. 0 means the grid's Max, so that each
	// picture uses the whole colour range; give a fixed Scale to compare
	// pictures.
	Scale float64
	// Opacity is how opaque the hottest colour is over the snapshot, in
	// (0, 1]; a cell's opacity grows linearly with its value, so empty
	// cells leave the snapshot as it is. 0 means DefaultHeatmapOpacity.
	Opacity float64
	// NoLegend leaves out the colour scale drawn at the right edge.
	NoLegend bool
	// Width and Height size the picture when there is no snapshot. Width
	// 0 means 640; Height 0 keeps the grid's aspect ratio.
	Width, Height int
}

// RenderHeatmapPNG draws g as a PNG: the JET colour map (blue for few
// people, red for many) blended over snapshot, a BGR frame of the camera,
// at the snapshot's size, with a colour scale labelled in people per cell.
// Without a snapshot the colours are drawn over dark grey at the size the
// options give. The snapshot is only read.
func RenderHeatmapPNG(g HeatmapGrid, snapshot *ingest.Frame, opt HeatmapRenderOptions) ([]byte, error) {
	fail := func(err error) ([]byte, error) {
		return nil, fmt.Errorf("vision: heatmap picture of camera %q: %w", g.Camera, err)
	}
	if g.Cols <= 0 || g.Rows <= 0 || len(g.Data) != g.Cols*g.Rows {
		return fail(fmt.Errorf("grid %dx%d holds %d values", g.Cols, g.Rows, len(g.Data)))
	}
	if opt.Opacity == 0 {
		opt.Opacity = DefaultHeatmapOpacity
	}
	if !(opt.Opacity > 0 && opt.Opacity <= 1) || !(opt.Scale >= 0) || math.IsInf(opt.Scale, 0) {
		return fail(fmt.Errorf("opacity %g must be in (0, 1] and scale %g finite and not negative", opt.Opacity, opt.Scale))
	}
	w, h, base, err := heatBase(snapshot, g, opt)
	if err != nil {
		return fail(err)
	}
	scale := opt.Scale
	if scale == 0 {
		scale = float64(g.Max)
	}

	// Each cell's value as a level 0..255 of the scale, smoothed up to the
	// picture's size.
	levels := make([]byte, len(g.Data))
	if scale > 0 {
		for i, v := range g.Data {
			levels[i] = byte(math.Round(255 * min(max(float64(v)/scale, 0), 1)))
		}
	}
	small, err := gocv.NewMatFromBytes(g.Rows, g.Cols, gocv.MatTypeCV8U, levels)
	if err != nil {
		return fail(fmt.Errorf("grid levels: %w", err))
	}
	defer small.Close()
	big := gocv.NewMat()
	defer big.Close()
	gocv.Resize(small, &big, image.Pt(w, h), 0, 0, gocv.InterpolationLinear)
	if big.Cols() != w || big.Rows() != h {
		return fail(fmt.Errorf("resizing the %dx%d grid to %dx%d failed", g.Cols, g.Rows, w, h))
	}
	lv, err := big.DataPtrUint8()
	if err != nil {
		return fail(err)
	}
	lut, err := heatJetLUT()
	if err != nil {
		return fail(err)
	}
	for i, l := range lv {
		a := opt.Opacity * float64(l) / 255
		px := base[3*i : 3*i+3]
		for c := range 3 {
			px[c] = byte(math.Round(float64(px[c])*(1-a) + float64(lut[l][c])*a))
		}
	}

	out, err := gocv.NewMatFromBytes(h, w, gocv.MatTypeCV8UC3, base)
	if err != nil {
		return fail(err)
	}
	defer out.Close()
	if !opt.NoLegend {
		heatLegend(&out, base, w, h, &lut, scale)
	}
	buf, err := gocv.IMEncode(gocv.PNGFileExt, out)
	if err != nil {
		return fail(fmt.Errorf("encode PNG: %w", err))
	}
	defer buf.Close()
	return append([]byte(nil), buf.GetBytes()...), nil
}

// heatBase returns the picture's size and its background: a packed copy of
// snapshot, or dark grey at the size opt and g give.
func heatBase(snapshot *ingest.Frame, g HeatmapGrid, opt HeatmapRenderOptions) (int, int, []byte, error) {
	if snapshot != nil {
		f := snapshot
		if f.Width <= 0 || f.Height <= 0 || f.Stride < 3*f.Width || len(f.Pix) < (f.Height-1)*f.Stride+3*f.Width {
			return 0, 0, nil, fmt.Errorf("snapshot frame %d (%dx%d, stride %d, %d bytes) is not packed BGR24",
				f.Index, f.Width, f.Height, f.Stride, len(f.Pix))
		}
		if f.Width > maxHeatmapSide || f.Height > maxHeatmapSide {
			return 0, 0, nil, fmt.Errorf("snapshot %dx%d is larger than %d on a side", f.Width, f.Height, maxHeatmapSide)
		}
		base := make([]byte, 3*f.Width*f.Height)
		for y := range f.Height {
			copy(base[3*f.Width*y:3*f.Width*(y+1)], f.Pix[f.Stride*y:])
		}
		return f.Width, f.Height, base, nil
	}
	w, h := opt.Width, opt.Height
	if w == 0 {
		w = defaultHeatmapWidth
	}
	if h == 0 {
		h = max(1, int(math.Round(float64(w)*float64(g.Rows)/float64(g.Cols))))
	}
	if w <= 0 || h <= 0 || w > maxHeatmapSide || h > maxHeatmapSide {
		return 0, 0, nil, fmt.Errorf("picture size %dx%d is not between 1 and %d on a side", w, h, maxHeatmapSide)
	}
	base := make([]byte, 3*w*h)
	for i := range base {
		base[i] = 40
	}
	return w, h, base, nil
}

// heatJetLUT returns OpenCV's JET colour map as 256 BGR colours.
func heatJetLUT() ([256][3]byte, error) {
	var lut [256][3]byte
	ramp := make([]byte, 256)
	for i := range ramp {
		ramp[i] = byte(i)
	}
	src, err := gocv.NewMatFromBytes(1, 256, gocv.MatTypeCV8U, ramp)
	if err != nil {
		return lut, err
	}
	defer src.Close()
	dst := gocv.NewMat()
	defer dst.Close()
	gocv.ApplyColorMap(src, &dst, gocv.ColormapJet)
	px, err := dst.DataPtrUint8()
	if err != nil {
		return lut, err
	}
	if len(px) != 3*256 {
		return lut, errors.New("the JET colour map did not give 256 BGR colours")
	}
	for i := range lut {
		copy(lut[i][:], px[3*i:3*i+3])
	}
	return lut, nil
}

// heatLegend draws the colour scale into out (whose pixels are px): a bar
// at the right edge from the hottest colour at the top to the coldest at the
// bottom, labelled with scale and 0 people per cell.
func heatLegend(out *gocv.Mat, px []byte, w, h int, lut *[256][3]byte, scale float64) {
	barW := max(6, w/48)
	margin := max(4, w/80)
	x0, x1 := w-margin-barW, w-margin
	y0, y1 := h/5, h-h/5
	if x0 <= 0 || y1-y0 < 8 {
		return // too small a picture for a legend
	}
	for y := y0; y < y1; y++ {
		l := 255 - (255*(y-y0))/max(1, y1-y0-1)
		for x := x0; x < x1; x++ {
			copy(px[3*(y*w+x):], lut[l][:])
		}
	}
	white := color.RGBA{255, 255, 255, 255}
	black := color.RGBA{0, 0, 0, 255}
	gocv.Rectangle(out, image.Rect(x0-1, y0-1, x1+1, y1+1), white, 1)
	fontScale := max(0.35, float64(h)/900)
	label := func(text string, y int) {
		size := gocv.GetTextSize(text, gocv.FontHersheySimplex, fontScale, 1)
		org := image.Pt(max(0, x0-4-size.X), y+size.Y/2)
		gocv.PutText(out, text, org, gocv.FontHersheySimplex, fontScale, black, 3)
		gocv.PutText(out, text, org, gocv.FontHersheySimplex, fontScale, white, 1)
	}
	label(strconv.FormatFloat(scale, 'g', 3, 64)+"/cell", y0)
	label("0", y1)
}
