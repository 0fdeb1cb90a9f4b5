package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"flowwatch/internal/config"
	"flowwatch/internal/secrets"
	"flowwatch/internal/store"
)

// importSite is a config with clear secrets of every kind: a camera's
// password in its URLs, one in its password field, an unused one in a URL
// beside a username field, and a webhook secret.
const importSite = `# site config
console:
  listen: 127.0.0.1:0   # the console
storage:
  data_dir: DATA
security:
  allow_loopback: true
cameras:
  # the gate
  - name: gate
    title: Gate 东门
    url: rtsp://admin:p%40ss:w0rd-gate@10.0.0.5:554/stream1
    live_url: rtsp://admin:p%40ss:w0rd-gate@10.0.0.5:554/stream2
    zones:
      - name: left
        polygon: [[0, 0], [0.5, 0], [0.5, 1], [0, 1]]
  - name: hall
    url: rtsp://10.0.0.6/s
    username: "123"
    password: 'hunter2 "hall"'  # keep this comment
  - name: yard
    url: rtsp://old:unused-yard-pass@10.0.0.7/s
    username: ops
notify:
  webhooks:
    - name: ops
      url: http://127.0.0.1:9/hook
      secret: whsec-ops-0123456789
      min_level: info
`

// importSecretValues are importSite's secrets in clear.
var importSecretValues = []string{"p@ss:w0rd-gate", "p%40ss:w0rd-gate", `hunter2 "hall"`, "unused-yard-pass", "whsec-ops-0123456789"}

// writeSite writes a config whose data folder is under dir.
func writeSite(t *testing.T, dir, body string, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(dir, "site.yaml")
	body = strings.ReplaceAll(body, "DATA", filepath.Join(dir, "data"))
	if err := os.WriteFile(path, []byte(body), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return path
}

// setKey sets a fresh secret key in the environment and returns it.
func setKey(t *testing.T) string {
	t.Helper()
	var out bytes.Buffer
	if err := run(context.Background(), []string{"secrets", "keygen"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	key := strings.TrimSpace(out.String())
	if raw, err := base64.StdEncoding.DecodeString(key); err != nil || len(raw) != secrets.KeySize {
		t.Fatalf("keygen printed %q: %d bytes, %v", key, len(raw), err)
	}
	t.Setenv(secrets.KeyFileEnv, "")
	t.Setenv(secrets.KeyEnv, key)
	return key
}

// readDB returns the bytes of a SQLite database with its WAL and shared
// memory files.
func readDB(t *testing.T, path string) []byte {
	t.Helper()
	var out []byte
	for _, suffix := range []string{"", "-wal", "-shm"} {
		b, err := os.ReadFile(path + suffix)
		if err != nil && suffix == "" {
			t.Fatal(err)
		}
		out = append(out, b...)
	}
	return out
}

func assertNoSecrets(t *testing.T, what string, data []byte, values []string) {
	t.Helper()
	for _, v := range values {
		for _, form := range []string{v, base64.StdEncoding.EncodeToString([]byte(v)), base64.RawURLEncoding.EncodeToString([]byte(v))} {
			if bytes.Contains(data, []byte(form)) {
				t.Errorf("%s holds a known secret (%q as %q)", what, v, form)
			}
		}
	}
}

func TestSecretsImportRewritesConfigKeepingCommentsAndOrder(t *testing.T) {
	dir := t.TempDir()
	setKey(t)
	path := writeSite(t, dir, importSite, 0o640)
	ctx := context.Background()

	// before the import, serve warns about the clear secrets by key
	clear, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	var warned bytes.Buffer
	if err := os.MkdirAll(clear.Storage.DataDir, 0o750); err != nil {
		t.Fatal(err)
	}
	pre, err := store.Open(dbPath(clear))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := resolveSecrets(ctx, clear, pre, func(string) string { return "" }, slog.New(slog.NewTextHandler(&warned, nil))); err != nil {
		t.Fatalf("clear secrets need no key: %v", err)
	}
	pre.Close()
	for _, want := range []string{"level=WARN", "flowwatch secrets import", "cameras[0].url (gate)", "cameras[0].live_url (gate)",
		"cameras[1].password (hall)", "cameras[2].url (yard)", "notify.webhooks[0].secret (ops)"} {
		if !strings.Contains(warned.String(), want) {
			t.Errorf("warning %q lacks %q", warned.String(), want)
		}
	}
	assertNoSecrets(t, "the warning", warned.Bytes(), importSecretValues)

	var out bytes.Buffer
	if err := run(ctx, []string{"secrets", "import", "-c", path}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`camera "gate" password (from url) into secret camera.gate`, `camera "hall" password into secret camera.hall`,
		`webhook "ops" secret into secret webhook.ops`, `dropped camera "yard"'s password from url`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("import printed %q, want %q", out.String(), want)
		}
	}
	assertNoSecrets(t, "import's output", out.Bytes(), importSecretValues)

	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o640 {
		t.Fatalf("config mode after import: %v, %v, want 0640 kept", st.Mode(), err)
	}
	data, _ := os.ReadFile(path)
	assertNoSecrets(t, "the rewritten config", data, importSecretValues)
	text := string(data)
	for _, want := range []string{"# site config\n", "# the console", "  # the gate\n", "# keep this comment", "title: Gate 东门",
		`password: "secret:camera.gate"`, `password: "secret:camera.hall"`, `secret: "secret:webhook.ops"`,
		"url: rtsp://10.0.0.5:554/stream1", "live_url: rtsp://10.0.0.5:554/stream2", "url: rtsp://10.0.0.7/s",
		"polygon: [[0, 0], [0.5, 0], [0.5, 1], [0, 1]]"} {
		if !strings.Contains(text, want) {
			t.Errorf("rewritten config lacks %q:\n%s", want, text)
		}
	}
	// order survives: each camera's keys and the sections stay in place
	order := []string{"console:", "storage:", "security:", "cameras:", "name: gate", "url: rtsp://10.0.0.5", "username: admin",
		"password: \"secret:camera.gate\"", "live_url:", "zones:", "name: hall", "name: yard", "notify:", "min_level: info"}
	last := -1
	for _, o := range order {
		i := strings.Index(text, o)
		if i <= last {
			t.Fatalf("%q is out of order in the rewritten config:\n%s", o, text)
		}
		last = i
	}
	if leftovers, _ := filepath.Glob(filepath.Join(dir, ".site.yaml.*")); len(leftovers) > 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}

	// serve's resolution gives back what the config said in clear
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if left := clearSecrets(cfg); len(left) > 0 {
		t.Fatalf("clear secrets left: %v", left)
	}
	db, err := store.Open(dbPath(cfg))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var logs bytes.Buffer
	opened, err := resolveSecrets(ctx, cfg, db, os.Getenv, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	gate, hall, yard, hook := opened.Cameras[0], opened.Cameras[1], opened.Cameras[2], opened.Notify.Webhooks[0]
	if gate.Username != "admin" || gate.Password != "p@ss:w0rd-gate" || hall.Username != "123" || hall.Password != `hunter2 "hall"` ||
		yard.Username != "ops" || yard.Password != "" || hook.Secret != "whsec-ops-0123456789" {
		t.Fatalf("resolved: gate %s/%s hall %s/%s yard %s/%s hook %s", gate.Username, gate.Password, hall.Username, hall.Password,
			yard.Username, yard.Password, hook.Secret)
	}
	if cfg.Cameras[0].Password != "secret:camera.gate" || cfg.Notify.Webhooks[0].Secret != "secret:webhook.ops" {
		t.Fatal("resolveSecrets changed the config it was given")
	}
	assertNoSecrets(t, "the log", logs.Bytes(), importSecretValues)
	raw := readDB(t, dbPath(cfg))
	assertNoSecrets(t, "the database", raw, importSecretValues)

	// audit names what moved, never a value
	entries, err := db.AuditEntries(ctx, store.AuditFilter{})
	if err != nil || len(entries) != 3 || entries[0].Action != "secret.import" {
		t.Fatalf("audit after import: %+v, %v", entries, err)
	}

	// importing again finds nothing and leaves the file alone
	out.Reset()
	if err := run(ctx, []string{"secrets", "import", "-c", path}, &out, io.Discard); err != nil || !strings.Contains(out.String(), "nothing to import") {
		t.Fatalf("second import: %q, %v", out.String(), err)
	}
	if again, _ := os.ReadFile(path); !bytes.Equal(again, data) {
		t.Fatal("a second import changed the config")
	}
}

func TestSecretsImportRefusesWithoutKeyOrWithMixedCredentials(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(secrets.KeyEnv, "")
	t.Setenv(secrets.KeyFileEnv, "")
	path := writeSite(t, dir, importSite, 0o600)
	before, _ := os.ReadFile(path)
	err := run(context.Background(), []string{"secrets", "import", "-c", path}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), secrets.KeyEnv) || !strings.Contains(err.Error(), secrets.KeyFileEnv) {
		t.Fatalf("import without a key: %v, want an error naming both variables", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(after, before) {
		t.Fatal("import without a key changed the config")
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "flowwatch.db")); err == nil {
		t.Error("import without a key created a database")
	}

	setKey(t)
	mixed := strings.Replace(importSite, "live_url: rtsp://admin:p%40ss:w0rd-gate@", "live_url: rtsp://viewer:other-pass@", 1)
	path = writeSite(t, dir, mixed, 0o600)
	before, _ = os.ReadFile(path)
	err = run(context.Background(), []string{"secrets", "import", "-c", path}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), `camera "gate"`) || strings.Contains(err.Error(), "other-pass") {
		t.Fatalf("mixed credentials: %v, want an error naming the camera, not the password", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(after, before) {
		t.Fatal("a refused import changed the config")
	}
	if err := run(context.Background(), []string{"secrets", "import"}, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "-c") {
		t.Fatalf("import of the embedded demo: %v", err)
	}
}

func TestSecretsSetListRotateAndResolveErrors(t *testing.T) {
	dir := t.TempDir()
	oldKey := setKey(t)
	site := strings.Replace(importSite, `password: 'hunter2 "hall"'  # keep this comment`, `password: "secret:hall-pass"`, 1)
	site = strings.Replace(site, "secret: whsec-ops-0123456789", `secret: "secret:hook"`, 1)
	path := writeSite(t, dir, site, 0o600)
	ctx := context.Background()
	set := func(name, value string) error {
		secretsStdin = strings.NewReader(value)
		defer func() { secretsStdin = os.Stdin }()
		var out bytes.Buffer
		err := run(ctx, []string{"secrets", "set", name, "-c", path}, &out, io.Discard)
		assertNoSecrets(t, "set's output", out.Bytes(), []string{"hall-value-42"})
		return err
	}
	if err := set("hall-pass", "hall-value-42\n"); err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][2]string{{"bad name", "x"}, {"empty", "\n"}, {"ref", "secret:other"}} {
		if err := set(bad[0], bad[1]); err == nil {
			t.Errorf("set %q %q taken", bad[0], bad[1])
		}
	}
	if err := run(ctx, []string{"secrets", "set", "-c", path}, io.Discard, io.Discard); err == nil {
		t.Error("set without a name taken")
	}

	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(dbPath(cfg))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	// the webhook's secret is not stored yet: the error names the webhook
	// and the secret
	_, err = resolveSecrets(ctx, cfg, db, os.Getenv, log)
	if err == nil || !strings.Contains(err.Error(), `webhook "ops"`) || !strings.Contains(err.Error(), `"hook"`) {
		t.Fatalf("unknown secret: %v, want the webhook and the secret named", err)
	}
	if err := set("hook", "hook-value-43"); err != nil {
		t.Fatal(err)
	}
	opened, err := resolveSecrets(ctx, cfg, db, os.Getenv, log)
	if err != nil || opened.Cameras[1].Password != "hall-value-42" || opened.Notify.Webhooks[0].Secret != "hook-value-43" {
		t.Fatalf("resolve: %v", err)
	}
	// no key: a clear error naming the variables, never clear text
	noKey := func(string) string { return "" }
	if _, err := resolveSecrets(ctx, cfg, db, noKey, log); err == nil || !strings.Contains(err.Error(), secrets.KeyEnv) ||
		!strings.Contains(err.Error(), secrets.KeyFileEnv) || !strings.Contains(err.Error(), `camera "hall"`) {
		t.Fatalf("no key: %v", err)
	}
	// a config without references needs no key
	plain := *cfg
	plain.Cameras = nil
	plain.Notify.Webhooks = nil
	if _, err := resolveSecrets(ctx, &plain, db, noKey, log); err != nil {
		t.Fatalf("no references, no key: %v", err)
	}
	// the wrong key: an error naming the secret and the key ID
	other, _ := secrets.NewKey()
	wrongKey := func(k string) string {
		if k == secrets.KeyEnv {
			return other
		}
		return ""
	}
	if _, err := resolveSecrets(ctx, cfg, db, wrongKey, log); err == nil || !strings.Contains(err.Error(), "hall-pass") {
		t.Fatalf("wrong key: %v", err)
	}
	// a reference without any username is refused
	nouser := *cfg
	nouser.Cameras = append([]config.Camera(nil), cfg.Cameras...)
	nouser.Cameras[1].Username = ""
	if _, err := resolveSecrets(ctx, &nouser, db, os.Getenv, log); err == nil || !strings.Contains(err.Error(), "username") {
		t.Fatalf("no username: %v", err)
	}

	var out bytes.Buffer
	if err := run(ctx, []string{"secrets", "list", "-c", path}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"hall-pass", "hook", `camera "hall" password`, `webhook "ops" secret`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("list printed %q, want %q", out.String(), want)
		}
	}
	assertNoSecrets(t, "list's output", out.Bytes(), []string{"hall-value-42", "hook-value-43"})

	// rotation: a new key first, the old one after, then rotate
	newKey, _ := secrets.NewKey()
	t.Setenv(secrets.KeyEnv, newKey+","+oldKey)
	out.Reset()
	if err := run(ctx, []string{"secrets", "rotate", "-c", path}, &out, io.Discard); err != nil || !strings.Contains(out.String(), "2 of 2") {
		t.Fatalf("rotate: %q, %v", out.String(), err)
	}
	t.Setenv(secrets.KeyEnv, newKey)
	if opened, err := resolveSecrets(ctx, cfg, db, os.Getenv, log); err != nil || opened.Notify.Webhooks[0].Secret != "hook-value-43" {
		t.Fatalf("after rotation, with the new key only: %v", err)
	}
	if err := run(ctx, []string{"secrets", "delete", "hook", "-c", path}, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), `webhook "ops"`) {
		t.Fatalf("delete of a secret in use: %v", err)
	}
	raw := readDB(t, dbPath(cfg))
	assertNoSecrets(t, "the database", raw, []string{"hall-value-42", "hook-value-43"})
}
