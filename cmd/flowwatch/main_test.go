package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"flowwatch/internal/config"
	"flowwatch/internal/store"
	"flowwatch/samples"
	"flowwatch/vision"
)

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func TestVersionAndUnknownCommand(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"version"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "flowwatch ") {
		t.Errorf("version printed %q", out.String())
	}
	err := run(context.Background(), []string{"frobnicate"}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), `unknown command "frobnicate"`) {
		t.Errorf("unknown command: err = %v", err)
	}
}

func TestParseFlagsInterleaved(t *testing.T) {
	for _, args := range [][]string{
		{"a.mp4", "--loop=false", "b.mp4"},
		{"--loop=false", "a.mp4", "b.mp4"},
		{"a.mp4", "b.mp4", "--loop=false"},
	} {
		fs := newFlagSet("t", io.Discard)
		loop := fs.Bool("loop", true, "")
		pos, err := parseFlags(fs, args)
		if err != nil || *loop || strings.Join(pos, ",") != "a.mp4,b.mp4" {
			t.Errorf("%v: positional %v loop %v err %v", args, pos, *loop, err)
		}
	}
}

func TestServeRefusesBadConfigWithFileAndLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "site.yaml")
	body := "console:\n  listen: 127.0.0.1:0\ncameras:\n  - name: gate\n    url: rtsp://127.0.0.1:1/x\n    transport: pigeon\n"
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	err := run(context.Background(), []string{"serve", "-c", path}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), path+":6: cameras[0].transport") {
		t.Fatalf("err = %v, want one naming %s:6 and the key", err, path)
	}
}

// awaitServeStop cancels a serve run with cancel and waits up to seconds
// for its answer on done: an error, or no answer in time, fails t.
func awaitServeStop(t *testing.T, cancel context.CancelFunc, done <-chan error, seconds int) {
	t.Helper()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve: %v", err)
		}
	case <-time.After(time.Duration(seconds) * time.Second):
		t.Errorf("serve did not stop within %d s of cancel", seconds)
	}
}

// TestServeIngestsSimulatedCamera runs serve with its built-in simulator
// serving a short clip, and checks through /healthz and /metrics that the
// camera goes live and frames are decoded for analysis.
func TestServeIngestsSimulatedCamera(t *testing.T) {
	dir := t.TempDir()
	clip := filepath.Join(dir, "gate.mp4")
	ff := exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=10", "-t", "3",
		"-c:v", "libx264", "-g", "10", "-bf", "0", "-pix_fmt", "yuv420p", clip)
	if out, err := ff.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	rtspPort, httpPort := freePort(t), freePort(t)
	cfg := fmt.Sprintf(`console:
  listen: 127.0.0.1:%d
security:
  allow_loopback: true
storage:
  data_dir: %s
vision:
  model: %s
simulator:
  enabled: true
  listen: 127.0.0.1:%d
  videos: [%s]
cameras:
  - name: gate
    url: rtsp://127.0.0.1:%d/gate
    transport: tcp
    analysis_fps: 5
    zones:
      - name: left
        polygon: [[0, 0], [0.5, 0], [0.5, 1], [0, 1]]
`, httpPort, filepath.Join(dir, "data"), testModelDir(t), rtspPort, clip, rtspPort)
	cfgPath := filepath.Join(dir, "site.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("XDG_CACHE_HOME", filepath.Join(dir, "cache"))

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"serve", "-c", cfgPath}, io.Discard, t.Output()) }()
	defer awaitServeStop(t, cancel, done, 10)

	base := fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	frames := regexp.MustCompile(`(?m)^flowwatch_analysis_frames_total\{camera="gate"\} (\d+)$`)
	people := regexp.MustCompile(`(?m)^flowwatch_zone_people\{camera="gate",zone="left"\} ([0-9.e+-]+)$`)
	deadline := time.Now().Add(30 * time.Second)
	var lastHealth, lastMetrics string
	for time.Now().Before(deadline) {
		time.Sleep(300 * time.Millisecond)
		lastHealth = get(base + "/healthz")
		lastMetrics = get(base + "/metrics")
		var h struct {
			Cameras     int `json:"cameras"`
			CamerasLive int `json:"cameras_live"`
		}
		if json.Unmarshal([]byte(lastHealth), &h) != nil {
			continue
		}
		m := frames.FindStringSubmatch(lastMetrics)
		if h.Cameras == 1 && h.CamerasLive == 1 && m != nil && people.MatchString(lastMetrics) {
			if n, _ := strconv.Atoi(m[1]); n >= 5 {
				if _, err := os.Stat(filepath.Join(dir, "data", "flowwatch.db")); err != nil {
					t.Errorf("store not created: %v", err)
				}
				return
			}
		}
	}
	t.Fatalf("camera not live with analysed and counted frames within 30 s (serve's log is above)\nhealthz: %s\nmetrics (analysis): %v",
		lastHealth, frames.FindString(lastMetrics))
}

// testModelDir is the absolute folder of the tiny density model made for
// tests.
func testModelDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(testModel)
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func get(url string) string {
	resp, err := http.Get(url)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// startDemo runs the embedded demo config as make run does, on free ports
// and a data directory of its own, edited by edit when not nil, until the
// test ends. It answers the console's base URL, the directory holding the
// config and the data, and when it started. It skips the test when the
// model, ONNX Runtime or the sample media are missing.
func startDemo(t *testing.T, edit func(yaml string) string) (base, dir string, start time.Time) {
	t.Helper()
	if _, err := vision.ResolveModelDir(config.DefaultModel); err != nil {
		t.Skipf("no default model here (%v): run make setup and test through make test", err)
	}
	if vision.DefaultORTLibrary() == "" {
		t.Skip("no ONNX Runtime library: run make setup")
	}
	if _, err := os.Stat(filepath.Join(samples.MediaDir(), "synth-dense.mp4")); err != nil {
		t.Skipf("no sample media: run make setup (%v)", err)
	}
	dir = t.TempDir()
	rtspPort, httpPort := freePort(t), freePort(t)
	demo := strings.ReplaceAll(string(config.DemoYAML()), "127.0.0.1:8554", fmt.Sprintf("127.0.0.1:%d", rtspPort))
	if edit != nil {
		demo = edit(demo)
	}
	cfgPath := filepath.Join(dir, "demo.yaml")
	if err := os.WriteFile(cfgPath, []byte(demo), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	start = time.Now()
	go func() {
		done <- run(ctx, []string{"serve", "-c", cfgPath, "--listen", fmt.Sprintf("127.0.0.1:%d", httpPort),
			"--data", filepath.Join(dir, "data")}, io.Discard, io.Discard)
	}()
	t.Cleanup(func() { awaitServeStop(t, cancel, done, 15) })
	return fmt.Sprintf("http://127.0.0.1:%d", httpPort), dir, start
}

// TestDemoRaisesAlertWithinAMinute runs the embedded demo (its three sample
// cameras from the built-in simulator, the default model) as make run
// does, on free ports, and waits for a real alert from a sample camera:
// the demo's square holds about 180 people for 220 places.
func TestDemoRaisesAlertWithinAMinute(t *testing.T) {
	base, dir, start := startDemo(t, nil)
	changes := regexp.MustCompile(`(?m)^flowwatch_alert_changes_total (\d+)$`)
	for time.Since(start) < time.Minute {
		time.Sleep(time.Second)
		m := changes.FindStringSubmatch(get(base + "/metrics"))
		if m == nil || m[1] == "0" {
			continue
		}
		db, err := store.Open(filepath.Join(dir, "data", "flowwatch.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		open, err := db.OpenAlerts(context.Background())
		if err != nil || len(open) == 0 {
			t.Fatalf("metrics count an alert change but the store has no open alert: %v", err)
		}
		a := open[0]
		t.Logf("after %s: alert %d %s %s %s: %s", time.Since(start).Round(time.Second), a.ID, a.Rule, a.Target, a.Level, a.MessageEN)
		if !strings.HasPrefix(string(a.Target), "area:") && !strings.HasPrefix(string(a.Target), "zone:") {
			t.Fatalf("first alert is on %s, want a counted area or zone of a sample camera", a.Target)
		}
		var pub struct {
			Areas []struct {
				Area  string `json:"area"`
				Known bool   `json:"known"`
			} `json:"areas"`
		}
		if err := json.Unmarshal([]byte(get(base+"/api/v1/public/comfort")), &pub); err != nil || len(pub.Areas) != 3 {
			t.Fatalf("public comfort: %v %+v", err, pub)
		}
		// live video and the alerts API are there, behind the login
		for _, path := range []string{"/whep/vtest", "/api/v1/alerts"} {
			method := "POST"
			if path == "/api/v1/alerts" {
				method = "GET"
			}
			req, _ := http.NewRequest(method, base+path, strings.NewReader("v=0"))
			req.Header.Set("Content-Type", "application/sdp")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("%s %s without login: %d, want 401", method, path, resp.StatusCode)
			}
		}
		return
	}
	t.Fatal("no alert within a minute of starting the demo")
}
