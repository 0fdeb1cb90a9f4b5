package alerting

import (
	"fmt"
	"strings"
	"time"

	"flowwatch/internal/config"
	"flowwatch/internal/event"
)

// BacktestResult is what a candidate rule set would have done over a
// stretch of stored history.
type BacktestResult struct {
	// From and To are the first and last sample replayed.
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// Samples is how many zone counts were replayed.
	Samples int `json:"samples"`
	// Alerts are the alerts that would have been raised, each as it
	// stood at the end (resolved or still open), numbered from 1 in the
	// order they were raised.
	Alerts []event.Alert `json:"alerts"`
	// Changes are every step of those alerts, in order.
	Changes []event.AlertChange `json:"changes"`
}

// Backtest replays stored zone counts (one-second points of zone targets,
// oldest first, as the store streams them) through the rules of cfg and
// returns the alerts they would have raised. Area counts are derived from
// the zones, as live. Camera states are not in the history, so camera
// alerts are not replayed; a zone without counts for longer than
// rules.camera_offline reads unknown, as live.
func Backtest(cfg *config.Config, replay func(fn func(event.CountPoint) error) error) (BacktestResult, error) {
	e, err := NewEngine(cfg)
	if err != nil {
		return BacktestResult{}, err
	}
	var res BacktestResult
	byKey := map[string]int{} // open alert key → index in res.Alerts
	record := func(chs []event.AlertChange) {
		for _, ch := range chs {
			if ch.Alert.Rule == event.RuleCamera {
				continue
			}
			if ch.Kind == event.AlertRaised {
				id := int64(len(res.Alerts) + 1)
				e.SetAlertID(ch.Alert.Key, id)
				ch.Alert.ID = id
				byKey[ch.Alert.Key] = len(res.Alerts)
				res.Alerts = append(res.Alerts, ch.Alert)
			} else if i, ok := byKey[ch.Alert.Key]; ok {
				ch.Alert.ID = res.Alerts[i].ID
				res.Alerts[i] = ch.Alert
				if ch.Kind == event.AlertCleared {
					delete(byKey, ch.Alert.Key)
				}
			}
			res.Changes = append(res.Changes, ch)
		}
	}
	var lastTick time.Time
	err = replay(func(p event.CountPoint) error {
		kind, rest, _ := strings.Cut(string(p.Target), ":")
		if kind != "zone" {
			return nil // areas are derived from their zones
		}
		cam, zone, ok := cutZone(rest)
		if !ok {
			return fmt.Errorf("backtest: malformed zone target %q", p.Target)
		}
		if res.Samples == 0 {
			res.From = p.Time
		}
		res.Samples++
		res.To = p.Time
		if p.Time.After(lastTick) {
			record(e.Tick(p.Time))
			lastTick = p.Time
		}
		record(e.Observe(event.CountSample{Time: p.Time, Camera: cam, Zone: zone, Count: p.Count}))
		return nil
	})
	if err != nil {
		return res, err
	}
	return res, nil
}
