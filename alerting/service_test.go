package alerting

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"flowwatch/internal/event"
	"flowwatch/internal/store"
)

// runService starts a service on a store file with a webhook to hook (when
// not empty) and returns it with a stop function.
func runService(t *testing.T, dbPath, hook string, now func() time.Time, logs io.Writer) (*Service, *store.Store, func()) {
	t.Helper()
	rules := noTrend
	if hook != "" {
		rules += "notify:\n  webhooks:\n    - {name: ops, url: " + hook + ", secret: s3cret, min_level: orange}\n"
	}
	cfg := testConfig(t, rules)
	db, err := store.Open(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	var notifiers []Notifier
	if hook != "" {
		w, err := NewWebhook(WebhookConfig{Name: "ops", URL: hook, Secret: "s3cret", AllowLoopback: true})
		if err != nil {
			t.Fatal(err)
		}
		notifiers = append(notifiers, w)
	}
	if logs == nil {
		logs = io.Discard
	}
	svc, err := NewService(context.Background(), ServiceConfig{Config: cfg, Store: db, Notifiers: notifiers,
		Logger: slog.New(slog.NewTextHandler(logs, nil)), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = svc.Run(ctx) }()
	return svc, db, func() { cancel(); <-done; db.Close() }
}

func TestServiceStoresBeforeDeliveringAndRestores(t *testing.T) {
	var mu sync.Mutex
	var got []event.AlertChange
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ch event.AlertChange
		if err := json.NewDecoder(r.Body).Decode(&ch); err != nil {
			t.Errorf("webhook payload: %v", err)
		}
		mu.Lock()
		got = append(got, ch)
		mu.Unlock()
	}))
	defer hook.Close()
	path := filepath.Join(t.TempDir(), "flowwatch.db")
	svc, db, stop := runService(t, path, hook.URL, nil, nil)
	sub := svc.Subscribe(16)

	// the yard at 95% (orange), then the hall at 85% (yellow: below the
	// webhook's min_level, so only consoles get it)
	start := time.Now().Add(-40 * time.Second) // counts of the recent past: the alerts are due at once
	for s := range 15 {
		at := start.Add(time.Duration(s) * time.Second)
		svc.Observe(event.CountSample{Time: at, Camera: "cam-b", Zone: "yard", Count: 190})
		svc.Observe(event.CountSample{Time: at, Camera: "cam-a", Zone: "gate", Count: 0})
		svc.Observe(event.CountSample{Time: at, Camera: "cam-a", Zone: "hall", Count: 85})
	}
	var live []event.AlertChange
	for len(live) < 2 {
		select {
		case ch := <-sub.C:
			live = append(live, ch)
		case <-time.After(10 * time.Second):
			t.Fatalf("live feed got %d changes, want 2", len(live))
		}
	}
	for _, ch := range live {
		if ch.Alert.ID == 0 || ch.Kind != event.AlertRaised {
			t.Fatalf("live change %+v: want a raised alert with its store ID", ch)
		}
		stored, err := db.Alert(context.Background(), ch.Alert.ID)
		if err != nil || stored.Key != ch.Alert.Key {
			t.Fatalf("alert %d pushed live but not stored: %v", ch.Alert.ID, err)
		}
	}
	waitFor(t, "the webhook", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) >= 1 })
	time.Sleep(200 * time.Millisecond)
	mu.Lock()
	if len(got) != 1 || got[0].Alert.Target != event.AreaTarget("yard") || got[0].Alert.Level != event.LevelOrange {
		t.Fatalf("webhook got %+v, want only the orange yard alert", got)
	}
	mu.Unlock()

	// an operator acknowledges; it is stored with who and the note
	ack, err := svc.Acknowledge(context.Background(), live[0].Alert.ID, "op1", "sending two guards")
	if err != nil || ack.AckedBy != "op1" {
		t.Fatalf("acknowledge: %+v %v", ack, err)
	}
	chs, err := db.AlertChanges(context.Background(), ack.ID)
	if err != nil || len(chs) != 2 || chs[1].Kind != event.AlertAcked || chs[1].Note != "sending two guards" {
		t.Fatalf("stored changes %+v %v", chs, err)
	}
	stop()

	// after a restart both alerts are still open and none is raised again
	svc2, _, stop2 := runService(t, path, "", nil, nil)
	defer stop2()
	if open := svc2.Engine().OpenAlerts(); len(open) != 2 {
		t.Fatalf("%d alerts restored, want 2", len(open))
	}
	sub2 := svc2.Subscribe(16)
	for s := range 15 {
		at := start.Add(time.Duration(20+s) * time.Second)
		svc2.Observe(event.CountSample{Time: at, Camera: "cam-b", Zone: "yard", Count: 190})
	}
	select {
	case ch := <-sub2.C:
		if ch.Kind == event.AlertRaised {
			t.Fatalf("restored alert raised again: %+v", ch.Alert)
		}
	case <-time.After(500 * time.Millisecond):
	}
}

func TestServiceKeepsHistoryAndDeletesWhatIsDue(t *testing.T) {
	logs := &lockedBuffer{}
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	path := filepath.Join(t.TempDir(), "flowwatch.db")
	svc, db, stop := runService(t, path, "", clock, logs)
	defer stop()
	ctx := context.Background()
	for s := range 3 {
		svc.Observe(event.CountSample{Time: now.Add(time.Duration(s) * time.Second), Camera: "cam-b", Zone: "yard", Count: float64(10 + s)})
	}
	var pts []event.CountPoint
	waitFor(t, "the yard's count history", func() bool {
		var err error
		pts, err = db.Counts(ctx, event.ZoneTarget("cam-b", "yard"), now.Add(-time.Minute), now.Add(time.Minute), time.Second)
		return err == nil && len(pts) == 3
	})
	if pts[2].Count != 12 {
		t.Fatalf("history %+v", pts)
	}
	// eight days on, the per-second counts are past their 7-day retention
	mu.Lock()
	now = now.Add(8 * 24 * time.Hour)
	mu.Unlock()
	svc.RunRetention(ctx)
	pts, err := db.Counts(ctx, event.ZoneTarget("cam-b", "yard"), time.Time{}, now, time.Second)
	if err != nil || len(pts) != 0 {
		t.Fatalf("after retention: %d points, %v", len(pts), err)
	}
	if min, err := db.Counts(ctx, event.ZoneTarget("cam-b", "yard"), time.Time{}, now, time.Minute); err != nil || len(min) == 0 {
		t.Fatalf("minute rollups (kept a year) gone: %v", err)
	}
	text := logs.String()
	if !strings.Contains(text, "retention deleted") || !strings.Contains(text, "per-second counts") {
		t.Fatalf("retention did not log what it deleted:\n%s", text)
	}
}

func TestSlowSubscriberIsCutOff(t *testing.T) {
	svc, _, stop := runService(t, filepath.Join(t.TempDir(), "flowwatch.db"), "", nil, nil)
	defer stop()
	slow := svc.Subscribe(1)
	fast := svc.Subscribe(64)
	start := time.Now()
	for s := range 15 {
		at := start.Add(time.Duration(s) * time.Second)
		for _, z := range []string{"yard", "lawn"} {
			svc.Observe(event.CountSample{Time: at, Camera: "cam-b", Zone: z, Count: 300})
		}
	}
	for n := 0; n < 2; n++ {
		select {
		case <-fast.C:
		case <-time.After(10 * time.Second):
			t.Fatal("fast subscriber starved")
		}
	}
	waitFor(t, "the slow subscriber to be cut off", slow.Dropped)
}
