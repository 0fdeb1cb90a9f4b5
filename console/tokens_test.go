package console

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

func TestAPITokenRolesScopesAndRevocation(t *testing.T) {
	f := newAuthFixture(t, nil)
	ctx := context.Background()
	f.user("ada", RoleAdmin, testPassword("ada"))
	f.user("olga", RoleOperator, "Quiet-Harbor-71")
	f.user("gina", RoleGuard, testPassword("gina"), "gate")
	admin, _ := f.mustLogin("ada", testPassword("ada"))
	olga, olgaCSRF := f.mustLogin("olga", "Quiet-Harbor-71")
	gina, _ := f.mustLogin("gina", testPassword("gina"))
	create := func(session, csrf string, body any) authResp {
		return f.do(authReq{method: "POST", path: "/api/v1/tokens", cookie: session, csrf: csrf, body: body})
	}

	// A token's role is at most its owner's.
	r := create(olga, olgaCSRF, map[string]any{"name": "promote me", "role": RoleAdmin})
	wantError(t, "operator asking for an admin token", r, http.StatusForbidden, `"operator"`, `"admin"`)
	wantError(t, "guard asking for a viewer token", f.do(authReq{method: "POST", path: "/api/v1/tokens", bearer: gina,
		body: map[string]any{"name": "see all", "role": RoleViewer}}), http.StatusForbidden, `"guard"`)
	wantError(t, "unknown role", create(olga, olgaCSRF, map[string]any{"name": "x", "role": "boss"}), http.StatusBadRequest, `"boss"`)
	wantError(t, "no name", create(olga, olgaCSRF, map[string]any{"role": RoleViewer}), http.StatusBadRequest, "name")
	wantError(t, "bad scope", create(olga, olgaCSRF, map[string]any{"name": "x", "scopes": []string{"alerts"}}), http.StatusBadRequest, "path prefix")
	wantError(t, "without CSRF", create(olga, "", map[string]any{"name": "x"}), http.StatusForbidden, CSRFHeader)

	// An operator's viewer token, limited to reading /t/read.
	r = create(olga, olgaCSRF, map[string]any{"name": "wall", "role": RoleViewer, "scopes": []string{"read:/t/read"}})
	if r.code != http.StatusCreated || !strings.HasPrefix(r.str("token"), apiTokenPrefix) || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("create: %d %s", r.code, r.body)
	}
	wall := r.str("token")
	info, _ := r.json["api_token"].(map[string]any)
	wallID := int64(info["id"].(float64))
	if info["role"] != RoleViewer || info["user"] != "olga" || fmt.Sprint(info["scopes"]) != "[read:/t/read]" {
		t.Errorf("token info: %v", info)
	}
	if me := f.do(authReq{method: "GET", path: "/t/read", bearer: wall}); me.code != http.StatusOK || me.str("Role") != RoleViewer ||
		me.str("User") != "olga" || me.json["Token"] != float64(wallID) {
		t.Errorf("the viewer token reading: %d %s", me.code, me.body)
	}
	wantError(t, "viewer token writing", f.do(authReq{method: "POST", path: "/t/write", bearer: wall}), http.StatusForbidden, "scopes")
	wantError(t, "token making a token", f.do(authReq{method: "POST", path: "/api/v1/tokens", bearer: wall,
		body: map[string]any{"name": "child"}}), http.StatusForbidden)

	// An operator token scoped to /t/write: it writes (operator), but
	// does not read /t/read.
	r = create(olga, olgaCSRF, map[string]any{"name": "writer", "scopes": []string{"/t/write"}})
	writer := r.str("token")
	if r.code != http.StatusCreated {
		t.Fatalf("create writer: %d %s", r.code, r.body)
	}
	if w := f.do(authReq{method: "POST", path: "/t/write", bearer: writer}); w.code != http.StatusOK || w.str("Role") != RoleOperator {
		t.Errorf("the writer token writing: %d %s", w.code, w.body)
	}
	wantError(t, "writer token reading", f.do(authReq{method: "GET", path: "/t/read", bearer: writer}), http.StatusForbidden, "scopes")

	// Users list their own; an admin lists everyone's and revokes any.
	list := func(token, query string) []any {
		r := f.do(authReq{method: "GET", path: "/api/v1/tokens" + query, bearer: token})
		if r.code != http.StatusOK {
			t.Fatalf("list%s: %d %s", query, r.code, r.body)
		}
		toks, _ := r.json["tokens"].([]any)
		return toks
	}
	if n := len(list(olga, "")); n != 2 {
		t.Errorf("olga lists %d tokens, want 2", n)
	}
	if n := len(list(gina, "")); n != 0 {
		t.Errorf("gina lists %d tokens, want 0", n)
	}
	wantError(t, "guard listing another's", f.do(authReq{method: "GET", path: "/api/v1/tokens?user=olga", bearer: gina}), http.StatusForbidden)
	if _, err := f.auth.CreateAPIToken(ctx, "gina", "pager"); err != nil {
		t.Fatal(err)
	}
	if n := len(list(admin, "")); n != 3 {
		t.Errorf("the admin lists %d tokens, want 3", n)
	}
	if n := len(list(admin, "?user=gina")); n != 1 {
		t.Errorf("the admin lists %d of gina's tokens, want 1", n)
	}
	raw := f.do(authReq{method: "GET", path: "/api/v1/tokens", bearer: admin})
	if strings.Contains(raw.body, wall) || strings.Contains(raw.body, sha256Hex(wall)) || strings.Contains(strings.ToLower(raw.body), "hash") {
		t.Errorf("the list shows a token or its hash: %s", raw.body)
	}
	wantError(t, "guard revoking olga's token", f.do(authReq{method: "DELETE", path: fmt.Sprintf("/api/v1/tokens/%d", wallID), bearer: gina}),
		http.StatusNotFound, "no API token")
	wantError(t, "bad id", f.do(authReq{method: "DELETE", path: "/api/v1/tokens/x", bearer: admin}), http.StatusBadRequest, `"x"`)
	r = f.do(authReq{method: "DELETE", path: fmt.Sprintf("/api/v1/tokens/%d", wallID), bearer: admin})
	if r.code != http.StatusOK {
		t.Fatalf("admin revoking: %d %s", r.code, r.body)
	}
	wantError(t, "revoked token", f.do(authReq{method: "GET", path: "/t/read", bearer: wall}), http.StatusUnauthorized, "revoked")

	// A token above its owner's role after a demotion stops at once.
	tok, rec, err := f.auth.NewAPIToken(ctx, "ada", APITokenSpec{Name: "ops", Role: RoleAdmin})
	if err != nil || rec.Role != RoleAdmin {
		t.Fatalf("admin token: %+v, %v", rec, err)
	}
	if r := f.do(authReq{method: "GET", path: "/t/admin", bearer: tok}); r.code != http.StatusOK {
		t.Fatalf("admin token: %d %s", r.code, r.body)
	}
	if err := f.db.SetUserRole(ctx, "ada", RoleOperator, nil, f.clock.Now()); err != nil {
		t.Fatal(err)
	}
	wantError(t, "admin token of a demoted owner", f.do(authReq{method: "GET", path: "/t/read", bearer: tok}), http.StatusUnauthorized)

	lines := auditActions(t, f.db, wall, writer, tok)
	for _, want := range []struct{ prefix, word string }{
		{"token.create olga", "role viewer, scopes [read:/t/read]"},
		{"request.forbidden olga", "API token of role admin"},
		{"request.forbidden olga", "scopes"},
		{"token.revoke ada", "revoked"},
		{"request.refused ", "revoked"},
	} {
		if !hasAudit(lines, want.prefix, want.word) {
			t.Errorf("no audit entry %q saying %q in\n%s", want.prefix, want.word, strings.Join(lines, "\n"))
		}
	}
}

func TestTokenScopesMatchPathPrefixes(t *testing.T) {
	for _, c := range []struct {
		scopes       []string
		method, path string
		want         bool
	}{
		{nil, "POST", "/api/v1/users", true},
		{[]string{"/api/v1/alerts"}, "POST", "/api/v1/alerts/7/ack", true},
		{[]string{"/api/v1/alerts"}, "GET", "/api/v1/alerts", true},
		{[]string{"/api/v1/alerts"}, "GET", "/api/v1/alertsx", false},
		{[]string{"/api/v1/alerts/"}, "GET", "/api/v1/alerts/7", true},
		{[]string{"read:/api/v1/alerts"}, "GET", "/api/v1/alerts/7", true},
		{[]string{"read:/api/v1/alerts"}, "POST", "/api/v1/alerts/7/ack", false},
		{[]string{"read:/api/v1/counts", "/ws"}, "GET", "/ws", true},
		{[]string{"read:/api/v1/counts", "/ws"}, "GET", "/api/v1/users", false},
	} {
		r, _ := http.NewRequest(c.method, "http://x"+c.path, nil)
		if got := scopesAllow(c.scopes, r); got != c.want {
			t.Errorf("scopes %v, %s %s: %v, want %v", c.scopes, c.method, c.path, got, c.want)
		}
	}
	for _, bad := range [][]string{{"alerts"}, {"read:alerts"}, {"/a/../b"}, {"/a?x=1"}, {"/a", "/a"}, {strings.Repeat("/a", 100)}} {
		if err := checkScopes(bad); err == nil {
			t.Errorf("scopes %q accepted", bad)
		}
	}
	for owner, ok := range map[string][]string{
		RoleAdmin:    {RoleAdmin, RoleOperator, RoleGuard, RolePlanner, RoleViewer},
		RoleOperator: {RoleOperator, RoleViewer},
		RoleGuard:    {RoleGuard},
		RolePlanner:  {RolePlanner},
		RoleViewer:   {RoleViewer},
	} {
		for _, tok := range []string{RoleAdmin, RoleOperator, RoleGuard, RolePlanner, RoleViewer} {
			want := strings.Contains(strings.Join(ok, ","), tok)
			if got := roleCovers(owner, tok); got != want {
				t.Errorf("roleCovers(%s, %s) = %v, want %v", owner, tok, got, want)
			}
		}
	}
}
