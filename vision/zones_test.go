package vision

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// constMap returns a cols x rows map over a 640x480 frame with every cell
// set by v.
func gridMap(cols, rows int, v func(c, r int) float32) *DensityMap {
	m := &DensityMap{Cols: cols, Rows: rows, CellW: 640 / float64(cols), CellH: 480 / float64(rows), Data: make([]float32, cols*rows)}
	for r := 0; r < rows; r++ {
		for c := 0; c < cols; c++ {
			m.Data[r*cols+c] = v(c, r)
		}
	}
	return m
}

func rect(name string, x0, y0, x1, y1 float64) Zone {
	return Zone{Name: name, Polygon: [][2]float64{{x0, y0}, {x1, y0}, {x1, y1}, {x0, y1}}}
}

func TestZoneSumsExactOnConstructedMaps(t *testing.T) {
	// An L-shaped zone whose edges fall inside cells: mass is placed only
	// in cells wholly inside, wholly outside, or cut in known fractions.
	l := Zone{Name: "l", Polygon: [][2]float64{{0.1, 0.1}, {0.6, 0.1}, {0.6, 0.35}, {0.35, 0.35}, {0.35, 0.8}, {0.1, 0.8}}}
	zs, err := NewZoneSet([]Zone{l})
	if err != nil {
		t.Fatal(err)
	}
	const cols, rows = 20, 10 // cells of 0.05 x 0.1
	var want float64
	dm := gridMap(cols, rows, func(c, r int) float32 {
		x0, y0 := float64(c)*0.05, float64(r)*0.1
		x1, y1 := x0+0.05, y0+0.1
		inside := (x0 >= 0.1 && x1 <= 0.6 && y0 >= 0.1 && y1 <= 0.35) || (x0 >= 0.1 && x1 <= 0.35 && y0 >= 0.1 && y1 <= 0.8)
		outside := x1 <= 0.1 || x0 >= 0.6 || y1 <= 0.1 || y0 >= 0.8 || (x0 >= 0.35 && y0 >= 0.35)
		switch {
		case inside:
			want += 3
			return 3
		case outside:
			return 7
		}
		return 0 // an edge cell
	})
	got := zs.Counts(dm)
	if got["l"] != want {
		t.Errorf("zone l counts %g, want exactly %g", got["l"], want)
	}
	if got[ZoneAll] != dm.Sum() {
		t.Errorf("all counts %g, want %g", got[ZoneAll], dm.Sum())
	}
	// Edge cells count their inside fraction: row 3 (y 0.3..0.4) is cut
	// at y 0.35 right of x 0.35.
	cov, ok := zs.Coverage("l", cols, rows)
	if !ok {
		t.Fatal("no coverage for zone l")
	}
	for _, tc := range []struct {
		c, r int
		want float64
	}{{8, 3, 0.5}, {2, 0, 0}, {2, 1, 1}, {7, 5, 0}, {11, 1, 1}, {12, 1, 0}, {6, 3, 1}, {7, 3, 0.5}, {2, 8, 0}, {2, 7, 1}} {
		if got := cov[tc.r*cols+tc.c]; math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("cell (%d,%d) coverage %g, want %g", tc.c, tc.r, got, tc.want)
		}
	}
	var area float64
	for _, f := range cov {
		area += f * 0.05 * 0.1
	}
	if wantArea := 0.5*0.25 + 0.25*0.45; math.Abs(area-wantArea) > 1e-12 {
		t.Errorf("coverage adds up to area %g, want %g", area, wantArea)
	}
}

func TestZoneEdgeCells(t *testing.T) {
	// A triangle cutting cells diagonally, on a 1x1 and a fine grid.
	tri := Zone{Name: "tri", Polygon: [][2]float64{{0, 0}, {1, 0}, {0, 1}}}
	zs, err := NewZoneSet([]Zone{tri})
	if err != nil {
		t.Fatal(err)
	}
	if cov, _ := zs.Coverage("tri", 1, 1); math.Abs(cov[0]-0.5) > 1e-12 {
		t.Errorf("one cell under a half-square triangle covers %g, want 0.5", cov[0])
	}
	cov, _ := zs.Coverage("tri", 4, 4)
	// Diagonal cells are half in; cells above it fully; below it not.
	for r := 0; r < 4; r++ {
		for c := 0; c < 4; c++ {
			want := 0.0
			switch {
			case c+r < 3:
				want = 1
			case c+r == 3:
				want = 0.5
			}
			if got := cov[r*4+c]; math.Abs(got-want) > 1e-12 {
				t.Errorf("cell (%d,%d): %g, want %g", c, r, got, want)
			}
		}
	}
	// A uniform map counts the triangle's share exactly.
	dm := gridMap(64, 48, func(c, r int) float32 { return 1 })
	if got := zs.Counts(dm)["tri"]; math.Abs(got-64*48/2) > 1e-9 {
		t.Errorf("uniform map: triangle counts %g, want %d", got, 64*48/2)
	}
	// The same zone listed clockwise or anticlockwise, and a zone along the
	// picture's edges.
	rev := Zone{Name: "rev", Polygon: [][2]float64{{0, 1}, {1, 0}, {0, 0}}}
	whole := rect("whole", 0, 0, 1, 1)
	zs, err = NewZoneSet([]Zone{rev, whole})
	if err != nil {
		t.Fatal(err)
	}
	got := zs.Counts(dm)
	if math.Abs(got["rev"]-64*48/2) > 1e-9 || got["whole"] != got[ZoneAll] {
		t.Errorf("reversed triangle %g, whole frame %g of %g", got["rev"], got["whole"], got[ZoneAll])
	}
	// A zone smaller than one cell counts its fraction of that cell.
	tiny := rect("tiny", 0.51, 0.51, 0.52, 0.52)
	zs, err = NewZoneSet([]Zone{tiny})
	if err != nil {
		t.Fatal(err)
	}
	one := gridMap(2, 2, func(c, r int) float32 { return 4 })
	if got := zs.Counts(one)["tiny"]; math.Abs(got-4*0.0001/0.25) > 1e-12 {
		t.Errorf("tiny zone: %g, want %g", got, 4*0.0001/0.25)
	}
}

func TestZonesTilingTheImageSumToTheTotal(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	// Two zones split by a slanted line through the picture, and a fan of
	// three around an interior point.
	cut := [2][2]float64{{0.37, 0}, {0.71, 1}}
	sets := [][]Zone{
		{
			{Name: "left", Polygon: [][2]float64{{0, 0}, cut[0], cut[1], {0, 1}}},
			{Name: "right", Polygon: [][2]float64{cut[0], {1, 0}, {1, 1}, cut[1]}},
		},
		{
			{Name: "a", Polygon: [][2]float64{{0, 0}, {1, 0}, {1, 0.3}, {0.43, 0.61}, {0, 1}}},
			{Name: "b", Polygon: [][2]float64{{1, 0.3}, {1, 1}, {0.43, 0.61}}},
			{Name: "c", Polygon: [][2]float64{{0.43, 0.61}, {1, 1}, {0, 1}}},
		},
	}
	for _, zones := range sets {
		zs, err := NewZoneSet(zones)
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range [][2]int{{80, 60}, {37, 23}, {1, 1}} {
			dm := gridMap(g[0], g[1], func(c, r int) float32 { return rng.Float32() * 3 })
			counts := zs.Counts(dm)
			var sum float64
			for _, z := range zones {
				sum += counts[z.Name]
			}
			if math.Abs(sum-counts[ZoneAll]) > 1e-9*counts[ZoneAll] {
				t.Errorf("grid %v: zones sum to %g, the map to %g", g, sum, counts[ZoneAll])
			}
		}
		// Foot points, edges included, each land in exactly one zone.
		var dets []Detection
		for i := 0; i < 2000; i++ {
			x, y := rng.Float64()*640, rng.Float64()*480
			if i%10 == 0 {
				// On the slanted cut or the fan's spokes and the frame's
				// bottom and right edges.
				s := rng.Float64()
				x, y = (cut[0][0]+s*(cut[1][0]-cut[0][0]))*640, s*480
			}
			if i%10 == 1 {
				x, y = rng.Float64()*640, 480
			}
			if i%10 == 2 {
				x, y = 640, rng.Float64()*480
			}
			dets = append(dets, Detection{X0: x - 5, X1: x + 5, Y0: y - 30, Y1: y})
		}
		counts := zs.CountDetections(dets, 640, 480)
		var sum float64
		for _, z := range zones {
			sum += counts[z.Name]
		}
		if sum != float64(len(dets)) || counts[ZoneAll] != float64(len(dets)) {
			t.Errorf("%d foot points counted %g times in the zones, all %g", len(dets), sum, counts[ZoneAll])
		}
	}
}

func TestZoneMasksAreCachedPerGeometry(t *testing.T) {
	zs, err := NewZoneSet([]Zone{rect("a", 0.2, 0.2, 0.8, 0.8)})
	if err != nil {
		t.Fatal(err)
	}
	small := gridMap(10, 10, func(c, r int) float32 { return 1 })
	big := gridMap(100, 100, func(c, r int) float32 { return 1 })
	if got := zs.Counts(small)["a"]; got != 36 {
		t.Errorf("10x10: %g, want 36", got)
	}
	if got := zs.Counts(big)["a"]; got != 3600 {
		t.Errorf("100x100: %g, want 3600", got)
	}
	if len(zs.masks) != 2 {
		t.Errorf("%d geometries cached, want 2", len(zs.masks))
	}
	allocs := testing.AllocsPerRun(10, func() { zs.Counts(big) })
	if allocs > 3 {
		t.Errorf("counting a cached geometry allocates %g times", allocs)
	}
}

func TestZoneSetRefusesBadZones(t *testing.T) {
	for _, tc := range []struct {
		zones []Zone
		want  string
	}{
		{[]Zone{{Name: "", Polygon: rect("", 0, 0, 1, 1).Polygon}}, "zone 0: has no name"},
		{[]Zone{rect("all", 0, 0, 1, 1)}, `the name "all" is reserved`},
		{[]Zone{rect("a", 0, 0, 1, 1), rect("a", 0, 0, 0.5, 0.5)}, `zone "a": the name is used twice`},
		{[]Zone{{Name: "two", Polygon: [][2]float64{{0, 0}, {1, 1}}}}, "at least 3 points, got 2"},
		{[]Zone{{Name: "line", Polygon: [][2]float64{{0, 0}, {0.5, 0.5}, {1, 1}}}}, "has no area"},
		{[]Zone{{Name: "out", Polygon: [][2]float64{{0, 0}, {1.2, 0}, {1, 1}}}}, "outside the normalized range"},
		{[]Zone{{Name: "nan", Polygon: [][2]float64{{0, 0}, {math.NaN(), 0}, {1, 1}}}}, "outside the normalized range"},
		{[]Zone{{Name: "bowtie", Polygon: [][2]float64{{0, 0}, {1, 1}, {1, 0}, {0, 1}}}}, "crosses itself"},
	} {
		_, err := NewZoneSet(tc.zones)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.zones, err, tc.want)
		}
	}
	zs, err := NewZoneSet(nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := zs.Counts(gridMap(4, 4, func(c, r int) float32 { return 1 })); len(got) != 1 || got[ZoneAll] != 16 {
		t.Errorf("no zones: %v", got)
	}
}

func TestCountEstimateFollowsTheTask(t *testing.T) {
	zs, err := NewZoneSet([]Zone{{Name: "left", Polygon: [][2]float64{{0, 0}, {0.5, 0}, {0.5, 1}, {0, 1}}}})
	if err != nil {
		t.Fatal(err)
	}
	// A person whose foot stands just left of the middle of a 100 px wide
	// frame: its density cell straddles the zone's edge, but a detection
	// counts whole, by its foot point.
	det := Detection{X0: 40, Y0: 10, X1: 58, Y1: 60, Score: 0.9}
	e := Estimate{Count: 1, Detections: []Detection{det}, Density: DetectionDensity([]Detection{det}, 100, 100)}
	if got := zs.CountEstimate(e, TaskDetection, 100, 100); got["left"] != 1 || got[ZoneAll] != 1 {
		t.Errorf("detection counts %v, want left 1, all 1", got)
	}
	dm := &DensityMap{Cols: 2, Rows: 1, CellW: 50, CellH: 100, Data: []float32{2.5, 1}}
	if got := zs.CountEstimate(Estimate{Count: 3.5, Density: dm}, TaskDensity, 100, 100); got["left"] != 2.5 || got[ZoneAll] != 3.5 {
		t.Errorf("density counts %v, want left 2.5, all 3.5", got)
	}
	if got := zs.CountEstimate(Estimate{Count: 0}, TaskDensity, 100, 100); got["left"] != 0 || len(got) != 2 {
		t.Errorf("empty estimate counts %v", got)
	}
}
