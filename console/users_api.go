package console

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode"

	"flowwatch/internal/config"
	"flowwatch/internal/store"
)

// usersAPI serves admin user management under /api/v1/users. Passwords
// are hashed by Auth; none is ever logged or audited.
type usersAPI struct {
	auth *Auth
	// site, when set, names the areas a guard's posts may be.
	site *config.Config
	log  *slog.Logger
}

func (u *usersAPI) register(mux *http.ServeMux) {
	admin := []string{RoleAdmin}
	mux.Handle("GET /api/v1/users", u.auth.Require(admin, http.HandlerFunc(u.list)))
	mux.Handle("POST /api/v1/users", u.auth.Require(admin, http.HandlerFunc(u.create)))
	mux.Handle("PUT /api/v1/users/{name}", u.auth.Require(admin, http.HandlerFunc(u.update)))
	mux.Handle("DELETE /api/v1/users/{name}", u.auth.Require(admin, http.HandlerFunc(u.remove)))
	mux.Handle("POST /api/v1/users/{name}/password", u.auth.Require(admin, http.HandlerFunc(u.resetPassword)))
	mux.Handle("POST /api/v1/users/{name}/unlock", u.auth.Require(admin, http.HandlerFunc(u.unlock)))
	mux.Handle("POST /api/v1/users/{name}/totp/reset", u.auth.Require(admin, http.HandlerFunc(u.resetTOTP)))
}

// userInfo is a user as the API shows it: never a password or its hash.
type userInfo struct {
	Username   string   `json:"username"`
	Role       string   `json:"role"`
	Posts      []string `json:"posts"`
	MustChange bool     `json:"must_change"`
	// TOTP tells whether the user has a TOTP second factor on.
	TOTP bool `json:"totp"`
	// LockedUntil is when a lock-out ends; null when not locked now.
	LockedUntil *time.Time `json:"locked_until"`
	CreatedAt   time.Time  `json:"created_at"`
}

// info is su as the API shows it; a failure to read its second factor
// shows none and is logged.
func (u *usersAPI) info(ctx context.Context, su store.User) userInfo {
	out := userInfo{Username: su.Username, Role: su.Role, Posts: nonNil(su.Posts), MustChange: su.MustChange,
		CreatedAt: su.Created.UTC()}
	if _, on, err := u.auth.confirmedTOTP(ctx, su.Username); err != nil {
		u.log.Error("reading a user's second factor failed", "user", su.Username, "err", err)
	} else {
		out.TOTP = on
	}
	if u.auth.now().Before(su.LockedUntil) {
		t := su.LockedUntil.UTC()
		out.LockedUntil = &t
	}
	return out
}

// newUserBody is the body of POST /api/v1/users.
type newUserBody struct {
	Username string   `json:"username"`
	Role     string   `json:"role"`
	Posts    []string `json:"posts"`
	// Password, when given, is the user's; without it a one-time password
	// is generated and answered once.
	Password string `json:"password"`
	// MustChange makes a given password one to change at first login (a
	// generated one always is).
	MustChange bool `json:"must_change"`
}

// roleBody is the body of PUT /api/v1/users/{name}.
type roleBody struct {
	Role  string   `json:"role"`
	Posts []string `json:"posts"`
}

// checkUsername reports what is wrong with a new user name: it must be 1
// to 64 bytes of printable characters, without spaces around it and
// without '/' (it is a path segment of this API).
func checkUsername(name string) error {
	switch {
	case name == "" || len(name) > 64 || strings.TrimSpace(name) != name:
		return fmt.Errorf("username %q must be 1 to 64 bytes without surrounding spaces", name)
	case strings.ContainsRune(name, '/'):
		return fmt.Errorf("username %q must not hold '/'", name)
	case strings.IndexFunc(name, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0:
		return fmt.Errorf("username %q must hold printable characters only", name)
	}
	return nil
}

// checkRole reports what is wrong with a role and its posts: the role must
// be known and each post an area of the site, named once.
func (u *usersAPI) checkRole(role string, posts []string) error {
	if !knownRole(role) {
		return fmt.Errorf("role %q is not one of %s", role, strings.Join(config.Roles, ", "))
	}
	for i, p := range posts {
		if slices.Contains(posts[:i], p) {
			return fmt.Errorf("post %q is named twice", p)
		}
		if u.site != nil && !slices.ContainsFunc(u.site.Areas, func(a config.Area) bool { return a.Name == p }) {
			return fmt.Errorf("post %q is no area of this site", p)
		}
	}
	return nil
}

// internalError logs err and answers 500 without it.
func (u *usersAPI) internalError(w http.ResponseWriter, what string, err error) {
	u.log.Error(what+" failed", "err", err)
	writeError(w, http.StatusInternalServerError, "%s failed; see the server log", what)
}

func (u *usersAPI) list(w http.ResponseWriter, r *http.Request) {
	users, err := u.auth.db.Users(r.Context())
	if err != nil {
		u.internalError(w, "listing users", err)
		return
	}
	out := make([]userInfo, 0, len(users))
	for _, su := range users {
		out = append(out, u.info(r.Context(), su))
	}
	writeJSON(w, http.StatusOK, map[string]any{"users": out})
}

func (u *usersAPI) create(w http.ResponseWriter, r *http.Request) {
	var body newUserBody
	if !readJSON(w, r, &body) {
		return
	}
	if err := checkUsername(body.Username); err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	if err := u.checkRole(body.Role, body.Posts); err != nil {
		writeError(w, http.StatusBadRequest, "user %q: %v", body.Username, err)
		return
	}
	password, generated := body.Password, body.Password == ""
	ctx := r.Context()
	if generated {
		password = generatePassword(body.Username)
	} else if err := u.auth.checkNewPassword(ctx, body.Username, password); isPolicyError(err) {
		writePolicyError(w, err, "user %q: password %v", body.Username, err)
		return
	} else if err != nil {
		u.internalError(w, "creating a user", err)
		return
	}
	mustChange := generated || body.MustChange
	err := u.auth.createUser(ctx, body.Username, body.Role, body.Posts, password, mustChange)
	switch {
	case errors.Is(err, store.ErrUserExists):
		writeError(w, http.StatusConflict, "user %q exists already", body.Username)
		return
	case err != nil:
		u.internalError(w, "creating a user", err)
		return
	}
	su, ok := u.reread(w, r, body.Username, "creating a user")
	if !ok {
		return
	}
	p := principal(r)
	how := "password given"
	if generated {
		how = "one-time password generated"
	}
	u.log.Info("user created", "user", su.Username, "role", su.Role, "by", p.User, "must_change", mustChange, "generated_password", generated)
	u.auth.Audit(r, p, "user.create", "user "+su.Username,
		fmt.Sprintf("role %s, posts [%s]; %s; must change: %v", su.Role, strings.Join(su.Posts, ", "), how, mustChange))
	answer := map[string]any{"user": u.info(r.Context(), su)}
	if generated {
		answer["password"] = password
	}
	writeJSON(w, http.StatusCreated, answer)
}

// target loads the {name} user, answering 404 itself when there is none.
func (u *usersAPI) target(w http.ResponseWriter, r *http.Request) (store.User, bool) {
	name := r.PathValue("name")
	su, err := u.auth.db.User(r.Context(), name)
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, "no user %q", name)
		return store.User{}, false
	case err != nil:
		u.internalError(w, "reading a user", err)
		return store.User{}, false
	}
	return su, true
}

// reread loads the user called name after a change, answering 500 itself,
// with what failed, when it cannot.
func (u *usersAPI) reread(w http.ResponseWriter, r *http.Request, name, what string) (store.User, bool) {
	su, err := u.auth.db.User(r.Context(), name)
	if err != nil {
		u.internalError(w, what, err)
		return store.User{}, false
	}
	return su, true
}

// changeFailed answers err, if any, of a change to the user called name
// that must keep an admin, and reports whether it did: 409 saying
// "user NAME lastAdmin" when the user is the last admin, 404 when there is
// no such user, 500 with what failed otherwise.
func (u *usersAPI) changeFailed(w http.ResponseWriter, name, what, lastAdmin string, err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, store.ErrLastOfRole):
		writeError(w, http.StatusConflict, "user %q %s", name, lastAdmin)
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, "no user %q", name)
	default:
		u.internalError(w, what, err)
	}
	return true
}

func (u *usersAPI) update(w http.ResponseWriter, r *http.Request) {
	su, ok := u.target(w, r)
	if !ok {
		return
	}
	var body roleBody
	if !readJSON(w, r, &body) {
		return
	}
	if err := u.checkRole(body.Role, body.Posts); err != nil {
		writeError(w, http.StatusBadRequest, "user %q: %v", su.Username, err)
		return
	}
	p := principal(r)
	if su.Username == p.User && body.Role != su.Role {
		writeError(w, http.StatusConflict, "user %q: you may not change your own role; ask another admin", su.Username)
		return
	}
	err := u.auth.db.SetUserRoleKeeping(r.Context(), su.Username, body.Role, body.Posts, u.auth.now(), RoleAdmin)
	if u.changeFailed(w, su.Username, "changing a user's role", "is the last admin: make another admin first", err) {
		return
	}
	after, ok := u.reread(w, r, su.Username, "changing a user's role")
	if !ok {
		return
	}
	u.log.Info("user role set", "user", su.Username, "role", after.Role, "was", su.Role, "by", p.User)
	u.auth.Audit(r, p, "user.update", "user "+su.Username, fmt.Sprintf("role %s → %s, posts [%s] → [%s]",
		su.Role, after.Role, strings.Join(su.Posts, ", "), strings.Join(after.Posts, ", ")))
	writeJSON(w, http.StatusOK, map[string]any{"user": u.info(r.Context(), after)})
}

func (u *usersAPI) resetPassword(w http.ResponseWriter, r *http.Request) {
	su, ok := u.target(w, r)
	if !ok {
		return
	}
	password := generatePassword(su.Username)
	if err := u.auth.setPassword(r.Context(), su.Username, password, true); err != nil {
		u.internalError(w, "setting a password", err)
		return
	}
	p := principal(r)
	u.log.Info("one-time password set; the user's sessions ended", "user", su.Username, "by", p.User)
	u.auth.Audit(r, p, "user.password_reset", "user "+su.Username, "one-time password generated; must change; sessions ended")
	writeJSON(w, http.StatusOK, map[string]any{"password": password, "must_change": true})
}

func (u *usersAPI) unlock(w http.ResponseWriter, r *http.Request) {
	su, ok := u.target(w, r)
	if !ok {
		return
	}
	if err := u.auth.db.UnlockUser(r.Context(), su.Username); err != nil {
		u.internalError(w, "unlocking a user", err)
		return
	}
	after, ok := u.reread(w, r, su.Username, "unlocking a user")
	if !ok {
		return
	}
	p := principal(r)
	detail := "was not locked"
	if u.auth.now().Before(su.LockedUntil) {
		detail = "was locked until " + su.LockedUntil.UTC().Format(time.RFC3339)
	}
	u.log.Info("user unlocked", "user", su.Username, "by", p.User)
	u.auth.Audit(r, p, "user.unlock", "user "+su.Username, detail)
	writeJSON(w, http.StatusOK, map[string]any{"user": u.info(r.Context(), after)})
}

func (u *usersAPI) remove(w http.ResponseWriter, r *http.Request) {
	su, ok := u.target(w, r)
	if !ok {
		return
	}
	p := principal(r)
	if su.Username == p.User {
		writeError(w, http.StatusConflict, "user %q: you may not delete yourself; ask another admin", su.Username)
		return
	}
	err := u.auth.db.DeleteUser(r.Context(), su.Username, RoleAdmin)
	if u.changeFailed(w, su.Username, "deleting a user", "is the last admin and cannot be deleted", err) {
		return
	}
	u.log.Info("user deleted", "user", su.Username, "role", su.Role, "by", p.User)
	u.auth.Audit(r, p, "user.delete", "user "+su.Username, "role "+su.Role+"; sessions and API tokens ended")
	writeJSON(w, http.StatusOK, map[string]any{"deleted": su.Username})
}

// resetTOTP serves POST /api/v1/users/{name}/totp/reset: the user's second
// factor is removed (a lost phone) and their sessions end; at the next
// login they set up a new one, which their role may require.
func (u *usersAPI) resetTOTP(w http.ResponseWriter, r *http.Request) {
	su, ok := u.target(w, r)
	if !ok {
		return
	}
	removed, err := u.auth.ResetTOTP(r.Context(), su.Username)
	if err != nil {
		u.internalError(w, "resetting a second factor", err)
		return
	}
	p := principal(r)
	detail := "had no second factor; sessions ended"
	if removed {
		detail = "second factor removed; sessions ended"
	}
	u.log.Info("second factor reset", "user", su.Username, "by", p.User, "removed", removed)
	u.auth.Audit(r, p, "user.totp_reset", "user "+su.Username, detail)
	writeJSON(w, http.StatusOK, map[string]any{"user": u.info(r.Context(), su), "removed": removed})
}
