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
	// Role is the role the token acts with (the console keeps it at most
	// its owner's); "" for a token made before tokens had roles, which
	// acts with its owner's role.
	Role string
	// Scopes name the routes the token may use (the console gives them
	// their meaning); none means every route its role may use.
	Scopes []string
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

// MaxPasswordHistory is how many earlier password hashes the store keeps
// per user (PasswordHistory); older ones are deleted.
const MaxPasswordHistory = 24

// UpdateUserPassword replaces the user's password hash and must-change
// flag at at; it also clears failed logins and any lock-out. The hash
// replaced, when it was a password's (a PHC string, not the "no password"
// marker), joins the user's password history (at most MaxPasswordHistory
// kept), in the same transaction. Sessions are left alone (the caller
// decides which end). ErrNotFound, wrapped, when there is no such user.
func (s *Store) UpdateUserPassword(ctx context.Context, username, hash string, mustChange bool, at time.Time) error {
	fail := func(err error) error { return fmt.Errorf("store: set password of user %q: %w", username, err) }
	if hash == "" {
		return fail(errors.New("empty password hash"))
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fail(err)
	}
	defer tx.Rollback()
	var old string
	err = tx.QueryRowContext(ctx, "SELECT password_hash FROM users WHERE username = ?", username).Scan(&old)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return fail(ErrNotFound)
	case err != nil:
		return fail(err)
	}
	if strings.HasPrefix(old, "$") {
		if _, err := tx.ExecContext(ctx, "INSERT INTO password_history (username, hash, retired_at) VALUES (?, ?, ?)",
			username, old, at.UnixMilli()); err != nil {
			return fail(err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM password_history WHERE username = ? AND id NOT IN
	(SELECT id FROM password_history WHERE username = ? ORDER BY id DESC LIMIT ?)`, username, username, MaxPasswordHistory); err != nil {
			return fail(err)
		}
	}
	if err := execChanging(ctx, tx,
		"UPDATE users SET password_hash = ?, must_change = ?, failed_logins = 0, locked_until = NULL, updated_at = ? WHERE username = ?",
		hash, mustChange, at.UnixMilli(), username); err != nil {
		return fail(err)
	}
	if err := tx.Commit(); err != nil {
		return fail(err)
	}
	return nil
}

// PasswordHistory returns the hashes (PHC strings) of the user's n most
// recent earlier passwords, newest first; the current one is not among
// them. A user without history, or none at all, has none.
func (s *Store) PasswordHistory(ctx context.Context, username string, n int) ([]string, error) {
	if n <= 0 {
		return nil, nil
	}
	rows, err := s.db.QueryContext(ctx, "SELECT hash FROM password_history WHERE username = ? ORDER BY id DESC LIMIT ?", username, n)
	if err != nil {
		return nil, fmt.Errorf("store: password history of user %q: %w", username, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var h string
		if err := rows.Scan(&h); err != nil {
			return nil, fmt.Errorf("store: password history of user %q: %w", username, err)
		}
		out = append(out, h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: password history of user %q: %w", username, err)
	}
	return out, nil
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
	scopes, err := json.Marshal(nonNilPosts(t.Scopes))
	if err != nil {
		return 0, fail(err)
	}
	res, err := s.db.ExecContext(ctx, `INSERT INTO api_tokens (name, username, hash, created_at, last_used, revoked_at, role, scopes)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, t.Name, t.Username, t.Hash, t.Created.UnixMilli(), milliOrNull(t.LastUsed), milliOrNull(t.Revoked),
		t.Role, string(scopes))
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
const apiTokenColumns = "id, name, username, hash, created_at, last_used, revoked_at, role, scopes"

// scanAPIToken reads one row of apiTokenColumns.
func scanAPIToken(row rowScanner) (APIToken, error) {
	var (
		t             APIToken
		created       int64
		used, revoked sql.NullInt64
		scopes        string
	)
	if err := row.Scan(&t.ID, &t.Name, &t.Username, &t.Hash, &created, &used, &revoked, &t.Role, &scopes); err != nil {
		return APIToken{}, err
	}
	if err := json.Unmarshal([]byte(scopes), &t.Scopes); err != nil {
		return APIToken{}, fmt.Errorf("API token %d: stored scopes: %w", t.ID, err)
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

// APITokenByID returns the API token with the given id, revoked or not;
// ErrNotFound, wrapped, when there is none.
func (s *Store) APITokenByID(ctx context.Context, id int64) (APIToken, error) {
	t, err := scanAPIToken(s.db.QueryRowContext(ctx, "SELECT "+apiTokenColumns+" FROM api_tokens WHERE id = ?", id))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return APIToken{}, fmt.Errorf("store: API token %d: %w", id, ErrNotFound)
	case err != nil:
		return APIToken{}, fmt.Errorf("store: API token %d: %w", id, err)
	}
	return t, nil
}

// APITokens returns the user's API tokens, revoked ones included, oldest
// first.
func (s *Store) APITokens(ctx context.Context, username string) ([]APIToken, error) {
	out, err := s.apiTokens(ctx, "SELECT "+apiTokenColumns+" FROM api_tokens WHERE username = ? ORDER BY id", username)
	if err != nil {
		return nil, fmt.Errorf("store: API tokens of user %q: %w", username, err)
	}
	return out, nil
}

// AllAPITokens returns every user's API tokens, revoked ones included,
// oldest first.
func (s *Store) AllAPITokens(ctx context.Context) ([]APIToken, error) {
	out, err := s.apiTokens(ctx, "SELECT "+apiTokenColumns+" FROM api_tokens ORDER BY id")
	if err != nil {
		return nil, fmt.Errorf("store: API tokens: %w", err)
	}
	return out, nil
}

// apiTokens runs a query of apiTokenColumns.
func (s *Store) apiTokens(ctx context.Context, q string, args ...any) ([]APIToken, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []APIToken
	for rows.Next() {
		t, err := scanAPIToken(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// ErrTOTPEnabled is returned, wrapped, by SetPendingTOTP when the user has
// a confirmed second factor already.
var ErrTOTPEnabled = errors.New("a TOTP second factor is enabled already")

// TOTP is a user's TOTP second factor (RFC 6238). The store keeps its
// secret only sealed: what Sealed holds is the console's box's output.
type TOTP struct {
	// Username is whose factor it is.
	Username string
	// Sealed is the shared secret, sealed. It never leaves the process
	// as JSON.
	Sealed []byte `json:"-"`
	// Confirmed is set once the user proved, with a code, that their
	// authenticator holds the secret; until then the factor is pending
	// and not asked for at login.
	Confirmed bool
	// LastStep is the newest time step (unix seconds / 30) whose code
	// was used: a code of that step or an older one is refused.
	LastStep int64
	// Created is when the secret was made, ConfirmedAt when it was
	// confirmed (zero while pending).
	Created, ConfirmedAt time.Time
}

// SetPendingTOTP stores a new, unconfirmed TOTP secret (sealed) for the
// user at at, replacing a pending one; it is refused with ErrTOTPEnabled,
// wrapped, when the user has a confirmed one, and with ErrNotFound,
// wrapped, when there is no such user.
func (s *Store) SetPendingTOTP(ctx context.Context, username string, sealed []byte, at time.Time) error {
	fail := func(err error) error { return fmt.Errorf("store: set TOTP of user %q: %w", username, err) }
	if len(sealed) == 0 {
		return fail(errors.New("empty sealed secret"))
	}
	err := execChanging(ctx, s.db, `INSERT INTO user_totp (username, sealed, confirmed, last_step, created_at) VALUES (?, ?, 0, 0, ?)
ON CONFLICT (username) DO UPDATE SET sealed = excluded.sealed, last_step = 0, created_at = excluded.created_at, confirmed_at = NULL
WHERE confirmed = 0`, username, sealed, at.UnixMilli())
	var e *sqlite.Error
	switch {
	case errors.As(err, &e) && e.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
		return fail(fmt.Errorf("no such user: %w", ErrNotFound))
	case errors.Is(err, ErrNotFound):
		return fail(ErrTOTPEnabled)
	case err != nil:
		return fail(err)
	}
	return nil
}

// UserTOTP returns the user's TOTP factor, pending or confirmed;
// ErrNotFound, wrapped, when the user has none.
func (s *Store) UserTOTP(ctx context.Context, username string) (TOTP, error) {
	var (
		t         TOTP
		created   int64
		confirmed sql.NullInt64
	)
	err := s.db.QueryRowContext(ctx, "SELECT username, sealed, confirmed, last_step, created_at, confirmed_at FROM user_totp WHERE username = ?",
		username).Scan(&t.Username, &t.Sealed, &t.Confirmed, &t.LastStep, &created, &confirmed)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return TOTP{}, fmt.Errorf("store: TOTP of user %q: %w", username, ErrNotFound)
	case err != nil:
		return TOTP{}, fmt.Errorf("store: TOTP of user %q: %w", username, err)
	}
	t.Created = time.UnixMilli(created).UTC()
	t.ConfirmedAt = nullMilli(confirmed)
	return t, nil
}

// ConfirmTOTP marks the user's pending factor confirmed at at, with step
// the time step of the code that confirmed it (used, so not usable
// again). ErrNotFound, wrapped, when the user has no pending factor.
func (s *Store) ConfirmTOTP(ctx context.Context, username string, step int64, at time.Time) error {
	return s.execOne(ctx, fmt.Sprintf("confirm TOTP of user %q", username),
		"UPDATE user_totp SET confirmed = 1, confirmed_at = ?, last_step = ? WHERE username = ? AND confirmed = 0",
		at.UnixMilli(), step, username)
}

// UseTOTPStep records that the user's confirmed factor was used with a
// code of time step step, atomically, and reports whether the step was
// newer than every step used before: false means the code (or an older
// one) was used already, a replay. ErrNotFound, wrapped, when the user has
// no confirmed factor.
func (s *Store) UseTOTPStep(ctx context.Context, username string, step int64) (bool, error) {
	res, err := s.db.ExecContext(ctx, "UPDATE user_totp SET last_step = ? WHERE username = ? AND confirmed = 1 AND last_step < ?",
		step, username, step)
	if err != nil {
		return false, fmt.Errorf("store: use TOTP of user %q: %w", username, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("store: use TOTP of user %q: %w", username, err)
	}
	if n == 1 {
		return true, nil
	}
	t, err := s.UserTOTP(ctx, username)
	if err != nil {
		return false, fmt.Errorf("store: use TOTP of user %q: %w", username, err)
	}
	if !t.Confirmed {
		return false, fmt.Errorf("store: use TOTP of user %q: not confirmed: %w", username, ErrNotFound)
	}
	return false, nil
}

// DeleteTOTP removes the user's TOTP factor, pending or confirmed.
// ErrNotFound, wrapped, when the user has none.
func (s *Store) DeleteTOTP(ctx context.Context, username string) error {
	return s.execOne(ctx, fmt.Sprintf("delete TOTP of user %q", username), "DELETE FROM user_totp WHERE username = ?", username)
}
