package vision

import (
	"fmt"
	"math"
	"sync"
)

// ZoneAll is the name under which counts report the whole frame.
const ZoneAll = "all"

// Zone is a counting region of one camera's picture.
type Zone struct {
	// Name identifies the zone within its camera; "all" is reserved.
	Name string
	// Polygon has three or more [x, y] points in normalized image
	// coordinates (0..1, origin top left). It must not cross itself.
	Polygon [][2]float64
}

// Contains reports whether the normalized point (x, y) is inside the
// zone. A point on an edge two zones share belongs to exactly one of them.
func (z Zone) Contains(x, y float64) bool {
	in := false
	p := z.Polygon
	for i, j := 0, len(p)-1; i < len(p); j, i = i, i+1 {
		a, b := p[i], p[j]
		if (a[1] > y) == (b[1] > y) {
			continue
		}
		// Evaluate each edge from its upper end, so that an edge two
		// zones share gives both the same crossing, bit for bit.
		if a[1] > b[1] {
			a, b = b, a
		}
		if x < (b[0]-a[0])*(y-a[1])/(b[1]-a[1])+a[0] {
			in = !in
		}
	}
	return in
}

// maxCachedMasks bounds the mask sets a ZoneSet keeps, one per map
// geometry seen.
const maxCachedMasks = 16

// ZoneSet counts people per zone of one camera. The masks of a density
// map geometry are built the first time a map of that geometry is counted
// and kept. A ZoneSet is safe for concurrent use.
type ZoneSet struct {
	zones []Zone

	mu    sync.Mutex
	masks map[[2]int][]zoneMask
}

// zoneMask lists the cells a zone covers and the fraction of each inside.
type zoneMask struct {
	cells []int32
	frac  []float64
}

// NewZoneSet checks zones and returns a set counting them. Zones need a
// unique name other than "all" and a polygon of at least three points in
// [0, 1] that encloses an area and does not cross itself.
func NewZoneSet(zones []Zone) (*ZoneSet, error) {
	seen := map[string]bool{}
	s := &ZoneSet{masks: make(map[[2]int][]zoneMask)}
	for i, z := range zones {
		switch {
		case z.Name == "":
			return nil, fmt.Errorf("zone %d: has no name", i)
		case z.Name == ZoneAll:
			return nil, fmt.Errorf("zone %d: the name %q is reserved for the whole frame", i, ZoneAll)
		case seen[z.Name]:
			return nil, fmt.Errorf("zone %q: the name is used twice", z.Name)
		}
		seen[z.Name] = true
		if err := checkPolygon(z.Polygon); err != nil {
			return nil, fmt.Errorf("zone %q: %w", z.Name, err)
		}
		poly := make([][2]float64, len(z.Polygon))
		copy(poly, z.Polygon)
		s.zones = append(s.zones, Zone{Name: z.Name, Polygon: poly})
	}
	return s, nil
}

func checkPolygon(p [][2]float64) error {
	if len(p) < 3 {
		return fmt.Errorf("polygon needs at least 3 points, got %d", len(p))
	}
	for _, pt := range p {
		if !(pt[0] >= 0 && pt[0] <= 1 && pt[1] >= 0 && pt[1] <= 1) {
			return fmt.Errorf("polygon point [%g, %g] is outside the normalized range [0, 1]", pt[0], pt[1])
		}
	}
	n := len(p)
	for i := 0; i < n; i++ {
		for j := i + 1; j < n; j++ {
			if j == i+1 || (i == 0 && j == n-1) {
				continue // neighbours share a vertex
			}
			if segmentsCross(p[i], p[(i+1)%n], p[j], p[(j+1)%n]) {
				return fmt.Errorf("polygon crosses itself: edge %d and edge %d meet", i, j)
			}
		}
	}
	if math.Abs(shoelace(p)) < 1e-12 {
		return fmt.Errorf("polygon has no area")
	}
	return nil
}

// shoelace returns the signed area of a polygon.
func shoelace(p [][2]float64) float64 {
	var a float64
	for i := range p {
		q, r := p[i], p[(i+1)%len(p)]
		a += q[0]*r[1] - r[0]*q[1]
	}
	return a / 2
}

// segmentsCross reports whether segments ab and cd share a point.
func segmentsCross(a, b, c, d [2]float64) bool {
	orient := func(p, q, r [2]float64) float64 {
		return (q[0]-p[0])*(r[1]-p[1]) - (q[1]-p[1])*(r[0]-p[0])
	}
	onSegment := func(p, q, r [2]float64) bool {
		return math.Min(p[0], q[0]) <= r[0] && r[0] <= math.Max(p[0], q[0]) &&
			math.Min(p[1], q[1]) <= r[1] && r[1] <= math.Max(p[1], q[1])
	}
	d1, d2 := orient(c, d, a), orient(c, d, b)
	d3, d4 := orient(a, b, c), orient(a, b, d)
	if ((d1 > 0 && d2 < 0) || (d1 < 0 && d2 > 0)) && ((d3 > 0 && d4 < 0) || (d3 < 0 && d4 > 0)) {
		return true
	}
	return (d1 == 0 && onSegment(c, d, a)) || (d2 == 0 && onSegment(c, d, b)) ||
		(d3 == 0 && onSegment(a, b, c)) || (d4 == 0 && onSegment(a, b, d))
}

// Zones returns the set's zones.
func (s *ZoneSet) Zones() []Zone { return s.zones }

// Counts returns the density mass inside each zone, and the whole map's
// under "all". A zone's count is the sum over cells of the cell's value
// times the fraction of the cell's area inside the zone; fractions are
// exact (the polygon clipped to the cell), so a cell wholly inside counts
// fully and zones that tile the picture sum to the whole. The map is taken
// to cover its frame exactly, as the maps vision makes do: zone coordinates
// are relative to Cols*CellW by Rows*CellH.
func (s *ZoneSet) Counts(m *DensityMap) map[string]float64 {
	counts := make(map[string]float64, len(s.zones)+1)
	counts[ZoneAll] = m.Sum()
	if len(s.zones) == 0 {
		return counts
	}
	if m.Cols < 1 || m.Rows < 1 || len(m.Data) != m.Cols*m.Rows {
		for _, z := range s.zones {
			counts[z.Name] = 0
		}
		return counts
	}
	masks := s.masksFor(m.Cols, m.Rows)
	for i, z := range s.zones {
		var sum float64
		mk := masks[i]
		for k, c := range mk.cells {
			sum += float64(m.Data[c]) * mk.frac[k]
		}
		counts[z.Name] = sum
	}
	return counts
}

// Coverage returns, for the named zone on a cols x rows grid over the
// picture, the fraction of each cell's area inside the zone (row by row);
// false when no zone has that name.
func (s *ZoneSet) Coverage(name string, cols, rows int) ([]float64, bool) {
	for i, z := range s.zones {
		if z.Name != name {
			continue
		}
		out := make([]float64, cols*rows)
		if cols < 1 || rows < 1 {
			return out, true
		}
		mk := s.masksFor(cols, rows)[i]
		for k, c := range mk.cells {
			out[c] = mk.frac[k]
		}
		return out, true
	}
	return nil, false
}

// CountDetections returns the detections whose foot point lies inside each
// zone of a frameW x frameH frame, and all of them under "all". Foot
// points on the frame's edge count as inside it.
func (s *ZoneSet) CountDetections(dets []Detection, frameW, frameH int) map[string]float64 {
	counts := make(map[string]float64, len(s.zones)+1)
	counts[ZoneAll] = float64(len(dets))
	for _, z := range s.zones {
		counts[z.Name] = 0
	}
	if frameW < 1 || frameH < 1 {
		return counts
	}
	below1 := math.Nextafter(1, 0)
	for _, d := range dets {
		fx, fy := d.Foot()
		x := math.Max(0, math.Min(fx/float64(frameW), below1))
		y := math.Max(0, math.Min(fy/float64(frameH), below1))
		for _, z := range s.zones {
			if z.Contains(x, y) {
				counts[z.Name]++
			}
		}
	}
	return counts
}

// masksFor returns the zones' masks on a cols x rows grid, building them
// on first use.
func (s *ZoneSet) masksFor(cols, rows int) []zoneMask {
	key := [2]int{cols, rows}
	s.mu.Lock()
	defer s.mu.Unlock()
	if mk, ok := s.masks[key]; ok {
		return mk
	}
	mk := make([]zoneMask, len(s.zones))
	var clip polygonClipper
	for i, z := range s.zones {
		mk[i] = buildMask(z.Polygon, cols, rows, &clip)
	}
	if len(s.masks) >= maxCachedMasks {
		clear(s.masks)
	}
	s.masks[key] = mk
	return mk
}

// maskSnap is the relative distance from 0 or 1 below which a cell's
// coverage is taken as exactly outside or inside, absorbing rounding in
// the clipped area.
const maskSnap = 1e-9

// buildMask computes the fraction of each cell of a cols x rows grid over
// the unit square that lies inside the polygon, clipping the polygon to
// every cell its bounding box touches.
func buildMask(poly [][2]float64, cols, rows int, clip *polygonClipper) zoneMask {
	minX, minY, maxX, maxY := 1.0, 1.0, 0.0, 0.0
	for _, p := range poly {
		minX, maxX = math.Min(minX, p[0]), math.Max(maxX, p[0])
		minY, maxY = math.Min(minY, p[1]), math.Max(maxY, p[1])
	}
	c0 := max(0, int(math.Floor(minX*float64(cols))))
	c1 := min(cols, int(math.Ceil(maxX*float64(cols))))
	r0 := max(0, int(math.Floor(minY*float64(rows))))
	r1 := min(rows, int(math.Ceil(maxY*float64(rows))))
	var mk zoneMask
	for r := r0; r < r1; r++ {
		y0, y1 := float64(r)/float64(rows), float64(r+1)/float64(rows)
		for c := c0; c < c1; c++ {
			x0, x1 := float64(c)/float64(cols), float64(c+1)/float64(cols)
			cell := (x1 - x0) * (y1 - y0)
			f := clip.area(poly, x0, y0, x1, y1) / cell
			switch {
			case f <= maskSnap:
				continue
			case f >= 1-maskSnap:
				f = 1
			}
			mk.cells = append(mk.cells, int32(r*cols+c))
			mk.frac = append(mk.frac, f)
		}
	}
	return mk
}

// polygonClipper clips polygons to rectangles (Sutherland-Hodgman), reusing
// its buffers. Clipping a simple polygon, convex or not, against a convex
// window gives a polygon whose area is the exact area of the overlap.
type polygonClipper struct {
	a, b [][2]float64
}

// area returns the area of the part of poly inside [x0,x1] x [y0,y1].
func (c *polygonClipper) area(poly [][2]float64, x0, y0, x1, y1 float64) float64 {
	c.a = append(c.a[:0], poly...)
	for edge := 0; edge < 4; edge++ {
		c.b = c.b[:0]
		in := func(p [2]float64) bool {
			switch edge {
			case 0:
				return p[0] >= x0
			case 1:
				return p[0] <= x1
			case 2:
				return p[1] >= y0
			}
			return p[1] <= y1
		}
		cross := func(p, q [2]float64) [2]float64 {
			var t float64
			switch edge {
			case 0:
				t = (x0 - p[0]) / (q[0] - p[0])
			case 1:
				t = (x1 - p[0]) / (q[0] - p[0])
			case 2:
				t = (y0 - p[1]) / (q[1] - p[1])
			default:
				t = (y1 - p[1]) / (q[1] - p[1])
			}
			pt := [2]float64{p[0] + t*(q[0]-p[0]), p[1] + t*(q[1]-p[1])}
			// Put the crossing exactly on the window's edge.
			switch edge {
			case 0:
				pt[0] = x0
			case 1:
				pt[0] = x1
			case 2:
				pt[1] = y0
			default:
				pt[1] = y1
			}
			return pt
		}
		for i := range c.a {
			p, q := c.a[(i+len(c.a)-1)%len(c.a)], c.a[i]
			switch pin, qin := in(p), in(q); {
			case pin && qin:
				c.b = append(c.b, q)
			case pin && !qin:
				c.b = append(c.b, cross(p, q))
			case !pin && qin:
				c.b = append(c.b, cross(p, q), q)
			}
		}
		c.a, c.b = c.b, c.a
		if len(c.a) == 0 {
			return 0
		}
	}
	return math.Abs(shoelace(c.a))
}

// CountEstimate returns the people in each zone (and ZoneAll) of one
// frame's estimate, by the rule of the estimator's task: a detection model
// counts the detections whose foot point lies in the zone; a density
// estimate counts the density mass inside it. ZoneAll is always e.Count.
func (s *ZoneSet) CountEstimate(e Estimate, task Task, frameW, frameH int) map[string]float64 {
	var counts map[string]float64
	switch {
	case task == TaskDetection:
		counts = s.CountDetections(e.Detections, frameW, frameH)
	case e.Density != nil:
		counts = s.Counts(e.Density)
	default:
		counts = make(map[string]float64, len(s.zones)+1)
		for _, z := range s.zones {
			counts[z.Name] = 0
		}
	}
	counts[ZoneAll] = e.Count
	return counts
}
