package alerting

import (
	"errors"
	"testing"
	"time"

	"flowwatch/internal/event"
)

// dayOfCounts is a stored history of the hall: a morning rise to 95 people,
// a dip, a second peak at 70, one point a second.
func dayOfCounts(fn func(event.CountPoint) error) error {
	for s := 0; s < 3600; s++ {
		tm := t0.Add(time.Duration(s) * time.Second)
		var v float64
		switch {
		case s < 1200:
			v = 20 + 75*float64(s)/1200 // up to 95
		case s < 2000:
			v = 40
		case s < 2600:
			v = 70
		default:
			v = 30
		}
		for _, p := range []event.CountPoint{
			{Target: event.ZoneTarget("cam-a", "gate"), Time: tm, Count: 0},
			{Target: event.ZoneTarget("cam-a", "hall"), Time: tm, Count: v},
			{Target: event.AreaTarget("hall"), Time: tm, Count: v}, // stored area points are skipped
		} {
			if err := fn(p); err != nil {
				return err
			}
		}
	}
	return nil
}

func TestBacktestComparesRuleSets(t *testing.T) {
	capacityAlerts := func(rules string) (BacktestResult, []event.Alert) {
		res, err := Backtest(testConfig(t, noTrend+rules), dayOfCounts)
		if err != nil {
			t.Fatal(err)
		}
		var out []event.Alert
		for _, a := range res.Alerts {
			if a.Rule == event.RuleCapacity && a.Target == event.AreaTarget("hall") {
				out = append(out, a)
			}
		}
		return res, out
	}
	res, def := capacityAlerts("")
	if res.Samples != 7200 || !res.From.Equal(t0) || !res.To.Equal(t0.Add(3599*time.Second)) {
		t.Fatalf("replayed %d samples from %s to %s, want 7200 zone samples over the hour", res.Samples, res.From, res.To)
	}
	// default tiers (yellow 80%): only the morning peak
	if len(def) != 1 || def[0].Level != event.LevelOrange || def[0].State != event.AlertResolved || def[0].ID != 1 {
		t.Fatalf("default rules: %+v, want one alert that reached orange and resolved", def)
	}
	// a planner's stricter candidate (yellow at 60%) would also have caught
	// the second peak
	_, strict := capacityAlerts("  yellow: 0.6\n")
	if len(strict) != 2 {
		t.Fatalf("yellow at 60%%: %d alerts, want 2 (both peaks)", len(strict))
	}
	if strict[0].OpenedAt.After(def[0].OpenedAt) {
		t.Fatalf("the stricter rule raised later (%s) than the default (%s)", strict[0].OpenedAt, def[0].OpenedAt)
	}
}

func TestBacktestReportsReplayErrors(t *testing.T) {
	boom := errors.New("disk gone")
	_, err := Backtest(testConfig(t, ""), func(fn func(event.CountPoint) error) error { return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("got %v, want the replay's error", err)
	}
	_, err = Backtest(testConfig(t, ""), func(fn func(event.CountPoint) error) error {
		return fn(event.CountPoint{Target: "zone:nozone", Time: t0, Count: 1})
	})
	if err == nil {
		t.Fatal("malformed target accepted")
	}
}
