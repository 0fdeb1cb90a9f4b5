package console

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

// wantPolicyAnswer checks a 400 answer to a refused password: JSON, an
// "error" text naming the rule, and exactly the fields want (besides
// "error"), with nothing of the password in it.
func wantPolicyAnswer(t *testing.T, what string, code int, body, password string, want map[string]any) {
	t.Helper()
	if code != http.StatusBadRequest {
		t.Errorf("%s: %d %s, want 400", what, code, body)
		return
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Errorf("%s: the answer is not a JSON object: %v: %s", what, err, body)
		return
	}
	text, _ := got["error"].(string)
	if !strings.Contains(text, fmt.Sprintf("password rule %q", want["rule"])) {
		t.Errorf("%s: the error %q does not name the rule %q", what, text, want["rule"])
	}
	delete(got, "error")
	norm := map[string]any{}
	for k, v := range want {
		if n, ok := v.(int); ok {
			v = float64(n) // as JSON numbers decode
		}
		norm[k] = v
	}
	if !maps.Equal(got, norm) {
		t.Errorf("%s: fields %v, want %v (answer %s)", what, got, norm, body)
	}
	quoted, _ := json.Marshal(password)
	for _, p := range []string{password, strings.Trim(string(quoted), `"`), strings.ToLower(password)} {
		if p != "" && strings.Contains(body, p) {
			t.Errorf("%s: the answer holds the password: %s", what, body)
		}
	}
}

func TestWritePolicyErrorFieldsPerRule(t *testing.T) {
	for _, c := range []struct {
		user, password string
		want           map[string]any
	}{
		{"olga", "bad-utf8-\xff-Pass1", map[string]any{"rule": RulePasswordEncoding}},
		{"olga", "Sh0rt-pw", map[string]any{"rule": RulePasswordLength, "min_length": MinPasswordLen}},
		{"olga", strings.Repeat("Aa1-", 65), map[string]any{"rule": RulePasswordLength, "max_bytes": MaxPasswordBytes}},
		{"olga", "alllowercaseletters", map[string]any{"rule": RulePasswordClasses, "min_classes": MinPasswordClasses, "classes": 1}},
		{"olga", "lowercase-and-symbols", map[string]any{"rule": RulePasswordClasses, "min_classes": MinPasswordClasses, "classes": 2}},
		{"olga", "My-OLGA-password-1", map[string]any{"rule": RulePasswordUsername}},
	} {
		err := checkPasswordRules(c.user, c.password)
		if !isPolicyError(err) {
			t.Fatalf("%q: %v, want a policy refusal", c.password, err)
		}
		rec := httptest.NewRecorder()
		// wrapped, as CreateUser and SetPassword return it
		writePolicyError(rec, fmt.Errorf("set: %w", err), "new password: %v", err)
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
			t.Errorf("%q: Content-Type %q", c.password, ct)
		}
		wantPolicyAnswer(t, fmt.Sprintf("%q", c.password), rec.Code, rec.Body.String(), c.password, c.want)
	}

	// The history refusal carries its count.
	rec := httptest.NewRecorder()
	err := &PasswordPolicyError{Rule: RulePasswordHistory, History: 7, Reason: "must not be one of your last 7 passwords"}
	writePolicyError(rec, err, "new password: %v", err)
	wantPolicyAnswer(t, "history", rec.Code, rec.Body.String(), "", map[string]any{"rule": RulePasswordHistory, "history": 7})

	// Anything else gets the text alone.
	rec = httptest.NewRecorder()
	writePolicyError(rec, errors.New("disk full"), "new password: %v", "disk full")
	var got map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || rec.Code != http.StatusBadRequest ||
		!slices.Equal(slices.Sorted(maps.Keys(got)), []string{"error"}) {
		t.Errorf("a non-policy error: %d %s", rec.Code, rec.Body)
	}
}
