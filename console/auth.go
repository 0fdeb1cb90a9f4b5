package console

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"mime"
	"net/http"
	"net/netip"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/argon2"

	"flowwatch/internal/config"
	"flowwatch/internal/store"
)

// Names the browser and clients see.
const (
	// SessionCookie is the cookie carrying the session secret.
	SessionCookie = "flowwatch_session"
	// CSRFHeader carries the session's CSRF token on every unsafe request
	// (anything but GET, HEAD, OPTIONS) of a cookie session.
	CSRFHeader = "X-CSRF-Token"
	// AdminUser is the user EnsureAdmin makes sure exists.
	AdminUser = "admin"
)

// Errors of Authenticate. Their text is what a client may be told.
var (
	// ErrNoCredentials: the request carries neither a bearer token nor
	// a session cookie.
	ErrNoCredentials = errors.New("login required")
	// ErrBadCredentials: the token or session is unknown, revoked or
	// malformed.
	ErrBadCredentials = errors.New("invalid or revoked session or token; log in again")
	// ErrSessionExpired: the session was idle too long or reached its
	// maximum length.
	ErrSessionExpired = errors.New("session expired; log in again")
	// ErrPasswordChangeRequired: the user must change their password
	// (PUT /api/v1/session/password) before anything else.
	ErrPasswordChangeRequired = errors.New("the password must be changed first: PUT /api/v1/session/password")
	// ErrTokenScope: an API token used outside its scopes.
	ErrTokenScope = errors.New("this API token's scopes do not include this route")
)

const (
	// loginBodyMax bounds the body of a login or password change.
	loginBodyMax = 4 << 10
	// touchEvery is how stale a session's last_seen (or a token's
	// last_used) may get before a use refreshes it.
	touchEvery = time.Minute
	// apiTokenPrefix starts every API token, so that a leaked one is
	// recognisable (and a session secret, base64url, is told apart).
	apiTokenPrefix = "fwt_"
	// maxSecretLen bounds what is taken as a token or session secret.
	maxSecretLen = 256
	// noPassword is the hash of a user who has no password yet: it is
	// no PHC string, so no password matches it.
	noPassword = "!"
	// generatedPasswordLen is the length of EnsureAdmin's generated
	// password.
	generatedPasswordLen = 20
	// generatedAlphabet leaves out look-alike characters (0 O 1 l I).
	generatedAlphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"
	// wrongLogin is the answer for an unknown user and for a wrong
	// password alike.
	wrongLogin = "wrong user name or password"
)

// AuthConfig configures an Auth.
type AuthConfig struct {
	// Store holds users, sessions and API tokens. Required.
	Store *store.Store
	// Logger receives one line per login, logout, lock-out and failure;
	// never a secret. Nil means slog.Default().
	Logger *slog.Logger
	// IdleTimeout ends a session unused this long (the next request
	// gets 401 and the audit log "session.expired"). Default 15m.
	IdleTimeout time.Duration
	// MaxSession ends a session this long after login, used or not.
	// Default 12h; at least IdleTimeout.
	MaxSession time.Duration
	// MaxFailures failed logins in a row lock the account. Default 5.
	MaxFailures int
	// LockFor is how long a locked account stays locked. Default 15m.
	LockFor time.Duration
	// LoginsPerMinute bounds the login attempts (and password changes)
	// per client address (an IPv6 client: its /64) and minute.
	// Default 10.
	LoginsPerMinute int
	// SecureCookies marks the session cookie Secure (set it when the
	// console is served over HTTPS).
	SecureCookies bool
	// PasswordHistory is how many of a user's last passwords, the
	// current one included, a new password may not repeat. Default
	// DefaultPasswordHistory; at most store.MaxPasswordHistory+1; -1
	// turns the rule off.
	PasswordHistory int
	// TOTPRoles are the roles that must log in with a TOTP second factor:
	// a user of one without TOTP may log in only to set it up (every
	// other route answers 403, as for a password to change).
	TOTPRoles []string
	// Sealer seals TOTP secrets for the store. Nil refuses TOTP
	// enrollment (ErrNoSealer); users who have TOTP cannot then log in.
	Sealer Sealer
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	// argon overrides the cost of new password hashes (tests lower it);
	// nil means defaultArgon.
	argon *argonParams
}

// Auth logs users in and tells who a request comes from: sessions (a
// cookie or a bearer token), API tokens for machines, roles and CSRF
// checks. It is safe for concurrent use.
type Auth struct {
	cfg   AuthConfig
	log   *slog.Logger
	db    *store.Store
	argon argonParams
	// slots bounds how many password hashes run at once: each takes
	// argon.memoryKiB of memory and argon.threads cores.
	slots chan struct{}
	// dummy is verified in place of a missing or unusable hash, so that
	// an unknown user takes as long as a wrong password.
	dummy phc
	// limiter bounds login attempts per client address.
	limiter loginLimiter
}

// NewAuth checks cfg, fills in its defaults and makes an Auth.
func NewAuth(cfg AuthConfig) (*Auth, error) {
	if cfg.Store == nil {
		return nil, errors.New("console: auth: no store")
	}
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"idle timeout", &cfg.IdleTimeout, 15 * time.Minute},
		{"max session", &cfg.MaxSession, 12 * time.Hour},
		{"lock-out time", &cfg.LockFor, 15 * time.Minute},
	} {
		switch {
		case *d.v < 0:
			return nil, fmt.Errorf("console: auth: negative %s %v", d.name, *d.v)
		case *d.v == 0:
			*d.v = d.def
		}
	}
	for _, d := range []struct {
		name string
		v    *int
		def  int
	}{
		{"max failures", &cfg.MaxFailures, 5},
		{"logins per minute", &cfg.LoginsPerMinute, 10},
	} {
		switch {
		case *d.v < 0:
			return nil, fmt.Errorf("console: auth: negative %s %d", d.name, *d.v)
		case *d.v == 0:
			*d.v = d.def
		}
	}
	if cfg.MaxSession < cfg.IdleTimeout {
		return nil, fmt.Errorf("console: auth: max session %v is shorter than the idle timeout %v", cfg.MaxSession, cfg.IdleTimeout)
	}
	switch {
	case cfg.PasswordHistory == 0:
		cfg.PasswordHistory = DefaultPasswordHistory
	case cfg.PasswordHistory == -1:
		cfg.PasswordHistory = 0
	case cfg.PasswordHistory < 0 || cfg.PasswordHistory > store.MaxPasswordHistory+1:
		return nil, fmt.Errorf("console: auth: password history %d out of 1..%d (or -1 for none)", cfg.PasswordHistory, store.MaxPasswordHistory+1)
	}
	for _, r := range cfg.TOTPRoles {
		if !knownRole(r) {
			return nil, fmt.Errorf("console: auth: TOTP role %q is not one of %s", r, strings.Join(config.Roles, ", "))
		}
	}
	cfg.TOTPRoles = slices.Clone(cfg.TOTPRoles)
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	a := &Auth{
		cfg:     cfg,
		log:     cfg.Logger,
		db:      cfg.Store,
		argon:   defaultArgon,
		slots:   make(chan struct{}, max(1, min(4, runtime.GOMAXPROCS(0)/2))),
		limiter: loginLimiter{per: cfg.LoginsPerMinute, windows: map[string]loginWindow{}},
	}
	if cfg.argon != nil {
		a.argon = *cfg.argon
	}
	salt := make([]byte, argonSaltLen)
	rand.Read(salt)
	a.dummy = phc{argonParams: a.argon, salt: salt, key: make([]byte, argonKeyLen)}
	return a, nil
}

func (a *Auth) now() time.Time { return a.cfg.Now() }

// Register adds the session and API token routes to mux:
//
//	POST   /api/v1/session               log in: {"username","password"}, and "code" with TOTP
//	GET    /api/v1/session               who the request comes from
//	DELETE /api/v1/session               log out
//	PUT    /api/v1/session/password      change one's password: {"password","new_password"}
//	POST   /api/v1/session/totp          start TOTP set-up: the secret, once
//	POST   /api/v1/session/totp/confirm  turn TOTP on: {"code"}
//	DELETE /api/v1/session/totp          turn TOTP off: {"code"}
//
// and the API token routes (registerTokens).
func (a *Auth) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST /api/v1/session", a.login)
	mux.HandleFunc("GET /api/v1/session", a.whoami)
	mux.HandleFunc("DELETE /api/v1/session", a.logout)
	mux.HandleFunc("PUT /api/v1/session/password", a.changePassword)
	mux.HandleFunc("POST /api/v1/session/totp", a.enrollTOTP)
	mux.HandleFunc("POST /api/v1/session/totp/confirm", a.confirmTOTP)
	mux.HandleFunc("DELETE /api/v1/session/totp", a.removeTOTP)
	mux.HandleFunc("/api/v1/session", authMethodNotAllowed("GET, POST, DELETE"))
	mux.HandleFunc("/api/v1/session/password", authMethodNotAllowed("PUT"))
	mux.HandleFunc("/api/v1/session/totp", authMethodNotAllowed("POST, DELETE"))
	mux.HandleFunc("/api/v1/session/totp/confirm", authMethodNotAllowed("POST"))
	a.registerTokens(mux)
}

// auditDetached is Audit for work that outlives its request (a live
// view's end): ctx instead of the request's, and the client address
// (clientKey) given.
func (a *Auth) auditDetached(ctx context.Context, p Principal, action, target, detail, remote string) {
	_, err := a.db.AppendAudit(ctx, store.AuditEntry{At: a.now(), Actor: p.User, Role: p.Role,
		Action: action, Target: target, Detail: detail, Remote: remote})
	if err != nil {
		a.log.Error("audit entry not written", "action", action, "user", p.User, "err", err)
	}
}

// authMethodNotAllowed answers 405 in JSON.
func authMethodNotAllowed(allow string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		writeError(w, http.StatusMethodNotAllowed, "method %s not allowed here; use %s", r.Method, allow)
	}
}

// sessionAnswer is the answer of login, password change and GET
// /api/v1/session.
type sessionAnswer struct {
	// Token is the session secret; only in the answers that create a
	// session.
	Token string   `json:"token,omitempty"`
	User  string   `json:"user"`
	Role  string   `json:"role"`
	Posts []string `json:"posts"`
	// CSRF goes in X-CSRF-Token on unsafe requests of a cookie session;
	// absent for an API token.
	CSRF       string `json:"csrf,omitempty"`
	MustChange bool   `json:"must_change"`
	// TOTP tells whether the user has a TOTP second factor on.
	TOTP bool `json:"totp"`
	// TOTPRequired: the user's role needs a second factor and they have
	// none; only setting it up is allowed.
	TOTPRequired bool `json:"totp_required"`
	// Kind is "session" or "api_token".
	Kind string `json:"kind"`
	// Expires is when the session ends at the latest (absent for an API
	// token).
	Expires *time.Time `json:"expires,omitempty"`
}

// loginRequest is the body of POST /api/v1/session.
type loginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
	// Code is the current code of the user's authenticator app, needed
	// when the user has TOTP on.
	Code string `json:"code"`
}

// passwordRequest is the body of PUT /api/v1/session/password.
type passwordRequest struct {
	Password    string `json:"password"`
	NewPassword string `json:"new_password"`
}

// readAuthBody decodes a small JSON body strictly into v, answering 4xx
// itself when it cannot. The reason never quotes the body.
func readAuthBody(w http.ResponseWriter, r *http.Request, v any) bool {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			writeError(w, http.StatusUnsupportedMediaType, "send the body as Content-Type: application/json")
			return false
		}
	} else {
		writeError(w, http.StatusUnsupportedMediaType, "send the body as Content-Type: application/json")
		return false
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, loginBodyMax))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("more than one JSON value")
	}
	if err == nil {
		if _, e := dec.Token(); !errors.Is(e, io.EOF) {
			err = errors.New("data after the JSON object")
		}
	}
	if err != nil {
		var tooBig *http.MaxBytesError
		var syntax *json.SyntaxError
		var typ *json.UnmarshalTypeError
		reason := "not a JSON object"
		switch {
		case errors.As(err, &tooBig):
			reason = fmt.Sprintf("body over %d bytes", loginBodyMax)
		case errors.As(err, &syntax):
			reason = fmt.Sprintf("malformed JSON at byte %d", syntax.Offset)
		case errors.As(err, &typ):
			reason = fmt.Sprintf("field %q must be a %s", typ.Field, typ.Type)
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			reason = strings.TrimPrefix(err.Error(), "json: ")
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			reason = "empty or truncated body"
		case err.Error() == "more than one JSON value", err.Error() == "data after the JSON object":
			reason = err.Error()
		}
		writeError(w, http.StatusBadRequest, "bad request body: %s", reason)
		return false
	}
	return true
}

// login serves POST /api/v1/session.
func (a *Auth) login(w http.ResponseWriter, r *http.Request) {
	client := clientKey(r)
	if !a.admit(w, client) {
		return
	}
	var req loginRequest
	if !readAuthBody(w, r, &req) {
		return
	}
	if req.Username == "" || req.Password == "" {
		writeError(w, http.StatusBadRequest, "username and password are required")
		return
	}
	ctx := r.Context()
	u, err := a.db.User(ctx, req.Username)
	if errors.Is(err, store.ErrNotFound) {
		// As long as a wrong password, and the same answer. The name
		// tried is not logged: it is often a password typed in the
		// wrong field.
		if _, err := a.verify(ctx, "", req.Password); err != nil {
			a.internalError(w, "login", err)
			return
		}
		a.log.Info("login failed: unknown user", "client", client)
		a.Audit(r, Principal{}, "login.failed", "", "unknown user")
		writeError(w, http.StatusUnauthorized, wrongLogin)
		return
	}
	if err != nil {
		a.internalError(w, "login", err)
		return
	}
	if !a.checkPassword(w, r, u, req.Password, client, "login") {
		return
	}
	tf, hasTOTP, err := a.confirmedTOTP(ctx, u.Username)
	if err != nil {
		a.internalError(w, "login", err)
		return
	}
	if hasTOTP && !a.checkCode(w, r, u, tf, req.Code, client, "login") {
		return
	}
	// Only now, with both factors right, are earlier failures cleared: a
	// right password alone does not clear the failures of wrong codes.
	now := a.now()
	if u.FailedLogins > 0 {
		if err := a.db.ResetLoginFailures(ctx, u.Username); err != nil {
			a.internalError(w, "login", err)
			return
		}
	}
	if n, err := a.db.DeleteExpiredSessions(ctx, now, a.cfg.IdleTimeout); err != nil {
		a.log.Error("deleting expired sessions", "err", err)
	} else if n > 0 {
		a.log.Debug("deleted expired sessions", "sessions", n)
	}
	secret, sess, err := a.newSession(ctx, u.Username, now)
	if err != nil {
		a.internalError(w, "login", err)
		return
	}
	enroll := !hasTOTP && a.totpRequired(u.Role)
	detail := "password"
	switch {
	case hasTOTP:
		detail = "password and TOTP code"
	case enroll:
		detail = "password; no second factor yet: limited to setting up TOTP"
	}
	a.log.Info("login", "user", u.Username, "role", u.Role, "client", client, "must_change", u.MustChange,
		"totp", hasTOTP, "totp_required", enroll)
	a.Audit(r, Principal{User: u.Username, Role: u.Role}, "login", "user "+u.Username, detail)
	a.answerNewSession(w, u, secret, sess, hasTOTP, enroll)
}

// admit counts one login attempt of client, answering 429 itself when
// the client has had its share.
func (a *Auth) admit(w http.ResponseWriter, client string) bool {
	wait, ok := a.limiter.allow(client, a.now())
	if ok {
		return true
	}
	secs := int((wait + time.Second - 1) / time.Second)
	secs = max(secs, 1)
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	a.log.Warn("login attempts rate-limited", "client", client, "retry_after_s", secs)
	writeError(w, http.StatusTooManyRequests, "too many login attempts from your address; retry in %d s", secs)
	return false
}

// checkPassword tells whether password is u's, answering 423 (locked) or
// 401 (wrong) itself when it is not; a wrong password counts as a
// failure, and MaxFailures of them lock the account for LockFor. what
// names the action in logs.
func (a *Auth) checkPassword(w http.ResponseWriter, r *http.Request, u store.User, password, client, what string) bool {
	ctx := r.Context()
	if now := a.now(); now.Before(u.LockedUntil) {
		a.log.Info(what+" refused: account locked", "user", u.Username, "until", u.LockedUntil.Format(time.RFC3339), "client", client)
		a.Audit(r, Principal{User: u.Username, Role: u.Role}, what+".refused", "user "+u.Username, "account locked")
		a.answerLocked(w, u.Username, u.LockedUntil, now)
		return false
	}
	ok, err := a.verify(ctx, u.PasswordHash, password)
	if err != nil {
		a.internalError(w, what, err)
		return false
	}
	if ok {
		return true
	}
	a.loginFailure(w, r, u, client, what, "wrong password", wrongLogin)
	return false
}

// loginFailure counts a failed login of u (a wrong password or code) and
// answers it: 401 with answer, or 423 when MaxFailures failures in a row
// lock the account for LockFor. reason goes to the log and the audit
// entry what+".failed"; neither ever holds what was typed.
func (a *Auth) loginFailure(w http.ResponseWriter, r *http.Request, u store.User, client, what, reason, answer string) {
	n, err := a.db.RecordLoginFailure(r.Context(), u.Username)
	if err != nil {
		a.internalError(w, what, err)
		return
	}
	if n >= a.cfg.MaxFailures {
		now := a.now()
		until := now.Add(a.cfg.LockFor)
		if err := a.db.LockUser(r.Context(), u.Username, until); err != nil {
			a.internalError(w, what, err)
			return
		}
		a.log.Warn("account locked after failed logins", "user", u.Username, "failures", n,
			"until", until.UTC().Format(time.RFC3339), "client", client)
		a.Audit(r, Principal{User: u.Username, Role: u.Role}, "account.locked", "user "+u.Username,
			fmt.Sprintf("%d failed logins; locked until %s", n, until.UTC().Format(time.RFC3339)))
		a.answerLocked(w, u.Username, until, now)
		return
	}
	a.log.Info(what+" failed: "+reason, "user", u.Username, "failures", n, "client", client)
	a.Audit(r, Principal{User: u.Username, Role: u.Role}, what+".failed", "user "+u.Username, reason)
	writeError(w, http.StatusUnauthorized, "%s", answer)
}

// answerLocked answers 423 for an account locked until until.
func (a *Auth) answerLocked(w http.ResponseWriter, user string, until, now time.Time) {
	secs := max(1, int(until.Sub(now).Round(time.Second)/time.Second))
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	writeJSON(w, http.StatusLocked, map[string]string{
		"error": fmt.Sprintf("account %q is locked after %d failed logins until %s; try again then or ask an admin",
			user, a.cfg.MaxFailures, until.UTC().Format(time.RFC3339)),
		"locked_until": until.UTC().Format(time.RFC3339),
	})
}

// internalError logs err and answers 500 without it.
func (a *Auth) internalError(w http.ResponseWriter, what string, err error) {
	if errors.Is(err, context.Canceled) {
		writeError(w, http.StatusServiceUnavailable, "request cancelled")
		return
	}
	a.log.Error(what+" failed", "err", err)
	writeError(w, http.StatusInternalServerError, "internal error; see the server log")
}

// newSession stores a new session of user starting at now and returns its
// secret.
func (a *Auth) newSession(ctx context.Context, user string, now time.Time) (string, store.Session, error) {
	secret := newSecret()
	sess := store.Session{
		ID:       sha256Hex(secret),
		Username: user,
		CSRFHash: sha256Hex(csrfToken(secret)),
		Created:  now,
		LastSeen: now,
		Expires:  now.Add(a.cfg.MaxSession),
	}
	if err := a.db.CreateSession(ctx, sess); err != nil {
		return "", store.Session{}, err
	}
	return secret, sess, nil
}

// answerNewSession sets the session cookie and answers the session with
// its secret as the token.
func (a *Auth) answerNewSession(w http.ResponseWriter, u store.User, secret string, sess store.Session, totp, totpRequired bool) {
	http.SetCookie(w, &http.Cookie{
		Name:     SessionCookie,
		Value:    secret,
		Path:     "/",
		HttpOnly: true,
		Secure:   a.cfg.SecureCookies,
		SameSite: http.SameSiteStrictMode,
	})
	exp := sess.Expires.UTC()
	writeJSON(w, http.StatusOK, sessionAnswer{
		Token: secret, User: u.Username, Role: u.Role, Posts: nonNil(u.Posts),
		CSRF: csrfToken(secret), MustChange: u.MustChange, Kind: "session", Expires: &exp,
		TOTP: totp, TOTPRequired: totpRequired,
	})
}

// clearCookie tells the browser to forget the session cookie.
func (a *Auth) clearCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{
		Name: SessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: a.cfg.SecureCookies, SameSite: http.SameSiteStrictMode,
	})
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// whoami serves GET /api/v1/session.
func (a *Auth) whoami(w http.ResponseWriter, r *http.Request) {
	res, ok := a.guard(w, r)
	if !ok {
		return
	}
	_, hasTOTP, err := a.confirmedTOTP(r.Context(), res.p.User)
	if err != nil {
		a.internalError(w, "session", err)
		return
	}
	ans := sessionAnswer{User: res.p.User, Role: res.p.Role, Posts: nonNil(res.p.Posts), MustChange: res.mustChange, Kind: "api_token",
		TOTP: hasTOTP, TOTPRequired: res.enrollTOTP}
	if res.session != nil {
		exp := res.session.Expires.UTC()
		ans.Kind, ans.CSRF, ans.Expires = "session", csrfToken(res.secret), &exp
	}
	writeJSON(w, http.StatusOK, ans)
}

// logout serves DELETE /api/v1/session.
func (a *Auth) logout(w http.ResponseWriter, r *http.Request) {
	res, err := a.authenticate(r)
	if err != nil {
		// Whatever the cookie held is no session: the browser may forget it.
		if _, cerr := r.Cookie(SessionCookie); cerr == nil {
			a.clearCookie(w)
		}
		a.answerAuthError(w, r, err)
		return
	}
	if !a.checkCSRF(w, r, res) {
		return
	}
	if res.session == nil {
		writeError(w, http.StatusBadRequest, "an API token does not log out; an admin revokes it")
		return
	}
	if err := a.db.DeleteSession(r.Context(), res.session.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
		a.internalError(w, "logout", err)
		return
	}
	a.clearCookie(w)
	a.log.Info("logout", "user", res.p.User, "client", clientKey(r))
	a.Audit(r, res.p, "logout", "user "+res.p.User, "")
	writeJSON(w, http.StatusOK, map[string]bool{"logged_out": true})
}

// changePassword serves PUT /api/v1/session/password: the user's current
// password and a new one; every session of the user ends, and the answer
// is a new session as a login's.
func (a *Auth) changePassword(w http.ResponseWriter, r *http.Request) {
	res, ok := a.guard(w, r)
	if !ok {
		return
	}
	if res.session == nil {
		writeError(w, http.StatusBadRequest, "log in with a password to change it; an API token cannot")
		return
	}
	client := clientKey(r)
	if !a.admit(w, client) {
		return
	}
	var req passwordRequest
	if !readAuthBody(w, r, &req) {
		return
	}
	if req.Password == "" || req.NewPassword == "" {
		writeError(w, http.StatusBadRequest, "password and new_password are required")
		return
	}
	if err := checkPasswordRules(res.p.User, req.NewPassword); err != nil {
		writePolicyError(w, err, "new password: %v", err)
		return
	}
	if req.NewPassword == req.Password {
		err := policyError(RulePasswordUnchanged, "must differ from the current one")
		writePolicyError(w, err, "new password: %v", err)
		return
	}
	ctx := r.Context()
	u, err := a.db.User(ctx, res.p.User)
	if err != nil {
		a.internalError(w, "password change", err)
		return
	}
	if !a.checkPassword(w, r, u, req.Password, client, "password change") {
		return
	}
	if err := a.checkNewPassword(ctx, u.Username, req.NewPassword); isPolicyError(err) {
		a.Audit(r, res.p, "password.change.refused", "user "+u.Username, err.Error())
		writePolicyError(w, err, "new password: %v", err)
		return
	} else if err != nil {
		a.internalError(w, "password change", err)
		return
	}
	if err := a.setPassword(ctx, u.Username, req.NewPassword, false); err != nil {
		a.internalError(w, "password change", err)
		return
	}
	u.MustChange = false
	secret, sess, err := a.newSession(ctx, u.Username, a.now())
	if err != nil {
		a.internalError(w, "password change", err)
		return
	}
	_, hasTOTP, err := a.confirmedTOTP(ctx, u.Username)
	if err != nil {
		a.internalError(w, "password change", err)
		return
	}
	a.log.Info("password changed", "user", u.Username, "client", client)
	a.Audit(r, Principal{User: u.Username, Role: u.Role}, "password.change", "user "+u.Username, "")
	a.answerNewSession(w, u, secret, sess, hasTOTP, !hasTOTP && a.totpRequired(u.Role))
}

// authResult is who a request comes from and through what.
type authResult struct {
	p Principal
	// session is the session used; nil for an API token.
	session *store.Session
	// secret is the session secret presented.
	secret string
	// mustChange: the user has to change their password first.
	mustChange bool
	// enrollTOTP: the user's role needs a second factor and they have
	// none; only the session routes are open to them.
	enrollTOTP bool
	// scopes are the API token's scopes; none for a session or a token
	// without a limit.
	scopes []string
}

// Authenticate tells who r comes from: a bearer token (a session secret or
// an API token) in the Authorization header or, without that header, the
// session cookie (then Principal.Cookie is true). An Authorization header
// that is not a valid bearer token fails, whatever the cookie. Sessions
// end after IdleTimeout unused and MaxSession in all. A user who must
// change their password gets ErrPasswordChangeRequired, one who must set
// up a second factor ErrSecondFactorEnrollment. The errors are
// ErrNoCredentials, ErrBadCredentials, ErrSessionExpired,
// ErrPasswordChangeRequired, ErrSecondFactorEnrollment, or a store
// failure. An API token's scopes are not checked here (Require does).
func (a *Auth) Authenticate(r *http.Request) (Principal, error) {
	res, err := a.authenticate(r)
	if err != nil {
		return Principal{}, err
	}
	switch {
	case res.mustChange:
		return Principal{}, ErrPasswordChangeRequired
	case res.enrollTOTP:
		return Principal{}, ErrSecondFactorEnrollment
	}
	return res.p, nil
}

// authenticate is Authenticate, letting a user who must change their
// password or set up a second factor through. An expired session is
// deleted and audited as "session.expired".
func (a *Auth) authenticate(r *http.Request) (authResult, error) {
	secret, cookie, err := credentials(r)
	if err != nil {
		return authResult{}, err
	}
	ctx := r.Context()
	now := a.now()
	id := sha256Hex(secret)
	sess, err := a.db.Session(ctx, id)
	switch {
	case err == nil:
		if !now.Before(sess.Expires) || now.Sub(sess.LastSeen) >= a.cfg.IdleTimeout {
			err := a.db.DeleteSession(ctx, id)
			switch {
			case errors.Is(err, store.ErrNotFound):
				// Another request ended it and said so.
			case err != nil:
				return authResult{}, err
			default:
				why := fmt.Sprintf("idle since %s (idle timeout %v)", sess.LastSeen.UTC().Format(time.RFC3339), a.cfg.IdleTimeout)
				if !now.Before(sess.Expires) {
					why = fmt.Sprintf("maximum length %v reached", a.cfg.MaxSession)
				}
				a.log.Info("session expired", "user", sess.Username, "reason", why, "client", clientKey(r))
				a.Audit(r, Principal{User: sess.Username}, "session.expired", "user "+sess.Username,
					fmt.Sprintf("session of %s; %s", sess.Created.UTC().Format(time.RFC3339), why))
			}
			return authResult{}, ErrSessionExpired
		}
		u, err := a.db.User(ctx, sess.Username)
		if err != nil {
			return authResult{}, err
		}
		if now.Sub(sess.LastSeen) >= touchEvery {
			if err := a.db.TouchSession(ctx, id, now); err != nil && !errors.Is(err, store.ErrNotFound) {
				return authResult{}, err
			}
		}
		enroll := false
		if a.totpRequired(u.Role) {
			_, on, err := a.confirmedTOTP(ctx, u.Username)
			if err != nil {
				return authResult{}, err
			}
			enroll = !on
		}
		return authResult{
			p:       Principal{User: u.Username, Role: u.Role, Posts: u.Posts, Cookie: cookie},
			session: &sess, secret: secret, mustChange: u.MustChange, enrollTOTP: enroll,
		}, nil
	case !errors.Is(err, store.ErrNotFound):
		return authResult{}, err
	case cookie || !strings.HasPrefix(secret, apiTokenPrefix):
		// API tokens are for machines, in the Authorization header.
		return authResult{}, ErrBadCredentials
	}
	tok, err := a.db.APITokenByHash(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return authResult{}, ErrBadCredentials
	case err != nil:
		return authResult{}, err
	case !tok.Revoked.IsZero():
		return authResult{}, ErrBadCredentials
	}
	u, err := a.db.User(ctx, tok.Username)
	if err != nil {
		return authResult{}, err
	}
	role := u.Role
	if tok.Role != "" {
		if !roleCovers(u.Role, tok.Role) {
			// The owner was demoted since: the token may not act above them.
			a.log.Info("API token refused: its role is above its owner's now", "id", tok.ID, "user", u.Username,
				"role", u.Role, "token_role", tok.Role)
			return authResult{}, ErrBadCredentials
		}
		role = tok.Role
	}
	if now.Sub(tok.LastUsed) >= touchEvery {
		if err := a.db.TouchAPIToken(ctx, tok.ID, now); err != nil && !errors.Is(err, store.ErrNotFound) {
			return authResult{}, err
		}
	}
	return authResult{p: Principal{User: u.Username, Role: role, Posts: u.Posts, Token: tok.ID}, mustChange: u.MustChange,
		scopes: tok.Scopes}, nil
}

// credentials returns the secret r presents and whether it came in the
// cookie.
func credentials(r *http.Request) (secret string, cookie bool, err error) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(h, " ")
		tok = strings.TrimSpace(tok)
		if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" || len(tok) > maxSecretLen {
			return "", false, ErrBadCredentials
		}
		return tok, false, nil
	}
	c, err := r.Cookie(SessionCookie)
	if err != nil || c.Value == "" {
		return "", false, ErrNoCredentials
	}
	if len(c.Value) > maxSecretLen {
		return "", false, ErrBadCredentials
	}
	return c.Value, true, nil
}

// guard authenticates r for the session routes (a user who must change
// their password passes) and checks the CSRF token of a cookie session's
// unsafe request, answering the failure itself.
func (a *Auth) guard(w http.ResponseWriter, r *http.Request) (authResult, bool) {
	res, err := a.authenticate(r)
	if err != nil {
		a.answerAuthError(w, r, err)
		return authResult{}, false
	}
	if !a.checkCSRF(w, r, res) {
		return authResult{}, false
	}
	return res, true
}

// checkCSRF tells whether res may make r: a cookie session's unsafe
// request needs the session's CSRF token. It answers 403 itself when not.
func (a *Auth) checkCSRF(w http.ResponseWriter, r *http.Request, res authResult) bool {
	if !res.p.Cookie || safeMethod(r.Method) || csrfMatches(r, res.session) {
		return true
	}
	a.log.Info("request refused: CSRF token missing or wrong", "user", res.p.User, "method", r.Method,
		"path", r.URL.Path, "client", clientKey(r))
	a.Audit(r, res.p, "request.forbidden", r.Method+" "+r.URL.Path, "missing or wrong "+CSRFHeader)
	writeError(w, http.StatusForbidden, "missing or wrong %s header: send the csrf value of the login answer", CSRFHeader)
	return false
}

// answerAuthError answers a failure of authenticate: 401 for credentials,
// audited as "request.refused" (no user, the route, the reason), 500 for
// the store.
func (a *Auth) answerAuthError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, ErrNoCredentials), errors.Is(err, ErrBadCredentials), errors.Is(err, ErrSessionExpired):
		if !errors.Is(err, ErrNoCredentials) {
			a.log.Debug("request refused", "reason", err.Error(), "method", r.Method, "path", r.URL.Path, "client", clientKey(r))
		}
		a.Audit(r, Principal{}, "request.refused", r.Method+" "+r.URL.Path, err.Error())
		w.Header().Set("WWW-Authenticate", `Bearer realm="flowwatch"`)
		writeError(w, http.StatusUnauthorized, "%s", err.Error())
	default:
		a.internalError(w, "authentication", err)
	}
}

// safeMethod tells whether m changes nothing, and so needs no CSRF token.
func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// csrfMatches tells whether r's CSRF header is the session's token.
func csrfMatches(r *http.Request, sess *store.Session) bool {
	h := r.Header.Get(CSRFHeader)
	if h == "" || sess == nil || len(h) > maxSecretLen {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(sha256Hex(h)), []byte(sess.CSRFHash)) == 1
}

// Require lets h serve only requests from a principal holding one of
// roles, with the principal in the request's context (PrincipalFrom). It
// answers 401 without valid credentials; 403 for a cookie session's unsafe
// request (anything but GET, HEAD, OPTIONS) without the session's CSRF
// token in X-CSRF-Token, for a user who must change their password or set
// up a second factor first, for an API token outside its scopes, and for a
// role not in roles. Every refusal is audited: "request.refused" for a
// 401, "request.forbidden" for a 403.
func (a *Auth) Require(roles []string, h http.Handler) http.Handler {
	roles = slices.Clone(roles)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res, ok := a.guard(w, r)
		if !ok {
			return
		}
		refuse := func(err error) {
			a.log.Info("request refused", "user", res.p.User, "reason", err.Error(), "method", r.Method, "path", r.URL.Path)
			a.Audit(r, res.p, "request.forbidden", r.Method+" "+r.URL.Path, err.Error())
			writeError(w, http.StatusForbidden, "user %q: %v", res.p.User, err)
		}
		switch {
		case res.mustChange:
			refuse(ErrPasswordChangeRequired)
			return
		case res.enrollTOTP:
			refuse(ErrSecondFactorEnrollment)
			return
		case !scopesAllow(res.scopes, r):
			refuse(ErrTokenScope)
			return
		}
		if !res.p.Is(roles...) {
			a.log.Info("request refused: role", "user", res.p.User, "role", res.p.Role, "method", r.Method, "path", r.URL.Path)
			a.Audit(r, res.p, "request.forbidden", r.Method+" "+r.URL.Path, "role "+res.p.Role)
			writeError(w, http.StatusForbidden, "role %q may not do this (it needs one of: %s)", res.p.Role, strings.Join(roles, ", "))
			return
		}
		h.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), res.p)))
	})
}

// EnsureAdmin makes sure the user "admin" exists with a password. When it
// is missing (or has no password yet, as when only the config named it),
// it gets the role admin (if created) and password; an empty password
// (FLOWWATCH_ADMIN_PASSWORD unset) means a generated one of 20 characters,
// printed once to out, never logged, which must be changed at first login.
// An admin that has a password is left alone.
func (a *Auth) EnsureAdmin(ctx context.Context, password string, out io.Writer) error {
	fail := func(err error) error { return fmt.Errorf("console: ensure admin user: %w", err) }
	u, err := a.db.User(ctx, AdminUser)
	exists := err == nil
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return fail(err)
	case u.PasswordHash != noPassword:
		if password != "" {
			a.log.Info("admin user exists; the admin password given is only used on first start", "user", AdminUser)
		}
		return nil
	}
	generated := password == ""
	if generated {
		if out == nil {
			return fail(errors.New("no admin password given and nowhere to print a generated one"))
		}
		password = generatePassword(AdminUser)
	} else if err := a.checkNewPassword(ctx, AdminUser, password); err != nil {
		return fail(fmt.Errorf("admin password (FLOWWATCH_ADMIN_PASSWORD): %w", err))
	}
	if exists {
		err = a.setPassword(ctx, AdminUser, password, generated)
	} else {
		err = a.createUser(ctx, AdminUser, RoleAdmin, nil, password, generated)
	}
	if err != nil {
		return fail(err)
	}
	if generated {
		if _, err := fmt.Fprintf(out, "flowwatch: generated password of user %q: %s (shown only this once; it must be changed at first login)\n",
			AdminUser, password); err != nil {
			return fail(fmt.Errorf("printing the generated password: %w", err))
		}
	}
	a.log.Info("admin user ready", "user", AdminUser, "created", !exists, "generated_password", generated)
	return nil
}

// EnsureUsers creates the configured users missing from the store, without
// a password: they cannot log in until an admin sets one (SetPassword).
// Users that exist are left alone.
func (a *Auth) EnsureUsers(ctx context.Context, users []config.User) error {
	for _, cu := range users {
		_, err := a.db.User(ctx, cu.Username)
		switch {
		case err == nil:
			continue
		case !errors.Is(err, store.ErrNotFound):
			return fmt.Errorf("console: ensure configured users: %w", err)
		}
		if err := a.CreateUser(ctx, cu.Username, cu.Role, cu.Posts, ""); err != nil {
			return fmt.Errorf("console: ensure configured users: %w", err)
		}
		a.log.Warn("configured user created without a password: it cannot log in until an admin sets one",
			"user", cu.Username, "role", cu.Role)
	}
	return nil
}

// knownRole tells whether role is one of the Role constants.
func knownRole(role string) bool {
	return slices.Contains([]string{RoleAdmin, RoleOperator, RoleGuard, RolePlanner, RoleViewer}, role)
}

// CreateUser stores a new user with a role, posts and password; an empty
// password leaves the user unable to log in until SetPassword gives one.
// The password must keep the password policy (checkPasswordRules; the
// error is then a *PasswordPolicyError, wrapped).
func (a *Auth) CreateUser(ctx context.Context, username, role string, posts []string, password string) error {
	if password != "" {
		if err := checkPasswordRules(username, password); err != nil {
			return fmt.Errorf("console: create user %q: password: %w", username, err)
		}
	}
	return a.createUser(ctx, username, role, posts, password, false)
}

// createUser is CreateUser with the must-change flag.
func (a *Auth) createUser(ctx context.Context, username, role string, posts []string, password string, mustChange bool) error {
	if !knownRole(role) {
		return fmt.Errorf("console: create user %q: unknown role %q", username, role)
	}
	hash := noPassword
	if password != "" {
		var err error
		if hash, err = a.hash(ctx, password); err != nil {
			return fmt.Errorf("console: create user %q: %w", username, err)
		}
	}
	now := a.now()
	return a.db.CreateUser(ctx, store.User{Username: username, Role: role, Posts: posts, PasswordHash: hash,
		MustChange: mustChange, Created: now, Updated: now})
}

// SetPassword gives the user a new password, which must keep the password
// policy (checkNewPassword, history included; the error is then a
// *PasswordPolicyError, wrapped) and be changed at next login when
// mustChange; it lifts any lock-out and ends all the user's sessions.
func (a *Auth) SetPassword(ctx context.Context, username, password string, mustChange bool) error {
	if err := a.checkNewPassword(ctx, username, password); err != nil {
		return fmt.Errorf("console: set password of user %q: %w", username, err)
	}
	if err := a.setPassword(ctx, username, password, mustChange); err != nil {
		return fmt.Errorf("console: set password of user %q: %w", username, err)
	}
	a.log.Info("password set", "user", username, "must_change", mustChange)
	return nil
}

// setPassword stores the hash of password and ends the user's sessions.
func (a *Auth) setPassword(ctx context.Context, username, password string, mustChange bool) error {
	hash, err := a.hash(ctx, password)
	if err != nil {
		return err
	}
	if err := a.db.UpdateUserPassword(ctx, username, hash, mustChange, a.now()); err != nil {
		return err
	}
	if _, err := a.db.DeleteUserSessions(ctx, username); err != nil {
		return err
	}
	return nil
}

// newSecret returns 32 random bytes in base64url: a session secret.
func newSecret() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// sha256Hex is the lowercase hex SHA-256 of s: how secrets are stored.
func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// csrfToken is the CSRF token of the session with this secret: derived,
// so the session's GET can give it again, and one-way, so it tells nothing
// of the secret.
func csrfToken(secret string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("flowwatch csrf token"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// generatePassword returns generatedPasswordLen characters drawn uniformly
// from generatedAlphabet (about 117 bits) that keep the password rules
// for username (checkPasswordRules): a draw lacking a kind of character
// (one in twenty lacks a digit) is drawn again.
func generatePassword(username string) string {
	n := big.NewInt(int64(len(generatedAlphabet)))
	b := make([]byte, generatedPasswordLen)
	for {
		for i := range b {
			k, err := rand.Int(rand.Reader, n)
			if err != nil {
				panic(fmt.Sprintf("crypto/rand failed: %v", err)) // crypto/rand does not fail on supported systems
			}
			b[i] = generatedAlphabet[k.Int64()]
		}
		if checkPasswordRules(username, string(b)) == nil {
			return string(b)
		}
	}
}

// clientKey names the client for rate limits and logs: its IP address,
// or its /64 for IPv6. The connection's address is used, or, behind a
// trusted proxy, the client address it forwarded (trustedProxies.wrap
// sets RemoteAddr); nobody else's forwarding headers are believed.
func clientKey(r *http.Request) string {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	addr := ap.Addr().Unmap()
	if addr.Is6() {
		p, err := addr.Prefix(64)
		if err == nil {
			return p.String()
		}
	}
	return addr.String()
}

// loginLimiter counts login attempts per client in one-minute windows.
type loginLimiter struct {
	mu      sync.Mutex
	per     int
	windows map[string]loginWindow
}

// loginWindow is one client's current window.
type loginWindow struct {
	start time.Time
	n     int
}

// Bounds on how many clients the limiter remembers.
const (
	limiterPruneAt = 4096
	limiterMax     = 1 << 16
)

// allow counts an attempt of client at now; when the client has had its
// share, it returns false and how long until its window ends.
func (l *loginLimiter) allow(client string, now time.Time) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	w, ok := l.windows[client]
	if !ok || now.Sub(w.start) >= time.Minute || now.Before(w.start) {
		if !ok && len(l.windows) >= limiterPruneAt {
			for k, v := range l.windows {
				if now.Sub(v.start) >= time.Minute {
					delete(l.windows, k)
				}
			}
			if len(l.windows) >= limiterMax {
				// Too many clients at once: an attack; new ones wait.
				return time.Minute, false
			}
		}
		w = loginWindow{start: now}
	}
	if w.n >= l.per {
		return w.start.Add(time.Minute).Sub(now), false
	}
	w.n++
	l.windows[client] = w
	return 0, true
}

// argonParams is the cost of an argon2id hash.
type argonParams struct {
	time      uint32
	memoryKiB uint32
	threads   uint8
}

// defaultArgon is the cost of new hashes: one pass over 64 MiB with 2
// lanes, above OWASP's floor for argon2id (one pass over 46 MiB). Stored
// hashes carry their own cost, so changing this leaves them valid.
var defaultArgon = argonParams{time: 1, memoryKiB: 64 << 10, threads: 2}

// Sizes of a hash's salt and key.
const (
	argonSaltLen = 16
	argonKeyLen  = 32
)

// phc is a parsed argon2id PHC string.
type phc struct {
	argonParams
	salt, key []byte
}

// String encodes h as a PHC string:
// $argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<key>.
func (h phc) String() string {
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, h.memoryKiB, h.time, h.threads,
		b64.EncodeToString(h.salt), b64.EncodeToString(h.key))
}

// parsePHC parses an argon2id PHC string, refusing costs out of bounds.
func parsePHC(s string) (phc, error) {
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return phc{}, errors.New("not an argon2id PHC string")
	}
	if parts[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return phc{}, fmt.Errorf("argon2 version %q, want v=%d", parts[2], argon2.Version)
	}
	var h phc
	for _, kv := range strings.Split(parts[3], ",") {
		k, v, _ := strings.Cut(kv, "=")
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return phc{}, fmt.Errorf("argon2 parameter %q: %w", kv, err)
		}
		switch k {
		case "m":
			h.memoryKiB = uint32(n)
		case "t":
			h.time = uint32(n)
		case "p":
			if n > 255 {
				return phc{}, fmt.Errorf("argon2 parameter %q out of range", kv)
			}
			h.threads = uint8(n)
		default:
			return phc{}, fmt.Errorf("unknown argon2 parameter %q", kv)
		}
	}
	switch {
	case h.threads < 1 || h.threads > 16:
		return phc{}, fmt.Errorf("argon2 lanes %d out of 1..16", h.threads)
	case h.time < 1 || h.time > 16:
		return phc{}, fmt.Errorf("argon2 passes %d out of 1..16", h.time)
	case h.memoryKiB < 8*uint32(h.threads) || h.memoryKiB > 1<<20:
		return phc{}, fmt.Errorf("argon2 memory %d KiB out of range", h.memoryKiB)
	}
	var err error
	if h.salt, err = base64.RawStdEncoding.DecodeString(parts[4]); err != nil || len(h.salt) < 8 {
		return phc{}, errors.New("bad argon2 salt")
	}
	if h.key, err = base64.RawStdEncoding.DecodeString(parts[5]); err != nil || len(h.key) < 16 || len(h.key) > 64 {
		return phc{}, errors.New("bad argon2 key")
	}
	return h, nil
}

// slot waits for a free hashing slot; the caller calls the returned
// release.
func (a *Auth) slot(ctx context.Context) (func(), error) {
	select {
	case a.slots <- struct{}{}:
		return func() { <-a.slots }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// hash returns the PHC string of password with a new random salt.
func (a *Auth) hash(ctx context.Context, password string) (string, error) {
	release, err := a.slot(ctx)
	if err != nil {
		return "", err
	}
	defer release()
	h := phc{argonParams: a.argon, salt: make([]byte, argonSaltLen)}
	rand.Read(h.salt)
	h.key = argon2.IDKey([]byte(password), h.salt, h.time, h.memoryKiB, h.threads, argonKeyLen)
	return h.String(), nil
}

// verify tells whether password matches the PHC string encoded, comparing
// in constant time. A string that is no valid hash (a user without a
// password, or none at all) matches nothing but costs as much time as one.
func (a *Auth) verify(ctx context.Context, encoded, password string) (bool, error) {
	release, err := a.slot(ctx)
	if err != nil {
		return false, err
	}
	defer release()
	h, perr := parsePHC(encoded)
	if perr != nil {
		if encoded != "" && encoded != noPassword {
			a.log.Error("stored password hash is unusable", "err", perr)
		}
		h = a.dummy
	}
	key := argon2.IDKey([]byte(password), h.salt, h.time, h.memoryKiB, h.threads, uint32(len(h.key)))
	return perr == nil && subtle.ConstantTimeCompare(key, h.key) == 1, nil
}
