package config

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestDemoLoadsWithDefaults(t *testing.T) {
	c, err := Demo()
	if err != nil {
		t.Fatalf("demo config: %v", err)
	}
	if !c.Simulator.Enabled {
		t.Error("demo must start the simulator")
	}
	var names []string
	for _, cam := range c.Cameras {
		names = append(names, cam.Name)
		if cam.StallTimeout != DefaultStallTimeout || cam.Transport != DefaultTransport || cam.Decode != DefaultDecode {
			t.Errorf("camera %s: defaults not filled: %+v", cam.Name, cam)
		}
	}
	if len(names) == 0 || names[0] != "vtest" {
		t.Errorf("demo cameras = %v, want vtest first", names)
	}
	if got := c.Areas[1].EffectiveCapacity(); got != 20 {
		t.Errorf("hall capacity from 30 m² at 1.5 m² each = %d, want 20", got)
	}
}

func TestLoadFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "site.yaml")
	if err := os.WriteFile(path, DemoYAML(), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err != nil {
		t.Fatalf("load %s: %v", path, err)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Fatal("missing file loaded")
	}
}

// configCases are bad configurations with the line and key each must be
// reported at. They also seed FuzzParse.
var configCases = []struct {
	name, yaml string
	line       int
	want       string
}{
	{"unknown top key", "console:\n  listen: 127.0.0.1:1\ncamras: []\n", 3, `unknown key "camras"`},
	{"unknown camera key", "cameras:\n  - name: a\n    url: rtsp://h/x\n    fps: 3\n", 4, `unknown key "fps"`},
	{"bad duration", "cameras:\n  - name: a\n    url: rtsp://h/x\n    stall_timeout: soon\n", 4, "cameras[0].stall_timeout: cannot unmarshal"},
	{"bad transport", "cameras:\n  - name: a\n    url: rtsp://h/x\n    transport: carrier-pigeon\n", 4, "cameras[0].transport: must be one of auto, tcp, udp"},
	{"bad scheme", "cameras:\n  - name: a\n    url: http://h/x\n", 3, "cameras[0].url: scheme must be rtsp or rtsps"},
	{"missing url", "cameras:\n  - name: a\n", 2, "cameras[0].url: is required"},
	{"duplicate camera", "cameras:\n  - name: a\n    url: rtsp://h/x\n  - name: a\n    url: rtsp://h/y\n", 4, `camera "a" is defined twice`},
	{"polygon out of range", "cameras:\n  - name: a\n    url: rtsp://h/x\n    zones:\n      - name: z\n        polygon: [[0,0],[2,0],[1,1]]\n", 6, "normalized image coordinates"},
	{"flat polygon", "cameras:\n  - name: a\n    url: rtsp://h/x\n    zones:\n      - name: z\n        polygon: [[0,0],[0.5,0.5],[1,1]]\n", 6, "has no area"},
	{"unknown area zone", "cameras:\n  - name: a\n    url: rtsp://h/x\nareas:\n  - name: b\n    capacity: 5\n    zones: [a/nope]\n", 7, `no zone "a/nope"`},
	{"area without capacity", "cameras:\n  - name: a\n    url: rtsp://h/x\n    zones:\n      - name: z\n        polygon: [[0,0],[1,0],[1,1]]\nareas:\n  - name: b\n    zones: [a/z]\n", 8, "set capacity"},
	{"backoff order", "cameras:\n  - name: a\n    url: rtsp://h/x\n    backoff_min: 10s\n    backoff_max: 1s\n", 5, "backoff_max"},
	{"bad role", "users:\n  - username: bob\n    role: king\n", 3, "users[0].role"},
	{"bad listen", "console:\n  listen: everywhere\n", 2, "console.listen: must be HOST:PORT"},
	{"tiers order", "rules:\n  yellow: 0.95\n  orange: 0.9\n", 2, "rules.yellow"},
	{"syntax", "a: 1\nb: 2\nc: @x\n", 3, "cannot start any token"},
	{"wrong type", "vision:\n  threads: many\n", 2, "many"},
	{"fp16 without tensorrt", "vision:\n  provider: cuda\n  fp16: true\n", 3, "vision.fp16: half precision needs provider tensorrt"},
	{"loopback camera", "cameras:\n  - name: a\n    url: rtsp://127.0.0.1:8554/x\n", 3, "cameras[0].url: 127.0.0.1 is a loopback address (set security.allow_loopback"},
	{"metadata live url", "cameras:\n  - name: a\n    url: rtsp://h/x\n    live_url: rtsp://169.254.169.254/x\n", 4, "cameras[0].live_url: 169.254.169.254 is a link-local address"},
	{"metadata webhook", "notify:\n  webhooks:\n    - name: w\n      url: http://metadata.google.internal/computeMetadata/v1/\n", 4,
		`notify.webhooks[0].url: "metadata.google.internal" is a cloud metadata service`},
	{"loopback webhook", "notify:\n  webhooks:\n    - name: w\n      url: http://localhost:9000/hook\n", 4, `notify.webhooks[0].url: "localhost" is a loopback name`},
	{"allowance keeps link-local out", "security: {allow_loopback: true}\ncameras:\n  - name: a\n    url: rtsp://[fe80::1]/x\n", 4, "cameras[0].url: fe80::1 is a link-local address"},
	{"numeric host", "cameras:\n  - name: a\n    url: rtsp://2130706433/x\n", 3, "cameras[0].url: \"2130706433\" is an IPv4 address not in dotted decimal"},
	{"bad rate", "console:\n  rate_limit_per_second: -1\n", 2, "console.rate_limit_per_second: must be above 0"},
	{"bad burst", "console:\n  rate_limit_burst: -5\n", 2, "console.rate_limit_burst: must be between 1 and"},
	{"proxy not an address", "console:\n  trusted_proxies: [10.0.0.1, nginx]\n", 2, `console.trusted_proxies[1]: "nginx" is neither an IP address`},
	{"proxy trusting everyone", "console:\n  trusted_proxies: [0.0.0.0/0]\n", 2, "console.trusted_proxies[0]: \"0.0.0.0/0\" would trust every client"},
	{"proxy with host bits", "console:\n  trusted_proxies: [10.1.2.3/16]\n", 2, "did you mean 10.1.0.0/16?"},
	{"proxy_tls without proxies", "console:\n  proxy_tls: true\n", 2, "console.proxy_tls: says a proxy terminates TLS"},
	{"banned location", "cameras:\n  - name: a\n    url: rtsp://h/x\n    signage: door\n    location_type: toilet\n", 5,
		`cameras[0].location_type: camera "a" films a toilet: cameras are banned there`},
	{"banned nursing room", "cameras:\n  - name: a\n    url: rtsp://h/x\n    location_type: nursing_room\n", 4, "films a nursing room"},
	{"unknown location", "cameras:\n  - name: a\n    url: rtsp://h/x\n    location_type: roof\n", 4, "cameras[0].location_type: must be one of entrance"},
	{"short audit retention", "storage:\n  audit_retention: 720h\n", 2, "storage.audit_retention: must be at least 4320h0m0s (180 days"},
	{"session shorter than idle", "console:\n  idle_timeout: 1h\n  max_session: 30m\n", 3, "console.max_session: must not be below idle_timeout"},
	{"password history", "console:\n  password_history: 40\n", 2, "console.password_history: must be 1 to 25"},
	{"totp role", "console:\n  totp_roles: [admin, king]\n", 2, "console.totp_roles[1]: must be one of admin"},
}

func TestParseReportsFileLineAndKey(t *testing.T) {
	for _, tc := range configCases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("site.yaml", []byte(tc.yaml))
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error = %v, want *config.Error", err)
			}
			msg := err.Error()
			prefix := "site.yaml:" + strconv.Itoa(tc.line) + ": "
			found := false
			for _, line := range strings.Split(msg, "\n") {
				if strings.HasPrefix(line, prefix) && strings.Contains(line, tc.want) {
					found = true
				}
			}
			if !found {
				t.Errorf("error\n%s\nhas no line starting %q containing %q", msg, prefix, tc.want)
			}
		})
	}
}

func TestErrorsNeverRepeatPasswords(t *testing.T) {
	y := "cameras:\n  - name: a\n    url: ftp://admin:s3cretPW@cam/x\n    password: other-s3cret\n    transport: bogus\n"
	_, err := Parse("site.yaml", []byte(y))
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, secret := range []string{"s3cretPW", "other-s3cret"} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error leaks %q: %v", secret, err)
		}
	}
}

// TestLoopbackAllowance shows what security.allow_loopback lets through:
// loopback cameras and webhooks, which are refused without it; private
// networks pass either way.
func TestLoopbackAllowance(t *testing.T) {
	site := "cameras:\n  - name: a\n    url: rtsp://127.0.0.1:8554/x\n    live_url: rtsp://[::1]:8554/y\n" +
		"notify:\n  webhooks:\n    - name: w\n      url: http://localhost:9000/hook\n"
	_, err := Parse("site.yaml", []byte(site))
	var ce *Error
	if !errors.As(err, &ce) || len(ce.Problems) != 3 {
		t.Fatalf("loopback camera and webhook without the allowance: want 3 problems, got %v", err)
	}
	c, err := Parse("site.yaml", []byte("security:\n  allow_loopback: true\n"+site))
	if err != nil {
		t.Fatalf("with the allowance: %v", err)
	}
	if !c.Security.AllowLoopback {
		t.Error("security.allow_loopback not read")
	}
	private := "cameras:\n  - name: a\n    url: rtsp://admin:pw@192.168.1.64:554/Streaming/Channels/101\n" +
		"    live_url: rtsp://10.0.0.7/sub\nnotify:\n  webhooks:\n    - name: w\n      url: https://172.16.3.4/hook\n"
	if _, err := Parse("site.yaml", []byte(private)); err != nil {
		t.Fatalf("private networks refused: %v", err)
	}
}

func TestGuardErrorsNeverRepeatPasswords(t *testing.T) {
	y := "cameras:\n  - name: a\n    url: rtsp://admin:s3cretPW@169.254.169.254/x?token=t0ken\n"
	_, err := Parse("site.yaml", []byte(y))
	if err == nil || !strings.Contains(err.Error(), "169.254.169.254 is a link-local address") {
		t.Fatalf("metadata camera: err = %v", err)
	}
	for _, secret := range []string{"s3cretPW", "t0ken"} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error leaks %q: %v", secret, err)
		}
	}
}

func TestRateLimitDefaults(t *testing.T) {
	c, err := Parse("f", []byte("console:\n  listen: 127.0.0.1:1\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Console.RateLimitPerSecond != DefaultRateLimitPerSec || c.Console.RateLimitBurst != DefaultRateLimitBurst {
		t.Errorf("rate limit = %g/s burst %d, want the defaults", c.Console.RateLimitPerSecond, c.Console.RateLimitBurst)
	}
	c, err = Parse("f", []byte("console:\n  rate_limit_per_second: 2.5\n  rate_limit_burst: 10\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Console.RateLimitPerSecond != 2.5 || c.Console.RateLimitBurst != 10 {
		t.Errorf("rate limit = %g/s burst %d, want 2.5/s burst 10", c.Console.RateLimitPerSecond, c.Console.RateLimitBurst)
	}
}

func TestEveryProblemReported(t *testing.T) {
	y := "cameras:\n  - name: a\n    url: rtsp://h/x\n    transport: x\n    decode: y\n"
	_, err := Parse("f", []byte(y))
	var ce *Error
	if !errors.As(err, &ce) || len(ce.Problems) != 2 {
		t.Fatalf("want 2 problems, got %v", err)
	}
}

func TestEmptyFileIsAnError(t *testing.T) {
	if _, err := Parse("f", []byte("\n# nothing\n")); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Fatalf("empty config: err = %v", err)
	}
}

func TestDurationsAndCapacityFromArea(t *testing.T) {
	y := "cameras:\n  - name: a\n    url: rtsp://h/x\n    stall_timeout: 2500ms\n    zones:\n      - name: z\n        polygon: [[0,0],[1,0],[1,1]]\nareas:\n  - name: b\n    zones: [a/z]\n    area_m2: 100\n    space_per_visitor_m2: 0.8\n"
	c, err := Parse("f", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	if c.Cameras[0].StallTimeout != 2500*time.Millisecond {
		t.Errorf("stall_timeout = %s", c.Cameras[0].StallTimeout)
	}
	if got := c.Areas[0].EffectiveCapacity(); got != 125 {
		t.Errorf("capacity = %d, want 125", got)
	}
}

func FuzzParse(f *testing.F) {
	for _, tc := range configCases {
		f.Add([]byte(tc.yaml))
	}
	f.Add(DemoYAML())
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.yaml", data)
		if err == nil && c == nil {
			t.Fatal("nil config without error")
		}
		if err != nil && c != nil {
			t.Fatal("config and error both returned")
		}
	})
}

// A camera that does not say where its notice is posted or what it films
// loads, and PrivacyGaps names it for serve's warning; the demo's cameras
// say both.
func TestPrivacyGaps(t *testing.T) {
	cfg, err := Parse("f", []byte("cameras:\n  - name: a\n    url: rtsp://h/x\n  - name: b\n    url: rtsp://h/y\n    signage: gate\n    location_type: plaza\n  - name: c\n    url: rtsp://h/z\n    disabled: true\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := PrivacyGaps(cfg); len(got) != 1 || got[0] != "cameras[0] (a): signage, location_type" {
		t.Fatalf("privacy gaps %q", got)
	}
	demo, err := Demo()
	if err != nil {
		t.Fatal(err)
	}
	if got := PrivacyGaps(demo); len(got) != 0 {
		t.Fatalf("the demo's cameras lack %q", got)
	}
	if demo.Storage.AuditRetention != MinAuditRetention || demo.Console.IdleTimeout != DefaultIdleTimeout {
		t.Fatalf("defaults: audit %s, idle %s", demo.Storage.AuditRetention, demo.Console.IdleTimeout)
	}
}
