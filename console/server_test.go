package console

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"flowwatch/internal/event"
)

type fixedStates []event.CameraState

func (f fixedStates) CameraStates() []event.CameraState { return f }

func TestHealthzCountsLiveMainStreamsOnly(t *testing.T) {
	states := fixedStates{
		{Camera: "gate", Stream: "main", Status: event.CameraLive, LastError: "secret-bearing error"},
		{Camera: "gate", Stream: "live", Status: event.CameraLive},
		{Camera: "hall", Stream: "main", Status: event.CameraRetrying},
	}
	s := New(Config{Listen: "127.0.0.1:0", Cameras: states})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	resp, err := http.Get(s.URL() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("healthz: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var h health
	if err := json.Unmarshal(body, &h); err != nil {
		t.Fatalf("healthz body %q: %v", body, err)
	}
	if h.Status != "ok" || h.Cameras != 2 || h.CamerasLive != 1 {
		t.Errorf("healthz = %+v, want 2 cameras, 1 live", h)
	}
	for _, leak := range []string{"gate", "hall", "secret"} {
		if strings.Contains(string(body), leak) {
			t.Errorf("healthz answers without login but names %q: %s", leak, body)
		}
	}
}

func TestMetricsExposesRegistry(t *testing.T) {
	set := metrics.NewSet()
	set.NewCounter(`flowwatch_console_test_total{camera="gate"}`).Add(3)
	metrics.RegisterSet(set)
	defer metrics.UnregisterSet(set, true)

	s := New(Config{Listen: "127.0.0.1:0"})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	resp, err := http.Get(s.URL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `flowwatch_console_test_total{camera="gate"} 3`) {
		t.Errorf("/metrics lacks the registered counter:\n%.500s", body)
	}
	if !strings.Contains(string(body), "go_goroutines") {
		t.Error("/metrics lacks process metrics")
	}
}

func TestUnknownPathAndMethod(t *testing.T) {
	s := New(Config{Listen: "127.0.0.1:0"})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(s.URL() + "/nope")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /nope = %d, want 404", resp.StatusCode)
	}
	resp, err = c.Post(s.URL()+"/healthz", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Content-Type") != "application/json" ||
		!strings.Contains(resp.Header.Get("Allow"), "GET") {
		t.Errorf("POST /healthz = %d %q Allow %q, want a 405 JSON error that says GET is allowed",
			resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Allow"))
	}
}
