package console

import (
	"net/http"

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
// ?actor=, ?action=, ?from=, ?to= and ?limit=.
func (a *Auth) auditLog(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
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
	if entries == nil {
		entries = []store.AuditEntry{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"entries": entries})
}
