package console

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"flowwatch/internal/store"
)

// No route changes or removes an audit entry: every method but GET on the
// audit log and on any entry is refused, even for an admin, and the chain
// still holds every entry afterwards.
func TestAuditHasNoRouteToChangeIt(t *testing.T) {
	site := newAPISite(t)
	before, err := site.db.AuditEntries(context.Background(), store.AuditFilter{Limit: 5000})
	if err != nil {
		t.Fatal(err)
	}
	if len(before) == 0 {
		t.Fatal("the logins left no audit entries to protect")
	}
	first := before[0].ID
	for _, path := range []string{"/api/v1/audit", fmt.Sprintf("/api/v1/audit/%d", first)} {
		for _, method := range []string{"PUT", "PATCH", "DELETE", "POST"} {
			a := site.raw(t, "ada", method, path, `{"detail":"nothing happened"}`)
			if a.code != http.StatusMethodNotAllowed && a.code != http.StatusNotFound {
				t.Errorf("admin %s %s: %d %s, want 405 or 404", method, path, a.code, a.body)
			}
		}
	}
	after, err := site.db.AuditEntries(context.Background(), store.AuditFilter{Limit: 5000})
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range before {
		if after[i].Hash != e.Hash || after[i].Detail != e.Detail {
			t.Fatalf("audit entry %d changed: %+v, was %+v", e.ID, after[i], e)
		}
	}
	if n, err := site.db.VerifyAudit(context.Background()); err != nil {
		t.Fatalf("audit chain after the attempts (%d entries): %v", n, err)
	}
}
