package alerting

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"flowwatch/internal/config"
	"flowwatch/internal/event"
	"flowwatch/internal/store"
)

// ServiceConfig configures a Service.
type ServiceConfig struct {
	// Config is the validated site config (defaults applied).
	Config *config.Config
	// Store keeps alerts, their outbox and the count history.
	Store *store.Store
	// Notifiers are the delivery channels besides live subscribers (the
	// webhooks); each gets a dispatcher over the outbox.
	Notifiers []Notifier
	// Logger receives one line per alert change.
	Logger *slog.Logger
	// Metrics receives the service's metrics; nil makes a private set.
	Metrics *metrics.Set
	// QueueLen bounds the inbox of counts and camera states waiting for
	// the engine. Default 4096; when full the newest count is dropped
	// and counted (camera states are never dropped).
	QueueLen int
	// RetryMin and RetryMax bound the delay between delivery attempts;
	// zero means the dispatcher's defaults (1s and 10m).
	RetryMin, RetryMax time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Service runs the rules live: counts and camera states go in; every
// alert change is committed to the store, with one outbox row per
// notifier, before it is pushed to live subscribers or any dispatcher
// sends it. It also keeps the per-second count history; deleting what is
// past its retention is store.Retention's job, which serve runs.
type Service struct {
	cfg      ServiceConfig
	engine   *Engine
	db       *store.Store
	log      *slog.Logger
	set      *metrics.Set
	inbox    chan input
	channels []string
	minLevel map[string]event.Level
	disp     []*Dispatcher

	subMu sync.Mutex
	subs  map[*Subscription]struct{}

	histMu  sync.Mutex
	pending map[historyKey]store.CountValue // last value per target and second since the last flush

	changes, dropped, subDropped, storeErrors *metrics.Counter
	latency                                   *metrics.Histogram
}

// input is one count or one camera state for the engine.
type input struct {
	count  *event.CountSample
	camera *event.CameraState
}

// NewService builds the service and restores the alerts left open by the
// last run.
func NewService(ctx context.Context, cfg ServiceConfig) (*Service, error) {
	if cfg.Config == nil || cfg.Store == nil {
		return nil, errors.New("alerting: service needs a config and a store")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Metrics == nil {
		cfg.Metrics = metrics.NewSet()
	}
	if cfg.QueueLen <= 0 {
		cfg.QueueLen = 4096
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	e, err := NewEngine(cfg.Config)
	if err != nil {
		return nil, err
	}
	open, err := cfg.Store.OpenAlerts(ctx)
	if err != nil {
		return nil, fmt.Errorf("alerting: restore open alerts: %w", err)
	}
	e.Restore(open)
	s := &Service{
		cfg: cfg, engine: e, db: cfg.Store, log: cfg.Logger, set: cfg.Metrics,
		inbox:    make(chan input, cfg.QueueLen),
		subs:     map[*Subscription]struct{}{},
		pending:  map[historyKey]store.CountValue{},
		minLevel: map[string]event.Level{},
	}
	for _, w := range cfg.Config.Notify.Webhooks {
		s.minLevel[w.Name] = event.Level(w.MinLevel)
	}
	for _, n := range cfg.Notifiers {
		d, err := NewDispatcher(DispatcherConfig{Outbox: cfg.Store, Notifier: n, Logger: cfg.Logger,
			Metrics: cfg.Metrics, RetryFor: cfg.Config.Notify.RetryFor, BackoffMin: cfg.RetryMin,
			BackoffMax: cfg.RetryMax, Now: cfg.Now})
		if err != nil {
			return nil, err
		}
		s.channels = append(s.channels, n.Name())
		s.disp = append(s.disp, d)
	}
	s.changes = s.set.NewCounter("flowwatch_alert_changes_total")
	s.dropped = s.set.NewCounter("flowwatch_alert_inputs_dropped_total")
	s.subDropped = s.set.NewCounter("flowwatch_alert_subscribers_dropped_total")
	s.storeErrors = s.set.NewCounter("flowwatch_alert_store_errors_total")
	s.latency = s.set.NewHistogram("flowwatch_alert_latency_seconds")
	s.set.NewGauge("flowwatch_alerts_open", func() float64 { return float64(len(e.OpenAlerts())) })
	if len(open) > 0 {
		s.log.Info("alerts restored", "open", len(open))
	}
	return s, nil
}

// MetricsSet returns the set holding the service's metrics.
func (s *Service) MetricsSet() *metrics.Set { return s.set }

// Latency returns the glass-to-alert histogram: seconds from the arrival
// of the picture whose count caused an alert change to the change being
// stored and on the live feed (flowwatch_alert_latency_seconds).
func (s *Service) Latency() *metrics.Histogram { return s.latency }

// Engine returns the service's rule engine (for status and tests).
func (s *Service) Engine() *Engine { return s.engine }

// Observe queues one zone count. It never blocks: when the inbox is full
// the count is dropped and counted in flowwatch_alert_inputs_dropped_total.
func (s *Service) Observe(c event.CountSample) {
	select {
	case s.inbox <- input{count: &c}:
	default:
		s.dropped.Inc()
	}
}

// CameraState queues a camera's new state. It waits for room: a camera
// going down must never be lost.
func (s *Service) CameraState(st event.CameraState) {
	s.inbox <- input{camera: &st}
}

// Run processes counts, ticks the engine every second, writes the count
// history and runs the dispatchers, until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	for _, d := range s.disp {
		wg.Go(func() {
			if err := d.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
				s.log.Error("alert dispatcher stopped", "err", err)
			}
		})
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			s.flushHistory(context.WithoutCancel(ctx))
			return ctx.Err()
		case in := <-s.inbox:
			if in.count != nil {
				s.keepCount(event.ZoneTarget(in.count.Camera, in.count.Zone), in.count.Time, in.count.Count)
				if chs := s.engine.Observe(*in.count); len(chs) > 0 {
					s.apply(ctx, chs)
					// glass to alert: from the picture's arrival to the
					// change stored and on the live feed
					d := time.Since(in.count.Time).Seconds()
					for range chs {
						s.latency.Update(d)
					}
				}
			} else {
				s.apply(ctx, s.engine.CameraState(*in.camera))
			}
		case <-tick.C:
			now := s.cfg.Now()
			s.apply(ctx, s.engine.Tick(now))
			for _, st := range s.engine.Status(now) {
				if st.Known && strings.HasPrefix(string(st.Target), "area:") {
					s.keepCount(st.Target, now, st.Count)
				}
			}
			s.flushHistory(ctx)
		}
	}
}

// apply stores each change with its outbox rows, then delivers it.
func (s *Service) apply(ctx context.Context, chs []event.AlertChange) {
	for _, ch := range chs {
		if err := s.commit(ctx, &ch); err != nil {
			s.storeErrors.Inc()
			s.log.Error("alert change not stored", "alert", ch.Alert.Key, "change", ch.Kind, "err", err)
			continue
		}
	}
}

// commit stores one change and then publishes it. A raised alert gets
// its ID from the store.
func (s *Service) commit(ctx context.Context, ch *event.AlertChange) error {
	stored, err := s.db.SaveAlertChange(ctx, *ch, s.channelsFor(ch.Alert.Level))
	if err != nil {
		return err
	}
	if ch.Kind == event.AlertRaised {
		s.engine.SetAlertID(ch.Alert.Key, stored.ID)
	}
	ch.Alert = stored
	s.changes.Inc()
	s.log.Info("alert", "change", ch.Kind, "id", stored.ID, "rule", stored.Rule, "target", stored.Target,
		"level", stored.Level, "by", ch.By, "message", stored.MessageEN)
	s.publish(*ch)
	for _, d := range s.disp {
		d.Kick()
	}
	return nil
}

// channelsFor lists the notifiers an alert of this level goes to.
func (s *Service) channelsFor(l event.Level) []string {
	var out []string
	for _, c := range s.channels {
		if min, ok := s.minLevel[c]; ok && l.Rank() < min.Rank() {
			continue
		}
		out = append(out, c)
	}
	return out
}

// Acknowledge, AddNote, HandOver and Resolve are the people's side of the
// lifecycle; each change is stored and delivered like the engine's own.

// Acknowledge records that a person has an open alert in hand.
func (s *Service) Acknowledge(ctx context.Context, id int64, by, note string) (event.Alert, error) {
	return s.act(ctx, func(now time.Time) (event.AlertChange, error) { return s.engine.Acknowledge(id, by, note, now) })
}

// AddNote attaches a note to an open alert.
func (s *Service) AddNote(ctx context.Context, id int64, by, note string) (event.Alert, error) {
	return s.act(ctx, func(now time.Time) (event.AlertChange, error) { return s.engine.AddNote(id, by, note, now) })
}

// HandOver passes an open alert to another person.
func (s *Service) HandOver(ctx context.Context, id int64, by, to, note string) (event.Alert, error) {
	return s.act(ctx, func(now time.Time) (event.AlertChange, error) { return s.engine.HandOver(id, by, to, note, now) })
}

// Resolve closes an open alert by hand.
func (s *Service) Resolve(ctx context.Context, id int64, by, note string) (event.Alert, error) {
	return s.act(ctx, func(now time.Time) (event.AlertChange, error) { return s.engine.Resolve(id, by, note, now) })
}

func (s *Service) act(ctx context.Context, fn func(time.Time) (event.AlertChange, error)) (event.Alert, error) {
	ch, err := fn(s.cfg.Now())
	if err != nil {
		return event.Alert{}, err
	}
	if err := s.commit(ctx, &ch); err != nil {
		s.storeErrors.Inc()
		return event.Alert{}, fmt.Errorf("alert %d: store %s: %w", ch.Alert.ID, ch.Kind, err)
	}
	return ch.Alert, nil
}

// Subscription is a live feed of alert changes for one consumer (a
// console's websocket). A consumer that falls QueueLen changes behind is
// cut off: its channel closes and Dropped reports true; it reloads from
// the store and subscribes again. The service never waits for it.
type Subscription struct {
	// C delivers the changes.
	C       chan event.AlertChange
	dropped bool
	s       *Service
}

// Subscribe starts a live feed holding up to queueLen changes.
func (s *Service) Subscribe(queueLen int) *Subscription {
	if queueLen <= 0 {
		queueLen = 256
	}
	sub := &Subscription{C: make(chan event.AlertChange, queueLen), s: s}
	s.subMu.Lock()
	s.subs[sub] = struct{}{}
	s.subMu.Unlock()
	return sub
}

// Close ends the feed.
func (sub *Subscription) Close() {
	s := sub.s
	s.subMu.Lock()
	defer s.subMu.Unlock()
	if _, ok := s.subs[sub]; ok {
		delete(s.subs, sub)
		close(sub.C)
	}
}

// Dropped reports whether the feed was cut off for falling behind.
func (sub *Subscription) Dropped() bool {
	sub.s.subMu.Lock()
	defer sub.s.subMu.Unlock()
	return sub.dropped
}

func (s *Service) publish(ch event.AlertChange) {
	s.subMu.Lock()
	defer s.subMu.Unlock()
	for sub := range s.subs {
		select {
		case sub.C <- ch:
		default:
			sub.dropped = true
			delete(s.subs, sub)
			close(sub.C)
			s.subDropped.Inc()
		}
	}
}

// historyKey is one target's second in the count history.
type historyKey struct {
	target event.Target
	second int64
}

// keepCount remembers a target's latest count of its second.
func (s *Service) keepCount(t event.Target, at time.Time, v float64) {
	s.histMu.Lock()
	s.pending[historyKey{t, at.Unix()}] = store.CountValue{Target: t, Time: at, Count: v}
	s.histMu.Unlock()
}

// flushHistory writes the counts kept since the last flush.
func (s *Service) flushHistory(ctx context.Context) {
	s.histMu.Lock()
	if len(s.pending) == 0 {
		s.histMu.Unlock()
		return
	}
	vals := make([]store.CountValue, 0, len(s.pending))
	for _, v := range s.pending {
		vals = append(vals, v)
	}
	clear(s.pending)
	s.histMu.Unlock()
	if err := s.db.AddCounts(ctx, vals); err != nil {
		s.storeErrors.Inc()
		s.log.Error("count history not stored", "points", len(vals), "err", err)
	}
}

// RunRetention deletes, once, the per-second counts, rollups and resolved
// alerts older than the config's retention of each, logging one line per
// class (store.RunRetention). The service does not schedule it: serve's
// store.Retention job deletes every class of data, these three included;
// this is for a Service run alone (tools, tests).
func (s *Service) RunRetention(ctx context.Context) {
	st := s.cfg.Config.Storage
	s.db.RunRetention(ctx, store.RetentionPolicy{Counts: st.CountsRetention, Rollups: st.RollupRetention,
		Alerts: st.AlertsRetention}, s.cfg.Now(), s.log, store.ClassCounts, store.ClassRollups, store.ClassAlerts)
}
