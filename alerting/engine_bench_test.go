package alerting

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"flowwatch/internal/config"
	"flowwatch/internal/event"
)

// BenchmarkEngineObserve1000Zones measures the engine's cost per count
// sample on a site of 1,000 zones (10 cameras of 100 zones, each zone with
// a capacity) in 100 areas of 10 zones, every rule on, counts moving so
// that trends are fitted and levels change.
func BenchmarkEngineObserve1000Zones(b *testing.B) {
	var y strings.Builder
	y.WriteString("security: {allow_loopback: true}\ncameras:\n")
	for c := range 10 {
		fmt.Fprintf(&y, "  - name: cam%d\n    url: rtsp://127.0.0.1:8554/c%d\n    zones:\n", c, c)
		for z := range 100 {
			fmt.Fprintf(&y, "      - {name: z%d, polygon: [[0,0],[1,0],[1,1]], capacity: 50}\n", z)
		}
	}
	y.WriteString("areas:\n")
	for a := range 100 {
		c, z0 := a/10, (a%10)*10
		fmt.Fprintf(&y, "  - name: a%d\n    capacity: 400\n    zones: [", a)
		for z := range 10 {
			if z > 0 {
				y.WriteString(", ")
			}
			fmt.Fprintf(&y, "cam%d/z%d", c, z0+z)
		}
		y.WriteString("]\n")
		if a > 0 {
			fmt.Fprintf(&y, "    links: [{to: a%d, walk_minutes: 2}]\n", a-1)
		}
	}
	cfg, err := config.Parse("bench.yaml", []byte(y.String()))
	if err != nil {
		b.Fatal(err)
	}
	e, err := NewEngine(cfg)
	if err != nil {
		b.Fatal(err)
	}
	cams, zones := make([]string, 1000), make([]string, 1000)
	for z := range 1000 {
		cams[z], zones[z] = fmt.Sprintf("cam%d", z/100), fmt.Sprintf("z%d", z%100)
	}
	// 2 samples a second per zone, as serve's default analysis rate gives
	step := time.Second / 2000
	now := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	changes := 0
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		z := i % 1000
		round := i / 1000
		// each zone climbs from 10 to 50 people in 5 minutes, then drops
		v := 10 + 40*float64(round%600)/600
		now = now.Add(step)
		changes += len(e.Observe(event.CountSample{Time: now, Camera: cams[z], Zone: zones[z], Count: v}))
		if z == 999 && round%2 == 1 {
			changes += len(e.Tick(now))
		}
	}
	b.Logf("%d alert changes over %d counts", changes, b.N)
}
