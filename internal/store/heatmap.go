package store

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
)

// HeatmapBucket is the density of one camera summed over one time bucket:
// each frame analysed in the bucket added its people-per-cell grid to Data,
// so Data[i]/Frames is the average number of people in cell i.
type HeatmapBucket struct {
	// Camera names the camera.
	Camera string
	// Start is when the bucket begins; it is stored at one-second
	// precision.
	Start time.Time
	// Cols and Rows are the grid size.
	Cols, Rows int
	// Frames is the number of frames summed.
	Frames int64
	// Data holds Rows rows of Cols sums.
	Data []float32
}

// HeatmapSum is the sum of a camera's heatmap buckets over a time range.
type HeatmapSum struct {
	// Camera names the camera.
	Camera string
	// From and To bound the range asked for: buckets starting at or after
	// From and before To.
	From, To time.Time
	// Buckets is how many buckets were summed.
	Buckets int
	// Cols and Rows are the grid size; zero when no bucket matched.
	Cols, Rows int
	// Frames is the number of frames summed over all buckets.
	Frames int64
	// Data holds Rows rows of Cols sums; nil when no bucket matched.
	Data []float64
}

// check reports what is wrong with b, if anything.
func (b *HeatmapBucket) check() error {
	switch {
	case b.Camera == "":
		return errors.New("empty camera name")
	case b.Cols <= 0 || b.Rows <= 0:
		return fmt.Errorf("grid %dx%d is not positive", b.Cols, b.Rows)
	case len(b.Data) != b.Cols*b.Rows:
		return fmt.Errorf("%d values for a %dx%d grid", len(b.Data), b.Cols, b.Rows)
	case b.Frames < 0:
		return fmt.Errorf("negative frame count %d", b.Frames)
	}
	for i, v := range b.Data {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("value %v in cell %d is not finite", v, i)
		}
	}
	return nil
}

// AddHeatmapBucket adds b to the stored bucket of the same camera and
// start: the sums and the frame counts add up, so a bucket may be written
// in several parts. A new bucket is inserted as is. A bucket stored with
// another grid size is an error and is left unchanged.
func (s *Store) AddHeatmapBucket(ctx context.Context, b HeatmapBucket) error {
	if err := b.check(); err != nil {
		return fmt.Errorf("store: add heatmap bucket of camera %q at %s: %w", b.Camera, b.Start.UTC().Format(time.RFC3339), err)
	}
	start := b.Start.Unix()
	fail := func(err error) error {
		return fmt.Errorf("store: add heatmap bucket of camera %q at %s: %w", b.Camera, time.Unix(start, 0).UTC().Format(time.RFC3339), err)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fail(err)
	}
	defer tx.Rollback()
	var (
		cols, rows int
		frames     int64
		blob       []byte
	)
	err = tx.QueryRowContext(ctx, "SELECT cols, rows, frames, data FROM heatmap_buckets WHERE camera = ? AND bucket_start = ?",
		b.Camera, start).Scan(&cols, &rows, &frames, &blob)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		_, err = tx.ExecContext(ctx, "INSERT INTO heatmap_buckets (camera, bucket_start, cols, rows, frames, data) VALUES (?, ?, ?, ?, ?, ?)",
			b.Camera, start, b.Cols, b.Rows, b.Frames, encodeFloat32s(b.Data))
		if err != nil {
			return fail(err)
		}
	case err != nil:
		return fail(err)
	default:
		if cols != b.Cols || rows != b.Rows {
			return fail(fmt.Errorf("stored grid is %dx%d, new part is %dx%d", cols, rows, b.Cols, b.Rows))
		}
		sum, err := decodeFloat32s(blob, cols*rows)
		if err != nil {
			return fail(err)
		}
		for i, v := range b.Data {
			sum[i] += v
		}
		_, err = tx.ExecContext(ctx, "UPDATE heatmap_buckets SET frames = ?, data = ? WHERE camera = ? AND bucket_start = ?",
			frames+b.Frames, encodeFloat32s(sum), b.Camera, start)
		if err != nil {
			return fail(err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fail(err)
	}
	return nil
}

// HeatmapBuckets returns the buckets of camera starting at or after from and
// before to, oldest first.
func (s *Store) HeatmapBuckets(ctx context.Context, camera string, from, to time.Time) ([]HeatmapBucket, error) {
	var out []HeatmapBucket
	err := s.scanHeatmap(ctx, camera, from, to, func(b HeatmapBucket) error {
		out = append(out, b)
		return nil
	})
	return out, err
}

// SumHeatmap sums the buckets of camera starting at or after from and
// before to. With no such bucket it returns a sum of zero frames and no
// grid. Buckets of differing grid sizes cannot be summed: that is an error
// naming both sizes.
func (s *Store) SumHeatmap(ctx context.Context, camera string, from, to time.Time) (HeatmapSum, error) {
	sum := HeatmapSum{Camera: camera, From: from, To: to}
	err := s.scanHeatmap(ctx, camera, from, to, func(b HeatmapBucket) error {
		if sum.Data == nil {
			sum.Cols, sum.Rows = b.Cols, b.Rows
			sum.Data = make([]float64, b.Cols*b.Rows)
		} else if b.Cols != sum.Cols || b.Rows != sum.Rows {
			return fmt.Errorf("bucket at %s has a %dx%d grid, earlier ones %dx%d",
				b.Start.UTC().Format(time.RFC3339), b.Cols, b.Rows, sum.Cols, sum.Rows)
		}
		for i, v := range b.Data {
			sum.Data[i] += float64(v)
		}
		sum.Frames += b.Frames
		sum.Buckets++
		return nil
	})
	if err != nil {
		return HeatmapSum{}, err
	}
	return sum, nil
}

// scanHeatmap calls fn with each bucket of camera in [from, to), oldest
// first.
func (s *Store) scanHeatmap(ctx context.Context, camera string, from, to time.Time, fn func(HeatmapBucket) error) error {
	fail := func(err error) error {
		return fmt.Errorf("store: heatmap of camera %q from %s to %s: %w", camera,
			from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339), err)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT bucket_start, cols, rows, frames, data FROM heatmap_buckets
WHERE camera = ? AND bucket_start >= ? AND bucket_start < ? ORDER BY bucket_start`,
		camera, ceilUnix(from), ceilUnix(to))
	if err != nil {
		return fail(err)
	}
	defer rows.Close()
	for rows.Next() {
		b := HeatmapBucket{Camera: camera}
		var (
			start int64
			blob  []byte
		)
		if err := rows.Scan(&start, &b.Cols, &b.Rows, &b.Frames, &blob); err != nil {
			return fail(err)
		}
		b.Start = time.Unix(start, 0)
		if b.Data, err = decodeFloat32s(blob, b.Cols*b.Rows); err != nil {
			return fail(fmt.Errorf("bucket at %s: %w", b.Start.UTC().Format(time.RFC3339), err))
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

// DeleteHeatmapBefore deletes every camera's buckets that start before t
// and returns how many it deleted.
func (s *Store) DeleteHeatmapBefore(ctx context.Context, t time.Time) (int64, error) {
	res, err := s.db.ExecContext(ctx, "DELETE FROM heatmap_buckets WHERE bucket_start < ?", ceilUnix(t))
	if err != nil {
		return 0, fmt.Errorf("store: delete heatmap buckets before %s: %w", t.UTC().Format(time.RFC3339), err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("store: delete heatmap buckets before %s: %w", t.UTC().Format(time.RFC3339), err)
	}
	return n, nil
}

// ceilUnix returns t in unix seconds, rounded up, so that a bound with a
// fraction of a second excludes the second it falls in as the
// one-second-precision start times require.
func ceilUnix(t time.Time) int64 {
	s := t.Unix()
	if t.Nanosecond() > 0 {
		s++
	}
	return s
}

// encodeFloat32s packs v as little-endian float32s.
func encodeFloat32s(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f))
	}
	return b
}

// decodeFloat32s unpacks n little-endian float32s from b.
func decodeFloat32s(b []byte, n int) ([]float32, error) {
	if len(b) != 4*n {
		return nil, fmt.Errorf("data holds %d bytes, want %d for %d cells", len(b), 4*n, n)
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v, nil
}
