package console

import (
	"context"
	"errors"
	"fmt"
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

// Names of the password rules, as a refusal names them.
const (
	RulePasswordEncoding = "encoding"
	RulePasswordLength   = "length"
	RulePasswordClasses  = "character classes"
	RulePasswordUsername = "user name"
	RulePasswordHistory  = "history"
)

// PasswordPolicyError says which rule of the password policy a password
// breaks and why. Its text never quotes the password.
type PasswordPolicyError struct {
	// Rule is one of the RulePassword constants.
	Rule string
	// Reason says what the rule asks, in words a user understands.
	Reason string
}

func (e *PasswordPolicyError) Error() string {
	return fmt.Sprintf("breaks the password rule %q: %s", e.Rule, e.Reason)
}

// policyError makes a *PasswordPolicyError.
func policyError(rule, format string, args ...any) error {
	return &PasswordPolicyError{Rule: rule, Reason: fmt.Sprintf(format, args...)}
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
		return policyError(RulePasswordLength, "too short: at least %d characters", MinPasswordLen)
	case len(p) > MaxPasswordBytes:
		return policyError(RulePasswordLength, "too long: at most %d bytes", MaxPasswordBytes)
	}
	if n := passwordClasses(p); n < MinPasswordClasses {
		return policyError(RulePasswordClasses,
			"mix at least %d of the 4 kinds of character (lower case, upper case, digits, symbols); it has %d", MinPasswordClasses, n)
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
			return policyError(RulePasswordHistory, "must not be one of your last %d passwords", a.cfg.PasswordHistory)
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
