package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"flowwatch/internal/store"
)

// Bounds on an API token's name and scopes.
const (
	maxTokenNameLen = 64
	maxTokenScopes  = 16
	maxScopeLen     = 128
	// readScopePrefix makes a scope read-only: only GET and HEAD.
	readScopePrefix = "read:"
)

// roleCovers tells whether a user of role owner may hand role tok to an
// API token: their own role; any role for an admin; viewer for an
// operator. A guard's, a planner's and a viewer's tokens have their role.
func roleCovers(owner, tok string) bool {
	switch {
	case owner == tok:
		return true
	case owner == RoleAdmin:
		return knownRole(tok)
	case owner == RoleOperator:
		return tok == RoleViewer
	}
	return false
}

// checkScopes reports what is wrong with an API token's scopes. A scope is
// a path prefix ("/api/v1/alerts", "/ws", "/whep/gate"), optionally
// preceded by "read:" to allow only GET and HEAD under it; a prefix
// matches itself and what lies below it ("/api/v1/alerts" matches
// "/api/v1/alerts/7/ack", not "/api/v1/alertsx").
func checkScopes(scopes []string) error {
	if len(scopes) > maxTokenScopes {
		return fmt.Errorf("%d scopes; at most %d", len(scopes), maxTokenScopes)
	}
	for i, s := range scopes {
		p := strings.TrimPrefix(s, readScopePrefix)
		switch {
		case len(s) > maxScopeLen:
			return fmt.Errorf("scope %d is over %d bytes", i+1, maxScopeLen)
		case !strings.HasPrefix(p, "/") || strings.ContainsAny(p, "?# \t\n") || strings.Contains(p, ".."):
			return fmt.Errorf(`scope %q: want a path prefix such as "/api/v1/alerts", or "read:" and one`, s)
		case slices.Contains(scopes[:i], s):
			return fmt.Errorf("scope %q is named twice", s)
		}
	}
	return nil
}

// scopesAllow tells whether scopes let a token make r: no scopes allow
// every route (the role still decides); else one scope's prefix must
// match r's path, and a "read:" scope only for GET and HEAD.
func scopesAllow(scopes []string, r *http.Request) bool {
	if len(scopes) == 0 {
		return true
	}
	for _, s := range scopes {
		p, readOnly := strings.CutPrefix(s, readScopePrefix)
		if readOnly && r.Method != http.MethodGet && r.Method != http.MethodHead {
			continue
		}
		p = strings.TrimSuffix(p, "/")
		if path := r.URL.Path; path == p || strings.HasPrefix(path, p+"/") || p == "" {
			return true
		}
	}
	return false
}

// APITokenSpec says what an API token may do.
type APITokenSpec struct {
	// Name says what the token is for: 1 to 64 printable bytes.
	Name string
	// Role is the role the token acts with; "" means its owner's. It
	// must be one the owner's role covers (an admin: any; an operator:
	// operator or viewer; others: their own).
	Role string
	// Scopes limit the routes the token may use (see checkScopes); none
	// means every route of its role.
	Scopes []string
}

// NewAPIToken makes a token for a machine acting as username with spec's
// role and scopes, and returns it with its stored record. Only its hash is
// stored: the token cannot be shown again. It works as
// "Authorization: Bearer <token>" until revoked, and stops working when
// its owner's role no longer covers its role.
func (a *Auth) NewAPIToken(ctx context.Context, username string, spec APITokenSpec) (string, store.APIToken, error) {
	fail := func(err error) (string, store.APIToken, error) {
		return "", store.APIToken{}, fmt.Errorf("console: create API token %q of user %q: %w", spec.Name, username, err)
	}
	u, err := a.db.User(ctx, username)
	if err != nil {
		return fail(err)
	}
	if spec.Role == "" {
		spec.Role = u.Role
	}
	switch {
	case strings.TrimSpace(spec.Name) == "" || len(spec.Name) > maxTokenNameLen ||
		strings.IndexFunc(spec.Name, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0:
		return fail(&TokenSpecError{Reason: fmt.Sprintf("name must be 1 to %d printable bytes", maxTokenNameLen)})
	case !knownRole(spec.Role):
		return fail(&TokenSpecError{Reason: fmt.Sprintf("unknown role %q", spec.Role)})
	case !roleCovers(u.Role, spec.Role):
		return fail(&TokenSpecError{Reason: fmt.Sprintf("a user of role %q cannot make a token of role %q", u.Role, spec.Role),
			AboveOwner: true})
	}
	if err := checkScopes(spec.Scopes); err != nil {
		return fail(&TokenSpecError{Reason: err.Error()})
	}
	token := apiTokenPrefix + newSecret()
	t := store.APIToken{Name: spec.Name, Username: username, Hash: sha256Hex(token), Role: spec.Role,
		Scopes: slices.Clone(spec.Scopes), Created: a.now()}
	if t.ID, err = a.db.CreateAPIToken(ctx, t); err != nil {
		return "", store.APIToken{}, fmt.Errorf("console: %w", err)
	}
	a.log.Info("API token created", "user", username, "name", spec.Name, "id", t.ID, "role", t.Role, "scopes", strings.Join(t.Scopes, " "))
	return token, t, nil
}

// TokenSpecError is an APITokenSpec refused by NewAPIToken.
type TokenSpecError struct {
	// Reason says what is wrong.
	Reason string
	// AboveOwner is set when the role asked for is above the owner's.
	AboveOwner bool
}

func (e *TokenSpecError) Error() string { return e.Reason }

// CreateAPIToken makes a token for a machine acting as username, with
// username's role and no scope limit, named name (what it is for), and
// returns it (see NewAPIToken).
func (a *Auth) CreateAPIToken(ctx context.Context, username, name string) (string, error) {
	token, _, err := a.NewAPIToken(ctx, username, APITokenSpec{Name: name})
	return token, err
}

// RevokeAPIToken revokes the API token with the given id, now: it is
// refused from the next request on.
func (a *Auth) RevokeAPIToken(ctx context.Context, id int64) error {
	if err := a.db.RevokeAPIToken(ctx, id, a.now()); err != nil {
		return fmt.Errorf("console: %w", err)
	}
	a.log.Info("API token revoked", "id", id)
	return nil
}

// tokenInfo is an API token as the API shows it: never the token or its
// hash.
type tokenInfo struct {
	ID       int64      `json:"id"`
	Name     string     `json:"name"`
	User     string     `json:"user"`
	Role     string     `json:"role"`
	Scopes   []string   `json:"scopes"`
	Created  time.Time  `json:"created_at"`
	LastUsed *time.Time `json:"last_used"`
	Revoked  *time.Time `json:"revoked_at"`
}

func newTokenInfo(t store.APIToken) tokenInfo {
	opt := func(v time.Time) *time.Time {
		if v.IsZero() {
			return nil
		}
		v = v.UTC()
		return &v
	}
	return tokenInfo{ID: t.ID, Name: t.Name, User: t.Username, Role: t.Role, Scopes: nonNil(t.Scopes),
		Created: t.Created.UTC(), LastUsed: opt(t.LastUsed), Revoked: opt(t.Revoked)}
}

// newTokenBody is the body of POST /api/v1/tokens.
type newTokenBody struct {
	Name   string   `json:"name"`
	Role   string   `json:"role"`
	Scopes []string `json:"scopes"`
}

// registerTokens adds the API token routes to mux:
//
//	POST   /api/v1/tokens       make one's own token {"name","role","scopes"}; answered once
//	GET    /api/v1/tokens       one's own tokens; an admin's: every user's (?user= for one)
//	DELETE /api/v1/tokens/{id}  revoke one's own token; an admin: anyone's
func (a *Auth) registerTokens(mux *http.ServeMux) {
	all := []string{RoleAdmin, RoleOperator, RoleGuard, RolePlanner, RoleViewer}
	mux.Handle("POST /api/v1/tokens", a.Require(all, http.HandlerFunc(a.createToken)))
	mux.Handle("GET /api/v1/tokens", a.Require(all, http.HandlerFunc(a.listTokens)))
	mux.Handle("DELETE /api/v1/tokens/{id}", a.Require(all, http.HandlerFunc(a.revokeToken)))
	mux.HandleFunc("/api/v1/tokens", authMethodNotAllowed("GET, POST"))
	mux.HandleFunc("/api/v1/tokens/{id}", authMethodNotAllowed("DELETE"))
}

// createToken serves POST /api/v1/tokens.
func (a *Auth) createToken(w http.ResponseWriter, r *http.Request) {
	p := principal(r)
	if p.Token != 0 {
		writeError(w, http.StatusForbidden, "an API token cannot make API tokens; log in with a password")
		return
	}
	var body newTokenBody
	if !readJSON(w, r, &body) {
		return
	}
	token, t, err := a.NewAPIToken(r.Context(), p.User, APITokenSpec{Name: body.Name, Role: body.Role, Scopes: body.Scopes})
	var bad *TokenSpecError
	switch {
	case errors.As(err, &bad) && bad.AboveOwner:
		a.log.Info("API token refused: role above the owner's", "user", p.User, "role", p.Role, "asked", body.Role)
		a.Audit(r, p, "request.forbidden", r.Method+" "+r.URL.Path, fmt.Sprintf("role %s asked for an API token of role %s", p.Role, body.Role))
		writeError(w, http.StatusForbidden, "API token %q: %s", body.Name, bad.Reason)
		return
	case errors.As(err, &bad):
		writeError(w, http.StatusBadRequest, "API token %q: %s", body.Name, bad.Reason)
		return
	case err != nil:
		a.internalError(w, "making an API token", err)
		return
	}
	a.Audit(r, p, "token.create", fmt.Sprintf("API token %d (%s)", t.ID, t.Name),
		fmt.Sprintf("role %s, scopes [%s]", t.Role, strings.Join(t.Scopes, ", ")))
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, map[string]any{"token": token, "api_token": newTokenInfo(t)})
}

// listTokens serves GET /api/v1/tokens.
func (a *Auth) listTokens(w http.ResponseWriter, r *http.Request) {
	p := principal(r)
	user := r.URL.Query().Get("user")
	var (
		toks []store.APIToken
		err  error
	)
	switch {
	case p.Role != RoleAdmin && user != "" && user != p.User:
		writeError(w, http.StatusForbidden, "role %q may list only its own API tokens", p.Role)
		return
	case p.Role != RoleAdmin:
		toks, err = a.db.APITokens(r.Context(), p.User)
	case user != "":
		toks, err = a.db.APITokens(r.Context(), user)
	default:
		toks, err = a.db.AllAPITokens(r.Context())
	}
	if err != nil {
		a.internalError(w, "listing API tokens", err)
		return
	}
	out := make([]tokenInfo, 0, len(toks))
	for _, t := range toks {
		out = append(out, newTokenInfo(t))
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": out})
}

// revokeToken serves DELETE /api/v1/tokens/{id}: the token is refused from
// the next request on. To a user who is neither its owner nor an admin it
// does not exist.
func (a *Auth) revokeToken(w http.ResponseWriter, r *http.Request) {
	p := principal(r)
	raw := r.PathValue("id")
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || id <= 0 {
		writeError(w, http.StatusBadRequest, "API token id %q: want a positive integer", raw)
		return
	}
	t, err := a.db.APITokenByID(r.Context(), id)
	switch {
	case errors.Is(err, store.ErrNotFound) || (err == nil && t.Username != p.User && p.Role != RoleAdmin):
		writeError(w, http.StatusNotFound, "no API token %d", id)
		return
	case err != nil:
		a.internalError(w, "revoking an API token", err)
		return
	}
	if err := a.RevokeAPIToken(r.Context(), id); err != nil {
		a.internalError(w, "revoking an API token", err)
		return
	}
	after, err := a.db.APITokenByID(r.Context(), id)
	if err != nil {
		a.internalError(w, "revoking an API token", err)
		return
	}
	detail := "revoked"
	if !t.Revoked.IsZero() {
		detail = "was revoked already at " + t.Revoked.UTC().Format(time.RFC3339)
	}
	a.Audit(r, p, "token.revoke", fmt.Sprintf("API token %d (%s) of user %s", t.ID, t.Name, t.Username), detail)
	writeJSON(w, http.StatusOK, map[string]any{"api_token": newTokenInfo(after)})
}
