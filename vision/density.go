package vision

import (
	"fmt"
	"math"
)

// NewDensityMap returns an empty density map for frames under plan with a
// model of the given stride: one cell per stride x stride block of the
// scaled frame, so the map covers the frame exactly (Cols*CellW is the
// frame's width, Rows*CellH its height).
func NewDensityMap(plan *Plan, stride int) *DensityMap {
	cols, rows := plan.ScaledW/stride, plan.ScaledH/stride
	return &DensityMap{
		Cols:  cols,
		Rows:  rows,
		CellW: float64(plan.FrameW) / float64(cols),
		CellH: float64(plan.FrameH) / float64(rows),
		Data:  make([]float32, cols*rows),
	}
}

// densityGrid checks a density output for inputs under plan and returns
// its batch size and map size. The map may be [N,1,h,w], [N,h,w,1] or
// [N,h,w]; with one channel these share one memory order.
func densityGrid(out *Tensor, plan *Plan, stride int) (n, h, w int, err error) {
	h, w = plan.InputH/stride, plan.InputW/stride
	s := out.Shape
	ok := false
	switch len(s) {
	case 3:
		ok = s[1] == int64(h) && s[2] == int64(w)
	case 4:
		ok = (s[1] == 1 && s[2] == int64(h) && s[3] == int64(w)) ||
			(s[1] == int64(h) && s[2] == int64(w) && s[3] == 1)
	}
	if !ok || s[0] < 1 {
		return 0, 0, 0, fmt.Errorf("density output %v does not fit %dx%d inputs at stride %d: want [N,1,%d,%d], [N,%d,%d,1] or [N,%d,%d]",
			s, plan.InputW, plan.InputH, stride, h, w, h, w, h, w)
	}
	n = int(s[0])
	if len(out.Data) != n*h*w {
		return 0, 0, 0, fmt.Errorf("density output %v holds %d values, want %d", s, len(out.Data), n*h*w)
	}
	return n, h, w, nil
}

// addDensityTile copies the cells tile t owns from batch item `item` of a
// density output into dst, a map made by NewDensityMap for the same plan.
// Values are copied unchanged, so the map's mass is exactly the mass of
// the owned cells.
func addDensityTile(dst *DensityMap, out *Tensor, item int, plan *Plan, t, stride int) error {
	n, h, w, err := densityGrid(out, plan, stride)
	if err != nil {
		return err
	}
	if item < 0 || item >= n {
		return fmt.Errorf("density output %v has no batch item %d", out.Shape, item)
	}
	plane := out.Data[item*h*w : (item+1)*h*w]
	tile := plan.Tiles[t]
	c0, c1 := tile.Own.Min.X/stride, tile.Own.Max.X/stride
	r0, r1 := tile.Own.Min.Y/stride, tile.Own.Max.Y/stride
	tc, tr := (tile.Own.Min.X-tile.Rect.Min.X)/stride, (tile.Own.Min.Y-tile.Rect.Min.Y)/stride
	for r := r0; r < r1; r++ {
		src := plane[(tr+r-r0)*w+tc : (tr+r-r0)*w+tc+c1-c0]
		row := dst.Data[r*dst.Cols+c0 : r*dst.Cols+c1]
		for i, v := range src {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return fmt.Errorf("density output %v holds %g at item %d, row %d, column %d", out.Shape, v, item, tr+r-r0, tc+i)
			}
			row[i] = v
		}
	}
	return nil
}

// DensityFromOutput builds the density map of one frame from a density
// model's output: batch items first, first+1, ... hold the frame's tiles in
// plan order. Each map cell is taken from the one tile that owns it, with
// its value unchanged: the map's sum, the frame's count, is the sum of the
// model's owned output cells, so resizing and tiling lose no mass. Cells
// wholly in padding belong to no tile and are dropped.
func DensityFromOutput(out *Tensor, first int, plan *Plan, stride int) (*DensityMap, error) {
	m := NewDensityMap(plan, stride)
	for t := range plan.Tiles {
		if err := addDensityTile(m, out, first+t, plan, t, stride); err != nil {
			return nil, err
		}
	}
	return m, nil
}
