package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"flowwatch/alerting"
	"flowwatch/internal/secrets"
	"flowwatch/samples"
)

// syncBuffer is a bytes.Buffer safe for the writers of a running serve.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}

// secretForms are the ways a secret could leak: as is, URL-escaped, and
// in base64 (standard and URL, padded or not) and hex.
func secretForms(v string) []string {
	return []string{v, url.QueryEscape(v), url.PathEscape(v), url.UserPassword("u", v).String()[2:],
		base64.StdEncoding.EncodeToString([]byte(v)), base64.RawStdEncoding.EncodeToString([]byte(v)),
		base64.URLEncoding.EncodeToString([]byte(v)), base64.RawURLEncoding.EncodeToString([]byte(v)),
		hex.EncodeToString([]byte(v))}
}

// leak reports whether data holds v in one of secretForms, and which.
func leak(data []byte, v string) (string, bool) {
	for _, form := range secretForms(v) {
		if bytes.Contains(data, []byte(form)) {
			return form, true
		}
	}
	return "", false
}

// TestSecretSweepFullRun runs a site whose camera password and webhook
// secret are imported into the encrypted store, then serves it against
// a simulator that requires the password and a webhook receiver that
// checks signatures. It proves the opened secrets are really used (the
// camera goes live, the deliveries are correctly signed) and that no API
// answer, log line, config file or database byte holds them, in clear or
// in base64.
func TestSecretSweepFullRun(t *testing.T) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("no ffmpeg")
	}
	const (
		camUser   = "cam-viewer"
		camPass   = "Cam-S3cret@pass:7781"
		wrongPass = "Wrong-Cam-pass-5519"
		hookPass  = "whsec-Sweep-0c7d2e9a41"
		adminPass = "Tq8#vLm2-Rz9!pWd-sweep"
	)
	known := []string{camPass, wrongPass, hookPass}
	dir := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", filepath.Join(dir, "cache"))
	t.Setenv(adminPasswordEnv, adminPass)
	setKey(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// a camera that requires credentials
	clip := filepath.Join(dir, "gate.mp4")
	ff := exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=10", "-t", "3",
		"-c:v", "libx264", "-g", "10", "-bf", "0", "-pix_fmt", "yuv420p", clip)
	if out, err := ff.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	prepared, err := samples.Prepare(ctx, clip, filepath.Join(dir, "cache"))
	if err != nil {
		t.Fatal(err)
	}
	var simLog syncBuffer
	rtspPort := freePort(t)
	sim := samples.NewSimulator(samples.SimulatorConfig{Listen: fmt.Sprintf("127.0.0.1:%d", rtspPort), Loop: true,
		Username: camUser, Password: camPass, Logger: slog.New(slog.NewTextHandler(&simLog, nil))})
	if err := sim.AddPath("gate", prepared); err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	simDone := make(chan struct{})
	go func() { defer close(simDone); _ = sim.Run(ctx) }()
	defer func() { cancel(); sim.Close(); <-simDone }()

	// a webhook receiver that checks the signature with the known secret
	var hookMu sync.Mutex
	var signedOK, signedBad int
	var hookBodies bytes.Buffer
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		m := hmac.New(sha256.New, []byte(hookPass))
		m.Write([]byte(r.Header.Get(alerting.WebhookTimestampHeader) + "."))
		m.Write(body)
		want := "sha256=" + hex.EncodeToString(m.Sum(nil))
		hookMu.Lock()
		defer hookMu.Unlock()
		hookBodies.Write(body)
		for k, v := range r.Header {
			if k != alerting.WebhookSignatureHeader {
				fmt.Fprintf(&hookBodies, "%s: %s\n", k, v)
			}
		}
		if hmac.Equal([]byte(r.Header.Get(alerting.WebhookSignatureHeader)), []byte(want)) {
			signedOK++
		} else {
			signedBad++
		}
	}))
	defer receiver.Close()

	// the site: gate's credentials in its URL, side's wrong password in
	// its field (it never connects, and raises a camera alert), the
	// webhook's secret in clear
	httpPort := freePort(t)
	camURL := fmt.Sprintf("rtsp://%s:%s@127.0.0.1:%d/gate", camUser, url.PathEscape(camPass), rtspPort)
	cfgText := fmt.Sprintf(`# sweep site
console:
  listen: 127.0.0.1:%d
storage:
  data_dir: %s
vision:
  model: %s
security:
  allow_loopback: true
cameras:
  - name: gate
    url: %s
    transport: tcp
    analysis_fps: 2
    zones:
      - name: left
        polygon: [[0, 0], [0.5, 0], [0.5, 1], [0, 1]]
  - name: side
    url: rtsp://127.0.0.1:%d/gate
    username: %s
    password: %s
    transport: tcp
    backoff_min: 200ms
    backoff_max: 1s
    zones:
      - name: whole
        polygon: [[0, 0], [1, 0], [1, 1], [0, 1]]
rules:
  camera_offline: 2s
notify:
  webhooks:
    - name: ops
      url: %s/hook
      secret: %s
`, httpPort, filepath.Join(dir, "data"), testModelDir(t), camURL, rtspPort, camUser, wrongPass, receiver.URL, hookPass)
	cfgPath := filepath.Join(dir, "site.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}

	var importOut, importErr bytes.Buffer
	if err := run(ctx, []string{"secrets", "import", "-c", cfgPath}, &importOut, &importErr); err != nil {
		t.Fatalf("import: %v\n%s", err, importErr.String())
	}
	t.Logf("import:\n%s", importOut.String())

	var stdout, stderr syncBuffer
	serveCtx, stopServe := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- run(serveCtx, []string{"serve", "-c", cfgPath}, &stdout, &stderr) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		awaitServeStop(t, stopServe, done, 15)
	}
	defer stop()

	// wait until gate is live through the opened password, and side's
	// camera alert reached the webhook, signed with the opened secret
	base := fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	deadline := time.Now().Add(60 * time.Second)
	live := false
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			stopped = true
			t.Fatalf("serve ended early: %v\nserve's log:\n%s", err, stderr.Bytes())
		case <-time.After(300 * time.Millisecond):
		}
		var h struct {
			CamerasLive int `json:"cameras_live"`
		}
		if json.Unmarshal([]byte(get(base+"/healthz")), &h) == nil && h.CamerasLive >= 1 {
			live = true
		}
		hookMu.Lock()
		ok := signedOK
		hookMu.Unlock()
		if live && ok > 0 {
			break
		}
	}
	hookMu.Lock()
	ok, bad := signedOK, signedBad
	hookMu.Unlock()
	if !live || ok == 0 || bad > 0 {
		t.Fatalf("within 60 s: gate live %v, correctly signed deliveries %d, badly signed %d\nserve's log:\n%s", live, ok, bad, stderr.Bytes())
	}

	// every answer of the API, as the admin
	var answers bytes.Buffer
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	record := func(method, path string, body io.Reader, header map[string]string) []byte {
		t.Helper()
		req, err := http.NewRequest(method, base+path, body)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		fmt.Fprintf(&answers, "%s %s: %s\n", method, path, resp.Status)
		for k, v := range resp.Header {
			fmt.Fprintf(&answers, "%s: %s\n", k, v)
		}
		answers.Write(b)
		answers.WriteByte('\n')
		if resp.StatusCode >= 500 || resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
			t.Logf("%s %s: %s %s", method, path, resp.Status, b)
		}
		return b
	}
	login, _ := json.Marshal(map[string]string{"username": "admin", "password": adminPass})
	var session struct {
		CSRF string `json:"csrf"`
	}
	if err := json.Unmarshal(record("POST", "/api/v1/session", bytes.NewReader(login), map[string]string{"Content-Type": "application/json"}), &session); err != nil || session.CSRF == "" {
		t.Fatalf("login: %v", err)
	}
	post := map[string]string{"X-CSRF-Token": session.CSRF}
	var tests [2]struct {
		OK    bool   `json:"ok"`
		Error string `json:"error"`
	}
	for i, cam := range []string{"gate", "side"} {
		if err := json.Unmarshal(record("POST", "/api/v1/cameras/"+cam+"/test", nil, post), &tests[i]); err != nil {
			t.Fatalf("camera test of %s: %v", cam, err)
		}
	}
	if !tests[0].OK || tests[1].OK || tests[1].Error == "" {
		t.Errorf("camera tests: gate %+v (want ok: the opened password), side %+v (want a failure: the wrong one)", tests[0], tests[1])
	}
	for _, p := range []string{"/healthz", "/metrics", "/", "/public", "/api/v1/public/comfort", "/api/v1/session",
		"/api/v1/cameras", "/api/v1/cameras/gate/zones", "/api/v1/cameras/side/zones",
		"/api/v1/cameras/gate/snapshot", "/api/v1/cameras/gate/density", "/api/v1/cameras/side/snapshot",
		"/api/v1/users", "/api/v1/audit", "/api/v1/audit?format=csv", "/api/v1/areas", "/api/v1/alerts",
		"/api/v1/alert-deliveries/dead", "/api/v1/counts", "/api/v1/counts?camera=gate", "/api/v1/heatmaps/gate"} {
		b := record("GET", p, nil, nil)
		if p != "/api/v1/alerts" {
			continue
		}
		var alerts []struct {
			ID int64 `json:"id"`
		}
		var wrapped struct {
			Alerts []struct {
				ID int64 `json:"id"`
			} `json:"alerts"`
		}
		if json.Unmarshal(b, &alerts) != nil && json.Unmarshal(b, &wrapped) == nil {
			alerts = wrapped.Alerts
		}
		if len(alerts) == 0 {
			t.Errorf("no alert listed, though side's camera alert was delivered: %s", b)
		}
		for _, a := range alerts {
			record("GET", fmt.Sprintf("/api/v1/alerts/%d", a.ID), nil, nil)
		}
	}
	if !bytes.Contains(answers.Bytes(), []byte("camera.test")) {
		t.Error("the audit log shows no camera test")
	}

	stop()
	cfgAfter, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`password: "secret:camera.gate"`, `password: "secret:camera.side"`, `secret: "secret:webhook.ops"`, "# sweep site"} {
		if !bytes.Contains(cfgAfter, []byte(want)) {
			t.Errorf("the imported config lacks %q:\n%s", want, cfgAfter)
		}
	}
	dbBytes := readDB(t, filepath.Join(dir, "data", "flowwatch.db"))
	hookMu.Lock()
	delivered := hookBodies.Bytes()
	hookMu.Unlock()
	swept := map[string][]byte{
		"the API answers":            answers.Bytes(),
		"serve's log (stderr)":       stderr.Bytes(),
		"serve's stdout":             stdout.Bytes(),
		"import's output":            append(importOut.Bytes(), importErr.Bytes()...),
		"the config after import":    cfgAfter,
		"the database files":         dbBytes,
		"the webhook deliveries":     delivered,
		"the simulator's log":        simLog.Bytes(),
		"the data folder file names": []byte(strings.Join(listFiles(t, dir), "\n")),
	}
	// the sweep itself finds them where they were: in the config as
	// first written
	for _, v := range known {
		if _, found := leak([]byte(cfgText), v); !found {
			t.Fatalf("the sweep does not find %q in the config that held it", v)
		}
	}
	for what, data := range swept {
		if len(data) == 0 && what != "serve's stdout" {
			t.Errorf("%s: nothing captured", what)
		}
		for _, v := range known {
			if form, found := leak(data, v); found {
				t.Errorf("%s holds a known secret (%q as %q)", what, v, form)
			}
		}
	}
	if os.Getenv("FLOWWATCH_SWEEP_LOG") != "" {
		t.Logf("serve's log:\n%s", stderr.Bytes())
	}
	if !bytes.Contains(stderr.Bytes(), []byte("secrets opened")) || !bytes.Contains(stderr.Bytes(), []byte(secrets.KeyID(mustKey(t)))) {
		t.Errorf("serve's log does not say which key opened the secrets")
	}
	t.Logf("swept %d bytes of API answers, %d of logs, %d of database; %d signed deliveries", len(answers.Bytes()),
		len(stderr.Bytes()), len(dbBytes), ok)
}

// mustKey is the raw key in the environment.
func mustKey(t *testing.T) []byte {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(os.Getenv(secrets.KeyEnv))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// listFiles names every file under dir.
func listFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, _ os.DirEntry, err error) error {
		out = append(out, p)
		return nil
	})
	return out
}
