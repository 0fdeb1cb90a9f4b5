package console

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"flowwatch/internal/store"
)

// Audit appends an entry to the audit log: who (p), what (action, such as
// "alert.ack"), to what (target), from where (the request's client). A
// failure to write is logged as an error; the request goes on. Details
// never hold secrets.
func (a *Auth) Audit(r *http.Request, p Principal, action, target, detail string) {
	_, err := a.db.AppendAudit(r.Context(), store.AuditEntry{At: a.now(), Actor: p.User, Role: p.Role,
		Action: action, Target: target, Detail: detail, Remote: clientKey(r)})
	if err != nil {
		a.log.Error("audit entry not written", "action", action, "user", p.User, "err", err)
	}
}

// auditLog serves GET /api/v1/audit to admins: the newest entries, with
// ?actor=, ?action=, ?from=, ?to= and ?limit=; with ?format=csv the same
// entries as an audited CSV attachment (auditCSV).
func (a *Auth) auditLog(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	format := q.Get("format")
	if format != "" && format != "json" && format != "csv" {
		writeError(w, http.StatusBadRequest, "format: want json or csv, got %q", format)
		return
	}
	f := store.AuditFilter{Actor: q.Get("actor"), Action: q.Get("action")}
	var err error
	if f.From, f.To, f.Limit, err = rangeQuery(q); err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	entries, err := a.db.AuditEntries(r.Context(), f)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "audit log unreadable")
		return
	}
	if format == "csv" {
		a.auditCSV(w, r, f, entries)
		return
	}
	if entries == nil {
		entries = []store.AuditEntry{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"entries": entries})
}

// auditCSV answers entries, which f selected, as a CSV attachment, newest
// first, with the header id,at,actor,role,action,target,detail,remote,
// prev_hash,hash (times in RFC 3339 UTC to the millisecond), and audits the
// export as "export.audit". Free-text cells that a spreadsheet would take
// for a formula get a leading apostrophe (csvText); ids, times and hashes
// are as stored.
func (a *Auth) auditCSV(w http.ResponseWriter, r *http.Request, f store.AuditFilter, entries []store.AuditEntry) {
	span := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.UTC().Format(time.RFC3339)
	}
	p, _ := PrincipalFrom(r.Context())
	a.Audit(r, p, "export.audit", "audit log",
		fmt.Sprintf("csv, %s to %s, actor %q, action %q, %d entries", span(f.From), span(f.To), f.Actor, f.Action, len(entries)))
	cw := csvAttachment(w, "flowwatch-audit-"+fileTime(a.now())+".csv")
	_ = cw.Write([]string{"id", "at", "actor", "role", "action", "target", "detail", "remote", "prev_hash", "hash"})
	for _, e := range entries {
		_ = cw.Write([]string{strconv.FormatInt(e.ID, 10), e.At.UTC().Format("2006-01-02T15:04:05.000Z07:00"),
			csvText(e.Actor), csvText(e.Role), csvText(e.Action), csvText(e.Target), csvText(e.Detail), csvText(e.Remote),
			e.PrevHash, e.Hash})
	}
	cw.Flush()
}
