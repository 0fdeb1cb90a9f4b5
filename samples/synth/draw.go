package synth

import (
	"encoding/binary"
	"math"
)

// canvas paints people into one frame: antialiased primitives written
// straight into the RGBA pixels, skipping pixels where a static object
// nearer to the camera than the person covers the background.
type canvas struct {
	pix  []uint8
	w, h int
	occ  []float32 // per pixel: horizontal distance of the static object seen there
	lit  []uint8   // per pixel: 255 where the background is in direct light
	// mask accumulates people's shadows (the darkest wins) before they are
	// applied, so overlapping shadows do not darken twice.
	mask                 []uint8
	mx0, my0, mx1, my1   int // bounds of the non-zero part of mask
	lx, ly, lz           float64
	ambient, direct      float64
	tint                 rgb
	shadowDepth          float64 // darkening of a full shadow, 0 to 1
	camSin, camCos, camH float64
	focal, cx, cy        float64
	// occTiles holds, for each occTile×occTile block of pixels, the least
	// occluder distance in it, so that people clear of static objects skip
	// the per-pixel test.
	occTiles []float32
	tilesW   int
	// nzLUT[k] is sqrt(1-l²) for l = k/lutHalf - 1: the depth component of
	// a cylinder's normal at lateral position l.
	nzLUT [2*lutHalf + 1]float64
}

// occTile is the side of the blocks of occTiles, in pixels.
const occTile = 16

// lutHalf is half the number of steps of nzLUT.
const lutHalf = 16

// initTables fills the occluder blocks and the normal table.
func (cv *canvas) initTables() {
	cv.tilesW = (cv.w + occTile - 1) / occTile
	th := (cv.h + occTile - 1) / occTile
	cv.occTiles = make([]float32, cv.tilesW*th)
	for i := range cv.occTiles {
		cv.occTiles[i] = float32(math.Inf(1))
	}
	for y := range cv.h {
		for x := range cv.w {
			t := (y/occTile)*cv.tilesW + x/occTile
			cv.occTiles[t] = min(cv.occTiles[t], cv.occ[y*cv.w+x])
		}
	}
	for k := range cv.nzLUT {
		l := float64(k)/lutHalf - 1
		cv.nzLUT[k] = math.Sqrt(math.Max(0, 1-l*l))
	}
}

// mayHide reports whether a static object nearer than dist may cover part
// of the pixel box [x0,x1]×[y0,y1].
func (cv *canvas) mayHide(x0, y0, x1, y1 int, dist float32) bool {
	for ty := y0 / occTile; ty <= y1/occTile; ty++ {
		for tx := x0 / occTile; tx <= x1/occTile; tx++ {
			if cv.occTiles[ty*cv.tilesW+tx] < dist {
				return true
			}
		}
	}
	return false
}

// shades holds the colours of a cylinder seen across its width: entry k
// is the lit colour at lateral position k/lutHalf - 1, as the four bytes
// R, G, B, 255 of an RGBA pixel read as a little-endian word.
type shades [2*lutHalf + 1]uint32

// cylShades fills the colours across a cylinder of colour c (channels
// 0..255) whose axis has the unit normal (nx, ny) in the image.
func (cv *canvas) cylShades(out *shades, c rgb, nx, ny float64) {
	k1 := nx*cv.lx + ny*cv.ly
	for k := range out {
		lat := float64(k)/lutHalf - 1
		d := lat*k1 - cv.nzLUT[k]*cv.lz
		if d < 0 {
			d = 0
		}
		light := cv.ambient + cv.direct*d
		out[k] = uint32(clampByte(c[0]*light)) | uint32(clampByte(c[1]*light))<<8 |
			uint32(clampByte(c[2]*light))<<16 | 0xff<<24
	}
}

// at returns the colour at lateral position lat.
func (sh *shades) at(lat float64) uint32 {
	k := int((lat+1)*lutHalf + 0.5)
	if k < 0 {
		k = 0
	} else if k > 2*lutHalf {
		k = 2 * lutHalf
	}
	return sh[k]
}

// blend writes colour c (as in shades) into pixel i with coverage a.
func (cv *canvas) blend(i int, c uint32, a float64) {
	p := cv.pix[4*i : 4*i+4 : 4*i+4]
	if a >= 1 {
		binary.LittleEndian.PutUint32(p, c)
		return
	}
	for k := range 3 {
		ck := float64(c >> (8 * k) & 0xff)
		p[k] = uint8(float64(p[k]) + (ck-float64(p[k]))*a + 0.5)
	}
}

// bounds clips the box [x0,x1]×[y0,y1] to the canvas and reports whether
// anything is left.
func (cv *canvas) bounds(x0, y0, x1, y1 float64) (int, int, int, int, bool) {
	ix0 := max(0, int(math.Floor(x0)))
	iy0 := max(0, int(math.Floor(y0)))
	ix1 := min(cv.w-1, int(math.Ceil(x1)))
	iy1 := min(cv.h-1, int(math.Ceil(y1)))
	return ix0, iy0, ix1, iy1, ix0 <= ix1 && iy0 <= iy1
}

// shade returns the light on a surface whose normal, in camera coordinates
// (x right, y down, z away from the camera), is (nx, ny, nz).
func (cv *canvas) shade(nx, ny, nz float64) float64 {
	d := nx*cv.lx + ny*cv.ly + nz*cv.lz
	if d < 0 {
		d = 0
	}
	return cv.ambient + cv.direct*d
}

// put blends colour c (channels 0..255) scaled by light into pixel i with
// coverage a.
func (cv *canvas) put(i int, c rgb, light, a float64) {
	p := cv.pix[4*i : 4*i+3 : 4*i+3]
	if a >= 1 {
		p[0] = clampByte(c[0] * light)
		p[1] = clampByte(c[1] * light)
		p[2] = clampByte(c[2] * light)
		return
	}
	for k := range 3 {
		p[k] = clampByte(float64(p[k]) + (c[k]*light-float64(p[k]))*a)
	}
}

// clampByte rounds v to the nearest 8-bit level, clamping to 0..255.
func clampByte(v float64) uint8 {
	if v <= 0 {
		return 0
	}
	if v >= 254.5 {
		return 255
	}
	return uint8(v + 0.5)
}

// capsule paints a tapered capsule from (ax, ay) with radius ar to (bx, by)
// with radius br, shaded as a cylinder, for a person at horizontal distance
// dist from the camera.
func (cv *canvas) capsule(ax, ay, ar, bx, by, br float64, col rgb, dist float32) {
	if ar < 0.3 && br < 0.3 {
		ar, br = math.Max(ar, 0.3), math.Max(br, 0.3)
	}
	x0, y0, x1, y1, ok := cv.bounds(math.Min(ax-ar, bx-br)-1, math.Min(ay-ar, by-br)-1,
		math.Max(ax+ar, bx+br)+1, math.Max(ay+ar, by+br)+1)
	if !ok {
		return
	}
	dx, dy := bx-ax, by-ay
	l2 := dx*dx + dy*dy
	var nx, ny float64
	if l2 > 1e-9 {
		l := math.Sqrt(l2)
		nx, ny = -dy/l, dx/l
	} else {
		l2, nx, ny = 1e-9, 1, 0
	}
	var sh shades
	cv.cylShades(&sh, col.mul(cv.tint).scale(255), nx, ny)
	hide := cv.mayHide(x0, y0, x1, y1, dist)
	for y := y0; y <= y1; y++ {
		py := float64(y) + 0.5 - ay
		row := y * cv.w
		for x := x0; x <= x1; x++ {
			px := float64(x) + 0.5 - ax
			t := (px*dx + py*dy) / l2
			if t < 0 {
				t = 0
			} else if t > 1 {
				t = 1
			}
			qx, qy := px-t*dx, py-t*dy
			d2 := qx*qx + qy*qy
			r := ar + (br-ar)*t
			if d2 >= (r+0.5)*(r+0.5) {
				continue
			}
			cov := 1.0
			if d2 > (r-0.5)*(r-0.5) {
				cov = r - math.Sqrt(d2) + 0.5
			}
			i := row + x
			if hide && cv.occ[i] < dist {
				continue
			}
			cv.blend(i, sh.at((qx*nx+qy*ny)/r), cov)
		}
	}
}

// trapezoid paints the quadrilateral with the top edge centred on (tx, ty)
// with half-width tw and the bottom edge centred on (bx, by) with
// half-width bw, both edges square to the axis between the centres, shaded
// as an elliptic cylinder.
func (cv *canvas) trapezoid(tx, ty, tw, bx, by, bw float64, col rgb, dist float32) {
	ax, ay := bx-tx, by-ty
	l := math.Hypot(ax, ay)
	if l < 1e-6 {
		return
	}
	ux, uy := ax/l, ay/l // along the axis, top to bottom
	nx, ny := -uy, ux    // across
	m := math.Max(tw, bw) + 1
	x0, y0, x1, y1, ok := cv.bounds(math.Min(tx, bx)-m, math.Min(ty, by)-m, math.Max(tx, bx)+m, math.Max(ty, by)+m)
	if !ok {
		return
	}
	// The side edges: distance inside is half-width(t) - |across|, measured
	// square to the slanted side.
	slope := (bw - tw) / l
	sideK := 1 / math.Sqrt(1+slope*slope)
	var sh shades
	cv.cylShades(&sh, col.mul(cv.tint).scale(255), nx, ny)
	hide := cv.mayHide(x0, y0, x1, y1, dist)
	for y := y0; y <= y1; y++ {
		py := float64(y) + 0.5 - ty
		row := y * cv.w
		for x := x0; x <= x1; x++ {
			px := float64(x) + 0.5 - tx
			along := px*ux + py*uy
			across := px*nx + py*ny
			hw := tw + slope*along
			in := math.Min(along, l-along)
			side := (hw - math.Abs(across)) * sideK
			if side < in {
				in = side
			}
			cov := in + 0.5
			if cov <= 0 {
				continue
			}
			i := row + x
			if hide && cv.occ[i] < dist {
				continue
			}
			cv.blend(i, sh.at(across/math.Max(hw, 0.5)), cov)
		}
	}
}

// head paints a person's head: an ellipsoid of half-width r pixels and
// half-height 1.15r centred on (cx, cy), hair, hat or skin chosen per pixel
// from the surface normal in the world (soft at the hairline), for a
// person facing (fx, fz).
func (cv *canvas) head(cx, cy, r float64, a *appearance, fx, fz float64, dist float32) {
	const tall = 1.15
	x0, y0, x1, y1, ok := cv.bounds(cx-r-1, cy-tall*r-1, cx+r+1, cy+tall*r+1)
	if !ok {
		return
	}
	hairLine, backLine := 0.3, -0.15
	if a.longHair {
		hairLine, backLine = 0.2, 0.1
	}
	skin := a.skin.mul(cv.tint).scale(255)
	hair := a.hair.mul(cv.tint).scale(255)
	hat := a.hatCol.mul(cv.tint).scale(255)
	rr := math.Max(r, 0.5)
	// Width of the soft band at the hairline, in units of the normal, about
	// one pixel wide.
	soft := math.Max(0.08, 1/rr)
	hide := cv.mayHide(x0, y0, x1, y1, dist)
	for y := y0; y <= y1; y++ {
		b := (float64(y) + 0.5 - cy) / (rr * tall)
		row := y * cv.w
		for x := x0; x <= x1; x++ {
			ax := (float64(x) + 0.5 - cx) / rr
			d2 := ax*ax + b*b
			cov := (1-math.Sqrt(d2))*rr + 0.5
			if cov <= 0 {
				continue
			}
			i := row + x
			if hide && cv.occ[i] < dist {
				continue
			}
			c := 0.0
			if d2 < 1 {
				c = math.Sqrt(1 - d2)
			}
			// World normal of the head at this pixel.
			wx := ax
			wy := -b*cv.camCos + c*cv.camSin
			wz := -b*cv.camSin - c*cv.camCos
			front := wx*fx + wz*fz
			hairAmt := math.Max(smooth((wy-hairLine)/soft), smooth((backLine-front)/soft))
			col := skin.mix(hair, hairAmt)
			if a.hat {
				col = col.mix(hat, smooth((wy-0.35)/soft))
			}
			cv.put(i, col, cv.shade(ax, b, -c), cov)
		}
	}
}

// smooth maps x to 0 below -0.5, 1 above 0.5 and smoothly in between.
func smooth(x float64) float64 {
	t := math.Max(0, math.Min(1, x+0.5))
	return t * t * (3 - 2*t)
}

// groundShadow adds to the shadow mask a soft shadow on the ground: the
// points within radius ra..rb (growing from a to b) of the ground segment
// from (ax, az) to (bx, bz), with the given strength (0..1).
func (cv *canvas) groundShadow(ax, az, ra, bx, bz, rb, strength float64, dist float32, img [4]float64) {
	x0, y0, x1, y1, ok := cv.bounds(img[0], img[1], img[2], img[3])
	if !ok {
		return
	}
	dx, dz := bx-ax, bz-az
	l2 := math.Max(dx*dx+dz*dz, 1e-9)
	rmax := math.Max(ra, rb)
	hide := cv.mayHide(x0, y0, x1, y1, dist)
	for y := y0; y <= y1; y++ {
		b := (float64(y) + 0.5 - cv.cy) / cv.focal
		den := cv.camSin + b*cv.camCos
		if den <= 1e-9 {
			continue
		}
		t := cv.camH / den
		gz := t * (cv.camCos - b*cv.camSin)
		// The row is the ground line at distance gz: take the part of it
		// within rmax of the segment, as a range of x, then of columns.
		lo, hi, ok := segmentSpan(ax, az, dx, dz, rmax, gz)
		if !ok {
			continue
		}
		sx0 := max(x0, int(math.Floor(cv.cx+lo*cv.focal/t-0.5)))
		sx1 := min(x1, int(math.Ceil(cv.cx+hi*cv.focal/t-0.5)))
		row := y * cv.w
		for x := sx0; x <= sx1; x++ {
			gx := t * (float64(x) + 0.5 - cv.cx) / cv.focal
			px, pz := gx-ax, gz-az
			s := (px*dx + pz*dz) / l2
			if s < 0 {
				s = 0
			} else if s > 1 {
				s = 1
			}
			qx, qz := px-s*dx, pz-s*dz
			r := ra + (rb-ra)*s
			d2 := qx*qx + qz*qz
			if d2 >= r*r {
				continue
			}
			d := math.Sqrt(d2) / r
			i := row + x
			if hide && cv.occ[i] < dist {
				continue
			}
			// Soft edge, darker towards the feet.
			e := 1 - d
			v := e * e * (3 - 2*e) * strength * (1 - 0.35*s) * float64(cv.lit[i]) / 255
			m := uint8(v*255 + 0.5)
			if m > cv.mask[i] {
				cv.mask[i] = m
				cv.mx0, cv.my0 = min(cv.mx0, x), min(cv.my0, y)
				cv.mx1, cv.my1 = max(cv.mx1, x), max(cv.my1, y)
			}
		}
	}
}

// segmentSpan returns the range of x, on the line z = z0, of the points
// within r of the segment from (ax, az) along (dx, dz); the range may be a
// little wide, never narrow. ok is false when there are no such points.
func segmentSpan(ax, az, dx, dz, r, z0 float64) (lo, hi float64, ok bool) {
	if math.Abs(dz) < 1e-9 {
		if math.Abs(z0-az) > r {
			return 0, 0, false
		}
		return math.Min(ax, ax+dx) - r, math.Max(ax, ax+dx) + r, true
	}
	s0, s1 := (z0-r-az)/dz, (z0+r-az)/dz
	if s0 > s1 {
		s0, s1 = s1, s0
	}
	s0, s1 = math.Max(s0, 0), math.Min(s1, 1)
	if s0 > s1 {
		return 0, 0, false
	}
	x0, x1 := ax+s0*dx, ax+s1*dx
	return math.Min(x0, x1) - r, math.Max(x0, x1) + r, true
}

// applyShadows darkens the frame by the shadow mask and clears the mask.
func (cv *canvas) applyShadows() {
	if cv.mx0 > cv.mx1 {
		return
	}
	for y := cv.my0; y <= cv.my1; y++ {
		row := y * cv.w
		for x := cv.mx0; x <= cv.mx1; x++ {
			i := row + x
			m := cv.mask[i]
			if m == 0 {
				continue
			}
			f := 1 - cv.shadowDepth*float64(m)/255
			p := cv.pix[4*i : 4*i+3 : 4*i+3]
			for k := range 3 {
				p[k] = uint8(float64(p[k])*f + 0.5)
			}
			cv.mask[i] = 0
		}
	}
	cv.mx0, cv.my0, cv.mx1, cv.my1 = cv.w, cv.h, -1, -1
}
