package store

import (
	"context"
	"errors"
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
