package vision

import (
	"cmp"
	"fmt"
	"math"
	"slices"
)

// DetectionCell is the size in frame pixels (at most) of a cell of the
// density map made from detections.
const DetectionCell = 16

// detectLayout is the shape of a detection output, read from the tensor.
type detectLayout struct {
	n, anchors, values int
	classes            int
}

// detectGrid checks a detection output against the manifest and returns
// its layout.
func detectGrid(out *Tensor, spec *OutputSpec, plan *Plan) (detectLayout, error) {
	s := out.Shape
	if len(s) != 3 || s[0] < 1 || s[1] < 1 || s[2] < 1 {
		return detectLayout{}, fmt.Errorf("%s detection output %v: want rank 3", spec.Format, s)
	}
	var l detectLayout
	l.n = int(s[0])
	switch spec.Format {
	case YOLOv8:
		l.values, l.anchors = int(s[1]), int(s[2])
		l.classes = l.values - 4
	case YOLOX:
		l.anchors, l.values = int(s[1]), int(s[2])
		l.classes = l.values - 5
	default:
		return detectLayout{}, fmt.Errorf("unknown detection format %q", spec.Format)
	}
	if l.classes <= spec.PersonClass {
		return detectLayout{}, fmt.Errorf("%s detection output %v has %d classes; the person class is %d", spec.Format, s, max(l.classes, 0), spec.PersonClass)
	}
	if len(out.Data) != l.n*l.anchors*l.values {
		return detectLayout{}, fmt.Errorf("%s detection output %v holds %d values, want %d", spec.Format, s, len(out.Data), l.n*l.anchors*l.values)
	}
	if len(spec.GridStrides) > 0 {
		want := 0
		for _, g := range spec.GridStrides {
			want += (plan.InputW / g) * (plan.InputH / g)
		}
		if want != l.anchors {
			return detectLayout{}, fmt.Errorf("raw yolox output %v has %d anchors; grids %v over a %dx%d input make %d", s, l.anchors, spec.GridStrides, plan.InputW, plan.InputH, want)
		}
	}
	return l, nil
}

// decodeTile appends to dst the person boxes of batch item `item` of a
// detection output, where the item is tile t of a frame under plan: boxes
// scoring at least the threshold whose best class is the person class,
// whose foot point lies in the part of the frame the tile owns, mapped to
// frame pixels and clipped to the frame. NMS is left to the caller.
func decodeTile(dst []Detection, out *Tensor, item int, plan *Plan, t int, spec *OutputSpec) ([]Detection, error) {
	l, err := detectGrid(out, spec, plan)
	if err != nil {
		return dst, err
	}
	if item < 0 || item >= l.n {
		return dst, fmt.Errorf("detection output %v has no batch item %d", out.Shape, item)
	}
	data := out.Data[item*l.anchors*l.values : (item+1)*l.anchors*l.values]
	// at returns value v of anchor a.
	at := func(a, v int) float32 { return data[a*l.values+v] }
	first := 4
	if spec.Format == YOLOv8 {
		at = func(a, v int) float32 { return data[v*l.anchors+a] }
	} else {
		first = 5
	}
	tile := plan.Tiles[t]
	sx, sy := plan.ScaleX(), plan.ScaleY()
	thr := float32(spec.ScoreThreshold)
	// level and levelStart follow the raw yolox grids: anchors run through
	// each grid, row by row, in the order of GridStrides.
	level, levelStart := 0, 0
	levelSize := func(i int) int {
		g := spec.GridStrides[i]
		return (plan.InputW / g) * (plan.InputH / g)
	}
	for a := 0; a < l.anchors; a++ {
		best, bestScore := -1, float32(math.Inf(-1))
		for c := 0; c < l.classes; c++ {
			if s := at(a, first+c); s > bestScore {
				best, bestScore = c, s
			}
		}
		score := bestScore
		if spec.Format == YOLOX {
			score *= at(a, 4)
		}
		b0, b1, b2, b3 := float64(at(a, 0)), float64(at(a, 1)), float64(at(a, 2)), float64(at(a, 3))
		if len(spec.GridStrides) > 0 {
			for a >= levelStart+levelSize(level) {
				levelStart += levelSize(level)
				level++
			}
			g := spec.GridStrides[level]
			cell, gw := a-levelStart, plan.InputW/g
			gx, gy := float64(cell%gw), float64(cell/gw)
			b0, b1 = (b0+gx)*float64(g), (b1+gy)*float64(g)
			b2, b3 = math.Exp(b2)*float64(g), math.Exp(b3)*float64(g)
		}
		if best != spec.PersonClass || !(score >= thr) {
			continue
		}
		var x0, y0, x1, y1 float64
		if spec.Box == BoxXYXY {
			x0, y0, x1, y1 = b0, b1, b2, b3
		} else {
			x0, y0, x1, y1 = b0-b2/2, b1-b3/2, b0+b2/2, b1+b3/2
		}
		if !(x1 > x0 && y1 > y0) || math.IsInf(x1-x0, 0) || math.IsInf(y1-y0, 0) {
			continue
		}
		// The foot point, in scaled-frame pixels, decides which tile owns
		// the box.
		fx := clampOpen(float64(tile.Rect.Min.X)+(x0+x1)/2, float64(plan.ScaledW))
		fy := clampOpen(float64(tile.Rect.Min.Y)+y1, float64(plan.ScaledH))
		if fx < float64(tile.Own.Min.X) || fx >= float64(tile.Own.Max.X) || fy < float64(tile.Own.Min.Y) || fy >= float64(tile.Own.Max.Y) {
			continue
		}
		d := Detection{
			X0:    clamp((float64(tile.Rect.Min.X)+x0)/sx, float64(plan.FrameW)),
			Y0:    clamp((float64(tile.Rect.Min.Y)+y0)/sy, float64(plan.FrameH)),
			X1:    clamp((float64(tile.Rect.Min.X)+x1)/sx, float64(plan.FrameW)),
			Y1:    clamp((float64(tile.Rect.Min.Y)+y1)/sy, float64(plan.FrameH)),
			Score: score,
		}
		if d.X1 > d.X0 && d.Y1 > d.Y0 {
			dst = append(dst, d)
		}
	}
	return dst, nil
}

// clamp limits v to [0, hi].
func clamp(v, hi float64) float64 { return math.Max(0, math.Min(v, hi)) }

// clampOpen limits v to [0, hi).
func clampOpen(v, hi float64) float64 {
	return math.Max(0, math.Min(v, math.Nextafter(hi, 0)))
}

// DetectionsFromOutput decodes the person boxes of one frame from a
// detection model's output: batch items first, first+1, ... hold the
// frame's tiles in plan order. Boxes come back in frame pixels after NMS,
// strongest first.
//
// YOLOv8 outputs are [N, 4+classes, anchors] with class scores and no
// objectness; YOLOX outputs are [N, anchors, 5+classes] scored as
// objectness times class score. A YOLOX model exported with its decoding
// step (decode_in_inference, the usual export) gives boxes in input pixels;
// one exported without it gives raw grid offsets and log sizes, which are
// decoded here when the manifest lists the head's grid strides. A box
// counts as a person when its best class is the person class and its
// score reaches the threshold.
func DetectionsFromOutput(out *Tensor, first int, plan *Plan, spec *OutputSpec) ([]Detection, error) {
	var dets []Detection
	for t := range plan.Tiles {
		var err error
		if dets, err = decodeTile(dets, out, first+t, plan, t, spec); err != nil {
			return nil, err
		}
	}
	return NMS(dets, spec.NMSThreshold), nil
}

// IoU returns the intersection over union of two boxes.
func IoU(a, b Detection) float64 {
	iw := math.Min(a.X1, b.X1) - math.Max(a.X0, b.X0)
	ih := math.Min(a.Y1, b.Y1) - math.Max(a.Y0, b.Y0)
	if iw <= 0 || ih <= 0 {
		return 0
	}
	inter := iw * ih
	union := (a.X1-a.X0)*(a.Y1-a.Y0) + (b.X1-b.X0)*(b.Y1-b.Y0) - inter
	if union <= 0 {
		return 0
	}
	return inter / union
}

// NMS suppresses overlapping boxes greedily: boxes are taken strongest
// first (ties in input order) and a box is dropped when its IoU with a kept
// one exceeds threshold. It reorders dets in place and returns the kept
// boxes, strongest first. All boxes are taken to be of one class.
func NMS(dets []Detection, threshold float64) []Detection {
	slices.SortStableFunc(dets, func(a, b Detection) int { return cmp.Compare(b.Score, a.Score) })
	kept := dets[:0]
	for _, d := range dets {
		keep := true
		for _, k := range kept {
			if IoU(d, k) > threshold {
				keep = false
				break
			}
		}
		if keep {
			kept = append(kept, d)
		}
	}
	return kept
}

// DetectionDensity returns a density map of a frameW x frameH frame with a
// unit of mass in the cell of each detection's foot point, so the map sums
// to the number of detections. Cells are at most DetectionCell pixels and
// cover the frame exactly.
func DetectionDensity(dets []Detection, frameW, frameH int) *DensityMap {
	cols := (frameW + DetectionCell - 1) / DetectionCell
	rows := (frameH + DetectionCell - 1) / DetectionCell
	m := &DensityMap{
		Cols:  max(cols, 1),
		Rows:  max(rows, 1),
		CellW: float64(frameW) / float64(max(cols, 1)),
		CellH: float64(frameH) / float64(max(rows, 1)),
	}
	m.Data = make([]float32, m.Cols*m.Rows)
	for _, d := range dets {
		x, y := d.Foot()
		c := min(max(int(x/m.CellW), 0), m.Cols-1)
		r := min(max(int(y/m.CellH), 0), m.Rows-1)
		m.Data[r*m.Cols+c]++
	}
	return m
}
