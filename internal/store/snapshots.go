package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Snapshot describes one stored picture of a camera: taken on an admin's
// request, blurred or not, kept until deleted or past its retention. The
// JPEG itself is read apart (SnapshotJPEG), so that lists stay small.
type Snapshot struct {
	// ID numbers the snapshot; later ones have higher IDs.
	ID int64 `json:"id"`
	// Camera names the camera.
	Camera string `json:"camera"`
	// At is when it was stored, By by whom.
	At time.Time `json:"at"`
	By string    `json:"by"`
	// Blurred tells whether the picture was blurred before it was stored;
	// an unblurred one was never stored.
	Blurred bool `json:"blurred"`
	// Width and Height are the picture's size in pixels.
	Width  int `json:"width"`
	Height int `json:"height"`
	// Bytes is the JPEG's length.
	Bytes int `json:"bytes"`
}

// snapshotColumns are the columns scanSnapshot reads, in order, before
// the JPEG when it is read too.
const snapshotColumns = "id, camera, taken_at, taken_by, blurred, width, height, length(jpeg)"

// scanSnapshot reads one snapshots row of snapshotColumns, and the JPEG
// when jpeg is not nil.
func scanSnapshot(row rowScanner, jpeg *[]byte) (Snapshot, error) {
	var (
		sn Snapshot
		at int64
	)
	dest := []any{&sn.ID, &sn.Camera, &at, &sn.By, &sn.Blurred, &sn.Width, &sn.Height, &sn.Bytes}
	if jpeg != nil {
		dest = append(dest, jpeg)
	}
	if err := row.Scan(dest...); err != nil {
		return Snapshot{}, err
	}
	sn.At = time.UnixMilli(at).UTC()
	return sn, nil
}

// SaveSnapshot stores jpeg as a picture of sn.Camera taken at sn.At by
// sn.By, and returns sn with its ID and size. It needs a camera, a time,
// a size and a picture; it does not decode the JPEG.
func (s *Store) SaveSnapshot(ctx context.Context, sn Snapshot, jpeg []byte) (Snapshot, error) {
	fail := func(err error) (Snapshot, error) {
		return Snapshot{}, fmt.Errorf("store: save snapshot of camera %q: %w", sn.Camera, err)
	}
	switch {
	case sn.Camera == "":
		return fail(errors.New("no camera"))
	case sn.At.IsZero():
		return fail(errors.New("zero time"))
	case sn.Width <= 0 || sn.Height <= 0:
		return fail(fmt.Errorf("picture size %dx%d", sn.Width, sn.Height))
	case len(jpeg) == 0:
		return fail(errors.New("empty picture"))
	}
	sn.At = time.UnixMilli(sn.At.UnixMilli()).UTC()
	res, err := s.db.ExecContext(ctx, `INSERT INTO snapshots (camera, taken_at, taken_by, blurred, width, height, jpeg)
VALUES (?, ?, ?, ?, ?, ?, ?)`, sn.Camera, sn.At.UnixMilli(), sn.By, sn.Blurred, sn.Width, sn.Height, jpeg)
	if err != nil {
		return fail(err)
	}
	if sn.ID, err = res.LastInsertId(); err != nil {
		return fail(err)
	}
	sn.Bytes = len(jpeg)
	return sn, nil
}

// Snapshots returns the camera's stored snapshots, newest first, at most
// limit of them (all when limit ≤ 0).
func (s *Store) Snapshots(ctx context.Context, camera string, limit int) ([]Snapshot, error) {
	out, err := cameraNewest(ctx, s, []Snapshot{}, "SELECT "+snapshotColumns+" FROM snapshots", camera, limit,
		func(row rowScanner) (Snapshot, error) { return scanSnapshot(row, nil) })
	if err != nil {
		return nil, fmt.Errorf("store: snapshots of camera %q: %w", camera, err)
	}
	return out, nil
}

// SnapshotJPEG returns the stored snapshot with the given id and its JPEG;
// ErrNotFound, wrapped, when there is none.
func (s *Store) SnapshotJPEG(ctx context.Context, id int64) (Snapshot, []byte, error) {
	var jpeg []byte
	sn, err := scanSnapshot(s.db.QueryRowContext(ctx, "SELECT "+snapshotColumns+", jpeg FROM snapshots WHERE id = ?", id), &jpeg)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return Snapshot{}, nil, fmt.Errorf("store: snapshot %d: %w", id, ErrNotFound)
	case err != nil:
		return Snapshot{}, nil, fmt.Errorf("store: snapshot %d: %w", id, err)
	}
	return sn, jpeg, nil
}

// LatestSnapshot returns the camera's newest stored snapshot and its
// JPEG; ErrNotFound, wrapped, when the camera has none.
func (s *Store) LatestSnapshot(ctx context.Context, camera string) (Snapshot, []byte, error) {
	var jpeg []byte
	sn, err := scanSnapshot(s.db.QueryRowContext(ctx,
		"SELECT "+snapshotColumns+", jpeg FROM snapshots WHERE camera = ? ORDER BY id DESC LIMIT 1", camera), &jpeg)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return Snapshot{}, nil, fmt.Errorf("store: latest snapshot of camera %q: %w", camera, ErrNotFound)
	case err != nil:
		return Snapshot{}, nil, fmt.Errorf("store: latest snapshot of camera %q: %w", camera, err)
	}
	return sn, jpeg, nil
}

// DeleteSnapshot deletes the stored snapshot with the given id and returns
// what it was; ErrNotFound, wrapped, when there is none.
func (s *Store) DeleteSnapshot(ctx context.Context, id int64) (Snapshot, error) {
	fail := func(err error) (Snapshot, error) {
		return Snapshot{}, fmt.Errorf("store: delete snapshot %d: %w", id, err)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fail(err)
	}
	defer tx.Rollback()
	sn, err := scanSnapshot(tx.QueryRowContext(ctx, "SELECT "+snapshotColumns+" FROM snapshots WHERE id = ?", id), nil)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return fail(ErrNotFound)
	case err != nil:
		return fail(err)
	}
	if _, err := tx.ExecContext(ctx, "DELETE FROM snapshots WHERE id = ?", id); err != nil {
		return fail(err)
	}
	if err := tx.Commit(); err != nil {
		return fail(err)
	}
	return sn, nil
}

// DeleteSnapshotsBefore deletes every camera's snapshots stored before t
// and returns how many it deleted.
func (s *Store) DeleteSnapshotsBefore(ctx context.Context, t time.Time) (int64, error) {
	res, err := s.db.ExecContext(ctx, "DELETE FROM snapshots WHERE taken_at < ?", t.UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("store: delete snapshots before %s: %w", t.UTC().Format(time.RFC3339), err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("store: delete snapshots before %s: %w", t.UTC().Format(time.RFC3339), err)
	}
	return n, nil
}

// EachSnapshot calls fn with every snapshot of every camera stored at or
// after from and before to, with its JPEG, oldest first. The rows are
// read as fn takes them, one picture in memory at a time. An error from fn
// stops it and is returned, wrapped.
func (s *Store) EachSnapshot(ctx context.Context, from, to time.Time, fn func(Snapshot, []byte) error) error {
	fail := func(err error) error {
		return fmt.Errorf("store: snapshots from %s to %s: %w", from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339), err)
	}
	rows, err := s.db.QueryContext(ctx, "SELECT "+snapshotColumns+", jpeg FROM snapshots WHERE taken_at >= ? AND taken_at < ? ORDER BY taken_at, id",
		from.UnixMilli(), to.UnixMilli())
	if err != nil {
		return fail(err)
	}
	defer rows.Close()
	for rows.Next() {
		var jpeg []byte
		sn, err := scanSnapshot(rows, &jpeg)
		if err != nil {
			return fail(err)
		}
		if err := fn(sn, jpeg); err != nil {
			return fail(fmt.Errorf("snapshot %d: %w", sn.ID, err))
		}
	}
	if err := rows.Err(); err != nil {
		return fail(err)
	}
	return nil
}
