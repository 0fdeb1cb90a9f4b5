package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"flowwatch/internal/event"
)

// deliveryIDs returns the ids of ds.
func deliveryIDs(ds []Delivery) []int64 {
	out := make([]int64, len(ds))
	for i, d := range ds {
		out[i] = d.ID
	}
	return out
}

func TestOutboxDueRetryDeadRequeue(t *testing.T) {
	s, path := openTemp(t)
	ctx := context.Background()
	t0 := time.Date(2025, 5, 1, 10, 0, 0, 123_000_000, time.UTC)
	a, err := s.SaveAlertChange(ctx, raised("area:plaza", t0), []string{"webhook", "sms"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.SaveAlertChange(ctx, follow(a, event.AlertAcked, event.AlertAcknowledged, t0.Add(time.Second), "guard"), []string{"webhook"}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	// The deliveries wait in the file.
	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	due := func(channel string, now time.Time) []Delivery {
		t.Helper()
		ds, err := s.DueDeliveries(ctx, channel, now, 10)
		if err != nil {
			t.Fatal(err)
		}
		return ds
	}
	next := func(channel string) (time.Time, bool) {
		t.Helper()
		at, ok, err := s.NextDeliveryAt(ctx, channel)
		if err != nil {
			t.Fatal(err)
		}
		return at, ok
	}
	pendingOn := func(channel string) int64 {
		t.Helper()
		n, err := s.PendingDeliveries(ctx, channel)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	if ds := due("webhook", t0.Add(-time.Millisecond)); len(ds) != 0 {
		t.Fatalf("due before the first change: %+v", ds)
	}
	ds := due("webhook", t0.Add(time.Second))
	if len(ds) != 2 {
		t.Fatalf("%d webhook deliveries due, want 2", len(ds))
	}
	d1, d2 := ds[0], ds[1]
	if d1.AlertID != a.ID || d1.Seq != 1 || d2.Seq != 2 || d1.Channel != "webhook" ||
		d1.IdempotencyKey != fmt.Sprintf("flowwatch-alert-%d-1", a.ID) || d2.IdempotencyKey != fmt.Sprintf("flowwatch-alert-%d-2", a.ID) {
		t.Fatalf("due deliveries %+v, %+v: want seq 1 then 2 of alert %d", d1, d2, a.ID)
	}
	if d1.Attempts != 0 || d1.LastError != "" || !d1.DeliveredAt.IsZero() || !d1.DeadAt.IsZero() ||
		!d1.CreatedAt.Equal(t0) || !d1.NextAttempt.Equal(t0) || d1.NextAttempt.Location() != time.UTC {
		t.Fatalf("fresh delivery %+v", d1)
	}
	var ch event.AlertChange
	if err := json.Unmarshal(d2.Payload, &ch); err != nil || ch.Kind != event.AlertAcked || ch.Alert.ID != a.ID {
		t.Fatalf("payload of the second delivery: %s, %v", d2.Payload, err)
	}
	if ds := due("webhook", t0); len(ds) != 1 || ds[0].ID != d1.ID {
		t.Fatalf("due at the first change: %v, want [%d]", deliveryIDs(ds), d1.ID)
	}
	if ds, err := s.DueDeliveries(ctx, "webhook", t0.Add(time.Hour), 1); err != nil || len(ds) != 1 || ds[0].ID != d1.ID {
		t.Fatalf("due with limit 1: %v, %v; want [%d]", deliveryIDs(ds), err, d1.ID)
	}
	sms := due("sms", t0.Add(time.Hour))
	if len(sms) != 1 || sms[0].IdempotencyKey != d1.IdempotencyKey || sms[0].ID == d1.ID {
		t.Fatalf("sms deliveries %+v: want its own row with the key %q", sms, d1.IdempotencyKey)
	}
	if at, ok := next("webhook"); !ok || !at.Equal(t0) {
		t.Fatalf("next webhook delivery at %s, %v; want %s", at, ok, t0)
	}
	if _, ok := next("pager"); ok {
		t.Fatal("a channel with nothing queued has a next delivery")
	}
	if n, m := pendingOn("webhook"), pendingOn(""); n != 2 || m != 3 {
		t.Fatalf("pending: %d on the webhook, %d in all; want 2 and 3", n, m)
	}

	// The first attempt of d1 fails: it is due again in 10 s.
	if err := s.MarkRetry(ctx, d1.ID, t0.Add(10*time.Second), "HTTP 503"); err != nil {
		t.Fatal(err)
	}
	if ds := due("webhook", t0.Add(5*time.Second)); len(ds) != 1 || ds[0].ID != d2.ID {
		t.Fatalf("due while d1 waits: %v, want [%d]", deliveryIDs(ds), d2.ID)
	}
	if at, ok := next("webhook"); !ok || !at.Equal(t0.Add(time.Second)) {
		t.Fatalf("next webhook delivery at %s, %v; want d2's", at, ok)
	}
	// d2 goes through.
	if err := s.MarkDelivered(ctx, d2.ID, t0.Add(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	ds = due("webhook", t0.Add(10*time.Second))
	if len(ds) != 1 || ds[0].ID != d1.ID || ds[0].Attempts != 1 || ds[0].LastError != "HTTP 503" || !ds[0].NextAttempt.Equal(t0.Add(10*time.Second)) {
		t.Fatalf("due after a retry: %+v, want d1 with 1 attempt, HTTP 503", ds)
	}
	if at, ok := next("webhook"); !ok || !at.Equal(t0.Add(10*time.Second)) {
		t.Fatalf("next webhook delivery at %s, %v; want d1's retry", at, ok)
	}
	if n := pendingOn("webhook"); n != 1 {
		t.Fatalf("%d pending on the webhook after a delivery, want 1", n)
	}

	// d1 fails for good, then the sms one.
	if err := s.MarkDead(ctx, d1.ID, t0.Add(20*time.Second), "HTTP 400: bad payload"); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkDead(ctx, sms[0].ID, t0.Add(30*time.Second), "no phone number"); err != nil {
		t.Fatal(err)
	}
	if ds := due("webhook", t0.Add(time.Hour)); len(ds) != 0 {
		t.Fatalf("dead deliveries are due: %+v", ds)
	}
	if _, ok := next("webhook"); ok {
		t.Fatal("a channel with only dead and delivered rows has a next delivery")
	}
	if n := pendingOn(""); n != 0 {
		t.Fatalf("%d pending after all were done, want 0", n)
	}
	dead, err := s.DeadDeliveries(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(dead) != 2 || dead[0].ID != sms[0].ID || dead[1].ID != d1.ID {
		t.Fatalf("dead deliveries %v, want [%d %d] newest first", deliveryIDs(dead), sms[0].ID, d1.ID)
	}
	if d := dead[1]; d.Attempts != 2 || d.LastError != "HTTP 400: bad payload" || !d.DeadAt.Equal(t0.Add(20*time.Second)) || d.DeadAt.Location() != time.UTC {
		t.Fatalf("dead delivery %+v, want 2 attempts, HTTP 400, dead at %s", d, t0.Add(20*time.Second))
	}
	if dead, err := s.DeadDeliveries(ctx, 1); err != nil || len(dead) != 1 {
		t.Fatalf("dead deliveries with limit 1: %d, %v", len(dead), err)
	}

	// An operator requeues d1: due now, attempts from 0, the last error
	// kept.
	now := t0.Add(time.Hour)
	if err := s.RequeueDelivery(ctx, d1.ID, now); err != nil {
		t.Fatal(err)
	}
	ds = due("webhook", now)
	if len(ds) != 1 || ds[0].ID != d1.ID || !ds[0].DeadAt.IsZero() || ds[0].Attempts != 0 || !ds[0].NextAttempt.Equal(now) || ds[0].LastError == "" {
		t.Fatalf("after requeueing: %+v", ds)
	}
	if dead, err := s.DeadDeliveries(ctx, 10); err != nil || len(dead) != 1 || dead[0].ID != sms[0].ID {
		t.Fatalf("dead after requeueing d1: %v, %v; want [%d]", deliveryIDs(dead), err, sms[0].ID)
	}
	// A delivered one cannot be requeued.
	if err := s.RequeueDelivery(ctx, d2.ID, now); err == nil || errors.Is(err, ErrNotFound) {
		t.Fatalf("requeueing a delivered row: got %v, want an error saying it was delivered", err)
	}
	if ds := due("webhook", now.Add(time.Hour)); len(ds) != 1 {
		t.Fatalf("the delivered row is due again: %v", deliveryIDs(ds))
	}
	if err := s.MarkDelivered(ctx, d1.ID, now.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	rows := outboxRows(t, s, a.ID)
	if len(rows) != 3 || rows[0].Attempts != 1 {
		t.Fatalf("outbox rows %+v: want 3, the first delivered on its first attempt since the requeue", rows)
	}
}

func TestOutboxMissingAndBadArguments(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	t0 := time.Date(2025, 5, 1, 10, 0, 0, 0, time.UTC)
	for name, err := range map[string]error{
		"mark delivered": s.MarkDelivered(ctx, 42, t0),
		"mark retry":     s.MarkRetry(ctx, 42, t0, "x"),
		"mark dead":      s.MarkDead(ctx, 42, t0, "x"),
		"requeue":        s.RequeueDelivery(ctx, 42, t0),
	} {
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("%s of a missing delivery: got %v, want ErrNotFound", name, err)
		}
	}
	if _, err := s.DueDeliveries(ctx, "webhook", t0, 0); err == nil {
		t.Error("due deliveries with limit 0 was accepted")
	}
	if _, err := s.DeadDeliveries(ctx, -1); err == nil {
		t.Error("dead deliveries with limit -1 was accepted")
	}
}
