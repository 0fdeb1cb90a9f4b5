package synth

import (
	"math"
	"math/rand/v2"
)

// Streams of randomness drawn from one seed. Each part of a video draws
// from its own stream so that, for example, changing the duration does not
// change the scene.
const (
	streamCamera uint64 = 0x6361_6d65_7261_0001
	streamScene  uint64 = 0x7363_656e_6500_0002
	streamCrowd  uint64 = 0x6372_6f77_6400_0003
	streamGrain  uint64 = 0x6772_6169_6e00_0004
)

// rng is a seeded random source with the helpers the generator needs.
type rng struct {
	*rand.Rand
}

// newRNG returns the stream of seed named by stream.
func newRNG(seed, stream uint64) rng {
	return rng{rand.New(rand.NewPCG(seed, stream))}
}

// uniform returns a number in [a, b).
func (r rng) uniform(a, b float64) float64 {
	return a + (b-a)*r.Float64()
}

// chance returns true with probability p.
func (r rng) chance(p float64) bool {
	return r.Float64() < p
}

// normal returns a normally distributed number with mean m and standard
// deviation s, cut to m±3s.
func (r rng) normal(m, s float64) float64 {
	return m + s*math.Max(-3, math.Min(3, r.NormFloat64()))
}

// weighted returns an index into weights, drawn in proportion to them.
func (r rng) weighted(weights []float64) int {
	total := 0.0
	for _, w := range weights {
		total += w
	}
	x := r.Float64() * total
	for i, w := range weights {
		if x < w {
			return i
		}
		x -= w
	}
	return len(weights) - 1
}

// hash64 mixes a seed and two lattice coordinates into 64 well-spread bits
// (the SplitMix64 finaliser).
func hash64(seed uint64, i, j int64) uint64 {
	x := seed ^ uint64(i)*0x9e3779b97f4a7c15 ^ uint64(j)*0xc2b2ae3d27d4eb4f
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// hashUnit maps a lattice point to a number in [0,1).
func hashUnit(seed uint64, i, j int64) float64 {
	return float64(hash64(seed, i, j)>>11) / (1 << 53)
}

// valueNoise is smooth 2-D value noise in [0,1) with lattice spacing 1.
func valueNoise(seed uint64, x, y float64) float64 {
	fx, fy := math.Floor(x), math.Floor(y)
	ix, iy := int64(fx), int64(fy)
	tx, ty := x-fx, y-fy
	tx = tx * tx * (3 - 2*tx)
	ty = ty * ty * (3 - 2*ty)
	a := hashUnit(seed, ix, iy)
	b := hashUnit(seed, ix+1, iy)
	c := hashUnit(seed, ix, iy+1)
	d := hashUnit(seed, ix+1, iy+1)
	return a + (b-a)*tx + (c-a)*ty + (a-b-c+d)*tx*ty
}

// fbm sums octaves of value noise into a number in about [0,1).
func fbm(seed uint64, x, y float64, octaves int) float64 {
	sum, amp, norm := 0.0, 1.0, 0.0
	for o := range octaves {
		sum += amp * valueNoise(seed+uint64(o)*0x51ed27, x, y)
		norm += amp
		amp *= 0.5
		x, y = x*2.03, y*2.03
	}
	return sum / norm
}
