package ingest

import (
	"strings"
	"testing"
)

// FuzzRedactURL builds camera URLs around a password from arbitrary parts
// (text before the scheme, user, password, host and path; the password
// may hold '/', '?', '#' or ':' left unescaped) and checks that neither
// RedactURL nor NewRTSPSource's error or String shows the password, unless
// the rest of the URL holds the same bytes. It also feeds each part alone
// to RedactURL, which must not panic on any text.
func FuzzRedactURL(f *testing.F) {
	for _, c := range [][5]string{
		{"", "admin", "s3cret", "10.0.0.5:554", "/stream1"},
		{"dial \"", "u", "p@ss", "host", "/x?y=1\" failed"},
		{"", "admin", "pa#ss", "10.0.0.1", "/s"},
		{"", "admin", "pa/ss", "10.0.0.1", "/s"},
		{"", "admin", "pa?ss", "10.0.0.1", "/s"},
		{"parse \"", "admin", "pa#ss", "h", "/s\": invalid port"},
		{"rtsp://u:p@h/a ", "v", "q1q2q3", "h", "/b"},
		{"", "", "only-pass", "h:notaport", ""},
		{"", "u", "12:34", "[::1]:8554", "/cam"},
		{"", "u", "%zz%", "h", "/"},
		{"", "admin", "//0001", "0", ""},
		{"", "admin", "a://b", "10.0.0.1", "/s"},
	} {
		f.Add(c[0], c[1], c[2], c[3], c[4])
	}
	f.Fuzz(func(t *testing.T, before, user, password, host, path string) {
		for _, s := range []string{before, user, password, host, path} {
			RedactURL(s)
			redactText(s, password)
		}
		// A user and password as typed into a URL: no '@' (the
		// userinfo ends at the last one, so a host or path with one
		// only over-redacts), no white space or quote (which end a URL
		// in text), and a user without ':' (which ends it).
		typed := func(s string) bool { return !strings.ContainsAny(s, "@ \t\n\"'") }
		if password == "" || !typed(password) || !typed(user) || strings.Contains(user, ":") {
			return
		}
		in := before + "rtsp://" + user + ":" + password + "@" + host + path
		// What may show: everything but the password.
		shown := before + "rtsp://" + user + ":" + redactedPassword + "@" + host + path
		if strings.Contains(shown, password) {
			return
		}
		if got := RedactURL(in); strings.Contains(got, password) {
			t.Fatalf("RedactURL(%q) = %q shows the password %q", in, got, password)
		}
		if len(password) < minLiteralSecret {
			return // too short to tell from the words of an error
		}
		url := "rtsp://" + user + ":" + password + "@" + host + path
		if _, err := NewRTSPSource(RTSPConfig{URL: shown[len(before):]}); err != nil && strings.Contains(err.Error(), password) {
			return // the password is a word of the error itself
		}
		src, err := NewRTSPSource(RTSPConfig{URL: url})
		switch {
		case err != nil && strings.Contains(err.Error(), password):
			t.Fatalf("NewRTSPSource(%q): error %q shows the password %q", url, err, password)
		case err == nil && strings.Contains(src.String(), password):
			// the shown form escapes odd host and path bytes, whose
			// escapes may spell the password by chance
			if clean, err := NewRTSPSource(RTSPConfig{URL: shown[len(before):]}); err == nil && strings.Contains(clean.String(), password) {
				return
			}
			t.Fatalf("NewRTSPSource(%q).String() = %q shows the password %q", url, src, password)
		}
	})
}
