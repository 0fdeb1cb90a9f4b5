package synth

import (
	"math"
)

// Surface identifiers of a background pixel: the ground, the back wall, the
// sky or ceiling, or (0 and up) the index of a static object's part.
const (
	idGround = -1
	idWall   = -2
	idSky    = -3
)

// background is the static part of every frame: the picture, and for each
// pixel the horizontal distance from the camera of the static object seen
// there (+Inf where the ground, the wall or the sky is seen), against which
// people are hidden.
type background struct {
	w, h int
	pix  []uint8   // RGBA, 4 bytes a pixel, alpha 255
	occ  []float32 // horizontal distance of the occluding object, metres
	// lit is how much direct light reaches the ground or wall seen at each
	// pixel, 0 to 255 (0 on static objects): people's shadows show only
	// where there is light to take away.
	lit []uint8
}

// hit is what a ray sees.
type hit struct {
	id  int
	t   float64
	p   vec3
	n   vec3
	up  bool
	dir vec3
}

// trace finds the nearest surface along the ray from the camera through
// image point (u, v). parts lists the indices of the parts whose screen bounds
// contain the pixel.
func (s *scene) trace(u, v float64, parts []int) hit {
	dx, dy, dz := s.cam.ray(u, v)
	o := vec3{0, s.cam.HeightM, 0}
	d := vec3{dx, dy, dz}
	best := hit{id: idSky, t: math.Inf(1), dir: d}
	if dy < 0 {
		t := s.cam.HeightM / -dy
		best = hit{id: idGround, t: t, n: vec3{0, 1, 0}, up: true}
	}
	if dz > 0 {
		t := s.wallZ / dz
		if t < best.t {
			y := o.y + t*dy
			if y <= s.wallTop {
				best = hit{id: idWall, t: t, n: vec3{0, 0, -1}}
			}
		}
	}
	for _, i := range parts {
		t, n, up, ok := s.prims[i].intersect(o, d, 1e-6)
		if ok && t < best.t {
			best = hit{id: i, t: t, n: n, up: up}
		}
	}
	best.dir = d
	if !math.IsInf(best.t, 1) {
		best.p = o.add(d.scale(best.t))
	}
	return best
}

// lit reports how much of the direct light reaches point p: 0 in the shadow
// of a static object, 1 otherwise. self is the part p lies on (or a
// negative id).
func (s *scene) lit(p vec3, self int) float64 {
	o := p.add(s.sun.scale(1e-4))
	ground := self == idGround
	for i := range s.prims {
		q := &s.prims[i]
		if i == self {
			continue
		}
		if ground && (p.x < q.gx0 || p.x > q.gx1 || p.z < q.gz0 || p.z > q.gz1) {
			continue
		}
		if _, _, _, ok := q.intersect(o, s.sun, 1e-4); ok {
			return 0
		}
	}
	return 1
}

// albedo returns the surface colour of a hit, filtered over a pixel whose
// footprint on a ground or wall hit is fw by fh metres.
func (s *scene) albedo(h hit, fw, fh float64) rgb {
	switch {
	case h.id == idGround:
		return s.groundAlbedo(h.p.x, h.p.z, fw, fh)
	case h.id == idWall:
		return s.wallAlbedo(h.p.x, h.p.y, fw, fh)
	case h.id == idSky:
		if s.kind == SceneHall {
			return s.ceiling
		}
		d := h.dir.normalized()
		return s.sky[0].mix(s.sky[1], math.Min(1, math.Max(0, d.y*3)))
	}
	p := &s.prims[h.id]
	c := p.side
	if h.up {
		c = p.top
	}
	switch p.tex {
	case texStone:
		c = c.scale(0.9 + 0.2*fbm(p.seed, h.p.x*3+h.p.z*2, h.p.y*3, 3))
	case texFoliage:
		n := fbm(p.seed, (h.p.x+h.p.z)*2.5, h.p.y*2.5, 3)
		c = c.scale(0.55 + 0.9*n*n)
	case texWood:
		c = c.scale(0.85 + 0.25*valueNoise(p.seed, (h.p.x+h.p.z)*1.5, h.p.y*40))
	case texBark:
		c = c.scale(0.75 + 0.4*valueNoise(p.seed, math.Atan2(h.p.z-p.c.z, h.p.x-p.c.x)*4, h.p.y*6))
	case texWater:
		w := valueNoise(p.seed, h.p.x*1.5, h.p.z*1.5)
		c = c.scale(0.85 + 0.3*w)
	}
	return c
}

// bandCover returns the fraction of the interval [a-w/2, a+w/2] covered by
// bands [k·period+off, k·period+off+width) for integer k: the box-filtered
// indicator of a periodic band, which fades to width/period as w grows.
func bandCover(a, w, period, off, width float64) float64 {
	if w < 1e-9 {
		m := math.Mod(a-off, period)
		if m < 0 {
			m += period
		}
		if m < width {
			return 1
		}
		return 0
	}
	cum := func(t float64) float64 {
		t -= off
		k := math.Floor(t / period)
		return k*width + math.Min(t-k*period, width)
	}
	return (cum(a+w/2) - cum(a-w/2)) / w
}

// rectCover returns the fraction of the interval [a-w/2, a+w/2] inside
// [lo, hi].
func rectCover(a, w, lo, hi float64) float64 {
	if w < 1e-9 {
		if a >= lo && a < hi {
			return 1
		}
		return 0
	}
	return math.Max(0, math.Min(a+w/2, hi)-math.Max(a-w/2, lo)) / w
}

// groundAlbedo returns the ground colour at (x, z) filtered over a
// footprint of fw by fh metres.
func (s *scene) groundAlbedo(x, z, fw, fh float64) rgb {
	g := &s.ground
	row := math.Floor(z / g.tileZ)
	xo := 0.0
	if g.pattern == groundBond && int64(row)&1 != 0 {
		xo = g.tileX / 2
	}
	col := math.Floor((x + xo) / g.tileX)
	fade := math.Max(0, 1-1.5*math.Max(fw/g.tileX, fh/g.tileZ))
	c := g.base
	if g.pattern == groundChecker {
		even := (int64(col)+int64(row))&1 == 0
		alt := g.base.mix(g.alt, 0.5)
		if even {
			c = alt.mix(g.base, fade)
		} else {
			c = alt.mix(g.alt, fade)
		}
	}
	j := hashUnit(g.seed, int64(col), int64(row)) - 0.5
	c = c.scale(1 + g.jitter*2*j*fade)
	if g.blotch > 0 {
		c = c.scale(1 + g.blotch*(2*fbm(g.seed^0xb10, x/3, z/3, 3)-1))
	}
	if g.band > 0 {
		bx := bandCover(x, fw, g.band, 0, g.tileX)
		bz := bandCover(z, fh, g.band, 0, g.tileZ)
		c = c.mix(g.bandCol, 1-(1-bx)*(1-bz))
	}
	gx := bandCover(x+xo, fw, g.tileX, -g.grout/2, g.grout)
	gz := bandCover(z, fh, g.tileZ, -g.grout/2, g.grout)
	c = c.mix(g.groutCol, 1-(1-gx)*(1-gz))
	if g.pools > 0 {
		px := math.Mod(math.Abs(x)+g.pools/2, g.pools) - g.pools/2
		pz := math.Mod(math.Abs(z)+g.pools/2, g.pools) - g.pools/2
		c = c.scale(0.93 + 0.14*math.Exp(-(px*px+pz*pz)/(g.pools*g.pools*0.08)))
	}
	return c
}

// wallAlbedo returns the back wall's colour at (x, y) filtered over a
// footprint of fw by fh metres.
func (s *scene) wallAlbedo(x, y, fw, fh float64) rgb {
	w := &s.wall
	c := w.base.scale(0.93 + 0.1*fbm(w.seed, x/2, y/2, 3))
	if w.windows {
		// Storeys of windows above the ground floor; the ground floor has
		// the doors and a darker shop-front band.
		wx := bandCover(x, fw, w.bay, (w.bay-w.winW)/2, w.winW)
		wy := bandCover(y, fh, w.storey, w.storey*0.3, w.winH) * rectCover(y, fh, w.storey, s.wallTop-1)
		glass := w.glass.scale(0.8 + 0.5*hashUnit(w.seed, int64(math.Floor(x/w.bay)), int64(math.Floor(y/w.storey))))
		c = c.mix(glass, wx*wy)
		shop := rectCover(y, fh, 0.9, 2.9) * bandCover(x, fw, w.bay*2, w.bay*0.2, w.bay*1.2)
		c = c.mix(w.glass.scale(0.9), shop*0.8)
		c = c.mix(w.base.scale(0.75), rectCover(y, fh, w.storey-0.35, w.storey))
	}
	for _, p := range w.pictures {
		fx := rectCover(x, fw, p.x0-0.08, p.x1+0.08) * rectCover(y, fh, p.y0-0.08, p.y1+0.08)
		if fx == 0 {
			continue
		}
		c = c.mix(p.frame, fx)
		in := rectCover(x, fw, p.x0, p.x1) * rectCover(y, fh, p.y0, p.y1)
		if in > 0 {
			n1 := fbm(p.seed, x*1.3, y*1.3, 3)
			n2 := valueNoise(p.seed^0x77, x*3, y*3)
			art := p.colours[0].mix(p.colours[1], n1).mix(p.colours[2], n2*n2)
			c = c.mix(art, in)
		}
	}
	c = c.mix(w.plinth, rectCover(y, fh, -1, w.plinthH))
	for _, d := range s.doors {
		in := rectCover(x, fw, d.x-d.halfW, d.x+d.halfW) * rectCover(y, fh, -1, d.height)
		c = c.mix(rgb{0.07, 0.07, 0.08}, in*0.92)
	}
	return c
}

// sample renders one ray: its albedo, its surface id and the light it
// gets, with hard shadows.
func (s *scene) sample(u, v float64, parts []int) (rgb, int, float64) {
	h := s.trace(u, v, parts)
	fw, fh := s.footprint(h, u, v)
	a := s.albedo(h, fw, fh)
	light := s.ambient
	if h.id != idSky {
		if nl := h.n.dot(s.sun); nl > 0 {
			light += s.direct * nl * s.lit(h.p, h.id)
		}
		if h.id >= 0 {
			// Sides of objects facing away from the light still get some
			// light bounced from the ground.
			light += 0.08 * math.Max(0, -h.n.y+0.3)
		}
	}
	return a, h.id, light
}

// renderBackground ray-casts the static scene once: one ray through each
// pixel centre, cast shadows softened by a small blur, and four rays for
// pixels on the silhouette of an object.
func renderBackground(s *scene, grainSeed uint64) *background {
	w, h := s.cam.Width, s.cam.Height
	n := w * h
	albedo := make([]rgb, n)
	amb := make([]float32, n)
	dir := make([]float32, n)
	ids := make([]int32, n)
	occ := make([]float32, n)
	parts := make([]int, 0, len(s.prims))
	for y := range h {
		for x := range w {
			parts = s.partsAt(x, y, parts[:0])
			u, v := float64(x)+0.5, float64(y)+0.5
			hh := s.trace(u, v, parts)
			fw, fh := s.footprint(hh, u, v)
			i := y*w + x
			albedo[i] = s.albedo(hh, fw, fh)
			ids[i] = int32(hh.id)
			occ[i] = float32(math.Inf(1))
			a := s.ambient
			d := 0.0
			if hh.id != idSky {
				if nl := hh.n.dot(s.sun); nl > 0 {
					d = s.direct * nl * s.lit(hh.p, hh.id)
				}
				if hh.id >= 0 {
					a += 0.08 * math.Max(0, -hh.n.y+0.3)
					occ[i] = float32(math.Hypot(hh.p.x, hh.p.z))
				}
			}
			amb[i], dir[i] = float32(a), float32(d)
		}
	}
	blurShadows(dir, ids, w, h, s.shadowPx)

	bg := &background{w: w, h: h, pix: make([]uint8, 4*n), occ: occ, lit: make([]uint8, n)}
	for i := range n {
		full := 0.0
		switch ids[i] {
		case idGround:
			full = s.direct * s.sun.y
		case idWall:
			full = s.direct * -s.sun.z
		}
		if full > 1e-6 {
			bg.lit[i] = toByte(float64(dir[i]) / full)
		}
	}
	grain := newRNG(grainSeed, streamGrain)
	for y := range h {
		for x := range w {
			i := y*w + x
			id := ids[i]
			var c rgb
			edge := (x > 0 && ids[i-1] != id) || (x < w-1 && ids[i+1] != id) ||
				(y > 0 && ids[i-w] != id) || (y < h-1 && ids[i+w] != id)
			if edge && (id >= 0 || (x > 0 && ids[i-1] >= 0) || (x < w-1 && ids[i+1] >= 0) ||
				(y > 0 && ids[i-w] >= 0) || (y < h-1 && ids[i+w] >= 0)) {
				// Four rays on a rotated grid across an object's silhouette.
				parts = s.partsAt(x, y, parts[:0])
				for _, o := range [4][2]float64{{0.375, 0.125}, {0.875, 0.375}, {0.625, 0.875}, {0.125, 0.625}} {
					a, _, l := s.sample(float64(x)+o[0], float64(y)+o[1], parts)
					c = rgb{c[0] + a[0]*l/4, c[1] + a[1]*l/4, c[2] + a[2]*l/4}
				}
			} else {
				c = albedo[i].scale(float64(amb[i] + dir[i]))
			}
			c = c.mul(s.tint)
			c = s.atmosphere(c, x, y, id)
			// Static sensor pattern: fixed-pattern noise and a vignette.
			vx := (float64(x)+0.5)/float64(w) - 0.5
			vy := (float64(y)+0.5)/float64(h) - 0.5
			c = c.scale(1 - 0.22*(vx*vx+vy*vy))
			noise := grain.NormFloat64() * 1.2 / 255
			for k := range 3 {
				bg.pix[4*i+k] = toByte(c[k] + noise)
			}
			bg.pix[4*i+3] = 255
		}
	}
	return bg
}

// footprint returns the size in metres of a pixel's footprint on a ground
// or wall hit.
func (s *scene) footprint(h hit, u, v float64) (float64, float64) {
	switch h.id {
	case idGround:
		x1, z1, ok1 := s.cam.groundAt(u+1, v)
		x2, z2, ok2 := s.cam.groundAt(u, v+1)
		if !ok1 || !ok2 {
			return 1e3, 1e3
		}
		return math.Abs(x1-h.p.x) + math.Abs(x2-h.p.x), math.Abs(z1-h.p.z) + math.Abs(z2-h.p.z)
	case idWall:
		f := h.t * h.dir.length() / s.cam.FocalPx
		return f, f
	}
	return 0, 0
}

// atmosphere fades distant outdoor surfaces towards the haze colour.
func (s *scene) atmosphere(c rgb, x, y int, id int32) rgb {
	if s.hazeDist > 1e8 || id == idSky {
		return c
	}
	gx, gz, ok := s.cam.groundAt(float64(x)+0.5, float64(y)+0.5)
	d := s.wallZ
	if ok && gz < d {
		d = math.Hypot(gx, gz)
	}
	return c.mix(s.haze, 1-math.Exp(-d/s.hazeDist))
}

// partsAt lists the parts whose screen bounds contain pixel (x, y).
func (s *scene) partsAt(x, y int, out []int) []int {
	for i := range s.prims {
		p := &s.prims[i]
		if x >= p.sx0 && x <= p.sx1 && y >= p.sy0 && y <= p.sy1 {
			out = append(out, i)
		}
	}
	return out
}

// blurShadows softens the direct light term of ground and wall pixels with
// two passes of a box blur of the given radius, mixing only pixels of the
// same surface.
func blurShadows(dir []float32, ids []int32, w, h, radius int) {
	if radius <= 0 {
		return
	}
	tmp := make([]float32, len(dir))
	for range 2 {
		for y := range h {
			row := y * w
			for x := range w {
				id := ids[row+x]
				if id >= 0 {
					tmp[row+x] = dir[row+x]
					continue
				}
				sum, cnt := float32(0), float32(0)
				for k := max(0, x-radius); k <= min(w-1, x+radius); k++ {
					if ids[row+k] == id {
						sum += dir[row+k]
						cnt++
					}
				}
				tmp[row+x] = sum / cnt
			}
		}
		for y := range h {
			for x := range w {
				i := y*w + x
				id := ids[i]
				if id >= 0 {
					dir[i] = tmp[i]
					continue
				}
				sum, cnt := float32(0), float32(0)
				for k := max(0, y-radius); k <= min(h-1, y+radius); k++ {
					if ids[k*w+x] == id {
						sum += tmp[k*w+x]
						cnt++
					}
				}
				dir[i] = sum / cnt
			}
		}
	}
}

// toByte converts a channel in [0,1] to an 8-bit level, clamping.
func toByte(c float64) uint8 {
	v := c*255 + 0.5
	if v <= 0 {
		return 0
	}
	if v >= 255 {
		return 255
	}
	return uint8(v)
}
