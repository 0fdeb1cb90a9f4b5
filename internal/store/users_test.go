package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// hashOf is the hex SHA-256 of s, as the console stores secrets.
func hashOf(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func TestUsersCreateReadUpdate(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	t0 := time.Date(2025, 5, 1, 8, 0, 0, 0, time.UTC)

	if err := s.CreateUser(ctx, User{Username: "zoe", Role: "guard", Posts: []string{"north-gate"},
		PasswordHash: "$argon2id$fake", MustChange: true, Created: t0}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateUser(ctx, User{Username: "adam", Role: "viewer", PasswordHash: "!", Created: t0}); err != nil {
		t.Fatal(err)
	}
	err := s.CreateUser(ctx, User{Username: "zoe", Role: "admin", PasswordHash: "x", Created: t0})
	if !errors.Is(err, ErrUserExists) || !strings.Contains(err.Error(), `"zoe"`) {
		t.Errorf("second zoe: got %v, want ErrUserExists naming the user", err)
	}

	u, err := s.User(ctx, "zoe")
	if err != nil {
		t.Fatal(err)
	}
	if u.Role != "guard" || !slices.Equal(u.Posts, []string{"north-gate"}) || u.PasswordHash != "$argon2id$fake" ||
		!u.MustChange || u.FailedLogins != 0 || !u.LockedUntil.IsZero() || !u.Created.Equal(t0) || !u.Updated.Equal(t0) {
		t.Errorf("zoe = %+v", u)
	}
	if _, err := s.User(ctx, "nobody"); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "nobody") {
		t.Errorf("missing user: got %v, want ErrNotFound naming it", err)
	}

	all, err := s.Users(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[0].Username != "adam" || all[1].Username != "zoe" {
		t.Fatalf("users = %+v, want adam then zoe", all)
	}
	if all[0].Posts == nil || len(all[0].Posts) != 0 {
		t.Errorf("adam's posts = %#v, want an empty list", all[0].Posts)
	}

	t1 := t0.Add(time.Hour)
	if err := s.SetUserRole(ctx, "zoe", "operator", nil, t1); err != nil {
		t.Fatal(err)
	}
	if n, err := s.RecordLoginFailure(ctx, "zoe"); err != nil || n != 1 {
		t.Fatalf("first failure: %d, %v", n, err)
	}
	if n, err := s.RecordLoginFailure(ctx, "zoe"); err != nil || n != 2 {
		t.Fatalf("second failure: %d, %v", n, err)
	}
	if err := s.LockUser(ctx, "zoe", t1.Add(15*time.Minute)); err != nil {
		t.Fatal(err)
	}
	u, _ = s.User(ctx, "zoe")
	if u.Role != "operator" || len(u.Posts) != 0 || !u.Updated.Equal(t1) || u.FailedLogins != 0 ||
		!u.LockedUntil.Equal(t1.Add(15*time.Minute)) {
		t.Errorf("after role change and lock: %+v", u)
	}
	if n, _ := s.RecordLoginFailure(ctx, "zoe"); n != 1 {
		t.Errorf("failures after lock restart at %d, want 1", n)
	}
	if err := s.ResetLoginFailures(ctx, "zoe"); err != nil {
		t.Fatal(err)
	}
	if u, _ = s.User(ctx, "zoe"); u.FailedLogins != 0 {
		t.Errorf("failures after reset: %d", u.FailedLogins)
	}

	t2 := t1.Add(time.Hour)
	if err := s.LockUser(ctx, "zoe", t2.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	s.RecordLoginFailure(ctx, "zoe")
	if err := s.UpdateUserPassword(ctx, "zoe", "$argon2id$new", false, t2); err != nil {
		t.Fatal(err)
	}
	u, _ = s.User(ctx, "zoe")
	if u.PasswordHash != "$argon2id$new" || u.MustChange || u.FailedLogins != 0 || !u.LockedUntil.IsZero() || !u.Updated.Equal(t2) {
		t.Errorf("after password change: %+v (want new hash, no must-change, no failures, no lock)", u)
	}

	for name, err := range map[string]error{
		"password": s.UpdateUserPassword(ctx, "nobody", "h", false, t2),
		"role":     s.SetUserRole(ctx, "nobody", "admin", nil, t2),
		"reset":    s.ResetLoginFailures(ctx, "nobody"),
		"lock":     s.LockUser(ctx, "nobody", t2),
		"failure":  func() error { _, err := s.RecordLoginFailure(ctx, "nobody"); return err }(),
	} {
		if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), `"nobody"`) {
			t.Errorf("%s of a missing user: got %v, want ErrNotFound naming it", name, err)
		}
	}
}

func TestCreateUserRefusesBadUsers(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	t0 := time.Unix(1_700_000_000, 0)
	for name, u := range map[string]User{
		"empty name":    {Role: "admin", PasswordHash: "h", Created: t0},
		"spaced name":   {Username: " bob", Role: "admin", PasswordHash: "h", Created: t0},
		"long name":     {Username: strings.Repeat("b", 65), Role: "admin", PasswordHash: "h", Created: t0},
		"no role":       {Username: "bob", PasswordHash: "h", Created: t0},
		"no hash":       {Username: "bob", Role: "admin", Created: t0},
		"no time":       {Username: "bob", Role: "admin", PasswordHash: "h"},
		"negative fail": {Username: "bob", Role: "admin", PasswordHash: "h", Created: t0, FailedLogins: -1},
	} {
		if err := s.CreateUser(ctx, u); err == nil {
			t.Errorf("%s: stored %+v", name, u)
		}
	}
	if all, _ := s.Users(ctx); len(all) != 0 {
		t.Errorf("bad users were stored: %+v", all)
	}
}

func TestSessionsLifecycle(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	t0 := time.Date(2025, 5, 1, 8, 0, 0, 0, time.UTC)
	for _, name := range []string{"ann", "ben"} {
		if err := s.CreateUser(ctx, User{Username: name, Role: "operator", PasswordHash: "h", Created: t0}); err != nil {
			t.Fatal(err)
		}
	}
	mk := func(secret, user string, created time.Time) Session {
		return Session{ID: hashOf(secret), Username: user, CSRFHash: hashOf("csrf-" + secret),
			Created: created, Expires: created.Add(12 * time.Hour)}
	}
	a1, a2, b1 := mk("a1", "ann", t0), mk("a2", "ann", t0.Add(time.Hour)), mk("b1", "ben", t0)
	for _, ss := range []Session{a1, a2, b1} {
		if err := s.CreateSession(ctx, ss); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Session(ctx, a1.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Username != "ann" || got.CSRFHash != a1.CSRFHash || !got.Created.Equal(t0) || !got.LastSeen.Equal(t0) ||
		!got.Expires.Equal(t0.Add(12*time.Hour)) {
		t.Errorf("session a1 = %+v", got)
	}
	if err := s.TouchSession(ctx, a1.ID, t0.Add(5*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got, _ = s.Session(ctx, a1.ID); !got.LastSeen.Equal(t0.Add(5 * time.Minute)) {
		t.Errorf("last seen after touch = %v", got.LastSeen)
	}
	if _, err := s.Session(ctx, hashOf("nope")); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing session: %v", err)
	}
	if err := s.TouchSession(ctx, hashOf("nope"), t0); !errors.Is(err, ErrNotFound) {
		t.Errorf("touching a missing session: %v", err)
	}

	// Idle: b1 was last seen at t0, a1 at t0+5m, a2 at t0+1h. At t0+19m
	// with a 15m idle limit only b1 is idle (15m or more).
	n, err := s.DeleteExpiredSessions(ctx, t0.Add(19*time.Minute), 15*time.Minute)
	if err != nil || n != 1 {
		t.Fatalf("idle sweep deleted %d (%v), want 1", n, err)
	}
	if _, err := s.Session(ctx, b1.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("idle session b1 survived: %v", err)
	}
	// Absolute: at a1's expiry, without idle limit, a1 goes and a2 stays.
	n, err = s.DeleteExpiredSessions(ctx, a1.Expires, 0)
	if err != nil || n != 1 {
		t.Fatalf("expiry sweep deleted %d (%v), want 1", n, err)
	}
	if _, err := s.Session(ctx, a2.ID); err != nil {
		t.Errorf("a2 should still be there: %v", err)
	}

	a3 := mk("a3", "ann", t0.Add(2*time.Hour))
	if err := s.CreateSession(ctx, a3); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteSession(ctx, a3.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteSession(ctx, a3.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleting twice: %v", err)
	}
	s.CreateSession(ctx, mk("a4", "ann", t0))
	if n, err := s.DeleteUserSessions(ctx, "ann"); err != nil || n != 2 {
		t.Errorf("deleted %d of ann's sessions (%v), want 2", n, err)
	}
}

func TestCreateSessionRefusesSecretsInClearAndStrangers(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	t0 := time.Unix(1_700_000_000, 0)
	if err := s.CreateUser(ctx, User{Username: "ann", Role: "viewer", PasswordHash: "h", Created: t0}); err != nil {
		t.Fatal(err)
	}
	good := Session{ID: hashOf("s"), Username: "ann", CSRFHash: hashOf("c"), Created: t0, Expires: t0.Add(time.Hour)}
	secret := "Zm9vYmFyYmF6cXV4cXV1eHF1dXhxdXV4cXV1eHF1dXg" // what a session secret looks like
	for name, ss := range map[string]Session{
		"secret as id":       func() Session { x := good; x.ID = secret; return x }(),
		"upper hex id":       func() Session { x := good; x.ID = strings.ToUpper(good.ID); return x }(),
		"csrf in clear":      func() Session { x := good; x.CSRFHash = secret; return x }(),
		"expires before":     func() Session { x := good; x.Expires = t0.Add(-time.Second); return x }(),
		"no expiry":          func() Session { x := good; x.Expires = time.Time{}; return x }(),
		"nobody's":           func() Session { x := good; x.Username = "nobody"; return x }(),
		"secret in an error": func() Session { x := good; x.ID = "not-hex-" + secret + "0123456789abc"; return x }(),
	} {
		err := s.CreateSession(ctx, ss)
		if err == nil {
			t.Errorf("%s: stored", name)
			continue
		}
		if strings.Contains(err.Error(), secret[:20]) {
			t.Errorf("%s: the error quotes the secret: %v", name, err)
		}
	}
	if err := s.CreateSession(ctx, Session{ID: hashOf("x"), Username: "nobody", CSRFHash: hashOf("c"),
		Created: t0, Expires: t0.Add(time.Hour)}); !errors.Is(err, ErrNotFound) {
		t.Errorf("session of a missing user: %v, want ErrNotFound", err)
	}
}

func TestAPITokensLifecycle(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	t0 := time.Date(2025, 5, 1, 8, 0, 0, 0, time.UTC)
	if err := s.CreateUser(ctx, User{Username: "bot", Role: "viewer", PasswordHash: "!", Created: t0}); err != nil {
		t.Fatal(err)
	}
	id1, err := s.CreateAPIToken(ctx, APIToken{Name: "wall display", Username: "bot", Hash: hashOf("tok1"), Created: t0})
	if err != nil {
		t.Fatal(err)
	}
	id2, err := s.CreateAPIToken(ctx, APIToken{Name: "exporter", Username: "bot", Hash: hashOf("tok2"), Created: t0.Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if id1 == id2 {
		t.Fatalf("two tokens with id %d", id1)
	}
	tok, err := s.APITokenByHash(ctx, hashOf("tok1"))
	if err != nil {
		t.Fatal(err)
	}
	if tok.ID != id1 || tok.Name != "wall display" || tok.Username != "bot" || !tok.Created.Equal(t0) ||
		!tok.LastUsed.IsZero() || !tok.Revoked.IsZero() {
		t.Errorf("token 1 = %+v", tok)
	}
	if _, err := s.APITokenByHash(ctx, hashOf("tok3")); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown token: %v", err)
	}
	if err := s.TouchAPIToken(ctx, id1, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	r1, r2 := t0.Add(2*time.Hour), t0.Add(3*time.Hour)
	if err := s.RevokeAPIToken(ctx, id1, r1); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeAPIToken(ctx, id1, r2); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeAPIToken(ctx, 9999, r1); !errors.Is(err, ErrNotFound) {
		t.Errorf("revoking a missing token: %v", err)
	}
	toks, err := s.APITokens(ctx, "bot")
	if err != nil {
		t.Fatal(err)
	}
	if len(toks) != 2 || toks[0].ID != id1 || toks[1].ID != id2 {
		t.Fatalf("tokens = %+v", toks)
	}
	if !toks[0].Revoked.Equal(r1) || !toks[0].LastUsed.Equal(t0.Add(time.Hour)) || !toks[1].Revoked.IsZero() {
		t.Errorf("token 1 revoked %v (want the first time %v), last used %v; token 2 revoked %v",
			toks[0].Revoked, r1, toks[0].LastUsed, toks[1].Revoked)
	}

	for name, tk := range map[string]APIToken{
		"clear token": {Name: "x", Username: "bot", Hash: "fwt_abcdefghijklmnopqrstuvwxyz", Created: t0},
		"no name":     {Username: "bot", Hash: hashOf("a"), Created: t0},
		"no time":     {Name: "x", Username: "bot", Hash: hashOf("b")},
		"nobody's":    {Name: "x", Username: "nobody", Hash: hashOf("c"), Created: t0},
		"same hash":   {Name: "x", Username: "bot", Hash: hashOf("tok2"), Created: t0},
	} {
		if _, err := s.CreateAPIToken(ctx, tk); err == nil {
			t.Errorf("%s: stored", name)
		} else if strings.Contains(err.Error(), "fwt_") {
			t.Errorf("%s: the error quotes the token: %v", name, err)
		}
	}
	if toks, _ := s.APITokens(ctx, "bot"); len(toks) != 2 {
		t.Errorf("%d tokens after refused ones, want 2", len(toks))
	}
}

func TestUserSessionsAndTokensCannotOutliveTheUser(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	t0 := time.Unix(1_700_000_000, 0)
	if err := s.CreateUser(ctx, User{Username: "ann", Role: "viewer", PasswordHash: "h", Created: t0}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateSession(ctx, Session{ID: hashOf("s"), Username: "ann", CSRFHash: hashOf("c"), Created: t0, Expires: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateAPIToken(ctx, APIToken{Name: "n", Username: "ann", Hash: hashOf("t"), Created: t0}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.ExecContext(ctx, "DELETE FROM users WHERE username = 'ann'"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Session(ctx, hashOf("s")); !errors.Is(err, ErrNotFound) {
		t.Errorf("session of a deleted user: %v", err)
	}
	if _, err := s.APITokenByHash(ctx, hashOf("t")); !errors.Is(err, ErrNotFound) {
		t.Errorf("token of a deleted user: %v", err)
	}
}

func TestDeleteUserKeepsTheLastOfARole(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	t0 := time.Unix(1_700_000_000, 0)
	for _, u := range []User{
		{Username: "root", Role: "admin"}, {Username: "ops", Role: "operator"}, {Username: "boss", Role: "admin"},
	} {
		u.PasswordHash, u.Created = "h", t0
		if err := s.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateSession(ctx, Session{ID: hashOf("s"), Username: "boss", CSRFHash: hashOf("c"), Created: t0, Expires: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	// two admins: one may go, with its sessions
	if err := s.DeleteUser(ctx, "boss", "admin"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Session(ctx, hashOf("s")); !errors.Is(err, ErrNotFound) {
		t.Errorf("session of a deleted user: %v", err)
	}
	// the last admin stays, whether deleted or demoted
	if err := s.DeleteUser(ctx, "root", "admin"); !errors.Is(err, ErrLastOfRole) || !strings.Contains(err.Error(), `"root"`) {
		t.Errorf("deleting the last admin: %v, want ErrLastOfRole naming the user", err)
	}
	if err := s.SetUserRoleKeeping(ctx, "root", "viewer", nil, t0, "admin"); !errors.Is(err, ErrLastOfRole) {
		t.Errorf("demoting the last admin: %v, want ErrLastOfRole", err)
	}
	if u, _ := s.User(ctx, "root"); u.Role != "admin" {
		t.Errorf("root is %q after refused changes", u.Role)
	}
	// an admin staying admin, and other roles, change freely
	if err := s.SetUserRoleKeeping(ctx, "root", "admin", []string{"x"}, t0.Add(time.Second), "admin"); err != nil {
		t.Errorf("keeping the last admin an admin: %v", err)
	}
	if err := s.SetUserRoleKeeping(ctx, "ops", "guard", []string{"gate"}, t0.Add(time.Second), "admin"); err != nil {
		t.Fatal(err)
	}
	if u, _ := s.User(ctx, "ops"); u.Role != "guard" || !slices.Equal(u.Posts, []string{"gate"}) || !u.Updated.Equal(t0.Add(time.Second)) {
		t.Errorf("ops = %+v", u)
	}
	if err := s.DeleteUser(ctx, "ops", "admin"); err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{s.DeleteUser(ctx, "ops", ""), s.SetUserRoleKeeping(ctx, "nobody", "viewer", nil, t0, "admin")} {
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("missing user: %v, want ErrNotFound", err)
		}
	}
}

func TestUnlockUser(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	t0 := time.Unix(1_700_000_000, 0)
	if err := s.CreateUser(ctx, User{Username: "ann", Role: "viewer", PasswordHash: "h", Created: t0}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RecordLoginFailure(ctx, "ann"); err != nil {
		t.Fatal(err)
	}
	if err := s.LockUser(ctx, "ann", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RecordLoginFailure(ctx, "ann"); err != nil {
		t.Fatal(err)
	}
	if err := s.UnlockUser(ctx, "ann"); err != nil {
		t.Fatal(err)
	}
	if u, _ := s.User(ctx, "ann"); !u.LockedUntil.IsZero() || u.FailedLogins != 0 {
		t.Errorf("after unlock: locked until %v, %d failures", u.LockedUntil, u.FailedLogins)
	}
	if err := s.UnlockUser(ctx, "nobody"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unlocking a missing user: %v", err)
	}
}

func TestPasswordHistoryKeepsRetiredHashes(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	t0 := time.Date(2025, 5, 1, 8, 0, 0, 0, time.UTC)
	if err := s.CreateUser(ctx, User{Username: "zoe", Role: "guard", PasswordHash: "!", Created: t0}); err != nil {
		t.Fatal(err)
	}
	// The "no password" marker is no password: it is not kept.
	for i := range MaxPasswordHistory + 3 {
		if err := s.UpdateUserPassword(ctx, "zoe", fmt.Sprintf("$argon2id$h%d", i), false, t0.Add(time.Duration(i)*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	all, err := s.PasswordHistory(ctx, "zoe", 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != MaxPasswordHistory || all[0] != fmt.Sprintf("$argon2id$h%d", MaxPasswordHistory+1) || slices.Contains(all, "!") {
		t.Fatalf("history of %d: %v, want the %d newest retired hashes, newest first", len(all), all, MaxPasswordHistory)
	}
	if u, _ := s.User(ctx, "zoe"); slices.Contains(all, u.PasswordHash) {
		t.Errorf("the current hash %q is in the history", u.PasswordHash)
	}
	if few, _ := s.PasswordHistory(ctx, "zoe", 2); len(few) != 2 || few[1] != fmt.Sprintf("$argon2id$h%d", MaxPasswordHistory) {
		t.Errorf("2 newest: %v", few)
	}
	if none, err := s.PasswordHistory(ctx, "nobody", 5); err != nil || len(none) != 0 {
		t.Errorf("history of nobody: %v, %v", none, err)
	}
	if err := s.UpdateUserPassword(ctx, "nobody", "$argon2id$x", false, t0); !errors.Is(err, ErrNotFound) {
		t.Errorf("password of nobody: %v", err)
	}
	// The history goes with the user.
	if err := s.DeleteUser(ctx, "zoe", ""); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM password_history").Scan(&n); err != nil || n != 0 {
		t.Errorf("%d history rows after the user went (%v)", n, err)
	}
}

func TestTOTPLifecycleAndReplay(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	t0 := time.Date(2025, 5, 1, 8, 0, 0, 0, time.UTC)
	if err := s.CreateUser(ctx, User{Username: "ada", Role: "admin", PasswordHash: "!", Created: t0}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UserTOTP(ctx, "ada"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("TOTP before any: %v", err)
	}
	if err := s.SetPendingTOTP(ctx, "nobody", []byte("sealed"), t0); !errors.Is(err, ErrNotFound) {
		t.Errorf("TOTP of nobody: %v", err)
	}
	if err := s.SetPendingTOTP(ctx, "ada", nil, t0); err == nil {
		t.Error("an empty sealed secret was stored")
	}
	if _, err := s.UseTOTPStep(ctx, "ada", 5); !errors.Is(err, ErrNotFound) {
		t.Errorf("using a factor that is not there: %v", err)
	}
	// A pending secret may be replaced until it is confirmed.
	if err := s.SetPendingTOTP(ctx, "ada", []byte("sealed-1"), t0); err != nil {
		t.Fatal(err)
	}
	if err := s.SetPendingTOTP(ctx, "ada", []byte("sealed-2"), t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UseTOTPStep(ctx, "ada", 5); !errors.Is(err, ErrNotFound) {
		t.Errorf("using a pending factor: %v", err)
	}
	if err := s.ConfirmTOTP(ctx, "ada", 100, t0.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	got, err := s.UserTOTP(ctx, "ada")
	if err != nil || string(got.Sealed) != "sealed-2" || !got.Confirmed || got.LastStep != 100 ||
		!got.Created.Equal(t0.Add(time.Minute)) || !got.ConfirmedAt.Equal(t0.Add(2*time.Minute)) {
		t.Fatalf("confirmed TOTP: %+v, %v", got, err)
	}
	if err := s.ConfirmTOTP(ctx, "ada", 101, t0); !errors.Is(err, ErrNotFound) {
		t.Errorf("confirming twice: %v", err)
	}
	if err := s.SetPendingTOTP(ctx, "ada", []byte("sealed-3"), t0); !errors.Is(err, ErrTOTPEnabled) {
		t.Errorf("a new secret over a confirmed one: %v", err)
	}
	// Each step once, and never an older one.
	for _, c := range []struct {
		step int64
		want bool
	}{{100, false}, {99, false}, {101, true}, {101, false}, {100, false}, {103, true}} {
		if ok, err := s.UseTOTPStep(ctx, "ada", c.step); err != nil || ok != c.want {
			t.Errorf("use step %d: %v, %v; want %v", c.step, ok, err, c.want)
		}
	}
	if err := s.DeleteTOTP(ctx, "ada"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteTOTP(ctx, "ada"); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleting twice: %v", err)
	}
	// It goes with the user.
	if err := s.SetPendingTOTP(ctx, "ada", []byte("sealed-4"), t0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.ExecContext(ctx, "DELETE FROM users WHERE username = 'ada'"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UserTOTP(ctx, "ada"); !errors.Is(err, ErrNotFound) {
		t.Errorf("TOTP of a deleted user: %v", err)
	}
}

func TestAPITokenRoleAndScopesRoundTrip(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	t0 := time.Date(2025, 5, 1, 8, 0, 0, 0, time.UTC)
	for _, u := range []string{"ada", "bot"} {
		if err := s.CreateUser(ctx, User{Username: u, Role: "admin", PasswordHash: "!", Created: t0}); err != nil {
			t.Fatal(err)
		}
	}
	id1, err := s.CreateAPIToken(ctx, APIToken{Name: "exporter", Username: "ada", Hash: hashOf("a"), Role: "viewer",
		Scopes: []string{"read:/api/v1/counts", "/ws"}, Created: t0})
	if err != nil {
		t.Fatal(err)
	}
	id2, err := s.CreateAPIToken(ctx, APIToken{Name: "wall", Username: "bot", Hash: hashOf("b"), Created: t0})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := s.APITokenByID(ctx, id1)
	if err != nil || tok.Role != "viewer" || !slices.Equal(tok.Scopes, []string{"read:/api/v1/counts", "/ws"}) || tok.Username != "ada" {
		t.Fatalf("token %d: %+v, %v", id1, tok, err)
	}
	if tok, _ := s.APITokenByHash(ctx, hashOf("b")); tok.Role != "" || tok.Scopes == nil || len(tok.Scopes) != 0 {
		t.Errorf("token without role and scopes: %+v", tok)
	}
	if _, err := s.APITokenByID(ctx, 999); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing token: %v", err)
	}
	all, err := s.AllAPITokens(ctx)
	if err != nil || len(all) != 2 || all[0].ID != id1 || all[1].ID != id2 {
		t.Fatalf("all tokens: %+v, %v", all, err)
	}
	if mine, _ := s.APITokens(ctx, "bot"); len(mine) != 1 || mine[0].ID != id2 {
		t.Errorf("bot's tokens: %+v", mine)
	}
}
