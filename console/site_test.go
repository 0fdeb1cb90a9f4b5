package console

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"flowwatch/internal/config"
	"flowwatch/internal/store"
)

// siteParts are what the API test sites are built on.
type siteParts struct {
	cfg  *config.Config
	db   *store.Store // in the test's temporary directory, closed at its end
	log  *slog.Logger // logs nowhere
	auth *Auth        // over db, with cheapArgon
}

// newSiteParts parses siteYAML and opens a store and an Auth for it.
func newSiteParts(t *testing.T, siteYAML string) siteParts {
	t.Helper()
	cfg, err := config.Parse("site.yaml", []byte(siteYAML))
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(filepath.Join(t.TempDir(), "flowwatch.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	argon := cheapArgon
	auth, err := NewAuth(AuthConfig{Store: db, Logger: log, argon: &argon})
	if err != nil {
		t.Fatal(err)
	}
	return siteParts{cfg: cfg, db: db, log: log, auth: auth}
}

// testPassword is the password of test user name: 16 characters of 4
// kinds, without the name, so the password policy takes it.
func testPassword(name string) string {
	return fmt.Sprintf("Zq-Tp-%010d", crc32.ChecksumIEEE([]byte(name)))
}

// login creates the user name with role, posts and the password
// testPassword(name) and keeps the bearer token of its session.
func (s *apiSite) login(t *testing.T, auth *Auth, name, role string, posts []string) {
	t.Helper()
	if err := auth.CreateUser(context.Background(), name, role, posts, testPassword(name)); err != nil {
		t.Fatal(err)
	}
	var answer struct {
		Token string `json:"token"`
	}
	if code := s.call(t, "", "POST", "/api/v1/session", fmt.Sprintf(`{"username":%q,"password":%q}`, name, testPassword(name)), &answer); code != 200 {
		t.Fatalf("login %s: %d", name, code)
	}
	s.tokens[name] = answer.Token
}

// rawAnswer is an HTTP answer with its body unparsed.
type rawAnswer struct {
	code   int
	header http.Header
	body   string
}

// do sends req as user ("" for none) and returns the answer with its body
// read.
func (s *apiSite) do(t *testing.T, user string, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	if user != "" {
		req.Header.Set("Authorization", "Bearer "+s.tokens[user])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, data
}

// raw makes a request with a JSON body as user ("" for none) and returns
// the answer as is.
func (s *apiSite) raw(t *testing.T, user, method, path, body string) rawAnswer {
	t.Helper()
	req, err := http.NewRequest(method, s.base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, data := s.do(t, user, req)
	return rawAnswer{code: resp.StatusCode, header: resp.Header, body: string(data)}
}

// call makes a request as user ("" for none) and decodes a JSON answer.
func (s *apiSite) call(t *testing.T, user, method, path, body string, out any) int {
	t.Helper()
	a := s.raw(t, user, method, path, body)
	if ct := a.header.Get("Content-Type"); a.code >= 400 && !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("%s %s as %q: %d with %q, want a JSON error", method, path, user, a.code, ct)
	}
	if out != nil && len(a.body) > 0 {
		_ = json.Unmarshal([]byte(a.body), out)
	}
	return a.code
}
