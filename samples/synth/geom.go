package synth

import "math"

// vec3 is a point or direction in world metres.
type vec3 struct{ x, y, z float64 }

func (a vec3) add(b vec3) vec3      { return vec3{a.x + b.x, a.y + b.y, a.z + b.z} }
func (a vec3) sub(b vec3) vec3      { return vec3{a.x - b.x, a.y - b.y, a.z - b.z} }
func (a vec3) scale(s float64) vec3 { return vec3{a.x * s, a.y * s, a.z * s} }
func (a vec3) dot(b vec3) float64   { return a.x*b.x + a.y*b.y + a.z*b.z }
func (a vec3) length() float64      { return math.Sqrt(a.dot(a)) }
func (a vec3) normalized() vec3     { return a.scale(1 / a.length()) }

// rgb is a colour with channels in [0,1], in display (sRGB) space.
type rgb [3]float64

func (c rgb) scale(s float64) rgb { return rgb{c[0] * s, c[1] * s, c[2] * s} }
func (c rgb) mix(d rgb, t float64) rgb {
	return rgb{c[0] + (d[0]-c[0])*t, c[1] + (d[1]-c[1])*t, c[2] + (d[2]-c[2])*t}
}
func (c rgb) mul(d rgb) rgb { return rgb{c[0] * d[0], c[1] * d[1], c[2] * d[2]} }

// primKind is the shape of a static object's part.
type primKind uint8

const (
	primBox primKind = iota
	primCylinder
	primSphere
)

// texture is how a surface's albedo varies over it.
type texture uint8

const (
	texPlain texture = iota
	texStone
	texFoliage
	texWood
	texWater
	texBark
)

// prim is one part of a static object: an axis-aligned box, a vertical
// cylinder or a sphere.
type prim struct {
	kind primKind
	// lo and hi bound the part; for a box they are the box.
	lo, hi vec3
	// c and r are the centre and radius of a cylinder (c.y unused) or a
	// sphere.
	c vec3
	r float64
	// side and top are the albedo of the sides and of the upward faces.
	side, top rgb
	tex       texture
	seed      uint64
	// screen bounds of the part, in pixels, inclusive.
	sx0, sy0, sx1, sy1 int
	// ground bounds of the part's shadow, in metres.
	gx0, gz0, gx1, gz1 float64
}

// newBox returns a box part.
func newBox(x0, y0, z0, x1, y1, z1 float64, side, top rgb, tex texture) prim {
	return prim{kind: primBox, lo: vec3{x0, y0, z0}, hi: vec3{x1, y1, z1}, side: side, top: top, tex: tex}
}

// newCylinder returns a vertical cylinder part standing on y0.
func newCylinder(cx, cz, r, y0, y1 float64, side, top rgb, tex texture) prim {
	return prim{kind: primCylinder, lo: vec3{cx - r, y0, cz - r}, hi: vec3{cx + r, y1, cz + r},
		c: vec3{cx, 0, cz}, r: r, side: side, top: top, tex: tex}
}

// newSphere returns a sphere part.
func newSphere(cx, cy, cz, r float64, col rgb, tex texture) prim {
	return prim{kind: primSphere, lo: vec3{cx - r, cy - r, cz - r}, hi: vec3{cx + r, cy + r, cz + r},
		c: vec3{cx, cy, cz}, r: r, side: col, top: col, tex: tex}
}

// intersect returns the nearest t > tmin at which the ray o+t·d meets the
// part, the surface normal there and whether the face is an upward face.
func (p *prim) intersect(o, d vec3, tmin float64) (t float64, n vec3, up, ok bool) {
	switch p.kind {
	case primBox:
		return intersectBox(p.lo, p.hi, o, d, tmin)
	case primCylinder:
		return p.intersectCylinder(o, d, tmin)
	default:
		return p.intersectSphere(o, d, tmin)
	}
}

// intersectBox is the slab test for an axis-aligned box.
func intersectBox(lo, hi, o, d vec3, tmin float64) (float64, vec3, bool, bool) {
	tn, tf := math.Inf(-1), math.Inf(1)
	axis, sign := 0, 0.0
	oa := [3]float64{o.x, o.y, o.z}
	da := [3]float64{d.x, d.y, d.z}
	la := [3]float64{lo.x, lo.y, lo.z}
	ha := [3]float64{hi.x, hi.y, hi.z}
	for i := range 3 {
		if math.Abs(da[i]) < 1e-12 {
			if oa[i] < la[i] || oa[i] > ha[i] {
				return 0, vec3{}, false, false
			}
			continue
		}
		inv := 1 / da[i]
		t0, t1 := (la[i]-oa[i])*inv, (ha[i]-oa[i])*inv
		s := -1.0
		if t0 > t1 {
			t0, t1 = t1, t0
			s = 1
		}
		if t0 > tn {
			tn, axis, sign = t0, i, s
		}
		tf = math.Min(tf, t1)
		if tn > tf {
			return 0, vec3{}, false, false
		}
	}
	if tn <= tmin {
		return 0, vec3{}, false, false
	}
	var n vec3
	switch axis {
	case 0:
		n.x = sign
	case 1:
		n.y = sign
	default:
		n.z = sign
	}
	return tn, n, axis == 1 && sign > 0, true
}

func (p *prim) intersectCylinder(o, d vec3, tmin float64) (float64, vec3, bool, bool) {
	best := math.Inf(1)
	var bn vec3
	up := false
	ox, oz := o.x-p.c.x, o.z-p.c.z
	a := d.x*d.x + d.z*d.z
	if a > 1e-12 {
		b := ox*d.x + oz*d.z
		c := ox*ox + oz*oz - p.r*p.r
		disc := b*b - a*c
		if disc >= 0 {
			t := (-b - math.Sqrt(disc)) / a
			if t > tmin {
				y := o.y + t*d.y
				if y >= p.lo.y && y <= p.hi.y {
					best = t
					bn = vec3{(ox + t*d.x) / p.r, 0, (oz + t*d.z) / p.r}
				}
			}
		}
	}
	if math.Abs(d.y) > 1e-12 {
		for _, cap := range [2]float64{p.hi.y, p.lo.y} {
			t := (cap - o.y) / d.y
			if t <= tmin || t >= best {
				continue
			}
			x, z := ox+t*d.x, oz+t*d.z
			if x*x+z*z <= p.r*p.r {
				best = t
				if cap == p.hi.y {
					bn, up = vec3{0, 1, 0}, true
				} else {
					bn, up = vec3{0, -1, 0}, false
				}
			}
		}
	}
	if math.IsInf(best, 1) {
		return 0, vec3{}, false, false
	}
	return best, bn, up, true
}

func (p *prim) intersectSphere(o, d vec3, tmin float64) (float64, vec3, bool, bool) {
	oc := o.sub(p.c)
	a := d.dot(d)
	b := oc.dot(d)
	c := oc.dot(oc) - p.r*p.r
	disc := b*b - a*c
	if disc < 0 {
		return 0, vec3{}, false, false
	}
	t := (-b - math.Sqrt(disc)) / a
	if t <= tmin {
		return 0, vec3{}, false, false
	}
	n := oc.add(d.scale(t)).scale(1 / p.r)
	return t, n, false, true
}
