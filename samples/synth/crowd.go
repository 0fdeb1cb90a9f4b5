package synth

import (
	"fmt"
	"math"
	"sort"
)

// Idle poses of a standing person.
type idlePose uint8

const (
	poseArmsDown  idlePose = iota
	posePhone              // one forearm raised in front, looking at a phone
	posePhoto              // both arms raised in front of the face, taking a photo
	poseHandsBack          // hands joined behind the back
)

// person is one visitor: where they are, where they go and how they look.
type person struct {
	id      int
	x, z    float64 // foot point on the ground
	px, pz  float64 // foot point before the current step
	h       float64 // standing height, metres
	speed   float64 // preferred walking speed, m/s
	tx, tz  float64 // current target
	exiting bool    // the target is a way out of the view
	door    bool    // the way out is a doorway in the back wall
	linger  float64 // seconds left standing still
	idle    idlePose
	fx, fz  float64 // unit facing direction on the ground
	lookX   float64 // direction to face while standing (x)
	lookZ   float64 // direction to face while standing (z)
	phase   float64 // gait phase, radians
	walk    float64 // 0 standing to 1 walking, smoothed
	moving  bool
	leader  *person
	offR    float64 // place beside the leader (metres to the leader's right)
	offF    float64 // place ahead of the leader (metres)
	stuck   float64 // seconds without progress towards the target
	best    float64 // the least distance to the target reached so far
	vis     bool    // head point inside the image after the current step
	wasVis  bool    // head point inside the image before the current step
	look    appearance
}

// headR returns the half-width of the person's head, metres.
func (p *person) headR() float64 { return 0.095 * math.Min(1.15, math.Max(0.85, p.h/1.7)) }

// headY returns the height of the centre of the person's head: the head
// point. The head is 1.15 times as tall as it is wide.
func (p *person) headY() float64 { return p.h - 1.2*p.headR() }

// crowd moves the people of one video and keeps the number in view within
// its bounds.
type crowd struct {
	s          *scene
	r          rng
	people     []*person
	nextID     int
	minV, maxV int
	desired    float64
	lo, hi     float64 // range the desired count drifts in
	visible    int
	pImage     float64 // share of far targets drawn evenly over the image rather than over distance
}

// newCrowd places the opening crowd of a resolved Config and lets it
// settle. It fails when the view has no room for MinVisible people.
func newCrowd(s *scene, cfg Config) (*crowd, error) {
	c := &crowd{s: s, r: newRNG(cfg.Seed, streamCrowd), minV: cfg.MinVisible, maxV: cfg.MaxVisible, pImage: 0.8}
	span := float64(c.maxV - c.minV)
	c.lo = float64(c.minV) + 0.2*span
	c.hi = float64(c.maxV) - 0.2*span
	c.desired = c.r.uniform(c.lo, c.hi)

	target := int(math.Round(c.desired))
	for tries := 0; c.visible < target && tries < 20*target+100; tries++ {
		n := c.groupSize()
		n = min(n, target-c.visible)
		x, z, ok := c.interiorPoint(1.7)
		if !ok {
			continue
		}
		c.addGroup(n, x, z, func(q *person) bool { return c.headVisible(q) })
		c.visible = c.countVisible()
	}
	if c.visible < c.minV {
		return nil, fmt.Errorf("synth: config %q: MinVisible: room for only %d people in view of the %dx%d %s, want %d",
			cfg.Preset, c.visible, cfg.Width, cfg.Height, cfg.Scene, c.minV)
	}
	for _, p := range c.people {
		p.vis = c.headVisible(p)
		p.tx, p.tz, _ = c.interiorPoint(p.h)
		if p.leader == nil && c.r.chance(0.4) {
			c.startLinger(p, c.r.uniform(0, 15))
		}
		p.phase = c.r.uniform(0, 2*math.Pi)
	}
	// A little under a minute of simulation before the first frame, so that
	// groups, stops and departures look like they have been going on.
	dt := 1 / cfg.FPS
	for range int(45 * cfg.FPS) {
		c.step(dt)
	}
	return c, nil
}

// groupSize draws the size of a party of visitors.
func (c *crowd) groupSize() int {
	return []int{1, 2, 3, 4, 5}[c.r.weighted([]float64{0.5, 0.27, 0.12, 0.08, 0.03})]
}

// newPerson makes a person standing at (x, z).
func (c *crowd) newPerson(x, z float64, child bool) *person {
	p := &person{id: c.nextID, x: x, z: z, px: x, pz: z}
	c.nextID++
	female := c.r.chance(0.5)
	switch {
	case child:
		p.h = c.r.uniform(1.0, 1.4)
	case female:
		p.h = c.r.normal(1.62, 0.065)
	default:
		p.h = c.r.normal(1.74, 0.07)
	}
	p.speed = c.r.uniform(0.8, 1.5)
	a := c.r.uniform(0, 2*math.Pi)
	p.fx, p.fz = math.Cos(a), math.Sin(a)
	p.look = newAppearance(c.r, female, child)
	return p
}

// addGroup adds a party of n at (x, z): a leader and followers placed
// around it; keep decides whether each placed person may stay.
func (c *crowd) addGroup(n int, x, z float64, keep func(*person) bool) *person {
	lead := c.newPerson(x, z, false)
	if !keep(lead) {
		return nil
	}
	c.people = append(c.people, lead)
	slots := [][2]float64{{0.65, 0}, {-0.65, 0}, {0.35, -0.8}, {-0.35, -0.8}}
	for i := 1; i < n; i++ {
		s := slots[(i-1)%len(slots)]
		fx, fz := x+s[0]*lead.fz+s[1]*lead.fx, z-s[0]*lead.fx+s[1]*lead.fz
		f := c.newPerson(fx, fz, n >= 3 && c.r.chance(0.3))
		f.leader, f.offR, f.offF = lead, s[0], s[1]
		f.speed = lead.speed
		f.fx, f.fz = lead.fx, lead.fz
		if !c.s.free(f.x, f.z, 0.25) || !keep(f) {
			c.nextID--
			continue
		}
		c.people = append(c.people, f)
	}
	return lead
}

// headVisible reports whether the person's head point is inside the image.
func (c *crowd) headVisible(p *person) bool {
	return c.headPointVisible(p.x, p.z, p.headY())
}

// headPointVisible reports whether the world point (x, y, z) projects
// inside the image.
func (c *crowd) headPointVisible(x, z, y float64) bool {
	u, v, _, ok := c.s.cam.project(x, y, z)
	return ok && u >= 0 && v >= 0 && u < float64(c.s.cam.Width) && v < float64(c.s.cam.Height)
}

// countVisible counts the people whose head point is inside the image.
func (c *crowd) countVisible() int {
	n := 0
	for _, p := range c.people {
		if c.headVisible(p) {
			n++
		}
	}
	return n
}

// onGround reports whether (x, z) is on the walkable ground.
func (c *crowd) onGround(x, z float64) bool {
	return z >= c.s.zNear && z <= c.s.zFar && math.Abs(x) <= c.s.cam.halfWidth(z)+3
}

// interiorPoint draws a free ground point where a person h metres tall has
// the head in view: evenly over the image or evenly over the distance from
// the camera.
func (c *crowd) interiorPoint(h float64) (x, z float64, ok bool) {
	cam := &c.s.cam
	vTop := 0.0
	if _, v, _, ok := cam.project(0, 0, c.s.zFar); ok {
		vTop = math.Max(0, v)
	}
	for range 200 {
		if c.r.chance(c.pImage) {
			u := c.r.uniform(0, float64(cam.Width))
			v := c.r.uniform(vTop, float64(cam.Height)+float64(cam.Height)*0.1)
			x, z, ok = cam.groundAt(u, v)
			if !ok {
				continue
			}
		} else {
			// Even over distance from the camera, which favours the near
			// ground more than an even spread over the ground would.
			z = c.r.uniform(c.s.zBottom-1, c.s.zFar)
			hw := cam.halfWidth(z)
			x = c.r.uniform(-hw, hw)
		}
		if c.onGround(x, z) && c.headPointVisible(x, z, h*0.94) && c.s.free(x, z, 0.3) {
			return x, z, true
		}
	}
	return 0, 0, false
}

// nextPoint draws where p walks to next: mostly somewhere in the part of
// the image around it and at most 12 m away, sometimes anywhere. Short
// walks and frequent stops spread people over the picture rather than
// letting them gather in the far distance, where the ground is widest and
// every walk takes longest.
func (c *crowd) nextPoint(p *person) (x, z float64, ok bool) {
	cam := &c.s.cam
	u, v, _, inFront := cam.project(p.x, 0, p.z)
	if inFront && c.r.chance(0.7) {
		w, h := float64(cam.Width), float64(cam.Height)
		for range 50 {
			x, z, ok = cam.groundAt(u+c.r.uniform(-0.3, 0.3)*w, v+c.r.uniform(-0.2, 0.2)*h)
			if ok && math.Hypot(x-p.x, z-p.z) < 12 && c.onGround(x, z) &&
				c.headPointVisible(x, z, p.h*0.94) && c.s.free(x, z, 0.3) {
				return x, z, true
			}
		}
	}
	return c.interiorPoint(p.h)
}

// rowZ draws a ground distance between the bottom of the image and the
// back wall, evenly over the image rows that show the ground.
func (c *crowd) rowZ() float64 {
	cam := &c.s.cam
	vTop := 0.0
	if _, v, _, ok := cam.project(0, 0, c.s.zFar); ok {
		vTop = math.Max(0, v)
	}
	_, z, ok := cam.groundAt(cam.CX, c.r.uniform(vTop, float64(cam.Height)))
	if !ok {
		return c.s.zFar - 1
	}
	return math.Max(c.s.zBottom, math.Min(c.s.zFar-1, z))
}

// outsidePoint draws a free ground point beyond the left, right or bottom
// edge of the image, where a person h metres tall has the head out of view.
func (c *crowd) outsidePoint(h float64) (x, z float64, ok bool) {
	cam := &c.s.cam
	for range 200 {
		side := c.r.IntN(5)
		switch {
		case side < 4:
			z = c.rowZ()
			x = cam.halfWidth(z) + c.r.uniform(0.8, 2.8)
			if side < 2 {
				x = -x
			}
		default:
			z = c.r.uniform(c.s.zNear, c.s.zBottom)
			hw := cam.halfWidth(z)
			x = c.r.uniform(-hw, hw)
		}
		if c.onGround(x, z) && !c.headPointVisible(x, z, h*0.94) && !c.headPointVisible(x, z, 2.05) && c.s.free(x, z, 0.3) {
			return x, z, true
		}
	}
	return 0, 0, false
}

// poiPoint draws a place to stand at a point of interest within 15 m of p,
// and the direction to face there; ok is false when none is near.
func (c *crowd) poiPoint(p *person) (x, z, fx, fz float64, ok bool) {
	var near []poi
	for _, q := range c.s.pois {
		if math.Hypot(q.x-p.x, q.z-p.z) < 15+q.radius {
			near = append(near, q)
		}
	}
	if len(near) == 0 {
		return 0, 0, 0, 0, false
	}
	for range 30 {
		q := near[c.r.IntN(len(near))]
		if q.wall {
			x, z = q.x+c.r.uniform(-1.3, 1.3), q.z-c.r.uniform(1.3, 3)
			fx, fz = 0, 1
		} else {
			a := c.r.uniform(0, 2*math.Pi)
			d := q.radius + c.r.uniform(0.2, 1.4)
			x, z = q.x+d*math.Cos(a), q.z+d*math.Sin(a)
			fx, fz = -math.Cos(a), -math.Sin(a)
		}
		if c.onGround(x, z) && c.s.free(x, z, 0.3) && c.headPointVisible(x, z, 1.6) {
			return x, z, fx, fz, true
		}
	}
	return 0, 0, 0, 0, false
}

// startLinger makes p stand still for d seconds in an idle pose, facing
// the way it looks (set by the caller) or, when that is unset, the way it
// faces now.
func (c *crowd) startLinger(p *person, d float64) {
	if p.linger >= 0 || p.lookX == 0 && p.lookZ == 0 {
		p.lookX, p.lookZ = p.fx, p.fz
	}
	p.linger = d
	p.idle = idlePose(c.r.weighted([]float64{0.55, 0.25, 0.1, 0.1}))
	if c.s.kind == SceneHall && p.idle == posePhoto {
		p.idle = poseArmsDown
	}
}

// setTarget sends p towards (x, z).
func (p *person) setTarget(x, z float64, exiting, door bool) {
	p.tx, p.tz, p.exiting, p.door = x, z, exiting, door
	p.stuck, p.best, p.linger = 0, math.Inf(1), 0
}

// decide picks what p does after reaching its target: stop for a while,
// walk on, or leave.
func (c *crowd) decide(p *person) {
	pExit := 0.22
	switch {
	case float64(c.visible) > c.desired+1:
		pExit = 0.6
	case float64(c.visible) < c.desired-1:
		pExit = 0.04
	}
	pLinger := 0.45
	if c.s.kind == SceneHall {
		pLinger = 0.55
	}
	switch r := c.r.Float64(); {
	case r < pLinger:
		if x, z, fx, fz, ok := c.poiPoint(p); ok && c.r.chance(0.5) {
			p.setTarget(x, z, false, false)
			p.linger = -1 // stop on arrival
			p.lookX, p.lookZ = fx, fz
			return
		}
		c.startLinger(p, c.r.uniform(3, 12))
	case r < pLinger+pExit*(1-pLinger):
		c.leave(p)
	default:
		if x, z, ok := c.nextPoint(p); ok {
			p.setTarget(x, z, false, false)
		}
	}
}

// leave sends p towards a way out: an edge of the view or a doorway.
func (c *crowd) leave(p *person) {
	// Doorways serve the far half of the ground.
	if len(c.s.doors) > 0 && p.z > (c.s.zBottom+c.s.zFar)/2 && c.r.chance(0.3) {
		d := c.s.doors[c.r.IntN(len(c.s.doors))]
		p.setTarget(d.x+c.r.uniform(-d.halfW, d.halfW)*0.6, c.s.wallZ-0.45, true, true)
		return
	}
	// Otherwise the nearest way out: the side p is on, or the bottom edge
	// for people close to it.
	cam := &c.s.cam
	for range 30 {
		var x, z float64
		if p.z < c.s.zBottom+4 && c.r.chance(0.5) {
			z = c.r.uniform(c.s.zNear, c.s.zBottom)
			hw := cam.halfWidth(z)
			x = math.Max(-hw, math.Min(hw, p.x+c.r.uniform(-2, 2)))
		} else {
			z = math.Max(c.s.zBottom, math.Min(c.s.zFar-1, p.z+c.r.uniform(-4, 4)))
			x = math.Copysign(cam.halfWidth(z)+c.r.uniform(0.8, 2.8), p.x)
		}
		if c.onGround(x, z) && !c.headPointVisible(x, z, p.h*0.94) && !c.headPointVisible(x, z, 2.05) && c.s.free(x, z, 0.3) {
			p.setTarget(x, z, true, false)
			return
		}
	}
	if x, z, ok := c.outsidePoint(p.h); ok {
		p.setTarget(x, z, true, false)
	}
}

// step advances the crowd by dt seconds.
func (c *crowd) step(dt float64) {
	span := float64(c.maxV - c.minV)
	c.desired += c.r.NormFloat64()*0.05*span*math.Sqrt(dt) - (c.desired-(c.lo+c.hi)/2)*0.01*dt
	c.desired = math.Max(c.lo, math.Min(c.hi, c.desired))

	for _, p := range c.people {
		p.px, p.pz, p.wasVis = p.x, p.z, p.vis
		c.move(p, dt)
	}
	c.separate()
	for _, p := range c.people {
		c.avoidObstacles(p)
	}
	c.enforce()
	c.removeArrived()
	c.spawn(dt)
}

// move advances one person: follow the leader, stand, or walk to the target.
func (c *crowd) move(p *person, dt float64) {
	wantFX, wantFZ := p.fx, p.fz
	p.moving = false
	if l := p.leader; l != nil {
		// Keep the place beside the leader, in the leader's frame.
		sx := l.x + p.offR*l.fz + p.offF*l.fx
		sz := l.z - p.offR*l.fx + p.offF*l.fz
		dx, dz := sx-p.x, sz-p.z
		d := math.Hypot(dx, dz)
		if d > 0.15 {
			v := math.Min(l.speed*1.3+0.2, d*2)
			if l.linger > 0 && d < 0.6 {
				v = 0
			}
			if v > 0.05 {
				s := math.Min(v*dt, d)
				p.x += dx / d * s
				p.z += dz / d * s
				p.advanceGait(s)
				p.moving = true
				wantFX, wantFZ = dx/d, dz/d
			}
		}
		if !p.moving {
			wantFX, wantFZ = l.fx, l.fz
			if p.idle != l.idle && l.linger > 0 && c.r.chance(dt*0.2) {
				p.idle = idlePose(c.r.weighted([]float64{0.6, 0.3, 0.1, 0}))
			}
		}
	} else if p.linger > 0 {
		wantFX, wantFZ = p.lookX, p.lookZ
		p.linger -= dt
		if p.linger <= 0 {
			p.linger = 0
			c.decide(p)
		}
	} else {
		dx, dz := p.tx-p.x, p.tz-p.z
		d := math.Hypot(dx, dz)
		if d < 0.3 {
			if p.linger < 0 {
				c.startLinger(p, c.r.uniform(6, 30))
			} else if !p.exiting {
				c.decide(p)
			}
		} else {
			s := math.Min(p.speed*dt, d)
			p.x += dx / d * s
			p.z += dz / d * s
			p.advanceGait(s)
			p.moving = true
			wantFX, wantFZ = dx/d, dz/d
			if d < p.best-0.05 {
				p.best, p.stuck = d, 0
			} else if p.stuck += dt; p.stuck > 4 {
				// Blocked (by an obstacle or the crowd): go somewhere else.
				p.stuck = 0
				if p.exiting {
					c.leave(p)
				} else if x, z, ok := c.nextPoint(p); ok {
					p.setTarget(x, z, false, false)
				}
			}
		}
	}
	// Turn towards the wanted facing at up to 5 rad/s.
	cur := math.Atan2(p.fz, p.fx)
	want := math.Atan2(wantFZ, wantFX)
	diff := math.Remainder(want-cur, 2*math.Pi)
	lim := 5 * dt
	diff = math.Max(-lim, math.Min(lim, diff))
	p.fx, p.fz = math.Cos(cur+diff), math.Sin(cur+diff)
	target := 0.0
	if p.moving {
		target = 1
	}
	p.walk += (target - p.walk) * math.Min(1, 5*dt)
}

// advanceGait moves the gait phase on by a walked distance.
func (p *person) advanceGait(dist float64) {
	stride := p.h * (0.62 + 0.3*(p.speed-0.8))
	p.phase = math.Mod(p.phase+2*math.Pi*dist/stride, 2*math.Pi)
}

// separate pushes apart people standing closer than half a metre.
func (c *crowd) separate() {
	const minD = 0.5
	ps := c.people
	for i := range ps {
		a := ps[i]
		for _, b := range ps[i+1:] {
			dx, dz := b.x-a.x, b.z-a.z
			if dx > minD || dx < -minD || dz > minD || dz < -minD {
				continue
			}
			d := math.Hypot(dx, dz)
			if d >= minD {
				continue
			}
			if d < 1e-6 {
				dx, dz, d = 1, 0, 1
				if a.id%2 == 0 {
					dx = -1
				}
			}
			push := (minD - d) * 0.25 / d
			a.x -= dx * push
			a.z -= dz * push
			b.x += dx * push
			b.z += dz * push
		}
	}
}

// avoidObstacles moves p out of any obstacle's footprint and keeps it on
// the walkable ground.
func (c *crowd) avoidObstacles(p *person) {
	for _, o := range c.s.obstacles {
		if o.round {
			dx, dz := p.x-o.x, p.z-o.z
			d := math.Hypot(dx, dz)
			if d < o.r {
				if d < 1e-6 {
					dx, dz, d = 0, -1, 1
				}
				p.x, p.z = o.x+dx/d*o.r, o.z+dz/d*o.r
			}
			continue
		}
		if p.x > o.x0 && p.x < o.x1 && p.z > o.z0 && p.z < o.z1 {
			// Out through the nearest side.
			l, r, n, f := p.x-o.x0, o.x1-p.x, p.z-o.z0, o.z1-p.z
			switch m := math.Min(math.Min(l, r), math.Min(n, f)); m {
			case l:
				p.x = o.x0
			case r:
				p.x = o.x1
			case n:
				p.z = o.z0
			default:
				p.z = o.z1
			}
		}
	}
	p.z = math.Max(c.s.zNear, math.Min(c.s.zFar, p.z))
}

// enforce keeps the number of people in view within [minV, maxV]: a person
// whose step would cross the edge of the view against the bounds goes back
// to where it was and turns round. The count before the step was within the
// bounds, so enough people crossed to restore it.
func (c *crowd) enforce() {
	n := 0
	for _, p := range c.people {
		p.vis = c.headVisible(p)
		if p.vis {
			n++
		}
	}
	for _, p := range c.people {
		if n <= c.maxV {
			break
		}
		if p.vis && !p.wasVis {
			p.x, p.z, p.vis = p.px, p.pz, false
			n--
			p.leader = nil
			p.linger = 0
			if x, z, ok := c.outsidePoint(p.h); ok {
				p.setTarget(x, z, true, false)
			}
		}
	}
	for _, p := range c.people {
		if n >= c.minV {
			break
		}
		if !p.vis && p.wasVis {
			p.x, p.z, p.vis = p.px, p.pz, true
			n++
			p.leader = nil
			if x, z, ok := c.interiorPoint(p.h); ok {
				p.setTarget(x, z, false, false)
			}
		}
	}
	c.visible = n
}

// removeArrived takes out the people who reached their way out: those out of
// view at an edge, and those at a doorway while the count allows.
func (c *crowd) removeArrived() {
	kept := c.people[:0]
	var gone []*person
	for _, p := range c.people {
		if p.exiting && p.leader == nil && math.Hypot(p.tx-p.x, p.tz-p.z) < 0.5 {
			if !p.vis {
				gone = append(gone, p)
				continue
			}
			if !p.door {
				// Still in view at the way out (a taller person than the
				// way out was drawn for): pick another.
				c.leave(p)
			} else {
				if c.visible-1 >= c.minV {
					c.visible--
					gone = append(gone, p)
					continue
				}
				if x, z, ok := c.interiorPoint(p.h); ok {
					p.setTarget(x, z, false, false)
				}
			}
		}
		kept = append(kept, p)
	}
	clear(c.people[len(kept):])
	c.people = kept
	for _, g := range gone {
		for _, p := range c.people {
			if p.leader == g {
				p.leader = nil
				p.linger = 0
				p.setTarget(g.tx, g.tz, g.exiting, g.door)
			}
		}
	}
}

// spawn brings in new parties from outside the view, or through a doorway,
// while fewer people are in or on their way into view than wanted.
func (c *crowd) spawn(dt float64) {
	incoming := 0
	for _, p := range c.people {
		if !p.vis && !p.exiting {
			incoming++
		}
	}
	// People on their way in take a while to arrive; count them as half.
	deficit := c.desired - float64(c.visible) - 0.5*float64(incoming)
	if deficit <= 0 || !c.r.chance(dt*(0.3+0.25*deficit)) {
		return
	}
	n := c.groupSize()
	if len(c.s.doors) > 0 && c.r.chance(0.3) {
		if c.visible+n > c.maxV {
			return
		}
		d := c.s.doors[c.r.IntN(len(c.s.doors))]
		x := d.x + c.r.uniform(-d.halfW, d.halfW)*0.5
		start := len(c.people)
		lead := c.addGroup(n, x, c.s.wallZ-0.45, func(q *person) bool {
			q.fx, q.fz = 0, -1
			return c.headVisible(q) && c.onGround(q.x, q.z)
		})
		if lead == nil {
			return
		}
		for _, p := range c.people[start:] {
			p.vis, p.wasVis = true, true
			c.visible++
		}
		if x, z, ok := c.interiorPoint(lead.h); ok {
			lead.setTarget(x, z, false, false)
		}
		return
	}
	x, z, ok := c.outsidePoint(1.9)
	if !ok {
		return
	}
	start := len(c.people)
	lead := c.addGroup(n, x, z, func(q *person) bool { return !c.headVisible(q) && c.onGround(q.x, q.z) })
	if lead == nil {
		return
	}
	if tx, tz, ok := c.nextPoint(lead); ok {
		lead.setTarget(tx, tz, false, false)
		lead.fx, lead.fz = unit(tx-x, tz-z)
	}
	for _, p := range c.people[start:] {
		p.fx, p.fz = lead.fx, lead.fz
	}
}

// unit returns (x, z) scaled to length 1, or (0, 1) for a zero vector.
func unit(x, z float64) (float64, float64) {
	d := math.Hypot(x, z)
	if d < 1e-12 {
		return 0, 1
	}
	return x / d, z / d
}

// heads appends the truth of the current state: every person whose head
// point is inside the image, by id.
func (c *crowd) heads(out []Head) []Head {
	cam := &c.s.cam
	for _, p := range c.people {
		if !c.headVisible(p) {
			continue
		}
		u, v, _, _ := cam.project(p.x, p.headY(), p.z)
		out = append(out, Head{Person: p.id, X: u, Y: v, HeightPx: cam.personPx(p.x, p.z, p.h)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Person < out[j].Person })
	return out
}
