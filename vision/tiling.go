package vision

import (
	"fmt"
	"image"
	"math"
)

// Plan says how frames of one size become model inputs and how the
// model's outputs map back onto the frame. The frame is first resized to
// ScaledW x ScaledH (not at all when that is its own size); each tile then
// cuts Rect out of the scaled frame and places it at the top-left corner of
// an InputW x InputH input, the rest of which is padding. Without tiling
// there is one tile covering the whole scaled frame.
//
// For density models ScaledW and ScaledH are multiples of the output
// stride, so a density map built from a plan covers the frame exactly.
type Plan struct {
	// FrameW and FrameH are the frame's size in pixels.
	FrameW, FrameH int
	// ScaledW and ScaledH are the size the frame is resized to.
	ScaledW, ScaledH int
	// InputW and InputH are the spatial size of every model input.
	InputW, InputH int
	// Tiles are the model inputs one frame makes.
	Tiles []Tile
}

// Tile is one model input cut from a scaled frame.
type Tile struct {
	// Rect is the part of the scaled frame fed to the model.
	Rect image.Rectangle
	// Own is the part of the scaled frame whose result this tile
	// supplies: the tiles' Own rectangles partition the scaled frame, so
	// overlapping tiles count everything once. Overlaps are split at their
	// middle, where both tiles see the most context.
	Own image.Rectangle
}

// ScaleX and ScaleY return the scale factors from frame pixels to scaled
// (model input) pixels.
func (p *Plan) ScaleX() float64 { return float64(p.ScaledW) / float64(p.FrameW) }

// ScaleY is ScaleX for the vertical axis.
func (p *Plan) ScaleY() float64 { return float64(p.ScaledH) / float64(p.FrameH) }

// InputLen returns the number of float32 values of one model input.
func (p *Plan) InputLen() int { return 3 * p.InputW * p.InputH }

// Tiled reports whether the frame is cut into more than one input.
func (p *Plan) Tiled() bool { return len(p.Tiles) > 1 }

// maxFrameSide bounds the frames a plan is made for.
const maxFrameSide = 1 << 15

// Plan returns how a frameW x frameH frame is fed to the model:
//   - a manifest with a tile spec, for a frame whose long side exceeds the
//     tile size: the frame at native resolution (nudged to a multiple of
//     the density stride) cut into overlapping square tiles;
//   - a fixed-size input: the frame resized to fit, aspect kept, padded on
//     the right and bottom;
//   - a dynamic-size input: the frame shrunk to fit max_side, aspect kept,
//     each side rounded to the size multiple.
func (m *Manifest) Plan(frameW, frameH int) (Plan, error) {
	if frameW < 1 || frameH < 1 || frameW > maxFrameSide || frameH > maxFrameSide {
		return Plan{}, fmt.Errorf("model %q: cannot plan for a %dx%d frame", m.Name, frameW, frameH)
	}
	in := m.Input
	p := Plan{FrameW: frameW, FrameH: frameH}
	grain, align := m.grain(), m.align()
	switch {
	case in.Tile != nil && max(frameW, frameH) > in.Tile.Size:
		p.ScaledW, p.ScaledH = roundTo(float64(frameW), grain), roundTo(float64(frameH), grain)
		p.InputW, p.InputH = in.Tile.Size, in.Tile.Size
		xs := tileAxis(p.ScaledW, in.Tile.Size, in.Tile.Overlap, grain)
		ys := tileAxis(p.ScaledH, in.Tile.Size, in.Tile.Overlap, grain)
		p.Tiles = make([]Tile, 0, len(xs)*len(ys))
		for _, y := range ys {
			for _, x := range xs {
				p.Tiles = append(p.Tiles, Tile{
					Rect: image.Rect(x.start, y.start, x.end, y.end),
					Own:  image.Rect(x.ownStart, y.ownStart, x.ownEnd, y.ownEnd),
				})
			}
		}
		return p, nil
	case in.Width > 0:
		r := math.Min(float64(in.Width)/float64(frameW), float64(in.Height)/float64(frameH))
		p.InputW, p.InputH = in.Width, in.Height
		p.ScaledW = min(floorTo(math.Round(float64(frameW)*r), grain), in.Width)
		p.ScaledH = min(floorTo(math.Round(float64(frameH)*r), grain), in.Height)
	default:
		r := 1.0
		if long := max(frameW, frameH); in.MaxSide > 0 && long > in.MaxSide {
			r = float64(in.MaxSide) / float64(long)
		}
		p.ScaledW = fitTo(float64(frameW)*r, align, in.MaxSide)
		p.ScaledH = fitTo(float64(frameH)*r, align, in.MaxSide)
		p.InputW, p.InputH = p.ScaledW, p.ScaledH
	}
	whole := image.Rect(0, 0, p.ScaledW, p.ScaledH)
	p.Tiles = []Tile{{Rect: whole, Own: whole}}
	return p, nil
}

// roundTo rounds v to the nearest positive multiple of g.
func roundTo(v float64, g int) int {
	return max(g, int(math.Round(v/float64(g)))*g)
}

// floorTo rounds v down to a multiple of g, but not below g.
func floorTo(v float64, g int) int {
	return max(g, int(math.Floor(v/float64(g)))*g)
}

// fitTo rounds v to the nearest multiple of g, rounding down instead when
// that would exceed limit (0: none).
func fitTo(v float64, g, limit int) int {
	n := roundTo(v, g)
	if limit > 0 && n > limit {
		n = floorTo(v, g)
	}
	return n
}

// span is one tile's extent along an axis, and the part of it the tile
// owns.
type span struct {
	start, end       int
	ownStart, ownEnd int
}

// tileAxis places tiles of size along an axis of length n (both multiples
// of grain): from 0 in steps of size-overlap, the last one flush with the
// end, so no tile leaves the axis unless the axis is shorter than a tile.
// Neighbours' overlaps are split at their middle, rounded to grain.
func tileAxis(n, size, overlap, grain int) []span {
	if n <= size {
		return []span{{0, n, 0, n}}
	}
	step := size - overlap
	var spans []span
	for start := 0; ; start += step {
		if start+size >= n {
			spans = append(spans, span{start: n - size, end: n})
			break
		}
		spans = append(spans, span{start: start, end: start + size})
	}
	for i := range spans {
		if i == 0 {
			spans[i].ownStart = 0
		} else {
			prev := spans[i-1]
			shared := prev.end - spans[i].start
			cut := spans[i].start + shared/2/grain*grain
			spans[i].ownStart = cut
			spans[i-1].ownEnd = cut
		}
	}
	spans[len(spans)-1].ownEnd = n
	return spans
}
