package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// AuditEntry is one line of the audit log: who did what, to what, when,
// from where. Entries are chained: each Hash covers the entry and the
// Hash of the entry before, so an entry changed or removed in the
// database breaks the chain (VerifyAudit finds it).
type AuditEntry struct {
	ID     int64     `json:"id"`
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"`  // user name, or "" for an anonymous request
	Role   string    `json:"role"`   // the actor's role at the time
	Action string    `json:"action"` // such as "login", "login.failed", "alert.ack"
	Target string    `json:"target"` // what it concerned: a user, an alert, a camera
	Detail string    `json:"detail"` // free text without secrets
	Remote string    `json:"remote"` // the client address
	// PrevHash and Hash chain the entries.
	PrevHash string `json:"prev_hash"`
	Hash     string `json:"hash"`
}

// auditHash is the chain hash of an entry: SHA-256 over the previous hash
// and the entry's fields, JSON-encoded so that no field can bleed into
// another.
func auditHash(prev string, e AuditEntry) string {
	fields, _ := json.Marshal([]any{e.ID, e.At.UnixMilli(), e.Actor, e.Role, e.Action, e.Target, e.Detail, e.Remote})
	sum := sha256.Sum256(append([]byte(prev+"\n"), fields...))
	return hex.EncodeToString(sum[:])
}

// AppendAudit adds an entry at the end of the chain and returns it with
// its ID and hashes. There is no way to change an entry: the table refuses
// updates.
func (s *Store) AppendAudit(ctx context.Context, e AuditEntry) (AuditEntry, error) {
	if e.Action == "" {
		return AuditEntry{}, errors.New("audit: an entry needs an action")
	}
	if e.At.IsZero() {
		e.At = time.Now()
	}
	e.At = time.UnixMilli(e.At.UnixMilli()).UTC()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return AuditEntry{}, fmt.Errorf("audit %s: begin: %w", e.Action, err)
	}
	defer tx.Rollback()
	var last sql.NullInt64
	var prev sql.NullString
	err = tx.QueryRowContext(ctx, "SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1").Scan(&last, &prev)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return AuditEntry{}, fmt.Errorf("audit %s: read the chain's end: %w", e.Action, err)
	}
	e.ID = last.Int64 + 1
	e.PrevHash = prev.String
	e.Hash = auditHash(e.PrevHash, e)
	if _, err := tx.ExecContext(ctx, `INSERT INTO audit (id, at, actor, role, action, target, detail, remote, prev_hash, hash)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, e.ID, e.At.UnixMilli(), e.Actor, e.Role, e.Action, e.Target, e.Detail, e.Remote,
		e.PrevHash, e.Hash); err != nil {
		return AuditEntry{}, fmt.Errorf("audit %s: %w", e.Action, err)
	}
	if err := tx.Commit(); err != nil {
		return AuditEntry{}, fmt.Errorf("audit %s: commit: %w", e.Action, err)
	}
	return e, nil
}

// AuditFilter selects audit entries; zero fields select everything.
type AuditFilter struct {
	From, To time.Time
	Actor    string
	Action   string
	// Limit is the most entries returned, newest first. Default 500,
	// at most 5000.
	Limit int
}

// AuditEntries returns the entries the filter selects, newest first.
func (s *Store) AuditEntries(ctx context.Context, f AuditFilter) ([]AuditEntry, error) {
	if f.Limit < 0 {
		return nil, fmt.Errorf("audit: negative limit %d", f.Limit)
	}
	if f.Limit == 0 {
		f.Limit = DefaultAlertLimit
	}
	f.Limit = min(f.Limit, MaxAlertLimit)
	q := "SELECT id, at, actor, role, action, target, detail, remote, prev_hash, hash FROM audit WHERE 1=1"
	var args []any
	if !f.From.IsZero() {
		q += " AND at >= ?"
		args = append(args, f.From.UnixMilli())
	}
	if !f.To.IsZero() {
		q += " AND at < ?"
		args = append(args, f.To.UnixMilli())
	}
	if f.Actor != "" {
		q += " AND actor = ?"
		args = append(args, f.Actor)
	}
	if f.Action != "" {
		q += " AND action = ?"
		args = append(args, f.Action)
	}
	q += " ORDER BY id DESC LIMIT ?"
	args = append(args, f.Limit)
	var out []AuditEntry
	err := s.scanAudit(ctx, q, args, func(e AuditEntry) error { out = append(out, e); return nil })
	return out, err
}

func (s *Store) scanAudit(ctx context.Context, q string, args []any, fn func(AuditEntry) error) error {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var e AuditEntry
		var at int64
		if err := rows.Scan(&e.ID, &at, &e.Actor, &e.Role, &e.Action, &e.Target, &e.Detail, &e.Remote, &e.PrevHash, &e.Hash); err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		e.At = time.UnixMilli(at).UTC()
		if err := fn(e); err != nil {
			return err
		}
	}
	return rows.Err()
}

// ErrAuditBroken is returned (wrapped, naming the entry) when the audit
// chain does not verify.
var ErrAuditBroken = errors.New("audit chain broken")

// VerifyAudit walks the whole chain in order and checks every hash and
// link; it returns how many entries it checked, and ErrAuditBroken naming
// the first entry that was changed, inserted or removed. Removing entries
// from the end leaves a shorter chain that still verifies: keeping the
// newest hash somewhere else (an export) is what catches that.
func (s *Store) VerifyAudit(ctx context.Context) (int, error) {
	n := 0
	prev := ""
	var prevID int64
	err := s.scanAudit(ctx, "SELECT id, at, actor, role, action, target, detail, remote, prev_hash, hash FROM audit ORDER BY id", nil,
		func(e AuditEntry) error {
			switch {
			case n == 0 && (e.ID != 1 || e.PrevHash != ""):
				return fmt.Errorf("%w: the chain starts at entry %d, not at entry 1", ErrAuditBroken, e.ID)
			case n > 0 && e.ID != prevID+1:
				return fmt.Errorf("%w: entries %d to %d are missing", ErrAuditBroken, prevID+1, e.ID-1)
			case n > 0 && e.PrevHash != prev:
				return fmt.Errorf("%w at entry %d: it does not follow entry %d", ErrAuditBroken, e.ID, prevID)
			case auditHash(e.PrevHash, e) != e.Hash:
				return fmt.Errorf("%w at entry %d (%s by %q at %s): its content does not match its hash",
					ErrAuditBroken, e.ID, e.Action, e.Actor, e.At.Format(time.RFC3339))
			}
			prev, prevID = e.Hash, e.ID
			n++
			return nil
		})
	return n, err
}
