package synth

// appearance is how one person looks: colours, clothes, hair and build.
type appearance struct {
	skin, hair, top, bottom, shoes rgb
	hat                            bool
	hatCol                         rgb
	longHair                       bool
	shortSleeves                   bool
	shorts                         bool
	skirt                          bool // a skirt or dress down to the knees
	coat                           bool // a long coat over the thighs
	backpack                       bool
	bag                            rgb
	build                          float64 // width factor around 1
	female                         bool
}

// tops are clothing colours for the upper body, with weights: mostly dark
// and muted, some white, a few bright.
func tops() ([]rgb, []float64) {
	return []rgb{
			{0.1, 0.1, 0.11}, {0.9, 0.9, 0.88}, {0.13, 0.17, 0.32}, {0.5, 0.5, 0.52}, {0.28, 0.29, 0.31},
			{0.72, 0.13, 0.14}, {0.45, 0.11, 0.13}, {0.5, 0.68, 0.86}, {0.16, 0.3, 0.66}, {0.2, 0.42, 0.24},
			{0.42, 0.42, 0.24}, {0.72, 0.64, 0.46}, {0.86, 0.8, 0.68}, {0.92, 0.8, 0.22}, {0.9, 0.5, 0.16},
			{0.92, 0.62, 0.72}, {0.44, 0.26, 0.56}, {0.15, 0.5, 0.52}, {0.42, 0.29, 0.19}, {0.32, 0.42, 0.62},
		}, []float64{
			12, 9, 8, 6, 8,
			4, 3, 4, 4, 3,
			3, 4, 4, 2, 2,
			3, 2, 2, 3, 4,
		}
}

// bottoms are colours for trousers, shorts and skirts.
func bottoms() ([]rgb, []float64) {
	return []rgb{
			{0.19, 0.26, 0.43}, {0.11, 0.14, 0.24}, {0.09, 0.09, 0.1}, {0.38, 0.38, 0.4},
			{0.66, 0.58, 0.42}, {0.8, 0.75, 0.64}, {0.88, 0.88, 0.86}, {0.35, 0.25, 0.17}, {0.33, 0.35, 0.22},
		}, []float64{
			14, 10, 14, 6,
			5, 3, 2, 3, 2,
		}
}

// skins are skin tones from light to dark, weighted towards the visitors
// of the scenic areas flowwatch watches but covering the whole range.
func skins() ([]rgb, []float64) {
	return []rgb{
		{0.96, 0.81, 0.7}, {0.94, 0.77, 0.63}, {0.88, 0.69, 0.54}, {0.8, 0.6, 0.45},
		{0.69, 0.5, 0.36}, {0.56, 0.39, 0.27}, {0.43, 0.29, 0.2}, {0.31, 0.21, 0.15},
	}, []float64{6, 10, 10, 7, 4, 3, 2, 2}
}

// hairs are hair colours.
func hairs() ([]rgb, []float64) {
	return []rgb{
		{0.05, 0.045, 0.045}, {0.16, 0.11, 0.07}, {0.33, 0.21, 0.12}, {0.42, 0.2, 0.12},
		{0.72, 0.6, 0.38}, {0.55, 0.54, 0.53}, {0.84, 0.84, 0.82},
	}, []float64{30, 14, 6, 2, 3, 4, 2}
}

// pick draws a colour from a weighted palette and varies it a little.
func pick(r rng, palette func() ([]rgb, []float64), vary float64) rgb {
	cols, w := palette()
	c := cols[r.weighted(w)]
	b := 1 + r.uniform(-vary, vary)
	for i := range c {
		c[i] = min(1, c[i]*b*(1+r.uniform(-vary, vary)*0.5))
	}
	return c
}

// newAppearance dresses one person.
func newAppearance(r rng, female, child bool) appearance {
	a := appearance{female: female}
	a.skin = pick(r, skins, 0.04)
	a.hair = pick(r, hairs, 0.1)
	grey := !child && r.chance(0.12)
	if grey {
		a.hair = rgb{0.6, 0.6, 0.59}.scale(r.uniform(0.9, 1.35))
	}
	a.top = pick(r, tops, 0.1)
	a.bottom = pick(r, bottoms, 0.1)
	a.shoes = []rgb{{0.08, 0.08, 0.08}, {0.85, 0.85, 0.83}, {0.3, 0.2, 0.14}, {0.35, 0.36, 0.4}}[r.weighted([]float64{5, 4, 2, 2})]
	a.longHair = female && r.chance(0.6) && !(grey && r.chance(0.7))
	a.shortSleeves = r.chance(0.4)
	a.shorts = !female && r.chance(0.15) || child && r.chance(0.3)
	a.skirt = female && !a.shorts && r.chance(0.3)
	a.coat = !a.skirt && !a.shorts && r.chance(0.12)
	if a.coat {
		a.shortSleeves = false
	}
	a.hat = r.chance(0.14)
	a.hatCol = []rgb{{0.9, 0.9, 0.88}, {0.12, 0.12, 0.13}, {0.8, 0.2, 0.15}, {0.2, 0.3, 0.6}, {0.85, 0.75, 0.5}}[r.IntN(5)]
	a.backpack = r.chance(0.25)
	a.bag = []rgb{{0.1, 0.1, 0.11}, {0.2, 0.25, 0.4}, {0.45, 0.3, 0.2}, {0.6, 0.15, 0.15}}[r.IntN(4)]
	a.build = r.uniform(0.9, 1.15)
	if female {
		a.build *= 0.92
	}
	return a
}
