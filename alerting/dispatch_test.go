package alerting

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"flowwatch/internal/event"
	"flowwatch/internal/store"
)

// dispatchTestOutbox is an Outbox in memory that behaves like the store's.
type dispatchTestOutbox struct {
	mu       sync.Mutex
	rows     map[int64]*store.Delivery
	retries  []dispatchTestRetry
	failMark atomic.Bool // every Mark* fails
}

type dispatchTestRetry struct {
	id     int64
	next   time.Time
	reason string
}

func newDispatchTestOutbox(rows ...store.Delivery) *dispatchTestOutbox {
	o := &dispatchTestOutbox{rows: map[int64]*store.Delivery{}}
	for _, r := range rows {
		o.rows[r.ID] = &r
	}
	return o
}

// dispatchTestRows makes n pending rows on channel "hook", created and due
// at created.
func dispatchTestRows(n int, created time.Time) []store.Delivery {
	var out []store.Delivery
	for i := 1; i <= n; i++ {
		out = append(out, store.Delivery{
			ID: int64(i), AlertID: int64(100 + i), Seq: 1, Channel: "hook",
			IdempotencyKey: fmt.Sprintf("flowwatch-alert-%d-1", 100+i),
			Payload:        []byte(fmt.Sprintf(`{"kind":"raised","alert":{"id":%d}}`, 100+i)),
			CreatedAt:      created, NextAttempt: created,
		})
	}
	return out
}

func pendingRow(r *store.Delivery) bool { return r.DeliveredAt.IsZero() && r.DeadAt.IsZero() }

func (o *dispatchTestOutbox) DueDeliveries(_ context.Context, channel string, now time.Time, limit int) ([]store.Delivery, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("limit %d", limit)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []store.Delivery
	for _, r := range o.rows {
		if r.Channel == channel && pendingRow(r) && !r.NextAttempt.After(now) {
			out = append(out, *r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func (o *dispatchTestOutbox) NextDeliveryAt(_ context.Context, channel string) (time.Time, bool, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var next time.Time
	ok := false
	for _, r := range o.rows {
		if r.Channel == channel && pendingRow(r) && (!ok || r.NextAttempt.Before(next)) {
			next, ok = r.NextAttempt, true
		}
	}
	return next, ok, nil
}

func (o *dispatchTestOutbox) mark(id int64, fn func(r *store.Delivery)) error {
	if o.failMark.Load() {
		return errors.New("disk full")
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	r, ok := o.rows[id]
	if !ok {
		return fmt.Errorf("no delivery %d", id)
	}
	r.Attempts++
	fn(r)
	return nil
}

func (o *dispatchTestOutbox) MarkDelivered(_ context.Context, id int64, at time.Time) error {
	return o.mark(id, func(r *store.Delivery) { r.DeliveredAt = at })
}

func (o *dispatchTestOutbox) MarkRetry(_ context.Context, id int64, next time.Time, reason string) error {
	return o.mark(id, func(r *store.Delivery) {
		r.NextAttempt, r.LastError = next, reason
		o.retries = append(o.retries, dispatchTestRetry{id, next, reason})
	})
}

func (o *dispatchTestOutbox) MarkDead(_ context.Context, id int64, at time.Time, reason string) error {
	return o.mark(id, func(r *store.Delivery) { r.DeadAt, r.LastError = at, reason })
}

func (o *dispatchTestOutbox) row(id int64) store.Delivery {
	o.mu.Lock()
	defer o.mu.Unlock()
	return *o.rows[id]
}

func (o *dispatchTestOutbox) retryMarks() []dispatchTestRetry {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]dispatchTestRetry(nil), o.retries...)
}

// dispatchTestNotifier is a Notifier made of a function.
type dispatchTestNotifier struct {
	name string
	fn   func(ctx context.Context, d store.Delivery) error
}

func (n *dispatchTestNotifier) Name() string { return n.name }
func (n *dispatchTestNotifier) Notify(ctx context.Context, d store.Delivery) error {
	return n.fn(ctx, d)
}

// startDispatcher runs a dispatcher for cfg until the returned stop is
// called (or the test ends); stop fails the test when Run does not return
// promptly or returns an error.
func startDispatcher(t *testing.T, cfg DispatcherConfig) (*Dispatcher, func()) {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(testWriter{t}, nil))
	}
	d, err := NewDispatcher(cfg)
	if err != nil {
		t.Fatalf("NewDispatcher: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ret := make(chan error, 1)
	go func() { ret <- d.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-ret:
				if err != nil {
					t.Errorf("Run returned %v, want nil after cancel", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("Run did not return within 10s of cancel")
			}
		})
	}
	t.Cleanup(stop)
	return d, stop
}

// testWriter sends log lines to t.Log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// lockedBuffer is a bytes.Buffer safe for a logger and a test at once.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// waitFor polls cond until it holds, failing the test after 10s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func counterValue(d *Dispatcher, result string) uint64 {
	return d.Metrics().GetOrCreateCounter(fmt.Sprintf(`flowwatch_alert_deliveries_total{channel="%s",result="%s"}`, d.Channel(), result)).Get()
}

func TestNewDispatcherNeedsOutboxAndNotifier(t *testing.T) {
	n := &dispatchTestNotifier{name: "hook", fn: func(context.Context, store.Delivery) error { return nil }}
	if _, err := NewDispatcher(DispatcherConfig{Notifier: n}); err == nil || !strings.Contains(err.Error(), "Outbox") {
		t.Errorf("no Outbox: got %v, want an error naming Outbox", err)
	}
	if _, err := NewDispatcher(DispatcherConfig{Outbox: newDispatchTestOutbox()}); err == nil || !strings.Contains(err.Error(), "Notifier") {
		t.Errorf("no Notifier: got %v, want an error naming Notifier", err)
	}
	if _, err := NewDispatcher(DispatcherConfig{Outbox: newDispatchTestOutbox(), Notifier: &dispatchTestNotifier{}}); err == nil {
		t.Errorf("a Notifier with an empty name was accepted")
	}
	if _, err := NewDispatcher(DispatcherConfig{Outbox: newDispatchTestOutbox(), Notifier: n, BackoffMin: time.Minute, BackoffMax: time.Second}); err == nil {
		t.Errorf("BackoffMax below BackoffMin was accepted")
	}
	d, err := NewDispatcher(DispatcherConfig{Outbox: newDispatchTestOutbox(), Notifier: n})
	if err != nil {
		t.Fatal(err)
	}
	c := d.cfg
	if c.Concurrency != 4 || c.BackoffMin != time.Second || c.BackoffMax != 10*time.Minute ||
		c.RetryFor != 24*time.Hour || c.Poll != time.Second || c.Now == nil || c.Logger == nil || d.Metrics() == nil {
		t.Errorf("defaults not filled in: %+v", c)
	}
}

func TestDispatchBackoffDoublesWithJitterAndCap(t *testing.T) {
	d, err := NewDispatcher(DispatcherConfig{
		Outbox:     newDispatchTestOutbox(),
		Notifier:   &dispatchTestNotifier{name: "hook"},
		BackoffMin: time.Second, BackoffMax: 60 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	for attempts := 0; attempts < 70; attempts++ {
		base := time.Second << min(attempts, 6)
		base = min(base, 60*time.Second)
		lo, hi := time.Duration(float64(base)*0.8), min(time.Duration(float64(base)*1.2), 60*time.Second)
		seen := map[time.Duration]bool{}
		for range 50 {
			b := d.backoff(attempts)
			if b < lo || b > hi {
				t.Fatalf("backoff after %d earlier attempts = %s, want within [%s, %s]", attempts, b, lo, hi)
			}
			seen[b] = true
		}
		if len(seen) < 2 {
			t.Fatalf("backoff after %d earlier attempts is always %v: no jitter", attempts, seen)
		}
	}
}

func TestDispatchRetryThenSuccessKeepsIdempotencyKey(t *testing.T) {
	rc := newWebhookTestReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n < 2 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
		}
	})
	hook := newTestWebhook(t, WebhookConfig{URL: rc.srv.URL, Secret: "k"})
	created := time.Now().Add(-2 * time.Second)
	ob := newDispatchTestOutbox(dispatchTestRows(1, created)...)
	d, stop := startDispatcher(t, DispatcherConfig{
		Outbox: ob, Notifier: hook,
		BackoffMin: 5 * time.Millisecond, BackoffMax: 20 * time.Millisecond, Poll: 50 * time.Millisecond,
	})
	waitFor(t, "the delivery", func() bool { return !ob.row(1).DeliveredAt.IsZero() })
	stop()

	reqs := rc.requests()
	if len(reqs) != 3 {
		t.Fatalf("receiver saw %d requests, want 3 (two 503s, then 200)", len(reqs))
	}
	for i, r := range reqs {
		if k := r.header.Get("Idempotency-Key"); k != "flowwatch-alert-101-1" {
			t.Errorf("attempt %d: Idempotency-Key %q, want flowwatch-alert-101-1 on every attempt", i+1, k)
		}
		if id := r.header.Get("X-Flowwatch-Delivery"); id != "1" {
			t.Errorf("attempt %d: X-Flowwatch-Delivery %q, want 1", i+1, id)
		}
		if !VerifySignature("k", r.header.Get("X-Flowwatch-Timestamp"), r.body, r.header.Get("X-Flowwatch-Signature")) {
			t.Errorf("attempt %d: bad signature", i+1)
		}
	}
	row := ob.row(1)
	if row.Attempts != 3 || !row.DeadAt.IsZero() {
		t.Errorf("row after delivery: %d attempts, dead at %v; want 3 attempts, not dead", row.Attempts, row.DeadAt)
	}
	if !strings.Contains(row.LastError, "503") {
		t.Errorf("last error %q does not mention the 503", row.LastError)
	}
	if got := counterValue(d, "retry"); got != 2 {
		t.Errorf("retry counter %d, want 2", got)
	}
	if got := counterValue(d, "delivered"); got != 1 {
		t.Errorf("delivered counter %d, want 1", got)
	}
	if got := counterValue(d, "dead"); got != 0 {
		t.Errorf("dead counter %d, want 0", got)
	}
	var buf bytes.Buffer
	d.Metrics().WritePrometheus(&buf)
	if !strings.Contains(buf.String(), `flowwatch_alert_delivery_seconds_count{channel="hook"} 1`) {
		t.Errorf("no delivery latency observed:\n%s", buf.String())
	}
	// Two seconds old at creation, so the latency sum is at least 2.
	if !strings.Contains(buf.String(), `flowwatch_alert_delivery_seconds_sum{channel="hook"} 2`) {
		t.Errorf("delivery latency is not measured from creation:\n%s", buf.String())
	}
}

func TestDispatchPermanentFailureGoesDeadAtOnce(t *testing.T) {
	rc := newWebhookTestReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		http.Error(w, "unknown field", http.StatusUnprocessableEntity)
	})
	hook := newTestWebhook(t, WebhookConfig{URL: rc.srv.URL})
	ob := newDispatchTestOutbox(dispatchTestRows(1, time.Now())...)
	d, stop := startDispatcher(t, DispatcherConfig{
		Outbox: ob, Notifier: hook,
		BackoffMin: time.Millisecond, BackoffMax: 2 * time.Millisecond, Poll: 5 * time.Millisecond,
	})
	waitFor(t, "the dead letter", func() bool { return !ob.row(1).DeadAt.IsZero() })
	time.Sleep(30 * time.Millisecond) // room for a wrong second attempt
	stop()
	if n := len(rc.requests()); n != 1 {
		t.Errorf("a 422 was sent %d times, want once", n)
	}
	row := ob.row(1)
	if row.Attempts != 1 || !row.DeliveredAt.IsZero() || !strings.Contains(row.LastError, "422") {
		t.Errorf("dead row: %d attempts, delivered %v, last error %q; want 1 attempt, undelivered, the 422", row.Attempts, row.DeliveredAt, row.LastError)
	}
	if len(ob.retryMarks()) != 0 {
		t.Errorf("a permanent failure was marked for retry: %+v", ob.retryMarks())
	}
	if got := counterValue(d, "dead"); got != 1 {
		t.Errorf("dead counter %d, want 1", got)
	}
}

func TestDispatchRetryForExpiryGoesDead(t *testing.T) {
	var calls atomic.Int64
	fail := &dispatchTestNotifier{name: "hook", fn: func(context.Context, store.Delivery) error {
		calls.Add(1)
		return errors.New("connection refused")
	}}

	t.Run("old row fails once more", func(t *testing.T) {
		calls.Store(0)
		ob := newDispatchTestOutbox(dispatchTestRows(1, time.Now().Add(-25*time.Hour))...)
		d, stop := startDispatcher(t, DispatcherConfig{Outbox: ob, Notifier: fail, BackoffMin: time.Millisecond, Poll: 5 * time.Millisecond})
		waitFor(t, "the dead letter", func() bool { return !ob.row(1).DeadAt.IsZero() })
		stop()
		if n := calls.Load(); n != 1 {
			t.Errorf("a row past retry_for was tried %d times, want once more", n)
		}
		if len(ob.retryMarks()) != 0 || counterValue(d, "dead") != 1 {
			t.Errorf("retries %v, dead counter %d; want none and 1", ob.retryMarks(), counterValue(d, "dead"))
		}
	})

	t.Run("row expires while retried", func(t *testing.T) {
		calls.Store(0)
		ob := newDispatchTestOutbox(dispatchTestRows(1, time.Now())...)
		_, stop := startDispatcher(t, DispatcherConfig{
			Outbox: ob, Notifier: fail, RetryFor: 60 * time.Millisecond,
			BackoffMin: 5 * time.Millisecond, BackoffMax: 10 * time.Millisecond, Poll: 5 * time.Millisecond,
		})
		waitFor(t, "the dead letter", func() bool { return !ob.row(1).DeadAt.IsZero() })
		stop()
		row := ob.row(1)
		if n := calls.Load(); n < 2 || int64(row.Attempts) != n {
			t.Errorf("%d sends and %d recorded attempts before the dead letter; want several, all recorded", n, row.Attempts)
		}
		if age := row.DeadAt.Sub(row.CreatedAt); age < 60*time.Millisecond {
			t.Errorf("dead %s after creation, before retry_for (60ms)", age)
		}
	})
}

func TestDispatchHonoursRetryAfter(t *testing.T) {
	t0 := time.Date(2025, 5, 1, 10, 0, 0, 0, time.UTC)
	now := func() time.Time { return t0 }
	cases := []struct {
		name     string
		after    time.Duration
		min, max time.Duration
		lo, hi   time.Duration
	}{
		{"longer than backoff", 3 * time.Second, time.Millisecond, time.Minute, 3 * time.Second, 3 * time.Second},
		{"capped at backoff max", time.Hour, time.Millisecond, 10 * time.Second, 10 * time.Second, 10 * time.Second},
		{"shorter than backoff", time.Millisecond, 5 * time.Second, time.Minute, 4 * time.Second, 6 * time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ob := newDispatchTestOutbox(dispatchTestRows(1, t0)...)
			n := &dispatchTestNotifier{name: "hook", fn: func(context.Context, store.Delivery) error {
				return RetryAfter(errors.New("429 Too Many Requests"), c.after)
			}}
			_, stop := startDispatcher(t, DispatcherConfig{Outbox: ob, Notifier: n, Now: now,
				BackoffMin: c.min, BackoffMax: c.max, Poll: 5 * time.Millisecond})
			waitFor(t, "the retry", func() bool { return len(ob.retryMarks()) > 0 })
			stop()
			m := ob.retryMarks()
			if len(m) != 1 {
				t.Fatalf("%d retries with the clock standing still, want 1: %+v", len(m), m)
			}
			if wait := m[0].next.Sub(t0); wait < c.lo || wait > c.hi {
				t.Errorf("next attempt %s after the failure, want within [%s, %s]", wait, c.lo, c.hi)
			}
		})
	}

	t.Run("end to end", func(t *testing.T) {
		rc := newWebhookTestReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
			if n == 0 {
				w.Header().Set("Retry-After", "1")
				http.Error(w, "slow down", http.StatusTooManyRequests)
			}
		})
		hook := newTestWebhook(t, WebhookConfig{URL: rc.srv.URL})
		ob := newDispatchTestOutbox(dispatchTestRows(1, time.Now())...)
		_, stop := startDispatcher(t, DispatcherConfig{Outbox: ob, Notifier: hook,
			BackoffMin: time.Millisecond, BackoffMax: time.Minute, Poll: 10 * time.Millisecond})
		waitFor(t, "the delivery", func() bool { return !ob.row(1).DeliveredAt.IsZero() })
		stop()
		reqs := rc.requests()
		if len(reqs) != 2 {
			t.Fatalf("receiver saw %d requests, want 2", len(reqs))
		}
		if gap := reqs[1].at.Sub(reqs[0].at); gap < time.Second {
			t.Errorf("second attempt %s after a Retry-After: 1 answer, want at least 1s", gap)
		}
	})
}

func TestDispatchNeverSendsOneRowTwiceAtOnce(t *testing.T) {
	const rows, conc = 24, 4
	var (
		mu       sync.Mutex
		inflight = map[int64]int{}
		sent     = map[int64]int{}
		total    int
		maxTotal int
		doubled  []int64
	)
	n := &dispatchTestNotifier{name: "hook", fn: func(ctx context.Context, d store.Delivery) error {
		mu.Lock()
		inflight[d.ID]++
		total++
		if inflight[d.ID] > 1 {
			doubled = append(doubled, d.ID)
		}
		maxTotal = max(maxTotal, total)
		sent[d.ID]++
		first := sent[d.ID] == 1
		mu.Unlock()
		time.Sleep(3 * time.Millisecond)
		mu.Lock()
		inflight[d.ID]--
		total--
		mu.Unlock()
		if first && d.ID%2 == 0 {
			return errors.New("flaky")
		}
		return nil
	}}
	ob := newDispatchTestOutbox(dispatchTestRows(rows, time.Now())...)
	d, stop := startDispatcher(t, DispatcherConfig{Outbox: ob, Notifier: n, Concurrency: conc,
		BackoffMin: time.Millisecond, BackoffMax: 2 * time.Millisecond, Poll: 5 * time.Millisecond})
	// Wake the loop again and again so it keeps seeing in-flight rows as
	// due in the outbox.
	kicking := make(chan struct{})
	var kwg sync.WaitGroup
	kwg.Add(1)
	go func() {
		defer kwg.Done()
		for {
			select {
			case <-kicking:
				return
			default:
				d.Kick()
				time.Sleep(50 * time.Microsecond)
			}
		}
	}()
	waitFor(t, "every delivery", func() bool {
		for i := int64(1); i <= rows; i++ {
			if ob.row(i).DeliveredAt.IsZero() {
				return false
			}
		}
		return true
	})
	close(kicking)
	kwg.Wait()
	stop()

	mu.Lock()
	defer mu.Unlock()
	if len(doubled) > 0 {
		t.Errorf("rows sent twice at once: %v", doubled)
	}
	if maxTotal > conc {
		t.Errorf("%d sends at once, want at most Concurrency=%d", maxTotal, conc)
	}
	if maxTotal < 2 {
		t.Errorf("never more than %d send at once with Concurrency=%d", maxTotal, conc)
	}
	for i := int64(1); i <= rows; i++ {
		want := 1
		if i%2 == 0 {
			want = 2
		}
		if sent[i] != want {
			t.Errorf("row %d sent %d times, want %d", i, sent[i], want)
		}
	}
}

func TestDispatchRunStopsCleanlyAndRestartResends(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	var started atomic.Int64
	block := &dispatchTestNotifier{name: "hook", fn: func(ctx context.Context, d store.Delivery) error {
		started.Add(1)
		<-ctx.Done()
		return ctx.Err()
	}}
	ob := newDispatchTestOutbox(dispatchTestRows(10, time.Now())...)
	d, err := NewDispatcher(DispatcherConfig{Outbox: ob, Notifier: block, Concurrency: 4, Poll: 5 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ret := make(chan error, 1)
	go func() { ret <- d.Run(ctx) }()
	waitFor(t, "four sends in flight", func() bool { return started.Load() == 4 })
	if err := d.Run(ctx); err == nil {
		t.Errorf("a second Run of the same dispatcher was allowed")
	}
	cancel()
	select {
	case err := <-ret:
		if err != nil {
			t.Errorf("Run returned %v after cancel, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return within 5s of cancel")
	}
	if n := started.Load(); n != 4 {
		t.Errorf("%d sends started, want 4 (Concurrency)", n)
	}
	for i := int64(1); i <= 10; i++ {
		if r := ob.row(i); r.Attempts != 0 || !pendingRow(&r) {
			t.Errorf("row %d after shutdown: %d attempts, delivered %v, dead %v; want untouched and pending", i, r.Attempts, r.DeliveredAt, r.DeadAt)
		}
	}

	// After a "restart" every row goes out, interrupted ones included.
	var mu sync.Mutex
	keys := map[string]int{}
	ok := &dispatchTestNotifier{name: "hook", fn: func(_ context.Context, d store.Delivery) error {
		mu.Lock()
		keys[d.IdempotencyKey]++
		mu.Unlock()
		return nil
	}}
	_, stop := startDispatcher(t, DispatcherConfig{Outbox: ob, Notifier: ok, Poll: 5 * time.Millisecond})
	waitFor(t, "every delivery after the restart", func() bool {
		for i := int64(1); i <= 10; i++ {
			if ob.row(i).DeliveredAt.IsZero() {
				return false
			}
		}
		return true
	})
	stop()
	mu.Lock()
	defer mu.Unlock()
	if len(keys) != 10 {
		t.Errorf("after the restart %d distinct rows went out, want 10", len(keys))
	}
}

func TestDispatchHoldsRowWhoseOutcomeCannotBeRecorded(t *testing.T) {
	var calls atomic.Int64
	n := &dispatchTestNotifier{name: "hook", fn: func(context.Context, store.Delivery) error {
		calls.Add(1)
		return nil
	}}
	ob := newDispatchTestOutbox(dispatchTestRows(1, time.Now())...)
	ob.failMark.Store(true)
	_, stop := startDispatcher(t, DispatcherConfig{Outbox: ob, Notifier: n,
		BackoffMin: 100 * time.Millisecond, BackoffMax: time.Second, Poll: time.Millisecond})
	waitFor(t, "the first send", func() bool { return calls.Load() > 0 })
	time.Sleep(250 * time.Millisecond)
	stop()
	if c := calls.Load(); c > 5 {
		t.Errorf("a row whose delivery could not be recorded was sent %d times in 250ms: a hot loop", c)
	}
}

func TestDispatchLogsHideSecrets(t *testing.T) {
	const (
		secret = "hmac-secret-123"
		token  = "urltoken456"
	)
	rc := newWebhookTestReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 0 {
			http.Error(w, "oops", http.StatusInternalServerError)
			return
		}
		http.Error(w, "gone", http.StatusGone)
	})
	hook := newTestWebhook(t, WebhookConfig{URL: rc.srv.URL + "/hook/" + token + "?key=" + token, Secret: secret})
	var logs lockedBuffer
	rows := dispatchTestRows(1, time.Now())
	rows[0].Payload = []byte(`{"kind":"raised","note":"payload-marker"}`)
	ob := newDispatchTestOutbox(rows...)
	_, stop := startDispatcher(t, DispatcherConfig{Outbox: ob, Notifier: hook,
		Logger:     slog.New(slog.NewTextHandler(&logs, nil)),
		BackoffMin: time.Millisecond, BackoffMax: 2 * time.Millisecond, Poll: 5 * time.Millisecond})
	waitFor(t, "the dead letter", func() bool { return !ob.row(1).DeadAt.IsZero() })
	stop()
	out := logs.String()
	if strings.Count(out, "\n") != 2 {
		t.Errorf("want one log line for the failure and one for the dead letter, got:\n%s", out)
	}
	for _, want := range []string{"500", "410", "dead-lettered", "channel=hook", "delivery=1"} {
		if !strings.Contains(out, want) {
			t.Errorf("logs lack %q:\n%s", want, out)
		}
	}
	for _, bad := range []string{secret, token, "payload-marker"} {
		if strings.Contains(out, bad) || strings.Contains(ob.row(1).LastError, bad) {
			t.Errorf("logs or the stored reason carry %q:\n%s\n%s", bad, out, ob.row(1).LastError)
		}
	}
}

// dispatchTestWatchedOutbox signals each DueDeliveries call.
type dispatchTestWatchedOutbox struct {
	Outbox
	polled chan struct{}
}

func (o *dispatchTestWatchedOutbox) DueDeliveries(ctx context.Context, channel string, now time.Time, limit int) ([]store.Delivery, error) {
	rows, err := o.Outbox.DueDeliveries(ctx, channel, now, limit)
	select {
	case o.polled <- struct{}{}:
	default:
	}
	return rows, err
}

func TestDispatchWithStore(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "flowwatch.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var _ Outbox = st // the store is the Outbox

	var mu sync.Mutex
	seen := map[string]int{}
	rc := newWebhookTestReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		var ch event.AlertChange
		if err := json.NewDecoder(r.Body).Decode(&ch); err != nil {
			http.Error(w, "bad json: "+err.Error(), http.StatusBadRequest)
			return
		}
		key := r.Header.Get("Idempotency-Key")
		mu.Lock()
		seen[key]++
		k := seen[key]
		mu.Unlock()
		switch {
		case ch.Alert.Title == "refused":
			http.Error(w, "no such post", http.StatusNotFound)
		case k == 1:
			http.Error(w, "try later", http.StatusServiceUnavailable)
		}
	})
	hook := newTestWebhook(t, WebhookConfig{Name: "ops", URL: rc.srv.URL, Secret: "k"})
	watched := &dispatchTestWatchedOutbox{Outbox: st, polled: make(chan struct{}, 1)}
	d, stop := startDispatcher(t, DispatcherConfig{Outbox: watched, Notifier: hook,
		BackoffMin: 10 * time.Millisecond, BackoffMax: 20 * time.Millisecond,
		Poll: time.Minute}) // only a Kick or a due retry wakes it
	select {
	case <-watched.polled:
	case <-time.After(10 * time.Second):
		t.Fatal("the dispatcher never looked at the outbox")
	}

	ctx := context.Background()
	now := time.Now().UTC()
	save := func(key, title string) event.Alert {
		t.Helper()
		a, err := st.SaveAlertChange(ctx, event.AlertChange{
			Kind: event.AlertRaised, At: now, By: "system",
			Alert: event.Alert{Key: key, Rule: event.RuleCapacity, Target: "area:" + event.Target(title), Title: title,
				Level: event.LevelRed, State: event.AlertOpen, OpenedAt: now, UpdatedAt: now},
		}, []string{"ops", "sms"})
		if err != nil {
			t.Fatalf("SaveAlertChange: %v", err)
		}
		return a
	}
	good := save("capacity|area:plaza", "plaza")
	bad := save("capacity|area:refused", "refused")
	d.Kick()

	waitFor(t, "both of ops' deliveries to settle", func() bool {
		n, err := st.PendingDeliveries(ctx, "ops")
		return err == nil && n == 0
	})
	stop()

	goodKey := fmt.Sprintf("flowwatch-alert-%d-1", good.ID)
	badKey := fmt.Sprintf("flowwatch-alert-%d-1", bad.ID)
	var goodReqs, badReqs int
	for _, r := range rc.requests() {
		switch r.header.Get("Idempotency-Key") {
		case goodKey:
			goodReqs++
			var ch event.AlertChange
			if err := json.Unmarshal(r.body, &ch); err != nil || ch.Alert.ID != good.ID {
				t.Errorf("payload %s does not carry alert %d: %v", r.body, good.ID, err)
			}
		case badKey:
			badReqs++
		default:
			t.Errorf("unexpected Idempotency-Key %q", r.header.Get("Idempotency-Key"))
		}
		if !VerifySignature("k", r.header.Get("X-Flowwatch-Timestamp"), r.body, r.header.Get("X-Flowwatch-Signature")) {
			t.Errorf("bad signature on a request")
		}
	}
	if goodReqs != 2 || badReqs != 1 {
		t.Errorf("requests: %d for the good alert (want 2: 503 then 200), %d for the refused one (want 1)", goodReqs, badReqs)
	}
	dead, err := st.DeadDeliveries(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(dead) != 1 || dead[0].AlertID != bad.ID || dead[0].Channel != "ops" || !strings.Contains(dead[0].LastError, "404") {
		t.Errorf("dead letters %+v, want ops' delivery of alert %d with the 404", dead, bad.ID)
	}
	if _, ok, err := st.NextDeliveryAt(ctx, "ops"); err != nil || ok {
		t.Errorf("ops still has a pending delivery (ok=%v, err=%v)", ok, err)
	}
	// Another channel's rows are not this dispatcher's business.
	if n, err := st.PendingDeliveries(ctx, "sms"); err != nil || n != 2 {
		t.Errorf("sms has %d pending deliveries (err %v), want 2 untouched", n, err)
	}
	if counterValue(d, "delivered") != 1 || counterValue(d, "retry") != 1 || counterValue(d, "dead") != 1 {
		t.Errorf("counters delivered=%d retry=%d dead=%d, want 1, 1, 1",
			counterValue(d, "delivered"), counterValue(d, "retry"), counterValue(d, "dead"))
	}
}
