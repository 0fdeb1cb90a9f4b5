package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"flowwatch/internal/event"
)

// raised returns the change that raises a new open capacity alert on
// target at at.
func raised(target event.Target, at time.Time) event.AlertChange {
	return event.AlertChange{
		Kind: event.AlertRaised,
		At:   at,
		By:   "system",
		Alert: event.Alert{
			Key:       event.RuleCapacity + "|" + string(target),
			Rule:      event.RuleCapacity,
			Target:    target,
			Title:     "广场 Plaza",
			Level:     event.LevelYellow,
			State:     event.AlertOpen,
			Count:     812,
			Capacity:  1000,
			Ratio:     0.812,
			Message:   "广场人数已达容量的81%",
			MessageEN: "Plaza is at 81% of capacity",
			Advice:    []event.Diversion{{Area: "garden", Title: "Garden", Ratio: 0.2, Room: 400, Route: "north gate", WalkMinutes: 6}},
			OpenedAt:  at,
			UpdatedAt: at,
			Posts:     []string{"plaza"},
		},
	}
}

// follow returns the change of kind to a at at, with a's state set.
func follow(a event.Alert, kind event.AlertChangeKind, state event.AlertState, at time.Time, by string) event.AlertChange {
	a.State = state
	a.UpdatedAt = at
	switch state {
	case event.AlertAcknowledged:
		a.AckedAt, a.AckedBy, a.AckNote = at, by, "on my way"
	case event.AlertResolved:
		a.ResolvedAt, a.ResolvedBy = at, by
	}
	return event.AlertChange{Kind: kind, At: at, By: by, Note: a.AckNote, Alert: a}
}

// outboxRow is what the tests read back of one outbox row.
type outboxRow struct {
	AlertID  int64
	Seq      int
	Channel  string
	Key      string
	Attempts int
	Created  int64
	Next     int64
	Payload  []byte
}

// outboxRows returns the outbox rows of an alert by id.
func outboxRows(t *testing.T, s *Store, alertID int64) []outboxRow {
	t.Helper()
	rows, err := s.db.Query(`SELECT alert_id, seq, channel, idempotency_key, attempts, created_at, next_attempt_at, payload
FROM outbox WHERE alert_id = ? ORDER BY id`, alertID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []outboxRow
	for rows.Next() {
		var r outboxRow
		if err := rows.Scan(&r.AlertID, &r.Seq, &r.Channel, &r.Key, &r.Attempts, &r.Created, &r.Next, &r.Payload); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestSaveAlertChangeInsertUpdateHistoryAndOutbox(t *testing.T) {
	s, path := openTemp(t)
	ctx := context.Background()
	cst := time.FixedZone("CST", 8*3600)
	t0 := time.Date(2025, 5, 1, 18, 0, 0, 250_000_000, cst)

	a, err := s.SaveAlertChange(ctx, raised("area:plaza", t0), []string{"webhook", "sms"})
	if err != nil {
		t.Fatal(err)
	}
	if a.ID <= 0 {
		t.Fatalf("new alert got id %d", a.ID)
	}
	if a.OpenedAt.Location() != time.UTC || !a.OpenedAt.Equal(t0) {
		t.Fatalf("opened at %s, want %s in UTC", a.OpenedAt, t0)
	}
	got, err := s.Alert(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, a) {
		t.Fatalf("stored alert\n%+v\nreturned\n%+v", got, a)
	}
	// The stored JSON carries the ID.
	var data []byte
	if err := s.db.QueryRow("SELECT data FROM alerts WHERE id = ?", a.ID).Scan(&data); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), fmt.Sprintf(`"id":%d,`, a.ID)) {
		t.Fatalf("stored JSON %s lacks the id %d", data, a.ID)
	}

	ob := outboxRows(t, s, a.ID)
	key1 := fmt.Sprintf("flowwatch-alert-%d-1", a.ID)
	if len(ob) != 2 || ob[0].Channel != "webhook" || ob[1].Channel != "sms" {
		t.Fatalf("outbox rows %+v, want webhook and sms", ob)
	}
	for _, r := range ob {
		if r.Seq != 1 || r.Key != key1 || r.Attempts != 0 || r.Next != t0.UnixMilli() || r.Created != t0.UnixMilli() {
			t.Fatalf("outbox row %+v, want seq 1, key %q, 0 attempts, due %d", r, key1, t0.UnixMilli())
		}
		var ch event.AlertChange
		if err := json.Unmarshal(r.Payload, &ch); err != nil {
			t.Fatal(err)
		}
		if ch.Kind != event.AlertRaised || ch.Alert.ID != a.ID || ch.Alert.Key != "capacity|area:plaza" || !ch.At.Equal(t0) {
			t.Fatalf("payload %s: want the raise of alert %d", r.Payload, a.ID)
		}
	}

	// Acknowledge: seq 2, one channel.
	t1 := t0.Add(90 * time.Second)
	acked, err := s.SaveAlertChange(ctx, follow(a, event.AlertAcked, event.AlertAcknowledged, t1, "guard-7"), []string{"webhook"})
	if err != nil {
		t.Fatal(err)
	}
	if acked.ID != a.ID || acked.State != event.AlertAcknowledged || acked.AckedBy != "guard-7" || !acked.AckedAt.Equal(t1) {
		t.Fatalf("acknowledged alert %+v", acked)
	}
	ob = outboxRows(t, s, a.ID)
	if len(ob) != 3 || ob[2].Seq != 2 || ob[2].Channel != "webhook" || ob[2].Key != fmt.Sprintf("flowwatch-alert-%d-2", a.ID) || ob[2].Next != t1.UnixMilli() {
		t.Fatalf("outbox after the acknowledgement: %+v", ob)
	}

	// Resolve, telling no channel: seq 3, no delivery.
	t2 := t1.Add(10 * time.Minute)
	if _, err := s.SaveAlertChange(ctx, follow(acked, event.AlertCleared, event.AlertResolved, t2, "system"), nil); err != nil {
		t.Fatal(err)
	}
	if n := len(outboxRows(t, s, a.ID)); n != 3 {
		t.Fatalf("%d outbox rows after a change for no channel, want 3", n)
	}
	var state string
	var resolvedAt int64
	if err := s.db.QueryRow("SELECT state, resolved_at FROM alerts WHERE id = ?", a.ID).Scan(&state, &resolvedAt); err != nil {
		t.Fatal(err)
	}
	if state != "resolved" || resolvedAt != t2.UnixMilli() {
		t.Fatalf("row state %q resolved at %d, want resolved at %d", state, resolvedAt, t2.UnixMilli())
	}
	s.Close()

	// Everything is in the file.
	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	changes, err := s.AlertChanges(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	kinds := []event.AlertChangeKind{event.AlertRaised, event.AlertAcked, event.AlertCleared}
	if len(changes) != len(kinds) {
		t.Fatalf("%d changes, want %d", len(changes), len(kinds))
	}
	for i, ch := range changes {
		if ch.Kind != kinds[i] || ch.Alert.ID != a.ID || ch.At.Location() != time.UTC {
			t.Fatalf("change %d: %+v, want %s of alert %d in UTC", i, ch, kinds[i], a.ID)
		}
	}
	if changes[1].By != "guard-7" || changes[1].Note != "on my way" {
		t.Fatalf("acknowledgement by %q with note %q", changes[1].By, changes[1].Note)
	}
	if open, err := s.OpenAlerts(ctx); err != nil || len(open) != 0 {
		t.Fatalf("open alerts after resolving: %+v, %v; want none", open, err)
	}
	final, err := s.Alert(ctx, a.ID)
	if err != nil || final.State != event.AlertResolved || !final.ResolvedAt.Equal(t2) || final.AckedBy != "guard-7" {
		t.Fatalf("final alert %+v, %v", final, err)
	}

	// Further changes continue the sequence after reopening.
	noted := follow(final, event.AlertNoted, event.AlertResolved, t2.Add(time.Minute), "ops")
	if _, err := s.SaveAlertChange(ctx, noted, []string{"webhook"}); err != nil {
		t.Fatal(err)
	}
	ob = outboxRows(t, s, a.ID)
	if last := ob[len(ob)-1]; last.Seq != 4 || last.Key != fmt.Sprintf("flowwatch-alert-%d-4", a.ID) {
		t.Fatalf("delivery of the fourth change: %+v", last)
	}
}

func TestSaveAlertChangeRefusesBadChanges(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	t0 := time.Date(2025, 5, 1, 10, 0, 0, 0, time.UTC)
	stored, err := s.SaveAlertChange(ctx, raised("area:plaza", t0), nil)
	if err != nil {
		t.Fatal(err)
	}
	bad := map[string]func(*event.AlertChange){
		"no kind":          func(c *event.AlertChange) { c.Kind = "" },
		"no time":          func(c *event.AlertChange) { c.At = time.Time{} },
		"no key":           func(c *event.AlertChange) { c.Alert.Key = "" },
		"no rule":          func(c *event.AlertChange) { c.Alert.Rule = "" },
		"no target":        func(c *event.AlertChange) { c.Alert.Target = "" },
		"unknown state":    func(c *event.AlertChange) { c.Alert.State = "closed" },
		"no opened_at":     func(c *event.AlertChange) { c.Alert.OpenedAt = time.Time{} },
		"no updated_at":    func(c *event.AlertChange) { c.Alert.UpdatedAt = time.Time{} },
		"resolved, no at":  func(c *event.AlertChange) { c.Alert.Key = "k2"; c.Alert.State = event.AlertResolved },
		"missing alert":    func(c *event.AlertChange) { c.Alert.ID = stored.ID + 100 },
		"changed key":      func(c *event.AlertChange) { c.Alert.ID = stored.ID; c.Alert.Key = "capacity|area:hall" },
		"negative id":      func(c *event.AlertChange) { c.Alert.ID = -1 },
		"empty channel":    nil,
		"repeated channel": nil,
	}
	for name, edit := range bad {
		ch := raised("area:elsewhere", t0.Add(time.Minute))
		channels := []string{"webhook"}
		switch name {
		case "empty channel":
			channels = []string{"webhook", ""}
		case "repeated channel":
			channels = []string{"webhook", "sms", "webhook"}
		default:
			edit(&ch)
		}
		_, err := s.SaveAlertChange(ctx, ch, channels)
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if name == "missing alert" && !errors.Is(err, ErrNotFound) {
			t.Errorf("missing alert: got %v, want ErrNotFound", err)
		}
	}
	if n := countRows(t, s, "alerts", ""); n != 1 {
		t.Fatalf("%d alerts after refused changes, want 1", n)
	}
	if n := countRows(t, s, "alert_changes", ""); n != 1 {
		t.Fatalf("%d changes after refused changes, want 1", n)
	}
	if n := countRows(t, s, "outbox", ""); n != 0 {
		t.Fatalf("%d deliveries after refused changes, want 0", n)
	}
	got, err := s.Alert(ctx, stored.ID)
	if err != nil || !reflect.DeepEqual(got, stored) {
		t.Fatalf("alert after refused changes: %+v, %v; want %+v", got, err, stored)
	}
}

func TestSaveAlertChangeOneUnresolvedAlertPerKey(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	t0 := time.Date(2025, 5, 1, 10, 0, 0, 0, time.UTC)
	first, err := s.SaveAlertChange(ctx, raised("area:plaza", t0), []string{"webhook"})
	if err != nil {
		t.Fatal(err)
	}
	// A second open alert with the key is refused, and leaves no trace.
	for _, state := range []event.AlertState{event.AlertOpen, event.AlertAcknowledged} {
		dup := raised("area:plaza", t0.Add(time.Minute))
		dup.Alert.State = state
		_, err := s.SaveAlertChange(ctx, dup, []string{"webhook", "sms"})
		if !errors.Is(err, ErrDuplicateOpen) {
			t.Fatalf("second %s alert with the key: got %v, want ErrDuplicateOpen", state, err)
		}
		if !strings.Contains(err.Error(), fmt.Sprintf("alert %d is open", first.ID)) {
			t.Fatalf("error %q does not name the alert holding the key", err)
		}
	}
	if n, err := s.CountAlerts(ctx); err != nil || n != 1 {
		t.Fatalf("%d alerts, %v; want 1", n, err)
	}
	if n := countRows(t, s, "alert_changes", ""); n != 1 {
		t.Fatalf("%d changes, want 1", n)
	}
	if n := countRows(t, s, "outbox", ""); n != 1 {
		t.Fatalf("%d deliveries, want 1", n)
	}
	// The database itself refuses a second unresolved row with the key.
	_, err = s.db.Exec(`INSERT INTO alerts (key, rule, target, level, state, opened_at, updated_at, data)
VALUES ('capacity|area:plaza', 'capacity', 'area:plaza', 'red', 'acknowledged', 0, 0, x'')`)
	if err == nil || !errors.Is(duplicateOpen(err), ErrDuplicateOpen) {
		t.Fatalf("raw insert of a second unresolved alert: got %v, want a unique constraint error", err)
	}

	// Once resolved, the key is free again.
	if _, err := s.SaveAlertChange(ctx, follow(first, event.AlertCleared, event.AlertResolved, t0.Add(5*time.Minute), "system"), nil); err != nil {
		t.Fatal(err)
	}
	second, err := s.SaveAlertChange(ctx, raised("area:plaza", t0.Add(6*time.Minute)), []string{"webhook"})
	if err != nil {
		t.Fatalf("new alert after the old one was resolved: %v", err)
	}
	if second.ID == first.ID {
		t.Fatalf("new alert reused id %d", first.ID)
	}
	open, err := s.OpenAlerts(ctx)
	if err != nil || len(open) != 1 || open[0].ID != second.ID {
		t.Fatalf("open alerts %+v, %v; want only alert %d", open, err, second.ID)
	}
	// Reopening the old alert would make two: refused, and it stays
	// resolved.
	old, err := s.Alert(ctx, first.ID)
	if err != nil {
		t.Fatal(err)
	}
	reopen := follow(old, event.AlertRaised, event.AlertOpen, t0.Add(7*time.Minute), "ops")
	reopen.Alert.ResolvedAt, reopen.Alert.ResolvedBy = time.Time{}, ""
	if _, err := s.SaveAlertChange(ctx, reopen, nil); !errors.Is(err, ErrDuplicateOpen) {
		t.Fatalf("reopening alert %d: got %v, want ErrDuplicateOpen", first.ID, err)
	}
	if got, err := s.Alert(ctx, first.ID); err != nil || got.State != event.AlertResolved {
		t.Fatalf("alert %d after the refused reopening: %+v, %v", first.ID, got, err)
	}
	if changes, err := s.AlertChanges(ctx, first.ID); err != nil || len(changes) != 2 {
		t.Fatalf("alert %d has %d changes, %v; want 2", first.ID, len(changes), err)
	}
}

func TestSaveAlertChangeFailedTransactionLeavesNothing(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	t0 := time.Date(2025, 5, 1, 10, 0, 0, 0, time.UTC)
	// A channel whose outbox row the database refuses, after the alert and
	// its change were written in the same transaction.
	if _, err := s.db.Exec(`CREATE TRIGGER refuse_broken BEFORE INSERT ON outbox WHEN NEW.channel = 'broken'
BEGIN SELECT RAISE(ABORT, 'broken channel'); END`); err != nil {
		t.Fatal(err)
	}
	_, err := s.SaveAlertChange(ctx, raised("area:plaza", t0), []string{"webhook", "broken"})
	if err == nil || !strings.Contains(err.Error(), "broken channel") {
		t.Fatalf("saving with a refused delivery: got %v", err)
	}
	for _, table := range []string{"alerts", "alert_changes", "outbox"} {
		if n := countRows(t, s, table, ""); n != 0 {
			t.Fatalf("%d rows in %s after the failed insert, want 0", n, table)
		}
	}
	// The key is not held by a half-written alert.
	a, err := s.SaveAlertChange(ctx, raised("area:plaza", t0), []string{"webhook"})
	if err != nil {
		t.Fatal(err)
	}
	// A failed update leaves the alert, its history and the outbox as
	// they were.
	_, err = s.SaveAlertChange(ctx, follow(a, event.AlertAcked, event.AlertAcknowledged, t0.Add(time.Minute), "guard"), []string{"webhook", "broken"})
	if err == nil {
		t.Fatal("update with a refused delivery was accepted")
	}
	got, err := s.Alert(ctx, a.ID)
	if err != nil || !reflect.DeepEqual(got, a) {
		t.Fatalf("alert after the failed update: %+v, %v; want %+v", got, err, a)
	}
	if n := countRows(t, s, "alert_changes", ""); n != 1 {
		t.Fatalf("%d changes after the failed update, want 1", n)
	}
	if n := countRows(t, s, "outbox", ""); n != 1 {
		t.Fatalf("%d deliveries after the failed update, want 1", n)
	}
	if n := countRows(t, s, "alerts", "state = 'open'"); n != 1 {
		t.Fatalf("%d open alert rows after the failed update, want 1", n)
	}
}

func TestListAlertsFilters(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	t0 := time.Date(2025, 5, 1, 10, 0, 0, 0, time.UTC)
	// Alerts opened at 10:00, 10:01, … on alternating targets; every third
	// resolved, the one at 10:04 acknowledged.
	var ids []int64
	for i := range 6 {
		target := event.Target("area:a")
		if i%2 == 1 {
			target = "area:b"
		}
		ch := raised(target, t0.Add(time.Duration(i)*time.Minute))
		ch.Alert.Key = fmt.Sprintf("capacity|%s|%d", target, i)
		switch {
		case i%3 == 0:
			ch = follow(ch.Alert, event.AlertCleared, event.AlertResolved, ch.At.Add(time.Second), "system")
		case i == 4:
			ch = follow(ch.Alert, event.AlertAcked, event.AlertAcknowledged, ch.At.Add(time.Second), "guard")
		}
		a, err := s.SaveAlertChange(ctx, ch, nil)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, a.ID)
	}
	list := func(f AlertFilter) []int64 {
		t.Helper()
		as, err := s.ListAlerts(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		out := make([]int64, len(as))
		for i, a := range as {
			out[i] = a.ID
		}
		return out
	}
	pick := func(is ...int) []int64 {
		out := make([]int64, len(is))
		for i, j := range is {
			out[i] = ids[j]
		}
		return out
	}
	for name, c := range map[string]struct {
		f    AlertFilter
		want []int64
	}{
		"all, newest first": {AlertFilter{}, pick(5, 4, 3, 2, 1, 0)},
		"from 10:02":        {AlertFilter{From: t0.Add(2 * time.Minute)}, pick(5, 4, 3, 2)},
		"before 10:02":      {AlertFilter{To: t0.Add(2 * time.Minute)}, pick(1, 0)},
		"[10:01, 10:04)":    {AlertFilter{From: t0.Add(time.Minute), To: t0.Add(4 * time.Minute)}, pick(3, 2, 1)},
		"resolved":          {AlertFilter{States: []event.AlertState{event.AlertResolved}}, pick(3, 0)},
		"not resolved":      {AlertFilter{States: []event.AlertState{event.AlertOpen, event.AlertAcknowledged}}, pick(5, 4, 2, 1)},
		"target b":          {AlertFilter{Target: "area:b"}, pick(5, 3, 1)},
		"target b, open":    {AlertFilter{Target: "area:b", States: []event.AlertState{event.AlertOpen}}, pick(5, 1)},
		"limit 2":           {AlertFilter{Limit: 2}, pick(5, 4)},
		"huge limit":        {AlertFilter{Limit: 1 << 30}, pick(5, 4, 3, 2, 1, 0)},
		"no such target":    {AlertFilter{Target: "area:c"}, nil},
	} {
		if got := list(c.f); !reflect.DeepEqual(got, c.want) && !(len(got) == 0 && len(c.want) == 0) {
			t.Errorf("%s: ids %v, want %v", name, got, c.want)
		}
	}
	if _, err := s.ListAlerts(ctx, AlertFilter{Limit: -1}); err == nil {
		t.Error("a negative limit was accepted")
	}
	if _, err := s.ListAlerts(ctx, AlertFilter{States: []event.AlertState{"closed"}}); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("an unknown state: got %v, want an error naming it", err)
	}
	open, err := s.OpenAlerts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []int64
	for _, a := range open {
		got = append(got, a.ID)
	}
	if want := pick(1, 2, 4, 5); !reflect.DeepEqual(got, want) {
		t.Fatalf("open alerts %v, want %v oldest first", got, want)
	}
	if n, err := s.CountAlerts(ctx); err != nil || n != 6 {
		t.Fatalf("count alerts: %d, %v; want 6", n, err)
	}
	if _, err := s.Alert(ctx, 999); !errors.Is(err, ErrNotFound) {
		t.Fatalf("alert 999: got %v, want ErrNotFound", err)
	}
	if _, err := s.AlertChanges(ctx, 999); !errors.Is(err, ErrNotFound) {
		t.Fatalf("changes of alert 999: got %v, want ErrNotFound", err)
	}
}

func TestDeleteResolvedAlertsBefore(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	t0 := time.Date(2025, 5, 1, 10, 0, 0, 0, time.UTC)
	// save raises an alert on target at t0 and, unless resolvedAt is
	// zero, resolves it then; each change goes to the webhook.
	save := func(target event.Target, resolvedAt time.Time) event.Alert {
		t.Helper()
		a, err := s.SaveAlertChange(ctx, raised(target, t0), []string{"webhook"})
		if err != nil {
			t.Fatal(err)
		}
		if !resolvedAt.IsZero() {
			if a, err = s.SaveAlertChange(ctx, follow(a, event.AlertCleared, event.AlertResolved, resolvedAt, "system"), []string{"webhook"}); err != nil {
				t.Fatal(err)
			}
		}
		return a
	}
	delivered := save("area:delivered", t0.Add(time.Hour))
	dead := save("area:dead", t0.Add(time.Hour))
	pendingOne := save("area:pending", t0.Add(time.Hour))
	late := save("area:late", t0.Add(3*time.Hour))
	open := save("area:open", time.Time{})
	ds, err := s.DueDeliveries(ctx, "webhook", t0.Add(24*time.Hour), 100)
	if err != nil {
		t.Fatal(err)
	}
	var pendingDelivery int64
	for _, d := range ds {
		switch d.AlertID {
		case delivered.ID:
			err = s.MarkDelivered(ctx, d.ID, t0.Add(2*time.Hour))
		case dead.ID:
			err = s.MarkDead(ctx, d.ID, t0.Add(2*time.Hour), "HTTP 410")
		case pendingOne.ID:
			if d.Seq == 2 {
				pendingDelivery = d.ID
				continue
			}
			err = s.MarkDelivered(ctx, d.ID, t0.Add(2*time.Hour))
		default:
			err = s.MarkDelivered(ctx, d.ID, t0.Add(2*time.Hour))
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.DeleteResolvedAlertsBefore(ctx, t0.Add(2*time.Hour))
	if err != nil || n != 2 {
		t.Fatalf("delete alerts resolved before 12:00: %d, %v; want 2", n, err)
	}
	for _, a := range []event.Alert{delivered, dead} {
		if _, err := s.Alert(ctx, a.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("alert %d (%s) still there: %v", a.ID, a.Target, err)
		}
		if n := countRows(t, s, "alert_changes", "alert_id = ?", a.ID); n != 0 {
			t.Errorf("alert %d (%s) left %d changes", a.ID, a.Target, n)
		}
		if n := countRows(t, s, "outbox", "alert_id = ?", a.ID); n != 0 {
			t.Errorf("alert %d (%s) left %d deliveries", a.ID, a.Target, n)
		}
	}
	for _, a := range []event.Alert{pendingOne, late, open} {
		if _, err := s.Alert(ctx, a.ID); err != nil {
			t.Errorf("alert %d (%s) is gone: %v", a.ID, a.Target, err)
		}
		if n := countRows(t, s, "alert_changes", "alert_id = ?", a.ID); n == 0 {
			t.Errorf("alert %d (%s) lost its changes", a.ID, a.Target)
		}
		if n := countRows(t, s, "outbox", "alert_id = ?", a.ID); n == 0 {
			t.Errorf("alert %d (%s) lost its deliveries", a.ID, a.Target)
		}
	}
	// Once its last delivery is done, the alert with one pending goes;
	// an unresolved alert never does, however old.
	if err := s.MarkDelivered(ctx, pendingDelivery, t0.Add(3*time.Hour)); err != nil {
		t.Fatal(err)
	}
	n, err = s.DeleteResolvedAlertsBefore(ctx, t0.Add(2*time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("second pass: %d, %v; want 1", n, err)
	}
	n, err = s.DeleteResolvedAlertsBefore(ctx, t0.Add(1000*time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("far cut-off: %d, %v; want 1 (the late one)", n, err)
	}
	if left, err := s.CountAlerts(ctx); err != nil || left != 1 {
		t.Fatalf("%d alerts left, %v; want the open one", left, err)
	}
	if _, err := s.Alert(ctx, open.ID); err != nil {
		t.Fatalf("the open alert: %v", err)
	}
}
