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
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return AuditEntry{}, fmt.Errorf("audit %s: begin: %w", e.Action, err)
	}
	defer tx.Rollback()
	if e, err = appendAudit(ctx, tx, e); err != nil {
		return AuditEntry{}, err
	}
	if err := tx.Commit(); err != nil {
		return AuditEntry{}, fmt.Errorf("audit %s: commit: %w", e.Action, err)
	}
	return e, nil
}

// appendAudit adds e at the end of the chain within tx. The chain's end is
// its newest entry or, when pruning left none, the last entry pruned.
func appendAudit(ctx context.Context, tx *sql.Tx, e AuditEntry) (AuditEntry, error) {
	e.At = time.UnixMilli(e.At.UnixMilli()).UTC()
	var last sql.NullInt64
	var prev sql.NullString
	err := tx.QueryRowContext(ctx, "SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1").Scan(&last, &prev)
	if errors.Is(err, sql.ErrNoRows) {
		err = tx.QueryRowContext(ctx, "SELECT last_id, last_hash FROM audit_prunes ORDER BY last_id DESC LIMIT 1").Scan(&last, &prev)
	}
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
// the first entry that was changed, inserted or removed. The chain starts
// at entry 1 or, once pruned (PruneAudit), right after the last entry
// pruned, from that entry's hash, and then holds the entry PruneAudit
// appended to record the pruning. Removing entries from the end leaves a
// shorter chain that still verifies: keeping the newest hash somewhere
// else (an export) is what catches that.
func (s *Store) VerifyAudit(ctx context.Context) (int, error) {
	anchor, err := s.auditAnchor(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	prev := ""
	var prevID int64
	sawPrune := anchor == nil
	err = s.scanAudit(ctx, "SELECT id, at, actor, role, action, target, detail, remote, prev_hash, hash FROM audit ORDER BY id", nil,
		func(e AuditEntry) error {
			switch {
			case n == 0 && anchor == nil && (e.ID != 1 || e.PrevHash != ""):
				return fmt.Errorf("%w: the chain starts at entry %d, not at entry 1", ErrAuditBroken, e.ID)
			case n == 0 && anchor != nil && e.ID != anchor.LastID+1:
				return fmt.Errorf("%w: the chain starts at entry %d, but pruning left it to start at entry %d",
					ErrAuditBroken, e.ID, anchor.LastID+1)
			case n == 0 && anchor != nil && e.PrevHash != anchor.LastHash:
				return fmt.Errorf("%w at entry %d: it does not follow entry %d, the last one pruned", ErrAuditBroken, e.ID, anchor.LastID)
			case n > 0 && e.ID != prevID+1:
				return fmt.Errorf("%w: entries %d to %d are missing", ErrAuditBroken, prevID+1, e.ID-1)
			case n > 0 && e.PrevHash != prev:
				return fmt.Errorf("%w at entry %d: it does not follow entry %d", ErrAuditBroken, e.ID, prevID)
			case auditHash(e.PrevHash, e) != e.Hash:
				return fmt.Errorf("%w at entry %d (%s by %q at %s): its content does not match its hash",
					ErrAuditBroken, e.ID, e.Action, e.Actor, e.At.Format(time.RFC3339))
			}
			if anchor != nil && e.Action == AuditPruneAction && e.Detail == anchor.detail() {
				sawPrune = true
			}
			prev, prevID = e.Hash, e.ID
			n++
			return nil
		})
	if err == nil && !sawPrune {
		err = fmt.Errorf("%w: the chain lacks the %s entry of the last pruning (entries %d to %d)",
			ErrAuditBroken, AuditPruneAction, anchor.FirstID, anchor.LastID)
	}
	return n, err
}

// MinAuditRetention is the shortest time audit entries are kept: PruneAudit
// refuses to delete entries younger than this (MLPS 2.0 level 3 asks for
// six months).
const MinAuditRetention = 180 * 24 * time.Hour

// AuditPruneAction is the action of the entry PruneAudit appends.
const AuditPruneAction = "audit.prune"

// AuditPrune records one pruning of the audit log.
type AuditPrune struct {
	ID int64 `json:"id"`
	// At is when it ran; Before the time entries older than it were
	// deleted.
	At     time.Time `json:"at"`
	Before time.Time `json:"before"`
	// FirstID and LastID are the first and last entry deleted, LastHash
	// the hash of entry LastID, which the remaining chain follows.
	FirstID  int64  `json:"first_id"`
	LastID   int64  `json:"last_id"`
	LastHash string `json:"last_hash"`
	// Deleted is how many entries were deleted.
	Deleted int64 `json:"deleted"`
}

// detail is the Detail of the chain entry recording p.
func (p AuditPrune) detail() string {
	return fmt.Sprintf("deleted entries %d to %d (%d entries older than %s); the chain goes on from entry %d's hash %s",
		p.FirstID, p.LastID, p.Deleted, p.Before.UTC().Format(time.RFC3339), p.LastID, p.LastHash)
}

// ErrAuditRetention is returned, wrapped, by PruneAudit when asked to
// delete entries younger than MinAuditRetention.
var ErrAuditRetention = errors.New("audit entries must be kept at least 180 days")

// PruneAudit deletes the audit entries older than before, which must be at
// least MinAuditRetention ago (else ErrAuditRetention, wrapped, and
// nothing is deleted), keeping the chain verifiable. It deletes the
// chain's leading run of entries older than before (entries first…k; an
// old entry after a younger one stays), records what it deleted in the
// audit_prunes table with the hash of entry k, from which the remaining
// chain goes on, and appends an AuditPruneAction entry (actor "flowwatch")
// saying the same, all in one transaction. It returns that record, the
// log of what was deleted (AuditPrunes lists them all); with nothing old
// enough it deletes nothing and returns a zero AuditPrune.
func (s *Store) PruneAudit(ctx context.Context, before time.Time) (AuditPrune, error) {
	now := time.Now()
	fail := func(err error) (AuditPrune, error) {
		return AuditPrune{}, fmt.Errorf("audit: prune entries older than %s: %w", before.UTC().Format(time.RFC3339), err)
	}
	if before.IsZero() || before.After(now.Add(-MinAuditRetention)) {
		return fail(fmt.Errorf("%w: the newest time allowed now is %s", ErrAuditRetention,
			now.Add(-MinAuditRetention).UTC().Format(time.RFC3339)))
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fail(err)
	}
	defer tx.Rollback()
	p := AuditPrune{At: time.UnixMilli(now.UnixMilli()).UTC(), Before: time.UnixMilli(before.UnixMilli()).UTC()}
	// Only the chain's leading run of old entries goes, up to the first
	// entry that is not old (after a clock step back, an old entry may
	// follow a young one: it stays), so that what is left is one chain
	// and nothing young is deleted.
	var first, young, last sql.NullInt64
	if err := tx.QueryRowContext(ctx, "SELECT min(id), max(id) FROM audit").Scan(&first, &last); err != nil {
		return fail(err)
	}
	if err := tx.QueryRowContext(ctx, "SELECT min(id) FROM audit WHERE at >= ?", before.UnixMilli()).Scan(&young); err != nil {
		return fail(err)
	}
	if young.Valid {
		last.Int64 = young.Int64 - 1
	}
	if !first.Valid || last.Int64 < first.Int64 {
		return AuditPrune{}, nil
	}
	p.FirstID, p.LastID = first.Int64, last.Int64
	if err := tx.QueryRowContext(ctx, "SELECT hash FROM audit WHERE id = ?", p.LastID).Scan(&p.LastHash); err != nil {
		return fail(err)
	}
	res, err := tx.ExecContext(ctx, "DELETE FROM audit WHERE id <= ?", p.LastID)
	if err != nil {
		return fail(err)
	}
	if p.Deleted, err = res.RowsAffected(); err != nil {
		return fail(err)
	}
	res, err = tx.ExecContext(ctx, `INSERT INTO audit_prunes (pruned_at, before, first_id, last_id, last_hash, deleted)
VALUES (?, ?, ?, ?, ?, ?)`, p.At.UnixMilli(), p.Before.UnixMilli(), p.FirstID, p.LastID, p.LastHash, p.Deleted)
	if err != nil {
		return fail(err)
	}
	if p.ID, err = res.LastInsertId(); err != nil {
		return fail(err)
	}
	if _, err := appendAudit(ctx, tx, AuditEntry{At: p.At, Actor: "flowwatch", Action: AuditPruneAction,
		Target: "audit log", Detail: p.detail()}); err != nil {
		return fail(err)
	}
	if err := tx.Commit(); err != nil {
		return fail(err)
	}
	return p, nil
}

// AuditPrunes returns every pruning of the audit log, oldest first.
func (s *Store) AuditPrunes(ctx context.Context) ([]AuditPrune, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT "+auditPruneColumns+" FROM audit_prunes ORDER BY id")
	if err != nil {
		return nil, fmt.Errorf("audit: prunings: %w", err)
	}
	defer rows.Close()
	var out []AuditPrune
	for rows.Next() {
		p, err := scanAuditPrune(rows)
		if err != nil {
			return nil, fmt.Errorf("audit: prunings: %w", err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit: prunings: %w", err)
	}
	return out, nil
}

// auditPruneColumns are the audit_prunes columns scanAuditPrune reads.
const auditPruneColumns = "id, pruned_at, before, first_id, last_id, last_hash, deleted"

func scanAuditPrune(row rowScanner) (AuditPrune, error) {
	var p AuditPrune
	var at, before int64
	if err := row.Scan(&p.ID, &at, &before, &p.FirstID, &p.LastID, &p.LastHash, &p.Deleted); err != nil {
		return AuditPrune{}, err
	}
	p.At, p.Before = time.UnixMilli(at).UTC(), time.UnixMilli(before).UTC()
	return p, nil
}

// auditAnchor returns the latest pruning, from which the chain starts, or
// nil when the log was never pruned.
func (s *Store) auditAnchor(ctx context.Context) (*AuditPrune, error) {
	p, err := scanAuditPrune(s.db.QueryRowContext(ctx, "SELECT "+auditPruneColumns+" FROM audit_prunes ORDER BY last_id DESC LIMIT 1"))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("audit: read the last pruning: %w", err)
	}
	return &p, nil
}
