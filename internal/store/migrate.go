package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// migration is one step of the schema. Steps are applied in version order,
// each in a transaction of its own; a released step is never edited, a
// change is a new step.
type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns every schema step flowwatch knows, oldest first, with
// versions 1, 2, 3… without gaps.
func migrations() []migration {
	return []migration{
		{
			version: 1,
			name:    "heatmap buckets",
			sql: `CREATE TABLE heatmap_buckets (
	camera       TEXT    NOT NULL,
	bucket_start INTEGER NOT NULL, -- unix seconds
	cols         INTEGER NOT NULL CHECK (cols > 0),
	rows         INTEGER NOT NULL CHECK (rows > 0),
	frames       INTEGER NOT NULL CHECK (frames >= 0),
	data         BLOB    NOT NULL, -- cols*rows float32, little endian, row-major
	PRIMARY KEY (camera, bucket_start)
) WITHOUT ROWID`,
		},
	}
}

// migrate creates the schema_migrations table when missing and applies the
// migrations the database lacks.
func (s *Store) migrate(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    INTEGER PRIMARY KEY,
	name       TEXT    NOT NULL,
	applied_at INTEGER NOT NULL -- unix seconds
)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	current, err := s.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	steps := migrations()
	latest := steps[len(steps)-1].version
	if current > latest {
		return fmt.Errorf("database schema version %d is newer than this flowwatch, which knows up to %d", current, latest)
	}
	for _, m := range steps {
		if m.version <= current {
			continue
		}
		if err := s.apply(ctx, m); err != nil {
			return err
		}
	}
	return nil
}

// apply runs one migration and records it, atomically.
func (s *Store) apply(ctx context.Context, m migration) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migration %d (%s): begin: %w", m.version, m.name, err)
	}
	defer tx.Rollback()
	// Another process may have applied it since SchemaVersion was read.
	var done int
	if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM schema_migrations WHERE version = ?", m.version).Scan(&done); err != nil {
		return fmt.Errorf("migration %d (%s): %w", m.version, m.name, err)
	}
	if done > 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return fmt.Errorf("migration %d (%s): %w", m.version, m.name, err)
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
		m.version, m.name, time.Now().Unix()); err != nil {
		return fmt.Errorf("migration %d (%s): record: %w", m.version, m.name, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migration %d (%s): commit: %w", m.version, m.name, err)
	}
	return nil
}

// SchemaVersion returns the highest migration applied to the database; 0
// for a new file.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v sql.NullInt64
	if err := s.db.QueryRowContext(ctx, "SELECT max(version) FROM schema_migrations").Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return int(v.Int64), nil
}
