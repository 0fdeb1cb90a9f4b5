package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// ErrUserExists is returned, wrapped, by CreateUser when the user name is
// taken.
var ErrUserExists = errors.New("user already exists")

// User is a local account. The store keeps no password, only its hash.
type User struct {
	// Username is the login name: 1 to 64 bytes without surrounding
	// spaces.
	Username string
	// Role is what the user may do (the console knows the roles).
	Role string
	// Posts are the areas a guard answers for.
	Posts []string
	// PasswordHash is the password's hash as a PHC string; a value that is
	// not one (such as "!") matches no password. It never leaves the
	// process as JSON.
	PasswordHash string `json:"-"`
	// MustChange is set when the password has to be changed before
	// anything else.
	MustChange bool
	// FailedLogins counts failed logins since the last success or lock.
	FailedLogins int
	// LockedUntil is when a lock-out ends; zero when never locked.
	LockedUntil time.Time
	// Created and Updated are when the account was created and last
	// changed (role, posts or password).
	Created, Updated time.Time
}

// Session is a login. The store keeps the SHA-256 of its secret, never the
// secret.
type Session struct {
	// ID is the lowercase hex SHA-256 of the session secret.
	ID string
	// Username is whose session it is.
	Username string
	// CSRFHash is the lowercase hex SHA-256 of the session's CSRF token.
	CSRFHash string
	// Created is when the session began, LastSeen when it was last
	// used (refreshed sparingly), Expires when it ends whatever its use.
	Created, LastSeen, Expires time.Time
}

// APIToken is a long-lived credential for a machine, acting as a user. The
// store keeps the SHA-256 of the token, never the token.
type APIToken struct {
	// ID numbers the token.
	ID int64
	// Name says what the token is for.
	Name string
	// Username is the user the token acts as.
	Username string
	// Hash is the lowercase hex SHA-256 of the token.
	Hash string `json:"-"`
	// Created is when the token was made, LastUsed when it was last
	// used (zero if never; refreshed sparingly), Revoked when it was
	// revoked (zero while it is valid).
	Created, LastUsed, Revoked time.Time
}

// checkUserName reports what is wrong with a user name, if anything.
func checkUserName(name string) error {
	if name == "" || strings.TrimSpace(name) != name || len(name) > 64 {
		return fmt.Errorf("user name %q must be 1 to 64 bytes without surrounding spaces", name)
	}
	return nil
}

// checkSHA256Hex reports whether s looks like a lowercase hex SHA-256, which
// is all the store accepts where a secret's hash belongs: a secret in clear
// is refused.
func checkSHA256Hex(what, s string) error {
	if len(s) != 64 {
		return fmt.Errorf("%s is not a hex SHA-256 (%d characters, want 64)", what, len(s))
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return fmt.Errorf("%s is not a lowercase hex SHA-256", what)
		}
	}
	return nil
}

// isUniqueViolation tells whether err is the database refusing a duplicate
// key.
func isUniqueViolation(err error) bool {
	var e *sqlite.Error
	return errors.As(err, &e) && (e.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY || e.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE)
}

// milliOrNull is t in unix milliseconds, or NULL for the zero time.
func milliOrNull(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMilli()
}

// CreateUser stores a new user. It needs a valid user name, a role, a
// password hash (possibly one that matches nothing) and a creation time;
// Updated defaults to Created; FailedLogins and LockedUntil start as given.
// A taken name is ErrUserExists, wrapped.
func (s *Store) CreateUser(ctx context.Context, u User) error {
	fail := func(err error) error { return fmt.Errorf("store: create user %q: %w", u.Username, err) }
	switch err := checkUserName(u.Username); {
	case err != nil:
		return fail(err)
	case u.Role == "":
		return fail(errors.New("empty role"))
	case u.PasswordHash == "":
		return fail(errors.New("empty password hash"))
	case u.Created.IsZero():
		return fail(errors.New("zero creation time"))
	case u.FailedLogins < 0:
		return fail(fmt.Errorf("negative failed logins %d", u.FailedLogins))
	}
	if u.Updated.IsZero() {
		u.Updated = u.Created
	}
	posts, err := json.Marshal(nonNilPosts(u.Posts))
	if err != nil {
		return fail(err)
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO users (username, role, posts, password_hash, must_change, failed_logins, locked_until, created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		u.Username, u.Role, string(posts), u.PasswordHash, u.MustChange, u.FailedLogins, milliOrNull(u.LockedUntil),
		u.Created.UnixMilli(), u.Updated.UnixMilli())
	if isUniqueViolation(err) {
		return fail(ErrUserExists)
	}
	if err != nil {
		return fail(err)
	}
	return nil
}

// nonNilPosts is posts, or an empty list for nil, so that the column always
// holds a JSON array.
func nonNilPosts(posts []string) []string {
	if posts == nil {
		return []string{}
	}
	return posts
}

// userColumns are the users columns scanUser reads, in order.
const userColumns = "username, role, posts, password_hash, must_change, failed_logins, locked_until, created_at, updated_at"

// rowScanner is a *sql.Row or *sql.Rows.
type rowScanner interface{ Scan(dest ...any) error }

// scanUser reads one row of userColumns.
func scanUser(row rowScanner) (User, error) {
	var (
		u                User
		posts            string
		locked           sql.NullInt64
		created, updated int64
	)
	if err := row.Scan(&u.Username, &u.Role, &posts, &u.PasswordHash, &u.MustChange, &u.FailedLogins, &locked,
		&created, &updated); err != nil {
		return User{}, err
	}
	if err := json.Unmarshal([]byte(posts), &u.Posts); err != nil {
		return User{}, fmt.Errorf("user %q: stored posts: %w", u.Username, err)
	}
	u.LockedUntil = nullMilli(locked)
	u.Created = time.UnixMilli(created).UTC()
	u.Updated = time.UnixMilli(updated).UTC()
	return u, nil
}

// User returns the user with the given name; ErrNotFound, wrapped, when
// there is none.
func (s *Store) User(ctx context.Context, username string) (User, error) {
	u, err := scanUser(s.db.QueryRowContext(ctx, "SELECT "+userColumns+" FROM users WHERE username = ?", username))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return User{}, fmt.Errorf("store: user %q: %w", username, ErrNotFound)
	case err != nil:
		return User{}, fmt.Errorf("store: user %q: %w", username, err)
	}
	return u, nil
}

// Users returns every user, by name.
func (s *Store) Users(ctx context.Context) ([]User, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT "+userColumns+" FROM users ORDER BY username")
	if err != nil {
		return nil, fmt.Errorf("store: users: %w", err)
	}
	defer rows.Close()
	var out []User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("store: users: %w", err)
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: users: %w", err)
	}
	return out, nil
}

// updateUser runs an update of one users row; what names it in errors.
func (s *Store) updateUser(ctx context.Context, username, what, query string, args ...any) error {
	return s.execOne(ctx, fmt.Sprintf("%s of user %q", what, username), query, args...)
}

// execer runs a statement: a *sql.DB or a *sql.Tx.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// execChanging runs query on ex, which must change a row: ErrNotFound,
// unwrapped, when it changes none.
func execChanging(ctx context.Context, ex execer, query string, args ...any) error {
	res, err := ex.ExecContext(ctx, query, args...)
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

// UpdateUserPassword replaces the user's password hash and must-change
// flag at at; it also clears failed logins and any lock-out. Sessions are
// left alone (the caller decides which end). ErrNotFound, wrapped, when
// there is no such user.
func (s *Store) UpdateUserPassword(ctx context.Context, username, hash string, mustChange bool, at time.Time) error {
	if hash == "" {
		return fmt.Errorf("store: set password of user %q: empty password hash", username)
	}
	return s.updateUser(ctx, username, "set password",
		"UPDATE users SET password_hash = ?, must_change = ?, failed_logins = 0, locked_until = NULL, updated_at = ? WHERE username = ?",
		hash, mustChange, at.UnixMilli(), username)
}

// SetUserRole sets the user's role and posts at at. ErrNotFound, wrapped,
// when there is no such user.
func (s *Store) SetUserRole(ctx context.Context, username, role string, posts []string, at time.Time) error {
	if role == "" {
		return fmt.Errorf("store: set role of user %q: empty role", username)
	}
	p, err := json.Marshal(nonNilPosts(posts))
	if err != nil {
		return fmt.Errorf("store: set role of user %q: %w", username, err)
	}
	return s.updateUser(ctx, username, "set role",
		"UPDATE users SET role = ?, posts = ?, updated_at = ? WHERE username = ?", role, string(p), at.UnixMilli(), username)
}

// ErrLastOfRole is returned, wrapped, by DeleteUser and SetUserRoleKeeping
// when the change would leave no user holding the role that must keep one
// (the console keeps at least one admin).
var ErrLastOfRole = errors.New("no other user holds the role")

// SetUserRoleKeeping is SetUserRole, refused with ErrLastOfRole, wrapped,
// when the user holds keepRole, role is another, and no other user holds
// keepRole. The check and the change are one transaction. An empty
// keepRole checks nothing.
func (s *Store) SetUserRoleKeeping(ctx context.Context, username, role string, posts []string, at time.Time, keepRole string) error {
	fail := func(err error) error { return fmt.Errorf("store: set role of user %q: %w", username, err) }
	if role == "" {
		return fail(errors.New("empty role"))
	}
	p, err := json.Marshal(nonNilPosts(posts))
	if err != nil {
		return fail(err)
	}
	if role == keepRole {
		keepRole = "" // the user keeps it
	}
	if err := s.changeUserKeeping(ctx, username, keepRole, "UPDATE users SET role = ?, posts = ?, updated_at = ? WHERE username = ?",
		role, string(p), at.UnixMilli(), username); err != nil {
		return fail(err)
	}
	return nil
}

// changeUserKeeping runs query, which changes the user's row, in one
// transaction with the lastOfRole check of keepRole (none when keepRole is
// ""). ErrNotFound when query changes no row. Its errors do not name the
// change; the caller wraps them.
func (s *Store) changeUserKeeping(ctx context.Context, username, keepRole, query string, args ...any) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if keepRole != "" {
		if err := lastOfRole(ctx, tx, username, keepRole); err != nil {
			return err
		}
	}
	if err := execChanging(ctx, tx, query, args...); err != nil {
		return err
	}
	return tx.Commit()
}

// lastOfRole fails with ErrLastOfRole when username holds role and no
// other user does, and with ErrNotFound when there is no such user.
func lastOfRole(ctx context.Context, tx *sql.Tx, username, role string) error {
	var mine string
	err := tx.QueryRowContext(ctx, "SELECT role FROM users WHERE username = ?", username).Scan(&mine)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return ErrNotFound
	case err != nil:
		return err
	case mine != role:
		return nil
	}
	var others int
	if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM users WHERE role = ? AND username != ?", role, username).Scan(&others); err != nil {
		return err
	}
	if others == 0 {
		return fmt.Errorf("%w %q", ErrLastOfRole, role)
	}
	return nil
}

// DeleteUser deletes the user with its sessions and API tokens (the audit
// log keeps its name). With keepRole set, it is refused with ErrLastOfRole,
// wrapped, when the user is the last holding keepRole; the check and the
// deletion are one transaction. ErrNotFound, wrapped, when there is no such
// user.
func (s *Store) DeleteUser(ctx context.Context, username, keepRole string) error {
	if err := s.changeUserKeeping(ctx, username, keepRole, "DELETE FROM users WHERE username = ?", username); err != nil {
		return fmt.Errorf("store: delete user %q: %w", username, err)
	}
	return nil
}

// UnlockUser lifts the user's lock-out, if any, and sets its failed logins
// back to 0. ErrNotFound, wrapped, when there is no such user.
func (s *Store) UnlockUser(ctx context.Context, username string) error {
	return s.updateUser(ctx, username, "unlock",
		"UPDATE users SET locked_until = NULL, failed_logins = 0 WHERE username = ?", username)
}

// RecordLoginFailure counts one more failed login of the user, atomically,
// and returns the new count. ErrNotFound, wrapped, when there is no such
// user.
func (s *Store) RecordLoginFailure(ctx context.Context, username string) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx,
		"UPDATE users SET failed_logins = failed_logins + 1 WHERE username = ? RETURNING failed_logins", username).Scan(&n)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, fmt.Errorf("store: record login failure of user %q: %w", username, ErrNotFound)
	case err != nil:
		return 0, fmt.Errorf("store: record login failure of user %q: %w", username, err)
	}
	return n, nil
}

// ResetLoginFailures sets the user's failed logins back to 0. ErrNotFound,
// wrapped, when there is no such user.
func (s *Store) ResetLoginFailures(ctx context.Context, username string) error {
	return s.updateUser(ctx, username, "reset login failures",
		"UPDATE users SET failed_logins = 0 WHERE username = ?", username)
}

// LockUser locks the user out of logging in until until, and sets its
// failed logins back to 0 so that the count starts afresh when the lock
// ends. ErrNotFound, wrapped, when there is no such user.
func (s *Store) LockUser(ctx context.Context, username string, until time.Time) error {
	if until.IsZero() {
		return fmt.Errorf("store: lock user %q: zero end of lock", username)
	}
	return s.updateUser(ctx, username, "lock",
		"UPDATE users SET locked_until = ?, failed_logins = 0 WHERE username = ?", until.UnixMilli(), username)
}

// CreateSession stores a new session. Its ID and CSRFHash must be hex
// SHA-256 digests (a secret in clear is refused), its user must exist, and
// its times must be set with Created ≤ Expires; LastSeen defaults to
// Created.
func (s *Store) CreateSession(ctx context.Context, ss Session) error {
	fail := func(err error) error { return fmt.Errorf("store: create session of user %q: %w", ss.Username, err) }
	if ss.LastSeen.IsZero() {
		ss.LastSeen = ss.Created
	}
	if err := checkSHA256Hex("session id", ss.ID); err != nil {
		return fail(err)
	}
	if err := checkSHA256Hex("csrf hash", ss.CSRFHash); err != nil {
		return fail(err)
	}
	switch {
	case ss.Created.IsZero() || ss.Expires.IsZero():
		return fail(errors.New("zero creation or expiry time"))
	case ss.Expires.Before(ss.Created):
		return fail(errors.New("expires before it is created"))
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO sessions (id, username, csrf_hash, created_at, last_seen, expires_at)
VALUES (?, ?, ?, ?, ?, ?)`, ss.ID, ss.Username, ss.CSRFHash, ss.Created.UnixMilli(), ss.LastSeen.UnixMilli(), ss.Expires.UnixMilli())
	if err != nil {
		var e *sqlite.Error
		if errors.As(err, &e) && e.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY {
			return fail(fmt.Errorf("no such user: %w", ErrNotFound))
		}
		return fail(err)
	}
	return nil
}

// Session returns the session whose ID (the hex SHA-256 of its secret) is
// idHash, expired or not; ErrNotFound, wrapped, when there is none.
func (s *Store) Session(ctx context.Context, idHash string) (Session, error) {
	var (
		ss                     Session
		created, seen, expires int64
	)
	err := s.db.QueryRowContext(ctx, "SELECT id, username, csrf_hash, created_at, last_seen, expires_at FROM sessions WHERE id = ?",
		idHash).Scan(&ss.ID, &ss.Username, &ss.CSRFHash, &created, &seen, &expires)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		// The id is a hash, but it still names no one's secret in an
		// error: it is left out.
		return Session{}, fmt.Errorf("store: session: %w", ErrNotFound)
	case err != nil:
		return Session{}, fmt.Errorf("store: session: %w", err)
	}
	ss.Created = time.UnixMilli(created).UTC()
	ss.LastSeen = time.UnixMilli(seen).UTC()
	ss.Expires = time.UnixMilli(expires).UTC()
	return ss, nil
}

// TouchSession records that the session was used at at. ErrNotFound,
// wrapped, when there is no such session.
func (s *Store) TouchSession(ctx context.Context, idHash string, at time.Time) error {
	return s.execOne(ctx, "touch session", "UPDATE sessions SET last_seen = ? WHERE id = ?", at.UnixMilli(), idHash)
}

// DeleteSession ends the session. ErrNotFound, wrapped, when there is no
// such session.
func (s *Store) DeleteSession(ctx context.Context, idHash string) error {
	return s.execOne(ctx, "delete session", "DELETE FROM sessions WHERE id = ?", idHash)
}

// execOne runs a statement that must change exactly one row; what names it
// in errors, which never carry the arguments.
func (s *Store) execOne(ctx context.Context, what, query string, args ...any) error {
	if err := execChanging(ctx, s.db, query, args...); err != nil {
		return fmt.Errorf("store: %s: %w", what, err)
	}
	return nil
}

// DeleteUserSessions ends every session of the user and returns how many
// there were.
func (s *Store) DeleteUserSessions(ctx context.Context, username string) (int64, error) {
	res, err := s.db.ExecContext(ctx, "DELETE FROM sessions WHERE username = ?", username)
	if err != nil {
		return 0, fmt.Errorf("store: delete sessions of user %q: %w", username, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("store: delete sessions of user %q: %w", username, err)
	}
	return n, nil
}

// DeleteExpiredSessions deletes the sessions that expire at or before now
// and, when idle is positive, those last seen idle or longer before now. It
// returns how many it deleted.
func (s *Store) DeleteExpiredSessions(ctx context.Context, now time.Time, idle time.Duration) (int64, error) {
	query, args := "DELETE FROM sessions WHERE expires_at <= ?", []any{now.UnixMilli()}
	if idle > 0 {
		query += " OR last_seen <= ?"
		args = append(args, now.Add(-idle).UnixMilli())
	}
	res, err := s.db.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, fmt.Errorf("store: delete expired sessions: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("store: delete expired sessions: %w", err)
	}
	return n, nil
}

// CreateAPIToken stores a new API token and returns its ID. Its Hash must
// be a hex SHA-256 digest (a token in clear is refused), its name not
// empty, its user existing, its creation time set; LastUsed and Revoked
// are stored as given.
func (s *Store) CreateAPIToken(ctx context.Context, t APIToken) (int64, error) {
	fail := func(err error) error {
		return fmt.Errorf("store: create API token %q of user %q: %w", t.Name, t.Username, err)
	}
	if err := checkSHA256Hex("token hash", t.Hash); err != nil {
		return 0, fail(err)
	}
	switch {
	case strings.TrimSpace(t.Name) == "":
		return 0, fail(errors.New("empty name"))
	case t.Created.IsZero():
		return 0, fail(errors.New("zero creation time"))
	}
	res, err := s.db.ExecContext(ctx, `INSERT INTO api_tokens (name, username, hash, created_at, last_used, revoked_at)
VALUES (?, ?, ?, ?, ?, ?)`, t.Name, t.Username, t.Hash, t.Created.UnixMilli(), milliOrNull(t.LastUsed), milliOrNull(t.Revoked))
	if err != nil {
		var e *sqlite.Error
		switch {
		case errors.As(err, &e) && e.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			return 0, fail(fmt.Errorf("no such user: %w", ErrNotFound))
		case isUniqueViolation(err):
			return 0, fail(errors.New("a token with this hash exists"))
		}
		return 0, fail(err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return 0, fail(err)
	}
	return id, nil
}

// apiTokenColumns are the api_tokens columns scanAPIToken reads, in order.
const apiTokenColumns = "id, name, username, hash, created_at, last_used, revoked_at"

// scanAPIToken reads one row of apiTokenColumns.
func scanAPIToken(row rowScanner) (APIToken, error) {
	var (
		t             APIToken
		created       int64
		used, revoked sql.NullInt64
	)
	if err := row.Scan(&t.ID, &t.Name, &t.Username, &t.Hash, &created, &used, &revoked); err != nil {
		return APIToken{}, err
	}
	t.Created = time.UnixMilli(created).UTC()
	t.LastUsed = nullMilli(used)
	t.Revoked = nullMilli(revoked)
	return t, nil
}

// APITokenByHash returns the API token whose hash is hash, revoked or
// not (the caller checks Revoked); ErrNotFound, wrapped, when there is
// none.
func (s *Store) APITokenByHash(ctx context.Context, hash string) (APIToken, error) {
	t, err := scanAPIToken(s.db.QueryRowContext(ctx, "SELECT "+apiTokenColumns+" FROM api_tokens WHERE hash = ?", hash))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return APIToken{}, fmt.Errorf("store: API token: %w", ErrNotFound)
	case err != nil:
		return APIToken{}, fmt.Errorf("store: API token: %w", err)
	}
	return t, nil
}

// TouchAPIToken records that the token with the given id was used at at.
// ErrNotFound, wrapped, when there is no such token.
func (s *Store) TouchAPIToken(ctx context.Context, id int64, at time.Time) error {
	return s.execOne(ctx, fmt.Sprintf("touch API token %d", id), "UPDATE api_tokens SET last_used = ? WHERE id = ?", at.UnixMilli(), id)
}

// RevokeAPIToken revokes the token with the given id at at; revoking it
// again keeps the first time. ErrNotFound, wrapped, when there is no such
// token.
func (s *Store) RevokeAPIToken(ctx context.Context, id int64, at time.Time) error {
	return s.execOne(ctx, fmt.Sprintf("revoke API token %d", id),
		"UPDATE api_tokens SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?", at.UnixMilli(), id)
}

// APITokens returns the user's API tokens, revoked ones included, oldest
// first.
func (s *Store) APITokens(ctx context.Context, username string) ([]APIToken, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT "+apiTokenColumns+" FROM api_tokens WHERE username = ? ORDER BY id", username)
	if err != nil {
		return nil, fmt.Errorf("store: API tokens of user %q: %w", username, err)
	}
	defer rows.Close()
	var out []APIToken
	for rows.Next() {
		t, err := scanAPIToken(rows)
		if err != nil {
			return nil, fmt.Errorf("store: API tokens of user %q: %w", username, err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: API tokens of user %q: %w", username, err)
	}
	return out, nil
}
