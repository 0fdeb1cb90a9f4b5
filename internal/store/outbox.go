package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Delivery is one alert change waiting in the outbox to be sent, or sent,
// on one channel.
type Delivery struct {
	// ID is the delivery's number in the outbox.
	ID int64
	// AlertID and Seq name the alert and its change.
	AlertID int64
	Seq     int
	// Channel names the notifier that sends it.
	Channel string
	// IdempotencyKey is "flowwatch-alert-<alert id>-<seq>", the same for
	// every channel's delivery of one change; a receiver drops a repeat.
	IdempotencyKey string
	// Payload is the event.AlertChange as JSON.
	Payload []byte
	// Attempts is how many times sending was tried.
	Attempts int
	// CreatedAt is when the change happened; NextAttempt when the
	// delivery is due next.
	CreatedAt, NextAttempt time.Time
	// LastError says why the last attempt failed; empty when none did.
	LastError string
	// DeliveredAt is when it was sent, DeadAt when sending was given up;
	// both are zero while the delivery is pending.
	DeliveredAt, DeadAt time.Time
}

// deliveryColumns are the outbox columns scanDelivery reads, in order.
const deliveryColumns = `id, alert_id, seq, channel, idempotency_key, payload, attempts,
	created_at, next_attempt_at, last_error, delivered_at, dead_at`

// pending is the condition of a delivery neither delivered nor dead.
const pending = "delivered_at IS NULL AND dead_at IS NULL"

// scanDelivery reads one row of deliveryColumns.
func scanDelivery(rows *sql.Rows) (Delivery, error) {
	var (
		d                   Delivery
		created, next       int64
		delivered, deadTime sql.NullInt64
	)
	if err := rows.Scan(&d.ID, &d.AlertID, &d.Seq, &d.Channel, &d.IdempotencyKey, &d.Payload, &d.Attempts,
		&created, &next, &d.LastError, &delivered, &deadTime); err != nil {
		return Delivery{}, err
	}
	d.CreatedAt = time.UnixMilli(created).UTC()
	d.NextAttempt = time.UnixMilli(next).UTC()
	d.DeliveredAt = nullMilli(delivered)
	d.DeadAt = nullMilli(deadTime)
	return d, nil
}

// nullMilli turns a nullable unix-milliseconds column into a time in UTC,
// zero for NULL.
func nullMilli(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMilli(v.Int64).UTC()
}

// queryDeliveries runs a query selecting deliveryColumns.
func (s *Store) queryDeliveries(ctx context.Context, query string, args ...any) ([]Delivery, error) {
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Delivery
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// DueDeliveries returns at most limit deliveries on channel that are
// pending (neither delivered nor dead) and due at now, oldest first.
func (s *Store) DueDeliveries(ctx context.Context, channel string, now time.Time, limit int) ([]Delivery, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("store: due deliveries on channel %q: limit %d is not positive", channel, limit)
	}
	out, err := s.queryDeliveries(ctx, "SELECT "+deliveryColumns+" FROM outbox WHERE channel = ? AND "+pending+
		" AND next_attempt_at <= ? ORDER BY id LIMIT ?", channel, now.UnixMilli(), limit)
	if err != nil {
		return nil, fmt.Errorf("store: due deliveries on channel %q at %s: %w", channel, now.UTC().Format(time.RFC3339Nano), err)
	}
	return out, nil
}

// NextDeliveryAt returns when the earliest pending delivery on channel is
// due, and false when none is pending.
func (s *Store) NextDeliveryAt(ctx context.Context, channel string) (time.Time, bool, error) {
	var next sql.NullInt64
	if err := s.db.QueryRowContext(ctx, "SELECT min(next_attempt_at) FROM outbox WHERE channel = ? AND "+pending,
		channel).Scan(&next); err != nil {
		return time.Time{}, false, fmt.Errorf("store: next delivery on channel %q: %w", channel, err)
	}
	if !next.Valid {
		return time.Time{}, false, nil
	}
	return time.UnixMilli(next.Int64).UTC(), true, nil
}

// MarkDelivered records that the delivery with the given id was sent at
// at, which counts as one more attempt; ErrNotFound, wrapped, when there is
// no such delivery.
func (s *Store) MarkDelivered(ctx context.Context, id int64, at time.Time) error {
	return s.updateDelivery(ctx, id, "mark delivered",
		"UPDATE outbox SET attempts = attempts + 1, delivered_at = ? WHERE id = ?", at.UnixMilli(), id)
}

// MarkRetry records a failed attempt of the delivery with the given id:
// one more attempt, reason as its last error, due again at next.
// ErrNotFound, wrapped, when there is no such delivery.
func (s *Store) MarkRetry(ctx context.Context, id int64, next time.Time, reason string) error {
	return s.updateDelivery(ctx, id, "mark for retry",
		"UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, last_error = ? WHERE id = ?",
		next.UnixMilli(), reason, id)
}

// MarkDead records a last failed attempt of the delivery with the given
// id: one more attempt, reason as its last error, given up at at; it is no
// longer due. ErrNotFound, wrapped, when there is no such delivery.
func (s *Store) MarkDead(ctx context.Context, id int64, at time.Time, reason string) error {
	return s.updateDelivery(ctx, id, "mark dead",
		"UPDATE outbox SET attempts = attempts + 1, dead_at = ?, last_error = ? WHERE id = ?",
		at.UnixMilli(), reason, id)
}

// RequeueDelivery gives a delivery another chance: it is no longer dead,
// its attempts start again from 0 and it is due at now (its last error
// stays). A delivery already delivered is an error; a missing one
// ErrNotFound, wrapped.
func (s *Store) RequeueDelivery(ctx context.Context, id int64, now time.Time) error {
	fail := func(err error) error {
		return fmt.Errorf("store: requeue delivery %d: %w", id, err)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fail(err)
	}
	defer tx.Rollback()
	var delivered sql.NullInt64
	err = tx.QueryRowContext(ctx, "SELECT delivered_at FROM outbox WHERE id = ?", id).Scan(&delivered)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return fail(ErrNotFound)
	case err != nil:
		return fail(err)
	case delivered.Valid:
		return fail(fmt.Errorf("it was delivered at %s", nullMilli(delivered).Format(time.RFC3339Nano)))
	}
	if _, err := tx.ExecContext(ctx, "UPDATE outbox SET dead_at = NULL, attempts = 0, next_attempt_at = ? WHERE id = ?",
		now.UnixMilli(), id); err != nil {
		return fail(err)
	}
	if err := tx.Commit(); err != nil {
		return fail(err)
	}
	return nil
}

// updateDelivery runs an update of one outbox row; what names it in
// errors.
func (s *Store) updateDelivery(ctx context.Context, id int64, what, query string, args ...any) error {
	res, err := s.db.ExecContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("store: %s delivery %d: %w", what, id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("store: %s delivery %d: %w", what, id, err)
	}
	if n == 0 {
		return fmt.Errorf("store: %s delivery %d: %w", what, id, ErrNotFound)
	}
	return nil
}

// DeadDeliveries returns at most limit deliveries that were given up,
// most recently given up first.
func (s *Store) DeadDeliveries(ctx context.Context, limit int) ([]Delivery, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("store: dead deliveries: limit %d is not positive", limit)
	}
	out, err := s.queryDeliveries(ctx, "SELECT "+deliveryColumns+
		" FROM outbox WHERE dead_at IS NOT NULL ORDER BY dead_at DESC, id DESC LIMIT ?", limit)
	if err != nil {
		return nil, fmt.Errorf("store: dead deliveries: %w", err)
	}
	return out, nil
}

// PendingDeliveries returns how many deliveries on channel are pending
// (neither delivered nor dead), due or not; with channel "" it counts
// every channel's.
func (s *Store) PendingDeliveries(ctx context.Context, channel string) (int64, error) {
	query, args := "SELECT count(*) FROM outbox WHERE "+pending, []any(nil)
	if channel != "" {
		query += " AND channel = ?"
		args = append(args, channel)
	}
	var n int64
	if err := s.db.QueryRowContext(ctx, query, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: pending deliveries on channel %q: %w", channel, err)
	}
	return n, nil
}
