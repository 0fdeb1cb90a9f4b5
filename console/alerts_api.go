package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"flowwatch/alerting"
	"flowwatch/internal/config"
	"flowwatch/internal/event"
	"flowwatch/internal/store"
)

// AlertDesk is the people's side of the alert lifecycle; the alerting
// service implements it, storing and delivering each change.
type AlertDesk interface {
	Acknowledge(ctx context.Context, id int64, by, note string) (event.Alert, error)
	AddNote(ctx context.Context, id int64, by, note string) (event.Alert, error)
	HandOver(ctx context.Context, id int64, by, to, note string) (event.Alert, error)
	Resolve(ctx context.Context, id int64, by, note string) (event.Alert, error)
}

// maxBody bounds every JSON request body of the API.
const maxBody = 64 << 10

// alertsAPI serves /api/v1/alerts, /api/v1/areas and
// /api/v1/rules/backtest.
type alertsAPI struct {
	auth  *Auth
	db    *store.Store
	desk  AlertDesk
	areas AreaStatus
	site  *config.Config
}

// roles allowed to read alerts and areas (guards see their posts only).
var readers = []string{RoleAdmin, RoleOperator, RoleGuard, RolePlanner, RoleViewer}

func (a *alertsAPI) register(mux *http.ServeMux, auth *Auth) {
	h := func(pattern string, roles []string, fn http.HandlerFunc) {
		mux.Handle(pattern, auth.Require(roles, fn))
	}
	h("GET /api/v1/alerts", readers, a.list)
	h("GET /api/v1/alerts/{id}", readers, a.get)
	h("POST /api/v1/alerts/{id}/ack", []string{RoleAdmin, RoleOperator, RoleGuard}, a.ack)
	h("POST /api/v1/alerts/{id}/notes", []string{RoleAdmin, RoleOperator, RoleGuard}, a.note)
	h("POST /api/v1/alerts/{id}/handover", []string{RoleAdmin, RoleOperator}, a.handover)
	h("POST /api/v1/alerts/{id}/resolve", []string{RoleAdmin, RoleOperator}, a.resolve)
	h("GET /api/v1/alert-deliveries/dead", []string{RoleAdmin}, a.deadLetters)
	h("POST /api/v1/alert-deliveries/{id}/retry", []string{RoleAdmin}, a.retryDelivery)
	h("GET /api/v1/areas", readers, a.areaStatus)
	h("POST /api/v1/rules/backtest", []string{RoleAdmin, RolePlanner}, a.backtest)
}

// writeJSON answers v as JSON with status, never cached.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError answers {"error": reason}.
func writeError(w http.ResponseWriter, status int, format string, args ...any) {
	writeJSON(w, status, map[string]string{"error": fmt.Sprintf(format, args...)})
}

// readJSON decodes a bounded JSON body strictly into v.
func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "bad request body: %v", err)
		return false
	}
	return true
}

func principal(r *http.Request) Principal {
	p, _ := PrincipalFrom(r.Context())
	return p
}

func (a *alertsAPI) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := store.AlertFilter{Target: event.Target(q.Get("target"))}
	for _, s := range q["state"] {
		f.States = append(f.States, event.AlertState(s))
	}
	var err error
	if f.From, f.To, f.Limit, err = rangeQuery(q); err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	alerts, err := a.db.ListAlerts(r.Context(), f)
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	p := principal(r)
	out := make([]event.Alert, 0, len(alerts))
	for _, al := range alerts {
		if p.Covers(al.Posts) {
			out = append(out, al)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"alerts": out})
}

// rangeQuery reads the from, to (RFC 3339) and limit parameters that
// list endpoints share; absent ones are zero.
func rangeQuery(q url.Values) (from, to time.Time, limit int, err error) {
	if from, err = queryTime(q.Get("from")); err != nil {
		return from, to, 0, fmt.Errorf("from: %w", err)
	}
	if to, err = queryTime(q.Get("to")); err != nil {
		return from, to, 0, fmt.Errorf("to: %w", err)
	}
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 0 {
			return from, to, 0, fmt.Errorf("limit: want a number of entries, got %q", v)
		}
	}
	return from, to, limit, nil
}

func queryTime(v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("want an RFC 3339 time, got %q", v)
	}
	return t, nil
}

// alertFor loads the alert of the {id} path value, answering 404 when it
// does not exist or is not the principal's business.
func (a *alertsAPI) alertFor(w http.ResponseWriter, r *http.Request) (event.Alert, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		writeError(w, http.StatusBadRequest, "alert id must be a positive number, got %q", r.PathValue("id"))
		return event.Alert{}, false
	}
	al, err := a.db.Alert(r.Context(), id)
	if err != nil || !principal(r).Covers(al.Posts) {
		writeError(w, http.StatusNotFound, "no alert %d", id)
		return event.Alert{}, false
	}
	return al, true
}

func (a *alertsAPI) get(w http.ResponseWriter, r *http.Request) {
	al, ok := a.alertFor(w, r)
	if !ok {
		return
	}
	chs, err := a.db.AlertChanges(r.Context(), al.ID)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "alert %d: history unreadable", al.ID)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"alert": al, "changes": chs})
}

// lifecycleBody is the body of ack, notes, handover and resolve.
type lifecycleBody struct {
	Note string `json:"note"`
	To   string `json:"to,omitempty"`
}

func (a *alertsAPI) act(w http.ResponseWriter, r *http.Request, action string, fn func(id int64, by string, b lifecycleBody) (event.Alert, error)) {
	al, ok := a.alertFor(w, r)
	if !ok {
		return
	}
	var b lifecycleBody
	if !readJSON(w, r, &b) {
		return
	}
	if len(b.Note) > 2000 {
		writeError(w, http.StatusBadRequest, "note longer than 2000 bytes")
		return
	}
	out, err := fn(al.ID, principal(r).User, b)
	switch {
	case errors.Is(err, alerting.ErrNoAlert):
		writeError(w, http.StatusConflict, "alert %d is not open", al.ID)
	case err != nil:
		writeError(w, http.StatusConflict, "%v", err)
	default:
		detail := b.Note
		if b.To != "" {
			detail = "to " + b.To + ": " + detail
		}
		a.auth.Audit(r, principal(r), action, fmt.Sprintf("alert %d", al.ID), detail)
		writeJSON(w, http.StatusOK, map[string]any{"alert": out})
	}
}

func (a *alertsAPI) ack(w http.ResponseWriter, r *http.Request) {
	a.act(w, r, "alert.ack", func(id int64, by string, b lifecycleBody) (event.Alert, error) {
		return a.desk.Acknowledge(r.Context(), id, by, b.Note)
	})
}

func (a *alertsAPI) note(w http.ResponseWriter, r *http.Request) {
	a.act(w, r, "alert.note", func(id int64, by string, b lifecycleBody) (event.Alert, error) {
		if strings.TrimSpace(b.Note) == "" {
			return event.Alert{}, errors.New("a note needs text")
		}
		return a.desk.AddNote(r.Context(), id, by, b.Note)
	})
}

func (a *alertsAPI) handover(w http.ResponseWriter, r *http.Request) {
	a.act(w, r, "alert.handover", func(id int64, by string, b lifecycleBody) (event.Alert, error) {
		return a.desk.HandOver(r.Context(), id, by, b.To, b.Note)
	})
}

func (a *alertsAPI) resolve(w http.ResponseWriter, r *http.Request) {
	a.act(w, r, "alert.resolve", func(id int64, by string, b lifecycleBody) (event.Alert, error) {
		return a.desk.Resolve(r.Context(), id, by, b.Note)
	})
}

// deadLetter is a delivery that gave up, without its payload.
type deadLetter struct {
	ID        int64     `json:"id"`
	AlertID   int64     `json:"alert_id"`
	Channel   string    `json:"channel"`
	Attempts  int       `json:"attempts"`
	CreatedAt time.Time `json:"created_at"`
	DeadAt    time.Time `json:"dead_at"`
	LastError string    `json:"last_error"`
}

func (a *alertsAPI) deadLetters(w http.ResponseWriter, r *http.Request) {
	rows, err := a.db.DeadDeliveries(r.Context(), 500)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "dead letters unreadable")
		return
	}
	out := make([]deadLetter, 0, len(rows))
	for _, d := range rows {
		out = append(out, deadLetter{ID: d.ID, AlertID: d.AlertID, Channel: d.Channel, Attempts: d.Attempts,
			CreatedAt: d.CreatedAt, DeadAt: d.DeadAt, LastError: d.LastError})
	}
	writeJSON(w, http.StatusOK, map[string]any{"dead": out})
}

func (a *alertsAPI) retryDelivery(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		writeError(w, http.StatusBadRequest, "delivery id must be a positive number")
		return
	}
	if err := a.db.RequeueDelivery(r.Context(), id, time.Now()); err != nil {
		writeError(w, http.StatusNotFound, "delivery %d cannot be retried: %v", id, err)
		return
	}
	a.auth.Audit(r, principal(r), "delivery.retry", fmt.Sprintf("delivery %d", id), "")
	writeJSON(w, http.StatusOK, map[string]any{"requeued": id})
}

func (a *alertsAPI) areaStatus(w http.ResponseWriter, r *http.Request) {
	p := principal(r)
	var out []alerting.TargetStatus
	for _, st := range a.areas.Status(time.Now()) {
		if p.Role == RoleGuard {
			area, isArea := strings.CutPrefix(string(st.Target), "area:")
			if !isArea || !p.Covers([]string{area}) {
				continue
			}
		}
		out = append(out, st)
	}
	writeJSON(w, http.StatusOK, map[string]any{"targets": out})
}

// backtestRequest is the body of POST /api/v1/rules/backtest: a period
// and the candidate rules, with the keys of the config's rules: mapping.
type backtestRequest struct {
	From  time.Time       `json:"from"`
	To    time.Time       `json:"to"`
	Rules json.RawMessage `json:"rules"`
}

func (a *alertsAPI) backtest(w http.ResponseWriter, r *http.Request) {
	var req backtestRequest
	if !readJSON(w, r, &req) {
		return
	}
	if req.From.IsZero() || !req.To.After(req.From) || req.To.Sub(req.From) > 31*24*time.Hour {
		writeError(w, http.StatusBadRequest, "from and to must be RFC 3339 times, to after from, at most 31 days apart")
		return
	}
	cfg := a.site
	if len(req.Rules) > 0 && string(req.Rules) != "null" {
		// JSON is YAML: the candidate is checked exactly like a rules file
		var err error
		if cfg, err = config.WithRules(a.site, "rules", []byte(`{"rules": `+string(req.Rules)+`}`)); err != nil {
			writeError(w, http.StatusBadRequest, "%v", err)
			return
		}
	}
	res, err := alerting.Backtest(cfg, func(fn func(event.CountPoint) error) error {
		return a.db.ReplayCounts(r.Context(), req.From, req.To, fn)
	})
	if err != nil {
		writeError(w, http.StatusInternalServerError, "backtest: %v", err)
		return
	}
	a.auth.Audit(r, principal(r), "rules.backtest", "rules",
		fmt.Sprintf("%s to %s: %d alerts", req.From.Format(time.RFC3339), req.To.Format(time.RFC3339), len(res.Alerts)))
	writeJSON(w, http.StatusOK, res)
}
