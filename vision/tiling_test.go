package vision

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

func TestTileAxisPartitionsTheAxis(t *testing.T) {
	for _, tc := range []struct{ n, size, overlap, grain int }{
		{3840, 1024, 128, 8}, {2160, 1024, 128, 8}, {1088, 512, 0, 16}, {1000, 512, 256, 8},
		{96, 64, 16, 16}, {64, 64, 16, 8}, {40, 64, 16, 8}, {1025, 1024, 0, 1}, {4096, 64, 32, 4},
	} {
		name := fmt.Sprintf("n%d_s%d_o%d_g%d", tc.n, tc.size, tc.overlap, tc.grain)
		spans := tileAxis(tc.n, tc.size, tc.overlap, tc.grain)
		if spans[0].start != 0 || spans[0].ownStart != 0 || spans[len(spans)-1].ownEnd != tc.n || spans[len(spans)-1].end != tc.n {
			t.Errorf("%s: spans %+v do not start at 0 and end at %d", name, spans, tc.n)
		}
		for i, s := range spans {
			if tc.n > tc.size && s.end-s.start != tc.size {
				t.Errorf("%s: tile %d is %d long, want %d", name, i, s.end-s.start, tc.size)
			}
			if s.ownStart < s.start || s.ownEnd > s.end || s.ownStart >= s.ownEnd {
				t.Errorf("%s: tile %d owns [%d,%d) outside its [%d,%d)", name, i, s.ownStart, s.ownEnd, s.start, s.end)
			}
			if s.ownStart%tc.grain != 0 || s.start%tc.grain != 0 {
				t.Errorf("%s: tile %d starts at %d owning from %d, off the %d grid", name, i, s.start, s.ownStart, tc.grain)
			}
			if i > 0 {
				prev := spans[i-1]
				if prev.ownEnd != s.ownStart {
					t.Errorf("%s: tiles %d and %d own [..,%d) and [%d,..): a gap or a double count", name, i-1, i, prev.ownEnd, s.ownStart)
				}
				if prev.end-s.start < tc.overlap {
					t.Errorf("%s: tiles %d and %d overlap by %d, want at least %d", name, i-1, i, prev.end-s.start, tc.overlap)
				}
				// The cut sits in the middle of the overlap.
				mid := float64(prev.end+s.start) / 2
				if math.Abs(float64(s.ownStart)-mid) > float64(tc.grain) {
					t.Errorf("%s: cut %d is off the overlap's middle %g", name, s.ownStart, mid)
				}
			}
		}
	}
}

func tiledManifest(stride, size, overlap int) *Manifest {
	m := testManifest(TaskDensity)
	m.Output.Stride = stride
	m.Input.Multiple = stride
	m.Input.MaxSide = size
	m.Input.Tile = &TileSpec{Size: size, Overlap: overlap}
	return m
}

func TestTilingPlanOwnsEveryCellOnce(t *testing.T) {
	m := tiledManifest(8, 1024, 128)
	mustValid(t, m)
	for _, size := range [][2]int{{3840, 2160}, {1920, 1080}, {1030, 500}, {1000, 700}} {
		plan, err := m.Plan(size[0], size[1])
		if err != nil {
			t.Fatal(err)
		}
		if plan.ScaledW%8 != 0 || plan.ScaledH%8 != 0 || math.Abs(float64(plan.ScaledW-size[0])) > 4 {
			t.Errorf("%v: scaled to %dx%d", size, plan.ScaledW, plan.ScaledH)
		}
		owners := make([]int, plan.ScaledW*plan.ScaledH/64)
		cols := plan.ScaledW / 8
		for _, tile := range plan.Tiles {
			if tile.Rect.Dx() > plan.InputW || tile.Rect.Dy() > plan.InputH {
				t.Fatalf("%v: tile %v larger than the %dx%d input", size, tile.Rect, plan.InputW, plan.InputH)
			}
			for y := tile.Own.Min.Y; y < tile.Own.Max.Y; y += 8 {
				for x := tile.Own.Min.X; x < tile.Own.Max.X; x += 8 {
					owners[(y/8)*cols+x/8]++
				}
			}
		}
		for i, n := range owners {
			if n != 1 {
				t.Fatalf("%v: cell %d owned by %d tiles", size, i, n)
			}
		}
	}
	// A frame that fits a tile is not tiled but resized to max_side.
	plan, err := m.Plan(768, 576)
	if err != nil {
		t.Fatal(err)
	}
	if plan.Tiled() || plan.ScaledW != 768 {
		t.Errorf("768x576 under 1024 tiles: %+v", plan)
	}
}

// person is a blob of frame-space density: mass spread as an isotropic
// Gaussian of sigma pixels around (x, y).
type person struct{ x, y, sigma, mass float64 }

// massIn returns the mass of the blobs inside the frame rectangle
// [x0,x1) x [y0,y1).
func massIn(people []person, x0, y0, x1, y1 float64) float64 {
	var s float64
	for _, p := range people {
		fx := 0.5 * (math.Erf((x1-p.x)/(p.sigma*math.Sqrt2)) - math.Erf((x0-p.x)/(p.sigma*math.Sqrt2)))
		fy := 0.5 * (math.Erf((y1-p.y)/(p.sigma*math.Sqrt2)) - math.Erf((y0-p.y)/(p.sigma*math.Sqrt2)))
		s += p.mass * fx * fy
	}
	return s
}

// idealOutputs builds what a perfect density model would output for every
// input of a frame under plan: each output cell holds the frame-space mass
// under it. Tiles see the people of their own rectangle only, so people in
// an overlap appear in two or four tiles' outputs.
func idealOutputs(people []person, plan *Plan, stride int) *Tensor {
	h, w := plan.InputH/stride, plan.InputW/stride
	out := &Tensor{Shape: []int64{int64(len(plan.Tiles)), 1, int64(h), int64(w)}, Data: make([]float32, len(plan.Tiles)*h*w)}
	sx, sy := plan.ScaleX(), plan.ScaleY()
	for t, tile := range plan.Tiles {
		for r := 0; r < h; r++ {
			for c := 0; c < w; c++ {
				x0, y0 := tile.Rect.Min.X+c*stride, tile.Rect.Min.Y+r*stride
				if x0 >= tile.Rect.Max.X || y0 >= tile.Rect.Max.Y {
					continue // padding
				}
				out.Data[t*h*w+r*w+c] = float32(massIn(people,
					float64(x0)/sx, float64(y0)/sy, float64(x0+stride)/sx, float64(y0+stride)/sy))
			}
		}
	}
	return out
}

func crowd(rng *rand.Rand, n, w, h int) ([]person, float64) {
	people := make([]person, n)
	var total float64
	for i := range people {
		// Keep blobs 4 sigma inside the frame so their mass is all in it.
		sigma := 2 + rng.Float64()*6
		people[i] = person{
			x:     4*sigma + rng.Float64()*(float64(w)-8*sigma),
			y:     4*sigma + rng.Float64()*(float64(h)-8*sigma),
			sigma: sigma, mass: 1,
		}
		total++
	}
	return people, total
}

func TestTilingKeepsDensityMass(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	m := tiledManifest(8, 512, 64)
	mustValid(t, m)
	for _, size := range [][2]int{{1920, 1080}, {1000, 700}, {1300, 517}} {
		people, total := crowd(rng, 300, size[0], size[1])
		plan, err := m.Plan(size[0], size[1])
		if err != nil {
			t.Fatal(err)
		}
		if !plan.Tiled() {
			t.Fatalf("%v: not tiled", size)
		}
		dm, err := DensityFromOutput(idealOutputs(people, &plan, 8), 0, &plan, 8)
		if err != nil {
			t.Fatal(err)
		}
		// The overlaps are counted once: the tiled map holds the frame's
		// mass, though the tiles' outputs together hold more.
		if got := dm.Sum(); math.Abs(got-total)/total > 0.01 {
			t.Errorf("%v: tiled map sums to %g, want %g within 1%%", size, got, total)
		}
		if float64(dm.Cols)*dm.CellW != float64(size[0]) || float64(dm.Rows)*dm.CellH != float64(size[1]) {
			t.Errorf("%v: map %dx%d cells of %gx%g does not cover the frame", size, dm.Cols, dm.Rows, dm.CellW, dm.CellH)
		}
		// Against the whole frame fed at once at the same scale: the
		// same cells, the same values.
		whole := plan
		whole.InputW, whole.InputH = plan.ScaledW, plan.ScaledH
		whole.Tiles = []Tile{{Rect: plan.Tiles[0].Rect.Union(plan.Tiles[len(plan.Tiles)-1].Rect), Own: plan.Tiles[0].Rect.Union(plan.Tiles[len(plan.Tiles)-1].Rect)}}
		ref, err := DensityFromOutput(idealOutputs(people, &whole, 8), 0, &whole, 8)
		if err != nil {
			t.Fatal(err)
		}
		for i := range ref.Data {
			if ref.Data[i] != dm.Data[i] {
				t.Fatalf("%v: cell %d is %g tiled, %g whole", size, i, dm.Data[i], ref.Data[i])
			}
		}
	}
}

func TestTilingResizeKeepsDensityMass(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, tc := range []struct {
		w, h, maxSide, multiple, stride int
	}{
		{1920, 1080, 640, 32, 8}, {768, 576, 512, 16, 4}, {3840, 2160, 1024, 32, 16}, {1001, 333, 0, 8, 8},
	} {
		m := testManifest(TaskDensity)
		m.Output.Stride, m.Input.Multiple, m.Input.MaxSide = tc.stride, tc.multiple, tc.maxSide
		mustValid(t, m)
		plan, err := m.Plan(tc.w, tc.h)
		if err != nil {
			t.Fatal(err)
		}
		if tc.maxSide > 0 && max(plan.ScaledW, plan.ScaledH) > tc.maxSide {
			t.Errorf("%+v: scaled %dx%d exceeds max_side", tc, plan.ScaledW, plan.ScaledH)
		}
		if plan.ScaledW%tc.multiple != 0 || plan.ScaledH%tc.multiple != 0 {
			t.Errorf("%+v: scaled %dx%d is not a multiple of %d", tc, plan.ScaledW, plan.ScaledH, tc.multiple)
		}
		aspect := float64(tc.w) / float64(tc.h)
		if got := float64(plan.ScaledW) / float64(plan.ScaledH); math.Abs(got-aspect)/aspect > 0.05 {
			t.Errorf("%+v: aspect %g, want %g", tc, got, aspect)
		}
		people, total := crowd(rng, 200, tc.w, tc.h)
		dm, err := DensityFromOutput(idealOutputs(people, &plan, tc.stride), 0, &plan, tc.stride)
		if err != nil {
			t.Fatal(err)
		}
		if got := dm.Sum(); math.Abs(got-total)/total > 0.01 {
			t.Errorf("%+v: resized map sums to %g, want %g within 1%%", tc, got, total)
		}
		// Mass lands where the people are: the frame's left half holds
		// the left half's mass.
		var left float64
		for r := 0; r < dm.Rows; r++ {
			for c := 0; c < dm.Cols/2; c++ {
				left += float64(dm.Data[r*dm.Cols+c])
			}
		}
		half := float64(dm.Cols/2) * dm.CellW
		if want := massIn(people, 0, 0, half, float64(tc.h)); math.Abs(left-want) > 1e-3*total {
			t.Errorf("%+v: left %g px hold %g, want %g", tc, half, left, want)
		}
	}
}
