package store

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"flowwatch/internal/event"
)

// countRows returns the number of rows of table, optionally restricted by
// where.
func countRows(t *testing.T, s *Store, table, where string, args ...any) int {
	t.Helper()
	q := "SELECT count(*) FROM " + table
	if where != "" {
		q += " WHERE " + where
	}
	var n int
	if err := s.db.QueryRow(q, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestCountsPerSecondUpsertAndMinuteRollup(t *testing.T) {
	s, path := openTemp(t)
	ctx := context.Background()
	t0 := time.Date(2025, 5, 1, 10, 0, 0, 0, time.UTC)
	a, b := event.AreaTarget("plaza"), event.ZoneTarget("gate-east", "queue")
	// The same instants in Beijing time land in the same UTC seconds.
	cst := time.FixedZone("CST", 8*3600)
	first := []CountValue{
		{Target: a, Time: t0.Add(100 * time.Millisecond).In(cst), Count: 5},
		{Target: a, Time: t0.Add(900 * time.Millisecond), Count: 9},
		{Target: b, Time: t0, Count: 100},
	}
	second := []CountValue{
		{Target: a, Time: t0.Add(500 * time.Millisecond), Count: 3}, // last written in 10:00:00
		{Target: a, Time: t0.Add(time.Second), Count: 4},
		{Target: a, Time: t0.Add(59*time.Second + 999*time.Millisecond), Count: 10},
		{Target: a, Time: t0.Add(time.Minute), Count: 2},
	}
	for _, batch := range [][]CountValue{first, second} {
		if err := s.AddCounts(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AddCounts(ctx, nil); err != nil {
		t.Fatalf("an empty batch: %v", err)
	}
	s.Close()

	// Read back from the file with a fresh connection.
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.Counts(ctx, a, t0, t0.Add(2*time.Minute), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	want := []event.CountPoint{
		{Target: a, Time: t0, Count: 3, Min: 3, Max: 9, Samples: 3},
		{Target: a, Time: t0.Add(time.Second), Count: 4, Min: 4, Max: 4, Samples: 1},
		{Target: a, Time: t0.Add(59 * time.Second), Count: 10, Min: 10, Max: 10, Samples: 1},
		{Target: a, Time: t0.Add(time.Minute), Count: 2, Min: 2, Max: 2, Samples: 1},
	}
	checkPoints(t, "per second", got, want)

	got, err = s.Counts(ctx, a, t0, t0.Add(2*time.Minute), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	want = []event.CountPoint{
		{Target: a, Time: t0, Count: (5 + 9 + 3 + 4 + 10) / 5.0, Min: 3, Max: 10, Samples: 5},
		{Target: a, Time: t0.Add(time.Minute), Count: 2, Min: 2, Max: 2, Samples: 1},
	}
	checkPoints(t, "per minute", got, want)

	got, err = s.Counts(ctx, b, t0, t0.Add(time.Hour), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	checkPoints(t, "other target", got, []event.CountPoint{{Target: b, Time: t0, Count: 100, Min: 100, Max: 100, Samples: 1}})
}

// checkPoints fails t unless got equals want, times in UTC.
func checkPoints(t *testing.T, what string, got, want []event.CountPoint) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d points %+v, want %d %+v", what, len(got), got, len(want), want)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Time.Location() != time.UTC {
			t.Errorf("%s: point %d time %s is not in UTC", what, i, g.Time)
		}
		if g.Target != w.Target || !g.Time.Equal(w.Time) || g.Count != w.Count || g.Min != w.Min || g.Max != w.Max || g.Samples != w.Samples {
			t.Errorf("%s: point %d = %+v, want %+v", what, i, g, w)
		}
	}
}

func TestCountsRangeBoundsAndResolution(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	t0 := time.Date(2025, 5, 1, 10, 0, 0, 0, time.UTC)
	tg := event.AreaTarget("hall")
	var vs []CountValue
	for i := range 5 {
		vs = append(vs, CountValue{Target: tg, Time: t0.Add(time.Duration(i) * time.Second), Count: float64(i)})
	}
	// Written newest first: reads still come oldest first.
	for i, j := 0, len(vs)-1; i < j; i, j = i+1, j-1 {
		vs[i], vs[j] = vs[j], vs[i]
	}
	if err := s.AddCounts(ctx, vs); err != nil {
		t.Fatal(err)
	}
	// [10:00:00.5, 10:00:03.5) holds the seconds 1, 2 and 3.
	got, err := s.Counts(ctx, tg, t0.Add(500*time.Millisecond), t0.Add(3500*time.Millisecond), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Count != 1 || got[1].Count != 2 || got[2].Count != 3 {
		t.Fatalf("points in [0.5s, 3.5s): %+v, want counts 1, 2, 3", got)
	}
	// [1s, 3s) holds 1 and 2: the end is excluded.
	got, err = s.Counts(ctx, tg, t0.Add(time.Second), t0.Add(3*time.Second), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Count != 1 || got[1].Count != 2 {
		t.Fatalf("points in [1s, 3s): %+v, want counts 1, 2", got)
	}
	// The minute starting at 10:00 is outside [10:00:00.5, 10:01).
	got, err = s.Counts(ctx, tg, t0.Add(500*time.Millisecond), t0.Add(time.Minute), time.Minute)
	if err != nil || len(got) != 0 {
		t.Fatalf("minutes in [0.5s, 1m): %+v, %v; want none", got, err)
	}
	got, err = s.Counts(ctx, "area:nowhere", t0, t0.Add(time.Hour), time.Second)
	if err != nil || len(got) != 0 {
		t.Fatalf("unknown target: %+v, %v; want none", got, err)
	}
	for _, res := range []time.Duration{0, 5 * time.Second, time.Hour} {
		if _, err := s.Counts(ctx, tg, t0, t0.Add(time.Hour), res); err == nil || !strings.Contains(err.Error(), res.String()) {
			t.Errorf("resolution %s: got %v, want an error naming it", res, err)
		}
	}
}

func TestAddCountsRejectsBadValuesWritingNothing(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	t0 := time.Date(2025, 5, 1, 10, 0, 0, 0, time.UTC)
	good := CountValue{Target: "area:plaza", Time: t0, Count: 12}
	for name, bad := range map[string]CountValue{
		"NaN":          {Target: "area:plaza", Time: t0, Count: math.NaN()},
		"+Inf":         {Target: "area:plaza", Time: t0, Count: math.Inf(1)},
		"-Inf":         {Target: "area:plaza", Time: t0, Count: math.Inf(-1)},
		"negative":     {Target: "area:plaza", Time: t0, Count: -1},
		"empty target": {Target: "", Time: t0, Count: 1},
		"zero time":    {Target: "area:plaza", Count: 1},
	} {
		err := s.AddCounts(ctx, []CountValue{good, bad})
		if err == nil {
			t.Errorf("%s: accepted %+v", name, bad)
			continue
		}
		if !strings.Contains(err.Error(), "value 1 of 2") {
			t.Errorf("%s: error %q does not name the bad value", name, err)
		}
	}
	if n := countRows(t, s, "counts_1s", ""); n != 0 {
		t.Fatalf("%d per-second rows after rejected batches, want 0", n)
	}
	if n := countRows(t, s, "counts_1m", ""); n != 0 {
		t.Fatalf("%d per-minute rows after rejected batches, want 0", n)
	}
}

func TestReplayCountsOrdersByTimeThenTarget(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	t0 := time.Date(2025, 5, 1, 10, 0, 0, 0, time.UTC)
	vs := []CountValue{
		{Target: "zone:c/z", Time: t0.Add(2 * time.Second), Count: 1},
		{Target: "area:b", Time: t0.Add(time.Second), Count: 2},
		{Target: "zone:c/z", Time: t0.Add(time.Second), Count: 3},
		{Target: "area:a", Time: t0.Add(2 * time.Second), Count: 4},
		{Target: "area:b", Time: t0, Count: 5},
		{Target: "area:a", Time: t0.Add(3 * time.Second), Count: 6}, // outside [0, 3s)
		{Target: "area:a", Time: t0.Add(-time.Second), Count: 7},    // outside
	}
	if err := s.AddCounts(ctx, vs); err != nil {
		t.Fatal(err)
	}
	var got []string
	err := s.ReplayCounts(ctx, t0, t0.Add(3*time.Second), func(p event.CountPoint) error {
		if p.Time.Location() != time.UTC {
			t.Errorf("point time %s is not in UTC", p.Time)
		}
		got = append(got, p.Time.Format("05")+" "+string(p.Target)+" "+strings.Repeat("|", int(p.Count)))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"00 area:b |||||",
		"01 area:b ||",
		"01 zone:c/z |||",
		"02 area:a ||||",
		"02 zone:c/z |",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("replay:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// An error from fn stops the replay and comes back.
	stop := errors.New("enough")
	calls := 0
	err = s.ReplayCounts(ctx, t0, t0.Add(3*time.Second), func(event.CountPoint) error {
		calls++
		return stop
	})
	if !errors.Is(err, stop) || calls != 1 {
		t.Fatalf("replay stopped by fn: %v after %d calls, want %v after 1", err, calls, stop)
	}

	targets, err := s.CountTargets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(targetStrings(targets), ",") != "area:a,area:b,zone:c/z" {
		t.Fatalf("count targets %v, want area:a, area:b, zone:c/z", targets)
	}
}

// targetStrings converts targets to strings.
func targetStrings(ts []event.Target) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = string(t)
	}
	return out
}

func TestCountsRetentionDeletesExactlyWhatIsDue(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	t0 := time.Date(2025, 5, 1, 10, 0, 0, 0, time.UTC)
	var vs []CountValue
	// One value every 20 s for 3 minutes in two targets: 9 seconds and
	// 3 minutes each.
	for i := range 9 {
		for _, tg := range []event.Target{"area:a", "area:b"} {
			vs = append(vs, CountValue{Target: tg, Time: t0.Add(time.Duration(20*i) * time.Second), Count: float64(i)})
		}
	}
	if err := s.AddCounts(ctx, vs); err != nil {
		t.Fatal(err)
	}
	// Seconds before 10:00:40.5 are 0, 20 and 40, in each target.
	n, err := s.DeleteCountsBefore(ctx, t0.Add(40*time.Second+500*time.Millisecond))
	if err != nil || n != 6 {
		t.Fatalf("delete counts before 10:00:40.5: %d, %v; want 6", n, err)
	}
	left, err := s.Counts(ctx, "area:a", t0, t0.Add(time.Hour), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 6 || !left[0].Time.Equal(t0.Add(time.Minute)) {
		t.Fatalf("after deleting: %+v, want 6 points from 10:01:00", left)
	}
	// The rollups are untouched by that.
	mins, err := s.Counts(ctx, "area:a", t0, t0.Add(time.Hour), time.Minute)
	if err != nil || len(mins) != 3 || mins[0].Samples != 3 {
		t.Fatalf("minutes after deleting seconds: %+v, %v; want 3 of 3 samples", mins, err)
	}
	// Minutes starting before 10:01:00 are 10:00 only; a second pass has
	// nothing left to do.
	n, err = s.DeleteRollupsBefore(ctx, t0.Add(time.Minute))
	if err != nil || n != 2 {
		t.Fatalf("delete rollups before 10:01: %d, %v; want 2", n, err)
	}
	n, err = s.DeleteRollupsBefore(ctx, t0.Add(time.Minute))
	if err != nil || n != 0 {
		t.Fatalf("deleting rollups again: %d, %v; want 0", n, err)
	}
	mins, err = s.Counts(ctx, "area:b", t0, t0.Add(time.Hour), time.Minute)
	if err != nil || len(mins) != 2 || !mins[0].Time.Equal(t0.Add(time.Minute)) {
		t.Fatalf("minutes left: %+v, %v; want 10:01 and 10:02", mins, err)
	}
	if got := countRows(t, s, "counts_1s", ""); got != 12 {
		t.Fatalf("%d per-second rows left, want 12", got)
	}
}
