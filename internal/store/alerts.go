package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"flowwatch/internal/event"
)

// ErrDuplicateOpen is returned, wrapped, when an alert would be stored as
// not resolved while another alert with the same key is not resolved.
var ErrDuplicateOpen = errors.New("another alert with this key is not resolved")

// ErrNotFound is returned, wrapped, when the alert or delivery asked for
// does not exist.
var ErrNotFound = errors.New("not found")

// Limits on how many alerts ListAlerts returns.
const (
	// DefaultAlertLimit is what ListAlerts returns at most when the filter
	// sets no limit.
	DefaultAlertLimit = 500
	// MaxAlertLimit is the most ListAlerts ever returns.
	MaxAlertLimit = 5000
)

// checkAlertChange reports what is wrong with ch, if anything.
func checkAlertChange(ch *event.AlertChange) error {
	a := &ch.Alert
	switch {
	case ch.Kind == "":
		return errors.New("empty change kind")
	case ch.At.IsZero():
		return errors.New("zero change time")
	case a.ID < 0:
		return fmt.Errorf("negative alert id %d", a.ID)
	case a.Key == "":
		return errors.New("empty alert key")
	case a.Rule == "":
		return errors.New("empty alert rule")
	case a.Target == "":
		return errors.New("empty alert target")
	case !validState(a.State):
		return fmt.Errorf("unknown alert state %q", a.State)
	case a.OpenedAt.IsZero():
		return errors.New("zero opened_at")
	case a.UpdatedAt.IsZero():
		return errors.New("zero updated_at")
	case a.State == event.AlertResolved && a.ResolvedAt.IsZero():
		return errors.New("resolved alert with a zero resolved_at")
	}
	return nil
}

// validState tells whether st is one of the lifecycle states.
func validState(st event.AlertState) bool {
	switch st {
	case event.AlertOpen, event.AlertAcknowledged, event.AlertResolved:
		return true
	}
	return false
}

// utcAlert returns a with its times in UTC, as they are stored.
func utcAlert(a event.Alert) event.Alert {
	a.OpenedAt = a.OpenedAt.UTC()
	a.UpdatedAt = a.UpdatedAt.UTC()
	a.AckedAt = a.AckedAt.UTC()
	a.ResolvedAt = a.ResolvedAt.UTC()
	a.EscalatedAt = a.EscalatedAt.UTC()
	return a
}

// SaveAlertChange stores one change of an alert in one transaction: the
// alert as it stands after the change (a new row when ch.Alert.ID is 0,
// which assigns the ID; else an update of that row, ErrNotFound when there
// is none), the change itself as the alert's next entry in its history
// (numbered 1, 2, 3…), and for each of channels a delivery of the change
// waiting in the outbox, due at ch.At. Every channel's delivery of the
// change carries the same idempotency key,
// "flowwatch-alert-<alert id>-<seq>", and the change as JSON with the
// alert's ID filled in. Either all of it is stored or, on any error,
// nothing.
//
// The change needs a kind and a time; its alert a key, a rule, a target,
// a known state, OpenedAt and UpdatedAt, and ResolvedAt when resolved. An
// alert whose key is already held by another alert that is not resolved
// cannot be stored unless resolved: that is ErrDuplicateOpen. An update may
// not change the alert's key. Times are stored, and returned, in UTC.
//
// It returns the alert as stored.
func (s *Store) SaveAlertChange(ctx context.Context, ch event.AlertChange, channels []string) (event.Alert, error) {
	id, key := ch.Alert.ID, ch.Alert.Key
	fail := func(err error) error {
		if id == 0 {
			return fmt.Errorf("store: save %q change of new alert (key %q): %w", ch.Kind, key, err)
		}
		return fmt.Errorf("store: save %q change of alert %d (key %q): %w", ch.Kind, id, key, err)
	}
	if err := checkAlertChange(&ch); err != nil {
		return event.Alert{}, fail(err)
	}
	seen := make(map[string]bool, len(channels))
	for _, c := range channels {
		switch {
		case c == "":
			return event.Alert{}, fail(errors.New("empty channel name"))
		case seen[c]:
			return event.Alert{}, fail(fmt.Errorf("channel %q listed twice", c))
		}
		seen[c] = true
	}
	ch.At = ch.At.UTC()
	ch.Alert = utcAlert(ch.Alert)

	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return event.Alert{}, fail(err)
	}
	defer tx.Rollback()

	a := &ch.Alert
	if a.ID != 0 {
		var stored string
		err := tx.QueryRowContext(ctx, "SELECT key FROM alerts WHERE id = ?", a.ID).Scan(&stored)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return event.Alert{}, fail(ErrNotFound)
		case err != nil:
			return event.Alert{}, fail(err)
		case stored != a.Key:
			return event.Alert{}, fail(fmt.Errorf("alert %d has key %q; an update cannot change it", a.ID, stored))
		}
	}
	if a.State != event.AlertResolved {
		var (
			other int64
			state string
		)
		err := tx.QueryRowContext(ctx, "SELECT id, state FROM alerts WHERE key = ? AND state != 'resolved' AND id != ?",
			a.Key, a.ID).Scan(&other, &state)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return event.Alert{}, fail(err)
		default:
			return event.Alert{}, fail(fmt.Errorf("alert %d is %s: %w", other, state, ErrDuplicateOpen))
		}
	}

	var resolvedAt any
	if a.State == event.AlertResolved {
		resolvedAt = a.ResolvedAt.UnixMilli()
	}
	if a.ID == 0 {
		// The row goes in with an empty JSON blob, which is written just
		// below once the insert has assigned the ID the JSON carries.
		res, err := tx.ExecContext(ctx, `INSERT INTO alerts (key, rule, target, level, state, opened_at, updated_at, resolved_at, data)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, x'')`,
			a.Key, a.Rule, string(a.Target), string(a.Level), string(a.State),
			a.OpenedAt.UnixMilli(), a.UpdatedAt.UnixMilli(), resolvedAt)
		if err != nil {
			return event.Alert{}, fail(duplicateOpen(err))
		}
		if a.ID, err = res.LastInsertId(); err != nil {
			return event.Alert{}, fail(err)
		}
	}
	data, err := json.Marshal(a)
	if err != nil {
		return event.Alert{}, fail(err)
	}
	_, err = tx.ExecContext(ctx, `UPDATE alerts SET rule = ?, target = ?, level = ?, state = ?,
	opened_at = ?, updated_at = ?, resolved_at = ?, data = ? WHERE id = ?`,
		a.Rule, string(a.Target), string(a.Level), string(a.State),
		a.OpenedAt.UnixMilli(), a.UpdatedAt.UnixMilli(), resolvedAt, data, a.ID)
	if err != nil {
		return event.Alert{}, fail(duplicateOpen(err))
	}

	var seq int
	if err := tx.QueryRowContext(ctx, "SELECT coalesce(max(seq), 0) + 1 FROM alert_changes WHERE alert_id = ?", a.ID).Scan(&seq); err != nil {
		return event.Alert{}, fail(err)
	}
	payload, err := json.Marshal(&ch)
	if err != nil {
		return event.Alert{}, fail(err)
	}
	at := ch.At.UnixMilli()
	if _, err := tx.ExecContext(ctx, "INSERT INTO alert_changes (alert_id, seq, kind, at, by_user, note, data) VALUES (?, ?, ?, ?, ?, ?, ?)",
		a.ID, seq, string(ch.Kind), at, ch.By, ch.Note, payload); err != nil {
		return event.Alert{}, fail(fmt.Errorf("change %d of alert %d: %w", seq, a.ID, err))
	}
	idem := fmt.Sprintf("flowwatch-alert-%d-%d", a.ID, seq)
	for _, c := range channels {
		if _, err := tx.ExecContext(ctx, `INSERT INTO outbox (alert_id, seq, channel, idempotency_key, payload, created_at, attempts, next_attempt_at)
VALUES (?, ?, ?, ?, ?, ?, 0, ?)`, a.ID, seq, c, idem, payload, at, at); err != nil {
			return event.Alert{}, fail(fmt.Errorf("delivery %q on channel %q: %w", idem, c, err))
		}
	}
	if err := tx.Commit(); err != nil {
		return event.Alert{}, fail(err)
	}
	stored, err := decodeAlert(a.ID, data)
	if err != nil {
		return event.Alert{}, fail(err)
	}
	return stored, nil
}

// duplicateOpen turns the database's refusal of a second unresolved alert
// per key into ErrDuplicateOpen; other errors pass unchanged.
func duplicateOpen(err error) error {
	var e *sqlite.Error
	if errors.As(err, &e) && e.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE {
		return fmt.Errorf("%w (%v)", ErrDuplicateOpen, err)
	}
	return err
}

// decodeAlert reads the JSON of the alert with the given id.
func decodeAlert(id int64, data []byte) (event.Alert, error) {
	var a event.Alert
	if err := json.Unmarshal(data, &a); err != nil {
		return event.Alert{}, fmt.Errorf("alert %d: stored data: %w", id, err)
	}
	a.ID = id
	return utcAlert(a), nil
}

// Alert returns the alert with the given id; ErrNotFound, wrapped, when
// there is none.
func (s *Store) Alert(ctx context.Context, id int64) (event.Alert, error) {
	var data []byte
	err := s.db.QueryRowContext(ctx, "SELECT data FROM alerts WHERE id = ?", id).Scan(&data)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return event.Alert{}, fmt.Errorf("store: alert %d: %w", id, ErrNotFound)
	case err != nil:
		return event.Alert{}, fmt.Errorf("store: alert %d: %w", id, err)
	}
	a, err := decodeAlert(id, data)
	if err != nil {
		return event.Alert{}, fmt.Errorf("store: %w", err)
	}
	return a, nil
}

// OpenAlerts returns the alerts that are not resolved, oldest first.
func (s *Store) OpenAlerts(ctx context.Context) ([]event.Alert, error) {
	out, err := s.queryAlerts(ctx, "SELECT id, data FROM alerts WHERE state != 'resolved' ORDER BY opened_at, id")
	if err != nil {
		return nil, fmt.Errorf("store: open alerts: %w", err)
	}
	return out, nil
}

// AlertFilter selects alerts for ListAlerts. Its zero value selects the
// newest DefaultAlertLimit alerts.
type AlertFilter struct {
	// From and To bound when the alerts were opened: at or after From
	// and before To; a zero time leaves that side open.
	From, To time.Time
	// States keeps the alerts in one of these states; empty keeps all.
	States []event.AlertState
	// Target keeps the alerts of exactly this target; empty keeps all.
	Target event.Target
	// Limit is the most alerts to return: 0 means DefaultAlertLimit, and
	// more than MaxAlertLimit means MaxAlertLimit.
	Limit int
}

// ListAlerts returns the alerts f selects, newest opened first. A negative
// limit or an unknown state is an error.
func (s *Store) ListAlerts(ctx context.Context, f AlertFilter) ([]event.Alert, error) {
	fail := func(err error) error {
		return fmt.Errorf("store: list alerts (from %s, to %s, states %v, target %q, limit %d): %w",
			f.From.UTC().Format(time.RFC3339), f.To.UTC().Format(time.RFC3339), f.States, f.Target, f.Limit, err)
	}
	limit := f.Limit
	switch {
	case limit < 0:
		return nil, fail(errors.New("negative limit"))
	case limit == 0:
		limit = DefaultAlertLimit
	case limit > MaxAlertLimit:
		limit = MaxAlertLimit
	}
	var (
		where []string
		args  []any
	)
	if !f.From.IsZero() {
		where = append(where, "opened_at >= ?")
		args = append(args, f.From.UnixMilli())
	}
	if !f.To.IsZero() {
		where = append(where, "opened_at < ?")
		args = append(args, f.To.UnixMilli())
	}
	if len(f.States) > 0 {
		marks := make([]string, len(f.States))
		for i, st := range f.States {
			if !validState(st) {
				return nil, fail(fmt.Errorf("unknown alert state %q", st))
			}
			marks[i] = "?"
			args = append(args, string(st))
		}
		where = append(where, "state IN ("+strings.Join(marks, ", ")+")")
	}
	if f.Target != "" {
		where = append(where, "target = ?")
		args = append(args, string(f.Target))
	}
	query := "SELECT id, data FROM alerts"
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY opened_at DESC, id DESC LIMIT ?"
	args = append(args, limit)
	out, err := s.queryAlerts(ctx, query, args...)
	if err != nil {
		return nil, fail(err)
	}
	return out, nil
}

// queryAlerts runs a query selecting id and data of alerts and decodes
// them.
func (s *Store) queryAlerts(ctx context.Context, query string, args ...any) ([]event.Alert, error) {
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []event.Alert
	for rows.Next() {
		var (
			id   int64
			data []byte
		)
		if err := rows.Scan(&id, &data); err != nil {
			return nil, err
		}
		a, err := decodeAlert(id, data)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// AlertChanges returns the history of the alert with the given id, first
// change first; ErrNotFound, wrapped, when there is no such alert.
func (s *Store) AlertChanges(ctx context.Context, id int64) ([]event.AlertChange, error) {
	fail := func(err error) error {
		return fmt.Errorf("store: changes of alert %d: %w", id, err)
	}
	rows, err := s.db.QueryContext(ctx, "SELECT seq, data FROM alert_changes WHERE alert_id = ? ORDER BY seq", id)
	if err != nil {
		return nil, fail(err)
	}
	defer rows.Close()
	var out []event.AlertChange
	for rows.Next() {
		var (
			seq  int
			data []byte
			ch   event.AlertChange
		)
		if err := rows.Scan(&seq, &data); err != nil {
			return nil, fail(err)
		}
		if err := json.Unmarshal(data, &ch); err != nil {
			return nil, fail(fmt.Errorf("change %d: stored data: %w", seq, err))
		}
		ch.At = ch.At.UTC()
		ch.Alert = utcAlert(ch.Alert)
		out = append(out, ch)
	}
	if err := rows.Err(); err != nil {
		return nil, fail(err)
	}
	if len(out) == 0 {
		var n int
		if err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM alerts WHERE id = ?", id).Scan(&n); err != nil {
			return nil, fail(err)
		}
		if n == 0 {
			return nil, fail(ErrNotFound)
		}
	}
	return out, nil
}

// CountAlerts returns how many alerts are stored, in any state.
func (s *Store) CountAlerts(ctx context.Context) (int64, error) {
	var n int64
	if err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM alerts").Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count alerts: %w", err)
	}
	return n, nil
}

// DeleteResolvedAlertsBefore deletes the alerts resolved before t, with
// their history and their outbox deliveries, and returns how many alerts it
// deleted. An alert that is not resolved is never deleted, nor one with a
// delivery still pending (neither delivered nor dead): it goes once its
// deliveries are done.
func (s *Store) DeleteResolvedAlertsBefore(ctx context.Context, t time.Time) (int64, error) {
	fail := func(err error) error {
		return fmt.Errorf("store: delete alerts resolved before %s: %w", t.UTC().Format(time.RFC3339Nano), err)
	}
	const due = `SELECT id FROM alerts WHERE state = 'resolved' AND resolved_at < ?1 AND NOT EXISTS
	(SELECT 1 FROM outbox WHERE outbox.alert_id = alerts.id AND delivered_at IS NULL AND dead_at IS NULL)`
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fail(err)
	}
	defer tx.Rollback()
	cut := t.UnixMilli()
	if _, err := tx.ExecContext(ctx, "DELETE FROM outbox WHERE alert_id IN ("+due+")", cut); err != nil {
		return 0, fail(fmt.Errorf("deliveries: %w", err))
	}
	if _, err := tx.ExecContext(ctx, "DELETE FROM alert_changes WHERE alert_id IN ("+due+")", cut); err != nil {
		return 0, fail(fmt.Errorf("changes: %w", err))
	}
	res, err := tx.ExecContext(ctx, "DELETE FROM alerts WHERE id IN ("+due+")", cut)
	if err != nil {
		return 0, fail(err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fail(err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fail(err)
	}
	return n, nil
}
