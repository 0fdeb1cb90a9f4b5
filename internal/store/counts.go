package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"flowwatch/internal/event"
)

// CountValue is one observed count of a target.
type CountValue struct {
	// Target is the zone or area counted.
	Target event.Target
	// Time is when the count was observed; it is stored at one-second
	// precision (and rolled up per minute).
	Time time.Time
	// Count is the number of people: finite and not negative.
	Count float64
}

// check reports what is wrong with v, if anything.
func (v *CountValue) check() error {
	switch {
	case v.Target == "":
		return errors.New("empty target")
	case v.Time.IsZero():
		return errors.New("zero time")
	case math.IsNaN(v.Count) || math.IsInf(v.Count, 0):
		return fmt.Errorf("count %v is not finite", v.Count)
	case v.Count < 0:
		return fmt.Errorf("count %v is negative", v.Count)
	}
	return nil
}

// AddCounts stores vs in one transaction. Each value updates the point of
// its target's second (whose count becomes the value, the last one written
// in that second, with the minimum, maximum and number of samples widened)
// and the rollup of its target's minute (whose sum, minimum, maximum and
// number of samples take the value in). A bad value (empty target, zero
// time, a count that is negative or not finite) is an error naming it, and
// nothing of the batch is written.
func (s *Store) AddCounts(ctx context.Context, vs []CountValue) error {
	for i := range vs {
		if err := vs[i].check(); err != nil {
			return fmt.Errorf("store: add counts: value %d of %d (target %q at %s): %w",
				i, len(vs), vs[i].Target, vs[i].Time.UTC().Format(time.RFC3339Nano), err)
		}
	}
	if len(vs) == 0 {
		return nil
	}
	fail := func(err error) error {
		return fmt.Errorf("store: add %d counts: %w", len(vs), err)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fail(err)
	}
	defer tx.Rollback()
	perSecond, err := tx.PrepareContext(ctx, `INSERT INTO counts_1s (target, t, count, min, max, samples) VALUES (?1, ?2, ?3, ?3, ?3, 1)
ON CONFLICT (target, t) DO UPDATE SET
	count = excluded.count,
	min = min(counts_1s.min, excluded.min),
	max = max(counts_1s.max, excluded.max),
	samples = counts_1s.samples + 1`)
	if err != nil {
		return fail(err)
	}
	defer perSecond.Close()
	perMinute, err := tx.PrepareContext(ctx, `INSERT INTO counts_1m (target, t, sum, min, max, samples) VALUES (?1, ?2, ?3, ?3, ?3, 1)
ON CONFLICT (target, t) DO UPDATE SET
	sum = counts_1m.sum + excluded.sum,
	min = min(counts_1m.min, excluded.min),
	max = max(counts_1m.max, excluded.max),
	samples = counts_1m.samples + 1`)
	if err != nil {
		return fail(err)
	}
	defer perMinute.Close()
	for _, v := range vs {
		sec := v.Time.Unix()
		if _, err := perSecond.ExecContext(ctx, string(v.Target), sec, v.Count); err != nil {
			return fail(fmt.Errorf("target %q at %s: %w", v.Target, time.Unix(sec, 0).UTC().Format(time.RFC3339), err))
		}
		minute := sec - mod(sec, 60)
		if _, err := perMinute.ExecContext(ctx, string(v.Target), minute, v.Count); err != nil {
			return fail(fmt.Errorf("target %q, minute %s: %w", v.Target, time.Unix(minute, 0).UTC().Format(time.RFC3339), err))
		}
	}
	if err := tx.Commit(); err != nil {
		return fail(err)
	}
	return nil
}

// Counts returns target's stored points starting at or after from and
// before to, oldest first. With res time.Second they are the one-second
// points (Count the last count in the second); with res time.Minute the
// one-minute rollups (Count the mean over the minute). Any other res is an
// error.
func (s *Store) Counts(ctx context.Context, target event.Target, from, to time.Time, res time.Duration) ([]event.CountPoint, error) {
	fail := func(err error) error {
		return fmt.Errorf("store: counts of %q from %s to %s at %s resolution: %w", target,
			from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339), res, err)
	}
	var query string
	switch res {
	case time.Second:
		query = "SELECT t, count, min, max, samples FROM counts_1s WHERE target = ? AND t >= ? AND t < ? ORDER BY t"
	case time.Minute:
		query = "SELECT t, sum / samples, min, max, samples FROM counts_1m WHERE target = ? AND t >= ? AND t < ? ORDER BY t"
	default:
		return nil, fail(errors.New("the resolution must be 1s or 1m"))
	}
	rows, err := s.db.QueryContext(ctx, query, string(target), ceilUnix(from), ceilUnix(to))
	if err != nil {
		return nil, fail(err)
	}
	defer rows.Close()
	var out []event.CountPoint
	for rows.Next() {
		p := event.CountPoint{Target: target}
		var t int64
		if err := rows.Scan(&t, &p.Count, &p.Min, &p.Max, &p.Samples); err != nil {
			return nil, fail(err)
		}
		p.Time = time.Unix(t, 0).UTC()
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fail(err)
	}
	return out, nil
}

// ReplayCounts calls fn with every one-second point of every target
// starting at or after from and before to, ordered by time and, within a
// second, by target. The points are read as fn takes them, not loaded all
// at once. An error from fn stops the replay and is returned, wrapped.
func (s *Store) ReplayCounts(ctx context.Context, from, to time.Time, fn func(event.CountPoint) error) error {
	err := s.eachCountPoint(ctx, `SELECT target, t, count, min, max, samples FROM counts_1s
WHERE t >= ? AND t < ? ORDER BY t, target`, from, to, func(p event.CountPoint) error {
		if err := fn(p); err != nil {
			return fmt.Errorf("point of %q at %s: %w", p.Target, p.Time.Format(time.RFC3339), err)
		}
		return nil
	})
	if err != nil {
		return periodError("replay counts", from, to, err)
	}
	return nil
}

// eachCountPoint runs query, whose columns are target, t, count, min, max
// and samples and whose arguments are from and to in Unix seconds
// (rounded up), and calls fn with each row's point; its errors, fn's
// included, come back unwrapped.
func (s *Store) eachCountPoint(ctx context.Context, query string, from, to time.Time, fn func(event.CountPoint) error) error {
	rows, err := s.db.QueryContext(ctx, query, ceilUnix(from), ceilUnix(to))
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			p      event.CountPoint
			target string
			t      int64
		)
		if err := rows.Scan(&target, &t, &p.Count, &p.Min, &p.Max, &p.Samples); err != nil {
			return err
		}
		p.Target, p.Time = event.Target(target), time.Unix(t, 0).UTC()
		if err := fn(p); err != nil {
			return err
		}
	}
	return rows.Err()
}

// CountTargets returns the targets that have one-minute rollups stored, in
// name order.
func (s *Store) CountTargets(ctx context.Context) ([]event.Target, error) {
	// A skip scan: one primary-key lookup per target rather than a read of
	// every rollup.
	rows, err := s.db.QueryContext(ctx, `WITH RECURSIVE targets (name) AS (
	SELECT min(target) FROM counts_1m
	UNION ALL
	SELECT (SELECT min(target) FROM counts_1m WHERE target > targets.name) FROM targets WHERE name IS NOT NULL
)
SELECT name FROM targets WHERE name IS NOT NULL`)
	if err != nil {
		return nil, fmt.Errorf("store: count targets: %w", err)
	}
	defer rows.Close()
	var out []event.Target
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			return nil, fmt.Errorf("store: count targets: %w", err)
		}
		out = append(out, event.Target(t))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: count targets: %w", err)
	}
	return out, nil
}

// DeleteCountsBefore deletes every target's one-second points that start
// before t and returns how many it deleted. The minute rollups stay.
func (s *Store) DeleteCountsBefore(ctx context.Context, t time.Time) (int64, error) {
	return s.deleteBefore(ctx, "counts_1s", "one-second counts", ceilUnix(t), t)
}

// DeleteRollupsBefore deletes every target's one-minute rollups of minutes
// that start before t and returns how many it deleted.
func (s *Store) DeleteRollupsBefore(ctx context.Context, t time.Time) (int64, error) {
	return s.deleteBefore(ctx, "counts_1m", "one-minute count rollups", ceilUnix(t), t)
}

// deleteBefore deletes the rows of table whose column t is below bound;
// what and at name them in errors.
func (s *Store) deleteBefore(ctx context.Context, table, what string, bound int64, at time.Time) (int64, error) {
	res, err := s.db.ExecContext(ctx, "DELETE FROM "+table+" WHERE t < ?", bound)
	if err != nil {
		return 0, fmt.Errorf("store: delete %s before %s: %w", what, at.UTC().Format(time.RFC3339), err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("store: delete %s before %s: %w", what, at.UTC().Format(time.RFC3339), err)
	}
	return n, nil
}

// mod returns a modulo b, in [0, b) for positive b, so that times before
// 1970 round down to their minute too.
func mod(a, b int64) int64 {
	m := a % b
	if m < 0 {
		m += b
	}
	return m
}
