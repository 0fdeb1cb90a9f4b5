package console

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"flowwatch/internal/store"
)

// Sealer encrypts secrets the store keeps (TOTP secrets): Seal returns a
// ciphertext only Open turns back into the plain text, and Open fails on
// anything Seal did not make with the same key. internal/secrets' box is
// one.
type Sealer interface {
	Seal(plain []byte) ([]byte, error)
	Open(sealed []byte) ([]byte, error)
}

// TOTP parameters (RFC 6238): HMAC-SHA-1, 6 digits, 30 s steps, a code
// of the step before or after also accepted (clock drift).
const (
	totpDigits = 6
	totpPeriod = 30
	totpSkew   = 1
	// totpSecretLen is the shared secret's length: 160 bits, as RFC 4226
	// recommends for HMAC-SHA-1.
	totpSecretLen = 20
	// totpIssuer names flowwatch in authenticator apps.
	totpIssuer = "flowwatch"
	// totpSealPrefix starts every sealed TOTP secret's plain text, with
	// the user's name after it, so that a sealed secret copied to another
	// user's row does not open as theirs.
	totpSealPrefix = "flowwatch-totp\x00"
)

// Answers about second factors. The texts are what a client is told.
var (
	// ErrNoSealer: TOTP enrollment without an encryption key.
	ErrNoSealer = errors.New("TOTP needs an encryption key: set FLOWWATCH_SECRET_KEY")
	// ErrSecondFactorEnrollment: a user whose role must use a second
	// factor has none yet; only enrollment is allowed.
	ErrSecondFactorEnrollment = errors.New("your role needs a second factor: set up TOTP first (POST /api/v1/session/totp, then POST /api/v1/session/totp/confirm)")
)

const (
	// secondFactorRequired is the reason of a login without the code
	// its user needs.
	secondFactorRequired = "second factor required"
	// wrongCode is the reason of a login with a wrong or used code.
	wrongCode = "wrong code"
)

// totpBase32 is the encoding authenticator apps read: RFC 4648 base32
// without padding.
var totpBase32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// hotp is the RFC 4226 one-time password of key for counter, with digits
// digits (RFC 6238's TOTP is hotp of the time step).
func hotp(key []byte, counter uint64, digits int) string {
	m := hmac.New(sha1.New, key)
	var c [8]byte
	binary.BigEndian.PutUint64(c[:], counter)
	m.Write(c[:])
	sum := m.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	bin := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	mod := uint32(1)
	for range digits {
		mod *= 10
	}
	return fmt.Sprintf("%0*d", digits, bin%mod)
}

// totpStep is the RFC 6238 time step of t (T0 = 0, X = 30 s).
func totpStep(t time.Time) int64 { return t.Unix() / totpPeriod }

// totpMatch checks code against key at now, allowing totpSkew steps either
// way, and returns the step whose code it is. The comparisons take the
// same time whatever matches.
func totpMatch(key []byte, code string, now time.Time) (int64, bool) {
	code = strings.TrimSpace(code)
	if len(code) != totpDigits || strings.Trim(code, "0123456789") != "" {
		return 0, false
	}
	var step int64
	ok := false
	cur := totpStep(now)
	for s := cur - totpSkew; s <= cur+totpSkew; s++ {
		if s >= 0 && hmac.Equal([]byte(hotp(key, uint64(s), totpDigits)), []byte(code)) {
			step, ok = s, true
		}
	}
	return step, ok
}

// totpURI is the otpauth:// URI of a secret for user, which authenticator
// apps take from a QR code.
func totpURI(user string, key []byte) string {
	q := url.Values{}
	q.Set("secret", totpBase32.EncodeToString(key))
	q.Set("issuer", totpIssuer)
	q.Set("algorithm", "SHA1")
	q.Set("digits", fmt.Sprint(totpDigits))
	q.Set("period", fmt.Sprint(totpPeriod))
	return "otpauth://totp/" + url.PathEscape(totpIssuer+":"+user) + "?" + q.Encode()
}

// sealTOTP seals user's secret key.
func (a *Auth) sealTOTP(user string, key []byte) ([]byte, error) {
	if a.cfg.Sealer == nil {
		return nil, ErrNoSealer
	}
	plain := append([]byte(totpSealPrefix+user+"\x00"), key...)
	sealed, err := a.cfg.Sealer.Seal(plain)
	if err != nil {
		return nil, fmt.Errorf("sealing the TOTP secret of user %q: %w", user, err)
	}
	return sealed, nil
}

// openTOTP opens the sealed secret of t, checking it is its user's.
func (a *Auth) openTOTP(t store.TOTP) ([]byte, error) {
	if a.cfg.Sealer == nil {
		return nil, ErrNoSealer
	}
	plain, err := a.cfg.Sealer.Open(t.Sealed)
	if err != nil {
		return nil, fmt.Errorf("opening the TOTP secret of user %q: %w", t.Username, err)
	}
	prefix := []byte(totpSealPrefix + t.Username + "\x00")
	if !bytes.HasPrefix(plain, prefix) || len(plain)-len(prefix) != totpSecretLen {
		return nil, fmt.Errorf("the TOTP secret stored for user %q is not theirs", t.Username)
	}
	return plain[len(prefix):], nil
}

// confirmedTOTP returns the user's confirmed TOTP factor, or ok false when
// the user has none (or only a pending one).
func (a *Auth) confirmedTOTP(ctx context.Context, user string) (store.TOTP, bool, error) {
	t, err := a.db.UserTOTP(ctx, user)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return store.TOTP{}, false, nil
	case err != nil:
		return store.TOTP{}, false, err
	}
	return t, t.Confirmed, nil
}

// totpRequired tells whether role must log in with a second factor.
func (a *Auth) totpRequired(role string) bool {
	for _, r := range a.cfg.TOTPRoles {
		if r == role {
			return true
		}
	}
	return false
}

// checkCode checks a login's code against the user's confirmed factor t
// and uses its step, answering itself when it fails: 401 "second factor
// required" without a code, 401 "wrong code" (a login failure, counted
// towards the lock-out) for a wrong or used one, 423 when that locks the
// account. Neither the code nor the secret is logged.
func (a *Auth) checkCode(w http.ResponseWriter, r *http.Request, u store.User, t store.TOTP, code, client, what string) bool {
	if strings.TrimSpace(code) == "" {
		a.log.Info(what+" refused: second factor required", "user", u.Username, "client", client)
		a.Audit(r, Principal{User: u.Username, Role: u.Role}, what+".failed", "user "+u.Username, secondFactorRequired)
		writeJSON(w, http.StatusUnauthorized, map[string]string{
			"error":         secondFactorRequired + `: send the 6-digit code of your authenticator app as "code"`,
			"second_factor": "totp",
		})
		return false
	}
	key, err := a.openTOTP(t)
	if errors.Is(err, ErrNoSealer) {
		a.log.Error(what+" impossible: the user has TOTP but the server no encryption key", "user", u.Username)
		writeError(w, http.StatusServiceUnavailable, "the second factor cannot be checked: the server has no encryption key (FLOWWATCH_SECRET_KEY); ask an admin")
		return false
	}
	if err != nil {
		a.internalError(w, what, err)
		return false
	}
	step, ok := totpMatch(key, code, a.now())
	reason := wrongCode
	if ok {
		fresh, err := a.db.UseTOTPStep(r.Context(), u.Username, step)
		if err != nil {
			a.internalError(w, what, err)
			return false
		}
		if fresh {
			return true
		}
		reason = wrongCode + ": a code works once; wait for the next one"
	}
	a.loginFailure(w, r, u, client, what, reason, reason)
	return false
}

// totpEnrollment is the answer of POST /api/v1/session/totp: the secret,
// shown this once.
type totpEnrollment struct {
	// Secret is the shared secret in base32, to type into an app.
	Secret string `json:"secret"`
	// URI is the otpauth:// URI, for a QR code.
	URI       string `json:"uri"`
	Algorithm string `json:"algorithm"`
	Digits    int    `json:"digits"`
	Period    int    `json:"period"`
	// Confirm says what to do next.
	Confirm string `json:"confirm"`
}

// codeRequest is the body of the TOTP confirmation and removal.
type codeRequest struct {
	Code string `json:"code"`
}

// sessionOnly refuses (400) a request made with an API token, for routes
// that change the user's own credentials.
func sessionOnly(w http.ResponseWriter, res authResult, what string) bool {
	if res.session == nil {
		writeError(w, http.StatusBadRequest, "log in with a password to %s; an API token cannot", what)
		return false
	}
	return true
}

// enrollTOTP serves POST /api/v1/session/totp: a new secret for the
// user's authenticator app, answered once, pending until confirmed.
func (a *Auth) enrollTOTP(w http.ResponseWriter, r *http.Request) {
	res, ok := a.guard(w, r)
	if !ok || !sessionOnly(w, res, "set up a second factor") {
		return
	}
	if a.cfg.Sealer == nil {
		a.log.Warn("TOTP enrollment refused: no encryption key", "user", res.p.User)
		writeError(w, http.StatusServiceUnavailable, "%v", ErrNoSealer)
		return
	}
	ctx := r.Context()
	if _, on, err := a.confirmedTOTP(ctx, res.p.User); err != nil {
		a.internalError(w, "TOTP enrollment", err)
		return
	} else if on {
		writeError(w, http.StatusConflict, "user %q has TOTP already; remove it first (DELETE /api/v1/session/totp with a code)", res.p.User)
		return
	}
	key := make([]byte, totpSecretLen)
	rand.Read(key)
	sealed, err := a.sealTOTP(res.p.User, key)
	if err != nil {
		a.internalError(w, "TOTP enrollment", err)
		return
	}
	err = a.db.SetPendingTOTP(ctx, res.p.User, sealed, a.now())
	switch {
	case errors.Is(err, store.ErrTOTPEnabled):
		writeError(w, http.StatusConflict, "user %q has TOTP already; remove it first (DELETE /api/v1/session/totp with a code)", res.p.User)
		return
	case err != nil:
		a.internalError(w, "TOTP enrollment", err)
		return
	}
	a.log.Info("TOTP enrollment started", "user", res.p.User, "client", clientKey(r))
	a.Audit(r, res.p, "totp.enroll", "user "+res.p.User, "secret made; waiting for confirmation")
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, totpEnrollment{
		Secret: totpBase32.EncodeToString(key), URI: totpURI(res.p.User, key),
		Algorithm: "SHA1", Digits: totpDigits, Period: totpPeriod,
		Confirm: `POST /api/v1/session/totp/confirm {"code"} with a code of the app`,
	})
}

// totpCodeRequest admits a session's request {"code"} to what (to its
// second factor) and reads it; ok false when it has answered already.
func (a *Auth) totpCodeRequest(w http.ResponseWriter, r *http.Request, what string) (res authResult, client string, req codeRequest, ok bool) {
	res, ok = a.guard(w, r)
	if !ok || !sessionOnly(w, res, what) {
		return res, "", req, false
	}
	client = clientKey(r)
	if !a.admit(w, client) {
		return res, client, req, false
	}
	if !readAuthBody(w, r, &req) {
		return res, client, req, false
	}
	return res, client, req, true
}

// confirmTOTP serves POST /api/v1/session/totp/confirm {"code"}: a code
// of the pending secret turns it on.
func (a *Auth) confirmTOTP(w http.ResponseWriter, r *http.Request) {
	res, client, req, ok := a.totpCodeRequest(w, r, "set up a second factor")
	if !ok {
		return
	}
	ctx := r.Context()
	t, err := a.db.UserTOTP(ctx, res.p.User)
	switch {
	case errors.Is(err, store.ErrNotFound) || (err == nil && t.Confirmed):
		writeError(w, http.StatusConflict, "user %q has no TOTP set-up waiting for confirmation; start one with POST /api/v1/session/totp", res.p.User)
		return
	case err != nil:
		a.internalError(w, "TOTP confirmation", err)
		return
	}
	key, err := a.openTOTP(t)
	if err != nil {
		a.internalError(w, "TOTP confirmation", err)
		return
	}
	step, ok := totpMatch(key, req.Code, a.now())
	if !ok {
		a.log.Info("TOTP confirmation failed: wrong code", "user", res.p.User, "client", client)
		a.Audit(r, res.p, "totp.confirm.failed", "user "+res.p.User, wrongCode)
		writeError(w, http.StatusBadRequest, "%s: send a current 6-digit code of the app holding the new secret", wrongCode)
		return
	}
	if err := a.db.ConfirmTOTP(ctx, res.p.User, step, a.now()); err != nil {
		a.internalError(w, "TOTP confirmation", err)
		return
	}
	a.log.Info("TOTP enabled", "user", res.p.User, "client", client)
	a.Audit(r, res.p, "totp.confirm", "user "+res.p.User, "second factor on")
	writeJSON(w, http.StatusOK, map[string]bool{"totp": true})
}

// removeTOTP serves DELETE /api/v1/session/totp {"code"}: the user turns
// their second factor off, proving it with a code (a pending one goes
// without). A wrong code counts as a failed login.
func (a *Auth) removeTOTP(w http.ResponseWriter, r *http.Request) {
	res, client, req, ok := a.totpCodeRequest(w, r, "remove a second factor")
	if !ok {
		return
	}
	ctx := r.Context()
	t, err := a.db.UserTOTP(ctx, res.p.User)
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusConflict, "user %q has no TOTP to remove", res.p.User)
		return
	case err != nil:
		a.internalError(w, "TOTP removal", err)
		return
	}
	if t.Confirmed {
		u, err := a.db.User(ctx, res.p.User)
		if err != nil {
			a.internalError(w, "TOTP removal", err)
			return
		}
		if !a.checkCode(w, r, u, t, req.Code, client, "totp.remove") {
			return
		}
	}
	if err := a.db.DeleteTOTP(ctx, res.p.User); err != nil && !errors.Is(err, store.ErrNotFound) {
		a.internalError(w, "TOTP removal", err)
		return
	}
	a.log.Info("TOTP removed", "user", res.p.User, "client", client, "was_confirmed", t.Confirmed)
	a.Audit(r, res.p, "totp.remove", "user "+res.p.User, fmt.Sprintf("second factor off (was confirmed: %v)", t.Confirmed))
	writeJSON(w, http.StatusOK, map[string]bool{"totp": false})
}

// ResetTOTP removes the user's second factor, pending or confirmed, and
// ends their sessions (an admin's reset for a lost phone); removed tells
// whether there was one. ErrNotFound, wrapped, when there is no such user.
func (a *Auth) ResetTOTP(ctx context.Context, username string) (removed bool, err error) {
	if _, err := a.db.User(ctx, username); err != nil {
		return false, fmt.Errorf("console: reset TOTP of user %q: %w", username, err)
	}
	err = a.db.DeleteTOTP(ctx, username)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return false, fmt.Errorf("console: reset TOTP of user %q: %w", username, err)
	default:
		removed = true
	}
	if _, err := a.db.DeleteUserSessions(ctx, username); err != nil {
		return removed, fmt.Errorf("console: reset TOTP of user %q: %w", username, err)
	}
	return removed, nil
}
