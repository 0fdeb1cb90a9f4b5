package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"flowwatch/internal/event"
)

// This file is the store's data by class: how long each class is kept
// (RetentionPolicy), the job that deletes what is past it (Retention), and
// the readers that stream everything held about a period, for exports
// (the Each… functions).

// DataClass names one class of data the store holds, for retention and
// its log lines.
type DataClass string

// The data classes with a retention, in the order a retention pass runs
// them.
const (
	// ClassCounts: the one-second counts of every zone and area.
	ClassCounts DataClass = "counts"
	// ClassRollups: the one-minute count rollups.
	ClassRollups DataClass = "rollups"
	// ClassAlerts: resolved alerts, with their changes and deliveries
	// (open ones are never deleted).
	ClassAlerts DataClass = "alerts"
	// ClassHeatmaps: the heatmap buckets of every camera.
	ClassHeatmaps DataClass = "heatmaps"
	// ClassSnapshots: the pictures stored on an admin's request.
	ClassSnapshots DataClass = "snapshots"
	// ClassAudit: the audit log, pruned so that its chain still verifies
	// (PruneAudit), never younger than MinAuditRetention.
	ClassAudit DataClass = "audit"
)

// DataClasses returns every class with a retention, in the order a
// retention pass runs them.
func DataClasses() []DataClass {
	return []DataClass{ClassCounts, ClassRollups, ClassAlerts, ClassHeatmaps, ClassSnapshots, ClassAudit}
}

// describe is the class in words, for log lines.
func (c DataClass) describe() string {
	switch c {
	case ClassCounts:
		return "per-second counts"
	case ClassRollups:
		return "per-minute counts"
	case ClassAlerts:
		return "resolved alerts"
	case ClassHeatmaps:
		return "heatmap buckets"
	case ClassSnapshots:
		return "stored snapshots"
	case ClassAudit:
		return "audit entries"
	}
	return string(c)
}

// Default retentions, one per data class.
const (
	DefaultCountsRetention    = 7 * 24 * time.Hour
	DefaultRollupsRetention   = 365 * 24 * time.Hour
	DefaultAlertsRetention    = 365 * 24 * time.Hour
	DefaultHeatmapsRetention  = 90 * 24 * time.Hour
	DefaultSnapshotsRetention = 30 * 24 * time.Hour
	DefaultAuditRetention     = MinAuditRetention
	// DefaultRetentionEvery is how often Retention runs a pass.
	DefaultRetentionEvery = time.Hour
)

// RetentionPolicy is how long each class of data is kept: what is older
// is deleted by the next retention pass. A zero field takes its default
// (WithDefaults); Audit may not be shorter than MinAuditRetention.
type RetentionPolicy struct {
	Counts    time.Duration // one-second counts; default 7 days
	Rollups   time.Duration // one-minute rollups; default 365 days
	Alerts    time.Duration // resolved alerts; default 365 days
	Heatmaps  time.Duration // heatmap buckets; default 90 days
	Snapshots time.Duration // stored snapshots; default 30 days
	Audit     time.Duration // audit entries; default and minimum 180 days
}

// DefaultRetentionPolicy returns the default retention of every class.
func DefaultRetentionPolicy() RetentionPolicy {
	return RetentionPolicy{}.WithDefaults()
}

// WithDefaults returns p with every zero field set to its default.
func (p RetentionPolicy) WithDefaults() RetentionPolicy {
	set := func(d *time.Duration, def time.Duration) {
		if *d == 0 {
			*d = def
		}
	}
	set(&p.Counts, DefaultCountsRetention)
	set(&p.Rollups, DefaultRollupsRetention)
	set(&p.Alerts, DefaultAlertsRetention)
	set(&p.Heatmaps, DefaultHeatmapsRetention)
	set(&p.Snapshots, DefaultSnapshotsRetention)
	set(&p.Audit, DefaultAuditRetention)
	return p
}

// Keep returns how long p keeps the class (0 for an unknown class).
func (p RetentionPolicy) Keep(c DataClass) time.Duration {
	switch c {
	case ClassCounts:
		return p.Counts
	case ClassRollups:
		return p.Rollups
	case ClassAlerts:
		return p.Alerts
	case ClassHeatmaps:
		return p.Heatmaps
	case ClassSnapshots:
		return p.Snapshots
	case ClassAudit:
		return p.Audit
	}
	return 0
}

// Check reports a negative retention, or an audit retention (once
// defaults are applied) shorter than MinAuditRetention, naming the class.
func (p RetentionPolicy) Check() error {
	p = p.WithDefaults()
	for _, c := range DataClasses() {
		if d := p.Keep(c); d < 0 {
			return fmt.Errorf("retention of %s: %s is negative", c.describe(), d)
		}
	}
	if p.Audit < MinAuditRetention {
		return fmt.Errorf("retention of audit entries: %s is shorter than the minimum of 180 days: %w", p.Audit, ErrAuditRetention)
	}
	return nil
}

// DeleteClassBefore deletes the class's data older than before and
// returns how many rows it deleted (alerts: how many alerts; audit: how
// many entries, through PruneAudit, which refuses a time younger than
// MinAuditRetention).
func (s *Store) DeleteClassBefore(ctx context.Context, c DataClass, before time.Time) (int64, error) {
	switch c {
	case ClassCounts:
		return s.DeleteCountsBefore(ctx, before)
	case ClassRollups:
		return s.DeleteRollupsBefore(ctx, before)
	case ClassAlerts:
		return s.DeleteResolvedAlertsBefore(ctx, before)
	case ClassHeatmaps:
		return s.DeleteHeatmapBefore(ctx, before)
	case ClassSnapshots:
		return s.DeleteSnapshotsBefore(ctx, before)
	case ClassAudit:
		p, err := s.PruneAudit(ctx, before)
		return p.Deleted, err
	}
	return 0, fmt.Errorf("store: delete data of class %q: no such class", c)
}

// RetentionResult is what one retention pass did to one class.
type RetentionResult struct {
	Class DataClass
	// Before is the cut: the class's data older than it was deleted.
	Before time.Time
	// Deleted is how many rows (alerts, entries) went.
	Deleted int64
	// Err is why the class's deletion failed, if it did.
	Err error
}

// RunRetention runs one retention pass at now: for each of classes (every
// class when none is given) it deletes the data older than now minus the
// class's retention in p (defaults applied) and logs one line saying what
// it deleted ("retention deleted": class, data, deleted, before) or why it
// failed ("retention failed", as an error). A failing class does not stop
// the others. It returns what it did, class by class.
func (s *Store) RunRetention(ctx context.Context, p RetentionPolicy, now time.Time, log *slog.Logger, classes ...DataClass) []RetentionResult {
	if log == nil {
		log = slog.Default()
	}
	if len(classes) == 0 {
		classes = DataClasses()
	}
	p = p.WithDefaults()
	out := make([]RetentionResult, 0, len(classes))
	for _, c := range classes {
		r := RetentionResult{Class: c, Before: now.Add(-p.Keep(c)).UTC()}
		r.Deleted, r.Err = s.DeleteClassBefore(ctx, c, r.Before)
		before := r.Before.Format(time.RFC3339)
		if r.Err != nil {
			log.Error("retention failed", "class", string(c), "data", c.describe(), "before", before, "err", r.Err)
		} else {
			log.Info("retention deleted", "class", string(c), "data", c.describe(), "deleted", r.Deleted, "before", before)
		}
		out = append(out, r)
	}
	return out
}

// RetentionConfig configures a Retention job.
type RetentionConfig struct {
	// Store is the database whose data is deleted.
	Store *Store
	// Policy is how long each class is kept; zero fields take their
	// defaults.
	Policy RetentionPolicy
	// Every is how often a pass runs; zero means DefaultRetentionEvery.
	Every time.Duration
	// Logger receives one line per class and pass; nil means
	// slog.Default().
	Logger *slog.Logger
	// Now is the clock; nil means time.Now. (The audit log's minimum is
	// always held against the real time: see PruneAudit.)
	Now func() time.Time
}

// Retention is the one job that deletes the store's data past its
// retention, every class of it: a pass at start, then one every Every.
type Retention struct {
	cfg RetentionConfig
}

// NewRetention checks cfg's policy (Check) and makes the job; Run starts
// it.
func NewRetention(cfg RetentionConfig) (*Retention, error) {
	if cfg.Store == nil {
		return nil, errors.New("store: retention needs a store")
	}
	if err := cfg.Policy.Check(); err != nil {
		return nil, fmt.Errorf("store: retention: %w", err)
	}
	cfg.Policy = cfg.Policy.WithDefaults()
	if cfg.Every <= 0 {
		cfg.Every = DefaultRetentionEvery
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Retention{cfg: cfg}, nil
}

// Policy returns the job's policy, defaults applied.
func (r *Retention) Policy() RetentionPolicy { return r.cfg.Policy }

// RunOnce runs one pass over every class now (RunRetention).
func (r *Retention) RunOnce(ctx context.Context) []RetentionResult {
	return r.cfg.Store.RunRetention(ctx, r.cfg.Policy, r.cfg.Now(), r.cfg.Logger)
}

// Run runs a pass now and then every Every until ctx ends; it returns
// ctx's error.
func (r *Retention) Run(ctx context.Context) error {
	t := time.NewTicker(r.cfg.Every)
	defer t.Stop()
	for {
		r.RunOnce(ctx)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Reading everything held about a period. Each reader streams: rows are
// read as the callback takes them, never all at once; an error from the
// callback stops the reader and is returned, wrapped.

// periodError wraps err with what was read and the period.
func periodError(what string, from, to time.Time, err error) error {
	return fmt.Errorf("store: %s from %s to %s: %w", what, from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339), err)
}

// EachRollup calls fn with every target's one-minute rollups of minutes
// starting at or after from and before to, ordered by time and then
// target; Count is the mean over the minute.
func (s *Store) EachRollup(ctx context.Context, from, to time.Time, fn func(event.CountPoint) error) error {
	if err := s.eachCountPoint(ctx, `SELECT target, t, sum / samples, min, max, samples FROM counts_1m
WHERE t >= ? AND t < ? ORDER BY t, target`, from, to, fn); err != nil {
		return periodError("count rollups", from, to, err)
	}
	return nil
}

// EachAlert calls fn with every alert opened at or after from and before
// to, oldest first, with its changes, first change first.
func (s *Store) EachAlert(ctx context.Context, from, to time.Time, fn func(event.Alert, []event.AlertChange) error) error {
	fail := func(err error) error { return periodError("alerts", from, to, err) }
	// one query, alerts and their changes side by side, so that no
	// second query runs while the first is read
	rows, err := s.db.QueryContext(ctx, `SELECT a.id, a.data, c.seq, c.data FROM alerts a
LEFT JOIN alert_changes c ON c.alert_id = a.id
WHERE a.opened_at >= ? AND a.opened_at < ? ORDER BY a.opened_at, a.id, c.seq`, from.UnixMilli(), to.UnixMilli())
	if err != nil {
		return fail(err)
	}
	defer rows.Close()
	var (
		cur     event.Alert
		changes []event.AlertChange
		have    bool
	)
	flush := func() error {
		if !have {
			return nil
		}
		have = false
		return fn(cur, changes)
	}
	for rows.Next() {
		var (
			id         int64
			data, cdat []byte
			seq        *int64
		)
		if err := rows.Scan(&id, &data, &seq, &cdat); err != nil {
			return fail(err)
		}
		if !have || cur.ID != id {
			if err := flush(); err != nil {
				return fail(err)
			}
			if cur, err = decodeAlert(id, data); err != nil {
				return fail(err)
			}
			changes, have = []event.AlertChange{}, true
		}
		if seq == nil {
			continue
		}
		var ch event.AlertChange
		if err := json.Unmarshal(cdat, &ch); err != nil {
			return fail(fmt.Errorf("alert %d change %d: stored data: %w", id, *seq, err))
		}
		ch.At = ch.At.UTC()
		ch.Alert = utcAlert(ch.Alert)
		changes = append(changes, ch)
	}
	if err := rows.Err(); err != nil {
		return fail(err)
	}
	if err := flush(); err != nil {
		return fail(err)
	}
	return nil
}

// EachAuditEntry calls fn with every audit entry made at or after from and
// before to, in chain order.
func (s *Store) EachAuditEntry(ctx context.Context, from, to time.Time, fn func(AuditEntry) error) error {
	err := s.scanAudit(ctx, `SELECT id, at, actor, role, action, target, detail, remote, prev_hash, hash FROM audit
WHERE at >= ? AND at < ? ORDER BY id`, []any{from.UnixMilli(), to.UnixMilli()}, fn)
	if err != nil {
		return periodError("audit entries", from, to, err)
	}
	return nil
}

// EachHeatmapBucket calls fn with every camera's heatmap buckets starting
// at or after from and before to, by camera and then time.
func (s *Store) EachHeatmapBucket(ctx context.Context, from, to time.Time, fn func(HeatmapBucket) error) error {
	fail := func(err error) error { return periodError("heatmap buckets", from, to, err) }
	rows, err := s.db.QueryContext(ctx, `SELECT camera, bucket_start, cols, rows, frames, data FROM heatmap_buckets
WHERE bucket_start >= ? AND bucket_start < ? ORDER BY camera, bucket_start`, ceilUnix(from), ceilUnix(to))
	if err != nil {
		return fail(err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			b     HeatmapBucket
			start int64
			blob  []byte
		)
		if err := rows.Scan(&b.Camera, &start, &b.Cols, &b.Rows, &b.Frames, &blob); err != nil {
			return fail(err)
		}
		b.Start = time.Unix(start, 0).UTC()
		if b.Data, err = decodeFloat32s(blob, b.Cols*b.Rows); err != nil {
			return fail(fmt.Errorf("camera %q bucket at %s: %w", b.Camera, b.Start.Format(time.RFC3339), err))
		}
		if err := fn(b); err != nil {
			return fail(err)
		}
	}
	if err := rows.Err(); err != nil {
		return fail(err)
	}
	return nil
}

// EachZoneLayout calls fn with the zone layouts that were in force during
// the period: each camera's layout in force at from (its last save before
// from) and every layout saved at or after from and before to, by camera
// and then save.
func (s *Store) EachZoneLayout(ctx context.Context, from, to time.Time, fn func(ZoneLayout) error) error {
	fail := func(err error) error { return periodError("zone layouts", from, to, err) }
	rows, err := s.db.QueryContext(ctx, "SELECT "+zoneLayoutColumns+` FROM zone_layouts
WHERE (updated_at >= ?1 AND updated_at < ?2)
   OR id IN (SELECT max(id) FROM zone_layouts WHERE updated_at < ?1 GROUP BY camera)
ORDER BY camera, id`, from.UnixMilli(), to.UnixMilli())
	if err != nil {
		return fail(err)
	}
	defer rows.Close()
	for rows.Next() {
		l, err := scanZoneLayout(rows)
		if err != nil {
			return fail(err)
		}
		if err := fn(l); err != nil {
			return fail(err)
		}
	}
	if err := rows.Err(); err != nil {
		return fail(err)
	}
	return nil
}
