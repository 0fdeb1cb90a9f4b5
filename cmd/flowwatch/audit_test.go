package main

import (
	"bytes"
	"context"
	"database/sql"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"flowwatch/internal/store"
)

func TestAuditVerifyCommand(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "flowwatch.db")
	db, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"login", "alert.ack", "logout"} {
		if _, err := db.AppendAudit(context.Background(), store.AuditEntry{At: time.Now(), Actor: "otto", Role: "operator", Action: a}); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	var out bytes.Buffer
	if err := run(context.Background(), []string{"audit", "verify", "--data", dir}, &out, io.Discard); err != nil ||
		!strings.Contains(out.String(), "intact: 3 entries") {
		t.Fatalf("verify: %v %q", err, out.String())
	}
	// an edit made straight in the file, past the table's guard
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"DROP TRIGGER audit_no_update", "UPDATE audit SET actor = 'nobody' WHERE id = 2"} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	raw.Close()
	err = run(context.Background(), []string{"audit", "verify", "--data", dir}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "entry 2") {
		t.Fatalf("edited entry: %v", err)
	}
	if err := run(context.Background(), []string{"audit"}, io.Discard, io.Discard); err == nil {
		t.Fatal("audit without verify accepted")
	}
}
