package alerting

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"flowwatch/internal/store"
)

// Notifier delivers stored alert changes to one channel (a webhook, a
// messaging gateway). Name is the channel the outbox rows are filed
// under. Notify sends one delivery and returns when it was accepted, when
// it failed, or when ctx is done, whichever comes first. It may be called
// for several deliveries at once, but never for the same delivery twice
// at once.
//
// A nil error means delivered. An error wrapped with Permanent means that
// sending again cannot help (the receiver refused the request); an error
// wrapped with RetryAfter says when the receiver wants the next attempt.
// Any other error is retried with backoff.
type Notifier interface {
	Name() string
	Notify(ctx context.Context, d store.Delivery) error
}

// permanentError marks an error that retrying cannot fix.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent wraps err to say that retrying the delivery cannot help: the
// dispatcher moves it to the dead-letter list at once. Permanent(nil) is
// nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// IsPermanent reports whether err, or an error it wraps, was marked with
// Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

// RetryAfterError is a temporary failure whose receiver said how long to
// wait before the next attempt (an HTTP Retry-After header). The
// dispatcher waits at least After, and at most its BackoffMax.
type RetryAfterError struct {
	// After is how long the receiver asked to wait.
	After time.Duration
	// Err is the failure.
	Err error
}

func (e *RetryAfterError) Error() string {
	return fmt.Sprintf("%v (retry after %s)", e.Err, e.After)
}

func (e *RetryAfterError) Unwrap() error { return e.Err }

// RetryAfter wraps err with the wait its receiver asked for. RetryAfter(nil,
// …) is nil.
func RetryAfter(err error, after time.Duration) error {
	if err == nil {
		return nil
	}
	return &RetryAfterError{After: max(after, 0), Err: err}
}

// Outbox is the part of the store a Dispatcher works on: the delivery rows
// written with each alert change, one per channel. *store.Store satisfies
// it.
type Outbox interface {
	// DueDeliveries returns at most limit undelivered, live rows of the
	// channel whose next attempt is at or before now, oldest first.
	DueDeliveries(ctx context.Context, channel string, now time.Time, limit int) ([]store.Delivery, error)
	// NextDeliveryAt returns the earliest next attempt of the channel's
	// undelivered, live rows; false when there is none.
	NextDeliveryAt(ctx context.Context, channel string) (time.Time, bool, error)
	MarkDelivered(ctx context.Context, id int64, at time.Time) error
	MarkRetry(ctx context.Context, id int64, next time.Time, reason string) error
	MarkDead(ctx context.Context, id int64, at time.Time, reason string) error
}

// Defaults of DispatcherConfig.
const (
	DefaultDispatchConcurrency = 4
	DefaultBackoffMin          = time.Second
	DefaultBackoffMax          = 10 * time.Minute
	DefaultRetryFor            = 24 * time.Hour
	DefaultDispatchPoll        = time.Second
)

// dispatchMarkTimeout bounds how long recording an attempt's outcome may
// take; it is recorded even while the dispatcher shuts down, so that a
// delivered row is not sent again after a restart.
const dispatchMarkTimeout = 5 * time.Second

// dispatchReasonMax is the longest failure reason stored with a row.
const dispatchReasonMax = 1024

// DispatcherConfig configures a Dispatcher. Zero fields take their
// defaults.
type DispatcherConfig struct {
	// Outbox holds the rows to deliver. Required.
	Outbox Outbox
	// Notifier sends them; its Name is the channel whose rows this
	// dispatcher delivers. Required.
	Notifier Notifier
	// Logger receives one line per failed attempt and per dead letter.
	// Default slog.Default().
	Logger *slog.Logger
	// Metrics is where the delivery metrics are registered. Default: a
	// private set, reachable with Dispatcher.Metrics.
	Metrics *metrics.Set
	// Concurrency is how many deliveries are sent at once. Default 4.
	Concurrency int
	// BackoffMin is the wait after a first failure; it doubles with each
	// further failure up to BackoffMax, with ±20% jitter. Defaults 1s and
	// 10m.
	BackoffMin, BackoffMax time.Duration
	// RetryFor is how long after its creation a delivery keeps being
	// retried: one older than this that fails again goes to the
	// dead-letter list. Default 24h.
	RetryFor time.Duration
	// Poll is the longest the dispatcher sleeps before looking for due
	// rows again, for rows committed without a Kick. Default 1s.
	Poll time.Duration
	// Now tells the time. Default time.Now.
	Now func() time.Time
}

// Dispatcher delivers one channel's outbox rows through its Notifier:
// at least once, with exponential backoff, and to the dead-letter list when
// retrying cannot help or has gone on for RetryFor. Rows left pending by a
// crash are simply due again after a restart; receivers dedup by the
// Idempotency-Key.
type Dispatcher struct {
	cfg     DispatcherConfig
	channel string
	log     *slog.Logger
	set     *metrics.Set
	kick    chan struct{}
	running atomic.Bool

	delivered, retried, dead *metrics.Counter
	latency                  *metrics.Histogram
}

// NewDispatcher checks cfg, fills in its defaults and registers the
// channel's metrics: flowwatch_alert_deliveries_total{channel,result} with
// result delivered, retry or dead, and flowwatch_alert_delivery_seconds
// {channel}, the time from an alert change's creation to its delivery.
func NewDispatcher(cfg DispatcherConfig) (*Dispatcher, error) {
	if cfg.Outbox == nil {
		return nil, errors.New("alerting: dispatcher: no Outbox (the store to read deliveries from)")
	}
	if cfg.Notifier == nil {
		return nil, errors.New("alerting: dispatcher: no Notifier (the channel to deliver to)")
	}
	channel := cfg.Notifier.Name()
	if channel == "" {
		return nil, errors.New("alerting: dispatcher: the Notifier has an empty Name (the outbox channel)")
	}
	switch {
	case cfg.Concurrency < 0:
		return nil, fmt.Errorf("alerting: dispatcher %q: Concurrency must not be negative, got %d", channel, cfg.Concurrency)
	case cfg.BackoffMin < 0, cfg.BackoffMax < 0, cfg.RetryFor < 0, cfg.Poll < 0:
		return nil, fmt.Errorf("alerting: dispatcher %q: BackoffMin, BackoffMax, RetryFor and Poll must not be negative", channel)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Metrics == nil {
		cfg.Metrics = metrics.NewSet()
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = DefaultDispatchConcurrency
	}
	if cfg.BackoffMin == 0 {
		cfg.BackoffMin = DefaultBackoffMin
	}
	if cfg.BackoffMax == 0 {
		cfg.BackoffMax = max(DefaultBackoffMax, cfg.BackoffMin)
	}
	if cfg.BackoffMax < cfg.BackoffMin {
		return nil, fmt.Errorf("alerting: dispatcher %q: BackoffMax (%s) is less than BackoffMin (%s)", channel, cfg.BackoffMax, cfg.BackoffMin)
	}
	if cfg.RetryFor == 0 {
		cfg.RetryFor = DefaultRetryFor
	}
	if cfg.Poll == 0 {
		cfg.Poll = DefaultDispatchPoll
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	label := dispatchLabelValue(channel)
	counter := func(result string) *metrics.Counter {
		return cfg.Metrics.GetOrCreateCounter(fmt.Sprintf(`flowwatch_alert_deliveries_total{channel="%s",result="%s"}`, label, result))
	}
	return &Dispatcher{
		cfg:       cfg,
		channel:   channel,
		log:       cfg.Logger.With("channel", channel),
		set:       cfg.Metrics,
		kick:      make(chan struct{}, 1),
		delivered: counter("delivered"),
		retried:   counter("retry"),
		dead:      counter("dead"),
		latency:   cfg.Metrics.GetOrCreateHistogram(fmt.Sprintf(`flowwatch_alert_delivery_seconds{channel="%s"}`, label)),
	}, nil
}

// Channel returns the outbox channel the dispatcher delivers.
func (d *Dispatcher) Channel() string { return d.channel }

// Metrics returns the set its metrics are registered in.
func (d *Dispatcher) Metrics() *metrics.Set { return d.set }

// Kick wakes the dispatcher to look for due rows now, typically right after
// an alert change and its deliveries were committed. It never blocks.
func (d *Dispatcher) Kick() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// dispatchResult is what a send goroutine tells the loop when it is done:
// which row, and until when not to send it again although the store may
// still show it due (when recording the outcome failed).
type dispatchResult struct {
	id   int64
	hold time.Time
}

// Run delivers due rows until ctx is done, then waits for the sends in
// flight to return and returns nil. Only one Run may be active per
// Dispatcher.
func (d *Dispatcher) Run(ctx context.Context) error {
	if !d.running.CompareAndSwap(false, true) {
		return fmt.Errorf("alerting: dispatcher %q: already running", d.channel)
	}
	defer d.running.Store(false)

	var wg sync.WaitGroup
	defer wg.Wait()
	conc := d.cfg.Concurrency
	// done has room for every send that can be in flight, so a send
	// goroutine never blocks on it, even after the loop has returned.
	done := make(chan dispatchResult, conc)
	inflight := make(map[int64]bool)
	// held: rows whose outcome could not be recorded, not to be sent
	// again before the time given.
	held := make(map[int64]time.Time)

	finish := func(r dispatchResult) {
		delete(inflight, r.id)
		if !r.hold.IsZero() {
			held[r.id] = r.hold
		}
	}

	for {
		if ctx.Err() != nil {
			return nil
		}
		now := d.cfg.Now()
		for id, until := range held {
			if !now.Before(until) {
				delete(held, id)
			}
		}

		// Start what is due, up to the free slots.
		wait := d.cfg.Poll
		if free := conc - len(inflight); free > 0 {
			limit := free + len(inflight) + len(held)
			rows, err := d.cfg.Outbox.DueDeliveries(ctx, d.channel, now, limit)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				d.log.Error("alert delivery: reading due deliveries failed", "err", err)
			}
			for _, row := range rows {
				if free == 0 {
					break
				}
				if inflight[row.ID] || !held[row.ID].IsZero() {
					continue
				}
				inflight[row.ID] = true
				free--
				wg.Add(1)
				go func(row store.Delivery) {
					defer wg.Done()
					done <- dispatchResult{id: row.ID, hold: d.deliver(ctx, row)}
				}(row)
			}
			// When every due row was started, sleep until the next
			// one falls due; otherwise a finishing send wakes us.
			if err == nil && len(rows) < limit && free > 0 {
				next, ok, err := d.cfg.Outbox.NextDeliveryAt(ctx, d.channel)
				switch {
				case err != nil:
					if ctx.Err() != nil {
						return nil
					}
					d.log.Error("alert delivery: reading the next due time failed", "err", err)
				case ok && next.After(now):
					wait = min(wait, next.Sub(d.cfg.Now()))
				}
			}
		}
		for _, until := range held {
			wait = min(wait, until.Sub(now))
		}

		timer := time.NewTimer(max(wait, 0))
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-d.kick:
		case r := <-done:
			finish(r)
		case <-timer.C:
		}
		timer.Stop()
		// Take every other finished send before looking again.
		for drained := false; !drained; {
			select {
			case r := <-done:
				finish(r)
			default:
				drained = true
			}
		}
	}
}

// deliver sends one row and records the outcome. It returns the zero time,
// or, when the outcome could not be recorded, until when the loop must not
// send the row again.
func (d *Dispatcher) deliver(ctx context.Context, row store.Delivery) time.Time {
	err := d.cfg.Notifier.Notify(ctx, row)
	if err != nil && ctx.Err() != nil {
		// Shutting down: the row stays pending and is sent again
		// after the restart.
		return time.Time{}
	}
	// The attempt happened: record it even if shutdown starts now.
	mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), dispatchMarkTimeout)
	defer cancel()
	now := d.cfg.Now()
	attempt := row.Attempts + 1
	log := d.log.With("delivery", row.ID, "alert", row.AlertID, "seq", row.Seq, "attempt", attempt)

	if err == nil {
		if merr := d.cfg.Outbox.MarkDelivered(mctx, row.ID, now); merr != nil {
			log.Error("alert delivery: delivered but recording it failed; it will be sent again", "err", merr)
			return now.Add(d.backoff(row.Attempts))
		}
		d.delivered.Inc()
		d.latency.Update(max(now.Sub(row.CreatedAt), 0).Seconds())
		return time.Time{}
	}

	reason := dispatchReason(err)
	age := now.Sub(row.CreatedAt)
	if IsPermanent(err) || age >= d.cfg.RetryFor {
		why := "permanent failure"
		if !IsPermanent(err) {
			why = fmt.Sprintf("still failing %s after creation (retry_for %s)", age.Round(time.Second), d.cfg.RetryFor)
		}
		log.Error("alert delivery dead-lettered", "why", why, "err", reason)
		if merr := d.cfg.Outbox.MarkDead(mctx, row.ID, now, reason); merr != nil {
			log.Error("alert delivery: recording the dead letter failed", "err", merr)
			return now.Add(d.backoff(row.Attempts))
		}
		d.dead.Inc()
		return time.Time{}
	}

	delay := d.backoff(row.Attempts)
	var ra *RetryAfterError
	if errors.As(err, &ra) && ra.After > delay {
		delay = min(ra.After, d.cfg.BackoffMax)
	}
	next := now.Add(delay)
	log.Warn("alert delivery failed; will retry", "retry_in", delay.Round(time.Millisecond), "err", reason)
	if merr := d.cfg.Outbox.MarkRetry(mctx, row.ID, next, reason); merr != nil {
		log.Error("alert delivery: recording the retry failed", "err", merr)
		return next
	}
	d.retried.Inc()
	return time.Time{}
}

// backoff is the wait after a failure when attempts earlier attempts had
// already failed: BackoffMin doubled per earlier attempt, capped at
// BackoffMax, then ±20% jitter, never above BackoffMax.
func (d *Dispatcher) backoff(attempts int) time.Duration {
	b := d.cfg.BackoffMin
	for i := 0; i < attempts && b < d.cfg.BackoffMax; i++ {
		b *= 2
	}
	b = min(b, d.cfg.BackoffMax)
	jittered := time.Duration(float64(b) * (0.8 + 0.4*rand.Float64()))
	return min(max(jittered, 0), d.cfg.BackoffMax)
}

// dispatchReason is the failure text stored with a row: the error, on one
// line, at most dispatchReasonMax bytes.
func dispatchReason(err error) string {
	s := strings.Join(strings.Fields(err.Error()), " ")
	if len(s) > dispatchReasonMax {
		s = strings.ToValidUTF8(s[:dispatchReasonMax], "") + "…"
	}
	return s
}

// dispatchLabelValue escapes a Prometheus label value.
func dispatchLabelValue(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s)
}
