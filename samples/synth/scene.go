package synth

import (
	"math"
)

// groundPattern is the layout of the floor or paving.
type groundPattern uint8

const (
	groundGrid    groundPattern = iota // square pavers or tiles in a grid
	groundBond                         // bricks in running bond
	groundChecker                      // two-colour checkerboard (hall floors)
)

// groundStyle is the look of the ground.
type groundStyle struct {
	pattern      groundPattern
	tileX, tileZ float64 // tile size in metres
	grout        float64 // grout or joint width in metres
	base, alt    rgb     // tile colours (alt for the checkerboard)
	groutCol     rgb
	jitter       float64 // per-tile brightness variation
	blotch       float64 // low-frequency stain amplitude
	band         float64 // period, metres, of darker inlaid bands; 0 for none
	bandCol      rgb
	pools        float64 // period, metres, of pools of light from ceiling spots; 0 for none
	seed         uint64
}

// wallStyle is the look of the back wall.
type wallStyle struct {
	base     rgb
	plinth   rgb // band along the bottom
	plinthH  float64
	windows  bool // a building facade with storeys of windows
	bay      float64
	winW     float64
	storey   float64
	winH     float64
	glass    rgb
	seed     uint64
	pictures []picture
}

// picture is a framed painting on a hall wall.
type picture struct {
	x0, x1, y0, y1 float64
	frame          rgb
	colours        [3]rgb
	seed           uint64
}

// door is a doorway in the back wall through which people come and go.
type door struct {
	x, halfW, height float64
}

// poi is a place visitors stop at: an exhibit, a fountain, a painting.
type poi struct {
	x, z   float64
	radius float64 // people stand from radius to radius+1.2 m from the centre
	wall   bool    // a painting: people stand in front of it, facing the wall
}

// obstacle is the footprint people walk around, grown by a person's radius.
type obstacle struct {
	round          bool
	x, z, r        float64 // round
	x0, z0, x1, z1 float64 // rectangular
}

// scene is the static world of one video.
type scene struct {
	kind      string
	cam       view
	wallZ     float64
	wallTop   float64
	ground    groundStyle
	wall      wallStyle
	prims     []prim
	obstacles []obstacle
	pois      []poi
	doors     []door
	sun       vec3 // unit vector towards the light
	ambient   float64
	direct    float64
	tint      rgb
	sky       [2]rgb // horizon and zenith
	ceiling   rgb
	haze      rgb
	hazeDist  float64
	shadowPx  int // blur radius of cast shadows in pixels
	// zNear and zFar bound the ground distance people walk at.
	zNear, zFar float64
	// zBottom is the ground distance seen at the bottom-centre of the image.
	zBottom float64
}

// heightAtTop returns the height at which the ray through the top-centre
// of the image crosses the plane at ground distance z.
func (s *scene) heightAtTop(z float64) float64 {
	_, dy, dz := s.cam.ray(s.cam.CX, 0)
	if dz <= 0 {
		return math.Inf(1)
	}
	return s.cam.HeightM + dy*z/dz
}

// newScene lays out the static world of a resolved Config.
func newScene(cfg Config) *scene {
	cr := newRNG(cfg.Seed, streamCamera)
	cam := cameraFor(cfg, [3]float64{cr.Float64(), cr.Float64(), cr.Float64()}).view()
	r := newRNG(cfg.Seed, streamScene)
	s := &scene{kind: cfg.Scene, cam: cam}

	if _, z, ok := cam.groundAt(cam.CX, float64(cam.Height)); ok {
		s.zBottom = z
	}
	// The back wall stands where a 1.7 m person is about 3% (plaza) or 4.5%
	// (hall) of the image tall: about 22 or 32 px at 720 rows.
	farFrac := 0.03
	if s.kind == SceneHall {
		farFrac = 0.045
	}
	s.wallZ = s.zBottom + 60
	if z, ok := cam.distanceForHeight(1.7, farFrac*float64(cam.Height)); ok {
		s.wallZ = math.Max(z, s.zBottom+10)
	}
	s.wallTop = math.Max(s.heightAtTop(s.wallZ)+3, 6)
	s.zNear = math.Max(0.3, s.zBottom-4)
	s.zFar = s.wallZ - 0.4

	if s.kind == ScenePlaza {
		s.layoutPlaza(r)
	} else {
		s.layoutHall(r)
	}
	for i := range s.prims {
		s.prims[i].seed = r.Uint64()
		s.bound(&s.prims[i])
	}
	return s
}

// rowZ returns the ground distance seen at the given fraction of the way
// from the bottom of the image (0) up to the foot of the back wall (1).
func (s *scene) rowZ(f float64) float64 {
	vWall := 0.0
	if _, v, _, ok := s.cam.project(0, 0, s.zFar); ok {
		vWall = math.Max(0, v)
	}
	h := float64(s.cam.Height)
	_, z, ok := s.cam.groundAt(s.cam.CX, h-f*(h-vWall))
	if !ok {
		return s.zFar
	}
	return math.Min(z, s.zFar)
}

// inView reports whether ground point (x, z) is inside the image, with a
// margin in pixels.
func (s *scene) inView(x, z, marginPx float64) bool {
	u, v, _, ok := s.cam.project(x, 0, z)
	return ok && u >= marginPx && u < float64(s.cam.Width)-marginPx && v >= marginPx && v < float64(s.cam.Height)-marginPx
}

// free reports whether a round footprint at (x, z) with radius r keeps clear
// of every obstacle and door approach.
func (s *scene) free(x, z, r float64) bool {
	for _, o := range s.obstacles {
		if o.round {
			if math.Hypot(x-o.x, z-o.z) < r+o.r {
				return false
			}
		} else if x > o.x0-r && x < o.x1+r && z > o.z0-r && z < o.z1+r {
			return false
		}
	}
	for _, d := range s.doors {
		if math.Abs(x-d.x) < d.halfW+r+1 && z > s.wallZ-4-r {
			return false
		}
	}
	return true
}

// spot finds a free ground point in view for an object of radius r, with
// ground distance between zLo and zHi; ok is false when none was found.
func (s *scene) spot(r rng, zLo, zHi, radius float64, xFrac float64) (x, z float64, ok bool) {
	for range 200 {
		z = r.uniform(zLo, zHi)
		hw := s.cam.halfWidth(z) * xFrac
		x = r.uniform(-hw, hw)
		if s.inView(x, z, 10) && s.free(x, z, radius+0.8) {
			return x, z, true
		}
	}
	return 0, 0, false
}

// objectColours are the albedos of static objects.
type objectColours struct {
	concrete, stoneLt, foliage, foliage2, bark, wood, metal, water, lamp rgb
}

// palette returns the albedos of static objects.
func palette() objectColours {
	return objectColours{
		concrete: rgb{0.62, 0.6, 0.56},
		stoneLt:  rgb{0.74, 0.71, 0.65},
		foliage:  rgb{0.2, 0.36, 0.16},
		foliage2: rgb{0.28, 0.42, 0.18},
		bark:     rgb{0.3, 0.23, 0.17},
		wood:     rgb{0.5, 0.34, 0.2},
		metal:    rgb{0.16, 0.17, 0.18},
		water:    rgb{0.32, 0.47, 0.55},
		lamp:     rgb{0.92, 0.9, 0.82},
	}
}

// layoutPlaza places a sunny plaza in front of a building.
func (s *scene) layoutPlaza(r rng) {
	pal := palette()
	az := r.uniform(0.35, 1.0) * []float64{-1, 1}[r.IntN(2)]
	el := r.uniform(0.65, 1.0)
	// The sun is behind the camera and to one side, so shadows fall away
	// from the camera and across.
	s.sun = vec3{math.Sin(az) * math.Cos(el), math.Sin(el), -math.Cos(az) * math.Cos(el)}.normalized()
	s.ambient, s.direct = r.uniform(0.46, 0.54), r.uniform(0.5, 0.6)
	s.tint = rgb{1.0, 0.985, 0.95}
	s.sky = [2]rgb{{0.82, 0.86, 0.9}, {0.45, 0.62, 0.85}}
	s.haze, s.hazeDist = rgb{0.78, 0.8, 0.82}, r.uniform(180, 300)
	s.shadowPx = 1

	paving := []struct {
		base, alt, grout rgb
		pattern          groundPattern
		tile             [2]float64
	}{
		{rgb{0.64, 0.63, 0.6}, rgb{}, rgb{0.48, 0.47, 0.45}, groundGrid, [2]float64{0.6, 0.6}},
		{rgb{0.72, 0.66, 0.57}, rgb{}, rgb{0.55, 0.5, 0.44}, groundGrid, [2]float64{0.8, 0.8}},
		{rgb{0.56, 0.36, 0.3}, rgb{}, rgb{0.5, 0.46, 0.42}, groundBond, [2]float64{0.4, 0.2}},
		{rgb{0.6, 0.58, 0.56}, rgb{}, rgb{0.45, 0.44, 0.43}, groundGrid, [2]float64{1.2, 1.2}},
		{rgb{0.68, 0.56, 0.52}, rgb{}, rgb{0.52, 0.45, 0.42}, groundBond, [2]float64{0.6, 0.3}},
	}
	p := paving[r.IntN(len(paving))]
	bright := r.uniform(0.92, 1.06)
	s.ground = groundStyle{
		pattern: p.pattern, tileX: p.tile[0], tileZ: p.tile[1], grout: r.uniform(0.012, 0.022),
		base: p.base.scale(bright), groutCol: p.grout.scale(bright),
		jitter: r.uniform(0.05, 0.1), blotch: r.uniform(0.04, 0.09),
		seed: r.Uint64(),
	}
	if r.chance(0.6) {
		s.ground.band = float64(6+r.IntN(6)) * math.Max(p.tile[0], 0.6)
		s.ground.bandCol = rgb{0.42, 0.41, 0.4}.mix(p.base, r.uniform(0, 0.4))
	}

	facades := []rgb{{0.78, 0.74, 0.66}, {0.7, 0.7, 0.7}, {0.62, 0.42, 0.34}, {0.84, 0.82, 0.78}, {0.55, 0.57, 0.6}}
	s.wall = wallStyle{
		base: facades[r.IntN(len(facades))], plinth: rgb{0.38, 0.37, 0.36}, plinthH: r.uniform(0.4, 0.9),
		windows: true, bay: r.uniform(3, 4.5), storey: r.uniform(3.6, 4.3), glass: rgb{0.2, 0.25, 0.3},
		seed: r.Uint64(),
	}
	s.wall.winW = s.wall.bay * r.uniform(0.45, 0.7)
	s.wall.winH = s.wall.storey * r.uniform(0.45, 0.6)
	s.wallTop = math.Max(s.wallTop, r.uniform(12, 26))
	s.ceiling = s.sky[1]
	s.addDoors(r, 2+r.IntN(3), r.uniform(1.2, 2), 3.2)

	// A fountain or a statue, in the middle rows of the picture: the
	// plaza's centrepiece and a place to stop.
	if x, z, ok := s.spot(r, s.rowZ(0.45), s.rowZ(0.7), 4.5, 0.5); ok {
		if r.chance(0.6) {
			rad := r.uniform(3, 4.5)
			s.prims = append(s.prims,
				newCylinder(x, z, rad, 0, 0.5, pal.stoneLt, pal.stoneLt, texStone),
				newCylinder(x, z, rad-0.3, 0, 0.52, pal.water, pal.water, texWater),
				newCylinder(x, z, 0.35, 0, 1.5, pal.stoneLt, pal.stoneLt, texStone),
				newCylinder(x, z, 1.1, 1.3, 1.5, pal.stoneLt, pal.water, texStone),
			)
			s.obstacles = append(s.obstacles, obstacle{round: true, x: x, z: z, r: rad + 0.3})
			s.pois = append(s.pois, poi{x: x, z: z, radius: rad + 0.4})
		} else {
			w := r.uniform(1.6, 2.4)
			hgt := r.uniform(2.2, 3.4)
			bronze := rgb{0.32, 0.27, 0.2}
			s.prims = append(s.prims,
				newBox(x-w/2, 0, z-w/2, x+w/2, 1.4, z+w/2, pal.stoneLt, pal.stoneLt, texStone),
				newCylinder(x, z, 0.32, 1.4, 1.4+hgt*0.75, bronze, bronze, texPlain),
				newSphere(x, 1.4+hgt*0.82, z, 0.22, bronze, texPlain),
			)
			s.obstacles = append(s.obstacles, obstacle{x0: x - w/2 - 0.3, z0: z - w/2 - 0.3, x1: x + w/2 + 0.3, z1: z + w/2 + 0.3})
			s.pois = append(s.pois, poi{x: x, z: z, radius: w/2 + 0.6})
		}
	}
	// Trees in round planters, towards the sides.
	for range 2 + r.IntN(4) {
		canopy := r.uniform(1.4, 2.2)
		x, z, ok := s.spot(r, s.zBottom+4, s.zFar-3, canopy*1.4, 0.9)
		if !ok || math.Abs(x) < s.cam.halfWidth(z)*0.35 {
			continue
		}
		rad := r.uniform(0.8, 1.2)
		pot := pal.concrete.scale(r.uniform(0.85, 1.05))
		trunkH := r.uniform(2.2, 3)
		fol := pal.foliage.mix(pal.foliage2, r.Float64())
		s.prims = append(s.prims,
			newCylinder(x, z, rad, 0, 0.55, pot, rgb{0.3, 0.24, 0.18}, texStone),
			newCylinder(x, z, 0.14, 0.55, trunkH+0.6, pal.bark, pal.bark, texBark),
			newSphere(x, trunkH+canopy*0.9, z, canopy, fol, texFoliage),
			newSphere(x+canopy*0.5, trunkH+canopy*0.6, z+canopy*0.2, canopy*0.7, fol.scale(0.9), texFoliage),
		)
		s.obstacles = append(s.obstacles, obstacle{round: true, x: x, z: z, r: rad + 0.25})
	}
	// Square planters with shrubs.
	for range 3 + r.IntN(4) {
		x, z, ok := s.spot(r, s.zBottom+3, s.zFar-2, 1, 0.85)
		if !ok {
			continue
		}
		w := r.uniform(1, 1.8)
		h := r.uniform(0.45, 0.7)
		pot := pal.concrete.scale(r.uniform(0.8, 1.1))
		s.prims = append(s.prims,
			newBox(x-w/2, 0, z-w/2, x+w/2, h, z+w/2, pot, pot, texStone),
			newSphere(x, h+0.1, z, w*0.42, pal.foliage2.mix(pal.foliage, r.Float64()), texFoliage),
		)
		s.obstacles = append(s.obstacles, obstacle{x0: x - w/2 - 0.25, z0: z - w/2 - 0.25, x1: x + w/2 + 0.25, z1: z + w/2 + 0.25})
	}
	// Benches facing the camera or sideways.
	for range 3 + r.IntN(4) {
		x, z, ok := s.spot(r, s.zBottom+2, s.zFar-2, 1, 0.85)
		if !ok {
			continue
		}
		s.addBench(r, x, z, r.chance(0.5), true)
	}
	// Lamp posts in a line.
	lx := r.uniform(0.2, 0.6) * []float64{-1, 1}[r.IntN(2)]
	for z := s.zBottom + r.uniform(3, 8); z < s.zFar-2; z += r.uniform(9, 14) {
		x := lx * s.cam.halfWidth(z)
		if !s.free(x, z, 0.6) {
			continue
		}
		h := r.uniform(3.8, 4.8)
		s.prims = append(s.prims,
			newCylinder(x, z, 0.07, 0, h, pal.metal, pal.metal, texPlain),
			newSphere(x, h+0.15, z, 0.2, pal.lamp, texPlain),
		)
		s.obstacles = append(s.obstacles, obstacle{round: true, x: x, z: z, r: 0.35})
	}
}

// layoutHall places a museum hall.
func (s *scene) layoutHall(r rng) {
	s.sun = vec3{r.uniform(-0.25, 0.25), 1, r.uniform(-0.3, 0.1)}.normalized()
	s.ambient, s.direct = r.uniform(0.62, 0.72), r.uniform(0.3, 0.38)
	s.tint = rgb{1.0, 0.97, 0.9}.mix(rgb{0.97, 0.98, 1.0}, r.Float64())
	s.sky = [2]rgb{{0.3, 0.29, 0.28}, {0.22, 0.21, 0.2}}
	s.ceiling = rgb{0.34, 0.33, 0.31}
	s.haze, s.hazeDist = rgb{0.5, 0.5, 0.5}, 1e9
	s.shadowPx = 3

	floors := []groundStyle{
		{pattern: groundChecker, base: rgb{0.78, 0.75, 0.69}, alt: rgb{0.42, 0.4, 0.38}, groutCol: rgb{0.5, 0.48, 0.45}},
		{pattern: groundGrid, base: rgb{0.8, 0.78, 0.74}, groutCol: rgb{0.62, 0.6, 0.57}},
		{pattern: groundGrid, base: rgb{0.55, 0.5, 0.45}, groutCol: rgb{0.42, 0.38, 0.34}},
		{pattern: groundGrid, base: rgb{0.68, 0.69, 0.7}, groutCol: rgb{0.52, 0.53, 0.54}},
	}
	g := floors[r.IntN(len(floors))]
	t := r.uniform(0.6, 1.2)
	g.tileX, g.tileZ, g.grout = t, t, r.uniform(0.004, 0.01)
	g.jitter, g.blotch = r.uniform(0.02, 0.05), r.uniform(0.02, 0.05)
	g.pools = r.uniform(5, 8)
	g.seed = r.Uint64()
	s.ground = g

	walls := []rgb{{0.86, 0.84, 0.8}, {0.76, 0.74, 0.72}, {0.5, 0.18, 0.16}, {0.2, 0.33, 0.36}, {0.8, 0.72, 0.6}}
	s.wall = wallStyle{base: walls[r.IntN(len(walls))], plinth: rgb{0.25, 0.24, 0.23}, plinthH: 0.15, seed: r.Uint64()}
	s.addDoors(r, 1+r.IntN(2), r.uniform(1.3, 1.8), 3.4)

	// Paintings on the back wall between the doors, each a place to stop.
	hw := s.cam.halfWidth(s.wallZ) * 0.9
	for x := -hw + r.uniform(1, 4); x < hw-2; x += r.uniform(4, 7) {
		w := r.uniform(1.4, 3.2)
		blocked := false
		for _, d := range s.doors {
			if math.Abs(x+w/2-d.x) < d.halfW+w/2+0.5 {
				blocked = true
			}
		}
		if blocked {
			continue
		}
		y0 := r.uniform(1.1, 1.5)
		pic := picture{x0: x, x1: x + w, y0: y0, y1: y0 + w*r.uniform(0.55, 0.9), seed: r.Uint64()}
		pic.frame = []rgb{{0.55, 0.42, 0.2}, {0.1, 0.1, 0.1}, {0.85, 0.84, 0.8}}[r.IntN(3)]
		for i := range pic.colours {
			pic.colours[i] = rgb{r.uniform(0.1, 0.9), r.uniform(0.1, 0.8), r.uniform(0.1, 0.7)}
		}
		s.wall.pictures = append(s.wall.pictures, pic)
		s.pois = append(s.pois, poi{x: x + w/2, z: s.wallZ, radius: 1, wall: true})
	}

	// Two rows of columns up to the ceiling.
	colTop := math.Max(s.heightAtTop(s.zNear)+2, s.heightAtTop(s.wallZ)+2)
	colTop = math.Max(colTop, 8)
	cx := r.uniform(6, 10)
	step := r.uniform(9, 13)
	radius := r.uniform(0.35, 0.5)
	square := r.chance(0.4)
	colCol := s.wall.base.mix(rgb{0.85, 0.84, 0.82}, 0.6)
	for z := s.zBottom + r.uniform(6, 10); z < s.wallZ-3; z += step {
		for _, x := range []float64{-cx, cx} {
			if square {
				s.prims = append(s.prims, newBox(x-radius, 0, z-radius, x+radius, colTop, z+radius, colCol, colCol, texStone))
				s.obstacles = append(s.obstacles, obstacle{x0: x - radius - 0.25, z0: z - radius - 0.25, x1: x + radius + 0.25, z1: z + radius + 0.25})
			} else {
				s.prims = append(s.prims, newCylinder(x, z, radius, 0, colTop, colCol, colCol, texStone))
				s.obstacles = append(s.obstacles, obstacle{round: true, x: x, z: z, r: radius + 0.25})
			}
		}
	}
	// Display cases: a plinth with a dark vitrine on top.
	for range 3 + r.IntN(4) {
		x, z, ok := s.spot(r, s.zBottom+3, s.wallZ-5, 1.2, 0.8)
		if !ok {
			continue
		}
		w, d := r.uniform(0.9, 1.8), r.uniform(0.7, 1.2)
		plinth := []rgb{{0.9, 0.89, 0.86}, {0.35, 0.25, 0.18}, {0.2, 0.2, 0.21}}[r.IntN(3)]
		glass := rgb{0.36, 0.42, 0.44}
		s.prims = append(s.prims,
			newBox(x-w/2, 0, z-d/2, x+w/2, 0.9, z+d/2, plinth, plinth, texPlain),
			newBox(x-w/2+0.04, 0.9, z-d/2+0.04, x+w/2-0.04, 0.9+r.uniform(0.5, 0.9), z+d/2-0.04, glass, glass.scale(1.3), texPlain),
		)
		s.obstacles = append(s.obstacles, obstacle{x0: x - w/2 - 0.25, z0: z - d/2 - 0.25, x1: x + w/2 + 0.25, z1: z + d/2 + 0.25})
		s.pois = append(s.pois, poi{x: x, z: z, radius: math.Hypot(w, d)/2 + 0.3})
	}
	// A sculpture on a plinth.
	if x, z, ok := s.spot(r, s.zBottom+4, s.wallZ-6, 1.2, 0.5); ok {
		w := r.uniform(0.8, 1.2)
		marble := rgb{0.88, 0.87, 0.84}
		s.prims = append(s.prims,
			newBox(x-w/2, 0, z-w/2, x+w/2, 1.1, z+w/2, rgb{0.3, 0.3, 0.31}, rgb{0.3, 0.3, 0.31}, texPlain),
			newCylinder(x, z, 0.22, 1.1, 2.3, marble, marble, texStone),
			newSphere(x, 2.45, z, 0.17, marble, texStone),
		)
		s.obstacles = append(s.obstacles, obstacle{x0: x - w/2 - 0.25, z0: z - w/2 - 0.25, x1: x + w/2 + 0.25, z1: z + w/2 + 0.25})
		s.pois = append(s.pois, poi{x: x, z: z, radius: w/2 + 0.5})
	}
	// Benches without backrests.
	for range 1 + r.IntN(3) {
		x, z, ok := s.spot(r, s.zBottom+2, s.wallZ-4, 1.4, 0.6)
		if !ok {
			continue
		}
		s.addBench(r, x, z, false, false)
	}
}

// addDoors places n doorways of half width halfW in the back wall.
func (s *scene) addDoors(r rng, n int, halfW, height float64) {
	hw := s.cam.halfWidth(s.wallZ) * 0.8
	for range n * 10 {
		if len(s.doors) == n {
			return
		}
		x := r.uniform(-hw, hw)
		ok := true
		for _, d := range s.doors {
			if math.Abs(d.x-x) < d.halfW+halfW+3 {
				ok = false
			}
		}
		if ok {
			s.doors = append(s.doors, door{x: x, halfW: halfW, height: height})
		}
	}
}

// addBench places a bench at (x, z), along x or, when sideways, along z.
func (s *scene) addBench(r rng, x, z float64, sideways, backrest bool) {
	pal := palette()
	l, d := r.uniform(1.6, 2.4), 0.45
	wood := pal.wood.scale(r.uniform(0.7, 1.2))
	if !backrest {
		wood = []rgb{{0.2, 0.18, 0.17}, {0.45, 0.32, 0.22}}[r.IntN(2)]
	}
	hx, hz := l/2, d/2
	if sideways {
		hx, hz = hz, hx
	}
	s.prims = append(s.prims,
		newBox(x-hx, 0.38, z-hz, x+hx, 0.46, z+hz, wood, wood, texWood),
		newBox(x-hx+0.05, 0, z-hz+0.05, x+hx-0.05, 0.38, z+hz-0.05, pal.metal, pal.metal, texPlain),
	)
	if backrest {
		if sideways {
			s.prims = append(s.prims, newBox(x+hx-0.06, 0.46, z-hz, x+hx, 0.85, z+hz, wood, wood, texWood))
		} else {
			s.prims = append(s.prims, newBox(x-hx, 0.46, z+hz-0.06, x+hx, 0.85, z+hz, wood, wood, texWood))
		}
	}
	s.obstacles = append(s.obstacles, obstacle{x0: x - hx - 0.25, z0: z - hz - 0.25, x1: x + hx + 0.25, z1: z + hz + 0.25})
}

// bound fills in a part's screen bounds and the ground bounds of its shadow.
func (s *scene) bound(p *prim) {
	w, h := s.cam.Width, s.cam.Height
	p.sx0, p.sy0, p.sx1, p.sy1 = w, h, -1, -1
	full := false
	for i := range 8 {
		x, y, z := p.lo.x, p.lo.y, p.lo.z
		if i&1 != 0 {
			x = p.hi.x
		}
		if i&2 != 0 {
			y = p.hi.y
		}
		if i&4 != 0 {
			z = p.hi.z
		}
		u, v, _, ok := s.cam.project(x, y, z)
		if !ok {
			full = true
			break
		}
		p.sx0 = min(p.sx0, int(math.Floor(u))-2)
		p.sy0 = min(p.sy0, int(math.Floor(v))-2)
		p.sx1 = max(p.sx1, int(math.Ceil(u))+2)
		p.sy1 = max(p.sy1, int(math.Ceil(v))+2)
	}
	if full {
		p.sx0, p.sy0, p.sx1, p.sy1 = 0, 0, w-1, h-1
	}
	// The shadow of the part's box on the ground lies between the box's
	// footprint and the footprint moved away from the light by its height.
	k := p.hi.y / s.sun.y
	p.gx0 = math.Min(p.lo.x, p.lo.x-s.sun.x*k) - 0.01
	p.gx1 = math.Max(p.hi.x, p.hi.x-s.sun.x*k) + 0.01
	p.gz0 = math.Min(p.lo.z, p.lo.z-s.sun.z*k) - 0.01
	p.gz1 = math.Max(p.hi.z, p.hi.z-s.sun.z*k) + 0.01
}
