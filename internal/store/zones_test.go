package store

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestZoneLayoutsLatestWinsAndHistoryStays(t *testing.T) {
	s, path := openTemp(t)
	ctx := context.Background()
	t0 := time.Date(2025, 6, 1, 9, 0, 0, 0, time.UTC)
	if _, err := s.ZoneLayout(ctx, "gate"); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), `"gate"`) {
		t.Fatalf("no layout yet: %v, want ErrNotFound naming the camera", err)
	}
	first := ZoneLayout{Camera: "gate", Zones: []LayoutZone{{Name: "in", Polygon: [][2]float64{{0, 0}, {1, 0}, {1, 1}}, Capacity: 5}},
		UpdatedAt: t0, UpdatedBy: "ada"}
	calib := &LayoutCalibration{Image: [4][2]float64{{0, 0}, {1, 0}, {1, 1}, {0, 1}}, Ground: [4][2]float64{{0, 0}, {10, 0}, {10, 8}, {0, 8}}}
	second := ZoneLayout{Camera: "gate", Zones: []LayoutZone{
		{Name: "left", Polygon: [][2]float64{{0, 0}, {0.5, 0}, {0.5, 1}, {0, 1}}},
		{Name: "right", Polygon: [][2]float64{{0.5, 0}, {1, 0}, {1, 1}, {0.5, 1}}, Capacity: 30},
	}, Calibration: calib, UpdatedAt: t0.Add(time.Minute), UpdatedBy: "bob"}
	other := ZoneLayout{Camera: "hall", UpdatedAt: t0, UpdatedBy: "ada"}
	var ids []int64
	for _, l := range []ZoneLayout{first, second, other} {
		id, err := s.SaveZoneLayout(ctx, l)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if !(ids[0] < ids[1] && ids[1] < ids[2]) {
		t.Fatalf("ids %v do not increase", ids)
	}
	got, err := s.ZoneLayout(ctx, "gate")
	if err != nil {
		t.Fatal(err)
	}
	second.ID = ids[1]
	if !reflect.DeepEqual(got, second) {
		t.Fatalf("latest layout of gate:\n got %+v\nwant %+v", got, second)
	}
	all, err := s.ZoneLayouts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all["gate"].ID != ids[1] || all["hall"].ID != ids[2] {
		t.Fatalf("layouts in force: %+v", all)
	}
	if h := all["hall"]; h.Zones == nil || len(h.Zones) != 0 || h.Calibration != nil {
		t.Errorf("a layout without zones or calibration reads back as %+v", h)
	}
	hist, err := s.ZoneLayoutHistory(ctx, "gate", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 2 || hist[0].ID != ids[1] || hist[1].ID != ids[0] || hist[1].UpdatedBy != "ada" || hist[1].Zones[0].Capacity != 5 {
		t.Fatalf("history of gate: %+v", hist)
	}
	if hist, _ := s.ZoneLayoutHistory(ctx, "gate", 1); len(hist) != 1 || hist[0].ID != ids[1] {
		t.Errorf("history limited to 1: %+v", hist)
	}

	for name, l := range map[string]ZoneLayout{
		"no camera": {UpdatedAt: t0},
		"no time":   {Camera: "gate"},
	} {
		if _, err := s.SaveZoneLayout(ctx, l); err == nil {
			t.Errorf("%s: saved", name)
		}
	}

	// the layout outlives a restart
	s.Close()
	s2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if got, err := s2.ZoneLayout(ctx, "gate"); err != nil || !reflect.DeepEqual(got, second) {
		t.Fatalf("after reopening: %+v, %v", got, err)
	}
}
