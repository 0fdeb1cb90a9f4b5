package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"flowwatch/internal/store"
)

// The password policy: every password set (a user's own change, an admin
// creating a user with one, FLOWWATCH_ADMIN_PASSWORD, a generated one) is
// checked here, in one place.
const (
	// MinPasswordLen is the fewest characters a password may have.
	MinPasswordLen = 12
	// MaxPasswordBytes is the most bytes a password may have.
	MaxPasswordBytes = 256
	// MinPasswordClasses is how many of the four kinds of character
	// (lower case, upper case, digits, symbols) a password must mix.
	MinPasswordClasses = 3
	// DefaultPasswordHistory is how many of a user's last passwords, the
	// current one included, a new one may not repeat.
	DefaultPasswordHistory = 5
	// minNameInPassword is the shortest user name the "no user name"
	// rule looks for (a one- or two-letter name is in every password).
	minNameInPassword = 3
)

// Names of the password rules, as a refusal names them (in its text and
// in the "rule" field of the console's JSON answer).
const (
	RulePasswordEncoding = "encoding"
	RulePasswordLength   = "length"
	RulePasswordClasses  = "character classes"
	RulePasswordUsername = "user name"
	RulePasswordHistory  = "history"
	// RulePasswordUnchanged refuses a password change to the password
	// being changed (whether or not the history rule is on).
	RulePasswordUnchanged = "unchanged"
)

// PasswordPolicyError says which rule of the password policy a password
// breaks and why. Its text never quotes the password. The numbers of the
// rule travel with it, so that a client can word the refusal itself (the
// console answers them as JSON, writePolicyError); a number that does not
// belong to the refusal is zero.
type PasswordPolicyError struct {
	// Rule is one of the RulePassword constants.
	Rule string
	// Reason says what the rule asks, in words a user understands.
	Reason string
	// MinLength is the fewest characters, when the password is too short.
	MinLength int
	// MaxBytes is the most bytes, when the password is too long.
	MaxBytes int
	// MinClasses is how many kinds of character the password must mix,
	// and Classes how many it has, when it mixes too few.
	MinClasses, Classes int
	// History is how many of the user's last passwords it may not
	// repeat, when it repeats one.
	History int
}

func (e *PasswordPolicyError) Error() string {
	return fmt.Sprintf("breaks the password rule %q: %s", e.Rule, e.Reason)
}

// policyError makes a *PasswordPolicyError without numbers.
func policyError(rule, format string, args ...any) error {
	return &PasswordPolicyError{Rule: rule, Reason: fmt.Sprintf(format, args...)}
}

// fields are the refusal's machine-readable JSON fields: "rule" and, by
// rule, "min_length" (length, too short), "max_bytes" (length, too long),
// "min_classes" and "classes" (character classes), "history" (history).
// The password is not among them, nor anything derived from it but the
// count of its kinds of character.
func (e *PasswordPolicyError) fields() map[string]any {
	f := map[string]any{"rule": e.Rule}
	add := func(key string, n int) {
		if n > 0 {
			f[key] = n
		}
	}
	add("min_length", e.MinLength)
	add("max_bytes", e.MaxBytes)
	add("min_classes", e.MinClasses)
	add("classes", e.Classes)
	add("history", e.History)
	return f
}

// writePolicyError answers 400 to a password that err, a
// *PasswordPolicyError (wrapped or not), refuses: {"error": the text of
// format and args, as writeError writes it, plus the refusal's fields,
// e.g. "rule": "length", "min_length": 12}, so that the browser app can
// say it in the user's language. Any other err gets the text alone.
func writePolicyError(w http.ResponseWriter, err error, format string, args ...any) {
	answer := map[string]any{}
	var pe *PasswordPolicyError
	if errors.As(err, &pe) {
		answer = pe.fields()
	}
	answer["error"] = fmt.Sprintf(format, args...)
	writeJSON(w, http.StatusBadRequest, answer)
}

// passwordClasses counts the kinds of character in p: lower case, upper
// case, digits, and anything else (symbols, spaces, other scripts).
func passwordClasses(p string) int {
	var lower, upper, digit, other int
	for _, r := range p {
		switch {
		case unicode.IsLower(r):
			lower = 1
		case unicode.IsUpper(r):
			upper = 1
		case unicode.IsDigit(r):
			digit = 1
		default:
			other = 1
		}
	}
	return lower + upper + digit + other
}

// checkPasswordRules checks the rules of the policy that need no stored
// state: UTF-8, MinPasswordLen characters to MaxPasswordBytes bytes,
// MinPasswordClasses kinds of character, and not holding the user name
// (in any case; names shorter than three characters are not looked for).
// The error is a *PasswordPolicyError.
func checkPasswordRules(username, p string) error {
	switch {
	case !utf8.ValidString(p):
		return policyError(RulePasswordEncoding, "not valid UTF-8")
	case utf8.RuneCountInString(p) < MinPasswordLen:
		return &PasswordPolicyError{Rule: RulePasswordLength, MinLength: MinPasswordLen,
			Reason: fmt.Sprintf("too short: at least %d characters", MinPasswordLen)}
	case len(p) > MaxPasswordBytes:
		return &PasswordPolicyError{Rule: RulePasswordLength, MaxBytes: MaxPasswordBytes,
			Reason: fmt.Sprintf("too long: at most %d bytes", MaxPasswordBytes)}
	}
	if n := passwordClasses(p); n < MinPasswordClasses {
		return &PasswordPolicyError{Rule: RulePasswordClasses, MinClasses: MinPasswordClasses, Classes: n,
			Reason: fmt.Sprintf("mix at least %d of the 4 kinds of character (lower case, upper case, digits, symbols); it has %d", MinPasswordClasses, n)}
	}
	if utf8.RuneCountInString(username) >= minNameInPassword && strings.Contains(strings.ToLower(p), strings.ToLower(username)) {
		return policyError(RulePasswordUsername, "must not contain the user name")
	}
	return nil
}

// checkNewPassword checks a password being set for username against the
// whole policy: checkPasswordRules, then, for an existing user, that it is
// none of the user's last PasswordHistory passwords (the current one
// included; their argon2id hashes are compared). The error is a
// *PasswordPolicyError, or a failure of the store or of ctx.
func (a *Auth) checkNewPassword(ctx context.Context, username, p string) error {
	if err := checkPasswordRules(username, p); err != nil {
		return err
	}
	if a.cfg.PasswordHistory <= 0 {
		return nil
	}
	u, err := a.db.User(ctx, username)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil // a user being created has no history
	case err != nil:
		return err
	}
	hashes := []string{u.PasswordHash}
	older, err := a.db.PasswordHistory(ctx, username, a.cfg.PasswordHistory-1)
	if err != nil {
		return err
	}
	for _, h := range append(hashes, older...) {
		if !strings.HasPrefix(h, "$") {
			continue // no password
		}
		same, err := a.verify(ctx, h, p)
		if err != nil {
			return err
		}
		if same {
			return &PasswordPolicyError{Rule: RulePasswordHistory, History: a.cfg.PasswordHistory,
				Reason: fmt.Sprintf("must not be one of your last %d passwords", a.cfg.PasswordHistory)}
		}
	}
	return nil
}

// isPolicyError tells whether err is a refusal by the password policy
// (answered 400) rather than a failure (500).
func isPolicyError(err error) bool {
	var pe *PasswordPolicyError
	return errors.As(err, &pe)
}
