package console

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"flowwatch/internal/store"
)

func TestZonesAPIGetPutAndValidation(t *testing.T) {
	site, views, _ := newCameraSite(t)
	var got zoneLayoutAnswer
	if code := site.call(t, "pia", "GET", "/api/v1/cameras/cam/zones", "", &got); code != 200 {
		t.Fatalf("get: %d", code)
	}
	if got.Camera != "cam" || got.Source != "config" || got.UpdatedAt != nil || got.UpdatedBy != "" || got.Calibration != nil ||
		len(got.Zones) != 2 || got.Zones[0].Capacity != 10 || got.Applied != "counting and alerts" {
		t.Fatalf("config layout: %+v", got)
	}
	if code := site.call(t, "pia", "GET", "/api/v1/cameras/nope/zones", "", nil); code != http.StatusNotFound {
		t.Errorf("unknown camera: %d", code)
	}
	if code := site.call(t, "otto", "PUT", "/api/v1/cameras/cam/zones", `{"zones":[]}`, nil); code != http.StatusForbidden {
		t.Errorf("operator PUT: %d, want 403", code)
	}

	good := `{"zones":[
		{"name":"gate","polygon":[[0,0],[1,0],[1,1]],"capacity":12},
		{"name":"yard","polygon":[[0,0],[1,1],[0,1]]},
		{"name":"queue","polygon":[[0.1,0.1],[0.4,0.1],[0.4,0.3],[0.1,0.3]],"capacity":4}],
		"calibration":{"image":[[0,0.5],[1,0.5],[1,1],[0,1]],"ground":[[0,0],[20,0],[20,10],[0,10]]}}`
	if code := site.call(t, "ada", "PUT", "/api/v1/cameras/cam/zones", good, &got); code != 200 {
		t.Fatalf("put: %d", code)
	}
	if got.Source != "console" || got.UpdatedBy != "ada" || got.UpdatedAt == nil || len(got.Zones) != 3 ||
		got.Calibration == nil || got.Calibration.Ground[1][0] != 20 || got.Applied != "counting now; alert capacities at next start" {
		t.Fatalf("put answer: %+v", got)
	}
	views.mu.Lock()
	applied := views.applied["cam"]
	views.mu.Unlock()
	if len(applied.Zones) != 3 || applied.Zones[2].Name != "queue" || applied.ID == 0 {
		t.Fatalf("the editor got %+v", applied)
	}
	var again zoneLayoutAnswer
	if code := site.call(t, "otto", "GET", "/api/v1/cameras/cam/zones", "", &again); code != 200 ||
		again.Source != "console" || len(again.Zones) != 3 || !again.UpdatedAt.Equal(*got.UpdatedAt) {
		t.Fatalf("get after put: %d %+v", code, again)
	}
	// the camera list shows the saved zones
	var list struct {
		Cameras []struct {
			Name  string
			Zones []store.LayoutZone
		} `json:"cameras"`
	}
	site.call(t, "vic", "GET", "/api/v1/cameras", "", &list)
	if len(list.Cameras) == 0 || len(list.Cameras[0].Zones) != 3 {
		t.Errorf("camera list after put: %+v", list.Cameras)
	}
	entries, err := site.db.AuditEntries(context.Background(), store.AuditFilter{Action: "zones.update"})
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Actor != "ada" || entries[0].Target != "camera cam" ||
		!strings.Contains(entries[0].Detail, "queue (capacity 4") || !strings.Contains(entries[0].Detail, "calibration") {
		t.Fatalf("audit: %+v", entries)
	}

	square := `[[0,0],[0.5,0],[0.5,0.5],[0,0.5]]`
	keep := `{"name":"gate","polygon":[[0,0],[1,0],[1,1]]},{"name":"yard","polygon":[[0,0],[1,1],[0,1]]}`
	for _, c := range []struct{ name, body, reason string }{
		{"no zones key", `{}`, "zones is required"},
		{"unknown field", `{"zones":[],"extra":1}`, "unknown field"},
		{"not JSON", `{"zones":`, "bad request body"},
		{"bowtie", `{"zones":[` + keep + `,{"name":"x","polygon":[[0,0],[1,1],[1,0],[0,1]]}]}`, `zone \"x\": polygon crosses itself`},
		{"two points", `{"zones":[` + keep + `,{"name":"x","polygon":[[0,0],[1,1]]}]}`, "at least 3 points"},
		{"outside", `{"zones":[` + keep + `,{"name":"x","polygon":[[0,0],[1.5,0],[1,1]]}]}`, "outside the normalized range"},
		{"twice", `{"zones":[` + keep + `,{"name":"gate","polygon":` + square + `}]}`, "used twice"},
		{"all", `{"zones":[` + keep + `,{"name":"all","polygon":` + square + `}]}`, "reserved"},
		{"bad name", `{"zones":[` + keep + `,{"name":"a b","polygon":` + square + `}]}`, `name \"a b\" must be`},
		{"negative capacity", `{"zones":[` + keep + `,{"name":"x","polygon":` + square + `,"capacity":-1}]}`, "capacity must be 0 or more"},
		{"area's zone gone", `{"zones":[{"name":"gate","polygon":[[0,0],[1,0],[1,1]]}]}`, `zone \"yard\" is part of area \"yard\"`},
		{"collinear calibration", `{"zones":[` + keep + `],"calibration":{"image":[[0,0],[0.5,0.5],[1,1],[0,1]],"ground":[[0,0],[1,0],[1,1],[0,1]]}}`, "lie on a line"},
		{"calibration outside", `{"zones":[` + keep + `],"calibration":{"image":[[0,0],[2,0],[1,1],[0,1]],"ground":[[0,0],[1,0],[1,1],[0,1]]}}`, "image point 1"},
	} {
		a := site.raw(t, "ada", "PUT", "/api/v1/cameras/cam/zones", c.body)
		if a.code != http.StatusBadRequest || !strings.Contains(a.body, c.reason) {
			t.Errorf("%s: %d %s, want 400 saying %q", c.name, a.code, a.body, c.reason)
		}
	}
	// nothing refused was stored
	if hist, err := site.db.ZoneLayoutHistory(context.Background(), "cam", 0); err != nil || len(hist) != 1 {
		t.Fatalf("history after refusals: %d layouts, %v", len(hist), err)
	}
	// a camera no area uses may lose all its zones
	if code := site.call(t, "ada", "PUT", "/api/v1/cameras/spare/zones", `{"zones":[]}`, &got); code != 200 || len(got.Zones) != 0 || got.Zones == nil {
		t.Errorf("emptying spare: %d %+v", code, got)
	}
}
