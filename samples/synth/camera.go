package synth

import (
	"math"
)

// Camera is the pinhole model of a synthetic video's camera: an elevated
// camera above a flat ground, pitched down, with square pixels and the
// principal point at the image centre. World coordinates are metres (x to the
// camera's right, y up from the ground, z forward along the ground from the
// point below the camera); image coordinates follow the package's pixel
// convention (see the package documentation).
type Camera struct {
	// Width and Height are the image size in pixels.
	Width int `json:"width"`
	// Height is the image height in pixels.
	Height int `json:"height"`
	// HeightM is the height of the optical centre above the ground, metres.
	HeightM float64 `json:"height_m"`
	// TiltDeg is the pitch of the optical axis below the horizontal, degrees.
	TiltDeg float64 `json:"tilt_deg"`
	// VFOVDeg is the vertical field of view, degrees.
	VFOVDeg float64 `json:"vfov_deg"`
	// FocalPx is the focal length in pixels.
	FocalPx float64 `json:"focal_px"`
	// CX and CY are the principal point in image coordinates.
	CX float64 `json:"cx"`
	// CY is the vertical coordinate of the principal point.
	CY float64 `json:"cy"`
}

// NewCamera returns the camera of a width×height image with the optical
// centre heightM metres above the ground, pitched tiltDeg below the horizontal,
// with a vertical field of view of vfovDeg.
func NewCamera(width, height int, heightM, tiltDeg, vfovDeg float64) Camera {
	return Camera{
		Width:   width,
		Height:  height,
		HeightM: heightM,
		TiltDeg: tiltDeg,
		VFOVDeg: vfovDeg,
		FocalPx: float64(height) / 2 / math.Tan(vfovDeg*math.Pi/360),
		CX:      float64(width) / 2,
		CY:      float64(height) / 2,
	}
}

// Project maps the world point (x, y, z) to image coordinates. ok is false
// when the point is not in front of the camera.
func (c Camera) Project(x, y, z float64) (u, v float64, ok bool) {
	cv := c.view()
	u, v, _, ok = cv.project(x, y, z)
	return u, v, ok
}

// GroundAt returns the world point on the ground seen at image point (u, v);
// ok is false when that ray does not meet the ground in front of the camera.
func (c Camera) GroundAt(u, v float64) (x, z float64, ok bool) {
	cv := c.view()
	return cv.groundAt(u, v)
}

// view returns the camera with its trigonometry computed once, for the hot
// paths.
func (c Camera) view() view {
	s, co := math.Sincos(c.TiltDeg * math.Pi / 180)
	return view{Camera: c, sin: s, cos: co}
}

// view is a Camera with the sine and cosine of its tilt precomputed.
type view struct {
	Camera
	sin, cos float64
}

// depth returns the distance of the world point (x, y, z) along the optical
// axis.
func (c *view) depth(y, z float64) float64 {
	return (c.HeightM-y)*c.sin + z*c.cos
}

// project maps a world point to image coordinates and its depth along the
// optical axis; ok is false for points less than 5 cm in front of the camera.
func (c *view) project(x, y, z float64) (u, v, depth float64, ok bool) {
	dy := c.HeightM - y
	zc := dy*c.sin + z*c.cos
	if zc < 0.05 {
		return 0, 0, zc, false
	}
	yc := dy*c.cos - z*c.sin
	return c.CX + c.FocalPx*x/zc, c.CY + c.FocalPx*yc/zc, zc, true
}

// ray returns the world direction (not normalised) of the ray through image
// point (u, v); the ray starts at (0, HeightM, 0).
func (c *view) ray(u, v float64) (dx, dy, dz float64) {
	a := (u - c.CX) / c.FocalPx
	b := (v - c.CY) / c.FocalPx
	return a, -c.sin - b*c.cos, c.cos - b*c.sin
}

// groundAt intersects the ray through (u, v) with the ground.
func (c *view) groundAt(u, v float64) (x, z float64, ok bool) {
	dx, dy, dz := c.ray(u, v)
	if dy >= -1e-9 {
		return 0, 0, false
	}
	t := c.HeightM / -dy
	return t * dx, t * dz, true
}

// halfWidth returns half the width, in metres, of the ground seen at ground
// distance z: points with |x| beyond it are outside the image.
func (c *view) halfWidth(z float64) float64 {
	return c.CX / c.FocalPx * c.depth(0, z)
}

// personPx returns the image height in pixels of an upright person h metres
// tall standing at ground point (x, z): the distance between the
// projections of the foot point and the top of the head.
func (c *view) personPx(x, z, h float64) float64 {
	u0, v0, _, ok0 := c.project(x, 0, z)
	u1, v1, _, ok1 := c.project(x, h, z)
	if !ok0 || !ok1 {
		return 0
	}
	return math.Hypot(u1-u0, v1-v0)
}

// cameraFor picks the camera of a resolved Config: fields the Config leaves
// zero come from u, three numbers in [0,1) drawn from the seed.
func cameraFor(cfg Config, u [3]float64) Camera {
	heightM := cfg.CameraHeightM
	if heightM == 0 {
		heightM = 4.5 + u[0]
	}
	vfov := cfg.CameraVFOVDeg
	if vfov == 0 {
		vfov = 46 + 6*u[1]
	}
	tilt := cfg.CameraTiltDeg
	if tilt == 0 {
		// The tilt that shows the far distance, where a 1.7 m person is 3%
		// of the image tall (about 22 px at 720 rows), 6 to 14% of the
		// image below the top edge. A person standing on the bottom edge
		// is then 22 to 28% of the image tall.
		target := (0.06 + 0.08*u[2]) * float64(cfg.Height)
		best, bestErr := 25.0, math.Inf(1)
		for t := 10.0; t <= 60; t += 0.1 {
			c := NewCamera(cfg.Width, cfg.Height, heightM, t, vfov).view()
			z, ok := c.distanceForHeight(1.7, 0.03*float64(cfg.Height))
			if !ok {
				continue
			}
			if _, v, _, ok := c.project(0, 0, z); ok {
				if e := math.Abs(v - target); e < bestErr {
					best, bestErr = t, e
				}
			}
		}
		tilt = best
	}
	return NewCamera(cfg.Width, cfg.Height, heightM, tilt, vfov)
}

// distanceForHeight returns the ground distance, beyond the foot of the
// image, at which a person h metres tall standing in the middle of the
// view is px pixels tall; ok is false when no distance up to 500 m is.
func (c *view) distanceForHeight(h, px float64) (float64, bool) {
	_, z0, ok := c.groundAt(c.CX, float64(c.Height))
	if !ok {
		z0 = 0.5
	}
	for z := z0; z < 500; z += 0.25 {
		if c.personPx(0, z, h) < px {
			return z, true
		}
	}
	return 0, false
}
