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
