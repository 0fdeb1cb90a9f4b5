package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"flowwatch/internal/store"
)

func TestUsersAPI(t *testing.T) {
	site, _, auth := newCameraSite(t)
	ctx := context.Background()
	var secrets []string // every password the API or the test made

	// a user with a generated one-time password
	var created struct {
		User     userInfo `json:"user"`
		Password string   `json:"password"`
	}
	if code := site.call(t, "ada", "POST", "/api/v1/users", `{"username":"gus","role":"guard","posts":["gate","yard"]}`, &created); code != http.StatusCreated {
		t.Fatalf("create: %d", code)
	}
	if created.User.Username != "gus" || created.User.Role != RoleGuard || len(created.User.Posts) != 2 ||
		!created.User.MustChange || created.User.LockedUntil != nil || len(created.Password) != generatedPasswordLen {
		t.Fatalf("created: %+v", created)
	}
	secrets = append(secrets, created.Password)
	var session sessionAnswer
	if code := site.call(t, "", "POST", "/api/v1/session",
		fmt.Sprintf(`{"username":"gus","password":%q}`, created.Password), &session); code != 200 || !session.MustChange {
		t.Fatalf("login with the one-time password: %d %+v", code, session)
	}

	// a user with a given password: no password in the answer
	a := site.raw(t, "ada", "POST", "/api/v1/users", `{"username":"pat","role":"planner","password":"given-pass-1"}`)
	if a.code != http.StatusCreated || strings.Contains(a.body, "password\"") || strings.Contains(a.body, "given-pass-1") {
		t.Fatalf("create with a password: %d %s", a.code, a.body)
	}
	secrets = append(secrets, "given-pass-1")
	if code := site.call(t, "", "POST", "/api/v1/session", `{"username":"pat","password":"given-pass-1"}`, &session); code != 200 || session.MustChange {
		t.Fatalf("login with the given password: %d %+v", code, session)
	}

	for _, c := range []struct{ name, body, reason string }{
		{"taken", `{"username":"gus","role":"viewer"}`, "exists already"},
		{"bad role", `{"username":"x1","role":"boss"}`, `role \"boss\" is not one of`},
		{"bad post", `{"username":"x2","role":"guard","posts":["moon"]}`, `post \"moon\" is no area`},
		{"short password", `{"username":"x3","role":"viewer","password":"short"}`, "too short"},
		{"slash", `{"username":"a/b","role":"viewer"}`, "must not hold '/'"},
		{"empty name", `{"username":"","role":"viewer"}`, "1 to 64 bytes"},
		{"unknown field", `{"username":"x4","role":"viewer","admin":true}`, "unknown field"},
	} {
		a := site.raw(t, "ada", "POST", "/api/v1/users", c.body)
		if (a.code != http.StatusBadRequest && a.code != http.StatusConflict) || !strings.Contains(a.body, c.reason) {
			t.Errorf("create %s: %d %s, want 4xx saying %q", c.name, a.code, a.body, c.reason)
		}
		if strings.Contains(a.body, "short\"") {
			t.Errorf("create %s: the answer quotes the password: %s", c.name, a.body)
		}
	}

	// the list: every user, no hashes
	l := site.raw(t, "ada", "GET", "/api/v1/users", "")
	if l.code != 200 || !strings.Contains(l.body, `"username":"gus"`) || strings.Contains(l.body, "argon2") ||
		strings.Contains(strings.ToLower(l.body), "hash") {
		t.Fatalf("list: %d %s", l.code, l.body)
	}

	// role and posts
	var changed struct {
		User userInfo `json:"user"`
	}
	if code := site.call(t, "ada", "PUT", "/api/v1/users/gus", `{"role":"guard","posts":["yard"]}`, &changed); code != 200 ||
		len(changed.User.Posts) != 1 || changed.User.Posts[0] != "yard" {
		t.Fatalf("update: %d %+v", code, changed)
	}
	if code := site.call(t, "ada", "PUT", "/api/v1/users/ada", `{"role":"viewer"}`, nil); code != http.StatusConflict {
		t.Errorf("changing one's own role: %d, want 409", code)
	}
	if code := site.call(t, "ada", "PUT", "/api/v1/users/nobody", `{"role":"viewer"}`, nil); code != http.StatusNotFound {
		t.Errorf("updating a missing user: %d, want 404", code)
	}
	if code := site.call(t, "ada", "PUT", "/api/v1/users/gus", `{"role":"king"}`, nil); code != http.StatusBadRequest {
		t.Errorf("an unknown role: %d, want 400", code)
	}

	// a new one-time password ends the user's sessions
	var reset struct {
		Password   string `json:"password"`
		MustChange bool   `json:"must_change"`
	}
	if code := site.call(t, "ada", "POST", "/api/v1/users/pat/password", "", &reset); code != 200 || len(reset.Password) != generatedPasswordLen || !reset.MustChange {
		t.Fatalf("reset: %d %+v", code, reset)
	}
	secrets = append(secrets, reset.Password)
	site.tokens["pat"] = session.Token
	if code := site.call(t, "pat", "GET", "/api/v1/session", "", nil); code != http.StatusUnauthorized {
		t.Errorf("pat's session after the reset: %d, want 401", code)
	}
	if code := site.call(t, "", "POST", "/api/v1/session", `{"username":"pat","password":"given-pass-1"}`, nil); code != http.StatusUnauthorized {
		t.Errorf("the old password after the reset: %d, want 401", code)
	}

	// unlock
	if err := site.db.LockUser(ctx, "gus", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	site.call(t, "ada", "GET", "/api/v1/users", "", nil)
	var unlocked struct {
		User userInfo `json:"user"`
	}
	if code := site.call(t, "ada", "POST", "/api/v1/users/gus/unlock", "", &unlocked); code != 200 || unlocked.User.LockedUntil != nil {
		t.Fatalf("unlock: %d %+v", code, unlocked)
	}
	if u, _ := site.db.User(ctx, "gus"); !u.LockedUntil.IsZero() {
		t.Errorf("gus still locked until %v", u.LockedUntil)
	}

	// deletion: not oneself, and the user's credentials end with it
	if code := site.call(t, "ada", "DELETE", "/api/v1/users/ada", "", nil); code != http.StatusConflict {
		t.Errorf("deleting oneself: %d, want 409", code)
	}
	if code := site.call(t, "ada", "DELETE", "/api/v1/users/vic", "", nil); code != 200 {
		t.Fatalf("delete vic: %d", code)
	}
	if code := site.call(t, "vic", "GET", "/api/v1/cameras", "", nil); code != http.StatusUnauthorized {
		t.Errorf("a deleted user's token: %d, want 401", code)
	}
	if code := site.call(t, "ada", "DELETE", "/api/v1/users/vic", "", nil); code != http.StatusNotFound {
		t.Errorf("deleting twice: %d, want 404", code)
	}
	// a second admin may go; then the first one stays the last
	if err := auth.CreateUser(ctx, "root", RoleAdmin, nil, testPassword("root")); err != nil {
		t.Fatal(err)
	}
	if code := site.call(t, "ada", "DELETE", "/api/v1/users/root", "", nil); code != 200 {
		t.Fatalf("deleting another admin: %d", code)
	}
	if err := site.db.DeleteUser(ctx, "ada", RoleAdmin); err == nil {
		t.Fatal("the store deleted the last admin")
	}

	// every change is audited, with no password anywhere in the log
	entries, err := site.db.AuditEntries(ctx, store.AuditFilter{Actor: "ada"})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, e := range entries {
		seen[e.Action]++
		for _, s := range secrets {
			if strings.Contains(e.Detail, s) || strings.Contains(e.Target, s) {
				t.Errorf("audit entry %s shows a password: %+v", e.Action, e)
			}
		}
	}
	for action, n := range map[string]int{"user.create": 2, "user.update": 1, "user.password_reset": 1, "user.unlock": 1, "user.delete": 2} {
		if seen[action] != n {
			t.Errorf("%d %s entries, want %d (all: %v)", seen[action], action, n, seen)
		}
	}
}

func TestUsersAPICreateRefusalsCarryTheirRule(t *testing.T) {
	site, _, _ := newCameraSite(t)
	for _, c := range []struct {
		user, password string
		want           map[string]any
	}{
		{"x1", "Sh0rt-pw", map[string]any{"rule": RulePasswordLength, "min_length": MinPasswordLen}},
		{"x2", strings.Repeat("Aa1-", 65), map[string]any{"rule": RulePasswordLength, "max_bytes": MaxPasswordBytes}},
		{"x3", "alllowercaseletters", map[string]any{"rule": RulePasswordClasses, "min_classes": MinPasswordClasses, "classes": 1}},
		{"carla", "Carla-Harbor-Pass-1", map[string]any{"rule": RulePasswordUsername}},
	} {
		body, _ := json.Marshal(map[string]string{"username": c.user, "role": RoleViewer, "password": c.password})
		a := site.raw(t, "ada", "POST", "/api/v1/users", string(body))
		wantPolicyAnswer(t, "create "+c.user, a.code, a.body, c.password, c.want)
		if !strings.Contains(a.body, fmt.Sprintf(`user \"%s\": password breaks`, c.user)) {
			t.Errorf("create %s: the error text lost its words: %s", c.user, a.body)
		}
	}
}

func TestUsersAPIResetsTOTP(t *testing.T) {
	site, _, _ := newCameraSite(t)
	ctx := context.Background()
	at := time.Now()
	if err := site.db.SetPendingTOTP(ctx, "otto", []byte("sealed"), at); err != nil {
		t.Fatal(err)
	}
	if err := site.db.ConfirmTOTP(ctx, "otto", 1, at); err != nil {
		t.Fatal(err)
	}
	var list struct {
		Users []userInfo `json:"users"`
	}
	site.call(t, "ada", "GET", "/api/v1/users", "", &list)
	for _, u := range list.Users {
		if u.TOTP != (u.Username == "otto") {
			t.Errorf("user %s shows TOTP %v", u.Username, u.TOTP)
		}
	}
	if code := site.call(t, "otto", "POST", "/api/v1/users/otto/totp/reset", "", nil); code != http.StatusForbidden {
		t.Errorf("an operator resetting TOTP: %d, want 403", code)
	}
	var reset struct {
		User    userInfo `json:"user"`
		Removed bool     `json:"removed"`
	}
	if code := site.call(t, "ada", "POST", "/api/v1/users/otto/totp/reset", "", &reset); code != 200 || !reset.Removed || reset.User.TOTP {
		t.Fatalf("reset: %d %+v", code, reset)
	}
	if _, err := site.db.UserTOTP(ctx, "otto"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("otto's TOTP after the reset: %v", err)
	}
	if code := site.call(t, "ada", "POST", "/api/v1/users/otto/totp/reset", "", &reset); code != 200 || reset.Removed {
		t.Errorf("second reset: %d %+v", code, reset)
	}
	if code := site.call(t, "ada", "POST", "/api/v1/users/nobody/totp/reset", "", nil); code != http.StatusNotFound {
		t.Errorf("reset of nobody: %d, want 404", code)
	}
	entries, _ := site.db.AuditEntries(ctx, store.AuditFilter{Action: "user.totp_reset"})
	if len(entries) != 2 || entries[1].Actor != "ada" || entries[1].Target != "user otto" || !strings.Contains(entries[1].Detail, "removed") {
		t.Errorf("audit of the resets: %+v", entries)
	}
}
