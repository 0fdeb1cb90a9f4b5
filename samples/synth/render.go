package synth

import (
	"image"
	"math"
	"sort"
)

// Head is one person's head point in one frame: the truth a counting model
// is checked against.
type Head struct {
	// Person identifies the person; it stays the same across the frames of
	// one video.
	Person int
	// X and Y are the head point (the centre of the head) in image
	// coordinates of the frame: pixel (i, j) has its centre at
	// (i+0.5, j+0.5).
	X, Y float64
	// HeightPx is the person's standing height in pixels: the distance
	// between the projections of the foot point and the top of the head.
	HeightPx float64
}

// Render draws the frames of cfg one after another and calls frame with
// each: its index from 0, the picture and the truth (heads sorted by
// Person). img and heads are reused for the next frame; frame must copy
// what it keeps. Rendering stops at the first error frame returns, and
// Render returns that error.
func Render(cfg Config, frame func(i int, img *image.RGBA, heads []Head) error) error {
	r, err := newRenderer(cfg, true)
	if err != nil {
		return err
	}
	return r.run(func(i int, heads []Head) error {
		r.draw(i)
		return frame(i, r.img, heads)
	})
}

// simulate runs the crowd of cfg without drawing and calls fn with the truth
// of each frame.
func simulate(cfg Config, fn func(i int, heads []Head) error) error {
	r, err := newRenderer(cfg, false)
	if err != nil {
		return err
	}
	return r.run(fn)
}

// run steps the crowd through every frame and calls fn with each frame's
// truth, after the crowd has moved to that frame.
func (r *renderer) run(fn func(i int, heads []Head) error) error {
	var heads []Head
	for i := range r.frames {
		if i > 0 {
			r.crowd.step(r.dt)
		}
		heads = r.crowd.heads(heads[:0])
		if err := fn(i, heads); err != nil {
			return err
		}
	}
	return nil
}

// renderer holds the state of one video being drawn.
type renderer struct {
	cfg    Config
	scene  *scene
	crowd  *crowd
	frames int
	dt     float64
	bg     *background
	img    *image.RGBA
	cv     canvas
	order  []*person
	grain  *grain
}

// newRenderer resolves cfg, lays out the scene and the crowd and, when
// pictures is set, renders the background.
func newRenderer(cfg Config, pictures bool) (*renderer, error) {
	cfg, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	s := newScene(cfg)
	r := &renderer{cfg: cfg, scene: s, frames: cfg.frames(), dt: 1 / cfg.FPS}
	if r.crowd, err = newCrowd(s, cfg); err != nil {
		return nil, err
	}
	if !pictures {
		return r, nil
	}
	r.bg = renderBackground(s, cfg.Seed)
	r.img = image.NewRGBA(image.Rect(0, 0, cfg.Width, cfg.Height))
	n := cfg.Width * cfg.Height
	cam := &s.cam
	// The light direction in camera coordinates (x right, y down, z away).
	l := s.sun
	depth := 0.45
	if s.kind == SceneHall {
		depth = 0.3
	}
	r.cv = canvas{
		pix: r.img.Pix, w: cfg.Width, h: cfg.Height,
		occ: r.bg.occ, lit: r.bg.lit, mask: make([]uint8, n),
		mx0: cfg.Width, my0: cfg.Height, mx1: -1, my1: -1,
		lx: l.x, ly: -l.y*cam.cos - l.z*cam.sin, lz: -l.y*cam.sin + l.z*cam.cos,
		ambient: s.ambient + 0.05, direct: s.direct, tint: s.tint, shadowDepth: depth,
		camSin: cam.sin, camCos: cam.cos, camH: cam.HeightM,
		focal: cam.FocalPx, cx: cam.CX, cy: cam.CY,
	}
	r.cv.initTables()
	if cfg.Grain > 0 {
		r.grain = newGrain(cfg.Grain, cfg.Seed)
	}
	return r, nil
}

// draw paints frame i: the background, people's shadows, the people from
// far to near, and sensor grain.
func (r *renderer) draw(i int) {
	copy(r.img.Pix, r.bg.pix)
	s := r.scene
	cam := &s.cam
	cv := &r.cv
	for _, p := range r.crowd.people {
		r.shadow(p)
	}
	cv.applyShadows()

	r.order = append(r.order[:0], r.crowd.people...)
	sort.SliceStable(r.order, func(a, b int) bool {
		da := cam.depth(0, r.order[a].z)
		db := cam.depth(0, r.order[b].z)
		if da != db {
			return da > db
		}
		return r.order[a].id < r.order[b].id
	})
	for _, p := range r.order {
		drawPerson(cv, cam, p)
	}
	if r.grain != nil {
		r.grain.add(r.img.Pix, r.cfg.Width)
	}
}

// shadow adds one person's shadow to the canvas's shadow mask: cast away
// from the sun outdoors, a soft pool under the feet indoors.
func (r *renderer) shadow(p *person) {
	s := r.scene
	cam := &s.cam
	sc := p.h / 1.7
	dist := float32(math.Hypot(p.x, p.z))
	ax, az := p.x, p.z
	bx, bz := ax, az
	ra, rb := 0.3*sc, 0.3*sc
	strength := 0.75
	if s.kind == ScenePlaza {
		k := 0.85 * p.h / s.sun.y
		bx, bz = ax-s.sun.x*k, az-s.sun.z*k
		ra, rb = 0.22*sc, 0.15*sc
		strength = 1
	}
	x0, y0 := math.Inf(1), math.Inf(1)
	x1, y1 := math.Inf(-1), math.Inf(-1)
	for _, q := range [4][3]float64{{ax, az, ra}, {bx, bz, rb}, {ax, az, -ra}, {bx, bz, -rb}} {
		for _, d := range [2][2]float64{{q[2], 0}, {0, q[2]}} {
			u, v, _, ok := cam.project(q[0]+d[0], 0, q[1]+d[1])
			if !ok {
				return
			}
			x0, y0 = math.Min(x0, u), math.Min(y0, v)
			x1, y1 = math.Max(x1, u), math.Max(y1, v)
		}
	}
	r.cv.groundShadow(ax, az, ra, bx, bz, rb, strength, dist, [4]float64{x0 - 2, y0 - 2, x1 + 2, y1 + 2})
}

// grain is a table of sensor noise, in 8-bit levels, and a clamping table,
// so that adding noise to a frame costs a few table lookups a pixel.
type grain struct {
	noise []int8
	clamp [256 + 2*grainMax]uint8
	rng   rng
}

// grainMax bounds the noise, in 8-bit levels.
const grainMax = 64

// newGrain makes the noise table for a standard deviation of sigma levels.
func newGrain(sigma float64, seed uint64) *grain {
	g := &grain{noise: make([]int8, 1<<16), rng: newRNG(seed, streamGrain)}
	for i := range g.noise {
		n := math.Round(g.rng.NormFloat64() * sigma)
		g.noise[i] = int8(math.Max(-grainMax, math.Min(grainMax, n)))
	}
	for i := range g.clamp {
		g.clamp[i] = uint8(min(255, max(0, i-grainMax)))
	}
	return g
}

// add adds luminance noise to every pixel of an RGBA picture w pixels
// wide, each row from its own random place in the table.
func (g *grain) add(pix []uint8, w int) {
	mask := len(g.noise) - 1
	for row := 0; row+4*w <= len(pix); row += 4 * w {
		j := g.rng.IntN(len(g.noise))
		p := pix[row : row+4*w : row+4*w]
		for i := 0; i < len(p); i += 4 {
			n := int(g.noise[j&mask]) + grainMax
			j++
			p[i] = g.clamp[int(p[i])+n]
			p[i+1] = g.clamp[int(p[i+1])+n]
			p[i+2] = g.clamp[int(p[i+2])+n]
		}
	}
}
