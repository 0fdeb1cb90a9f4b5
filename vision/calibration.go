package vision

import (
	"errors"
	"fmt"
	"math"
)

// Calibration maps one camera's picture onto the ground plane: a
// homography from normalized image coordinates (0..1, origin top left) to
// ground positions in metres, fixed by four image points whose ground
// positions were measured. It gives zone areas in m², people per m², and
// the ground area each pixel covers (the perspective map).
type Calibration struct {
	// h is the row-major 3x3 homography, scaled so that points on the
	// ground have a positive homogeneous weight.
	h [9]float64
}

// NewCalibration solves the homography taking each image[i] (normalized)
// to ground[i] (metres). No three of the points may lie on a line, in
// either set, and the points must be listed in the same order around both
// quadrilaterals.
func NewCalibration(image, ground [4][2]float64) (*Calibration, error) {
	for i, p := range image {
		if !finite2(p) || !finite2(ground[i]) {
			return nil, fmt.Errorf("calibration: point %d (image %v, ground %v) is not finite", i, p, ground[i])
		}
	}
	if i, j, k, bad := collinearTriple(image); bad {
		return nil, fmt.Errorf("calibration: image points %d, %d and %d lie on a line", i, j, k)
	}
	if i, j, k, bad := collinearTriple(ground); bad {
		return nil, fmt.Errorf("calibration: ground points %d, %d and %d lie on a line", i, j, k)
	}
	// Direct linear transform with h[8] = 1: each correspondence
	// (x, y) -> (u, v) gives two linear equations in h[0..7].
	var a [8][9]float64
	for i := 0; i < 4; i++ {
		x, y := image[i][0], image[i][1]
		u, v := ground[i][0], ground[i][1]
		a[2*i] = [9]float64{x, y, 1, 0, 0, 0, -x * u, -y * u, u}
		a[2*i+1] = [9]float64{0, 0, 0, x, y, 1, -x * v, -y * v, v}
	}
	sol, err := solve8(&a)
	if err != nil {
		return nil, fmt.Errorf("calibration: %w", err)
	}
	c := &Calibration{}
	copy(c.h[:8], sol[:])
	c.h[8] = 1
	// Every calibration point is on the ground, so all weights share a
	// sign; make it positive.
	var pos, neg int
	for _, p := range image {
		if w := c.weight(p[0], p[1]); w > 0 {
			pos++
		} else if w < 0 {
			neg++
		}
	}
	switch {
	case neg == 4:
		for i := range c.h {
			c.h[i] = -c.h[i]
		}
	case pos != 4:
		return nil, errors.New("calibration: the points are not in the same order around the image and the ground quadrilaterals")
	}
	return c, nil
}

func finite2(p [2]float64) bool {
	return !math.IsNaN(p[0]) && !math.IsInf(p[0], 0) && !math.IsNaN(p[1]) && !math.IsInf(p[1], 0)
}

// collinearTriple finds three of the points on one line (relative to the
// quadrilateral's size).
func collinearTriple(p [4][2]float64) (int, int, int, bool) {
	var scale float64
	for i := range p {
		for j := range p {
			scale = math.Max(scale, math.Hypot(p[i][0]-p[j][0], p[i][1]-p[j][1]))
		}
	}
	if scale == 0 {
		return 0, 1, 2, true
	}
	for i := 0; i < 4; i++ {
		for j := i + 1; j < 4; j++ {
			for k := j + 1; k < 4; k++ {
				cross := (p[j][0]-p[i][0])*(p[k][1]-p[i][1]) - (p[j][1]-p[i][1])*(p[k][0]-p[i][0])
				if math.Abs(cross) < 1e-9*scale*scale {
					return i, j, k, true
				}
			}
		}
	}
	return 0, 0, 0, false
}

// solve8 solves the 8x8 system in a (augmented with the right-hand side
// as column 8) by Gaussian elimination with partial pivoting.
func solve8(a *[8][9]float64) ([8]float64, error) {
	var x [8]float64
	for col := 0; col < 8; col++ {
		piv := col
		for r := col + 1; r < 8; r++ {
			if math.Abs(a[r][col]) > math.Abs(a[piv][col]) {
				piv = r
			}
		}
		if math.Abs(a[piv][col]) < 1e-12 {
			return x, errors.New("the points fix no homography (singular system)")
		}
		a[col], a[piv] = a[piv], a[col]
		for r := col + 1; r < 8; r++ {
			f := a[r][col] / a[col][col]
			for k := col; k < 9; k++ {
				a[r][k] -= f * a[col][k]
			}
		}
	}
	for r := 7; r >= 0; r-- {
		s := a[r][8]
		for k := r + 1; k < 8; k++ {
			s -= a[r][k] * x[k]
		}
		x[r] = s / a[r][r]
	}
	return x, nil
}

// weight is the homogeneous weight of image point (x, y): positive on the
// ground, zero on the horizon, negative beyond it.
func (c *Calibration) weight(x, y float64) float64 {
	return c.h[6]*x + c.h[7]*y + c.h[8]
}

// Homography returns the row-major 3x3 matrix taking homogeneous
// normalized image points to homogeneous ground points in metres.
func (c *Calibration) Homography() [9]float64 { return c.h }

// ToGround returns the ground position in metres of the normalized image
// point (x, y); ok is false for points on or above the horizon, which no
// ground position maps to.
func (c *Calibration) ToGround(x, y float64) (gx, gy float64, ok bool) {
	w := c.weight(x, y)
	if !(w > 0) {
		return 0, 0, false
	}
	return (c.h[0]*x + c.h[1]*y + c.h[2]) / w, (c.h[3]*x + c.h[4]*y + c.h[5]) / w, true
}

// AreaM2 returns the zone's ground area in m². A homography keeps straight
// edges straight, so the area is that of the polygon through the ground
// positions of the zone's corners. A zone reaching the horizon has no
// finite area and is an error.
func (c *Calibration) AreaM2(z Zone) (float64, error) {
	if len(z.Polygon) < 3 {
		return 0, fmt.Errorf("zone %q: polygon needs at least 3 points, got %d", z.Name, len(z.Polygon))
	}
	ground := make([][2]float64, len(z.Polygon))
	for i, p := range z.Polygon {
		gx, gy, ok := c.ToGround(p[0], p[1])
		if !ok {
			return 0, fmt.Errorf("zone %q: point [%g, %g] is on or above the horizon of the ground calibration", z.Name, p[0], p[1])
		}
		ground[i] = [2]float64{gx, gy}
	}
	return math.Abs(shoelace(ground)), nil
}

// PeoplePerM2 returns count people spread over the zone's ground area.
func (c *Calibration) PeoplePerM2(z Zone, count float64) (float64, error) {
	area, err := c.AreaM2(z)
	if err != nil {
		return 0, err
	}
	if area <= 0 {
		return 0, fmt.Errorf("zone %q: ground area is zero", z.Name)
	}
	return count / area, nil
}

// PerspectiveMap returns, for a cols x rows grid over a frameW x frameH
// picture (row by row), the ground area in m² that one pixel of each cell
// covers on average: the cell's exact ground area divided by its pixel
// count. A person far away covers few pixels where this is large, so
// foreground pixels weighted by it measure ground occupied. Cells not
// wholly below the horizon are 0. With cols = 1 it is a per-row-band
// profile.
func (c *Calibration) PerspectiveMap(frameW, frameH, cols, rows int) ([]float64, error) {
	if frameW < 1 || frameH < 1 || cols < 1 || rows < 1 {
		return nil, fmt.Errorf("perspective map: frame %dx%d with a %dx%d grid", frameW, frameH, cols, rows)
	}
	out := make([]float64, cols*rows)
	pixels := float64(frameW) / float64(cols) * float64(frameH) / float64(rows)
	cell := make([][2]float64, 4)
	for r := 0; r < rows; r++ {
		y0, y1 := float64(r)/float64(rows), float64(r+1)/float64(rows)
		for col := 0; col < cols; col++ {
			x0, x1 := float64(col)/float64(cols), float64(col+1)/float64(cols)
			corners := [4][2]float64{{x0, y0}, {x1, y0}, {x1, y1}, {x0, y1}}
			ok := true
			for i, p := range corners {
				gx, gy, on := c.ToGround(p[0], p[1])
				if !on {
					ok = false
					break
				}
				cell[i] = [2]float64{gx, gy}
			}
			if ok {
				out[r*cols+col] = math.Abs(shoelace(cell)) / pixels
			}
		}
	}
	return out, nil
}
