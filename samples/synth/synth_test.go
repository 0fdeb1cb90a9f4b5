package synth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"image"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// smallConfig is a preset shrunk for quick tests.
func smallConfig(t testing.TB, preset string, w, h int, d time.Duration) Config {
	t.Helper()
	cfg, err := PresetConfig(preset)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Width, cfg.Height, cfg.Duration = w, h, d
	return cfg
}

func TestPresetConfig(t *testing.T) {
	for _, tc := range []struct {
		name     string
		min, max int
		scene    string
	}{
		{PresetSparse, 8, 18, SceneHall},
		{PresetDense, 160, 220, ScenePlaza},
	} {
		cfg, err := PresetConfig(tc.name)
		if err != nil {
			t.Fatalf("PresetConfig(%q): %v", tc.name, err)
		}
		if cfg.MinVisible != tc.min || cfg.MaxVisible != tc.max || cfg.Scene != tc.scene {
			t.Errorf("PresetConfig(%q) = visible %d..%d scene %q, want %d..%d %q",
				tc.name, cfg.MinVisible, cfg.MaxVisible, cfg.Scene, tc.min, tc.max, tc.scene)
		}
		if cfg.Width != 1280 || cfg.Height != 720 || cfg.FPS != 15 || cfg.Duration != 40*time.Second {
			t.Errorf("PresetConfig(%q) = %dx%d %g fps %s, want 1280x720 15 fps 40s", tc.name, cfg.Width, cfg.Height, cfg.FPS, cfg.Duration)
		}
		if got := cfg.frames(); got != 600 {
			t.Errorf("PresetConfig(%q).frames() = %d, want 600", tc.name, got)
		}
	}
	if _, err := PresetConfig("crowded"); err == nil || !strings.Contains(err.Error(), `"crowded"`) {
		t.Errorf("PresetConfig(crowded) error = %v, want one naming the preset", err)
	}
}

func TestConfigRejectsBadFields(t *testing.T) {
	for _, tc := range []struct {
		field string
		edit  func(*Config)
	}{
		{"Width", func(c *Config) { c.Width = 641 }},
		{"Height", func(c *Config) { c.Height = 32 }},
		{"FPS", func(c *Config) { c.FPS = -1 }},
		{"Duration", func(c *Config) { c.Duration = -time.Second }},
		{"MinVisible", func(c *Config) { c.MinVisible, c.MaxVisible = 30, 20 }},
		{"Scene", func(c *Config) { c.Scene = "beach" }},
		{"CameraTiltDeg", func(c *Config) { c.CameraTiltDeg = 95 }},
	} {
		cfg, err := PresetConfig(PresetSparse)
		if err != nil {
			t.Fatal(err)
		}
		tc.edit(&cfg)
		err = Render(cfg, func(int, *image.RGBA, []Head) error { return nil })
		if err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("bad %s: Render error = %v, want one naming the field", tc.field, err)
		}
	}
	if err := Render(Config{}, func(int, *image.RGBA, []Head) error { return nil }); err == nil || !strings.Contains(err.Error(), "MaxVisible") {
		t.Errorf("empty Config: Render error = %v, want one asking for MaxVisible or a preset", err)
	}
}

// renderAll renders cfg and returns the truth and a hash of the pixels of
// every frame.
func renderAll(t *testing.T, cfg Config) ([][]Head, [][32]byte) {
	t.Helper()
	var truth [][]Head
	var sums [][32]byte
	err := Render(cfg, func(i int, img *image.RGBA, heads []Head) error {
		if i != len(truth) {
			t.Fatalf("frame index %d, want %d", i, len(truth))
		}
		truth = append(truth, append([]Head(nil), heads...))
		sums = append(sums, sha256.Sum256(img.Pix))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return truth, sums
}

func TestRenderIsDeterministic(t *testing.T) {
	cfg := smallConfig(t, PresetDense, 320, 180, 2*time.Second)
	truth1, sums1 := renderAll(t, cfg)
	truth2, sums2 := renderAll(t, cfg)
	if len(truth1) != 30 {
		t.Fatalf("rendered %d frames, want 30", len(truth1))
	}
	for i := range truth1 {
		if !equalHeads(truth1[i], truth2[i]) {
			t.Fatalf("frame %d: truth differs between two renders with seed %d", i, cfg.Seed)
		}
		if sums1[i] != sums2[i] {
			t.Fatalf("frame %d: pixels differ between two renders with seed %d", i, cfg.Seed)
		}
	}
	cfg.Seed++
	truth3, _ := renderAll(t, cfg)
	if equalHeads(truth1[0], truth3[0]) {
		t.Errorf("seeds %d and %d gave the same truth", cfg.Seed-1, cfg.Seed)
	}
	// The scene and crowd do not depend on the duration.
	cfg.Seed--
	cfg.Duration = time.Second
	truth4, sums4 := renderAll(t, cfg)
	for i := range truth4 {
		if !equalHeads(truth1[i], truth4[i]) || sums1[i] != sums4[i] {
			t.Fatalf("frame %d differs when only the duration changes", i)
		}
	}
}

func equalHeads(a, b []Head) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// presetTruth simulates a full preset (no pictures) and returns its truth.
func presetTruth(t *testing.T, preset string) ([][]Head, Config) {
	t.Helper()
	cfg, err := PresetConfig(preset)
	if err != nil {
		t.Fatal(err)
	}
	var truth [][]Head
	if err := simulate(cfg, func(i int, heads []Head) error {
		truth = append(truth, append([]Head(nil), heads...))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return truth, cfg
}

func TestPresetCountsStayInRange(t *testing.T) {
	for _, tc := range []struct {
		preset string
		ok     func(n int) bool
		want   string
	}{
		{PresetSparse, func(n int) bool { return n >= 1 && n < 20 }, "between 1 and 19"},
		{PresetDense, func(n int) bool { return n >= 150 }, "at least 150"},
	} {
		t.Run(tc.preset, func(t *testing.T) {
			truth, cfg := presetTruth(t, tc.preset)
			if len(truth) != 600 {
				t.Fatalf("%d frames, want 600", len(truth))
			}
			lo, hi := math.MaxInt, 0
			ids := map[int]bool{}
			for i, heads := range truth {
				n := len(heads)
				if !tc.ok(n) || n < cfg.MinVisible || n > cfg.MaxVisible {
					t.Fatalf("frame %d: %d people in the truth, want %s and within %d..%d", i, n, tc.want, cfg.MinVisible, cfg.MaxVisible)
				}
				lo, hi = min(lo, n), max(hi, n)
				for j, h := range heads {
					if !(h.X >= 0 && h.X < float64(cfg.Width) && h.Y >= 0 && h.Y < float64(cfg.Height)) {
						t.Fatalf("frame %d: head of person %d at (%.2f, %.2f) is outside the %dx%d image", i, h.Person, h.X, h.Y, cfg.Width, cfg.Height)
					}
					if j > 0 && heads[j-1].Person >= h.Person {
						t.Fatalf("frame %d: heads not sorted by person (%d then %d)", i, heads[j-1].Person, h.Person)
					}
					ids[h.Person] = true
				}
			}
			if hi-lo < 2 {
				t.Errorf("count stayed within %d..%d over 40 s; want people coming and going", lo, hi)
			}
			if len(ids) <= hi {
				t.Errorf("%d distinct people over 40 s with up to %d at once; want people entering and leaving", len(ids), hi)
			}
			t.Logf("%s: %d..%d people in view, %d distinct", tc.preset, lo, hi, len(ids))
		})
	}
}

func TestCountBoundsHoldAcrossSeedsAndSizes(t *testing.T) {
	sizes := [][2]int{{640, 360}, {800, 600}, {1920, 1080}, {480, 848}}
	for seed := range uint64(4) {
		for _, preset := range []string{PresetSparse, PresetDense} {
			size := sizes[int(seed)%len(sizes)]
			cfg := smallConfig(t, preset, size[0], size[1], 15*time.Second)
			cfg.Seed = seed + 10
			cfg.Scene = ""
			err := simulate(cfg, func(i int, heads []Head) error {
				if n := len(heads); n < cfg.MinVisible || n > cfg.MaxVisible {
					t.Fatalf("%s seed %d %dx%d frame %d: %d people in view, want %d..%d",
						preset, cfg.Seed, size[0], size[1], i, n, cfg.MinVisible, cfg.MaxVisible)
				}
				for _, h := range heads {
					if h.X < 0 || h.Y < 0 || h.X >= float64(size[0]) || h.Y >= float64(size[1]) || h.HeightPx <= 0 {
						t.Fatalf("%s seed %d frame %d: head %+v outside the %dx%d image", preset, cfg.Seed, i, h, size[0], size[1])
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestPeopleGrowTowardsTheCamera(t *testing.T) {
	truth, cfg := presetTruth(t, PresetDense)
	var n, sy, sh, syy, shh, syh float64
	minH, maxH := math.Inf(1), 0.0
	for i := 0; i < len(truth); i += 20 {
		for _, h := range truth[i] {
			n++
			sy += h.Y
			sh += h.HeightPx
			syy += h.Y * h.Y
			shh += h.HeightPx * h.HeightPx
			syh += h.Y * h.HeightPx
			// Heads near the bottom edge belong to people standing
			// partly below it; compare sizes over the rest.
			if h.Y < 0.8*float64(cfg.Height) {
				minH, maxH = math.Min(minH, h.HeightPx), math.Max(maxH, h.HeightPx)
			}
		}
	}
	corr := (n*syh - sy*sh) / math.Sqrt((n*syy-sy*sy)*(n*shh-sh*sh))
	if corr < 0.9 {
		t.Errorf("correlation of head y and height in pixels = %.3f, want at least 0.9", corr)
	}
	if minH < 10 || minH > 35 {
		t.Errorf("smallest person is %.1f px tall at %d rows, want about 20", minH, cfg.Height)
	}
	if maxH < 120 {
		t.Errorf("largest person (head above 80%% of the height) is %.1f px tall, want well over 100", maxH)
	}
	t.Logf("corr %.3f, heights %.1f..%.1f px", corr, minH, maxH)
}

func TestOccluderMapMarksObjects(t *testing.T) {
	for _, preset := range []string{PresetSparse, PresetDense} {
		cfg := smallConfig(t, preset, 320, 180, time.Second)
		r, err := newRenderer(cfg, true)
		if err != nil {
			t.Fatal(err)
		}
		objects := 0
		for i, d := range r.bg.occ {
			if !math.IsInf(float64(d), 1) {
				objects++
				if d <= 0 {
					t.Fatalf("%s: pixel %d: occluder distance %g, want positive", preset, i, d)
				}
			}
		}
		if objects == 0 || objects == len(r.bg.occ) {
			t.Errorf("%s: %d of %d pixels show a static object, want some but not all", preset, objects, len(r.bg.occ))
		}
	}
}

func TestPeopleChangePixels(t *testing.T) {
	cfg := smallConfig(t, PresetDense, 640, 360, time.Second)
	r, err := newRenderer(cfg, true)
	if err != nil {
		t.Fatal(err)
	}
	r.draw(0)
	heads := r.crowd.heads(nil)
	// Most visible heads should be painted: the pixel at a head point
	// differs from the empty background unless something stands in front.
	changed := 0
	for _, h := range heads {
		i := 4 * (int(h.Y)*cfg.Width + int(h.X))
		if !bytes.Equal(r.img.Pix[i:i+3], r.bg.pix[i:i+3]) {
			changed++
		}
	}
	if changed < len(heads)*8/10 {
		t.Errorf("%d of %d head points differ from the background, want at least 80%%", changed, len(heads))
	}
}

func TestTruthRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "clip.csv")
	cfg := smallConfig(t, PresetSparse, 320, 180, time.Second)
	rcfg, err := cfg.resolve()
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	tw, err := newTruthWriter(f)
	if err != nil {
		t.Fatal(err)
	}
	var want [][]Head
	if err := simulate(cfg, func(i int, heads []Head) error {
		want = append(want, append([]Head(nil), heads...))
		return tw.frame(i, heads)
	}); err != nil {
		t.Fatal(err)
	}
	// Two empty frames at the end: only the sidecar knows about them.
	if err := tw.flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	frames := len(want) + 2
	cam := newScene(rcfg).cam.Camera
	if err := writeSidecar(SidecarPath(path), rcfg, cam, frames, "clip.mp4", path); err != nil {
		t.Fatal(err)
	}
	got, err := LoadTruth(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Frames() != frames {
		t.Errorf("Frames() = %d, want %d (from the sidecar)", got.Frames(), frames)
	}
	for i, w := range want {
		g := got.Heads(i)
		if len(g) != len(w) {
			t.Fatalf("frame %d: %d heads, want %d", i, len(g), len(w))
		}
		for j := range w {
			if g[j].Person != w[j].Person || math.Abs(g[j].X-w[j].X) > 5e-4 ||
				math.Abs(g[j].Y-w[j].Y) > 5e-4 || math.Abs(g[j].HeightPx-w[j].HeightPx) > 5e-4 {
				t.Fatalf("frame %d head %d = %+v, want %+v", i, j, g[j], w[j])
			}
		}
	}
	if n := len(got.Heads(frames - 1)); n != 0 {
		t.Errorf("last frame has %d heads, want 0", n)
	}
	meta, ok := got.Sidecar()
	if !ok || meta.Width != 320 || meta.Height != 180 || meta.Seed != cfg.Seed || meta.Camera.FocalPx <= 0 || meta.Scene != SceneHall {
		t.Errorf("Sidecar() = %+v, %v; want the 320x180 hall with seed %d and a camera", meta, ok, cfg.Seed)
	}

	// Without the sidecar the frame count comes from the last row.
	if err := os.Remove(SidecarPath(path)); err != nil {
		t.Fatal(err)
	}
	got, err = LoadTruth(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Frames() != len(want) {
		t.Errorf("without sidecar Frames() = %d, want %d", got.Frames(), len(want))
	}
}

func TestLoadTruthRejectsBadFiles(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, body, want string
	}{
		{"header", "frame,id,x,y,h\n", "header"},
		{"frame", "frame,person,head_x,head_y,height_px\n0,1,2,3,4\nx,1,2,3,4\n", "line 3"},
		{"negative", "frame,person,head_x,head_y,height_px\n-1,1,2,3,4\n", "frame"},
		{"nan", "frame,person,head_x,head_y,height_px\n0,1,NaN,3,4\n", "head_x"},
		{"columns", "frame,person,head_x,head_y,height_px\n0,1,2,3\n", "fields"},
		{"twice", "frame,person,head_x,head_y,height_px\n0,1,2,3,4\n0,1,5,6,7\n", "twice"},
		{"empty", "", "header"},
	} {
		path := filepath.Join(dir, tc.name+".csv")
		if err := os.WriteFile(path, []byte(tc.body), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := LoadTruth(path)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: LoadTruth error = %v, want one naming %q and the file", tc.name, err, tc.want)
		}
	}
	// A sidecar with fewer frames than the truth is refused.
	path := filepath.Join(dir, "short.csv")
	if err := os.WriteFile(path, []byte("frame,person,head_x,head_y,height_px\n5,1,2,3,4\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(SidecarPath(path), []byte(`{"frames": 3}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadTruth(path); err == nil || !strings.Contains(err.Error(), "3 frames") {
		t.Errorf("short sidecar: LoadTruth error = %v, want one about the frame count", err)
	}
	if _, err := LoadTruth(filepath.Join(dir, "missing.csv")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: LoadTruth error = %v, want not-exist", err)
	}
}

func TestCountIn(t *testing.T) {
	truth, cfg := presetTruth(t, PresetDense)
	tr := &Truth{frames: map[int][]Head{}, n: len(truth)}
	for i, h := range truth {
		tr.frames[i] = h
	}
	w, h := cfg.Width, cfg.Height
	left := [][2]float64{{0, 0}, {0.5, 0}, {0.5, 1}, {0, 1}}
	quads := [][][2]float64{
		{{0, 0}, {0.5, 0}, {0.5, 0.5}, {0, 0.5}},
		{{0.5, 0}, {1, 0}, {1, 0.5}, {0.5, 0.5}},
		{{0, 0.5}, {0.5, 0.5}, {0.5, 1}, {0, 1}},
		{{0.5, 0.5}, {1, 0.5}, {1, 1}, {0.5, 1}},
	}
	for _, f := range []int{0, 299, 599} {
		direct := 0
		for _, hd := range truth[f] {
			if hd.X < float64(w)/2 {
				direct++
			}
		}
		if got := tr.CountIn(f, left, w, h); got != direct {
			t.Errorf("frame %d: CountIn(left half) = %d, want %d", f, got, direct)
		}
		// The whole image, given as a polygon reaching past the edges,
		// holds everyone; the quadrants share edges and together hold
		// everyone once.
		all := tr.CountIn(f, [][2]float64{{-0.1, -0.1}, {1.1, -0.1}, {1.1, 1.1}, {-0.1, 1.1}}, w, h)
		sum := 0
		for _, q := range quads {
			sum += tr.CountIn(f, q, w, h)
		}
		if all != len(truth[f]) || sum != all {
			t.Errorf("frame %d: whole image %d, quadrants %d, want both %d", f, all, sum, len(truth[f]))
		}
	}
	// Heads exactly on shared edges count once, on the larger-x and
	// larger-y side.
	edge := &Truth{frames: map[int][]Head{0: {
		{Person: 1, X: 50, Y: 20}, // on the vertical line x = 0.5
		{Person: 2, X: 20, Y: 50}, // on the horizontal line y = 0.5
		{Person: 3, X: 50, Y: 50}, // on the corner
	}}, n: 1}
	want := []int{0, 1, 1, 1}
	for i, q := range quads {
		if got := edge.CountIn(0, q, 100, 100); got != want[i] {
			t.Errorf("edge heads in quadrant %d: %d, want %d", i, got, want[i])
		}
	}
	if got := edge.CountIn(0, left[:2], 100, 100); got != 0 {
		t.Errorf("CountIn with a two-point polygon = %d, want 0", got)
	}
}

func FuzzParseTruth(f *testing.F) {
	f.Add([]byte("frame,person,head_x,head_y,height_px\n0,1,2.5,3.5,40\n1,1,2.6,3.6,40.1\n"))
	f.Add([]byte("frame,person,head_x,head_y,height_px\n"))
	f.Add([]byte("frame,person,head_x,head_y,height_px\n4194304,1,2,3,4\n"))
	f.Add([]byte("frame,person,head_x,head_y,height_px\n0,1,\"2\",3,Inf\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		tr, err := parseTruth(bytes.NewReader(b), "fuzz")
		if err != nil {
			return
		}
		if tr.Frames() < 0 || tr.Frames() > maxTruthFrame {
			t.Fatalf("Frames() = %d out of range", tr.Frames())
		}
		total := 0
		for fr := range tr.frames {
			if fr < 0 || fr >= tr.Frames() {
				t.Fatalf("frame %d outside 0..%d", fr, tr.Frames()-1)
			}
			for _, h := range tr.Heads(fr) {
				if math.IsNaN(h.X) || math.IsInf(h.Y, 0) {
					t.Fatalf("non-finite head %+v accepted", h)
				}
				total++
			}
		}
		_ = total
	})
}

func TestPackRGB(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 2, 2))
	for i := range img.Pix {
		img.Pix[i] = uint8(i)
	}
	got := make([]byte, 12)
	packRGB(got, img)
	want := []byte{0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14}
	if !bytes.Equal(got, want) {
		t.Errorf("packRGB = %v, want %v", got, want)
	}
}

func TestGenerateWithoutFFmpeg(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	dir := t.TempDir()
	cfg := smallConfig(t, PresetSparse, 160, 96, time.Second)
	err := Generate(context.Background(), cfg, filepath.Join(dir, "v.mp4"), filepath.Join(dir, "v.csv"))
	if err == nil || !strings.Contains(err.Error(), "ffmpeg") {
		t.Fatalf("Generate without ffmpeg: error = %v, want one naming ffmpeg", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("Generate without ffmpeg left %d files in %s", len(entries), dir)
	}
}
