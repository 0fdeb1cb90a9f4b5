package console

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"flowwatch/alerting"
	"flowwatch/internal/event"
)

type fixedAreas []alerting.TargetStatus

func (f fixedAreas) Status(time.Time) []alerting.TargetStatus { return f }

func TestPublicComfortNeedsNoLoginAndNamesNoCamera(t *testing.T) {
	bounds := []float64{0.3, 0.5, 0.7, 0.9}
	areas := fixedAreas{
		{Target: event.AreaTarget("plaza"), Title: "广场 Plaza", Known: true, Count: 10.6, Capacity: 12, Ratio: 10.6 / 12,
			Comfort: alerting.ComfortOf(10.6/12, bounds)},
		{Target: event.AreaTarget("hall"), Title: "展厅 Hall", Known: false, Capacity: 20, Ratio: -1,
			Comfort: alerting.ComfortOf(-1, bounds), DailyCapacity: 160},
		{Target: event.ZoneTarget("cam-secret", "gate"), Title: "cam-secret / gate", Known: true, Count: 3, Capacity: 5},
	}
	s := New(Config{Listen: "127.0.0.1:0", Areas: areas})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	resp, err := http.Get(s.URL() + "/api/v1/public/comfort")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	var got publicComfort
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if len(got.Areas) != 2 {
		t.Fatalf("%d areas, want 2 (zones are not public): %+v", len(got.Areas), got.Areas)
	}
	p, h := got.Areas[0], got.Areas[1]
	if p.Area != "plaza" || p.Visitors != 11 || p.Percent != 88 || p.Comfort.Grade != 4 || p.Comfort.Name != "较拥挤" {
		t.Fatalf("plaza %+v, want 11 visitors, 88%%, grade 4 较拥挤", p)
	}
	if h.Known || h.Visitors != 0 || h.Comfort.Grade != 0 || h.Comfort.Name != "未知" || h.DailyCapacity != 160 {
		t.Fatalf("hall with its camera down %+v, want unknown (never empty)", h)
	}
	raw, _ := json.Marshal(got)
	if strings.Contains(string(raw), "cam-secret") {
		t.Fatalf("public answer names a camera: %s", raw)
	}
}

func TestPublicComfortAbsentWithoutAreas(t *testing.T) {
	s := New(Config{Listen: "127.0.0.1:0"})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	resp, err := http.Get(s.URL() + "/api/v1/public/comfort")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("status %d, want 404 when no alerting runs", resp.StatusCode)
	}
}
