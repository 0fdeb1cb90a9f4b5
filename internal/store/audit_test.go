package store

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestAuditChainVerifiesAndCatchesTampering(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	at := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	for i, a := range []string{"login", "alert.ack", "config.change", "logout"} {
		e, err := s.AppendAudit(ctx, AuditEntry{At: at.Add(time.Duration(i) * time.Minute), Actor: "otto", Role: "operator",
			Action: a, Target: "alert 7", Detail: "note: two guards", Remote: "127.0.0.1"})
		if err != nil {
			t.Fatal(err)
		}
		if e.ID != int64(i+1) || len(e.Hash) != 64 || (i == 0) != (e.PrevHash == "") {
			t.Fatalf("entry %d: %+v", i, e)
		}
	}
	if n, err := s.VerifyAudit(ctx); err != nil || n != 4 {
		t.Fatalf("verify: %d %v", n, err)
	}
	got, err := s.AuditEntries(ctx, AuditFilter{Action: "alert.ack"})
	if err != nil || len(got) != 1 || got[0].ID != 2 {
		t.Fatalf("filter by action: %+v %v", got, err)
	}
	if _, err := s.AppendAudit(ctx, AuditEntry{}); err == nil {
		t.Fatal("an entry without an action was accepted")
	}
	// the database itself refuses a change
	if _, err := s.db.ExecContext(ctx, "UPDATE audit SET detail = 'nothing happened' WHERE id = 2"); err == nil ||
		!strings.Contains(err.Error(), "cannot be changed") {
		t.Fatalf("update of an audit entry: %v", err)
	}
	// someone with the file drops the guard and edits an entry: verify
	// names it
	if _, err := s.db.ExecContext(ctx, "DROP TRIGGER audit_no_update"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.ExecContext(ctx, "UPDATE audit SET actor = 'ada' WHERE id = 2"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.VerifyAudit(ctx); !errors.Is(err, ErrAuditBroken) || !strings.Contains(err.Error(), "entry 2") {
		t.Fatalf("edited entry: %v", err)
	}
	if _, err := s.db.ExecContext(ctx, "UPDATE audit SET actor = 'otto' WHERE id = 2"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.VerifyAudit(ctx); err != nil {
		t.Fatalf("restored entry: %v", err)
	}
	// a removed entry breaks the chain too
	if _, err := s.db.ExecContext(ctx, "DELETE FROM audit WHERE id = 3"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.VerifyAudit(ctx); !errors.Is(err, ErrAuditBroken) || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("removed entry: %v", err)
	}
}

// appendAt appends entries with the given ages before now, oldest first,
// and returns them.
func appendAt(t *testing.T, s *Store, now time.Time, ages ...time.Duration) []AuditEntry {
	t.Helper()
	var out []AuditEntry
	for i, age := range ages {
		e, err := s.AppendAudit(context.Background(), AuditEntry{At: now.Add(-age), Actor: "otto", Role: "operator",
			Action: "alert.ack", Target: "alert " + strconv.Itoa(i), Remote: "127.0.0.1"})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

func TestPruneAuditKeepsSixMonthsAndAVerifiableChain(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	now := time.Now()
	day := 24 * time.Hour
	entries := appendAt(t, s, now, 400*day, 300*day, 200*day, 190*day, 170*day, 10*day, time.Hour)

	// Less than 180 days is refused, and deletes nothing.
	for _, before := range []time.Time{now, now.Add(-179 * day), now.Add(-MinAuditRetention + time.Minute), {}} {
		if _, err := s.PruneAudit(ctx, before); !errors.Is(err, ErrAuditRetention) || !strings.Contains(err.Error(), "180 days") {
			t.Errorf("prune before %v: %v, want ErrAuditRetention", before, err)
		}
	}
	if n, err := s.VerifyAudit(ctx); err != nil || n != len(entries) {
		t.Fatalf("after refused prunes: %d entries, %v", n, err)
	}

	// 185 days: the four entries older go; the chain still verifies.
	before := now.Add(-185 * day)
	p, err := s.PruneAudit(ctx, before)
	if err != nil {
		t.Fatal(err)
	}
	if p.FirstID != 1 || p.LastID != 4 || p.Deleted != 4 || p.LastHash != entries[3].Hash || p.ID == 0 {
		t.Fatalf("prune record: %+v", p)
	}
	n, err := s.VerifyAudit(ctx)
	if err != nil || n != len(entries)-4+1 {
		t.Fatalf("verify after pruning: %d entries, %v; want %d", n, err, len(entries)-4+1)
	}
	left, _ := s.AuditEntries(ctx, AuditFilter{})
	if got := left[0]; got.Action != AuditPruneAction || got.Actor != "flowwatch" || !strings.Contains(got.Detail, "entries 1 to 4") ||
		!strings.Contains(got.Detail, entries[3].Hash) {
		t.Errorf("the chain's record of the pruning: %+v", got)
	}
	if left[len(left)-1].ID != 5 || left[len(left)-1].PrevHash != entries[3].Hash {
		t.Errorf("the chain now starts at %+v, want entry 5 following entry 4's hash", left[len(left)-1])
	}
	if log, err := s.AuditPrunes(ctx); err != nil || len(log) != 1 || log[0] != p {
		t.Errorf("the prune log: %+v, %v; want [%+v]", log, err, p)
	}
	// Nothing more is old enough: nothing happens.
	if p2, err := s.PruneAudit(ctx, before); err != nil || p2.Deleted != 0 {
		t.Errorf("second prune: %+v, %v", p2, err)
	}
	// Appends go on, and verify.
	appendAt(t, s, now, 0)
	if _, err := s.VerifyAudit(ctx); err != nil {
		t.Fatalf("verify after an append: %v", err)
	}

	// Tampering is still caught: a forged anchor, a removed first entry.
	if _, err := s.db.ExecContext(ctx, "UPDATE audit_prunes SET last_hash = 'forged'"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.VerifyAudit(ctx); !errors.Is(err, ErrAuditBroken) || !strings.Contains(err.Error(), "entry 5") {
		t.Errorf("forged anchor: %v", err)
	}
	if _, err := s.db.ExecContext(ctx, "UPDATE audit_prunes SET last_hash = ?", p.LastHash); err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.ExecContext(ctx, "DELETE FROM audit WHERE id = 5"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.VerifyAudit(ctx); !errors.Is(err, ErrAuditBroken) || !strings.Contains(err.Error(), "entry 6") {
		t.Errorf("first entry after the pruning removed: %v", err)
	}
}

func TestPruneAuditEverythingAndOutOfOrderClock(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	now := time.Now()
	day := 24 * time.Hour
	// The clock stepped back: entry 3 is old but follows a young one; it
	// and what follows stay.
	entries := appendAt(t, s, now, 300*day, 10*day, 250*day)
	p, err := s.PruneAudit(ctx, now.Add(-200*day))
	if err != nil || p.Deleted != 1 || p.LastID != 1 {
		t.Fatalf("prune: %+v, %v; want entry 1 only", p, err)
	}
	if _, err := s.VerifyAudit(ctx); err != nil {
		t.Fatal(err)
	}

	// Everything old: only the record of the pruning is left, and the
	// chain goes on from it.
	s2, _ := openTemp(t)
	entries = appendAt(t, s2, now, 300*day, 200*day)
	p, err = s2.PruneAudit(ctx, now.Add(-190*day))
	if err != nil || p.Deleted != 2 || p.LastHash != entries[1].Hash {
		t.Fatalf("prune all: %+v, %v", p, err)
	}
	if n, err := s2.VerifyAudit(ctx); err != nil || n != 1 {
		t.Fatalf("verify: %d, %v", n, err)
	}
	e := appendAt(t, s2, now, 0)[0]
	if e.ID != 4 {
		t.Errorf("the entry after the pruning has id %d, want 4", e.ID)
	}
	// Removing the record of the pruning is caught.
	if _, err := s2.db.ExecContext(ctx, "DELETE FROM audit WHERE action = ?", AuditPruneAction); err != nil {
		t.Fatal(err)
	}
	if _, err := s2.VerifyAudit(ctx); !errors.Is(err, ErrAuditBroken) {
		t.Errorf("record of the pruning removed: %v", err)
	}
}
