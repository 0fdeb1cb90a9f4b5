package vision

import (
	"math"
	"strings"
	"testing"
)

// knownH is a perspective homography from normalized image coordinates to
// metres: a camera looking down a plaza, the horizon above the picture
// (weight 0.2 + 0.8y > 0 for y >= 0).
var knownH = [9]float64{
	30, -6, -12,
	0, 25, 5,
	0, 0.8, 0.2,
}

func applyH(h [9]float64, x, y float64) (float64, float64, float64) {
	w := h[6]*x + h[7]*y + h[8]
	return (h[0]*x + h[1]*y + h[2]) / w, (h[3]*x + h[4]*y + h[5]) / w, w
}

func knownCalibration(t *testing.T) (*Calibration, [4][2]float64) {
	t.Helper()
	image := [4][2]float64{{0.2, 0.3}, {0.85, 0.25}, {0.95, 0.9}, {0.1, 0.8}}
	var ground [4][2]float64
	for i, p := range image {
		ground[i][0], ground[i][1], _ = applyH(knownH, p[0], p[1])
	}
	c, err := NewCalibration(image, ground)
	if err != nil {
		t.Fatal(err)
	}
	return c, image
}

func TestCalibrationRecoversKnownHomography(t *testing.T) {
	c, _ := knownCalibration(t)
	for _, p := range [][2]float64{{0, 0}, {1, 1}, {0.5, 0.5}, {0.33, 0.77}, {1, 0}} {
		gx, gy, ok := c.ToGround(p[0], p[1])
		wx, wy, _ := applyH(knownH, p[0], p[1])
		if !ok || math.Abs(gx-wx) > 1e-9 || math.Abs(gy-wy) > 1e-9 {
			t.Errorf("%v: ground (%g, %g) ok %v, want (%g, %g)", p, gx, gy, ok, wx, wy)
		}
	}
	h := c.Homography()
	for i := range h {
		if want := knownH[i] / knownH[8]; math.Abs(h[i]-want) > 1e-9 {
			t.Errorf("h[%d] = %g, want %g", i, h[i], want)
		}
	}
	// Above the horizon (y < -0.25) nothing maps to the ground.
	if _, _, ok := c.ToGround(0.5, -0.3); ok {
		t.Error("a point above the horizon mapped to the ground")
	}
}

// jacobianArea integrates |det J| of the known homography over a polygon's
// bounding box, counting points inside the polygon: an independent route
// to the ground area. For h with last row (0, a, b), det J = det(H) / w^3.
func jacobianArea(z Zone, n int) float64 {
	h := knownH
	det := h[0]*(h[4]*h[8]-h[5]*h[7]) - h[1]*(h[3]*h[8]-h[5]*h[6]) + h[2]*(h[3]*h[7]-h[4]*h[6])
	var sum float64
	d := 1 / float64(n)
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			x, y := (float64(i)+0.5)*d, (float64(j)+0.5)*d
			if !z.Contains(x, y) {
				continue
			}
			w := h[6]*x + h[7]*y + h[8]
			sum += math.Abs(det/(w*w*w)) * d * d
		}
	}
	return sum
}

func TestCalibrationAreaAndPeoplePerM2(t *testing.T) {
	c, image := knownCalibration(t)
	// The calibration quadrilateral itself, a triangle and a concave zone.
	zones := []Zone{
		{Name: "quad", Polygon: [][2]float64{image[0], image[1], image[2], image[3]}},
		{Name: "tri", Polygon: [][2]float64{{0.1, 0.1}, {0.9, 0.2}, {0.4, 0.95}}},
		{Name: "l", Polygon: [][2]float64{{0.1, 0.1}, {0.6, 0.1}, {0.6, 0.35}, {0.35, 0.35}, {0.35, 0.8}, {0.1, 0.8}}},
	}
	for _, z := range zones {
		area, err := c.AreaM2(z)
		if err != nil {
			t.Fatal(err)
		}
		want := jacobianArea(z, 1500)
		if math.Abs(area-want)/want > 2e-3 {
			t.Errorf("zone %s: %g m², integration gives %g", z.Name, area, want)
		}
		dens, err := c.PeoplePerM2(z, 42)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(dens-42/area) > 1e-12 {
			t.Errorf("zone %s: %g people/m², want %g", z.Name, dens, 42/area)
		}
	}
	// An affine calibration: a 40 m x 30 m plaza filling the picture.
	flat, err := NewCalibration([4][2]float64{{0, 0}, {1, 0}, {1, 1}, {0, 1}}, [4][2]float64{{0, 0}, {40, 0}, {40, 30}, {0, 30}})
	if err != nil {
		t.Fatal(err)
	}
	if area, err := flat.AreaM2(rect("half", 0, 0, 0.5, 1)); err != nil || math.Abs(area-600) > 1e-9 {
		t.Errorf("half the plaza: %g m² (%v), want 600", area, err)
	}
}

func TestCalibrationPerspectiveMap(t *testing.T) {
	c, _ := knownCalibration(t)
	const fw, fh, cols, rows = 640, 480, 16, 12
	pm, err := c.PerspectiveMap(fw, fh, cols, rows)
	if err != nil {
		t.Fatal(err)
	}
	// Summed over the picture, m² per pixel times pixels is the picture's
	// ground area.
	var total float64
	pixels := float64(fw/cols) * float64(fh/rows)
	for _, v := range pm {
		total += v * pixels
	}
	whole, err := c.AreaM2(rect("whole", 0, 0, 1, 1))
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(total-whole)/whole > 1e-9 {
		t.Errorf("perspective map covers %g m², the picture %g", total, whole)
	}
	// Far rows (top) cover more ground per pixel than near ones.
	for r := 1; r < rows; r++ {
		if pm[r*cols] >= pm[(r-1)*cols] {
			t.Errorf("row %d: %g m²/px, not less than row %d's %g", r, pm[r*cols], r-1, pm[(r-1)*cols])
		}
	}
	// Rows reaching above the horizon are 0.
	sky, err := NewCalibration([4][2]float64{{0.1, 0.6}, {0.9, 0.6}, {0.9, 0.9}, {0.1, 0.9}},
		[4][2]float64{{-5, 20}, {5, 20}, {3, 2}, {-3, 2}})
	if err != nil {
		t.Fatal(err)
	}
	pm, err = sky.PerspectiveMap(fw, fh, 1, 10)
	if err != nil {
		t.Fatal(err)
	}
	if pm[0] != 0 || pm[9] <= 0 {
		t.Errorf("per-row profile %v: want 0 at the top (beyond the horizon), positive at the bottom", pm)
	}
	if _, err := sky.AreaM2(rect("sky", 0, 0, 1, 1)); err == nil || !strings.Contains(err.Error(), "horizon") {
		t.Errorf("zone over the horizon: %v", err)
	}
}

func TestCalibrationRefusesBadPoints(t *testing.T) {
	square := [4][2]float64{{0, 0}, {1, 0}, {1, 1}, {0, 1}}
	for _, tc := range []struct {
		image, ground [4][2]float64
		want          string
	}{
		{[4][2]float64{{0, 0}, {0.5, 0.5}, {1, 1}, {0, 1}}, square, "image points 0, 1 and 2 lie on a line"},
		{square, [4][2]float64{{0, 0}, {10, 0}, {20, 0}, {0, 10}}, "ground points 0, 1 and 2 lie on a line"},
		{square, [4][2]float64{{0, 0}, {10, 10}, {10, 0}, {0, 10}}, "not in the same order"},
		{square, [4][2]float64{{0, 0}, {math.Inf(1), 0}, {1, 1}, {0, 1}}, "not finite"},
	} {
		_, err := NewCalibration(tc.image, tc.ground)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v -> %v: %v, want %q", tc.image, tc.ground, err, tc.want)
		}
	}
}
