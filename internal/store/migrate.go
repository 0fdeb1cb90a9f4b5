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
		{
			version: 2,
			name:    "counts, alerts, outbox",
			sql: `CREATE TABLE counts_1s (
	target  TEXT    NOT NULL,
	t       INTEGER NOT NULL, -- unix seconds
	count   REAL    NOT NULL, -- the last count written for the second
	min     REAL    NOT NULL,
	max     REAL    NOT NULL,
	samples INTEGER NOT NULL CHECK (samples > 0),
	PRIMARY KEY (target, t)
) WITHOUT ROWID;
CREATE INDEX counts_1s_t ON counts_1s (t);

CREATE TABLE counts_1m (
	target  TEXT    NOT NULL,
	t       INTEGER NOT NULL, -- unix seconds of the minute's start
	sum     REAL    NOT NULL,
	min     REAL    NOT NULL,
	max     REAL    NOT NULL,
	samples INTEGER NOT NULL CHECK (samples > 0),
	PRIMARY KEY (target, t)
) WITHOUT ROWID;
CREATE INDEX counts_1m_t ON counts_1m (t);

CREATE TABLE alerts (
	id          INTEGER PRIMARY KEY,
	key         TEXT    NOT NULL,
	rule        TEXT    NOT NULL,
	target      TEXT    NOT NULL,
	level       TEXT    NOT NULL,
	state       TEXT    NOT NULL CHECK (state IN ('open', 'acknowledged', 'resolved')),
	opened_at   INTEGER NOT NULL, -- unix ms
	updated_at  INTEGER NOT NULL, -- unix ms
	resolved_at INTEGER,          -- unix ms; NULL until resolved
	data        BLOB    NOT NULL  -- JSON of event.Alert
);
-- At most one alert per key is not resolved.
CREATE UNIQUE INDEX alerts_unresolved_key ON alerts (key) WHERE state != 'resolved';
CREATE INDEX alerts_opened_at ON alerts (opened_at);

CREATE TABLE alert_changes (
	alert_id INTEGER NOT NULL REFERENCES alerts (id),
	seq      INTEGER NOT NULL CHECK (seq >= 1), -- 1, 2, 3… per alert
	kind     TEXT    NOT NULL,
	at       INTEGER NOT NULL, -- unix ms
	by_user  TEXT    NOT NULL,
	note     TEXT    NOT NULL,
	data     BLOB    NOT NULL, -- JSON of event.AlertChange
	PRIMARY KEY (alert_id, seq)
) WITHOUT ROWID;

CREATE TABLE outbox (
	id              INTEGER PRIMARY KEY,
	alert_id        INTEGER NOT NULL REFERENCES alerts (id),
	seq             INTEGER NOT NULL,
	channel         TEXT    NOT NULL,
	idempotency_key TEXT    NOT NULL,
	payload         BLOB    NOT NULL, -- JSON of event.AlertChange
	created_at      INTEGER NOT NULL, -- unix ms
	attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
	next_attempt_at INTEGER NOT NULL, -- unix ms
	last_error      TEXT    NOT NULL DEFAULT '',
	delivered_at    INTEGER,          -- unix ms; NULL until delivered
	dead_at         INTEGER,          -- unix ms; NULL unless given up
	UNIQUE (channel, idempotency_key)
);
CREATE INDEX outbox_due ON outbox (channel, delivered_at, dead_at, next_attempt_at);
CREATE INDEX outbox_alert ON outbox (alert_id)`,
		},
		{
			version: 3,
			name:    "users, sessions, tokens",
			sql: `CREATE TABLE users (
	username      TEXT    PRIMARY KEY CHECK (username != ''),
	role          TEXT    NOT NULL CHECK (role != ''),
	posts         TEXT    NOT NULL DEFAULT '[]', -- JSON array of area names
	password_hash TEXT    NOT NULL, -- PHC string; anything else matches no password
	must_change   INTEGER NOT NULL DEFAULT 0 CHECK (must_change IN (0, 1)),
	failed_logins INTEGER NOT NULL DEFAULT 0 CHECK (failed_logins >= 0),
	locked_until  INTEGER,          -- unix ms; NULL when never locked
	created_at    INTEGER NOT NULL, -- unix ms
	updated_at    INTEGER NOT NULL  -- unix ms
) WITHOUT ROWID;

-- Secrets are never stored: a session is known by the SHA-256 of its
-- secret, a token by the SHA-256 of itself.
CREATE TABLE sessions (
	id         TEXT    PRIMARY KEY CHECK (length(id) = 64), -- hex SHA-256 of the session secret
	username   TEXT    NOT NULL REFERENCES users (username) ON DELETE CASCADE,
	csrf_hash  TEXT    NOT NULL CHECK (length(csrf_hash) = 64), -- hex SHA-256 of the CSRF token
	created_at INTEGER NOT NULL, -- unix ms
	last_seen  INTEGER NOT NULL, -- unix ms
	expires_at INTEGER NOT NULL  -- unix ms
) WITHOUT ROWID;
CREATE INDEX sessions_username ON sessions (username);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

CREATE TABLE api_tokens (
	id         INTEGER PRIMARY KEY,
	name       TEXT    NOT NULL CHECK (name != ''),
	username   TEXT    NOT NULL REFERENCES users (username) ON DELETE CASCADE,
	hash       TEXT    NOT NULL UNIQUE CHECK (length(hash) = 64), -- hex SHA-256 of the token
	created_at INTEGER NOT NULL, -- unix ms
	last_used  INTEGER,          -- unix ms; NULL until used
	revoked_at INTEGER           -- unix ms; NULL while valid
);
CREATE INDEX api_tokens_username ON api_tokens (username)`,
		},
		{
			version: 4,
			name:    "audit chain",
			sql: `CREATE TABLE audit (
	id        INTEGER PRIMARY KEY,
	at        INTEGER NOT NULL, -- unix ms
	actor     TEXT    NOT NULL,
	role      TEXT    NOT NULL,
	action    TEXT    NOT NULL CHECK (action != ''),
	target    TEXT    NOT NULL,
	detail    TEXT    NOT NULL,
	remote    TEXT    NOT NULL,
	prev_hash TEXT    NOT NULL, -- hash of the entry before, "" for the first
	hash      TEXT    NOT NULL  -- SHA-256 hex over prev_hash and this entry
);
CREATE INDEX audit_at ON audit (at);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'audit entries cannot be changed'); END`,
		},
		{
			version: 5,
			name:    "zone layouts",
			sql: `-- Zone layouts drawn in the console, one row per save: the latest row
-- of a camera is in force, the older ones are its history.
CREATE TABLE zone_layouts (
	id          INTEGER PRIMARY KEY,
	camera      TEXT    NOT NULL CHECK (camera != ''),
	zones       TEXT    NOT NULL, -- JSON array of {name, polygon, capacity}
	calibration TEXT,             -- JSON {image, ground}; NULL when none
	updated_at  INTEGER NOT NULL, -- unix ms
	updated_by  TEXT    NOT NULL
);
CREATE INDEX zone_layouts_camera ON zone_layouts (camera, id)`,
		},
		{
			version: 6,
			name:    "secrets",
			sql: `-- Secrets (camera passwords, webhook secrets), sealed by
-- internal/secrets: the store holds only ciphertext and the ID of the key
-- that sealed it, never a value in clear.
CREATE TABLE secrets (
	name       TEXT    PRIMARY KEY CHECK (name != ''),
	ciphertext BLOB    NOT NULL,  -- nonce, then AES-256-GCM ciphertext and tag
	key_id     TEXT    NOT NULL CHECK (key_id != ''),
	updated_at INTEGER NOT NULL,  -- unix ms
	updated_by TEXT    NOT NULL
) WITHOUT ROWID`,
		},
		{
			version: 7,
			name:    "password history, TOTP, token roles and scopes, audit pruning",
			sql: `-- The argon2id hashes of users' earlier passwords, newest last, so that
-- a recently used password can be refused.
CREATE TABLE password_history (
	id         INTEGER PRIMARY KEY,
	username   TEXT    NOT NULL REFERENCES users (username) ON DELETE CASCADE,
	hash       TEXT    NOT NULL, -- PHC string of a password no longer in use
	retired_at INTEGER NOT NULL  -- unix ms: when it stopped being the password
);
CREATE INDEX password_history_username ON password_history (username, id);

-- TOTP second factors (RFC 6238). The shared secret is stored only sealed
-- by the console's secret box, never in clear.
CREATE TABLE user_totp (
	username     TEXT    PRIMARY KEY REFERENCES users (username) ON DELETE CASCADE,
	sealed       BLOB    NOT NULL CHECK (length(sealed) > 0),
	confirmed    INTEGER NOT NULL DEFAULT 0 CHECK (confirmed IN (0, 1)),
	last_step    INTEGER NOT NULL DEFAULT 0, -- the newest 30 s step used: older ones are refused
	created_at   INTEGER NOT NULL,           -- unix ms
	confirmed_at INTEGER                     -- unix ms; NULL until confirmed
) WITHOUT ROWID;

-- An API token acts with a role (at most its owner's; '' for tokens made
-- before: the owner's role) and only on the routes its scopes name ('[]':
-- every route of its role).
ALTER TABLE api_tokens ADD COLUMN role TEXT NOT NULL DEFAULT '';
ALTER TABLE api_tokens ADD COLUMN scopes TEXT NOT NULL DEFAULT '[]'; -- JSON array

-- Every pruning of the audit log: what was deleted, and the hash of the
-- last deleted entry, from which the remaining chain goes on.
CREATE TABLE audit_prunes (
	id        INTEGER PRIMARY KEY,
	pruned_at INTEGER NOT NULL, -- unix ms
	before    INTEGER NOT NULL, -- unix ms: entries older than this were deleted
	first_id  INTEGER NOT NULL, -- the first and last entry deleted
	last_id   INTEGER NOT NULL,
	last_hash TEXT    NOT NULL, -- the hash of entry last_id
	deleted   INTEGER NOT NULL CHECK (deleted > 0)
)`,
		},
		{
			version: 8,
			name:    "stored snapshots",
			sql: `-- Pictures of a camera stored on an admin's request (live frames are
-- never stored otherwise), blurred when asked, deleted after their
-- retention.
CREATE TABLE snapshots (
	id       INTEGER PRIMARY KEY,
	camera   TEXT    NOT NULL CHECK (camera != ''),
	taken_at INTEGER NOT NULL, -- unix ms
	taken_by TEXT    NOT NULL,
	blurred  INTEGER NOT NULL CHECK (blurred IN (0, 1)),
	width    INTEGER NOT NULL CHECK (width > 0),
	height   INTEGER NOT NULL CHECK (height > 0),
	jpeg     BLOB    NOT NULL CHECK (length(jpeg) > 0)
);
CREATE INDEX snapshots_camera ON snapshots (camera, id);
CREATE INDEX snapshots_taken_at ON snapshots (taken_at)`,
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
