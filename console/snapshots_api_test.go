package console

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"flowwatch/internal/store"
	"flowwatch/vision"
)

// storedSnapshot stores a snapshot of cam as ada with the given blur and
// returns what the API answered.
func storedSnapshot(t *testing.T, site *apiSite, blur bool) store.Snapshot {
	t.Helper()
	var sn store.Snapshot
	if code := site.call(t, "ada", "POST", "/api/v1/cameras/cam/snapshots", fmt.Sprintf(`{"blur":%t}`, blur), &sn); code != http.StatusCreated {
		t.Fatalf("store a snapshot (blur %t): %d", blur, code)
	}
	return sn
}

// highFrequencyEnergy is the mean squared difference between neighbouring
// pixels, over the colour channels: what a blur takes away.
func highFrequencyEnergy(img image.Image, r image.Rectangle) float64 {
	var sum float64
	n := 0
	at := func(x, y int) [3]float64 {
		cr, cg, cb, _ := img.At(x, y).RGBA()
		return [3]float64{float64(cr >> 8), float64(cg >> 8), float64(cb >> 8)}
	}
	for y := r.Min.Y; y < r.Max.Y-1; y++ {
		for x := r.Min.X; x < r.Max.X-1; x++ {
			p, right, down := at(x, y), at(x+1, y), at(x, y+1)
			for c := range 3 {
				sum += (p[c]-right[c])*(p[c]-right[c]) + (p[c]-down[c])*(p[c]-down[c])
			}
			n++
		}
	}
	return sum / float64(n)
}

func TestStoredSnapshotRoutesEveryRole(t *testing.T) {
	site, _, _ := newCameraSite(t)
	readers := []string{"ada", "otto", "pia"}
	kept := storedSnapshot(t, site, true)
	gone := storedSnapshot(t, site, false)
	routes := []apiRoute{
		{"POST", "/api/v1/cameras/cam/snapshots", `{"blur":true}`, []string{"ada"}, http.StatusCreated},
		{"GET", "/api/v1/cameras/cam/snapshots", "", readers, 200},
		{"GET", fmt.Sprintf("/api/v1/snapshots/%d", kept.ID), "", readers, 200},
		{"DELETE", fmt.Sprintf("/api/v1/snapshots/%d", gone.ID), "", []string{"ada"}, 200},
		{"GET", "/api/v1/export?" + period(0, time.Hour), "", []string{"ada"}, 200},
	}
	checkRoutesEveryRole(t, site, routes)
}

func TestStoredSnapshotBlurListGetDeleteAudited(t *testing.T) {
	site, _, _ := newCameraSite(t)
	ctx := context.Background()
	blurred := storedSnapshot(t, site, true)
	raw := storedSnapshot(t, site, false)
	if !blurred.Blurred || raw.Blurred || blurred.By != "ada" || blurred.Camera != "cam" || blurred.Width != 64 || blurred.Height != 48 {
		t.Fatalf("stored: %+v and %+v", blurred, raw)
	}
	// an empty body stores a blurred picture: privacy by default
	var byDefault store.Snapshot
	if code := site.call(t, "ada", "POST", "/api/v1/cameras/cam/snapshots", "", &byDefault); code != http.StatusCreated || !byDefault.Blurred {
		t.Fatalf("a snapshot without a body: %d %+v", code, byDefault)
	}

	var list struct{ Snapshots []store.Snapshot }
	if code := site.call(t, "pia", "GET", "/api/v1/cameras/cam/snapshots", "", &list); code != 200 || len(list.Snapshots) != 3 ||
		list.Snapshots[0].ID != byDefault.ID || list.Snapshots[2] != blurred {
		t.Fatalf("list: %d %+v", code, list.Snapshots)
	}

	// the blurred picture really is blurred: far less fine detail than
	// the raw one (the fake picture is blue left and red right; the
	// live density has people in both cells, so all of it is blurred
	// strongly)
	pictures := map[string]image.Image{}
	for name, sn := range map[string]store.Snapshot{"blurred": blurred, "raw": raw} {
		a := site.raw(t, "otto", "GET", fmt.Sprintf("/api/v1/snapshots/%d", sn.ID), "")
		if a.code != 200 || a.header.Get("Content-Type") != "image/jpeg" || a.header.Get("Cache-Control") != "no-store" {
			t.Fatalf("%s snapshot: %d %v", name, a.code, a.header)
		}
		img, err := jpeg.Decode(strings.NewReader(a.body))
		if err != nil {
			t.Fatalf("%s snapshot: %v", name, err)
		}
		pictures[name] = img
	}
	eBlur, eRaw := highFrequencyEnergy(pictures["blurred"], pictures["blurred"].Bounds()), highFrequencyEnergy(pictures["raw"], pictures["raw"].Bounds())
	if !(eBlur < eRaw/5) {
		t.Fatalf("high-frequency energy: blurred %.1f, raw %.1f: want the blurred one under a fifth", eBlur, eRaw)
	}
	if r, _, b, _ := pictures["raw"].At(2, 24).RGBA(); b>>8 < 200 || r>>8 > 60 {
		t.Fatalf("the raw snapshot is not the live picture: left pixel r=%d b=%d", r>>8, b>>8)
	}

	entries, err := site.db.AuditEntries(ctx, store.AuditFilter{Action: "snapshot.store"})
	if err != nil || len(entries) != 3 || entries[2].Actor != "ada" || entries[2].Target != "camera cam" ||
		!strings.Contains(entries[2].Detail, fmt.Sprintf("snapshot %d", blurred.ID)) || !strings.Contains(entries[2].Detail, "blurred: strongly over 2 of 2 cells") ||
		!strings.Contains(entries[1].Detail, "not blurred") {
		t.Fatalf("store audit entries: %+v %v", entries, err)
	}

	var deleted struct{ Deleted store.Snapshot }
	if code := site.call(t, "ada", "DELETE", fmt.Sprintf("/api/v1/snapshots/%d", raw.ID), "", &deleted); code != 200 || deleted.Deleted != raw {
		t.Fatalf("delete: %d %+v", code, deleted)
	}
	if code := site.call(t, "ada", "GET", fmt.Sprintf("/api/v1/snapshots/%d", raw.ID), "", nil); code != http.StatusNotFound {
		t.Fatalf("a deleted snapshot: %d", code)
	}
	if code := site.call(t, "ada", "DELETE", fmt.Sprintf("/api/v1/snapshots/%d", raw.ID), "", nil); code != http.StatusNotFound {
		t.Fatalf("a deleted snapshot deleted again: %d", code)
	}
	entries, err = site.db.AuditEntries(ctx, store.AuditFilter{Action: "snapshot.delete"})
	if err != nil || len(entries) != 1 || entries[0].Actor != "ada" || !strings.Contains(entries[0].Detail, fmt.Sprintf("snapshot %d", raw.ID)) {
		t.Fatalf("delete audit entries: %+v %v", entries, err)
	}

	for _, tc := range []struct {
		method, path, body string
		code               int
		says               string
	}{
		{"POST", "/api/v1/cameras/nope/snapshots", `{"blur":true}`, 404, `nope`},
		{"POST", "/api/v1/cameras/secret/snapshots", `{"blur":true}`, 503, "no picture to store"},
		{"POST", "/api/v1/cameras/cam/snapshots", `{"blur":"yes"}`, 400, `{\"blur\": true}`},
		{"POST", "/api/v1/cameras/cam/snapshots", `{"blurry":true}`, 400, "blurry"},
		{"GET", "/api/v1/cameras/nope/snapshots", "", 404, "nope"},
		{"GET", "/api/v1/snapshots/abc", "", 400, `got \"abc\"`},
		{"DELETE", "/api/v1/snapshots/0", "", 400, "positive"},
	} {
		a := site.raw(t, "ada", tc.method, tc.path, tc.body)
		if a.code != tc.code || !strings.Contains(a.body, tc.says) {
			t.Errorf("%s %s %s: %d %s, want %d saying %q", tc.method, tc.path, tc.body, a.code, a.body, tc.code, tc.says)
		}
	}
}

// checkerboard is a w×h picture of black and white squares of side
// pixels: all edges.
func checkerboard(w, h, side int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			v := uint8(0)
			if (x/side+y/side)%2 == 0 {
				v = 255
			}
			img.Set(x, y, color.RGBA{v, v, v, 255})
		}
	}
	return img
}

func TestBlurPictureStrongWherePeopleAreLightElsewhere(t *testing.T) {
	src := checkerboard(160, 120, 8)
	before := slices.Clone(src.Pix)
	// a 4×3 grid with people in the bottom-right cell only: it and its
	// neighbours (the right half of the two lower rows) get the strong
	// blur
	grid := &vision.HeatmapGrid{Cols: 4, Rows: 3, Data: make([]float32, 12)}
	grid.Data[11] = 1.2
	out, cells := blurPicture(src, grid)
	if !bytes.Equal(src.Pix, before) {
		t.Fatal("blurPicture changed its input")
	}
	if cells != 4 {
		t.Fatalf("%d cells blurred strongly, want the cell and its 3 neighbours", cells)
	}
	raw := highFrequencyEnergy(src, src.Bounds())
	// inside the cells, away from their edges
	strong := highFrequencyEnergy(out, image.Rect(100, 60, 150, 110))
	light := highFrequencyEnergy(out, image.Rect(10, 10, 60, 30))
	t.Logf("high-frequency energy: raw %.0f, light blur %.1f, strong blur %.3f", raw, light, strong)
	if !(strong < raw/100 && light < raw && light > 10*strong) {
		t.Fatalf("high-frequency energy: raw %.0f, light blur %.1f, strong blur %.3f", raw, light, strong)
	}
	// no grid: everything strongly
	all, cells := blurPicture(src, nil)
	if e := highFrequencyEnergy(all, image.Rect(10, 10, 60, 30)); cells != 0 || !(e < raw/100) {
		t.Fatalf("without a grid: %d cells, energy %.2f of %.0f", cells, e, raw)
	}
	// an empty grid: everything lightly
	empty, cells := blurPicture(src, &vision.HeatmapGrid{Cols: 4, Rows: 3, Data: make([]float32, 12)})
	if e := highFrequencyEnergy(empty, image.Rect(100, 60, 150, 110)); cells != 0 || !(e < raw && e > 10*strong) {
		t.Fatalf("an empty grid: %d cells, energy %.2f of %.0f", cells, e, raw)
	}
}

func TestHeatmapDrawnOverTheStoredSnapshotNotTheLivePicture(t *testing.T) {
	site, _, _ := newCameraSite(t)
	seedHistory(t, site.db)
	heatmap := func() image.Image {
		t.Helper()
		a := site.raw(t, "pia", "GET", "/api/v1/heatmaps/cam?"+period(0, time.Hour), "")
		if a.code != 200 || a.header.Get("Content-Type") != "image/png" {
			t.Fatalf("heatmap: %d %.200s", a.code, a.body)
		}
		img, err := png.Decode(strings.NewReader(a.body))
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	// no stored snapshot: grey, at the grid's aspect, although the
	// camera has a live picture (64x48, blue and red)
	img := heatmap()
	if b := img.Bounds(); b.Dx() != 640 || b.Dy() != 480 {
		t.Fatalf("heatmap without a stored snapshot is %v, want 640x480 grey", b)
	}
	if r, g, b, _ := img.At(0, 0).RGBA(); r != g || g != b {
		t.Fatalf("heatmap without a stored snapshot: top left %d,%d,%d, want grey", r>>8, g>>8, b>>8)
	}
	// a stored snapshot (unblurred: its colours stay) is the background
	storedSnapshot(t, site, false)
	img = heatmap()
	if b := img.Bounds(); b.Dx() != 64 || b.Dy() != 48 {
		t.Fatalf("heatmap over the stored snapshot is %v, want 64x48", b)
	}
	if r, _, b, _ := img.At(0, 0).RGBA(); b>>8 < 200 || r>>8 > 60 {
		t.Fatalf("heatmap over the stored snapshot: top left r=%d b=%d, want the snapshot's blue", r>>8, b>>8)
	}
}
