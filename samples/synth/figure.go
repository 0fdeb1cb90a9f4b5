package synth

import (
	"math"
)

// pt is a projected body point: image position, depth along the optical
// axis and pixels per metre across the line of sight there.
type pt struct {
	u, v, depth, ppm float64
}

// body is the frame of one person: foot point, facing and the camera, to
// place and project points given in the person's own coordinates (metres to
// the right, up, and forward).
type body struct {
	cam    *view
	x, z   float64
	fx, fz float64 // forward
	rx, rz float64 // right
}

// world returns the world point at (right, up, forward) in the body frame.
func (b *body) world(r, y, f float64) vec3 {
	return vec3{b.x + r*b.rx + f*b.fx, y, b.z + r*b.rz + f*b.fz}
}

// at projects the body-frame point (right, up, forward).
func (b *body) at(r, y, f float64) pt {
	w := b.world(r, y, f)
	return b.proj(w)
}

// proj projects a world point; points behind the camera land far away.
func (b *body) proj(w vec3) pt {
	u, v, d, ok := b.cam.project(w.x, w.y, w.z)
	if !ok {
		return pt{u: -1e6, v: -1e6, depth: d, ppm: 0}
	}
	return pt{u: u, v: v, depth: d, ppm: b.cam.FocalPx / d}
}

// halfAcross returns the half-width in pixels, square to the image
// direction (ax, ay), of the body's horizontal elliptic cross-section at
// height y with half-width hw (right) and half-depth hd (forward).
func (b *body) halfAcross(y, hw, hd, ax, ay float64) float64 {
	c := b.at(0, y, 0)
	r := b.at(hw, y, 0)
	f := b.at(0, y, hd)
	l := math.Hypot(ax, ay)
	if l < 1e-9 {
		return 0
	}
	nx, ny := -ay/l, ax/l
	pr := (r.u-c.u)*nx + (r.v-c.v)*ny
	pf := (f.u-c.u)*nx + (f.v-c.v)*ny
	return math.Hypot(pr, pf)
}

// limb is a chain of joints of one leg or arm, in body coordinates.
type limb struct {
	a, b, c vec3 // hip/shoulder, knee/elbow, ankle/hand (x right, y up, z forward)
}

// legIK places the knee between hip and ankle (body coordinates), bending
// forward, for a thigh of length la and a shin of length lb.
func legIK(hip, ankle vec3, la, lb float64) vec3 {
	df, dy := ankle.z-hip.z, ankle.y-hip.y
	d := math.Hypot(df, dy)
	d = math.Min(d, (la+lb)*0.999)
	d = math.Max(d, math.Abs(la-lb)+1e-3)
	cosA := (la*la + d*d - lb*lb) / (2 * la * d)
	alpha := math.Acos(math.Max(-1, math.Min(1, cosA)))
	base := math.Atan2(dy, df) // direction hip→ankle in the (forward, up) plane
	ang := base + alpha        // turn towards forward
	k := hip.add(vec3{0, la * math.Sin(ang), la * math.Cos(ang)})
	k.x = hip.x + (ankle.x-hip.x)*0.5
	return k
}

// armAt returns the elbow and hand of an arm hanging from shoulder s
// (body coordinates), the upper arm turned up by swing radians from
// hanging down (positive is forward) and the forearm by swing+bend, with the
// arm spread out by spread radians to side sign.
func armAt(s vec3, upper, lower, swing, bend, spread, side float64) (vec3, vec3) {
	dir := func(a float64) vec3 {
		return vec3{side * math.Sin(spread), -math.Cos(a) * math.Cos(spread), math.Sin(a) * math.Cos(spread)}
	}
	e := s.add(dir(swing).scale(upper))
	h := e.add(dir(swing + bend).scale(lower))
	return e, h
}

// pose is the set of body-frame joints of one person in one frame.
type pose struct {
	legs [2]limb
	arms [2]limb
	shoe [2][2]vec3 // heel and toe
}

// poseOf computes a person's joints from its gait and idle pose.
func poseOf(p *person) pose {
	h := p.h
	s := h / 1.7
	w := p.look.build
	var ps pose
	wk := p.walk
	// Legs reach the ground nearly straight when standing; the hips drop a
	// little in the stride.
	hipY := (0.5 - 0.015*wk) * h
	la, lb := 0.235*h, 0.232*h
	for i := range 2 {
		side := -1.0
		if i == 1 {
			side = 1
		}
		ph := p.phase + float64(i)*math.Pi
		fwd := 0.13 * h * math.Sin(ph) * wk
		lift := 0.035 * h * math.Max(0, math.Cos(ph)) * wk
		hip := vec3{side * 0.055 * h * w, hipY, 0}
		ankle := vec3{side * 0.06 * h * w, 0.045*h + lift, fwd}
		knee := legIK(hip, ankle, la, lb)
		ps.legs[i] = limb{hip, knee, ankle}
		ps.shoe[i] = [2]vec3{ankle.add(vec3{0, -0.02 * s, -0.03 * s}), ankle.add(vec3{0, -0.025 * s, 0.11 * s})}

		// Arms swing against the leg on the same side.
		sh := vec3{side * 0.175 * s * w, 0.81 * h, leanOf(p, 0.81*h)}
		swing := -0.45 * math.Sin(ph) * wk
		bend := 0.15 + 0.35*math.Max(0, swing)
		spread := 0.07
		if !p.moving {
			idle := 1 - wk
			switch p.idle {
			case posePhone:
				if i == 1 {
					swing, bend = swing*wk+0.25*idle, bend*wk+1.5*idle
					spread = 0.02
				}
			case posePhoto:
				swing, bend = swing*wk+0.95*idle, bend*wk+0.85*idle
				spread = -0.25 * idle
			case poseHandsBack:
				swing, bend = swing*wk-0.3*idle, bend*wk-0.5*idle
				spread = 0.12
			}
		}
		e, hd := armAt(sh, 0.19*h, 0.2*h, swing, bend, spread, side)
		ps.arms[i] = limb{sh, e, hd}
	}
	return ps
}

// leanOf returns how far forward, in metres, the body of a walking person
// leans at height y: nothing at the hips, growing to the shoulders. The head
// stays over the foot point, where the truth puts it.
func leanOf(p *person, y float64) float64 {
	f := (y - 0.5*p.h) / (0.31 * p.h)
	return 0.03 * p.h / 1.7 * p.walk * math.Max(0, math.Min(1, f))
}

// drawPerson paints one person with the canvas, part by part from back to
// front; pixels where a static object nearer to the camera than the person
// is seen are left alone.
func drawPerson(cv *canvas, cam *view, p *person) {
	b := body{cam: cam, x: p.x, z: p.z, fx: p.fx, fz: p.fz, rx: p.fz, rz: -p.fx}
	dist := float32(math.Hypot(p.x, p.z))
	h := p.h
	s := h / 1.7
	a := &p.look
	w := a.build
	ps := poseOf(p)

	// Cull people entirely outside the frame.
	foot := b.at(0, 0, 0)
	top := b.at(0, h, 0)
	m := 0.5 * h * foot.ppm
	if math.Max(foot.u, top.u)+m < 0 || math.Min(foot.u, top.u)-m > float64(cv.w) ||
		math.Max(foot.v, top.v)+m < 0 || math.Min(foot.v, top.v)-m > float64(cv.h) {
		return
	}

	// Towards the camera: positive when the person faces it.
	toCam := -(p.fx*p.x + p.fz*p.z) / math.Max(math.Hypot(p.x, p.z), 1e-6)

	proj := func(v vec3) pt { return b.at(v.x, v.y, v.z) }
	capsule := func(a, c vec3, ra, rc float64, col rgb) {
		pa, pc := proj(a), proj(c)
		cv.capsule(pa.u, pa.v, ra*pa.ppm, pc.u, pc.v, rc*pc.ppm, col, dist)
	}

	// Legs, the farther first: shoe, shin, thigh.
	legOrder := [2]int{0, 1}
	if proj(ps.legs[0].b).depth < proj(ps.legs[1].b).depth {
		legOrder = [2]int{1, 0}
	}
	shin := a.bottom
	if a.shorts || a.skirt {
		shin = a.skin
	}
	thigh := a.bottom
	if a.skirt {
		thigh = a.skin
	}
	for _, i := range legOrder {
		l := ps.legs[i]
		capsule(ps.shoe[i][0], ps.shoe[i][1], 0.036*s, 0.032*s, a.shoes)
		capsule(l.b, l.c, 0.05*s, 0.04*s, shin)
		capsule(l.a, l.b, 0.075*s*w, 0.055*s, thigh)
	}
	// Hips.
	capsule(vec3{-0.06 * h * w, 0.5 * h, 0}, vec3{0.06 * h * w, 0.5 * h, 0}, 0.085*s*w, 0.085*s*w, a.bottom)

	trap := func(yTop, hwTop, hdTop, yBot, hwBot, hdBot float64, col rgb) {
		t := b.at(0, yTop, leanOf(p, yTop))
		bt := b.at(0, yBot, leanOf(p, yBot))
		ax, ay := bt.u-t.u, bt.v-t.v
		cv.trapezoid(t.u, t.v, b.halfAcross(yTop, hwTop, hdTop, ax, ay), bt.u, bt.v, b.halfAcross(yBot, hwBot, hdBot, ax, ay), col, dist)
	}
	if a.skirt {
		trap(0.52*h, 0.15*s*w, 0.1*s, 0.3*h, 0.22*s*w, 0.17*s, a.bottom)
	}

	// Torso, arms, hair, backpack and head in depth order.
	torsoDepth := func(y float64) float64 { return b.at(0, y, 0).depth }
	var front, back []int
	for i := range 2 {
		e := proj(ps.arms[i].b)
		if e.depth > torsoDepth(ps.arms[i].b.y)+0.04*s {
			back = append(back, i)
		} else {
			front = append(front, i)
		}
	}
	sleeve := a.top
	fore := a.top
	if a.shortSleeves {
		fore = a.skin
	}
	arm := func(i int) {
		l := ps.arms[i]
		capsule(l.a, l.b, 0.055*s, 0.045*s, sleeve)
		capsule(l.b, l.c, 0.042*s, 0.036*s, fore)
		hp := proj(l.c)
		r := 0.045 * s * hp.ppm
		cv.capsule(hp.u, hp.v, r, hp.u, hp.v, r, a.skin, dist)
	}
	hairBack := func() {
		if a.longHair && !a.hat {
			capsule(vec3{0, p.headY(), -0.03 * s}, vec3{0, 0.77 * h, -0.08 * s}, 0.085*s, 0.08*s, a.hair)
		}
	}
	pack := func() {
		if a.backpack {
			capsule(vec3{0, 0.74 * h, leanOf(p, 0.74*h) - 0.15*s}, vec3{0, 0.62 * h, leanOf(p, 0.62*h) - 0.16*s}, 0.11*s, 0.12*s, a.bag)
		}
	}
	for _, i := range back {
		arm(i)
	}
	if toCam > 0 {
		hairBack()
		pack()
	}
	if a.coat {
		trap(0.81*h, 0.19*s*w, 0.12*s, 0.3*h, 0.165*s*w, 0.13*s, a.top)
	} else {
		trap(0.81*h, 0.2*s*w, 0.12*s, 0.48*h, 0.155*s*w, 0.1*s, a.top)
	}
	trap(0.855*h, 0.07*s, 0.06*s, 0.81*h, 0.2*s*w, 0.12*s, a.top)
	photo := !p.moving && p.idle == posePhoto
	if !photo {
		for _, i := range front {
			arm(i)
		}
	}
	capsule(vec3{0, 0.82 * h, leanOf(p, 0.82*h)}, vec3{0, p.headY() - 0.6*p.headR(), 0.01 * s}, 0.05*s, 0.045*s, a.skin)
	if toCam <= 0 {
		pack()
		hairBack()
	}
	hc := b.at(0, p.headY(), 0)
	cv.head(hc.u, hc.v, p.headR()*hc.ppm, a, p.fx, p.fz, dist)
	switch {
	case photo:
		// Arms raised in front of the face, holding up a phone.
		for _, i := range front {
			arm(i)
		}
		l, r := proj(ps.arms[0].c), proj(ps.arms[1].c)
		cv.capsule(l.u, l.v, 0.03*s*l.ppm, r.u, r.v, 0.03*s*r.ppm, rgb{0.08, 0.08, 0.09}, dist)
	case !p.moving && p.idle == posePhone && toCam > 0:
		c := proj(ps.arms[1].c.add(vec3{-0.03 * s, 0.02 * s, 0.02 * s}))
		cv.capsule(c.u, c.v, 0.035*s*c.ppm, c.u, c.v-0.04*s*c.ppm, 0.03*s*c.ppm, rgb{0.1, 0.1, 0.12}, dist)
	}
}
