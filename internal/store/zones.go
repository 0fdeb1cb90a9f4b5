package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// LayoutZone is one counting zone of a stored layout.
type LayoutZone struct {
	// Name identifies the zone within its camera.
	Name string `json:"name"`
	// Polygon has the zone's [x, y] points in normalized image
	// coordinates (0..1, origin top left).
	Polygon [][2]float64 `json:"polygon"`
	// Capacity is the most people the zone should hold; 0 means none set.
	Capacity int `json:"capacity"`
}

// LayoutCalibration maps a camera's picture onto the ground: four image
// points (normalized) and their measured ground positions (metres).
type LayoutCalibration struct {
	Image  [4][2]float64 `json:"image"`
	Ground [4][2]float64 `json:"ground"`
}

// ZoneLayout is a camera's zones as saved from the console. The store
// keeps every save; the latest of a camera is the one in force. The store
// checks only what it needs to keep the row readable: the console checks
// the geometry before saving.
type ZoneLayout struct {
	// ID numbers the save; later saves have higher IDs.
	ID int64 `json:"id"`
	// Camera names the camera.
	Camera string `json:"camera"`
	// Zones are the camera's counting zones; empty when it has none.
	Zones []LayoutZone `json:"zones"`
	// Calibration is nil when none was given.
	Calibration *LayoutCalibration `json:"calibration"`
	// UpdatedAt is when the layout was saved, UpdatedBy by whom.
	UpdatedAt time.Time `json:"updated_at"`
	UpdatedBy string    `json:"updated_by"`
}

// SaveZoneLayout stores l as the camera's layout in force, keeping the
// layouts saved before as history, and returns the new row's ID. It needs
// a camera and a save time.
func (s *Store) SaveZoneLayout(ctx context.Context, l ZoneLayout) (int64, error) {
	fail := func(err error) error { return fmt.Errorf("store: save zone layout of camera %q: %w", l.Camera, err) }
	switch {
	case l.Camera == "":
		return 0, fail(errors.New("no camera"))
	case l.UpdatedAt.IsZero():
		return 0, fail(errors.New("zero save time"))
	}
	zones := l.Zones
	if zones == nil {
		zones = []LayoutZone{}
	}
	zj, err := json.Marshal(zones)
	if err != nil {
		return 0, fail(err)
	}
	var cj any // NULL without a calibration
	if l.Calibration != nil {
		b, err := json.Marshal(l.Calibration)
		if err != nil {
			return 0, fail(err)
		}
		cj = string(b)
	}
	res, err := s.db.ExecContext(ctx,
		"INSERT INTO zone_layouts (camera, zones, calibration, updated_at, updated_by) VALUES (?, ?, ?, ?, ?)",
		l.Camera, string(zj), cj, l.UpdatedAt.UnixMilli(), l.UpdatedBy)
	if err != nil {
		return 0, fail(err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return 0, fail(err)
	}
	return id, nil
}

// zoneLayoutColumns are the columns scanZoneLayout reads, in order.
const zoneLayoutColumns = "id, camera, zones, calibration, updated_at, updated_by"

// scanZoneLayout reads one zone_layouts row.
func scanZoneLayout(row rowScanner) (ZoneLayout, error) {
	var (
		l     ZoneLayout
		zones string
		calib sql.NullString
		at    int64
	)
	if err := row.Scan(&l.ID, &l.Camera, &zones, &calib, &at, &l.UpdatedBy); err != nil {
		return ZoneLayout{}, err
	}
	if err := json.Unmarshal([]byte(zones), &l.Zones); err != nil {
		return ZoneLayout{}, fmt.Errorf("zone layout %d of camera %q: zones: %w", l.ID, l.Camera, err)
	}
	if l.Zones == nil {
		l.Zones = []LayoutZone{}
	}
	if calib.Valid {
		l.Calibration = new(LayoutCalibration)
		if err := json.Unmarshal([]byte(calib.String), l.Calibration); err != nil {
			return ZoneLayout{}, fmt.Errorf("zone layout %d of camera %q: calibration: %w", l.ID, l.Camera, err)
		}
	}
	l.UpdatedAt = time.UnixMilli(at).UTC()
	return l, nil
}

// ZoneLayout returns the camera's layout in force: its latest save.
// ErrNotFound, wrapped, when none was saved.
func (s *Store) ZoneLayout(ctx context.Context, camera string) (ZoneLayout, error) {
	l, err := scanZoneLayout(s.db.QueryRowContext(ctx,
		"SELECT "+zoneLayoutColumns+" FROM zone_layouts WHERE camera = ? ORDER BY id DESC LIMIT 1", camera))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return ZoneLayout{}, fmt.Errorf("store: zone layout of camera %q: %w", camera, ErrNotFound)
	case err != nil:
		return ZoneLayout{}, fmt.Errorf("store: zone layout of camera %q: %w", camera, err)
	}
	return l, nil
}

// ZoneLayouts returns the layout in force of every camera that has one,
// by camera name.
func (s *Store) ZoneLayouts(ctx context.Context) (map[string]ZoneLayout, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT "+zoneLayoutColumns+
		" FROM zone_layouts WHERE id IN (SELECT max(id) FROM zone_layouts GROUP BY camera)")
	if err != nil {
		return nil, fmt.Errorf("store: zone layouts: %w", err)
	}
	defer rows.Close()
	out := map[string]ZoneLayout{}
	for rows.Next() {
		l, err := scanZoneLayout(rows)
		if err != nil {
			return nil, fmt.Errorf("store: zone layouts: %w", err)
		}
		out[l.Camera] = l
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: zone layouts: %w", err)
	}
	return out, nil
}

// ZoneLayoutHistory returns the camera's saved layouts, newest first, at
// most limit of them (all when limit ≤ 0).
func (s *Store) ZoneLayoutHistory(ctx context.Context, camera string, limit int) ([]ZoneLayout, error) {
	out, err := cameraNewest(ctx, s, nil, "SELECT "+zoneLayoutColumns+" FROM zone_layouts", camera, limit, scanZoneLayout)
	if err != nil {
		return nil, fmt.Errorf("store: zone layout history of camera %q: %w", camera, err)
	}
	return out, nil
}

// cameraNewest appends to out the rows of selectFrom ("SELECT … FROM
// table") of the camera, newest (highest id) first, at most limit of them
// (all when limit ≤ 0), each read by scan; its errors come back unwrapped.
func cameraNewest[T any](ctx context.Context, s *Store, out []T, selectFrom, camera string, limit int, scan func(rowScanner) (T, error)) ([]T, error) {
	q := selectFrom + " WHERE camera = ? ORDER BY id DESC"
	args := []any{camera}
	if limit > 0 {
		q += " LIMIT ?"
		args = append(args, limit)
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}
