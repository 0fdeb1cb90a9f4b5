package alerting

import (
	"flowwatch/internal/event"
)

// Comfort is one of the five comfort grades published for visitors.
type Comfort struct {
	// Grade runs from 1 (舒适, comfortable) to 5 (拥挤, crowded); 0 means
	// unknown (no capacity, or no current count).
	Grade int `json:"grade"`
	// Name and NameEN are the grade's words.
	Name   string `json:"name"`
	NameEN string `json:"name_en"`
}

var comfortNames = [...]struct{ zh, en string }{
	{"未知", "unknown"},
	{"舒适", "comfortable"},
	{"较舒适", "fairly comfortable"},
	{"一般", "moderate"},
	{"较拥挤", "fairly crowded"},
	{"拥挤", "crowded"},
}

// ComfortOf grades a ratio of count to capacity against the four upper
// bounds of the first four grades (config rules.comfort_bounds). A ratio
// below zero (unknown) gives grade 0.
func ComfortOf(ratio float64, bounds []float64) Comfort {
	if ratio < 0 || len(bounds) != 4 {
		return comfortGrade(0)
	}
	for i, b := range bounds {
		if ratio < b {
			return comfortGrade(i + 1)
		}
	}
	return comfortGrade(5)
}

func comfortGrade(g int) Comfort {
	return Comfort{Grade: g, Name: comfortNames[g].zh, NameEN: comfortNames[g].en}
}

// tiers are the capacity tiers as fractions of capacity, lowest first.
type tiers struct {
	bounds [3]float64 // yellow, orange, red
	margin float64
}

var tierLevels = [3]event.Level{event.LevelYellow, event.LevelOrange, event.LevelRed}

// levelFor returns the tier a ratio reaches, given the tier currently held
// (hysteresis: a held tier stays until the ratio falls below its bound
// minus the margin). "" means no tier.
func (t tiers) levelFor(ratio float64, held event.Level) event.Level {
	out := event.Level("")
	for i, b := range t.bounds {
		bound := b
		if held.Rank() >= i+1 {
			bound = b - t.margin
		}
		if ratio >= bound {
			out = tierLevels[i]
		}
	}
	return out
}

// bound returns the ratio at which a tier level begins.
func (t tiers) bound(l event.Level) float64 {
	for i, tl := range tierLevels {
		if tl == l {
			return t.bounds[i]
		}
	}
	return 0
}

var levelWords = map[event.Level]struct{ zh, en string }{
	event.LevelInfo:   {"提示", "notice"},
	event.LevelYellow: {"黄色预警", "yellow alert"},
	event.LevelOrange: {"橙色预警", "orange alert"},
	event.LevelRed:    {"红色预警", "red alert"},
}
