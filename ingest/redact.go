package ingest

import "strings"

// redactedPassword replaces a password wherever flowwatch shows a camera
// address or an error about one.
const redactedPassword = "***"

// minLiteralSecret is the shortest password that redactText also removes
// where it appears outside a URL. Shorter ones would blank out ordinary
// letters of the message while adding little protection.
const minLiteralSecret = 4

// RedactURL returns raw with the password of its userinfo replaced by ***,
// as in rtsp://user:***@host/path. A URL without a password is returned
// unchanged. It works on text that does not parse as a URL too, so it is
// safe on anything a user typed.
func RedactURL(raw string) string {
	return redactURLs(raw)
}

// redactText removes every URL password from s, and every occurrence of
// the given secrets that is at least minLiteralSecret bytes long. Errors
// from libraries pass through it before they reach a log, a camera state
// or an API answer.
func redactText(s string, secrets ...string) string {
	s = redactURLs(s)
	for _, secret := range secrets {
		if len(secret) >= minLiteralSecret {
			s = strings.ReplaceAll(s, secret, redactedPassword)
		}
	}
	return s
}

// redactURLs rewrites the userinfo of every "scheme://user:pass@" found in
// s to "scheme://user:***@".
func redactURLs(s string) string {
	var b strings.Builder
	rest := s
	for {
		i := strings.Index(rest, "://")
		if i < 0 {
			b.WriteString(rest)
			return b.String()
		}
		authStart := i + len("://")
		b.WriteString(rest[:authStart])
		rest = rest[authStart:]

		// The userinfo ends at the last '@' of the address, which itself
		// ends at white space or a quote: a password may hold '/', '?',
		// '#' or even "://" that a sloppy client left unescaped. When a
		// path, or a second URL run on without a space, holds an '@' this
		// over-redacts, which is the safe side.
		authEnd := strings.IndexAny(rest, " \t\n\"'")
		if authEnd < 0 {
			authEnd = len(rest)
		}
		authority := rest[:authEnd]
		at := strings.LastIndexByte(authority, '@')
		if at >= 0 {
			userinfo := authority[:at]
			if colon := strings.IndexByte(userinfo, ':'); colon >= 0 {
				b.WriteString(userinfo[:colon+1])
				b.WriteString(redactedPassword)
				b.WriteString(authority[at:])
				rest = rest[authEnd:]
				continue
			}
		}
		b.WriteString(authority)
		rest = rest[authEnd:]
	}
}
