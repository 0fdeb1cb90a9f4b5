package alerting

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"sync"
	"time"

	"flowwatch/internal/config"
	"flowwatch/internal/event"
)

// trendStep is the least time between two points of a target's trend.
const trendStep = time.Second

// System is the name changes made by the engine itself carry in By.
const System = "system"

// ErrNoAlert is returned when an alert asked for is not open.
var ErrNoAlert = errors.New("no such open alert")

// Engine evaluates the rules over count samples and camera states and
// keeps the open alerts. It is safe for concurrent use; every method that
// can change an alert returns the changes, in order, for the caller to
// store and deliver.
type Engine struct {
	mu      sync.Mutex
	rules   config.Rules
	tiers   tiers
	zones   map[event.Target]*zoneState
	cameras map[string]*cameraState
	// camOrder names the cameras in config order
	camOrder []string
	areas    map[string]*areaState
	// targets holds every count target a rule watches, zones with a
	// capacity and every area, in config order.
	targets []*target
	byName  map[event.Target]*target
	alerts  map[string]*event.Alert // open (unresolved) alerts by key
	cleared map[string]clearRecord
	pending map[string]*pendingLevel
}

// zoneState is one camera zone's recent counts.
type zoneState struct {
	camera   string
	name     event.Target // zone:<camera>/<zone>
	title    string       // "<camera title> / <zone>"
	window   []timedValue // raw counts within the smoothing window
	smoothed float64
	last     time.Time // time of the newest sample; zero before one
	watched  *target   // the zone's own target when it has a capacity
	areas    []*areaState
}

// areaState is one area and the zones it sums.
type areaState struct {
	cfg    config.Area
	zones  []*zoneState
	target *target
	links  []config.Link
}

// cameraState is the health of one camera's analysed stream.
type cameraState struct {
	name, title string
	status      event.CameraStatus
	since       time.Time
	reported    bool
	zones       []*zoneState
}

// target is one zone or area that rules watch.
type target struct {
	name     event.Target
	title    string
	capacity int
	daily    int
	posts    []string
	area     *areaState // nil for a zone
	zone     *zoneState // nil for an area
	trend    []timedValue
	value    float64
	known    bool
}

type timedValue struct {
	t time.Time
	v float64
}

// clearRecord remembers when an alert last cleared, for the cooldown.
type clearRecord struct {
	at    time.Time
	level event.Level
}

// pendingLevel is a level a rule wants but has not held for MinDuration.
type pendingLevel struct {
	level event.Level
	since time.Time
}

// NewEngine builds an engine for the cameras, zones, areas and rules of a
// validated config (defaults applied).
func NewEngine(cfg *config.Config) (*Engine, error) {
	r := cfg.Rules
	if len(r.ComfortBounds) != 4 || !(r.Yellow > 0 && r.Yellow < r.Orange && r.Orange < r.Red) {
		return nil, fmt.Errorf("alerting: rules need four comfort bounds and 0 < yellow < orange < red (apply config defaults first)")
	}
	e := &Engine{
		rules:   r,
		tiers:   tiers{bounds: [3]float64{r.Yellow, r.Orange, r.Red}, margin: r.ClearMargin},
		zones:   map[event.Target]*zoneState{},
		cameras: map[string]*cameraState{},
		areas:   map[string]*areaState{},
		byName:  map[event.Target]*target{},
		alerts:  map[string]*event.Alert{},
		cleared: map[string]clearRecord{},
		pending: map[string]*pendingLevel{},
	}
	for _, cam := range cfg.Cameras {
		title := cam.Title
		if title == "" {
			title = cam.Name
		}
		cs := &cameraState{name: cam.Name, title: title}
		e.cameras[cam.Name] = cs
		e.camOrder = append(e.camOrder, cam.Name)
		for _, z := range cam.Zones {
			name := event.ZoneTarget(cam.Name, z.Name)
			zs := &zoneState{camera: cam.Name, name: name, title: title + " / " + z.Name}
			e.zones[name] = zs
			cs.zones = append(cs.zones, zs)
			if z.Capacity > 0 {
				t := &target{name: name, title: zs.title, capacity: z.Capacity, zone: zs}
				zs.watched = t
				e.addTarget(t)
			}
		}
	}
	for _, a := range cfg.Areas {
		as := &areaState{cfg: a, links: a.Links}
		for _, zn := range a.Zones {
			cam, zone, _ := cutZone(zn)
			zs := e.zones[event.ZoneTarget(cam, zone)]
			if zs == nil {
				return nil, fmt.Errorf("alerting: area %q: no zone %q", a.Name, zn)
			}
			as.zones = append(as.zones, zs)
			zs.areas = append(zs.areas, as)
		}
		title := a.Title
		if title == "" {
			title = a.Name
		}
		capacity := a.EffectiveCapacity()
		t := &target{name: event.AreaTarget(a.Name), title: title, capacity: capacity,
			daily: int(float64(capacity) * a.Turnover), posts: []string{a.Name}, area: as}
		as.target = t
		e.areas[a.Name] = as
		e.addTarget(t)
	}
	for _, a := range e.areas {
		for _, l := range a.links {
			if e.areas[l.To] == nil {
				return nil, fmt.Errorf("alerting: area %q links to unknown area %q", a.cfg.Name, l.To)
			}
		}
	}
	// a zone's alerts go to the guards of the areas it belongs to
	for _, zs := range e.zones {
		if zs.watched != nil {
			for _, a := range zs.areas {
				zs.watched.posts = append(zs.watched.posts, a.cfg.Name)
			}
		}
	}
	return e, nil
}

func (e *Engine) addTarget(t *target) {
	e.targets = append(e.targets, t)
	e.byName[t.name] = t
}

func cutZone(s string) (camera, zone string, ok bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == '/' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// Restore loads the alerts that were open when flowwatch stopped, so that
// they are neither raised twice nor forgotten.
func (e *Engine) Restore(open []event.Alert) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, a := range open {
		if a.State == event.AlertResolved {
			continue
		}
		a := a
		e.alerts[a.Key] = &a
	}
}

// SetAlertID records the store's ID of a newly raised alert.
func (e *Engine) SetAlertID(key string, id int64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if a := e.alerts[key]; a != nil {
		a.ID = id
	}
}

// Observe takes one zone's count and returns the alert changes it causes.
// Samples of unknown zones are ignored; a sample older than the zone's
// newest is ignored too.
func (e *Engine) Observe(s event.CountSample) []event.AlertChange {
	e.mu.Lock()
	defer e.mu.Unlock()
	zs := e.zones[event.ZoneTarget(s.Camera, s.Zone)]
	if zs == nil || math.IsNaN(s.Count) || s.Count < 0 || s.Time.Before(zs.last) {
		return nil
	}
	zs.last = s.Time
	zs.window = append(zs.window, timedValue{s.Time, s.Count})
	zs.window = dropBefore(zs.window, s.Time.Add(-e.rules.Smoothing))
	zs.smoothed = median(zs.window)
	var out []event.AlertChange
	if zs.watched != nil {
		out = e.evaluate(zs.watched, s.Time, out)
	}
	for _, a := range zs.areas {
		out = e.evaluate(a.target, s.Time, out)
	}
	return out
}

// CameraState takes a camera's new connection state and returns the
// changes it causes. Only the analysed ("main") stream counts.
func (e *Engine) CameraState(st event.CameraState) []event.AlertChange {
	if st.Stream != "" && st.Stream != "main" {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	cs := e.cameras[st.Camera]
	if cs == nil {
		return nil
	}
	cs.status, cs.since, cs.reported = st.Status, st.Since, true
	return e.tick(st.Since, nil)
}

// Tick evaluates what depends on the passing of time alone (cameras down
// for too long, stale zones, conditions that have now held long enough,
// escalations) and returns the changes.
func (e *Engine) Tick(now time.Time) []event.AlertChange {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.tick(now, nil)
}

func (e *Engine) tick(now time.Time, out []event.AlertChange) []event.AlertChange {
	for _, name := range sortedCameraNames(e.cameras) {
		out = e.evaluateCamera(e.cameras[name], now, out)
	}
	// Count rules move only on counts, so every count alert's time is the
	// arrival of the picture that decided it; here a target whose cameras
	// went silent only forgets what was pending.
	for _, t := range e.targets {
		if !e.targetKnown(t, now) {
			e.forget(t)
		}
	}
	if e.rules.EscalateAfter > 0 {
		for _, key := range sortedKeys(e.alerts) {
			a := e.alerts[key]
			if a.State == event.AlertOpen && a.EscalatedAt.IsZero() && now.Sub(a.UpdatedAt) >= e.rules.EscalateAfter {
				a.EscalatedAt, a.EscalatedTo = now, e.rules.EscalateTo
				a.UpdatedAt = now
				out = append(out, event.AlertChange{Kind: event.AlertEscalated, At: now, By: System, Alert: *a})
			}
		}
	}
	return out
}

// cameraDown reports whether the camera has been reported not live.
func (cs *cameraState) down() bool {
	return cs.reported && cs.status != event.CameraLive
}

// zoneKnown reports whether a zone's count stands for the present: its
// camera is not down and a sample came within the offline limit.
func (e *Engine) zoneKnown(zs *zoneState, now time.Time) bool {
	if zs.last.IsZero() || e.cameras[zs.camera].down() {
		return false
	}
	return now.Sub(zs.last) <= e.rules.CameraOffline
}

// targetKnown reports whether every zone a target counts is known.
func (e *Engine) targetKnown(t *target, now time.Time) bool {
	if t.zone != nil {
		return e.zoneKnown(t.zone, now)
	}
	for _, zs := range t.area.zones {
		if !e.zoneKnown(zs, now) {
			return false
		}
	}
	return true
}

// forget drops a target's pending conditions: an unknown count changes
// nothing (open alerts hold), and conditions start again once the count is
// back.
func (e *Engine) forget(t *target) {
	for _, rule := range []string{event.RuleCapacity, event.RuleSurge, event.RuleForecast} {
		delete(e.pending, alertKey(rule, t.name))
	}
}

// refresh recomputes a target's current value and whether it is known,
// and keeps its trend.
func (e *Engine) refresh(t *target, now time.Time) {
	if t.zone != nil {
		t.known = e.zoneKnown(t.zone, now)
		t.value = t.zone.smoothed
	} else {
		t.known, t.value = true, 0
		for _, zs := range t.area.zones {
			if !e.zoneKnown(zs, now) {
				t.known = false
			}
			t.value += zs.smoothed
		}
	}
	if !t.known {
		t.trend = t.trend[:0]
		return
	}
	// one trend point a second at most: an area whose zones report
	// twenty times a second still fits a line through a few hundred
	// points, not thousands
	switch n := len(t.trend); {
	case n == 0 || now.Sub(t.trend[n-1].t) >= trendStep:
		t.trend = append(t.trend, timedValue{now, t.value})
	case n > 1 && now.After(t.trend[n-1].t) && now.Sub(t.trend[n-2].t) < 2*trendStep:
		t.trend[n-1] = timedValue{now, t.value}
	}
	t.trend = dropBefore(t.trend, now.Add(-e.forecastWindow()))
}

// evaluate runs the count rules of one target at time now.
func (e *Engine) evaluate(t *target, now time.Time, out []event.AlertChange) []event.AlertChange {
	e.refresh(t, now)
	if !t.known || t.capacity <= 0 {
		e.forget(t)
		return out
	}
	ratio := t.value / float64(t.capacity)

	capKey := alertKey(event.RuleCapacity, t.name)
	held := e.levelOf(capKey)
	out = e.settle(capKey, event.RuleCapacity, t, e.tiers.levelFor(ratio, held), now, out)

	slope, ok := e.surgeSlope(t)
	if e.rules.SurgePerMinute > 0 {
		want := event.Level("")
		if ok {
			rate := slope / float64(t.capacity) // fraction of capacity per minute
			key := alertKey(event.RuleSurge, t.name)
			bound := e.rules.SurgePerMinute
			if e.levelOf(key) != "" {
				bound *= 0.5 // hysteresis: a surge ends when growth halves
			}
			if rate >= 2*e.rules.SurgePerMinute {
				want = event.LevelOrange
			} else if rate >= bound {
				want = event.LevelYellow
			}
		}
		out = e.settle(alertKey(event.RuleSurge, t.name), event.RuleSurge, t, want, now, out)
	}
	if e.rules.ForecastHorizon > 0 {
		slope, ok := e.forecastSlope(t)
		want := event.Level("")
		redAt := e.tiers.bounds[2] * float64(t.capacity)
		if ok && slope > 0 && t.value < redAt {
			eta := (redAt - t.value) / slope // minutes
			horizon := e.rules.ForecastHorizon.Minutes()
			if e.levelOf(alertKey(event.RuleForecast, t.name)) != "" {
				horizon *= 1.5
			}
			if eta <= horizon {
				want = event.LevelYellow
			}
		}
		out = e.settle(alertKey(event.RuleForecast, t.name), event.RuleForecast, t, want, now, out)
	}
	return out
}

// evaluateCamera raises or clears a camera's health alert.
func (e *Engine) evaluateCamera(cs *cameraState, now time.Time, out []event.AlertChange) []event.AlertChange {
	key := alertKey(event.RuleCamera, event.CameraTarget(cs.name))
	want := event.Level("")
	if cs.down() && now.Sub(cs.since) >= e.rules.CameraOffline {
		want = event.LevelOrange
	}
	held := e.levelOf(key)
	if want == held {
		return out
	}
	if want == "" {
		return e.resolve(key, now, System, out)
	}
	a := &event.Alert{Key: key, Rule: event.RuleCamera, Target: event.CameraTarget(cs.name), Title: cs.title,
		Level: want, State: event.AlertOpen, OpenedAt: now, UpdatedAt: now}
	for _, zs := range cs.zones {
		for _, ar := range zs.areas {
			if !slices.Contains(a.Posts, ar.cfg.Name) {
				a.Posts = append(a.Posts, ar.cfg.Name)
			}
		}
	}
	down := now.Sub(cs.since).Round(time.Second)
	a.Message = fmt.Sprintf("摄像机「%s」已%s %s，其区域人数未知，请派人现场查看。", cs.title, statusZH(cs.status), durationZH(down))
	a.MessageEN = fmt.Sprintf("Camera %q has been %s for %s; its zones read unknown. Send someone to look.", cs.title, cs.status, down)
	e.alerts[key] = a
	return append(out, event.AlertChange{Kind: event.AlertRaised, At: now, By: System, Alert: *a})
}

// settle moves one rule's alert on one target toward the level the rule
// wants now, once the want has held for MinDuration, and within the
// cooldown only upward.
func (e *Engine) settle(key, rule string, t *target, want event.Level, now time.Time, out []event.AlertChange) []event.AlertChange {
	held := e.levelOf(key)
	if want == held {
		delete(e.pending, key)
		if a := e.alerts[key]; a != nil {
			// keep the figures current; the words change with the level
			a.Count = math.Round(t.value*10) / 10
			if t.capacity > 0 {
				a.Ratio = math.Round(t.value/float64(t.capacity)*1000) / 1000
			}
		}
		return out
	}
	p := e.pending[key]
	if p == nil || p.level != want {
		p = &pendingLevel{level: want, since: now}
		e.pending[key] = p
	}
	if now.Sub(p.since) < e.rules.MinDuration {
		return out
	}
	if want == "" {
		delete(e.pending, key)
		return e.resolve(key, now, System, out)
	}
	a := e.alerts[key]
	if a == nil {
		if c, ok := e.cleared[key]; ok && now.Sub(c.at) < e.rules.Cooldown && want.Rank() <= c.level.Rank() {
			return out // cooling down; raises once the cooldown ends if still wanted
		}
		delete(e.pending, key)
		a = &event.Alert{Key: key, Rule: rule, Target: t.name, Title: t.title, Level: want,
			State: event.AlertOpen, OpenedAt: now, UpdatedAt: now, Posts: slices.Clone(t.posts)}
		e.alerts[key] = a
		e.describe(a, t)
		return append(out, event.AlertChange{Kind: event.AlertRaised, At: now, By: System, Alert: *a})
	}
	delete(e.pending, key)
	up := want.Rank() > a.Level.Rank()
	a.Level, a.UpdatedAt = want, now
	if up {
		// a worse level needs a fresh acknowledgement and may escalate again
		a.State, a.EscalatedAt, a.EscalatedTo = event.AlertOpen, time.Time{}, ""
	}
	e.describe(a, t)
	return append(out, event.AlertChange{Kind: event.AlertLevelChanged, At: now, By: System, Alert: *a})
}

// resolve closes an open alert.
func (e *Engine) resolve(key string, now time.Time, by string, out []event.AlertChange) []event.AlertChange {
	a := e.alerts[key]
	if a == nil {
		return out
	}
	delete(e.alerts, key)
	e.cleared[key] = clearRecord{at: now, level: a.Level}
	a.State, a.ResolvedAt, a.ResolvedBy, a.UpdatedAt = event.AlertResolved, now, by, now
	return append(out, event.AlertChange{Kind: event.AlertCleared, At: now, By: by, Alert: *a})
}

func (e *Engine) levelOf(key string) event.Level {
	if a := e.alerts[key]; a != nil {
		return a.Level
	}
	return ""
}

// Acknowledge records that someone has the alert in hand.
func (e *Engine) Acknowledge(id int64, by, note string, now time.Time) (event.AlertChange, error) {
	return e.change(id, func(a *event.Alert) (event.AlertChange, error) {
		if a.State == event.AlertAcknowledged {
			return event.AlertChange{}, fmt.Errorf("alert %d was already acknowledged by %s", id, a.AckedBy)
		}
		a.State, a.AckedAt, a.AckedBy, a.AckNote, a.UpdatedAt = event.AlertAcknowledged, now, by, note, now
		return event.AlertChange{Kind: event.AlertAcked, At: now, By: by, Note: note, Alert: *a}, nil
	})
}

// AddNote attaches a note to an open alert.
func (e *Engine) AddNote(id int64, by, note string, now time.Time) (event.AlertChange, error) {
	return e.change(id, func(a *event.Alert) (event.AlertChange, error) {
		a.UpdatedAt = now
		return event.AlertChange{Kind: event.AlertNoted, At: now, By: by, Note: note, Alert: *a}, nil
	})
}

// HandOver passes an open alert to another person (a shift change).
func (e *Engine) HandOver(id int64, by, to, note string, now time.Time) (event.AlertChange, error) {
	if to == "" {
		return event.AlertChange{}, errors.New("a handover needs the person it goes to")
	}
	return e.change(id, func(a *event.Alert) (event.AlertChange, error) {
		a.Owner, a.UpdatedAt = to, now
		return event.AlertChange{Kind: event.AlertHandedOver, At: now, By: by, Note: note, Alert: *a}, nil
	})
}

// Resolve closes an open alert by hand. If its condition still holds, the
// rule raises it again after the cooldown.
func (e *Engine) Resolve(id int64, by, note string, now time.Time) (event.AlertChange, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for key, a := range e.alerts {
		if a.ID == id && id != 0 {
			ch := e.resolve(key, now, by, nil)[0]
			ch.Note = note
			return ch, nil
		}
	}
	return event.AlertChange{}, fmt.Errorf("alert %d: %w", id, ErrNoAlert)
}

func (e *Engine) change(id int64, fn func(*event.Alert) (event.AlertChange, error)) (event.AlertChange, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, a := range e.alerts {
		if a.ID == id && id != 0 {
			return fn(a)
		}
	}
	return event.AlertChange{}, fmt.Errorf("alert %d: %w", id, ErrNoAlert)
}

// OpenAlerts returns the alerts not yet resolved, oldest first.
func (e *Engine) OpenAlerts() []event.Alert {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]event.Alert, 0, len(e.alerts))
	for _, a := range e.alerts {
		out = append(out, *a)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].OpenedAt.Equal(out[j].OpenedAt) {
			return out[i].OpenedAt.Before(out[j].OpenedAt)
		}
		return out[i].Key < out[j].Key
	})
	return out
}

// TargetStatus is where one zone or area stands now.
type TargetStatus struct {
	// Target and Title name it.
	Target event.Target `json:"target"`
	Title  string       `json:"title"`
	// Known is false when a camera it depends on is down or silent: the
	// count is then unknown, never zero.
	Known bool `json:"known"`
	// Count is the smoothed count; meaningful only when Known.
	Count float64 `json:"count"`
	// Capacity is the most people it should hold; DailyCapacity the
	// capacity times the turnover (0 when not set).
	Capacity      int `json:"capacity"`
	DailyCapacity int `json:"daily_capacity,omitempty"`
	// Ratio is Count over Capacity; -1 when unknown.
	Ratio float64 `json:"ratio"`
	// Comfort is the comfort grade.
	Comfort Comfort `json:"comfort"`
	// Level is the open capacity tier, if any.
	Level event.Level `json:"level,omitempty"`
}

// Status returns every watched zone and area as of now, in config order.
func (e *Engine) Status(now time.Time) []TargetStatus {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]TargetStatus, 0, len(e.targets)+len(e.zones))
	for _, t := range e.targets {
		e.refresh(t, now)
		out = append(out, e.status(t))
	}
	// zones without a capacity of their own are counted all the same: the
	// wall shows every zone's count
	for _, cam := range e.camOrder {
		for _, zs := range e.cameras[cam].zones {
			if zs.watched != nil {
				continue
			}
			st := TargetStatus{Target: zs.name, Title: zs.title, Known: e.zoneKnown(zs, now), Ratio: -1}
			if st.Known {
				st.Count = zs.smoothed
			}
			st.Comfort = ComfortOf(-1, e.rules.ComfortBounds)
			out = append(out, st)
		}
	}
	return out
}

func (e *Engine) status(t *target) TargetStatus {
	st := TargetStatus{Target: t.name, Title: t.title, Known: t.known, Capacity: t.capacity,
		DailyCapacity: t.daily, Ratio: -1, Level: e.levelOf(alertKey(event.RuleCapacity, t.name))}
	if t.known {
		st.Count = t.value
		if t.capacity > 0 {
			st.Ratio = t.value / float64(t.capacity)
		}
	}
	st.Comfort = ComfortOf(st.Ratio, e.rules.ComfortBounds)
	return st
}

func alertKey(rule string, t event.Target) string { return rule + "|" + string(t) }

// dropBefore removes the values older than cut from the front of a
// time-ordered slice, reusing its storage.
func dropBefore(s []timedValue, cut time.Time) []timedValue {
	i := 0
	for i < len(s)-1 && s[i].t.Before(cut) {
		i++
	}
	if i == 0 {
		return s
	}
	n := copy(s, s[i:])
	return s[:n]
}

// median of the values; the middle two averaged for an even count.
func median(s []timedValue) float64 {
	var buf [64]float64
	v := buf[:0]
	for _, x := range s {
		v = append(v, x.v)
	}
	slices.Sort(v)
	n := len(v)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

// forecastWindow is the span of counts a forecast's trend is drawn from:
// the trend window, or half the horizon when that is longer (a trend of
// one minute says little about the next ten).
func (e *Engine) forecastWindow() time.Duration {
	return max(e.rules.TrendWindow, e.rules.ForecastHorizon/2)
}

// surgeSlope is the target's growth over the trend window, people per
// minute.
func (e *Engine) surgeSlope(t *target) (float64, bool) {
	return trendSlope(recent(t.trend, e.rules.TrendWindow), e.rules.TrendWindow)
}

// forecastSlope is the target's growth over the forecast window.
func (e *Engine) forecastSlope(t *target) (float64, bool) {
	w := e.forecastWindow()
	return trendSlope(recent(t.trend, w), w)
}

// recent returns the tail of a time-ordered slice within window of its
// last value.
func recent(s []timedValue, window time.Duration) []timedValue {
	if len(s) == 0 {
		return s
	}
	cut := s[len(s)-1].t.Add(-window)
	i, _ := slices.BinarySearchFunc(s, cut, func(v timedValue, t time.Time) int { return v.t.Compare(t) })
	return s[i:]
}

// trendSlope fits a line to the points (least squares) and returns its
// slope in people per minute. ok is false unless the points cover 90% of
// the window and the slope stands clear of the noise (at least three times its
// standard error), so that counting noise never reads as a trend.
func trendSlope(s []timedValue, window time.Duration) (float64, bool) {
	if len(s) < 5 || s[len(s)-1].t.Sub(s[0].t) < window*9/10 {
		return 0, false
	}
	// one pass of sums, x in minutes from the first point
	t0 := s[0].t.UnixNano()
	var sx, sy, sxx, sxy, syy float64
	for _, p := range s {
		x := float64(p.t.UnixNano()-t0) / float64(time.Minute)
		sx += x
		sy += p.v
		sxx += x * x
		sxy += x * p.v
		syy += p.v * p.v
	}
	n := float64(len(s))
	cxx, cxy, cyy := sxx-sx*sx/n, sxy-sx*sy/n, syy-sy*sy/n
	if cxx <= 0 {
		return 0, false
	}
	slope := cxy / cxx
	rss := max(0, cyy-slope*cxy)
	se := math.Sqrt(rss / (n - 2) / cxx)
	if math.Abs(slope) < 3*se {
		return slope, false
	}
	return slope, true
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func sortedCameraNames(m map[string]*cameraState) []string { return sortedKeys(m) }
