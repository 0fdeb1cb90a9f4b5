package console

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"flowwatch/internal/store"
)

// TestTOTPRFC6238Vectors checks the code generator against the SHA-1
// test vectors of RFC 6238 appendix B (8 digits, the seed
// "12345678901234567890"), and the 6-digit codes as their last 6 digits.
func TestTOTPRFC6238Vectors(t *testing.T) {
	key := []byte("12345678901234567890")
	for _, v := range []struct {
		unix int64
		want string
	}{
		{59, "94287082"},
		{1111111109, "07081804"},
		{1111111111, "14050471"},
		{1234567890, "89005924"},
		{2000000000, "69279037"},
		{20000000000, "65353130"},
	} {
		at := time.Unix(v.unix, 0)
		if got := hotp(key, uint64(totpStep(at)), 8); got != v.want {
			t.Errorf("T=%d: %s, want %s", v.unix, got, v.want)
		}
		six := hotp(key, uint64(totpStep(at)), totpDigits)
		if six != v.want[2:] {
			t.Errorf("T=%d: 6-digit code %s, want %s", v.unix, six, v.want[2:])
		}
		if v.unix < 2*totpPeriod {
			continue // the clock off by two steps would be before 1970
		}
		// The code is accepted a step early or late, not two.
		for _, c := range []struct {
			skew time.Duration
			ok   bool
		}{{0, true}, {-totpPeriod * time.Second, true}, {totpPeriod * time.Second, true},
			{-2 * totpPeriod * time.Second, false}, {2 * totpPeriod * time.Second, false}} {
			step, ok := totpMatch(key, six, at.Add(c.skew))
			if ok != c.ok || (ok && step != totpStep(at)) {
				t.Errorf("T=%d, clock off by %v: match %v at step %d, want %v", v.unix, c.skew, ok, step, c.ok)
			}
		}
	}
	for _, bad := range []string{"", "12345", "1234567", "12345a", "١٢٣٤٥٦"} {
		if _, ok := totpMatch(key, bad, time.Unix(59, 0)); ok {
			t.Errorf("code %q matched", bad)
		}
	}
}

// testSealer is an AES-256-GCM box, as internal/secrets' is.
type testSealer struct{ aead cipher.AEAD }

func newTestSealer(t *testing.T) *testSealer {
	t.Helper()
	key := make([]byte, 32)
	rand.Read(key)
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	return &testSealer{aead: aead}
}

func (s *testSealer) Seal(plain []byte) ([]byte, error) {
	nonce := make([]byte, s.aead.NonceSize())
	rand.Read(nonce)
	return s.aead.Seal(nonce, nonce, plain, nil), nil
}

func (s *testSealer) Open(sealed []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n {
		return nil, errors.New("sealed value too short")
	}
	return s.aead.Open(nil, sealed[:n], sealed[n:], nil)
}

// enrollTOTP sets up TOTP for the session token (a cookie session with
// csrf) and returns the secret; it checks the answer on the way.
func (f *authFixture) enrollTOTP(token, csrf string) []byte {
	f.t.Helper()
	r := f.do(authReq{method: "POST", path: "/api/v1/session/totp", cookie: token, csrf: csrf})
	if r.code != http.StatusOK || r.header.Get("Cache-Control") != "no-store" {
		f.t.Fatalf("TOTP enrollment: %d %s", r.code, r.body)
	}
	key, err := totpBase32.DecodeString(r.str("secret"))
	if err != nil || len(key) != totpSecretLen {
		f.t.Fatalf("secret %q: %v", r.str("secret"), err)
	}
	u, err := url.Parse(r.str("uri"))
	if err != nil || u.Scheme != "otpauth" || u.Host != "totp" || u.Query().Get("secret") != r.str("secret") ||
		u.Query().Get("issuer") != totpIssuer || u.Query().Get("digits") != "6" || u.Query().Get("period") != "30" ||
		u.Query().Get("algorithm") != "SHA1" {
		f.t.Errorf("otpauth URI %q: %v", r.str("uri"), err)
	}
	return key
}

// code is key's code at the fixture's clock.
func (f *authFixture) code(key []byte) string {
	return hotp(key, uint64(totpStep(f.clock.Now())), totpDigits)
}

// auditActions returns the actions of the audit entries, oldest first,
// and fails the test when an entry shows one of secrets.
func auditActions(t *testing.T, db *store.Store, secrets ...string) []string {
	t.Helper()
	entries, err := db.AuditEntries(context.Background(), store.AuditFilter{Limit: 5000})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i := len(entries) - 1; i >= 0; i-- {
		e := entries[i]
		for _, s := range secrets {
			if s != "" && (strings.Contains(e.Detail, s) || strings.Contains(e.Target, s)) {
				t.Errorf("audit entry %d (%s) shows a secret: %+v", e.ID, e.Action, e)
			}
		}
		out = append(out, e.Action+" "+e.Actor+": "+e.Detail)
	}
	return out
}

// hasAudit tells whether one of lines (from auditActions) starts with
// prefix and contains word.
func hasAudit(lines []string, prefix, word string) bool {
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) && strings.Contains(l, word) {
			return true
		}
	}
	return false
}

func TestTOTPEnrollLoginReplayAndRemove(t *testing.T) {
	f := newAuthFixture(t, func(c *AuthConfig) { c.Sealer = newTestSealer(t); c.LoginsPerMinute = 1000 })
	f.user("olga", RoleOperator, "Quiet-Harbor-71")
	token, csrf := f.mustLogin("olga", "Quiet-Harbor-71")

	// A pending secret is not asked for at login, and needs a right code.
	key := f.enrollTOTP(token, csrf)
	if r := f.login("olga", "Quiet-Harbor-71"); r.code != http.StatusOK || r.json["totp"] != false {
		t.Fatalf("login with a pending secret: %d %s", r.code, r.body)
	}
	confirm := func(code string) authResp {
		return f.do(authReq{method: "POST", path: "/api/v1/session/totp/confirm", cookie: token, csrf: csrf,
			body: map[string]string{"code": code}})
	}
	wrong := hotp(key, uint64(totpStep(f.clock.Now()))+5, totpDigits)
	wantError(t, "confirm with a wrong code", confirm(wrong), http.StatusBadRequest, wrongCode)
	wantError(t, "confirm by API token", f.do(authReq{method: "POST", path: "/api/v1/session/totp/confirm", bearer: f.apiToken("olga"),
		body: map[string]string{"code": f.code(key)}}), http.StatusBadRequest, "API token")
	used := f.code(key)
	if r := confirm(used); r.code != http.StatusOK || r.json["totp"] != true {
		t.Fatalf("confirm: %d %s", r.code, r.body)
	}
	wantError(t, "second enrollment", f.do(authReq{method: "POST", path: "/api/v1/session/totp", cookie: token, csrf: csrf}),
		http.StatusConflict, "DELETE")

	// Login: the code is needed, must be right, and works once.
	login := func(code string) authResp {
		return f.do(authReq{method: "POST", path: "/api/v1/session",
			body: map[string]string{"username": "olga", "password": "Quiet-Harbor-71", "code": code}})
	}
	r := f.login("olga", "Quiet-Harbor-71")
	wantError(t, "login without the code", r, http.StatusUnauthorized, secondFactorRequired)
	if r.str("second_factor") != "totp" {
		t.Errorf("the answer does not say which factor: %s", r.body)
	}
	wantError(t, "login with a wrong code", login(wrong), http.StatusUnauthorized, wrongCode)
	wantError(t, "login with the code the confirmation used", login(used), http.StatusUnauthorized, wrongCode, "once")
	wantError(t, "right code, wrong password", f.do(authReq{method: "POST", path: "/api/v1/session",
		body: map[string]string{"username": "olga", "password": "Quiet-Harbor-72", "code": used}}), http.StatusUnauthorized, "wrong user name or password")
	f.clock.Advance(totpPeriod * time.Second)
	code := f.code(key)
	r = login(code)
	if r.code != http.StatusOK || r.json["totp"] != true || r.str("token") == "" {
		t.Fatalf("login with the code: %d %s", r.code, r.body)
	}
	if u, _ := f.db.User(context.Background(), "olga"); u.FailedLogins != 0 {
		t.Errorf("%d failed logins after a good one", u.FailedLogins)
	}
	wantError(t, "the same code again", login(code), http.StatusUnauthorized, wrongCode)
	// Wrong codes count towards the lock-out like wrong passwords.
	for i := range 5 {
		r = login(hotp(key, uint64(totpStep(f.clock.Now()))+10+uint64(i), totpDigits))
	}
	wantError(t, "fifth wrong code", r, http.StatusLocked, "locked")
	if err := f.db.UnlockUser(context.Background(), "olga"); err != nil {
		t.Fatal(err)
	}

	// Removal needs a fresh code.
	f.clock.Advance(totpPeriod * time.Second)
	r = login(f.code(key))
	token, csrf = r.str("token"), r.str("csrf")
	remove := func(code string) authResp {
		return f.do(authReq{method: "DELETE", path: "/api/v1/session/totp", cookie: token, csrf: csrf, body: map[string]string{"code": code}})
	}
	wantError(t, "removal with a used code", remove(f.code(key)), http.StatusUnauthorized, wrongCode)
	f.clock.Advance(totpPeriod * time.Second)
	last := f.code(key)
	if r := remove(last); r.code != http.StatusOK || r.json["totp"] != false {
		t.Fatalf("removal: %d %s", r.code, r.body)
	}
	f.mustLogin("olga", "Quiet-Harbor-71")

	// Neither the secret nor a code reaches the log, the audit log or the
	// database in clear; every step is audited.
	secret := totpBase32.EncodeToString(key)
	lines := auditActions(t, f.db, secret, used, code, last, wrong)
	for _, want := range []struct{ prefix, word string }{
		{"totp.enroll olga", "waiting"}, {"totp.confirm.failed olga", wrongCode}, {"totp.confirm olga", "on"},
		{"login.failed olga", secondFactorRequired}, {"login.failed olga", wrongCode}, {"login olga", "TOTP"},
		{"account.locked olga", "failed"}, {"totp.remove.failed olga", wrongCode}, {"totp.remove olga", "off"},
	} {
		if !hasAudit(lines, want.prefix, want.word) {
			t.Errorf("no audit entry %q saying %q in\n%s", want.prefix, want.word, strings.Join(lines, "\n"))
		}
	}
	logs := f.logs.String()
	for _, s := range []string{secret, used, code, last} {
		if strings.Contains(logs, s) {
			t.Errorf("%q reached the log", s)
		}
	}
	db := readDatabaseFiles(t, f.dbPath)
	if strings.Contains(string(db), secret) || strings.Contains(string(db), string(key)) {
		t.Error("the TOTP secret is stored in clear")
	}
}

// apiToken makes an API token of user.
func (f *authFixture) apiToken(user string) string {
	f.t.Helper()
	tok, err := f.auth.CreateAPIToken(context.Background(), user, "test")
	if err != nil {
		f.t.Fatal(err)
	}
	return tok
}

func TestTOTPRolesMustEnrollBeforeAnythingElse(t *testing.T) {
	f := newAuthFixture(t, func(c *AuthConfig) { c.Sealer = newTestSealer(t); c.TOTPRoles = []string{RoleAdmin} })
	f.user("ada", RoleAdmin, testPassword("ada"))
	f.user("olga", RoleOperator, "Quiet-Harbor-71")

	r := f.login("ada", testPassword("ada"))
	if r.code != http.StatusOK || r.json["totp_required"] != true || r.json["totp"] != false {
		t.Fatalf("admin login without TOTP: %d %s", r.code, r.body)
	}
	token, csrf := r.str("token"), r.str("csrf")
	wantError(t, "admin route before enrolling", f.do(authReq{method: "GET", path: "/t/admin", cookie: token}),
		http.StatusForbidden, "second factor", "/api/v1/session/totp")
	wantError(t, "any route before enrolling", f.do(authReq{method: "GET", path: "/t/read", bearer: token}),
		http.StatusForbidden, "second factor")
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	if _, err := f.auth.Authenticate(req); !errors.Is(err, ErrSecondFactorEnrollment) {
		t.Errorf("Authenticate before enrolling: %v", err)
	}
	if me := f.do(authReq{method: "GET", path: "/api/v1/session", cookie: token}); me.code != http.StatusOK || me.json["totp_required"] != true {
		t.Errorf("whoami before enrolling: %d %s", me.code, me.body)
	}
	// Other roles are not asked.
	if r := f.login("olga", "Quiet-Harbor-71"); r.code != http.StatusOK || r.json["totp_required"] != false {
		t.Errorf("operator login: %d %s", r.code, r.body)
	}

	key := f.enrollTOTP(token, csrf)
	if r := f.do(authReq{method: "POST", path: "/api/v1/session/totp/confirm", cookie: token, csrf: csrf,
		body: map[string]string{"code": f.code(key)}}); r.code != http.StatusOK {
		t.Fatalf("confirm: %d %s", r.code, r.body)
	}
	if r := f.do(authReq{method: "GET", path: "/t/admin", cookie: token}); r.code != http.StatusOK {
		t.Errorf("admin route after enrolling: %d %s", r.code, r.body)
	}
	if me := f.do(authReq{method: "GET", path: "/api/v1/session", cookie: token}); me.json["totp_required"] != false || me.json["totp"] != true {
		t.Errorf("whoami after enrolling: %s", me.body)
	}
	wantError(t, "login without the code now", f.login("ada", testPassword("ada")), http.StatusUnauthorized, secondFactorRequired)

	// An admin's reset (a lost phone) ends the sessions and asks for a new
	// enrollment.
	removed, err := f.auth.ResetTOTP(context.Background(), "ada")
	if err != nil || !removed {
		t.Fatalf("reset: %v, %v", removed, err)
	}
	wantError(t, "session after the reset", f.do(authReq{method: "GET", path: "/t/read", cookie: token}), http.StatusUnauthorized)
	if r := f.login("ada", testPassword("ada")); r.code != http.StatusOK || r.json["totp_required"] != true {
		t.Errorf("login after the reset: %d %s", r.code, r.body)
	}
	if removed, err := f.auth.ResetTOTP(context.Background(), "ada"); err != nil || removed {
		t.Errorf("second reset: %v, %v", removed, err)
	}
	if _, err := f.auth.ResetTOTP(context.Background(), "nobody"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("reset of nobody: %v", err)
	}
}

func TestTOTPNeedsAnEncryptionKey(t *testing.T) {
	f := newAuthFixture(t, func(c *AuthConfig) { c.TOTPRoles = []string{RoleOperator} })
	f.user("olga", RoleOperator, "Quiet-Harbor-71")
	token, csrf := f.mustLogin("olga", "Quiet-Harbor-71")
	wantError(t, "enrollment without a sealer", f.do(authReq{method: "POST", path: "/api/v1/session/totp", cookie: token, csrf: csrf}),
		http.StatusServiceUnavailable, "TOTP needs an encryption key: set FLOWWATCH_SECRET_KEY")
	wantError(t, "enrollment without CSRF", f.do(authReq{method: "POST", path: "/api/v1/session/totp", cookie: token}),
		http.StatusForbidden, CSRFHeader)
	wantError(t, "enrollment without login", f.do(authReq{method: "POST", path: "/api/v1/session/totp"}), http.StatusUnauthorized)
	wantError(t, "GET of the enrollment", f.do(authReq{method: "GET", path: "/api/v1/session/totp", cookie: token}),
		http.StatusMethodNotAllowed, "POST")

	// A sealed secret opens only for its user, and only with its key.
	g := newAuthFixture(t, func(c *AuthConfig) { c.Sealer = newTestSealer(t) })
	sealed, err := g.auth.sealTOTP("ada", []byte("12345678901234567890"))
	if err != nil {
		t.Fatal(err)
	}
	if key, err := g.auth.openTOTP(store.TOTP{Username: "ada", Sealed: sealed}); err != nil || string(key) != "12345678901234567890" {
		t.Errorf("open: %q, %v", key, err)
	}
	if _, err := g.auth.openTOTP(store.TOTP{Username: "eve", Sealed: sealed}); err == nil {
		t.Error("ada's secret opened as eve's")
	}
	h := newAuthFixture(t, func(c *AuthConfig) { c.Sealer = newTestSealer(t) })
	if _, err := h.auth.openTOTP(store.TOTP{Username: "ada", Sealed: sealed}); err == nil {
		t.Error("a secret opened with another key")
	}
	if _, err := f.auth.openTOTP(store.TOTP{Username: "ada", Sealed: sealed}); !errors.Is(err, ErrNoSealer) {
		t.Errorf("open without a sealer: %v", err)
	}
}

func TestTOTPUserWithoutServerKeyGetsAClearAnswer(t *testing.T) {
	f := newAuthFixture(t, nil)
	f.user("olga", RoleOperator, "Quiet-Harbor-71")
	ctx := context.Background()
	if err := f.db.SetPendingTOTP(ctx, "olga", []byte("sealed by a key now gone"), f.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if err := f.db.ConfirmTOTP(ctx, "olga", 1, f.clock.Now()); err != nil {
		t.Fatal(err)
	}
	r := f.do(authReq{method: "POST", path: "/api/v1/session",
		body: map[string]string{"username": "olga", "password": "Quiet-Harbor-71", "code": "123456"}})
	wantError(t, "login with TOTP but no server key", r, http.StatusServiceUnavailable, "FLOWWATCH_SECRET_KEY")
}
