package alerting

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"flowwatch/internal/config"
	"flowwatch/internal/event"
)

// testConfig is two cameras and three linked areas:
//
//	cam-a: zone gate (capacity 50) and zone hall → area hall (capacity 100)
//	cam-b: zone yard → area yard (capacity 200), area lawn (capacity 100)
func testConfig(t *testing.T, rules string) *config.Config {
	t.Helper()
	src := `
security: {allow_loopback: true}
cameras:
  - name: cam-a
    title: Hall camera
    url: rtsp://127.0.0.1:8554/a
    zones:
      - name: gate
        polygon: [[0,0],[0.5,0],[0.5,1]]
        capacity: 50
      - name: hall
        polygon: [[0.5,0],[1,0],[1,1]]
  - name: cam-b
    url: rtsp://127.0.0.1:8554/b
    zones:
      - name: yard
        polygon: [[0,0],[1,0],[1,1]]
      - name: lawn
        polygon: [[0,0],[1,1],[0,1]]
areas:
  - name: hall
    title: 展厅 Hall
    zones: [cam-a/gate, cam-a/hall]
    capacity: 100
    turnover: 4
    links:
      - {to: yard, route: 北门 north gate, walk_minutes: 3}
      - {to: lawn, route: 东廊 east walk, walk_minutes: 5}
  - name: yard
    title: 庭院 Yard
    zones: [cam-b/yard]
    capacity: 200
  - name: lawn
    title: 草坪 Lawn
    zones: [cam-b/lawn]
    capacity: 100
rules:
`
	// the base rules, unless the test sets its own
	for _, line := range []string{"smoothing: 1s", "min_duration: 10s", "cooldown: 60s", "trend_window: 60s",
		"camera_offline: 30s", "escalate_after: 120s"} {
		key, _, _ := strings.Cut(line, ":")
		if !strings.Contains(rules, key+":") {
			src += "  " + line + "\n"
		}
	}
	src += rules
	cfg, err := config.Parse("test.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func newTestEngine(t *testing.T, rules string) *Engine {
	t.Helper()
	e, err := NewEngine(testConfig(t, rules))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

var t0 = time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)

// series feeds one zone a count per second from a function of the second
// and returns every change, with the second it happened at.
type step struct {
	sec    int
	change event.AlertChange
}

// Feeding cam-a's hall zone also feeds its gate zone an empty count, so
// that the hall area (gate + hall) is known.
func feed(e *Engine, camera, zone string, from, to int, count func(sec int) float64) []step {
	var out []step
	for s := from; s < to; s++ {
		now := t0.Add(time.Duration(s) * time.Second)
		if camera == "cam-a" && zone == "hall" {
			for _, ch := range e.Observe(event.CountSample{Time: now, Camera: camera, Zone: "gate", Count: 0}) {
				out = append(out, step{s, ch})
			}
		}
		for _, ch := range e.Observe(event.CountSample{Time: now, Camera: camera, Zone: zone, Count: count(s)}) {
			out = append(out, step{s, ch})
		}
		for _, ch := range e.Tick(now) {
			out = append(out, step{s, ch})
		}
	}
	return out
}

// only keeps the changes of one rule on one target.
func only(steps []step, rule string, target event.Target) []step {
	var out []step
	for _, s := range steps {
		if s.change.Alert.Rule == rule && s.change.Alert.Target == target {
			out = append(out, s)
		}
	}
	return out
}

func describeSteps(steps []step) string {
	var b strings.Builder
	for _, s := range steps {
		fmt.Fprintf(&b, "  t=%ds %s %s level=%s\n", s.sec, s.change.Kind, s.change.Alert.Key, s.change.Alert.Level)
	}
	return b.String()
}

func constant(v float64) func(int) float64 { return func(int) float64 { return v } }

// noTrend turns the surge and forecast rules off so capacity tests see
// only capacity changes.
const noTrend = "  surge_per_minute: -1\n  forecast_horizon: -1s\n"

func TestCapacityTiers(t *testing.T) {
	hall := event.AreaTarget("hall")
	type want struct {
		sec   int
		kind  event.AlertChangeKind
		level event.Level
	}
	cases := []struct {
		name  string
		count func(int) float64 // the hall zone; gate stays at 0
		until int
		want  []want
	}{
		{name: "below yellow never raises", count: constant(79), until: 120},
		{name: "raise after the minimum duration, then hold", count: constant(85), until: 200,
			want: []want{{10, event.AlertRaised, event.LevelYellow}}},
		{name: "a spike shorter than the minimum duration is ignored", until: 120,
			count: func(s int) float64 {
				if s >= 30 && s < 38 {
					return 120
				}
				return 40
			}},
		{name: "straight to red", count: constant(130), until: 60,
			want: []want{{10, event.AlertRaised, event.LevelRed}}},
		{name: "climbs through the tiers", until: 200,
			// 80 at 50 s, 90 at 100 s, 100 at 150 s; the 1-s smoothing (the
			// median of the last two samples) reaches each a second later
			count: func(s int) float64 { return 70 + float64(s)/5 },
			want: []want{{61, event.AlertRaised, event.LevelYellow}, {111, event.AlertLevelChanged, event.LevelOrange},
				{161, event.AlertLevelChanged, event.LevelRed}}},
		{name: "clears only below the bound minus the margin, after the minimum duration", until: 200,
			count: func(s int) float64 {
				switch {
				case s < 50:
					return 85
				case s < 100:
					return 77 // under 80 but above 75: still yellow
				default:
					return 60
				}
			},
			want: []want{{10, event.AlertRaised, event.LevelYellow}, {110, event.AlertCleared, event.LevelYellow}}},
		{name: "a count hovering at the bound raises once", until: 600,
			count: func(s int) float64 {
				if s%2 == 0 {
					return 79.5
				}
				return 80.5
			},
			want: []want{}},
		{name: "flapping across the bound every 5 s raises once and holds", until: 600,
			count: func(s int) float64 {
				if (s/5)%2 == 0 {
					return 78
				}
				return 84
			},
			want: []want{}},
		{name: "cooldown holds back a second raise at the same level", until: 300,
			count: func(s int) float64 {
				switch {
				case s < 30:
					return 85
				case s < 60:
					return 50
				default:
					return 85
				}
			},
			// raised at 10, cleared at 40 (30 + 10), wanted again from 70
			// (60 + 10) but the cooldown lasts until 100
			want: []want{{10, event.AlertRaised, event.LevelYellow}, {40, event.AlertCleared, event.LevelYellow},
				{100, event.AlertRaised, event.LevelYellow}}},
		{name: "a higher level breaks through the cooldown", until: 200,
			count: func(s int) float64 {
				switch {
				case s < 30:
					return 85
				case s < 60:
					return 50
				default:
					return 120
				}
			},
			// (at 60 s the smoothed count is the mean of 50 and 120: yellow
			// for one second, so red starts holding at 61)
			want: []want{{10, event.AlertRaised, event.LevelYellow}, {40, event.AlertCleared, event.LevelYellow},
				{71, event.AlertRaised, event.LevelRed}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newTestEngine(t, noTrend+"  escalate_after: -1s\n")
			got := only(feed(e, "cam-a", "hall", 0, c.until, c.count), event.RuleCapacity, hall)
			// the hovering and flapping series are checked by count, below
			if c.want != nil && len(c.want) == 0 {
				raised := 0
				for _, s := range got {
					if s.change.Kind == event.AlertRaised {
						raised++
					}
				}
				if raised > 1 || len(got) > 2 {
					t.Fatalf("got %d raises and %d changes, want at most one raise:\n%s", raised, len(got), describeSteps(got))
				}
				return
			}
			if len(got) != len(c.want) {
				t.Fatalf("got %d changes, want %d:\n%s", len(got), len(c.want), describeSteps(got))
			}
			for i, w := range c.want {
				g := got[i]
				if g.sec != w.sec || g.change.Kind != w.kind || g.change.Alert.Level != w.level {
					t.Fatalf("change %d: got t=%ds %s %s, want t=%ds %s %s\n%s", i, g.sec, g.change.Kind,
						g.change.Alert.Level, w.sec, w.kind, w.level, describeSteps(got))
				}
			}
		})
	}
}

func TestHoveringCountRaisesAtMostOnce(t *testing.T) {
	// noisy counts around the yellow bound: median smoothing over 10 s and
	// the minimum duration keep the alert from flapping
	e := newTestEngine(t, noTrend+"  smoothing: 10s\n")
	noise := []float64{-4, 3, -1, 5, -2, 2, -5, 4, 0, -3}
	got := only(feed(e, "cam-a", "hall", 0, 900, func(s int) float64 { return 80 + noise[s%len(noise)] }),
		event.RuleCapacity, event.AreaTarget("hall"))
	if len(got) > 1 {
		t.Fatalf("%d changes over 15 minutes of noise around the bound, want at most 1:\n%s", len(got), describeSteps(got))
	}
}

func TestZoneCapacityAndPosts(t *testing.T) {
	e := newTestEngine(t, noTrend)
	got := only(feed(e, "cam-a", "gate", 0, 30, constant(48)), event.RuleCapacity, event.ZoneTarget("cam-a", "gate"))
	if len(got) != 1 || got[0].change.Alert.Level != event.LevelOrange {
		t.Fatalf("gate at 48/50 (96%%): got\n%s want one orange raise", describeSteps(got))
	}
	if p := got[0].change.Alert.Posts; len(p) != 1 || p[0] != "hall" {
		t.Fatalf("gate alert posts %v, want [hall] (the area the zone belongs to)", p)
	}
}

func TestSurge(t *testing.T) {
	e := newTestEngine(t, "  forecast_horizon: -1s\n")
	// the hall grows 30 people a minute (30% of capacity) from 10 to 40
	got := only(feed(e, "cam-a", "hall", 0, 90, func(s int) float64 { return 10 + float64(s)/2 }),
		event.RuleSurge, event.AreaTarget("hall"))
	if len(got) == 0 || got[0].change.Kind != event.AlertRaised || got[0].change.Alert.Level != event.LevelYellow {
		t.Fatalf("want a yellow surge raise, got:\n%s", describeSteps(got))
	}
	if !strings.Contains(got[0].change.Alert.MessageEN, "filling fast") {
		t.Fatalf("surge message %q", got[0].change.Alert.MessageEN)
	}
	// then it levels off: the surge clears
	e2 := newTestEngine(t, "  forecast_horizon: -1s\n")
	steps := feed(e2, "cam-a", "hall", 0, 300, func(s int) float64 {
		if s < 60 {
			return 10 + float64(s)/2
		}
		return 40
	})
	got = only(steps, event.RuleSurge, event.AreaTarget("hall"))
	if len(got) != 2 || got[1].change.Kind != event.AlertCleared {
		t.Fatalf("want raise then clear, got:\n%s", describeSteps(got))
	}
	// a steady count never surges
	e3 := newTestEngine(t, "  forecast_horizon: -1s\n")
	if got := only(feed(e3, "cam-a", "hall", 0, 300, constant(60)), event.RuleSurge, event.AreaTarget("hall")); len(got) != 0 {
		t.Fatalf("steady count raised:\n%s", describeSteps(got))
	}
}

func TestForecastRaisesBeforeTheCrossing(t *testing.T) {
	// 5 people a minute (5% of capacity: no surge) from 40: red (100) is
	// crossed at 12 minutes; a 10-minute horizon must warn well before
	e := newTestEngine(t, "  forecast_horizon: 10m\n")
	count := func(s int) float64 { return 40 + float64(s)/12 }
	steps := feed(e, "cam-a", "hall", 0, 900, count)
	fc := only(steps, event.RuleForecast, event.AreaTarget("hall"))
	if len(fc) == 0 || fc[0].change.Kind != event.AlertRaised {
		t.Fatalf("no forecast raised:\n%s", describeSteps(steps))
	}
	crossing := 720
	if fc[0].sec >= crossing-5*60 {
		t.Fatalf("forecast raised at %ds, want at least 5 minutes before the crossing at %ds", fc[0].sec, crossing)
	}
	msg := fc[0].change.Alert.MessageEN
	if !strings.Contains(msg, "reaches its capacity of 100 in about") {
		t.Fatalf("forecast message %q", msg)
	}
	// once red is reached, the forecast has come true: it clears and the
	// capacity alert carries on
	var cleared bool
	for _, s := range fc {
		if s.change.Kind == event.AlertCleared && s.sec > crossing {
			cleared = true
		}
	}
	if !cleared {
		t.Fatalf("forecast not cleared after the crossing:\n%s", describeSteps(fc))
	}
	red := false
	for _, s := range only(steps, event.RuleCapacity, event.AreaTarget("hall")) {
		if s.change.Alert.Level == event.LevelRed {
			red = true
		}
	}
	if !red {
		t.Fatal("capacity alert never reached red")
	}
	// a falling count forecasts nothing
	e2 := newTestEngine(t, "  forecast_horizon: 10m\n")
	if got := only(feed(e2, "cam-a", "hall", 0, 600, func(s int) float64 { return 70 - float64(s)/12 }),
		event.RuleForecast, event.AreaTarget("hall")); len(got) != 0 {
		t.Fatalf("falling count forecast:\n%s", describeSteps(got))
	}
}

func TestCameraOfflineRaisesAndZonesReadUnknown(t *testing.T) {
	e := newTestEngine(t, noTrend)
	feed(e, "cam-a", "gate", 0, 20, constant(10))
	feed(e, "cam-a", "hall", 0, 20, constant(85)) // hall area at 95%: orange
	down := t0.Add(20 * time.Second)
	if got := e.CameraState(event.CameraState{Camera: "cam-a", Stream: "main", Status: event.CameraRetrying, Since: down}); len(got) != 0 {
		t.Fatalf("camera alert raised at once: %+v", got)
	}
	for _, st := range e.Status(down) {
		if st.Target == event.AreaTarget("hall") && (st.Known || st.Ratio != -1 || st.Comfort.Grade != 0) {
			t.Fatalf("hall with its camera down: %+v, want unknown", st)
		}
	}
	var raised []event.AlertChange
	for s := 21; s <= 60; s++ {
		for _, ch := range e.Tick(t0.Add(time.Duration(s) * time.Second)) {
			raised = append(raised, ch)
			if s != 50 {
				t.Fatalf("change at %ds: %s %s, want the camera alert at 50s (30s after it went down)", s, ch.Kind, ch.Alert.Key)
			}
		}
	}
	if len(raised) != 1 || raised[0].Alert.Rule != event.RuleCamera || raised[0].Kind != event.AlertRaised {
		t.Fatalf("got %+v, want one camera alert", raised)
	}
	if !strings.Contains(raised[0].Alert.MessageEN, "unknown") || raised[0].Alert.Posts[0] != "hall" {
		t.Fatalf("camera alert %+v", raised[0].Alert)
	}
	// the capacity alert on the hall holds while the count is unknown: no
	// "resolved" because nobody is counted
	for _, a := range e.OpenAlerts() {
		if a.Rule == event.RuleCapacity && a.Target == event.AreaTarget("hall") && a.Level != event.LevelOrange {
			t.Fatalf("hall capacity alert changed while unknown: %+v", a)
		}
	}
	// back live: the camera alert clears
	back := t0.Add(70 * time.Second)
	got := e.CameraState(event.CameraState{Camera: "cam-a", Stream: "main", Status: event.CameraLive, Since: back})
	if len(got) != 1 || got[0].Kind != event.AlertCleared || got[0].Alert.Rule != event.RuleCamera {
		t.Fatalf("back live: %+v, want the camera alert resolved", got)
	}
	// a zone that just stops reporting (no state change) also reads unknown
	e2 := newTestEngine(t, noTrend)
	feed(e2, "cam-b", "yard", 0, 5, constant(10))
	for _, st := range e2.Status(t0.Add(40 * time.Second)) {
		if st.Target == event.AreaTarget("yard") && st.Known {
			t.Fatalf("yard silent for 35s still known: %+v", st)
		}
	}
}

func TestEscalationAfterNoAcknowledgement(t *testing.T) {
	e := newTestEngine(t, noTrend)
	steps := feed(e, "cam-a", "hall", 0, 200, constant(95))
	var raisedAt, escalatedAt = -1, -1
	for _, s := range steps {
		switch s.change.Kind {
		case event.AlertRaised:
			raisedAt = s.sec
			e.SetAlertID(s.change.Alert.Key, 1)
		case event.AlertEscalated:
			escalatedAt = s.sec
			if s.change.Alert.EscalatedTo != "admin" {
				t.Fatalf("escalated to %q, want admin", s.change.Alert.EscalatedTo)
			}
		}
	}
	if raisedAt != 10 || escalatedAt != 130 {
		t.Fatalf("raised at %d, escalated at %d; want 10 and 130 (120 s without acknowledgement)\n%s", raisedAt, escalatedAt, describeSteps(steps))
	}
	// acknowledged in time: no escalation
	e2 := newTestEngine(t, noTrend)
	steps = feed(e2, "cam-a", "hall", 0, 20, constant(95))
	e2.SetAlertID(steps[0].change.Alert.Key, 7)
	ch, err := e2.Acknowledge(7, "guard1", "on my way", t0.Add(30*time.Second))
	if err != nil || ch.Kind != event.AlertAcked || ch.Alert.AckedBy != "guard1" || ch.Note != "on my way" {
		t.Fatalf("acknowledge: %+v, %v", ch, err)
	}
	if _, err := e2.Acknowledge(7, "guard2", "", t0.Add(31*time.Second)); err == nil {
		t.Fatal("second acknowledgement accepted")
	}
	for _, s := range feed(e2, "cam-a", "hall", 20, 400, constant(95)) {
		if s.change.Kind == event.AlertEscalated {
			t.Fatalf("acknowledged alert escalated at %ds", s.sec)
		}
	}
	// a worse level re-opens it for acknowledgement
	steps = feed(e2, "cam-a", "hall", 400, 430, constant(120))
	if len(steps) != 1 || steps[0].change.Kind != event.AlertLevelChanged || steps[0].change.Alert.State != event.AlertOpen {
		t.Fatalf("red after an acknowledged orange: %s", describeSteps(steps))
	}
	if _, err := e2.Acknowledge(99, "x", "", t0); !errors.Is(err, ErrNoAlert) {
		t.Fatalf("acknowledging an unknown alert: %v", err)
	}
}

func TestLifecycleResolveHandOverAndRestore(t *testing.T) {
	e := newTestEngine(t, noTrend)
	steps := feed(e, "cam-a", "hall", 0, 20, constant(95))
	key := steps[0].change.Alert.Key
	e.SetAlertID(key, 3)
	ho, err := e.HandOver(3, "op1", "op2", "shift change", t0.Add(25*time.Second))
	if err != nil || ho.Alert.Owner != "op2" || ho.Kind != event.AlertHandedOver {
		t.Fatalf("handover: %+v %v", ho, err)
	}
	if _, err := e.HandOver(3, "op1", "", "", t0); err == nil {
		t.Fatal("handover to nobody accepted")
	}
	res, err := e.Resolve(3, "op2", "crowd cleared by hand", t0.Add(30*time.Second))
	if err != nil || res.Alert.State != event.AlertResolved || res.Alert.ResolvedBy != "op2" {
		t.Fatalf("resolve: %+v %v", res, err)
	}
	if len(e.OpenAlerts()) != 0 {
		t.Fatal("resolved alert still open")
	}
	// restored alerts are not raised a second time
	e2 := newTestEngine(t, noTrend)
	e2.Restore([]event.Alert{steps[0].change.Alert})
	for _, s := range feed(e2, "cam-a", "hall", 0, 60, constant(95)) {
		if s.change.Kind == event.AlertRaised {
			t.Fatalf("restored alert raised again at %ds", s.sec)
		}
	}
}

func TestDiversionAdvice(t *testing.T) {
	e := newTestEngine(t, noTrend)
	feed(e, "cam-b", "yard", 0, 15, constant(100)) // yard 50%: room 60 before yellow (160)
	feed(e, "cam-b", "lawn", 0, 15, constant(20))  // lawn 20%: room 60
	steps := only(feed(e, "cam-a", "hall", 0, 15, constant(95)), event.RuleCapacity, event.AreaTarget("hall"))
	if len(steps) != 1 {
		t.Fatalf("want one hall alert, got\n%s", describeSteps(steps))
	}
	a := steps[0].change.Alert
	if len(a.Advice) != 2 || a.Advice[0].Area != "lawn" || a.Advice[1].Area != "yard" {
		t.Fatalf("advice %+v, want lawn (20%%) before yard (50%%)", a.Advice)
	}
	if a.Advice[0].Room != 60 || a.Advice[0].Route != "东廊 east walk" || a.Advice[0].WalkMinutes != 5 {
		t.Fatalf("lawn advice %+v", a.Advice[0])
	}
	for _, s := range []string{"东廊", "草坪", "庭院", "橙色预警"} {
		if !strings.Contains(a.Message, s) {
			t.Fatalf("message %q lacks %q", a.Message, s)
		}
	}
	if !strings.Contains(a.MessageEN, "via 东廊 east walk to 草坪 Lawn (20% full, room for about 60, 5 min walk)") {
		t.Fatalf("English message %q", a.MessageEN)
	}
	// a full neighbour and an unknown one are never suggested
	e2 := newTestEngine(t, noTrend)
	feed(e2, "cam-b", "yard", 0, 15, constant(190)) // 95%: full
	steps = only(feed(e2, "cam-a", "hall", 0, 15, constant(95)), event.RuleCapacity, event.AreaTarget("hall"))
	if adv := steps[0].change.Alert.Advice; len(adv) != 0 {
		t.Fatalf("advice %+v, want none (yard full, lawn unknown)", adv)
	}
	if !strings.Contains(steps[0].change.Alert.MessageEN, "No neighbouring area has room") {
		t.Fatalf("message %q", steps[0].change.Alert.MessageEN)
	}
}

func TestComfortGrades(t *testing.T) {
	bounds := config.DefaultComfortBounds()
	for _, c := range []struct {
		ratio float64
		grade int
		name  string
	}{{-1, 0, "未知"}, {0, 1, "舒适"}, {0.29, 1, "舒适"}, {0.3, 2, "较舒适"}, {0.5, 3, "一般"}, {0.7, 4, "较拥挤"}, {0.9, 5, "拥挤"}, {1.5, 5, "拥挤"}} {
		if got := ComfortOf(c.ratio, bounds); got.Grade != c.grade || got.Name != c.name {
			t.Errorf("ComfortOf(%g) = %+v, want grade %d %s", c.ratio, got, c.grade, c.name)
		}
	}
	e := newTestEngine(t, noTrend)
	feed(e, "cam-a", "hall", 0, 5, constant(40))
	feed(e, "cam-a", "gate", 5, 8, constant(15))
	for _, st := range e.Status(t0.Add(8 * time.Second)) {
		if st.Target == event.AreaTarget("hall") {
			if !st.Known || st.Count != 55 || st.Comfort.Grade != 3 || st.DailyCapacity != 400 {
				t.Fatalf("hall status %+v, want 55 people, grade 3 (一般), daily capacity 400", st)
			}
		}
	}
}

func TestNoisyFlatCountsNeverTrend(t *testing.T) {
	// a count that wobbles by up to ±30 around 40 of 100 places (dense
	// crowds count that roughly): no surge, no forecast, over an hour,
	// with the default smoothing
	e := newTestEngine(t, "  smoothing: 10s\n")
	rng := rand.New(rand.NewPCG(1, 2))
	steps := feed(e, "cam-b", "lawn", 0, 3600, func(int) float64 { return 40 + 30*(rng.Float64()-0.5) })
	for _, st := range steps {
		if st.change.Alert.Rule == event.RuleSurge || st.change.Alert.Rule == event.RuleForecast {
			t.Fatalf("noise read as a trend:\n%s", describeSteps(steps))
		}
	}
}

// Zones without a capacity of their own still report their counts, after
// the watched targets, so that the wall can show every zone.
func TestStatusReportsEveryZone(t *testing.T) {
	e := newTestEngine(t, "")
	feed(e, "cam-a", "hall", 0, 5, func(int) float64 { return 7 })
	got := map[event.Target]TargetStatus{}
	var order []event.Target
	for _, st := range e.Status(t0.Add(5 * time.Second)) {
		got[st.Target] = st
		order = append(order, st.Target)
	}
	hall := got[event.ZoneTarget("cam-a", "hall")]
	if !hall.Known || hall.Count != 7 || hall.Capacity != 0 || hall.Ratio != -1 || hall.Comfort.Grade != 0 {
		t.Fatalf("cam-a/hall status %+v, want known, 7 people, no capacity, ratio -1, comfort unknown", hall)
	}
	if hall.Title != "Hall camera / hall" {
		t.Fatalf("cam-a/hall title %q", hall.Title)
	}
	if yard := got[event.ZoneTarget("cam-b", "yard")]; yard.Known || yard.Target == "" {
		t.Fatalf("cam-b/yard status %+v, want listed and unknown (no counts yet)", yard)
	}
	want := []event.Target{"zone:cam-a/gate", "area:hall", "area:yard", "area:lawn", "zone:cam-a/hall", "zone:cam-b/yard", "zone:cam-b/lawn"}
	if fmt.Sprint(order) != fmt.Sprint(want) {
		t.Fatalf("status order %v, want %v", order, want)
	}
}
